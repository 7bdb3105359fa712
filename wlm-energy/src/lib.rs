//! Potential-energy networks for populations, with hand-written differentiable forces.
//!
//! A WLM model moves particles by `dv/dt = −∇_x E_θ(X, t) − γ v` (`docs/METHOD.md` §2 in the
//! repository). This crate provides
//! the energies `E_θ` and their forces `−∇_x E_θ`, and implements the integrators' seam
//! `wlm_integrate::ForceField` through [`EnergyField`]. It sits below the learner (`wlm`) and
//! depends only on `wlm-integrate` (for the trait).
//!
//! candle's autograd cannot differentiate a gradient (its backward detaches), so every force
//! here is an explicit vector-Jacobian product written in candle ops (METHOD.md Appendix A); one
//! ordinary `backward()` of a loss on forces then yields parameter gradients, including through
//! a rollout.
//!
//! # Quick start
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use wlm_energy::{AttentionEnergyConfig, Energy, EnergyField};
//! use wlm_integrate::{rollout, Integrator, State};
//!
//! let config = AttentionEnergyConfig { hidden: 16, ff: 32, blocks: 1, ..Default::default() };
//! let (energy, varmap) = config.init_seeded(0, DType::F64, &Device::Cpu)?;
//! let x = Tensor::new(&[[0.0f64, 1.0], [1.0, 0.0], [0.5, 0.5]], &Device::Cpu)?; // (n, dim)
//! let force = energy.force(&x, 0.0)?; // −∇ₓE, (3, 2)
//! assert_eq!(force.dims(), &[3, 2]);
//!
//! // A loss on a rollout reaches the parameters with one backward().
//! let field = EnergyField::new(&energy); // reference semantics: detach_positions = true
//! let friction = Tensor::new(0.1f64, &Device::Cpu)?;
//! let start = State::new(&field, x.clone(), x.zeros_like()?, 0.0)?;
//! let traj = rollout(Integrator::ReferenceLeapfrog, &field, start, 0.1, 3, &friction, &[3])?;
//! let loss = traj.states[0].positions.sqr()?.sum_all()?;
//! let grads = loss.backward()?;
//! assert!(varmap.all_vars().iter().any(|v| grads.get(v.as_tensor()).is_some()));
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! # Entry points
//! | item | what | cost (N particles, H hidden, F feed-forward, L blocks) |
//! |---|---|---|
//! | [`Energy`] | the trait: `energy(x, t)` (rank 0, sum pooling) and `force(x, t)` | — |
//! | [`EnergyField`] | `ForceField` adapter; `detach_positions` (default `true`) or exact mode | one force |
//! | [`Energy::energy_detached`], [`Energy::force_detached`], [`DetachedEnergyField`] | values with no graph, for rollouts that need no gradients; the attention energy runs its native path | one force, no graph |
//! | [`Energy::force_tape`], [`ForceTape::adjoint`] | the force by the native path with its record, then `∂/∂θ ⟨ā, F⟩` (and `J_F(x)ᵀ ā`) by hand-written second-order backward passes, no graph: the training sweep's fast path | tape: one force, `O(L N (H + F))` memory plus the kept `P`; adjoint: about 2.5 forces |
//! | [`AttentionEnergyConfig::init`] | the reference's attention energy, PyTorch names and init | — |
//! | [`AttentionEnergy`] force | forward + hand-written VJP, [`Kernels::Fused`] by default | `O(L (N² H + N H F))` time; `O(L N (H + F))` memory, plus `heads · N²` per block while that is at most 2²⁴ (the kept attention probabilities) |
//! | [`MeanFieldEnergyConfig::init`] | `Σ U(x_i) + (1/N) Σ_{i≠j} w(|x_i − x_j|²)` | `O(N² hidden)` time and memory |
//! | [`AnalyticPotential`] | the five GF-SDE potentials and a trap with soft repulsion | `O(N d)` (repulsion `O(N² d)`) |
//! | [`load_weights`], `VarMap::save` | safetensors by state_dict name, dtype converted | file size |
//! | [`seeded_var_builder`], [`perturb_constant_parameters`] | reproducible init; parity-style perturbation | parameters |
//!
//! # Kernels
//! [`Kernels::Plain`] uses only candle ops that candle itself can differentiate, and is the
//! reference the tests check the hand-written forces against. [`Kernels::Fused`] (default)
//! replaces the hot spots by multi-threaded CPU custom ops with hand-written backward passes:
//! attention in cache-sized row blocks with a second-order kernel so the force stays
//! differentiable (a force keeps the probabilities `P` of its forward pass for the VJP and
//! the backward passes while `heads · N² ≤ 2²⁴`, and recomputes them block by block beyond;
//! [`Energy::force_graph_hidden_bytes`] reports what is kept), row softmax and its VJP (used
//! when attention dropout is active), GELU, LayerNorm, and row-broadcast bias/scale. Tests
//! check that both paths agree in value and parameter gradient in f64 and f32.
//!
//! Where no gradient is wanted, [`Energy::energy_detached`] and [`Energy::force_detached`] of
//! the attention energy (fused kernels, no active dropout, CPU) skip candle altogether: the
//! same kernels run over plain slices, each block's token-wise work in two row-parallel
//! passes, with transposed weights cached while a bitwise comparison with the parameters
//! finds them unchanged. Tests check it against both graph paths in f64.
//!
//! Training needs `∂/∂θ ⟨ā, F_θ(x)⟩` for each step of a rollout. [`Energy::force_tape`] runs
//! the native force and keeps what its adjoint reads (the forward values and every
//! intermediate of the VJP chain); [`ForceTape::adjoint`] then goes back through the VJP
//! chain (the second-order kernels: attention's VJP backward, LayerNorm's and GELU's VJP
//! backward, transposed products) and through the forward pass with the cotangents found
//! there injected, giving every parameter's gradient, the time MLP's included, and in exact
//! mode the positions' cotangent. Tests check it against candle's backward of the graph path
//! (fused and plain) in f64 to 1e-10 relative, over shapes with proptest.
//!
//! # What can go wrong
//! - Bad input is an `Err` naming the value: positions not `(n_particles, dim)`, no particles,
//!   wrong `dim` or dtype, non-finite time, `hidden` not divisible by `heads`, dropout outside
//!   `[0, 1)`, the Bohachevsky potential outside `dim = 2`, a missing or mis-shaped tensor
//!   when loading weights ([`WeightsError`]).
//! - The fused kernels run on the CPU only (an `Err` elsewhere); use [`Kernels::Plain`] on
//!   other devices. candle's `cuda` feature is never enabled by this crate.
//! - A new [`AttentionEnergy`] is in training mode (PyTorch's default): with `dropout > 0`
//!   every call draws new masks. Call `set_training(false)` to evaluate; `seed_dropout`
//!   makes the masks reproducible. One force evaluation uses the same masks in its forward
//!   pass and its VJP.
//! - `detach_positions = true` (the reference's choice) gives gradients that ignore `∂a/∂x`:
//!   they are the exact derivative of a rollout whose force positions are frozen, not of the
//!   real rollout. Use [`EnergyField::exact`] for the exact gradient (about twice the cost).
//! - f32 fused kernels use a polynomial `exp` and a rational `erf` (a few ulp, `< 5e-7`
//!   absolute); f64 is accurate to rounding.
//! - Large allocations of short-lived tensors make glibc return memory to the OS and
//!   page-fault it back, and candle's elementwise pool spins long at each barrier on a busy
//!   machine. Binaries should raise glibc's malloc thresholds (`mallopt`) and set
//!   `CANDLE_BARRIER_POOL_SPIN_LIMIT` before any thread starts, as the `wlm` binary does
//!   (`benches/notes/energy.md`: 1.5× on the force and up to 2.4× on its backward).
//!
//! # References
//! - `docs/METHOD.md` §2.1, §5 and Appendix A in the repository; the parity fixtures'
//!   README (`shared/fixtures/parity/README.md`); the reference implementation `guanton/WLM`.
//! - T. Dao et al., "FlashAttention" (2022): the blockwise computation used by the fused
//!   attention kernels.

mod analytic;
mod attention_energy;
mod dropout;
mod energy;
mod kernels;
mod layers;
mod mean_field;
mod native;
#[cfg(test)]
mod testing;
mod weights;

pub use analytic::AnalyticPotential;
pub use attention_energy::{AttentionEnergy, AttentionEnergyConfig};
pub use energy::{DetachedEnergyField, Energy, EnergyField, ForceAdjoint, ForceTape};
pub use kernels::Kernels;
pub use mean_field::{MeanFieldEnergy, MeanFieldEnergyConfig};
pub use weights::{load_weights, perturb_constant_parameters, seeded_var_builder, WeightsError};
