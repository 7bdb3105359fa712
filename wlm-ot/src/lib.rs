//! Optimal-transport losses and metrics for WLM: the geomloss-exact debiased Sinkhorn
//! divergence (the training loss) and exact W1/W2 (the evaluation metric).
//!
//! `wlm-ot` sits at the bottom of the workspace (it depends on candle only). The learner calls
//! [`sinkhorn_divergence`] on simulated and observed clouds and backpropagates through it; the
//! evaluation calls [`wasserstein_1`]. Point clouds are `candle_core::Tensor`s of shape
//! `(n_points, dim)`, f32 or f64.
//!
//! # Quick start
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use wlm_ot::{sinkhorn_divergence, wasserstein_1, SinkhornConfig};
//!
//! # fn main() -> anyhow::Result<()> {
//! let dev = Device::Cpu;
//! let x = Var::from_tensor(&Tensor::new(&[[0.0f64, 0.0], [1.0, 0.0], [0.0, 1.0]], &dev)?)?;
//! let y = Tensor::new(&[[0.5f64, 0.5], [1.5, 0.5]], &dev)?;
//! let loss = sinkhorn_divergence(x.as_tensor(), &y, &SinkhornConfig::default())?;
//! let grads = loss.backward()?; // geomloss's envelope gradient
//! assert_eq!(grads.get(x.as_tensor()).expect("gradient").dims(), &[3, 2]);
//! let w1 = wasserstein_1(x.as_tensor(), &y)?; // exact, for evaluation
//! assert!(w1 > 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! # Entry points
//!
//! | function | what | cost |
//! |---|---|---|
//! | [`sinkhorn_divergence`] | `S(x, y)` as a differentiable scalar tensor (custom op) | `O(K (N+M)² d)` time, `O((N+M) d)` memory; `K` ≈ 40 ε-steps at the reference settings |
//! | [`sinkhorn_divergence_weighted`] | the same with weights `a`, `b` | same |
//! | [`sinkhorn()`] / [`sinkhorn_weighted`] | value, potentials, schedule, gradients w.r.t. `x` and `y`, no autograd | same |
//! | [`wasserstein_1`] | exact W1, Euclidean cost (POT's `ot.emd2`) | network simplex, `O(NM)` memory |
//! | [`wasserstein_2`] | exact W2 = `sqrt(emd2)` with cost `|x − y|²` | same |
//! | [`exact_plan`] | the optimal coupling itself (sparse, exact integer masses) | same |
//! | [`displacement_interpolation`] | McCann interpolation along the exact W2 plan, as an `lcm(N, M)`-point cloud | same |
//! | [`displacement_interpolation_w1`] | exact W1 from that interpolation to a third cloud, its points weighted instead of repeated (the OT-midpoint baseline) | `O((N + M) K)` memory |
//! | [`energy_distance`], [`mmd_rbf`] | kernel two-sample statistics | `O((N+M)² d)` |
//!
//! The Sinkhorn divergence is computed exactly as geomloss 0.3.1 computes it (`SamplesLoss(
//! "sinkhorn", p, blur, scaling, debias=True)`): cost `½|x−y|²` (`p = 2`) or `|x−y|` (`p = 1`,
//! as `sqrt(max(D, 1e-8))`), ε-annealing from the bounding-box diameter down to `blur^p`, four
//! symmetric averaged potential updates per ε, one final extrapolation; see [`SinkhornConfig`].
//! The CPU kernel is log-domain with an online log-sum-exp over column tiles (no `N × M` matrix
//! is ever stored), vectorised (AVX-512, else AVX2 + FMA, picked at run time; portable code otherwise)
//! and multi-threaded with rayon for large problems.
//!
//! # What can go wrong
//!
//! - Bad input is an [`Error`], never a panic: NaN/∞ coordinates, empty clouds, mismatched
//!   dimensions or dtypes, `blur ≤ 0`, `scaling ∉ (0, 1)`, `p ∉ {1, 2}`, weights that are
//!   negative or do not sum to 1.
//! - The default gradient is *not* the derivative of the returned value: geomloss makes a
//!   single update at the final ε and differentiates with the envelope theorem. That is what
//!   the reference trains with. Set [`SinkhornConfig::converge_final`] to iterate at the final
//!   ε until the potentials settle; the gradient then matches finite differences.
//! - `blur` is in the units of the coordinates. A blur much smaller than the spacing of the
//!   points makes the schedule long (its length grows like `log(diameter / blur) / log(1/scaling)`);
//!   past [`MAX_SCHEDULE_STEPS`] entries it is [`Error::ScheduleTooLong`].
//! - f32 runs the same algorithm: against geomloss's f64 values it is within about 3e-7
//!   relative on the value and 2e-5 (relative to the largest entry) on the gradient; use f64
//!   for parity checks (1e-15 and 1e-10).
//! - For `p = 1` the kernel sums `Σ (x − y)²` directly, where geomloss expands
//!   `|x|² − 2x·y + |y|²`: the two differ only for pairs closer than about `1e-4·|x|`, where
//!   the expanded form loses digits.
//! - Exact transport stores 24 bytes per pair of points (1000 × 1000 is 24 MB); a problem
//!   that would not fit in the memory the system reports as available is
//!   [`Error::OutOfMemory`] before anything is allocated, and one of `2^40` pairs or more is
//!   [`Error::ProblemTooLarge`]. Sinkhorn is never used as the evaluation metric.
//! - Inputs are copied to the host. The softmin passes run on the CPU unless the `cuda`
//!   feature is built and [`DevicePreference`] selects the GPU.
//! - The ε schedule uses bit-exact ports of numpy's AVX-512 `exp`/`log` (geomloss computes it
//!   with numpy). On a CPU without AVX-512F, a `log` argument can fall on the other side of a
//!   rounding boundary (about 3 in 100 000). An ε entry then moves by an ulp, which changes the
//!   value by about 1e-16 relative.
//!
//! # References
//!
//! - `docs/METHOD.md` §3 in the repository: the loss and the metric, formula by formula.
//! - J. Feydy et al., *Interpolating between optimal transport and MMD using Sinkhorn
//!   divergences*, AISTATS 2019 (geomloss).
//! - LEMON's `NetworkSimplex` and POT's `ot.emd2` for the exact solver's scheme.

mod config;
mod cuda;
mod divergence;
mod emd;
mod error;
mod input;
mod kernel;
mod metrics;
mod numpy_math;
mod potentials;
mod schedule;
mod sinkhorn;

pub use config::{FinalConvergence, SinkhornConfig};
pub use cuda::{
    cuda_available, device_preference, set_device_preference, with_device_preference,
    DevicePreference,
};
pub use divergence::{sinkhorn_divergence, sinkhorn_divergence_weighted};
pub use emd::{
    displacement_interpolation, displacement_interpolation_w1, exact_plan, wasserstein_1,
    wasserstein_2, GroundCost, TransportPlan,
};
pub use error::{Error, Result};
pub use metrics::{energy_distance, mmd_rbf};
pub use schedule::MAX_SCHEDULE_STEPS;
pub use sinkhorn::{sinkhorn, sinkhorn_weighted, SinkhornOutput};
