//! The `wlm` binary: a thin wrapper over [`wlm_cli::run`], plus two process settings for speed.

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match wlm_cli::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Process settings that the tensor workload needs for speed (never for correctness); see
/// `benches/notes/energy.md`. Runs first in `main`, before any other thread exists.
///
/// - glibc's malloc returns freed blocks above its mmap/trim thresholds to the OS, and the
///   short-lived multi-MB tensors of a force evaluation are then page-faulted back on every
///   call (15–30 % of the time at N = 1000). Raising both thresholds keeps them in the heap
///   (what `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…:glibc.malloc.trim_threshold=…` does).
/// - candle's elementwise thread pool spins 25,000 iterations per barrier; on a busy machine a
///   preempted worker turns each op into a multi-ms stall. `CANDLE_BARRIER_POOL_SPIN_LIMIT`
///   is set to 200 unless the user has set it.
/// - Unless `RAYON_NUM_THREADS` is set, candle counts the physical cores again on every matrix
///   product (it parses `/proc/cpuinfo` each time: 5–30 % of a force evaluation at N = 256).
///   Setting the variable to the count candle would choose anyway makes that a lookup.
fn tune_process() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// Blocks below 1 GiB come from the heap, not from their own mmap.
        const MMAP_THRESHOLD: libc::c_int = 1 << 30;
        /// Free heap memory is returned to the OS only above 2 GiB.
        const TRIM_THRESHOLD: libc::c_int = libc::c_int::MAX;
        // SAFETY: `mallopt` only changes two numeric parameters of glibc's allocator; it is
        // called before any other thread exists, and an out-of-range value is rejected by
        // glibc (return 0), which leaves the defaults in place and is harmless.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN).is_none() {
        // Sound here: no other thread exists yet that could read the environment concurrently
        // (candle reads this variable when its pool is first built, later).
        std::env::set_var(SPIN, "200");
    }
    const THREADS: &str = "RAYON_NUM_THREADS";
    if std::env::var_os(THREADS).is_none() {
        let threads = candle_core::utils::get_num_threads();
        // Sound for the same reason; rayon's pool is built later and reads the same count.
        std::env::set_var(THREADS, threads.to_string());
    }
}
