//! Potential-energy networks for populations, with hand-written differentiable forces.

mod analytic;
mod attention_energy;
mod dropout;
mod energy;
mod kernels;
mod layers;
mod mean_field;
#[cfg(test)]
mod testing;
mod weights;

pub use analytic::AnalyticPotential;
pub use attention_energy::{AttentionEnergy, AttentionEnergyConfig};
pub use energy::{Energy, EnergyField};
pub use kernels::Kernels;
pub use mean_field::{MeanFieldEnergy, MeanFieldEnergyConfig};
pub use weights::{load_weights, perturb_constant_parameters, seeded_var_builder, WeightsError};
