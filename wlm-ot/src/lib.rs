//! Optimal-transport losses and metrics for WLM: the geomloss-exact debiased Sinkhorn
//! divergence (training loss) and exact W1/W2 (evaluation metric).

mod config;
mod divergence;
mod emd;
mod error;
mod input;
mod kernel;
mod metrics;
mod numpy_math;
mod schedule;
mod sinkhorn;

pub use config::{FinalConvergence, SinkhornConfig};
pub use divergence::{sinkhorn_divergence, sinkhorn_divergence_weighted};
pub use emd::{wasserstein_1, wasserstein_2};
pub use error::{Error, Result};
pub use metrics::{energy_distance, mmd_rbf};
pub use sinkhorn::{sinkhorn, sinkhorn_weighted, SinkhornOutput};
