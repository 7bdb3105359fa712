//! The ε-annealing schedule, exactly as geomloss computes it (numpy `arange` semantics).

use crate::error::{Error, Result};
use crate::kernel::Real;
use crate::numpy_math::{np_exp, np_log};

/// The most ε-steps a schedule may have. The reference settings take about 40; a `scaling`
/// very close to 1 (or a blur far below the diameter) would otherwise run for hours or
/// allocate without bound.
pub const MAX_SCHEDULE_STEPS: usize = 100_000;

/// Diagonal of the bounding box of `x ∪ y` (`‖max − min‖₂` per coordinate) and the box's
/// center (used to shift the clouds before the kernels).
///
/// The norm is summed exactly as torch's CPU `vector_norm` does on AVX2 machines (geomloss's
/// `max_diameter` calls it), so the schedule matches geomloss to the last bit: lanes of 4 (f64)
/// or 8 (f32) squares accumulated with fused multiply-adds, the lanes added in order, then the
/// remaining coordinates fused-multiply-added one by one.
pub(crate) fn bounding_box<T: Real>(x: &[T], y: &[T], dim: usize) -> (f64, Vec<T>) {
    let mut lo = vec![T::from_f64(f64::INFINITY); dim];
    let mut hi = vec![T::NEG_INFINITY; dim];
    for p in x.chunks_exact(dim).chain(y.chunks_exact(dim)) {
        for k in 0..dim {
            if p[k] < lo[k] {
                lo[k] = p[k];
            }
            if p[k] > hi[k] {
                hi[k] = p[k];
            }
        }
    }
    let sides: Vec<T> = lo.iter().zip(&hi).map(|(&l, &h)| h - l).collect();
    let center = lo
        .iter()
        .zip(&sides)
        .map(|(&l, &s)| l + s * T::from_f64(0.5))
        .collect();
    (torch_norm(&sides).to_f64(), center)
}

/// torch's `binary_kernel_reduce_lastdim` 2-norm (AVX2 lane widths: 32 bytes).
fn torch_norm<T: Real>(v: &[T]) -> T {
    let lanes = 32 / std::mem::size_of::<T>();
    let mut acc = vec![T::ZERO; lanes];
    let body = v.len() - v.len() % lanes;
    for chunk in v[..body].chunks_exact(lanes) {
        for (a, &s) in acc.iter_mut().zip(chunk) {
            *a = s.madd::<true>(s, *a);
        }
    }
    let mut total = acc[0];
    for &a in &acc[1..] {
        total += a;
    }
    for &s in &v[body..] {
        total = s.madd::<true>(s, total);
    }
    total.sqrt()
}

/// The length of numpy's `arange(start, stop, step)`: `ceil((stop − start)/step)`, or 0 when
/// that is not a positive finite number (an infinite length is reported as `f64::INFINITY`).
fn arange_len(start: f64, stop: f64, step: f64) -> f64 {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len <= 0.0 {
        0.0
    } else {
        len
    }
}

/// numpy's `arange(start, stop, step)` for floats: length `ceil((stop − start)/step)`, first
/// value `start`, second `start + step`, then `start + i·δ` with `δ = (start + step) − start`.
/// The caller bounds the length (see [`epsilon_schedule`]); an infinite one gives an empty list.
pub(crate) fn numpy_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = arange_len(start, stop, step);
    if !len.is_finite() || len <= 0.0 {
        return Vec::new();
    }
    let len = len as usize;
    let second = start + step;
    let delta = second - start;
    (0..len)
        .map(|i| match i {
            0 => start,
            1 => second,
            _ => start + i as f64 * delta,
        })
        .collect()
}

/// geomloss's `epsilon_schedule`: `[diam^p] + [exp(e) for e in arange(p ln diam, p ln blur,
/// p ln scaling)] + [blur^p]`, with numpy's `exp` and `log` (see [`crate::numpy_math`]).
///
/// A zero diameter (all points identical) would make geomloss divide by zero; the schedule is
/// then `[blur^p, blur^p]`.
///
/// # Errors
/// [`Error::ScheduleTooLong`] when the schedule would have more than [`MAX_SCHEDULE_STEPS`]
/// entries (its length is about `ln(diameter / blur) / ln(1 / scaling)`).
pub(crate) fn epsilon_schedule(p: u32, diameter: f64, blur: f64, scaling: f64) -> Result<Vec<f64>> {
    let pf = p as f64;
    let first = diameter.powi(p as i32);
    let last = blur.powi(p as i32);
    if first <= 0.0 {
        return Ok(vec![last, last]);
    }
    let (start, stop, step) = (
        pf * np_log(diameter),
        pf * np_log(blur),
        pf * np_log(scaling),
    );
    let steps = arange_len(start, stop, step) + 2.0;
    if steps > MAX_SCHEDULE_STEPS as f64 {
        return Err(Error::ScheduleTooLong {
            steps,
            diameter,
            blur,
            scaling,
        });
    }
    let mut eps = vec![first];
    eps.extend(numpy_arange(start, stop, step).into_iter().map(np_exp));
    eps.push(last);
    Ok(eps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arange_uses_numpy_length_and_delta() {
        assert_eq!(numpy_arange(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75]);
        assert_eq!(numpy_arange(1.0, 0.0, -0.3).len(), 4);
        assert!(numpy_arange(0.0, 1.0, -0.5).is_empty());
        // value_i = start + i·δ with δ = (start+step) − start, not start + i·step
        let (start, step) = (0.1_f64.ln(), 0.9_f64.ln());
        let delta = (start + step) - start;
        assert_eq!(numpy_arange(start, -3.0, step)[5], start + 5.0 * delta);
    }

    #[test]
    fn schedule_starts_at_diameter_and_ends_at_blur() {
        let e = epsilon_schedule(2, 3.0, 0.05, 0.9).expect("schedule");
        assert_eq!(e[0], 9.0);
        assert_eq!(*e.last().expect("nonempty"), 0.05_f64.powi(2));
        assert!((e[1] - 9.0).abs() < 1e-12);
        assert!(e.windows(2).skip(1).all(|w| w[1] < w[0]));
    }

    #[test]
    fn schedule_of_a_small_diameter_has_two_entries() {
        assert_eq!(
            epsilon_schedule(1, 0.01, 0.05, 0.5).expect("schedule"),
            vec![0.01, 0.05]
        );
        assert_eq!(
            epsilon_schedule(2, 0.0, 0.1, 0.5).expect("schedule"),
            vec![0.1_f64.powi(2); 2]
        );
    }

    #[test]
    fn a_scaling_close_to_one_is_an_error_not_a_huge_schedule() {
        // ln(100 / 0.05) / -ln(1 - 1e-9) ≈ 7.6e9 steps
        let err = epsilon_schedule(2, 100.0, 0.05, 1.0 - 1e-9).expect_err("too long");
        let msg = err.to_string();
        assert!(matches!(err, Error::ScheduleTooLong { .. }), "{msg}");
        assert!(msg.contains("scaling 0.999999999"), "{msg}");
        // the largest scaling that fits at this diameter and blur still works
        let fits = epsilon_schedule(2, 100.0, 0.05, 0.9999).expect("76 000 steps fit");
        assert!(fits.len() <= MAX_SCHEDULE_STEPS);
    }

    #[test]
    fn bounding_box_diagonal_and_center() {
        let x = [0.0_f64, 0.0, 1.0, 2.0];
        let y = [3.0_f64, -2.0];
        let (diam, center) = bounding_box(&x, &y, 2);
        assert_eq!(diam, 5.0);
        assert_eq!(center, vec![1.5, 0.0]);
    }
}
