//! Integration tests of `wlm-ot`: fixtures from geomloss and POT, dense references (geomloss's
//! schedule, and a fixed-ε Sinkhorn), properties, autograd, exact transport and input errors.

mod autograd;
#[path = "../../../testing/close.rs"]
mod close;
mod common;
mod cuda;
mod dense;
mod emd;
mod errors;
mod fixed_epsilon;
mod fixtures;
mod properties;
#[path = "../../../testing/shared_folder.rs"]
mod shared_folder;
