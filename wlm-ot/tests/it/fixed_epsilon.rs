//! The divergence op at one fixed temperature against a dense f64 reference written here, not
//! derived from the crate's solver: full `N × M` cost matrices, each of the three entropic
//! transport problems solved on its own by plain alternating Sinkhorn (log-sum-exp, no
//! ε-annealing, no averaging, no centring), and the gradient by central finite differences of
//! that reference.
//!
//! METHOD.md §3: `S = OT_ε(a, b) − ½ OT_ε(a, a) − ½ OT_ε(b, b)` with
//! `OT_ε(a, b) = min_π ⟨π, C⟩ + ε KL(π ‖ a ⊗ b) = max_{f,g} ⟨a, f⟩ + ⟨b, g⟩ − ε(⟨a ⊗ b, e^{(f ⊕ g − C)/ε}⟩ − 1)`.
//! The op's envelope gradient is the derivative of `S` only once its potentials have converged at
//! ε, so the op runs with `converge_final`; with geomloss's single pass at the final ε (the
//! default) it differs, and the test checks that the reference sees that difference.

use candle_core::Var;
use wlm_ot::{sinkhorn_divergence, FinalConvergence, SinkhornConfig};

use crate::common::{assert_close, check_close, rng, tensor, uniform_cloud, values};

/// `C(x_i, y_j)` row-major `n × m`: `½|x − y|²` (`p = 2`) or `sqrt(max(|x − y|², 1e-8))` (`p = 1`).
fn cost_matrix(x: &[f64], y: &[f64], dim: usize, p: u32) -> Vec<f64> {
    let mut c = Vec::new();
    for xi in x.chunks(dim) {
        for yj in y.chunks(dim) {
            let d2: f64 = xi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum();
            c.push(if p == 2 {
                0.5 * d2
            } else {
                d2.max(1e-8).sqrt()
            });
        }
    }
    c
}

fn log_sum_exp(terms: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = terms.clone().fold(f64::NEG_INFINITY, f64::max);
    max + terms.map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// `OT_ε(a, b)` for uniform weights on `n` and `m` points, cost `c` (`n × m`). Alternating
/// updates `f_i = −ε log Σ_j b_j e^{(g_j − C_ij)/ε}`, `g_j = −ε log Σ_i a_i e^{(f_i − C_ij)/ε}`
/// until no potential moves by more than `1e-15·(max C + ε)`. After a `g` update the plan
/// `π_ij = a_i b_j e^{(f_i + g_j − C_ij)/ε}` has exactly the column sums `b`, so the dual
/// objective is `⟨a, f⟩ + ⟨b, g⟩`; its row sums must equal `a` to 1e-12 (converged).
fn entropic_ot(c: &[f64], n: usize, m: usize, eps: f64) -> f64 {
    let (log_a, log_b) = (-(n as f64).ln(), -(m as f64).ln());
    let scale = c.iter().fold(0.0f64, |acc, v| acc.max(*v)) + eps;
    let (mut f, mut g) = (vec![0.0; n], vec![0.0; m]);
    let mut converged = false;
    for _ in 0..200_000 {
        let f_new: Vec<f64> = (0..n)
            .map(|i| -eps * log_sum_exp((0..m).map(|j| log_b + (g[j] - c[i * m + j]) / eps)))
            .collect();
        let g_new: Vec<f64> = (0..m)
            .map(|j| -eps * log_sum_exp((0..n).map(|i| log_a + (f_new[i] - c[i * m + j]) / eps)))
            .collect();
        let change = f_new
            .iter()
            .zip(&f)
            .chain(g_new.iter().zip(&g))
            .fold(0.0f64, |acc, (new, old)| acc.max((new - old).abs()));
        (f, g) = (f_new, g_new);
        if change <= 1e-15 * scale {
            converged = true;
            break;
        }
    }
    assert!(
        converged,
        "the dense reference did not converge at ε = {eps}"
    );
    for (i, fi) in f.iter().enumerate() {
        let row: f64 = (0..m)
            .map(|j| (log_a + log_b + (fi + g[j] - c[i * m + j]) / eps).exp())
            .sum();
        assert!(
            (row / log_a.exp() - 1.0).abs() < 1e-12,
            "row {i} sums to {row}"
        );
    }
    f.iter().sum::<f64>() / n as f64 + g.iter().sum::<f64>() / m as f64
}

/// The debiased divergence `OT_ε(x, y) − ½ OT_ε(x, x) − ½ OT_ε(y, y)`, uniform weights.
fn dense_divergence(x: &[f64], y: &[f64], dim: usize, p: u32, eps: f64) -> f64 {
    let (n, m) = (x.len() / dim, y.len() / dim);
    entropic_ot(&cost_matrix(x, y, dim, p), n, m, eps)
        - 0.5 * entropic_ot(&cost_matrix(x, x, dim, p), n, n, eps)
        - 0.5 * entropic_ot(&cost_matrix(y, y, dim, p), m, m, eps)
}

/// Central differences `(S(z + δe_k) − S(z − δe_k)) / 2δ` of the dense divergence in every
/// coordinate of `x` (`wrt_x`) or `y`.
fn finite_difference_gradient(
    x: &[f64],
    y: &[f64],
    dim: usize,
    p: u32,
    eps: f64,
    delta: f64,
    wrt_x: bool,
) -> Vec<f64> {
    let len = if wrt_x { x.len() } else { y.len() };
    (0..len)
        .map(|k| {
            let at = |shift: f64| {
                let (mut xs, mut ys) = (x.to_vec(), y.to_vec());
                if wrt_x {
                    xs[k] += shift;
                } else {
                    ys[k] += shift;
                }
                dense_divergence(&xs, &ys, dim, p, eps)
            };
            (at(delta) - at(-delta)) / (2.0 * delta)
        })
        .collect()
}

/// Value and `backward()` gradients of the op with respect to both clouds.
fn op(x: &[f64], y: &[f64], dim: usize, config: &SinkhornConfig) -> (f64, Vec<f64>, Vec<f64>) {
    let x_var = Var::from_tensor(&tensor(x, x.len() / dim, dim)).expect("x");
    let y_var = Var::from_tensor(&tensor(y, y.len() / dim, dim)).expect("y");
    let s = sinkhorn_divergence(x_var.as_tensor(), y_var.as_tensor(), config).expect("op");
    let grads = s.backward().expect("backward");
    (
        s.to_scalar::<f64>().expect("scalar"),
        values(grads.get(x_var.as_tensor()).expect("grad x")),
        values(grads.get(y_var.as_tensor()).expect("grad y")),
    )
}

/// Tolerances, for clouds in a box of diagonal `D ≤ 1.3·√2 ≈ 1.84` (costs up to
/// `C_max = D^p/p`):
/// - value: `|S_op − S_ref| ≤ 1e-12·(C_max + ε)`. The op stops when its potentials move by
///   less than 1e-14 per averaged update; the reference is converged to rounding.
/// - gradients: `|∇S_op − FD| ≤ 1e-7·u + 1e-6·|FD|` with `u = D^(p−1)/N` the scale of one
///   entry (`a_i` times a cost gradient). With `δ = 1e-5·D` the central difference errs by
///   `δ²/6·|S'''| ≈ δ²·u/ε²` (each x-derivative of the softmax brings `|∇C|/ε`), about 1e-8·u
///   at the smallest ε here, plus rounding `1e-16·C_max/δ ≈ 1e-11`, small next to 1e-7·u.
#[test]
fn converged_op_matches_a_dense_fixed_epsilon_reference_and_its_finite_differences() {
    let mut r = rng(31);
    let dim = 2;
    let (n, m) = (7, 5);
    let x = uniform_cloud(&mut r, n, dim, 0.0, 1.0);
    let y = uniform_cloud(&mut r, m, dim, 0.3, 1.3);
    // ε = blur^p: 0.09 and 0.0225 (p = 2), 0.2 (p = 1).
    for (p, blur) in [(2, 0.3), (2, 0.15), (1, 0.2)] {
        let eps = f64::powi(blur, p as i32);
        let diameter = 1.3f64.hypot(1.3);
        let c_max = diameter.powi(p as i32) / p as f64;
        let unit_x = diameter.powi(p as i32 - 1) / n as f64;
        let unit_y = diameter.powi(p as i32 - 1) / m as f64;
        let converged = SinkhornConfig {
            p,
            blur,
            scaling: 0.9,
            converge_final: Some(FinalConvergence {
                tolerance: 1e-14,
                max_iterations: 100_000,
            }),
        };
        let (value, grad_x, grad_y) = op(&x, &y, dim, &converged);
        let reference = dense_divergence(&x, &y, dim, p, eps);
        let value_tol = 1e-12 * (c_max + eps);
        eprintln!(
            "p {p} ε {eps}: op {value}, dense {reference}, diff {:e} (tol {value_tol:e})",
            value - reference
        );
        assert!(
            (value - reference).abs() <= value_tol,
            "p {p} ε {eps}: op value {value} vs dense reference {reference}"
        );
        let delta = 1e-5 * diameter;
        let fd_x = finite_difference_gradient(&x, &y, dim, p, eps, delta, true);
        let fd_y = finite_difference_gradient(&x, &y, dim, p, eps, delta, false);
        let worst = |got: &[f64], want: &[f64], unit: f64| {
            got.iter()
                .zip(want)
                .fold(0.0f64, |acc, (g, w)| acc.max((g - w).abs() / unit))
        };
        eprintln!(
            "p {p} ε {eps}: grad_x err {:.1e} units, grad_y err {:.1e} units",
            worst(&grad_x, &fd_x, unit_x),
            worst(&grad_y, &fd_y, unit_y)
        );
        let what = format!("p {p} ε {eps}");
        assert_close(
            &format!("{what}: grad_x"),
            &grad_x,
            &fd_x,
            1e-7 * unit_x,
            1e-6,
        );
        assert_close(
            &format!("{what}: grad_y"),
            &grad_y,
            &fd_y,
            1e-7 * unit_y,
            1e-6,
        );

        // Not vacuous: geomloss's schedule alone (one pass at ε) is measurably off.
        let single_pass = SinkhornConfig {
            converge_final: None,
            ..converged
        };
        let (value_1, grad_x_1, _) = op(&x, &y, dim, &single_pass);
        assert!(
            (value_1 - reference).abs() > 100.0 * value_tol,
            "{what}: one pass at ε already matches the converged value"
        );
        assert!(
            check_close(&grad_x_1, &fd_x, 100.0 * 1e-7 * unit_x, 100.0 * 1e-6).is_err(),
            "{what}: one pass at ε already matches the converged gradient"
        );
    }
}
