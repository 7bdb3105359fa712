//! Damped leapfrog integrators over candle tensors, and the [`ForceField`] seam.
//!
//! Particles follow `dx/dt = v`, `dv/dt = a(x, t) − γ v` (`docs/METHOD.md` §2 in the
//! repository). This crate sits below the
//! learner (`wlm`) and the energy networks (`wlm-energy`, which implement [`ForceField`]); it
//! knows nothing about neural networks: anything that turns positions into accelerations is a
//! [`ForceField`]. Everything is plain candle ops and nothing is detached, so a loss on a
//! rollout backpropagates to the initial positions and velocities, to the friction tensor and
//! to whatever parameters the field depends on.
//!
//! # Quick start
//! ```
//! use candle_core::{Device, Tensor};
//! use wlm_integrate::{fields::Harmonic, rollout, Integrator, State};
//!
//! let device = Device::Cpu;
//! let field = Harmonic { stiffness: 1.0 };
//! let x = Tensor::new(&[[1.0f64, 0.0], [0.0, 2.0]], &device)?; // (n_particles, dim)
//! let v = Tensor::zeros((2, 2), candle_core::DType::F64, &device)?;
//! let friction = Tensor::new(0.1f64, &device)?; // rank-0 γ ≥ 0
//! let initial = State::new(&field, x, v, 0.0)?;
//! let traj = rollout(Integrator::ConformalLeapfrog, &field, initial, 0.01, 100, &friction, &[0, 50, 100])?;
//! assert_eq!(traj.steps, vec![0, 50, 100]);
//! assert!((traj.times[2] - 1.0).abs() < 1e-12);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! # Entry points
//! | item | what | cost |
//! |---|---|---|
//! | [`ForceField`] | the seam: `a(x, t)` for a population | — |
//! | [`State::new`] | a state; evaluates the field once | 1 force evaluation |
//! | [`Integrator::step`] | one step of [`Integrator::ReferenceLeapfrog`] or [`Integrator::ConformalLeapfrog`] | 1 force evaluation + ~10 elementwise ops |
//! | [`rollout`] | `n_steps` steps, recording chosen step indices as a [`Trajectory`] | 1 force evaluation per step up to the last recorded index |
//! | [`reference_coefficients`] | the reference scheme's `m`, `c` as tensors | 4 scalar ops |
//! | [`fields`] | [`fields::Harmonic`], [`fields::ConstantField`], [`fields::FnField`] | — |
//!
//! # The two schemes
//! [`Integrator::ReferenceLeapfrog`] (default) reproduces the reference implementation for
//! parity: `m = exp(−γh/2)`, `c = m h/2 + (1 − m)`, `v½ = m v + c a`, `x ← x + h v½`,
//! `v ← m v½ + c a(x, t + h)`. Its small-`h` limit is **`dv/dt = (1 + γ) a − γ v`, not the
//! paper's `dv/dt = a − γ v`** (for large `γ` it becomes `x ← x + h a(x)`, a unit-mobility
//! gradient flow). [`Integrator::ConformalLeapfrog`] solves the damping exactly around a
//! velocity-Verlet step and is consistent with the paper's equation; at `γ = 0` both are
//! velocity Verlet.
//!
//! # What can go wrong
//! - Bad arguments are an `Err` (a [`candle_core::Error::Msg`] with a message naming the
//!   value): non-finite `dt`; friction not rank-0, negative, non-finite, or of another
//!   dtype/device than the positions; record indices `> n_steps` or not strictly increasing;
//!   velocities or accelerations whose shape/dtype/device differ from the positions'.
//! - Explicit schemes are only conditionally stable: a harmonic mode of angular frequency `ω`
//!   needs `h ω < 2`. Too large a step blows up to `inf`/`NaN` without an error here (the
//!   field's values are not inspected).
//! - Backpropagating through a long rollout keeps every step's graph alive: memory grows
//!   linearly with the number of steps.
//! - Time is accumulated as `t + dt` per step (like the reference), so after many steps it
//!   differs from `t₀ + n dt` by rounding.
//!
//! # References
//! - `docs/METHOD.md` §2.2 in the repository (with the derivation of each
//!   scheme's small-step limit); the reference implementation `guanton/WLM`.
//! - R. McLachlan, M. Perlmutter, "Conformal Hamiltonian systems", J. Geom. Phys. 39 (2001).
//! - A. Bhatt, B. Moore, "Structure-preserving exponential Runge–Kutta methods", SIAM J. Sci.
//!   Comput. 39 (2017) (conformal symplectic splitting).

pub mod fields;
mod force;
mod integrator;
mod rollout;

pub use force::ForceField;
pub use integrator::{reference_coefficients, Integrator, State};
pub use rollout::{rollout, Trajectory};
