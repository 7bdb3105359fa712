//! CPU numeric helpers shared by the kernel crates of the WLM workspace.
//!
//! `wlm-ot` (the Sinkhorn softmin passes, the exact-OT size guard), `wlm-energy` (the fused
//! softmax, GELU and sigmoid kernels) and `wlm-data` (the loaders' size guards) are peers that
//! do not depend on each other; the few helpers they share live here, once, with no
//! dependencies of their own.
//!
//! | entry point | what it is | cost |
//! |---|---|---|
//! | [`exp_f32`] | `exp` on the whole f32 range, branch-free, vectorisable | ~12 flops |
//! | [`exp_nonpositive_f32`], [`exp_nonpositive_f64`] | `exp(t)` for `t ≤ 0`, exactly 0 below the cutoff | ~12 / ~20 flops |
//! | [`has_avx2_fma`], [`has_avx512`] | which explicit SIMD kernels this CPU runs | cached CPUID |
//! | [`available_memory_bytes`] | `MemAvailable + SwapFree` of `/proc/meminfo` | one file read |
//! | [`SeedRng`] | the seeded generator of every result: xoshiro256++ and its pinned draws | ~1 ns a `u64` |
//!
//! ```
//! let e = wlm_numeric::exp_nonpositive_f64::<true>(-1.0);
//! assert!((e - (-1.0f64).exp()).abs() < 4.0 * f64::EPSILON);
//! ```
//!
//! What can go wrong: nothing returns an error. The polynomials clamp their argument (see each
//! function for its range); NaN in gives NaN out. `available_memory_bytes` is `None` off Linux,
//! and callers then skip their memory check. [`SeedRng`]'s `below`, `range_inclusive` and
//! `sample_indices` panic on an empty range or `k > n`, as slicing out of bounds does.

mod cpu;
mod exp;
mod linalg;
mod memory;
mod rng;

pub use cpu::{has_avx2_fma, has_avx512};
pub use exp::{exp_f32, exp_nonpositive_f32, exp_nonpositive_f64};
pub use linalg::{mean_and_covariance, symmetric_eigen};
pub use memory::available_memory_bytes;
pub use rng::SeedRng;
