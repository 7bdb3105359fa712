//! Integration tests of `wlm-energy`: reference parity, rollout gradients against finite
//! differences, fused kernels against the plain path, invariances, weights on disk.

#[path = "../../../testing/close.rs"]
mod close;
mod common;
mod dropout;
mod kernels;
mod parity;
mod permutation;
mod rollout_gradients;
#[path = "../../../testing/shared_folder.rs"]
mod shared_folder;
mod weights;
