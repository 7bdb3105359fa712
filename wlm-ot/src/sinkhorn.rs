//! The debiased Sinkhorn loop (geomloss's symmetric, averaged, ε-annealed updates) and
//! [`sinkhorn`], which returns the value, the potentials and the envelope gradients.

use candle_core::{DType, Tensor};

use crate::config::SinkhornConfig;
use crate::error::{Error, Result};
use crate::input::{check_pair, read_pair, read_weights, to_tensor, uniform_weights, HostPair};
use crate::kernel::{run_passes, Cloud, Cost, PassSpec, Real};
use crate::potentials::{Potentials, Solution};
use crate::schedule::{bounding_box, epsilon_schedule};

/// Everything [`sinkhorn`] computes. Tensors have the dtype and device of `x`.
#[derive(Debug, Clone)]
pub struct SinkhornOutput {
    /// The debiased Sinkhorn divergence
    /// `S = Σ_i a_i (f_ba,i − f_aa,i) + Σ_j b_j (g_ab,j − g_bb,j)`.
    pub value: f64,
    /// geomloss's gradient of `S` with respect to `x`, `(N, d)`: the envelope formula
    /// `a_i [Σ_j P_ij ∇₁C(x_i, y_j) − Σ_k Q_ik ∇₁C(x_i, x_k)]` with the loop's last potentials.
    pub grad_x: Tensor,
    /// The same with respect to `y`, `(M, d)`.
    pub grad_y: Tensor,
    /// Final (extrapolated) potential on `x` of the `x → y` problem, `(N,)`.
    pub f_ba: Tensor,
    /// Final potential on `y` of the `x → y` problem, `(M,)`.
    pub g_ab: Tensor,
    /// Final potential of the symmetric `x → x` problem, `(N,)`.
    pub f_aa: Tensor,
    /// Final potential of the symmetric `y → y` problem, `(M,)`.
    pub g_bb: Tensor,
    /// The ε-annealing schedule that was run (geomloss's `epsilon_schedule`).
    pub eps_list: Vec<f64>,
    /// Diagonal of the bounding box of `x ∪ y`.
    pub diameter: f64,
    /// Updates at the final ε beyond the schedule (0 unless `converge_final` is set).
    pub extra_iterations: usize,
    /// Largest change of any potential in the last averaged update: how far from converged the
    /// returned potentials are (units of the cost).
    pub final_change: f64,
}

/// Gradient sums `Σ_j P_ij ∇₁C` of the four final passes (row-major, `n × dim`).
struct GradSums<T> {
    x_vs_y: Vec<T>,
    y_vs_x: Vec<T>,
    x_vs_x: Vec<T>,
    y_vs_y: Vec<T>,
}

/// The two prepared clouds with their log-weights.
struct Problem<T> {
    x: Cloud<T>,
    y: Cloud<T>,
    log_a: Vec<T>,
    log_b: Vec<T>,
    cost: Cost,
}

impl<T: Real> Problem<T> {
    /// The four softmin passes at `eps` from the potentials `prev` (or from zero logits at
    /// initialisation); with `grads`, also the gradient sums.
    fn softmin_all(
        &self,
        prev: Option<&Potentials<T>>,
        eps: f64,
        grads: Option<&mut GradSums<T>>,
    ) -> Potentials<T> {
        let mut next = Potentials::zeros(self.x.n_points, self.y.n_points);
        let pot = |f: fn(&Potentials<T>) -> &Vec<T>| prev.map(|p| f(p).as_slice());
        let (gxy, gyx, gxx, gyy) = match grads {
            Some(g) => (
                Some(g.x_vs_y.as_mut_slice()),
                Some(g.y_vs_x.as_mut_slice()),
                Some(g.x_vs_x.as_mut_slice()),
                Some(g.y_vs_y.as_mut_slice()),
            ),
            None => (None, None, None, None),
        };
        let Potentials {
            f_ba,
            g_ab,
            f_aa,
            g_bb,
        } = &mut next;
        let passes = vec![
            // f_ba = softmin(C_xy, log b + g_ab/ε)
            PassSpec {
                rows: &self.x,
                cols: &self.y,
                col_log_weights: &self.log_b,
                col_potential: pot(|p| &p.g_ab),
                out: f_ba,
                grad: gxy,
            },
            // g_ab = softmin(C_yx, log a + f_ba/ε)
            PassSpec {
                rows: &self.y,
                cols: &self.x,
                col_log_weights: &self.log_a,
                col_potential: pot(|p| &p.f_ba),
                out: g_ab,
                grad: gyx,
            },
            // f_aa = softmin(C_xx, log a + f_aa/ε)
            PassSpec {
                rows: &self.x,
                cols: &self.x,
                col_log_weights: &self.log_a,
                col_potential: pot(|p| &p.f_aa),
                out: f_aa,
                grad: gxx,
            },
            // g_bb = softmin(C_yy, log b + g_bb/ε)
            PassSpec {
                rows: &self.y,
                cols: &self.y,
                col_log_weights: &self.log_b,
                col_potential: pot(|p| &p.g_bb),
                out: g_bb,
                grad: gyy,
            },
        ];
        run_passes(passes, eps, self.cost);
        next
    }
}

/// Runs geomloss's debiased Sinkhorn on validated inputs: schedule, initialisation at the
/// first ε, averaged symmetric updates over the schedule, optional convergence at the final ε,
/// extrapolation, value and envelope gradients.
///
/// # Errors
/// [`Error::NonFiniteDiameter`] when the bounding box overflows; [`Error::ScheduleTooLong`].
pub(crate) fn solve<T: Real>(
    pair: &HostPair<T>,
    a: &[T],
    b: &[T],
    config: &SinkhornConfig,
) -> Result<Solution<T>> {
    let dim = pair.dim;
    let (diameter, center) = bounding_box(&pair.x, &pair.y, dim);
    if !diameter.is_finite() {
        return Err(Error::NonFiniteDiameter(diameter));
    }
    let eps_list = epsilon_schedule(config.p, diameter, config.blur, config.scaling)?;
    // The GPU path (feature `cuda`, a usable device, the device preference asking for it).
    if let Some(sol) = crate::cuda::try_solve(pair, a, b, config) {
        return Ok(sol);
    }
    let problem = Problem {
        x: Cloud::new(&pair.x, dim, &center),
        y: Cloud::new(&pair.y, dim, &center),
        log_a: a.iter().map(|&w| w.ln()).collect(),
        log_b: b.iter().map(|&w| w.ln()).collect(),
        cost: Cost::from_exponent(config.p),
    };

    let mut pots = problem.softmin_all(None, eps_list[0], None);
    let mut final_change = f64::INFINITY;
    for &eps in &eps_list {
        let updated = problem.softmin_all(Some(&pots), eps, None);
        final_change = pots.average_with(&updated);
    }
    let final_eps = *eps_list.last().expect("schedule has >= 2 entries");
    let mut extra_iterations = 0;
    if let Some(conv) = config.converge_final {
        // Changes below a few ulps of the potentials are rounding, not progress (f32 cannot
        // reach the default 1e-12).
        let floor = 8.0 * T::EPSILON.to_f64() * pots.max_abs();
        while extra_iterations < conv.max_iterations && final_change > conv.tolerance.max(floor) {
            let updated = problem.softmin_all(Some(&pots), final_eps, None);
            final_change = pots.average_with(&updated);
            extra_iterations += 1;
        }
    }

    let (n_x, n_y) = (pair.n_x, pair.n_y);
    let mut sums = GradSums {
        x_vs_y: vec![T::ZERO; n_x * dim],
        y_vs_x: vec![T::ZERO; n_y * dim],
        x_vs_x: vec![T::ZERO; n_x * dim],
        y_vs_y: vec![T::ZERO; n_y * dim],
    };
    let last = problem.softmin_all(Some(&pots), final_eps, Some(&mut sums));

    let mut value = 0.0_f64;
    for (i, &w) in a.iter().enumerate() {
        value += w.to_f64() * (last.f_ba[i] - last.f_aa[i]).to_f64();
    }
    for (j, &w) in b.iter().enumerate() {
        value += w.to_f64() * (last.g_ab[j] - last.g_bb[j]).to_f64();
    }
    let envelope = |w: &[T], cross: &[T], own: &[T]| -> Vec<T> {
        cross
            .iter()
            .zip(own)
            .enumerate()
            .map(|(idx, (&c, &o))| w[idx / dim] * (c - o))
            .collect()
    };
    Ok(Solution {
        value,
        grad_x: envelope(a, &sums.x_vs_y, &sums.x_vs_x),
        grad_y: envelope(b, &sums.y_vs_x, &sums.y_vs_y),
        potentials: last,
        eps_list,
        diameter,
        extra_iterations,
        final_change,
    })
}

/// Validates inputs and runs [`solve`] in the clouds' dtype; `weights = None` means uniform.
pub(crate) fn solve_tensors(
    weights: Option<(&Tensor, &Tensor)>,
    x: &Tensor,
    y: &Tensor,
    config: &SinkhornConfig,
) -> Result<SinkhornOutput> {
    config.validate()?;
    let (_, _, _, dtype) = check_pair(x, y)?;
    match dtype {
        DType::F32 => solve_typed::<f32>(weights, x, y, config),
        _ => solve_typed::<f64>(weights, x, y, config),
    }
}

fn solve_typed<T: Real>(
    weights: Option<(&Tensor, &Tensor)>,
    x: &Tensor,
    y: &Tensor,
    config: &SinkhornConfig,
) -> Result<SinkhornOutput> {
    let pair = read_pair::<T>(x, y)?;
    let (a, b) = match weights {
        Some((a, b)) => (
            read_weights::<T>(a, pair.n_x, "a")?,
            read_weights::<T>(b, pair.n_y, "b")?,
        ),
        None => (uniform_weights(pair.n_x), uniform_weights(pair.n_y)),
    };
    let sol = solve(&pair, &a, &b, config)?;
    let dev = x.device();
    let Potentials {
        f_ba,
        g_ab,
        f_aa,
        g_bb,
    } = sol.potentials;
    Ok(SinkhornOutput {
        value: sol.value,
        grad_x: to_tensor(sol.grad_x, pair.n_x, Some(pair.dim), dev)?,
        grad_y: to_tensor(sol.grad_y, pair.n_y, Some(pair.dim), dev)?,
        f_ba: to_tensor(f_ba, pair.n_x, None, dev)?,
        g_ab: to_tensor(g_ab, pair.n_y, None, dev)?,
        f_aa: to_tensor(f_aa, pair.n_x, None, dev)?,
        g_bb: to_tensor(g_bb, pair.n_y, None, dev)?,
        eps_list: sol.eps_list,
        diameter: sol.diameter,
        extra_iterations: sol.extra_iterations,
        final_change: sol.final_change,
    })
}

/// The debiased Sinkhorn divergence between uniform clouds, without autograd: value, the four
/// final potentials, the schedule and the envelope gradients with respect to `x` and `y`.
///
/// See [`sinkhorn_divergence`](crate::sinkhorn_divergence) for the formula.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, same dtype (f32 or f64).
///
/// # Errors
/// Bad shapes, dtypes, non-finite coordinates or an invalid `config` (see [`crate::Error`]).
pub fn sinkhorn(x: &Tensor, y: &Tensor, config: &SinkhornConfig) -> Result<SinkhornOutput> {
    solve_tensors(None, x, y, config)
}

/// [`sinkhorn`] with weights `a` (`(N,)`) and `b` (`(M,)`), non-negative and summing to 1.
///
/// # Shapes
/// `a`: `(N,)`, `x`: `(N, d)`, `b`: `(M,)`, `y`: `(M, d)`.
///
/// # Errors
/// As [`sinkhorn`], plus [`crate::Error::InvalidWeights`].
pub fn sinkhorn_weighted(
    a: &Tensor,
    x: &Tensor,
    b: &Tensor,
    y: &Tensor,
    config: &SinkhornConfig,
) -> Result<SinkhornOutput> {
    solve_tensors(Some((a, b)), x, y, config)
}
