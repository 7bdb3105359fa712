//! Helpers: running the binary, writing small data files, reading PNG headers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wlm_data::Snapshots;

/// `wlm experiment boids` shrunk to seconds: two seeds (3, 4) of 16 birds over 6 snapshots,
/// 3 training, a 2-step tiny model; results in `exp/boids`. Later `--set`s override these.
pub(crate) const TINY_BOIDS_EXPERIMENT: [&str; 20] = [
    "experiment",
    "boids",
    "--seeds",
    "3,4",
    "--out",
    "exp",
    "--set",
    "data.source.n_particles=16",
    "--set",
    "data.source.n_snapshots=6",
    "--set",
    "split.n_train=3",
    "--set",
    "train.batch_size=None",
    "--set",
    "train.steps=2",
    "--set",
    "model.energy=Attention((dim: 2, heads: 1, hidden: 8, blocks: 1, ff: 8))",
    "--set",
    "eval.steps_per_interval=1",
];

/// Runs `wlm` with `args` in `dir`.
pub(crate) fn wlm_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wlm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the wlm binary runs")
}

/// Standard output as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "wlm failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts failure, an `error: ` message on stderr, and returns that message.
pub(crate) fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "wlm succeeded unexpectedly\nstdout:\n{}",
        stdout(out)
    );
    let err = stderr(out);
    assert!(
        err.starts_with("error: "),
        "error message not prefixed: {err}"
    );
    let first = err
        .trim_start_matches("error: ")
        .chars()
        .next()
        .unwrap_or(' ');
    assert!(!first.is_uppercase(), "message starts upper-case: {err}");
    err
}

/// Deterministic pseudo-random numbers in [-1, 1) (a tiny LCG; no RNG crate needed).
pub(crate) fn numbers(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Writes an `(n, d)` float64 `.npy`.
pub(crate) fn write_cloud_npy(path: &Path, values: &[f64], n: usize, d: usize) {
    let bytes = wlm_data::encode_npy(&[n, d], values).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Small snapshots with velocities: `t` snapshots of `n` points in 2-D.
pub(crate) fn small_snapshots(t: usize, n: usize) -> Snapshots {
    let positions = (0..t).map(|k| numbers(n * 2, k as u64 + 1)).collect();
    let velocities = (0..t)
        .map(|k| Some(numbers(n * 2, k as u64 + 100)))
        .collect();
    let times = (0..t).map(|k| k as f64 * 0.5).collect();
    Snapshots::new(times, 2, positions, Some(velocities)).unwrap()
}

/// A temporary folder holding `data.npz` (6 snapshots of 16 points with velocities) and the
/// config `tiny.ron` (whose source is `Particles("data.npz")`).
pub(crate) fn tiny_run_folder(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    wlm_data::write_particles_npz(dir.path().join("data.npz"), &small_snapshots(6, 16)).unwrap();
    std::fs::write(dir.path().join("tiny.ron"), config).unwrap();
    dir
}

/// The shared data folder (`../shared/data` next to the repository), if present.
/// Absent: `None` on a developer's checkout, a failure under `CI=true`.
pub(crate) fn shared_data() -> Option<PathBuf> {
    crate::shared_folder::shared("data")
}

/// A committed config `configs/NAME.ron`, and the `--set` that points its data source
/// (`KIND("FILE")` under the shared data folder `data`) there when the shared folder is not
/// beside the repository (`$WLM_SHARED`); empty when it is.
pub(crate) fn repository_config(
    name: &str,
    data: &Path,
    kind: &str,
    file: &str,
) -> (PathBuf, Vec<String>) {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = manifest.join(format!("../configs/{name}.ron"));
    let overrides = if manifest.join("../../shared/data").is_dir() {
        Vec::new()
    } else {
        let source = data.join(file).display().to_string();
        vec!["--set".into(), format!("data.source={kind}({source:?})")]
    };
    (config, overrides)
}

/// Checks a PNG file: signature, IHDR, plausible size; returns (width, height).
pub(crate) fn check_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(
        w >= 200 && h >= 200,
        "{}: {w}×{h} is too small",
        path.display()
    );
    assert!(
        bytes.len() > 2000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
    (w, h)
}
