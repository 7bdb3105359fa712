//! Entry-wise closeness for the integration suites: every `|got_k − want_k| ≤ atol + rtol·|want_k|`,
//! reporting the worst entry (largest ratio of error to its bound). Unlike a single
//! `max|got − want| / max|want|`, a wrong small entry next to large ones fails. Included by each
//! suite with `#[path = "../../../testing/close.rs"] mod close;`.

#![allow(dead_code)]

/// The index of the worst entry that breaks its bound (a NaN error counts as the worst), or
/// `None` when every entry is within `atol + rtol·|want|`. `got` and `want` have equal lengths.
pub(crate) fn worst_entry(got: &[f64], want: &[f64], atol: f64, rtol: f64) -> Option<usize> {
    let mut worst: Option<(usize, f64)> = None;
    for (idx, (g, w)) in got.iter().zip(want).enumerate() {
        let (err, bound) = ((g - w).abs(), atol + rtol * w.abs());
        // NaN errors compare false: count them as failures.
        let ratio = if err.is_nan() {
            f64::INFINITY
        } else {
            err / bound
        };
        if (err.is_nan() || err > bound) && worst.is_none_or(|(_, r)| ratio > r) {
            worst = Some((idx, ratio));
        }
    }
    worst.map(|(idx, _)| idx)
}

/// The message for a failing entry named `entry` (e.g. `entry 3`, `entry [1][2]`).
pub(crate) fn describe(entry: &str, got: f64, want: f64, atol: f64, rtol: f64) -> String {
    format!(
        "{entry}: got {got:e}, want {want:e}, |error| {:e} > atol {atol:e} + rtol {rtol:e}·|want| = {:e}",
        (got - want).abs(),
        atol + rtol * want.abs()
    )
}

/// `Ok` when every entry is close, else the message naming the worst one.
pub(crate) fn check_close(got: &[f64], want: &[f64], atol: f64, rtol: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("lengths differ: {} vs {}", got.len(), want.len()));
    }
    match worst_entry(got, want, atol, rtol) {
        None => Ok(()),
        Some(idx) => Err(describe(
            &format!("entry {idx}"),
            got[idx],
            want[idx],
            atol,
            rtol,
        )),
    }
}

/// The floor of [`entry_rel`], as a fraction of the RMS of `want`: entries near zero come from
/// cancellation, and their rounding error scales with the size of the terms (about the RMS),
/// not with the entry itself.
pub(crate) const RMS_FLOOR: f64 = 1e-2;

/// The largest entry-wise relative error `|got_k − want_k| / (|want_k| + RMS_FLOOR·rms(want))`;
/// infinite for a NaN error or unequal lengths. Unlike `max|got − want| / max|want|`, an entry
/// 100× smaller than the typical one is held to a 100× smaller absolute error.
pub(crate) fn entry_rel(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    if want.is_empty() {
        return 0.0;
    }
    let rms = (want.iter().map(|w| w * w).sum::<f64>() / want.len() as f64).sqrt();
    let floor = (RMS_FLOOR * rms).max(f64::MIN_POSITIVE);
    got.iter().zip(want).fold(0.0, |worst, (g, w)| {
        let err = (g - w).abs() / (w.abs() + floor);
        if err.is_nan() {
            f64::INFINITY
        } else {
            worst.max(err)
        }
    })
}
