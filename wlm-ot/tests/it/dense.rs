//! A dense f64 reference (materialised cost matrices, geomloss's algorithm written plainly) and
//! a proptest that the online kernel agrees with it.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use wlm_ot::{sinkhorn_weighted, SinkhornConfig};

use crate::common::{tensor, values};

/// Output of [`dense_sinkhorn`].
pub(crate) struct Dense {
    pub(crate) value: f64,
    pub(crate) grad_x: Vec<f64>,
    pub(crate) grad_y: Vec<f64>,
    pub(crate) f_ba: Vec<f64>,
    pub(crate) g_ab: Vec<f64>,
    pub(crate) f_aa: Vec<f64>,
    pub(crate) g_bb: Vec<f64>,
    pub(crate) eps_list: Vec<f64>,
}

/// Squared distances, `n × m`: for `p = 2` in geomloss's expanded form `|x|² − 2 x·y + |y|²`
/// (the kernel's dot-product form rounds alike); for `p = 1` as `Σ (x − y)²` like the kernel
/// (the expanded form loses digits for pairs closer than ~1e-4·|x|, where the cost's gradient
/// `(x − y)/|x − y|` amplifies them).
fn sq_dist(x: &[f64], y: &[f64], d: usize, p: u32) -> Vec<Vec<f64>> {
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>();
    x.chunks(d)
        .map(|xi| {
            y.chunks(d)
                .map(|yj| {
                    if p == 1 {
                        xi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum()
                    } else {
                        let dot: f64 = xi.iter().zip(yj).map(|(a, b)| a * b).sum();
                        norm(xi) - 2.0 * dot + norm(yj)
                    }
                })
                .collect()
        })
        .collect()
}

fn cost(dist: &[Vec<f64>], p: u32) -> Vec<Vec<f64>> {
    dist.iter()
        .map(|row| {
            row.iter()
                .map(|&d2| {
                    if p == 1 {
                        d2.max(1e-8).sqrt()
                    } else {
                        d2 / 2.0
                    }
                })
                .collect()
        })
        .collect()
}

fn transpose(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..m[0].len())
        .map(|j| m.iter().map(|row| row[j]).collect())
        .collect()
}

/// `−ε log Σ_j exp(h_j − C_ij/ε)` per row.
fn softmin(eps: f64, c: &[Vec<f64>], h: &[f64]) -> Vec<f64> {
    c.iter()
        .map(|row| {
            let z: Vec<f64> = row.iter().zip(h).map(|(cij, hj)| hj - cij / eps).collect();
            let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            -eps * (max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln())
        })
        .collect()
}

fn logits(log_w: &[f64], pot: &[f64], eps: f64) -> Vec<f64> {
    log_w.iter().zip(pot).map(|(l, g)| l + g / eps).collect()
}

fn schedule(p: u32, diam: f64, blur: f64, scaling: f64) -> Vec<f64> {
    let last = blur.powi(p as i32);
    if diam == 0.0 {
        return vec![last, last];
    }
    let (start, stop, step) = (
        p as f64 * diam.ln(),
        p as f64 * blur.ln(),
        p as f64 * scaling.ln(),
    );
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    let delta = (start + step) - start;
    let mut eps = vec![diam.powi(p as i32)];
    for i in 0..len {
        let e = match i {
            0 => start,
            1 => start + step,
            _ => start + i as f64 * delta,
        };
        eps.push(e.exp());
    }
    eps.push(last);
    eps
}

/// `a_i Σ_j P_ij ∇₁C(x_i, y_j)` with `P` the softmax of `h_j − C_ij/ε`, row-major `n × d`.
fn envelope(x: &[f64], y: &[f64], d: usize, p: u32, eps: f64, h: &[f64], w: &[f64]) -> Vec<f64> {
    let dist = sq_dist(x, y, d, p);
    let c = cost(&dist, p);
    let mut out = Vec::new();
    for (i, xi) in x.chunks(d).enumerate() {
        let z: Vec<f64> = c[i].iter().zip(h).map(|(cij, hj)| hj - cij / eps).collect();
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let total: f64 = e.iter().sum();
        for k in 0..d {
            let mut acc = 0.0;
            for (j, yj) in y.chunks(d).enumerate() {
                let grad_c = if p == 2 {
                    xi[k] - yj[k]
                } else if dist[i][j] >= 1e-8 {
                    (xi[k] - yj[k]) / dist[i][j].sqrt()
                } else {
                    0.0
                };
                acc += e[j] / total * grad_c;
            }
            out.push(w[i] * acc);
        }
    }
    out
}

/// geomloss's debiased Sinkhorn, plainly.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_sinkhorn(
    x: &[f64],
    y: &[f64],
    d: usize,
    a: &[f64],
    b: &[f64],
    p: u32,
    blur: f64,
    scaling: f64,
) -> Dense {
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    for pt in x.chunks(d).chain(y.chunks(d)) {
        for k in 0..d {
            lo[k] = lo[k].min(pt[k]);
            hi[k] = hi[k].max(pt[k]);
        }
    }
    let diam = lo
        .iter()
        .zip(&hi)
        .map(|(l, h)| (h - l) * (h - l))
        .sum::<f64>()
        .sqrt();
    let eps_list = schedule(p, diam, blur, scaling);
    let c_xy = cost(&sq_dist(x, y, d, p), p);
    let c_yx = transpose(&c_xy);
    let c_xx = cost(&sq_dist(x, x, d, p), p);
    let c_yy = cost(&sq_dist(y, y, d, p), p);
    let log_a: Vec<f64> = a.iter().map(|w| w.ln()).collect();
    let log_b: Vec<f64> = b.iter().map(|w| w.ln()).collect();

    let e0 = eps_list[0];
    let mut g_ab = softmin(e0, &c_yx, &log_a);
    let mut f_ba = softmin(e0, &c_xy, &log_b);
    let mut f_aa = softmin(e0, &c_xx, &log_a);
    let mut g_bb = softmin(e0, &c_yy, &log_b);
    let avg = |old: &[f64], new: &[f64]| -> Vec<f64> {
        old.iter().zip(new).map(|(o, n)| 0.5 * (o + n)).collect()
    };
    for &eps in &eps_list {
        let ft_ba = softmin(eps, &c_xy, &logits(&log_b, &g_ab, eps));
        let gt_ab = softmin(eps, &c_yx, &logits(&log_a, &f_ba, eps));
        let ft_aa = softmin(eps, &c_xx, &logits(&log_a, &f_aa, eps));
        let gt_bb = softmin(eps, &c_yy, &logits(&log_b, &g_bb, eps));
        f_ba = avg(&f_ba, &ft_ba);
        g_ab = avg(&g_ab, &gt_ab);
        f_aa = avg(&f_aa, &ft_aa);
        g_bb = avg(&g_bb, &gt_bb);
    }
    let eps = *eps_list.last().expect("nonempty");
    let (h_xy, h_yx) = (logits(&log_b, &g_ab, eps), logits(&log_a, &f_ba, eps));
    let (h_xx, h_yy) = (logits(&log_a, &f_aa, eps), logits(&log_b, &g_bb, eps));
    let fin_ba = softmin(eps, &c_xy, &h_xy);
    let fin_ab = softmin(eps, &c_yx, &h_yx);
    let fin_aa = softmin(eps, &c_xx, &h_xx);
    let fin_bb = softmin(eps, &c_yy, &h_yy);
    let value: f64 = a
        .iter()
        .zip(fin_ba.iter().zip(&fin_aa))
        .map(|(w, (f, g))| w * (f - g))
        .sum::<f64>()
        + b.iter()
            .zip(fin_ab.iter().zip(&fin_bb))
            .map(|(w, (f, g))| w * (f - g))
            .sum::<f64>();
    let sub =
        |u: Vec<f64>, v: Vec<f64>| -> Vec<f64> { u.iter().zip(&v).map(|(p, q)| p - q).collect() };
    let grad_x = sub(
        envelope(x, y, d, p, eps, &h_xy, a),
        envelope(x, x, d, p, eps, &h_xx, a),
    );
    let grad_y = sub(
        envelope(y, x, d, p, eps, &h_yx, b),
        envelope(y, y, d, p, eps, &h_yy, b),
    );
    Dense {
        value,
        grad_x,
        grad_y,
        f_ba: fin_ba,
        g_ab: fin_ab,
        f_aa: fin_aa,
        g_bb: fin_bb,
        eps_list,
    }
}

fn max_abs_diff(u: &[f64], v: &[f64]) -> f64 {
    u.iter()
        .zip(v)
        .fold(0.0_f64, |m, (p, q)| m.max((p - q).abs()))
}

/// `PROPTEST_CASES` from the environment, or `default`.
fn env_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `PROPTEST_RNG_SEED` from the environment, or `default`.
fn env_seed(default: u64) -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random problem for the dense comparison.
#[derive(Debug, Clone)]
struct Case {
    n: usize,
    m: usize,
    d: usize,
    p: u32,
    blur: f64,
    scaling: f64,
    x: Vec<f64>,
    y: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// Random problem: sizes, dimension, exponent, blur, scaling, clouds and weights.
fn problem() -> impl Strategy<Value = Case> {
    (
        1usize..64,
        1usize..64,
        1usize..=5,
        1u32..=2,
        0.02f64..1.0,
        0.5f64..0.95,
        any::<bool>(),
    )
        .prop_flat_map(|(n, m, d, p, blur, scaling, weighted)| {
            let raw_w = |k: usize| {
                if weighted {
                    prop::collection::vec(0.1f64..1.0, k).boxed()
                } else {
                    Just(vec![1.0; k]).boxed()
                }
            };
            (
                Just((n, m, d, p, blur, scaling)),
                prop::collection::vec(-2.0f64..2.0, n * d),
                prop::collection::vec(-1.0f64..3.0, m * d),
                raw_w(n),
                raw_w(m),
            )
        })
        .prop_map(|((n, m, d, p, blur, scaling), x, y, wa, wb)| {
            let norm = |w: Vec<f64>| {
                let s: f64 = w.iter().sum();
                w.into_iter().map(|v| v / s).collect::<Vec<f64>>()
            };
            Case {
                n,
                m,
                d,
                p,
                blur,
                scaling,
                x,
                y,
                a: norm(wa),
                b: norm(wb),
            }
        })
}

proptest! {
    // `PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the count and the seed for long runs.
    #![proptest_config(ProptestConfig { cases: env_cases(96), rng_seed: RngSeed::Fixed(env_seed(101)), ..ProptestConfig::default() })]

    #[test]
    fn online_kernel_matches_the_dense_reference(case in problem()) {
        let Case { n, m, d, p, blur, scaling, x, y, a, b } = case;
        let want = dense_sinkhorn(&x, &y, d, &a, &b, p, blur, scaling);
        let config = SinkhornConfig { p, blur, scaling, ..Default::default() };
        let dev = candle_core::Device::Cpu;
        let at = candle_core::Tensor::from_slice(&a, n, &dev).expect("a");
        let bt = candle_core::Tensor::from_slice(&b, m, &dev).expect("b");
        let got = sinkhorn_weighted(&at, &tensor(&x, n, d), &bt, &tensor(&y, m, d), &config)
            .expect("sinkhorn");
        // The crate uses numpy's exp/log (and torch's norm) for the schedule, the reference
        // libm's: equal to a few ulp.
        prop_assert_eq!(got.eps_list.len(), want.eps_list.len());
        for (g, w) in got.eps_list.iter().zip(&want.eps_list) {
            prop_assert!(((g - w) / w).abs() <= 1e-13, "eps {} vs {}", g, w);
        }
        // Rounding scale: the potentials are O(diameter^p).
        let scale = got.diameter.powi(p as i32).max(blur.powi(p as i32));
        prop_assert!((got.value - want.value).abs() <= 1e-11 * scale,
            "value {} vs dense {}", got.value, want.value);
        for (g, w) in [(&got.f_ba, &want.f_ba), (&got.g_ab, &want.g_ab),
                       (&got.f_aa, &want.f_aa), (&got.g_bb, &want.g_bb)] {
            let diff = max_abs_diff(&values(g), w);
            prop_assert!(diff <= 1e-11 * scale, "potential differs by {:e}", diff);
        }
        // Per component |got − want| ≤ 1e-9·max(|want|, ‖want‖₂) + floor: a component far below
        // the gradient's norm (e.g. 1e-17 next to O(1e-2) ones) carries only the rounding of the
        // whole sum, so its relative error means nothing; the floor (1e-12 of the potentials'
        // scale per point) covers gradients that vanish altogether (x = y).
        let norm = want.grad_x.iter().chain(&want.grad_y).map(|g| g * g).sum::<f64>().sqrt();
        let floor = 1e-12 * scale / n.max(m) as f64;
        for (name, g, w) in [("x", values(&got.grad_x), &want.grad_x), ("y", values(&got.grad_y), &want.grad_y)] {
            for (idx, (a, b)) in g.iter().zip(w.iter()).enumerate() {
                prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(norm) + floor,
                    "grad_{}[{}] = {:e} vs dense {:e} (norm {:e})", name, idx, a, b, norm);
            }
        }
    }
}
