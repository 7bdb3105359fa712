//! Damped leapfrog integrators over candle tensors, and the [`ForceField`] seam.
//!
//! Particles follow `dx/dt = v`, `dv/dt = a(x, t) − γ v` (SPEC 2). This crate knows nothing
//! about neural networks: anything that turns positions into accelerations is a [`ForceField`].

mod force;

pub use force::ForceField;
