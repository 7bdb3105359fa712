//! criterion benchmarks of the WLM crates; the benchmarks live in `benches/`.

/// The `wlm` binary's process settings (see `wlm-cli/src/main.rs` and `notes/energy.md`):
/// glibc malloc thresholds raised so multi-MB tensors stay in the heap, and candle's barrier
/// spin limit at 200 unless set, and `RAYON_NUM_THREADS` fixed to candle's thread count unless set. `WLM_BENCH_NO_TUNING=1` measures the default process instead.
/// Call it first in `main`, before any other thread starts.
pub fn tune_process() {
    if std::env::var_os("WLM_BENCH_NO_TUNING").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes two numeric parameters of glibc's allocator; it runs
    // first in `main`, before any other thread exists; glibc rejects out-of-range values.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // No other thread exists yet that could read the environment concurrently.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "200");
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // candle otherwise parses /proc/cpuinfo on every matrix product to count cores.
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}
