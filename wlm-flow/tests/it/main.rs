//! Integration tests of wlm-flow: couplings against brute force, learned flows between
//! Gaussians against their analytic interpolations, determinism and config errors.

mod configs;
mod gaussians;
mod plans;
