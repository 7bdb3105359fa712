//! Shared helpers: fixture loading, random clouds, tensor conversion.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `../../shared/fixtures/<sub>` relative to this crate, or `WLM_FIXTURES/<sub>`; `None` (with a
/// message) when absent on a developer's checkout, a failure under `CI=true`.
pub(crate) fn fixture_dir(sub: &str) -> Option<PathBuf> {
    crate::shared_folder::shared(&format!("fixtures/{sub}"))
}

/// Every `case_*.json` of a fixture folder, sorted, parsed.
pub(crate) fn load_cases<T: serde::de::DeserializeOwned>(sub: &str) -> Vec<(String, T)> {
    let Some(dir) = fixture_dir(sub) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("readable fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("case_") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {}", dir.display());
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable fixture");
            let case = serde_json::from_str(&text).expect("valid fixture json");
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                case,
            )
        })
        .collect()
}

/// `(n, d)` f64 tensor from nested rows.
pub(crate) fn tensor_from_rows(rows: &[Vec<f64>]) -> Tensor {
    let d = rows[0].len();
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (rows.len(), d), &Device::Cpu).expect("tensor")
}

/// `(n, d)` f64 tensor from a flat row-major vector.
pub(crate) fn tensor(flat: &[f64], n: usize, d: usize) -> Tensor {
    Tensor::from_slice(flat, (n, d), &Device::Cpu).expect("tensor")
}

/// Flat row-major values of a tensor as f64.
pub(crate) fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(candle_core::DType::F64)
        .expect("f64")
        .flatten_all()
        .expect("flat")
        .to_vec1()
        .expect("vec")
}

/// `n` points in `[lo, hi)^d` (flat, row-major) from a seeded generator.
pub(crate) fn uniform_cloud(rng: &mut StdRng, n: usize, d: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n * d).map(|_| rng.random_range(lo..hi)).collect()
}

/// A seeded generator.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub(crate) use crate::close::check_close;

/// [`check_close`] that panics with `what` and the worst entry.
#[track_caller]
pub(crate) fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    if let Err(msg) = check_close(got, want, atol, rtol) {
        panic!("{what}: {msg}");
    }
}
