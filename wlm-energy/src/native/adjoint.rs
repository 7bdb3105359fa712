//! The native force's adjoint: `∂/∂θ ⟨ā, F_θ(x, t)⟩` and `J_F(x)ᵀ ā` by hand-written backward passes over slices, no graph.
//!
//! The force is `F = −g_0 W_x`, where `g_0 = ∂E/∂h_0` comes out of the VJP chain
//! `g_L = 1 ⊗ w_out → … → g_0` that runs through the blocks from the last to the first, and
//! every VJP reads values of the forward pass. The objective `Φ = ⟨ā, F⟩` is differentiated in
//! two sweeps:
//!
//! 1. **Back through the VJP chain** (blocks first to last), from `ḡ_0 = −ā W_xᵀ`. Each VJP
//!    op's backward (the second-order kernels: attention's `backward_all`, LayerNorm's and
//!    GELU's `vjp_bwd_kernel`, and the transposed products) gives the cotangent of its incoming
//!    gradient, the parameters' cotangents, and cotangents of the forward values it read
//!    (`h`, `h1`, `qkv`, `z`), which are set aside.
//! 2. **Back through the forward pass** (blocks last to first), an ordinary backward with
//!    parameter gradients into which those set-aside cotangents are injected, down to `h_0`,
//!    hence to the input projection, the time features and (exact mode) the positions.
//!
//! The per-block formulas, with `ĝ = d ⊙ γ` the input of a LayerNorm VJP and `J` its
//! Jacobian, are written out beside each pass. Products go through the one GEMM entry point
//! ([`gemm`]); the row-wise work runs in row-parallel passes over the same chunks as the
//! forward path, each chunk's parameter partials summed afterwards in chunk order, so the
//! result is deterministic for a given thread count.

use std::sync::Arc;

use candle_core::{bail, Result, Shape, Tensor, TensorId};

use super::{row_chunks, values, ForceRecord, NativeModel, NativeNet, NativeWeights};
use crate::kernels::attention::transposed;
use crate::kernels::float::Float;
use crate::kernels::gemm::gemm;

mod sweeps;

use sweeps::{add_column_sums, add_weight_gradient};

/// The time features' values at one `t`: `z_1 = w_1 t + b_1`, `s = silu(z_1)`, `τ = W_2 s + b_2`
/// (the reference's `time_mlp`), with the parameters.
struct TimeRecord<T> {
    t: T,
    /// `W_2` (`16 × 16`).
    w2: Vec<T>,
    z1: Vec<T>,
    s: Vec<T>,
    tau: Vec<T>,
}

/// One native force evaluation with everything its adjoint needs.
pub(crate) struct NativeTape<T> {
    weights: Arc<NativeWeights<T>>,
    sizes: [usize; 5],
    b_in: Vec<T>,
    record: ForceRecord<T>,
    time: Option<TimeRecord<T>>,
    /// Ids and shapes of the parameters, in the order of the adjoint's gradients:
    /// [`NativeModel::parameters`], then the time MLP's (`0.weight`, `0.bias`, `2.weight`, `2.bias`).
    ids: Vec<TensorId>,
    shapes: Vec<Shape>,
    device: candle_core::Device,
}

impl<T: Float> crate::energy::TapeAdjoint for NativeTape<T> {
    fn adjoint(
        &self,
        a_bar: &Tensor,
        positions: bool,
    ) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
        NativeTape::adjoint(self, a_bar, positions)
    }

    fn parameter_ids(&self) -> &[TensorId] {
        &self.ids
    }
}

impl<T: Float> NativeTape<T> {
    /// Evaluates the force of `model` at `x` (`n × dim`, row-major) and time `t`, recording
    /// the tape; returns the force (as [`NativeNet::force`], bit for bit) and the tape.
    pub(crate) fn record(
        model: &NativeModel<'_>,
        weights: Arc<NativeWeights<T>>,
        x: &Tensor,
        t: f64,
    ) -> Result<(Vec<T>, Self)> {
        let n = x.dim(0)?;
        let net = NativeNet::new(model, &weights, n, t)?;
        let xs = values::<T>(x)?;
        let (force, record) = rayon::scope(|_| net.force_with(&xs, true));
        let Some(record) = record else {
            bail!("native force: no record was made");
        };
        let mut tensors: Vec<&Tensor> = model.parameters.clone();
        let time = match model.time_mlp {
            Some(mlp) => {
                tensors.extend([
                    &mlp.first.weight,
                    &mlp.first.bias,
                    &mlp.second.weight,
                    &mlp.second.bias,
                ]);
                let (w1, b1) = (
                    values::<T>(&mlp.first.weight)?,
                    values::<T>(&mlp.first.bias)?,
                );
                let (w2, b2) = (
                    values::<T>(&mlp.second.weight)?,
                    values::<T>(&mlp.second.bias)?,
                );
                let tt = T::of(t);
                let z1: Vec<T> = w1.iter().zip(&b1).map(|(&w, &b)| w * tt + b).collect();
                let s: Vec<T> = z1.iter().map(|&z| z * sigmoid(z)).collect();
                let tau: Vec<T> = w2
                    .chunks_exact(s.len())
                    .zip(&b2)
                    .map(|(row, &b)| row.iter().zip(&s).fold(b, |acc, (&w, &v)| acc + w * v))
                    .collect();
                Some(TimeRecord {
                    t: tt,
                    w2,
                    z1,
                    s,
                    tau,
                })
            }
            None => None,
        };
        let tape = NativeTape {
            sizes: [net.n, net.dim, net.hidden, net.heads, net.ff],
            b_in: net.b_in.clone(),
            weights: weights.clone(),
            record,
            time,
            ids: tensors.iter().map(|t| t.id()).collect(),
            shapes: tensors.iter().map(|t| t.shape().clone()).collect(),
            device: x.device().clone(),
        };
        Ok((force, tape))
    }

    /// Bytes held by the tape's arrays.
    pub(crate) fn bytes(&self) -> u64 {
        self.record.bytes()
    }

    fn net(&self) -> NativeNet<'_, T> {
        let [n, dim, hidden, heads, ff] = self.sizes;
        NativeNet {
            weights: &self.weights,
            n,
            dim,
            hidden,
            heads,
            ff,
            b_in: self.b_in.clone(),
            chunks: row_chunks(n),
        }
    }

    /// `∂/∂θ ⟨ā, F⟩` for every parameter (`None` for the two the force never reads: the
    /// output bias and the last block's second feed-forward bias) and, when `positions`,
    /// `J_F(x)ᵀ ā` (`n × dim`).
    ///
    /// # Errors
    /// `a_bar` not of the positions' shape, dtype or device; tensor failures.
    pub(crate) fn adjoint(
        &self,
        a_bar: &Tensor,
        positions: bool,
    ) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
        let [n, dim, ..] = self.sizes;
        if a_bar.dims() != [n, dim] || a_bar.dtype() != T::DTYPE {
            bail!(
                "force adjoint: the cotangent has shape {:?} and dtype {:?}, expected [{n}, {dim}] and {:?}",
                a_bar.dims(),
                a_bar.dtype(),
                T::DTYPE
            );
        }
        let a_bar = values::<T>(a_bar)?;
        let (grads, x_bar) = rayon::scope(|_| self.adjoint_slices(&a_bar, positions));
        let mut out = Vec::with_capacity(grads.len());
        for (i, (g, shape)) in grads.into_iter().zip(&self.shapes).enumerate() {
            out.push(match g {
                Some(g) => Some(Tensor::from_vec(g, shape, &self.device)?),
                None => {
                    debug_assert!(
                        i + 1 == self.weights.raw.len() || i + 3 == self.weights.raw.len()
                    );
                    None
                }
            });
        }
        let x_bar = x_bar
            .map(|v| Tensor::from_vec(v, (n, dim), &self.device))
            .transpose()?;
        Ok((out, x_bar))
    }

    /// [`Self::adjoint`] on slices.
    fn adjoint_slices(
        &self,
        a_bar: &[T],
        positions: bool,
    ) -> (Vec<Option<Vec<T>>>, Option<Vec<T>>) {
        let net = self.net();
        let w = &*self.weights;
        let (n, dim, hd) = (net.n, net.dim, net.hidden);
        let mut grads: Vec<Vec<T>> = w.raw.iter().map(|r| vec![T::ZERO; r.len()]).collect();
        let in_dim = w.raw[0].len() / hd;

        // Step 1, the VJP chain from the bottom: F = −g_0 W_x, so ḡ_0 = −ā W_xᵀ and
        // W̄_x = −g_0ᵀ ā.
        let neg_a_bar: Vec<T> = a_bar.iter().map(|&v| -v).collect();
        let mut g_bar = vec![T::ZERO; n * hd];
        gemm(
            n, hd, dim, &neg_a_bar, dim, &w.w_x_t, hd, &mut g_bar, hd, false,
        );
        let mut w_x_bar = vec![T::ZERO; hd * dim];
        let g0_t = transposed(&self.record.g0, n, hd);
        add_weight_gradient(n, hd, dim, &g0_t, &neg_a_bar, &mut w_x_bar);
        drop(g0_t);
        let mut injected = Vec::with_capacity(w.blocks.len());
        for (b, (cache, vjp)) in w.blocks.iter().zip(&self.record.blocks) {
            let (next, inj) = net.vjp_backward(b, cache, vjp, &g_bar, &mut grads);
            g_bar = next;
            injected.push(inj);
        }
        // g_L = 1 ⊗ w_out.
        let last = w.raw.len() - 1;
        add_column_sums(&g_bar, &mut grads[last - 1]);
        drop(g_bar);

        // Step 2, the forward pass from the top (h_L feeds only the readout's constant VJP,
        // so its cotangent is zero).
        let mut r = vec![T::ZERO; n * hd];
        for ((b, (cache, _)), inj) in w
            .blocks
            .iter()
            .zip(&self.record.blocks)
            .zip(&injected)
            .rev()
        {
            r = net.forward_backward(b, cache, inj, &r, &mut grads);
        }
        drop(injected);

        // h_0 = x W_xᵀ + τ W_τᵀ + b_in.
        let mut r_sum = vec![T::ZERO; hd];
        add_column_sums(&r, &mut r_sum);
        add_weight_gradient(
            n,
            hd,
            dim,
            &transposed(&r, n, hd),
            &self.record.x,
            &mut w_x_bar,
        );
        for (row, (wx, rs)) in grads[0]
            .chunks_exact_mut(in_dim)
            .zip(w_x_bar.chunks_exact(dim).zip(&r_sum))
        {
            for (g, &v) in row[..dim].iter_mut().zip(wx) {
                *g += v;
            }
            if let Some(time) = &self.time {
                for (g, &tau) in row[dim..].iter_mut().zip(&time.tau) {
                    *g += *rs * tau;
                }
            }
        }
        add_column_sums(&r_sum, &mut grads[1]);
        let x_bar = positions.then(|| {
            let mut x_bar = vec![T::ZERO; n * dim];
            gemm(n, dim, hd, &r, hd, &w.w_x, dim, &mut x_bar, dim, false);
            x_bar
        });

        let mut out: Vec<Option<Vec<T>>> = grads.into_iter().map(Some).collect();
        // Never read by the force: the output bias and the last block's down bias.
        out[last] = None;
        out[last - 2] = None;
        if let Some(time) = &self.time {
            // τ̄ = W_τᵀ Σ_i r_i, then back through the time MLP.
            let width = time.tau.len();
            let mut tau_bar = vec![T::ZERO; width];
            for (row, &rs) in w.raw[0].chunks_exact(in_dim).zip(&r_sum) {
                for (tb, &wv) in tau_bar.iter_mut().zip(&row[dim..]) {
                    *tb += rs * wv;
                }
            }
            let mut w2_bar = vec![T::ZERO; width * width];
            for (row, &tb) in w2_bar.chunks_exact_mut(width).zip(&tau_bar) {
                for (g, &s) in row.iter_mut().zip(&time.s) {
                    *g = tb * s;
                }
            }
            let mut s_bar = vec![T::ZERO; width];
            for (row, &tb) in time.w2.chunks_exact(width).zip(&tau_bar) {
                for (sb, &wv) in s_bar.iter_mut().zip(row) {
                    *sb += tb * wv;
                }
            }
            let z1_bar: Vec<T> = s_bar
                .iter()
                .zip(&time.z1)
                .map(|(&sb, &z)| {
                    let sg = sigmoid(z);
                    sb * sg * (T::ONE + z * (T::ONE - sg))
                })
                .collect();
            let w1_bar: Vec<T> = z1_bar.iter().map(|&v| v * time.t).collect();
            out.extend([Some(w1_bar), Some(z1_bar), Some(w2_bar), Some(tau_bar)]);
        }
        (out, x_bar)
    }
}

/// The logistic function.
fn sigmoid<T: Float>(z: T) -> T {
    T::ONE / (T::ONE + (-z).exp_v())
}

#[cfg(test)]
mod tests;
