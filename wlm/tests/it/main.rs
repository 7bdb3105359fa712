//! Integration tests of the `wlm` learner: parity with the PyTorch reference, the reverse sweep
//! against plain backprop, training runs (resume, NaN stop, bad configs), an end-to-end
//! harmonic-trap forecast and velocity estimates on data with known velocities.

#[path = "../../../testing/close.rs"]
mod close;
mod common;
mod landscape;
mod optim;
mod parity;
mod runs;
#[path = "../../../testing/shared_folder.rs"]
mod shared_folder;
mod sweep;
mod trap;
mod velocity;
