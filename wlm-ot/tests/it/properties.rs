//! Properties of the divergence: zero on the diagonal, non-negative, symmetric, translation
//! invariant; with `converge_final` the gradient is the derivative of the value.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use wlm_ot::{sinkhorn, FinalConvergence, SinkhornConfig};

use crate::common::{rng, tensor, uniform_cloud, values};

fn value(x: &[f64], n: usize, y: &[f64], m: usize, d: usize, config: &SinkhornConfig) -> f64 {
    sinkhorn(&tensor(x, n, d), &tensor(y, m, d), config)
        .expect("sinkhorn")
        .value
}

fn cloud_pair() -> impl Strategy<Value = (usize, usize, usize, u32, Vec<f64>, Vec<f64>)> {
    (1usize..40, 1usize..40, 1usize..=4, 1u32..=2).prop_flat_map(|(n, m, d, p)| {
        (
            Just((n, m, d, p)),
            prop::collection::vec(-1.0f64..1.0, n * d),
            prop::collection::vec(-0.5f64..1.5, m * d),
        )
            .prop_map(|((n, m, d, p), x, y)| (n, m, d, p, x, y))
    })
}

#[test]
fn divergence_of_a_cloud_with_itself_is_zero() {
    let mut r = rng(11);
    for (n, d, p) in [(1, 2, 2), (17, 3, 1), (200, 2, 2), (64, 5, 1)] {
        let x = uniform_cloud(&mut r, n, d, -1.0, 1.0);
        let config = SinkhornConfig {
            p,
            ..Default::default()
        };
        let s = value(&x, n, &x, n, d, &config);
        assert!(s.abs() < 1e-14, "n {n} d {d} p {p}: S(x, x) = {s:e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: RngSeed::Fixed(102), ..ProptestConfig::default() })]

    #[test]
    fn divergence_is_nonnegative_and_symmetric((n, m, d, p, x, y) in cloud_pair()) {
        let config = SinkhornConfig { p, blur: 0.1, ..Default::default() };
        let s_xy = value(&x, n, &y, m, d, &config);
        let s_yx = value(&y, m, &x, n, d, &config);
        prop_assert!(s_xy >= -1e-12, "S = {:e}", s_xy);
        prop_assert!((s_xy - s_yx).abs() <= 1e-12 * (1.0 + s_xy.abs()), "{} vs {}", s_xy, s_yx);
    }

    #[test]
    fn divergence_is_translation_invariant(
        (n, m, d, p, x, y) in cloud_pair(),
        shift in -5.0f64..5.0,
    ) {
        let config = SinkhornConfig { p, blur: 0.1, scaling: 0.7, ..Default::default() };
        let s = value(&x, n, &y, m, d, &config);
        let xs: Vec<f64> = x.iter().map(|v| v + shift).collect();
        let ys: Vec<f64> = y.iter().map(|v| v + shift).collect();
        let s_shifted = value(&xs, n, &ys, m, d, &config);
        prop_assert!((s - s_shifted).abs() <= 1e-11 * (1.0 + s.abs()), "{} vs {}", s, s_shifted);
    }
}

#[test]
fn converged_gradient_matches_central_finite_differences() {
    let mut r = rng(5);
    for p in [1, 2] {
        let (n, m, d) = (6, 5, 2);
        let x = uniform_cloud(&mut r, n, d, 0.0, 1.0);
        let y = uniform_cloud(&mut r, m, d, 0.3, 1.3);
        let config = SinkhornConfig {
            p,
            blur: 0.3,
            converge_final: Some(FinalConvergence {
                tolerance: 1e-14,
                max_iterations: 100_000,
            }),
            ..Default::default()
        };
        let out = sinkhorn(&tensor(&x, n, d), &tensor(&y, m, d), &config).expect("sinkhorn");
        assert!(
            out.final_change <= 1e-14,
            "not converged: {:e}",
            out.final_change
        );
        let grad_x = values(&out.grad_x);
        let grad_y = values(&out.grad_y);
        let h = 1e-5;
        let fd = |cloud: &[f64], k: usize, of_x: bool| {
            let mut plus = cloud.to_vec();
            let mut minus = cloud.to_vec();
            plus[k] += h;
            minus[k] -= h;
            let (vp, vm) = if of_x {
                (
                    value(&plus, n, &y, m, d, &config),
                    value(&minus, n, &y, m, d, &config),
                )
            } else {
                (
                    value(&x, n, &plus, m, d, &config),
                    value(&x, n, &minus, m, d, &config),
                )
            };
            (vp - vm) / (2.0 * h)
        };
        let scale = grad_x
            .iter()
            .chain(&grad_y)
            .fold(0.0_f64, |s, g| s.max(g.abs()));
        for (k, g) in grad_x.iter().enumerate() {
            let err = (fd(&x, k, true) - g).abs();
            assert!(
                err < 1e-6 * scale,
                "p {p}: dS/dx[{k}] fd vs envelope differ by {err:e}"
            );
        }
        for (k, g) in grad_y.iter().enumerate() {
            let err = (fd(&y, k, false) - g).abs();
            assert!(
                err < 1e-6 * scale,
                "p {p}: dS/dy[{k}] fd vs envelope differ by {err:e}"
            );
        }
    }
}

#[test]
fn f32_final_convergence_stops_at_the_precision_floor() {
    let mut r = rng(7);
    let (n, m, d) = (20, 15, 2);
    let x = tensor(&uniform_cloud(&mut r, n, d, 0.0, 1.0), n, d)
        .to_dtype(candle_core::DType::F32)
        .expect("f32");
    let y = tensor(&uniform_cloud(&mut r, m, d, 0.3, 1.3), m, d)
        .to_dtype(candle_core::DType::F32)
        .expect("f32");
    let config = SinkhornConfig {
        blur: 0.2,
        converge_final: Some(FinalConvergence::default()),
        ..Default::default()
    };
    let out = sinkhorn(&x, &y, &config).expect("sinkhorn");
    assert!(
        out.extra_iterations < 2_000,
        "{} extra iterations for a 1e-12 tolerance in f32",
        out.extra_iterations
    );
    assert!(out.final_change < 1e-5, "{:e}", out.final_change);
}

#[test]
fn geomloss_schedule_gradient_is_not_the_derivative_of_its_value() {
    // The documented property of the reference: one pass at the final ε.
    let mut r = rng(6);
    let (n, m, d) = (8, 8, 2);
    let x = uniform_cloud(&mut r, n, d, 0.0, 1.0);
    let y = uniform_cloud(&mut r, m, d, 0.5, 1.5);
    let config = SinkhornConfig {
        blur: 0.05,
        ..Default::default()
    };
    let out = sinkhorn(&tensor(&x, n, d), &tensor(&y, m, d), &config).expect("sinkhorn");
    let grad = values(&out.grad_x);
    let h = 1e-6;
    let mut worst = 0.0_f64;
    for k in 0..n * d {
        let mut plus = x.clone();
        let mut minus = x.clone();
        plus[k] += h;
        minus[k] -= h;
        let fd =
            (value(&plus, n, &y, m, d, &config) - value(&minus, n, &y, m, d, &config)) / (2.0 * h);
        worst = worst.max((fd - grad[k]).abs());
    }
    let scale = grad.iter().fold(0.0_f64, |s, g| s.max(g.abs()));
    assert!(worst > 1e-4 * scale, "unexpectedly exact: {worst:e}");
    assert!(out.final_change > 1e-8, "schedule unexpectedly converged");
}
