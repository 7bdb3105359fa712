//! Where the Sinkhorn softmin passes run: the device preference, and (feature `cuda`) the
//! NVRTC-compiled GPU path behind the same entry points.
//!
//! The public items here exist with and without the feature (the feature adds speed, never
//! API). Without it, or without a usable device, everything runs on the CPU kernel; asking for
//! [`DevicePreference::Cuda`] then logs one notice through the `log` facade (libraries never
//! print) and still returns the CPU result.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use crate::config::SinkhornConfig;
use crate::input::HostPair;
use crate::kernel::Real;
use crate::potentials::Solution;

#[cfg(feature = "cuda")]
pub(crate) mod gpu;
#[cfg(all(test, feature = "cuda"))]
mod tests;

/// Where [`sinkhorn`](fn@crate::sinkhorn) and [`sinkhorn_divergence`](crate::sinkhorn_divergence)
/// run their softmin passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// The GPU when the `cuda` feature is built, a device is found and the problem is large
    /// enough (`(N + M)² ≥ 2²²` pairs) for the GPU to pay off; else the CPU. Default.
    #[default]
    Auto,
    /// Always the CPU kernel.
    Cpu,
    /// The GPU whenever one is usable; otherwise the CPU, with a one-time logged notice.
    Cuda,
}

/// Below this many pairs `(N + M)²`, [`DevicePreference::Auto`] stays on the CPU.
pub(crate) const AUTO_MIN_PAIRS: usize = 1 << 22;

const UNSET: u8 = u8::MAX;
static GLOBAL: AtomicU8 = AtomicU8::new(UNSET);

thread_local! {
    static SCOPED: Cell<Option<DevicePreference>> = const { Cell::new(None) };
}

fn encode(p: DevicePreference) -> u8 {
    match p {
        DevicePreference::Auto => 0,
        DevicePreference::Cpu => 1,
        DevicePreference::Cuda => 2,
    }
}

fn decode(v: u8) -> DevicePreference {
    match v {
        1 => DevicePreference::Cpu,
        2 => DevicePreference::Cuda,
        _ => DevicePreference::Auto,
    }
}

fn from_env() -> DevicePreference {
    match std::env::var("WLM_OT_DEVICE")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Ok("cpu") => DevicePreference::Cpu,
        Ok("cuda" | "gpu") => DevicePreference::Cuda,
        _ => DevicePreference::Auto,
    }
}

/// Sets the process-wide device preference (initially from the environment variable
/// `WLM_OT_DEVICE` = `cpu` | `cuda` | `auto`, else [`DevicePreference::Auto`]).
pub fn set_device_preference(preference: DevicePreference) {
    GLOBAL.store(encode(preference), Ordering::Relaxed);
}

/// The preference in effect on this thread: the innermost [`with_device_preference`] scope,
/// else the process-wide one.
pub fn device_preference() -> DevicePreference {
    if let Some(p) = SCOPED.with(Cell::get) {
        return p;
    }
    let v = GLOBAL.load(Ordering::Relaxed);
    if v == UNSET {
        let p = from_env();
        let _ = GLOBAL.compare_exchange(UNSET, encode(p), Ordering::Relaxed, Ordering::Relaxed);
        return decode(GLOBAL.load(Ordering::Relaxed));
    }
    decode(v)
}

/// Runs `f` with `preference` in effect on the calling thread (the solver runs on the calling
/// thread), restoring the previous scope afterwards, also on panic.
pub fn with_device_preference<R>(preference: DevicePreference, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<DevicePreference>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|s| s.replace(Some(preference))));
    f()
}

/// `true` when the `cuda` feature is built, the CUDA driver and NVRTC libraries load, a device
/// exists and the kernels compiled. Probed once (the first call compiles the kernels).
pub fn cuda_available() -> bool {
    #[cfg(feature = "cuda")]
    {
        gpu::runtime().is_ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// Logs `message` once per process (warn level).
fn notice_once(message: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| log::warn!("wlm-ot: {message}; running the Sinkhorn passes on the CPU"));
}

/// Runs the whole solve on the GPU when the preference and the device allow it; `None` means
/// "use the CPU path".
pub(crate) fn try_solve<T: Real>(
    pair: &HostPair<T>,
    a: &[T],
    b: &[T],
    config: &SinkhornConfig,
) -> Option<Solution<T>> {
    let preference = device_preference();
    let pairs = (pair.n_x + pair.n_y).saturating_mul(pair.n_x + pair.n_y);
    let wanted = match preference {
        DevicePreference::Cpu => false,
        DevicePreference::Cuda => true,
        DevicePreference::Auto => cfg!(feature = "cuda") && pairs >= AUTO_MIN_PAIRS,
    };
    if !wanted {
        return None;
    }
    #[cfg(feature = "cuda")]
    {
        match gpu::solve_any(pair, a, b, config) {
            Ok(sol) => Some(sol),
            Err(reason) => {
                notice_once(&reason);
                None
            }
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (a, b, config);
        notice_once("CUDA requested but wlm-ot was built without the `cuda` feature");
        None
    }
}
