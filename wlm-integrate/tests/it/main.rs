//! Integration tests of wlm-integrate: the reference scheme against the PyTorch rollout and the
//! ODEs it converges to, reversibility, energy behaviour,
//! gradients against finite differences, and rollout recording.

#[path = "../../../testing/close.rs"]
mod close;
mod common;
mod energy;
mod gradients;
mod reference_steps;
mod reversibility;
mod rollout_records;
#[path = "../../../testing/shared_folder.rs"]
mod shared_folder;
