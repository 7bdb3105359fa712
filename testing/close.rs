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
