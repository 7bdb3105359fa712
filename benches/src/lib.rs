//! criterion benchmarks of the WLM crates; the benchmarks live in `benches/`.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

/// The benchmarks' short criterion settings: group `name` with 10 samples, `warm_up` of warm-up
/// and `measurement` of measurement.
pub fn short_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    warm_up: Duration,
    measurement: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measurement);
    group
}

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

/// CPU time of this process, all threads (`CLOCK_PROCESS_CPUTIME_ID`); where that clock is not
/// wired up (not Linux with glibc), the wall time since the first call stands in for it.
pub fn process_cpu_time() -> Duration {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the kernel
        // knows.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// [`process_cpu_time`] in seconds.
pub fn cpu_seconds() -> f64 {
    process_cpu_time().as_secs_f64()
}

/// The `main` of a benchmark with a one-off mode: [`tune_process`], then `once(spec)` when the
/// environment variable `once_var` is set to `spec`, otherwise the criterion `benches` and the
/// summary.
pub fn main_with_once(once_var: &str, once: impl FnOnce(&str), benches: impl FnOnce()) {
    tune_process();
    if let Ok(spec) = std::env::var(once_var) {
        once(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
