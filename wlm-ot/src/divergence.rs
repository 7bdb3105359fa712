//! `sinkhorn_divergence`: the Sinkhorn divergence as a candle custom op whose backward pass is
//! geomloss's envelope gradient.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::config::SinkhornConfig;
use crate::error::Result;
use crate::sinkhorn::solve_tensors;

/// The custom op: the forward value and both gradients are computed up front by the Sinkhorn
/// solver; the op only places the value in the graph and scales the stored gradients.
struct SinkhornDivergenceOp {
    value: f64,
    grad_x: Tensor,
    grad_y: Tensor,
}

impl CustomOp2 for SinkhornDivergenceOp {
    fn name(&self) -> &'static str {
        "sinkhorn-divergence"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        _l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = match s1 {
            CpuStorage::F32(_) => CpuStorage::F32(vec![self.value as f32]),
            CpuStorage::F64(_) => CpuStorage::F64(vec![self.value]),
            _ => candle_core::bail!("sinkhorn-divergence: only f32 and f64 are supported"),
        };
        Ok((storage, Shape::from(())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        y: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_x = if x.track_op() {
            Some(self.grad_x.broadcast_mul(grad_res)?)
        } else {
            None
        };
        let grad_y = if y.track_op() {
            Some(self.grad_y.broadcast_mul(grad_res)?)
        } else {
            None
        };
        Ok((grad_x, grad_y))
    }
}

/// The debiased Sinkhorn divergence `S(x, y)` between uniform clouds, as a scalar tensor that
/// candle can differentiate with respect to `x` (and `y` when `y` is a variable).
///
/// Exactly geomloss's `SamplesLoss("sinkhorn", p, blur, scaling, debias=True)`: cost
/// `C = ½|x − y|²` (`p = 2`) or `|x − y|` (`p = 1`), `ε = blur^p`, ε-annealing from the
/// diameter of `x ∪ y` down to `ε` by factors `scaling^p`, four potentials updated
/// symmetrically and averaged, one final extrapolation, and
/// `S = Σ_i a_i (f_ba,i − f_aa,i) + Σ_j b_j (g_ab,j − g_bb,j)`.
///
/// The backward pass is the envelope formula (potentials held fixed):
/// `∂S/∂x_i = a_i [Σ_j P_ij ∇₁C(x_i, y_j) − Σ_k Q_ik ∇₁C(x_i, x_k)]`, which is what geomloss
/// and the reference train with. With the default `converge_final = None` it is not the exact
/// derivative of the returned value (one update at the final ε); see
/// [`SinkhornConfig::converge_final`].
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, same dtype (f32 or f64). Returns a 0-d tensor of that dtype.
///
/// # Errors
/// Bad shapes, dtypes, non-finite coordinates or an invalid `config` (see [`crate::Error`]).
pub fn sinkhorn_divergence(x: &Tensor, y: &Tensor, config: &SinkhornConfig) -> Result<Tensor> {
    apply(None, x, y, config)
}

/// [`sinkhorn_divergence`] with weights `a` and `b` (non-negative, summing to 1). The weights
/// are constants for autograd.
///
/// # Shapes
/// `a`: `(N,)`, `x`: `(N, d)`, `b`: `(M,)`, `y`: `(M, d)`.
///
/// # Errors
/// As [`sinkhorn_divergence`], plus [`crate::Error::InvalidWeights`].
pub fn sinkhorn_divergence_weighted(
    a: &Tensor,
    x: &Tensor,
    b: &Tensor,
    y: &Tensor,
    config: &SinkhornConfig,
) -> Result<Tensor> {
    apply(Some((a, b)), x, y, config)
}

fn apply(
    weights: Option<(&Tensor, &Tensor)>,
    x: &Tensor,
    y: &Tensor,
    config: &SinkhornConfig,
) -> Result<Tensor> {
    let out = solve_tensors(weights, x, y, config)?;
    let op = SinkhornDivergenceOp {
        value: out.value,
        grad_x: out.grad_x,
        grad_y: out.grad_y.to_device(y.device())?,
    };
    Ok(x.apply_op2(y, op)?)
}
