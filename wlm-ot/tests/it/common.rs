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

/// Two 2-d clouds from `rng(seed)`: `n_x` points uniform in `[0, 1)²`, then `n_y` in
/// `[0.5, 1.5)²`.
pub(crate) fn shifted_pair(seed: u64, n_x: usize, n_y: usize) -> (Tensor, Tensor) {
    let mut r = rng(seed);
    let x = tensor(&uniform_cloud(&mut r, n_x, 2, 0.0, 1.0), n_x, 2);
    let y = tensor(&uniform_cloud(&mut r, n_y, 2, 0.5, 1.5), n_y, 2);
    (x, y)
}

/// One geomloss Sinkhorn fixture (`fixtures/sinkhorn/case_*.json` of the shared folder): the
/// solver's parameters, the clouds, and geomloss's value, gradient and schedule.
#[derive(serde::Deserialize)]
pub(crate) struct SinkhornCase {
    pub(crate) p: u32,
    pub(crate) blur: f64,
    pub(crate) scaling: f64,
    pub(crate) x: Vec<Vec<f64>>,
    pub(crate) y: Vec<Vec<f64>>,
    pub(crate) value: f64,
    pub(crate) grad_x: Vec<Vec<f64>>,
    pub(crate) eps_list: Vec<f64>,
    pub(crate) diameter: f64,
}

impl SinkhornCase {
    /// The case's solver parameters, the rest default.
    pub(crate) fn config(&self) -> wlm_ot::SinkhornConfig {
        wlm_ot::SinkhornConfig {
            p: self.p,
            blur: self.blur,
            scaling: self.scaling,
            ..Default::default()
        }
    }
}
