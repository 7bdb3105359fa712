//! Integration tests of `wlm-boids`: one binary, one module per concern.

mod errors;
mod hand_checked;
mod invariants;
mod parity;
