//! The AVX2 operations against libm, and every SIMD level against the portable kernel on the
//! edge cases of 8- and 4-lane vectors.

use super::*;
use crate::kernel::dispatch::{available_simd, run_passes_with, SimdLevel};
use crate::kernel::{Cloud, Cost, PassSpec, Real};

/// `#[test] fn $name` that runs the `#[target_feature(enable = "avx2,fma")]` function `$check`
/// where the CPU has AVX2 and FMA (and passes elsewhere).
macro_rules! avx2_test {
    ($name:ident => $check:ident) => {
        #[test]
        fn $name() {
            if !supported() {
                return;
            }
            // SAFETY: AVX2 and FMA were detected above.
            unsafe { $check() }
        }
    };
}

avx2_test!(exp2_is_within_a_few_ulp_of_libm_and_is_zero_below_the_normal_range => check_exp2);

#[target_feature(enable = "avx2,fma")]
fn check_exp2() {
    let all32 = ops32::mask_at(&[], 0);
    let all64 = ops64::mask_at(&[], 0);
    let (mut worst32, mut worst64) = (0.0_f64, 0.0_f64);
    for k in 0..=200_000 {
        // f32 down to its normal range, f64 over the same span and beyond.
        let t = -126.0 * k as f64 / 200_000.0;
        let t32 = t as f32;
        let mut out32 = [0.0f32; 8];
        ops32::store(&mut out32, ops32::exp2_masked(ops32::splat(t32), all32));
        let want32 = (t32 as f64).exp2();
        worst32 = worst32.max(((out32[3] as f64 - want32) / want32).abs());
        for t in [t, 8.0 * t] {
            let mut out64 = [0.0f64; 4];
            ops64::store(&mut out64, ops64::exp2_masked(ops64::splat(t), all64));
            worst64 = worst64.max(((out64[1] - t.exp2()) / t.exp2()).abs());
        }
    }
    assert!(worst32 < 2.0 * f32::EPSILON as f64, "f32 worst {worst32:e}");
    assert!(worst64 < 4.0 * f64::EPSILON, "f64 worst {worst64:e}");
    // Below the normal range, including −∞ and huge magnitudes, exactly 0 (never garbage).
    for t in [
        -126.5,
        -127.0,
        -128.0,
        -200.0,
        -1e30,
        f32::MIN,
        f32::NEG_INFINITY,
    ] {
        let mut out = [1.0f32; 8];
        ops32::store(&mut out, ops32::exp2_masked(ops32::splat(t), all32));
        assert!(out.iter().all(|&v| v == 0.0), "f32 2^{t} = {out:?}");
    }
    for t in [
        -1022.5,
        -1023.0,
        -1100.0,
        -1e300,
        f64::MIN,
        f64::NEG_INFINITY,
    ] {
        let mut out = [1.0f64; 4];
        ops64::store(&mut out, ops64::exp2_masked(ops64::splat(t), all64));
        assert!(out.iter().all(|&v| v == 0.0), "f64 2^{t} = {out:?}");
    }
    // A compare mask keeps exactly its lanes.
    let t = [0.0f32, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0];
    let tv = ops32::load(&t);
    let mut out = [0.0f32; 8];
    ops32::store(
        &mut out,
        ops32::exp2_masked(tv, ops32::gt(tv, ops32::splat(-3.5))),
    );
    let want = [1.0, 0.5, 0.25, 0.125, 0.0, 0.0, 0.0, 0.0];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() <= f32::EPSILON * w, "{out:?}");
    }
    assert!(ops32::any(ops32::gt(tv, ops32::splat(-7.5))));
    assert!(!ops32::any(ops32::gt(tv, ops32::splat(0.0))));
    let t = [0.0f64, -1.0, -2.0, -3.0];
    let tv = ops64::load(&t);
    let mut out = [0.0f64; 4];
    ops64::store(
        &mut out,
        ops64::exp2_masked(tv, ops64::gt(tv, ops64::splat(-1.5))),
    );
    let want = [1.0, 0.5, 0.0, 0.0];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() <= 4.0 * f64::EPSILON * w, "{out:?}");
    }
    assert!(!ops64::any(ops64::gt(tv, ops64::splat(0.0))));
}

avx2_test!(horizontal_reductions_see_every_lane => check_reductions);

#[target_feature(enable = "avx2,fma")]
fn check_reductions() {
    for l in 0..8 {
        let mut v = [1.0f32; 8];
        v[l] = 100.0;
        assert_eq!(ops32::reduce_add(ops32::load(&v)), 107.0);
        assert_eq!(ops32::reduce_max(ops32::load(&v)), 100.0);
    }
    for l in 0..4 {
        let mut v = [f64::NEG_INFINITY; 4];
        v[l] = -3.0;
        assert_eq!(ops64::reduce_max(ops64::load(&v)), -3.0);
        let mut v = [1.0f64; 4];
        v[l] = 100.0;
        assert_eq!(ops64::reduce_add(ops64::load(&v)), 103.0);
    }
}

avx2_test!(rsqrt_newton_square_root_is_accurate_to_single_precision => check_sqrt);

#[target_feature(enable = "avx2,fma")]
fn check_sqrt() {
    let mut worst = 0.0_f64;
    for k in 0..100_000 {
        let d2 = (1e-8_f64 * 1.0002_f64.powi(k)) as f32;
        let mut out = [0.0f32; 8];
        let got = ops32::add_scaled_sqrt(ops32::splat(d2), ops32::splat(1.0), ops32::splat(0.0));
        ops32::store(&mut out, got);
        let want = (d2 as f64).sqrt();
        worst = worst.max(((out[7] as f64 - want) / want).abs());
    }
    eprintln!("rsqrtps + one Newton step: worst relative error {worst:e}");
    assert!(worst < 3.0 * f32::EPSILON as f64, "worst {worst:e}");
}

/// Deterministic pseudo-random values in [0, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    crate::kernel::lcg_values(
        n,
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03,
    )
}

/// One pass at `level` in `T`; the values and, with `with_grad`, the gradient sums (in f64).
#[allow(clippy::too_many_arguments)]
fn pass<T: Real>(
    level: SimdLevel,
    x: &[f64],
    y: &[f64],
    dim: usize,
    log_w: &[f64],
    pot: &[f64],
    eps: f64,
    cost: Cost,
    with_grad: bool,
) -> (Vec<f64>, Vec<f64>) {
    let to_t = |v: &[f64]| v.iter().map(|&a| T::from_f64(a)).collect::<Vec<T>>();
    let center = to_t(&vec![0.5; dim]);
    let rows = Cloud::new(&to_t(x), dim, &center);
    let cols = Cloud::new(&to_t(y), dim, &center);
    let (log_w, pot) = (to_t(log_w), to_t(pot));
    let n_rows = x.len() / dim;
    let mut out = vec![T::ZERO; n_rows];
    let mut grad = vec![T::ZERO; n_rows * dim];
    let spec = PassSpec {
        rows: &rows,
        cols: &cols,
        col_log_weights: &log_w,
        col_potential: Some(&pot),
        out: &mut out,
        grad: with_grad.then_some(grad.as_mut_slice()),
    };
    run_passes_with(level, vec![spec], eps, cost);
    let back = |v: &[T]| v.iter().map(|a| a.to_f64()).collect::<Vec<f64>>();
    (back(&out), back(&grad))
}

#[test]
fn every_level_matches_the_portable_kernel_on_ragged_sizes_padding_and_tiny_terms() {
    // Column counts that are not multiples of 4, 8 or 16 (ragged padding, one to three tiles);
    // a few zero weights (`−∞` logits inside the data, not only in the padding); a cluster of
    // columns far from the rows, whose logits lie thousands of binary orders below the maximum
    // at small ε (below the clamp of every exp2); dimensions 1–7 so that p = 1 runs both the
    // Newton square root (d ≤ 3) and the IEEE one (d > 3, and the any-dimension loop).
    let mut case = 0u64;
    let (mut worst32, mut worst32_grad) = (0.0_f64, 0.0_f64);
    for (n_rows, n_cols) in [(1, 1), (3, 5), (9, 13), (17, 37), (11, 1029), (5, 2053)] {
        for dim in [1, 2, 3, 4, 5, 7] {
            case += 1;
            let x = values(n_rows * dim, 3 * case);
            let mut y = values(n_cols * dim, 3 * case + 1);
            let far = n_cols / 3;
            for v in &mut y[..far * dim] {
                *v += 4.0;
            }
            let mut log_w = vec![-(n_cols as f64).ln(); n_cols];
            for j in (far..n_cols).step_by(7).skip(1) {
                log_w[j] = f64::NEG_INFINITY;
            }
            let pot: Vec<f64> = values(n_cols, 3 * case + 2)
                .iter()
                .map(|v| 0.01 * v)
                .collect();
            for eps in [0.002, 0.3] {
                for cost in [Cost::HalfSquaredEuclidean, Cost::Euclidean] {
                    for with_grad in [false, true] {
                        let (want, want_grad) = pass::<f64>(
                            SimdLevel::Generic,
                            &x,
                            &y,
                            dim,
                            &log_w,
                            &pot,
                            eps,
                            cost,
                            with_grad,
                        );
                        let what = format!(
                            "{n_rows}x{n_cols} d={dim} eps={eps} {cost:?} grad={with_grad}"
                        );
                        // f32 is judged against the portable kernel's own f32 error (both
                        // round the same logits, whose size sets the error).
                        // (The f64 and f32 calls differ only in `T`, which a closure cannot take.)
                        let (gen32, gen32_grad) = pass::<f32>(
                            SimdLevel::Generic,
                            &x,
                            &y,
                            dim,
                            &log_w,
                            &pot,
                            eps,
                            cost,
                            with_grad,
                        );
                        let err = |a: &[f64], b: &[f64]| {
                            a.iter()
                                .zip(b)
                                .map(|(a, b)| (a - b).abs())
                                .fold(0.0, f64::max)
                        };
                        let scale = want.iter().fold(eps, |m, w| m.max(w.abs()));
                        let gen_err = err(&gen32, &want) / scale;
                        let gen_grad_err = err(&gen32_grad, &want_grad);
                        for level in available_simd() {
                            let (got, got_grad) =
                                pass::<f64>(level, &x, &y, dim, &log_w, &pot, eps, cost, with_grad);
                            for (g, w) in got.iter().zip(&want) {
                                assert!(
                                    (g - w).abs() <= 1e-12 * w.abs().max(eps),
                                    "{level:?} f64 {what}: {g} vs {w}"
                                );
                            }
                            for (g, w) in got_grad.iter().zip(&want_grad) {
                                assert!(
                                    (g - w).abs() <= 1e-10,
                                    "{level:?} f64 {what}: grad {g} vs {w}"
                                );
                            }
                            let (got, got_grad) =
                                pass::<f32>(level, &x, &y, dim, &log_w, &pot, eps, cost, with_grad);
                            let e = err(&got, &want) / scale;
                            assert!(
                                e <= 4.0 * gen_err + 5e-7,
                                "{level:?} f32 {what}: value error {e:e} (portable {gen_err:e})"
                            );
                            let e_grad = err(&got_grad, &want_grad);
                            assert!(
                                e_grad <= 4.0 * gen_grad_err + 5e-6,
                                "{level:?} f32 {what}: gradient error {e_grad:e} \
                                 (portable {gen_grad_err:e})"
                            );
                            if level != SimdLevel::Generic {
                                worst32 = worst32.max(e);
                                worst32_grad = worst32_grad.max(e_grad);
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("f32 explicit kernels: worst value {worst32:e}, worst gradient {worst32_grad:e}");
}
