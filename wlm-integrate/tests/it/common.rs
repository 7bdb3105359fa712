//! Shared test fields and helpers (f64 on the CPU).

use candle_core::{Device, Result, Tensor};
use wlm_integrate::ForceField;

/// A nonlinear, time-dependent, coupled field:
/// `a_i(x, t) = −x_i³ + 0.5 cos(t) − 0.2 mean_j(x_j)` (elementwise per coordinate).
pub(crate) struct Nonlinear;

impl ForceField for Nonlinear {
    fn acceleration(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let cubic = x.sqr()?.mul(x)?.neg()?;
        let mean = x.mean_keepdim(0)?.affine(-0.2, 0.0)?;
        cubic.affine(1.0, 0.5 * t.cos())?.broadcast_add(&mean)
    }
}

/// The same field in plain f64 on row-major `(n_particles, dim)` data.
pub(crate) fn nonlinear_plain(x: &[Vec<f64>], t: f64) -> Vec<Vec<f64>> {
    let n = x.len() as f64;
    let dim = x[0].len();
    let mean: Vec<f64> = (0..dim)
        .map(|k| x.iter().map(|row| row[k]).sum::<f64>() / n)
        .collect();
    x.iter()
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&xi, &mk)| (-((xi * xi) * xi) + 0.5 * t.cos()) + mk * -0.2)
                .collect()
        })
        .collect()
}

/// A time-independent nonlinear field (pendulum with a weak coupling to the centroid):
/// `a_i = −sin(x_i) − 0.1 (x_i − mean_j x_j)`.
pub(crate) struct Pendulums;

impl ForceField for Pendulums {
    fn acceleration(&self, x: &Tensor, _t: f64) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
        x.sin()?.neg()? - centred.affine(0.1, 0.0)?
    }
}

pub(crate) fn tensor2(rows: &[Vec<f64>]) -> Result<Tensor> {
    Tensor::new(rows.to_vec(), &Device::Cpu)
}

pub(crate) fn scalar(value: f64) -> Result<Tensor> {
    Tensor::new(value, &Device::Cpu)
}

pub(crate) fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

/// Entry-wise closeness of two `(rows, cols)` arrays: every `|got − want| ≤ atol + rtol·|want|`.
/// On failure, panics with `what` and the worst entry (largest ratio of error to its bound): its
/// index, both values, the error and the bound, so a wrong small entry is not hidden behind
/// the largest one.
#[track_caller]
pub(crate) fn assert_close(what: &str, got: &[Vec<f64>], want: &[Vec<f64>], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: row counts differ");
    for (row, (g_row, w_row)) in got.iter().zip(want).enumerate() {
        assert_eq!(g_row.len(), w_row.len(), "{what}: row {row} lengths differ");
    }
    let (flat_got, flat_want): (Vec<f64>, Vec<f64>) = (got.concat(), want.concat());
    if let Some(idx) = crate::close::worst_entry(&flat_got, &flat_want, atol, rtol) {
        let (mut row, mut col) = (0, idx);
        while col >= got[row].len() {
            col -= got[row].len();
            row += 1;
        }
        let entry = format!("entry [{row}][{col}]");
        panic!(
            "{what}: {}",
            crate::close::describe(&entry, flat_got[idx], flat_want[idx], atol, rtol)
        );
    }
}
