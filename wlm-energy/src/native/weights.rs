//! The native path's view of an attention energy ([`NativeModel`]) and its copy of the
//! parameters as plain vectors with the transposes the forward products need
//! ([`NativeWeights`]).

use candle_core::{Result, Tensor};

use super::values;
use crate::kernels::attention::transposed;
use crate::kernels::float::Float;
use crate::kernels::with_slices;
use crate::layers::time_mlp::TimeMlp;

/// What the native path reads from an attention energy: its sizes, its parameters in a fixed
/// order, and its time MLP. Built by the energy (`AttentionEnergy::native_model`) for each call,
/// so this module never sees the energy type itself.
pub(crate) struct NativeModel<'m> {
    /// Particle dimension `d`.
    pub(crate) dim: usize,
    /// Input width of the input projection: `d` plus the time features.
    pub(crate) input_dim: usize,
    /// Hidden width `H`.
    pub(crate) hidden: usize,
    /// Attention heads.
    pub(crate) heads: usize,
    /// Feed-forward width.
    pub(crate) ff: usize,
    /// The input projection's weight and bias, each block's twelve parameters (LayerNorm 1,
    /// QKV projection, output projection, LayerNorm 2, feed-forward up and down; weight then
    /// bias), then the output projection's weight and bias. The time MLP's are not among them:
    /// `τ(t)` is evaluated by candle at each call.
    pub(crate) parameters: Vec<&'m Tensor>,
    /// The time-feature MLP `τ(t)`, when the energy has time features.
    pub(crate) time_mlp: Option<&'m TimeMlp>,
}

impl NativeModel<'_> {
    /// Number of transformer blocks.
    pub(super) fn n_blocks(&self) -> usize {
        (self.parameters.len() - 4) / 12
    }
}

/// A linear layer `y = x Wᵀ + b`: `Wᵀ` (`in × out`) for the forward pass; `W` (`out × in`,
/// for VJPs) and `b` are indices into [`NativeWeights::raw`].
pub(super) struct Dense<T> {
    pub(super) w_t: Vec<T>,
    pub(super) w: usize,
    pub(super) b: usize,
}

/// One pre-LayerNorm block's parameters (indices into [`NativeWeights::raw`]).
pub(super) struct Block<T> {
    pub(super) ln1: [usize; 2],
    pub(super) qkv: Dense<T>,
    pub(super) out: Dense<T>,
    pub(super) ln2: [usize; 2],
    pub(super) up: Dense<T>,
    pub(super) down: Dense<T>,
}

/// The parameters as plain vectors, with the transposes the forward products need. Built
/// once and reused while the model's parameters are unchanged ([`NativeWeights::matches`]).
pub(crate) struct NativeWeights<T> {
    /// Copies of [`NativeModel::parameters`], in order.
    pub(super) raw: Vec<Vec<T>>,
    /// `W_in[:, :dim]` (`H × dim`) and its transpose.
    pub(super) w_x: Vec<T>,
    pub(super) w_x_t: Vec<T>,
    pub(super) blocks: Vec<Block<T>>,
}

impl<T: Float> NativeWeights<T> {
    /// Copies and transposes the model's parameters.
    pub(crate) fn new(model: &NativeModel<'_>) -> Result<Self> {
        let (dim, hd, ff, in_dim) = (model.dim, model.hidden, model.ff, model.input_dim);
        let raw = model
            .parameters
            .iter()
            .map(|t| values::<T>(t))
            .collect::<Result<Vec<_>>>()?;
        let w_x: Vec<T> = raw[0]
            .chunks_exact(in_dim)
            .flat_map(|row| row[..dim].iter().copied())
            .collect();
        let dense = |w: usize, rows: usize, cols: usize| Dense {
            w_t: transposed(&raw[w], rows, cols),
            w,
            b: w + 1,
        };
        let blocks = (0..model.n_blocks())
            .map(|i| {
                let at = 2 + 12 * i;
                Block {
                    ln1: [at, at + 1],
                    qkv: dense(at + 2, 3 * hd, hd),
                    out: dense(at + 4, hd, hd),
                    ln2: [at + 6, at + 7],
                    up: dense(at + 8, ff, hd),
                    down: dense(at + 10, hd, ff),
                }
            })
            .collect();
        Ok(NativeWeights {
            w_x_t: transposed(&w_x, hd, dim),
            w_x,
            blocks,
            raw,
        })
    }

    /// Whether the model's parameters still equal these copies (same values, same shapes).
    pub(crate) fn matches(&self, model: &NativeModel<'_>) -> Result<bool> {
        if model.parameters.len() != self.raw.len() {
            return Ok(false);
        }
        with_slices::<T, _>(&model.parameters, |current| {
            Ok(current
                .iter()
                .zip(&self.raw)
                .all(|(a, b)| *a == b.as_slice()))
        })
    }
}
