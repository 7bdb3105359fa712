//! Integration tests of wlm-integrate: hand-computed steps, reversibility, energy behaviour,
//! gradients against finite differences, and rollout recording.

mod common;
mod energy;
mod gradients;
mod reference_steps;
mod reversibility;
mod rollout_records;
