//! Integration tests of the `wlm` learner: parity with the PyTorch reference, the reverse sweep
//! against plain backprop, training runs (resume, NaN stop, bad configs) and an end-to-end
//! harmonic-trap forecast.

mod common;
mod parity;
mod runs;
mod sweep;
mod trap;
