//! Backpropagation through a rollout in memory independent of its length: a graph-free forward
//! pass that stores the states, then the adjoint reverse sweep (parity README §6.3).
//!
//! Both schemes of [`Integrator`] have the form
//!
//! ```text
//! h_n     = m v_n + c₁ a_n                  (half-step velocity)
//! x_{n+1} = x_n + dt h_n
//! a_{n+1} = A_θ(x_{n+1}, t_{n+1})
//! v_{n+1} = m h_n + c₂ a_{n+1}
//! ```
//!
//! with `m = e^{−γ dt/2}` and `c₁ = c₂ = m dt/2 + (1 − m)` (reference leapfrog) or `c₁ = dt/2`,
//! `c₂ = m dt/2` (conformal leapfrog). Given `G_n = ∂L/∂x_n`, the sweep runs backwards:
//!
//! ```text
//! x̄ = G_k, v̄ = 0, ā = 0
//! for n = k−1 .. 0:
//!     ā_{n+1} += c₂ v̄                                   (complete now)
//!     θ̄ += ∂/∂θ ⟨ā_{n+1}, A_θ(x_{n+1})⟩;  exact mode: x̄ += J_A(x_{n+1})ᵀ ā_{n+1}
//!     h̄ = m v̄ + dt x̄
//!     m̄ += ⟨v̄, h_n⟩ + ⟨h̄, v_n⟩;  c̄₂ += ⟨v̄, a_{n+1}⟩;  c̄₁ += ⟨h̄, a_n⟩
//!     v̄ = m h̄;  ā_n = c₁ h̄;  x̄ += G_n (n ≥ 1)
//! θ̄ += ∂/∂θ ⟨ā_0, A_θ(x_0)⟩
//! γ̄ = Σ_n m̄_n ∂m/∂γ + c̄₁ ∂c₁/∂γ + c̄₂ ∂c₂/∂γ
//! ```
//!
//! Each `∂/∂θ ⟨ā, A_θ(x)⟩` rebuilds one force graph and calls `backward()` on it, so the peak
//! memory is one step's graph whatever the horizon. The forward pass can instead keep the
//! graphs it builds anyway ([`forward_keeping`]) while they fit a memory budget
//! (`TrainConfig::keep_graphs_mib`); the sweep then reuses those and rebuilds only the others,
//! with bitwise the same gradients.
//!
//! Two things run concurrently, because one small population (N ≈ 256) leaves a core idle
//! inside a single force or solve: the `k` Sinkhorn solves run on a second thread while the
//! rollout goes on ([`rollout_and_solve`]); and in the detached mode, where no `J_Aᵀ ā` enters
//! the recurrence, the sweep first runs the cheap linear recurrences to find every `ā_n`,
//! then differentiates the kept graphs in parallel ([`parameter_terms`]), summing their
//! gradients in the sweep's order so the result is the sequential one, bit for bit. The
//! rollout stops at `x_k`: `a_k` and `v_k` enter no loss, so that force is never evaluated.

use std::cell::RefCell;
use std::collections::HashSet;

use candle_core::{DType, Tensor, Var};
use wlm_energy::{Energy, ForceTape};
use wlm_integrate::{ForceField, Integrator};

use crate::{Error, Result};

mod coefficients;

pub(crate) use coefficients::StepCoefficients;

/// The stored forward pass: plain tensors, no graph.
#[derive(Debug)]
pub(crate) struct Tape {
    /// `x_0 .. x_k`.
    pub(crate) positions: Vec<Tensor>,
    /// `v_0 .. v_{k−1}` (`v_k` enters no loss and is not computed).
    pub(crate) velocities: Vec<Tensor>,
    /// `a_0 .. a_{k−1}` (nor is `a_k`).
    pub(crate) accelerations: Vec<Tensor>,
    /// `h_0 .. h_{k−1}`.
    pub(crate) half_velocities: Vec<Tensor>,
    /// `t_0 .. t_k` (accumulated `t + dt`).
    pub(crate) times: Vec<f64>,
    /// One entry per step.
    pub(crate) coefficients: Vec<StepCoefficients>,
    /// Force graphs (or native tapes) kept by [`forward_keeping`]: entry `n` for `a_n`
    /// (empty, or `k` entries). The sweep takes each one out when it uses it, freeing it.
    pub(crate) kept: Vec<RefCell<Option<Kept>>>,
}

/// What the forward pass keeps of one step's force for the sweep.
#[derive(Debug)]
pub(crate) enum Kept {
    /// The force's candle graph.
    Graph(KeptGraph),
    /// The energy's graph-free record ([`Energy::force_tape`]), differentiated by hand.
    Tape(ForceTape),
}

/// One step's force with its graph, kept from the forward pass.
#[derive(Debug)]
pub(crate) struct KeptGraph {
    /// `A_θ(x_n, t_n)` with its graph to the parameters.
    pub(crate) acceleration: Tensor,
    /// The positions as a variable, when the graph also reaches them (exact mode).
    pub(crate) positions: Option<Var>,
}

/// How [`forward_keeping`] keeps force graphs.
#[derive(Clone, Copy)]
pub(crate) struct KeepGraphs<'a> {
    /// Computes forces with their graph (`detach_positions = false`): the field of the sweep.
    pub(crate) field: &'a dyn ForceField,
    /// Exact position-gradient mode: the graphs of `a_1 .. a_k` also reach their positions.
    pub(crate) exact: bool,
    /// Total size of the kept graphs, estimated from the first one (see [`graph_bytes`]).
    pub(crate) budget_bytes: u64,
    /// Bytes one graph holds that [`graph_bytes`] cannot see (`Energy::force_graph_hidden_bytes`).
    pub(crate) hidden_bytes: u64,
    /// Keep native tapes of this energy ([`Energy::force_tape`]) instead of graphs; `field`
    /// is then unused (the forces not kept come from the rollout's own field, which must
    /// compute the same native force).
    pub(crate) native: Option<&'a dyn Energy>,
}

/// A force kept for the sweep and its value, detached: the native tape of `energy` when
/// `native`, else `keep.field`'s graph (on a [`Var`] of `x` when `exact`).
fn keep_force(
    keep: &KeepGraphs<'_>,
    x: &Tensor,
    t: f64,
    exact: bool,
) -> Result<(Tensor, Kept, u64)> {
    if let Some(energy) = keep.native {
        if let Some(tape) = energy.force_tape(x, t)? {
            let a = tape.force().clone();
            let bytes = tape.bytes();
            return Ok((a, Kept::Tape(tape), bytes));
        }
    }
    let positions = if exact {
        Some(Var::from_tensor(x)?)
    } else {
        None
    };
    let input = positions.as_ref().map_or(x, |p| p.as_tensor());
    let graph = keep.field.acceleration(input, t)?;
    let bytes = graph_bytes(&graph) + keep.hidden_bytes;
    Ok((
        graph.detach(),
        Kept::Graph(KeptGraph {
            acceleration: graph,
            positions,
        }),
        bytes,
    ))
}

/// Bytes held by the intermediate tensors of `t`'s graph (parameters excluded; tensors that
/// share a storage counted once, at the size of the first view met).
pub(crate) fn graph_bytes(t: &Tensor) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for node in t.sorted_nodes() {
        if node.is_variable() {
            continue;
        }
        let (storage, _) = node.storage_and_layout();
        let address = std::ptr::from_ref(&*storage) as usize;
        if seen.insert(address) {
            total += (node.elem_count() * node.dtype().size_in_bytes()) as u64;
        }
    }
    total
}

/// Runs the rollout without keeping any graph: every acceleration is detached as soon as it
/// is computed. The arithmetic follows `wlm_integrate`'s schemes operation for operation.
///
/// # Shapes
/// `x0`, `v0`: `(n_particles, dim)`; one step per entry of `coefficients`.
#[cfg(test)]
pub(crate) fn forward(
    integrator: Integrator,
    field: &dyn ForceField,
    x0: &Tensor,
    v0: &Tensor,
    t0: f64,
    coefficients: &[StepCoefficients],
) -> Result<Tape> {
    forward_keeping(
        integrator,
        field,
        None,
        x0,
        v0,
        t0,
        coefficients,
        &mut |_, _| Ok(()),
    )
}

/// [`forward`], keeping force graphs for the sweep as `keep` says: `a_0` first, then `a_1`,
/// `a_2`, … while `(number kept) × (size of a_0's graph) ≤ budget`. A kept acceleration is
/// computed by `keep.field` (on a [`Var`] of the positions in exact mode) and then detached
/// for the integrator's arithmetic, so the rollout's values are the same as [`forward`]'s.
/// `reached(m, x_m)` is called as soon as each `x_m` (`m = 1..=k`) is known, so that work on
/// it (the step's Sinkhorn solve) can overlap the rest of the rollout; an `Err` from it stops
/// the rollout.
///
/// # Shapes
/// As [`forward`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_keeping(
    integrator: Integrator,
    field: &dyn ForceField,
    keep: Option<KeepGraphs<'_>>,
    x0: &Tensor,
    v0: &Tensor,
    t0: f64,
    coefficients: &[StepCoefficients],
    reached: &mut dyn FnMut(usize, &Tensor) -> Result<()>,
) -> Result<Tape> {
    let k = coefficients.len();
    let mut tape = Tape {
        positions: Vec::with_capacity(k + 1),
        velocities: Vec::with_capacity(k),
        accelerations: Vec::with_capacity(k),
        half_velocities: Vec::with_capacity(k),
        times: Vec::with_capacity(k + 1),
        coefficients: coefficients.to_vec(),
        kept: Vec::new(),
    };
    let mut x = x0.detach();
    let mut v = v0.detach();
    // How many more graphs fit the budget; decided from the size of a_0's graph.
    let mut room = 0u64;
    let mut a = match keep {
        Some(keep) if keep.budget_bytes > 0 => {
            let (a, kept, bytes) = keep_force(&keep, &x, t0, false)?;
            room = keep.budget_bytes / bytes.max(1);
            tape.kept.push(RefCell::new(None));
            if room > 0 {
                room -= 1;
                tape.kept[0] = RefCell::new(Some(kept));
            }
            a
        }
        _ => field.acceleration(&x, t0)?.detach(),
    };
    let mut t = t0;
    // a(x, t), kept when there is room left.
    let mut accelerate = |x: &Tensor, t: f64, kept: &mut Vec<RefCell<Option<Kept>>>| {
        let Some(keep) = keep.filter(|_| room > 0) else {
            if !kept.is_empty() {
                kept.push(RefCell::new(None));
            }
            return Ok::<Tensor, Error>(field.acceleration(x, t)?.detach());
        };
        room -= 1;
        let (a, graph, _) = keep_force(&keep, x, t, keep.exact)?;
        kept.push(RefCell::new(Some(graph)));
        Ok(a)
    };
    for (n, co) in coefficients.iter().enumerate() {
        // h_n and x_{n+1}; the last step stops there: a_k and v_k enter no loss.
        let h = match integrator {
            Integrator::ReferenceLeapfrog => ((&v * co.m)? + (&a * co.c1)?)?,
            Integrator::ConformalLeapfrog => ((&v * co.m)? + a.affine(co.dt / 2.0, 0.0)?)?,
        };
        let x_next = (&x + h.affine(co.dt, 0.0)?)?;
        let t_next = t + co.dt;
        reached(n + 1, &x_next)?;
        tape.positions.push(x);
        tape.velocities.push(v);
        tape.accelerations.push(a);
        tape.times.push(t);
        if n + 1 == k {
            tape.half_velocities.push(h);
            x = x_next;
            t = t_next;
            break;
        }
        let a_next = accelerate(&x_next, t_next, &mut tape.kept)?;
        let v_next = match integrator {
            Integrator::ReferenceLeapfrog => ((&h * co.m)? + (&a_next * co.c2)?)?,
            Integrator::ConformalLeapfrog => ((&h + a_next.affine(co.dt / 2.0, 0.0)?)? * co.m)?,
        };
        tape.half_velocities.push(h);
        x = x_next;
        v = v_next;
        a = a_next;
        t = t_next;
    }
    tape.positions.push(x);
    tape.times.push(t);
    Ok(tape)
}

/// Runs `rollout` on this thread while another thread solves `S(x_m, targets[m − 1])` for each
/// `x_m` it reports, in order, so the solves overlap the force evaluations. Returns the
/// rollout's tape and the `k` solutions. A non-finite `x_m` is [`Error::NonFinite`] (with
/// step 0: the trainer fills in its step) for the first such `m`; that error is reported
/// before any error of the rollout itself.
pub(crate) fn rollout_and_solve<R>(
    targets: &[Tensor],
    sinkhorn: &wlm_ot::SinkhornConfig,
    rollout: R,
) -> Result<(Tape, Vec<wlm_ot::SinkhornOutput>)>
where
    R: FnOnce(&mut dyn FnMut(usize, &Tensor) -> Result<()>) -> Result<Tape>,
{
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::channel::<(usize, Tensor)>();
        let solver = scope.spawn(move || -> Result<Vec<wlm_ot::SinkhornOutput>> {
            let mut solved = Vec::with_capacity(targets.len());
            for (m, x_m) in receive {
                let total = x_m.abs()?.sum_all()?.to_dtype(DType::F64)?;
                if !total.to_scalar::<f64>()?.is_finite() {
                    return Err(Error::NonFinite {
                        step: 0,
                        what: format!("simulated positions at interval {m}"),
                    });
                }
                solved.push(wlm_ot::sinkhorn(&x_m, &targets[m - 1], sinkhorn)?);
            }
            Ok(solved)
        });
        let tape = rollout(&mut |m, x_m| {
            // A closed channel means the solver stopped on an error, reported below.
            send.send((m, x_m.clone()))
                .map_err(|_| Error::Data("the Sinkhorn solver stopped".into()))
        });
        drop(send);
        let solved = match solver.join() {
            Ok(solved) => solved?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok((tape?, solved))
    })
}

/// The graph or tape kept for `a_n`, if any (taken out of the tape).
fn take_kept(tape: &Tape, n: usize) -> Option<Kept> {
    tape.kept.get(n).and_then(|slot| slot.borrow_mut().take())
}

/// Gradients produced by [`reverse_sweep`].
#[derive(Debug)]
pub(crate) struct SweepGradients {
    /// One entry per parameter; `None` where the force never depends on it.
    pub(crate) params: Vec<Option<Tensor>>,
    /// `∂L/∂γ` (to be multiplied by `γ` for `θ_γ = ln γ`).
    pub(crate) gamma: f64,
}

/// Where the sweep's force derivatives come from: candle graphs of `field`, or, when
/// `native` is set and the energy has one, its graph-free adjoint ([`Energy::force_tape`]).
#[derive(Clone, Copy)]
pub(crate) struct ForceDerivatives<'a> {
    /// Computes forces with their graph (it is called with a fresh [`Var`] in exact mode).
    pub(crate) field: &'a dyn ForceField,
    /// The energy whose native tapes are differentiated instead of graphs.
    pub(crate) native: Option<&'a dyn Energy>,
}

/// The adjoint reverse sweep over `tape`.
///
/// `derivatives.field` must keep the graph to its input positions and to `params`.
/// `loss_grads[m − 1] = ∂L/∂x_m` for `m = 1..=k`. Force graphs or tapes kept in the tape are
/// used (and freed) instead of being rebuilt.
pub(crate) fn reverse_sweep(
    derivatives: ForceDerivatives<'_>,
    tape: &Tape,
    loss_grads: &[Tensor],
    params: &[Var],
    exact: bool,
) -> Result<SweepGradients> {
    let k = tape.coefficients.len();
    debug_assert_eq!(loss_grads.len(), k);
    let mut grads: Vec<Option<Tensor>> = vec![None; params.len()];
    let mut gamma_bar = 0.0;
    let mut x_bar = loss_grads[k - 1].clone();
    let mut v_bar: Option<Tensor> = None;
    // Partial adjoint of a_{n+1} coming from the half step of step n+1 (c₁ h̄_{n+1}).
    let mut a_next: Option<Tensor> = None;
    // Detached mode: no `J_Aᵀ ā` enters the recurrence, so every `(n, ā_n)` is known before
    // any force graph is differentiated; the parameter terms are taken afterwards, the kept
    // graphs' concurrently ([`parameter_terms`]).
    let mut deferred: Vec<(usize, Tensor)> = Vec::new();
    for n in (0..k).rev() {
        let co = tape.coefficients[n];
        // ā_{n+1} = c₁ h̄_{n+1} + c₂ v̄_{n+1}.
        let a_bar = add_opt(
            a_next.take(),
            v_bar.as_ref().map(|v| v * co.c2).transpose()?,
        )?;
        if let Some(a_bar) = a_bar {
            if exact {
                let (part, jx) = force_vjp(
                    derivatives,
                    take_kept(tape, n + 1),
                    tape,
                    n + 1,
                    &a_bar,
                    params,
                    true,
                )?;
                add_parts(&mut grads, part)?;
                if let Some(jx) = jx {
                    x_bar = (x_bar + jx)?;
                }
            } else {
                deferred.push((n + 1, a_bar));
            }
        }
        let h_bar = match &v_bar {
            Some(v) => ((v * co.m)? + (&x_bar * co.dt)?)?,
            None => (&x_bar * co.dt)?,
        };
        let mut m_bar = dot(&h_bar, &tape.velocities[n])?;
        let mut c2_bar = 0.0;
        if let Some(v) = &v_bar {
            m_bar += dot(v, &tape.half_velocities[n])?;
            c2_bar = dot(v, &tape.accelerations[n + 1])?;
        }
        let c1_bar = dot(&h_bar, &tape.accelerations[n])?;
        gamma_bar += m_bar * co.dm + c1_bar * co.dc1 + c2_bar * co.dc2;
        v_bar = Some((&h_bar * co.m)?);
        a_next = Some((&h_bar * co.c1)?);
        if n >= 1 {
            x_bar = (x_bar + &loss_grads[n - 1])?;
        }
    }
    if let Some(a_bar) = a_next {
        deferred.push((0, a_bar));
    }
    parameter_terms(derivatives, tape, deferred, params, &mut grads)?;
    Ok(SweepGradients {
        params: grads,
        gamma: gamma_bar,
    })
}

/// Adds `Σ ∂/∂θ ⟨ā_n, A_θ(x_n, t_n)⟩` over `terms = [(n, ā_n)]` into `grads`, in the order of
/// `terms`, so the sums are those of one term after the other. The terms whose graph (or
/// tape) was kept are differentiated concurrently (rayon; each backward is independent of
/// the others and small populations leave a core idle inside one), the others are rebuilt
/// one at a time.
fn parameter_terms(
    derivatives: ForceDerivatives<'_>,
    tape: &Tape,
    terms: Vec<(usize, Tensor)>,
    params: &[Var],
    grads: &mut [Option<Tensor>],
) -> Result<()> {
    use rayon::prelude::*;
    let (mut kept, mut rebuilt) = (Vec::new(), Vec::new());
    for (order, (n, a_bar)) in terms.into_iter().enumerate() {
        match take_kept(tape, n) {
            Some(graph) => kept.push((order, graph, a_bar)),
            None => rebuilt.push((order, n, a_bar)),
        }
    }
    let mut parts: Vec<(usize, Vec<Option<Tensor>>)> = kept
        .into_par_iter()
        .map(|(order, graph, a_bar)| {
            let (part, _) = differentiate(graph, &a_bar, params, false)?;
            Ok((order, part))
        })
        .collect::<Result<_>>()?;
    for (order, n, a_bar) in rebuilt {
        let (part, _) = force_vjp(derivatives, None, tape, n, &a_bar, params, false)?;
        parts.push((order, part));
    }
    parts.sort_by_key(|(order, _)| *order);
    for (_, part) in parts {
        add_parts(grads, part)?;
    }
    Ok(())
}

/// `grads[i] += part[i]` where present.
fn add_parts(grads: &mut [Option<Tensor>], part: Vec<Option<Tensor>>) -> Result<()> {
    for (slot, g) in grads.iter_mut().zip(part) {
        *slot = add_opt(slot.take(), g)?;
    }
    Ok(())
}

/// Adds the gradients of `params` in `store`, detached, into `grads`.
fn add_parameter_grads(
    store: &candle_core::backprop::GradStore,
    params: &[Var],
    grads: &mut [Option<Tensor>],
) -> Result<()> {
    for (slot, var) in grads.iter_mut().zip(params) {
        if let Some(g) = store.get(var.as_tensor()) {
            // Gradients from candle's backward may reference parameters through ops (e.g.
            // `g·W` of a matmul): detach, or later backward calls would flow through them.
            *slot = add_opt(slot.take(), Some(g.detach()))?;
        }
    }
    Ok(())
}

/// `∂/∂θ ⟨a_bar, A_θ(x_n, t_n)⟩` (one entry per parameter) and, in exact mode,
/// `J_A(x_n)ᵀ a_bar`. Uses `kept` (the same graph or tape, made in the forward pass) when it
/// reaches what is needed, else makes a native tape (where `derivatives.native` has one) or
/// rebuilds the force graph.
fn force_vjp(
    derivatives: ForceDerivatives<'_>,
    kept: Option<Kept>,
    tape: &Tape,
    n: usize,
    a_bar: &Tensor,
    params: &[Var],
    exact: bool,
) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
    let (x, t) = (&tape.positions[n], tape.times[n]);
    let kept = match kept {
        Some(Kept::Graph(g)) if exact && g.positions.is_none() => None,
        kept => kept,
    };
    let kept = match (kept, derivatives.native) {
        (None, Some(energy)) => energy.force_tape(x, t)?.map(Kept::Tape),
        (kept, _) => kept,
    };
    let kept = match kept {
        Some(kept) => kept,
        None => {
            let positions = if exact {
                Some(Var::from_tensor(x)?)
            } else {
                None
            };
            let input = match &positions {
                Some(v) => v.as_tensor().clone(),
                None => x.detach(),
            };
            Kept::Graph(KeptGraph {
                acceleration: derivatives.field.acceleration(&input, t)?,
                positions,
            })
        }
    };
    differentiate(kept, a_bar, params, exact)
}

/// `∂/∂θ ⟨a_bar, A⟩` of a kept force (one entry per parameter) and, when `exact` and the
/// kept force reaches its positions, `J_A(x)ᵀ a_bar`.
fn differentiate(
    kept: Kept,
    a_bar: &Tensor,
    params: &[Var],
    exact: bool,
) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
    let mut part = vec![None; params.len()];
    match kept {
        Kept::Tape(force_tape) => {
            let adjoint = force_tape.adjoint(a_bar, exact)?;
            for (id, g) in adjoint.params {
                if let Some(i) = params.iter().position(|v| v.as_tensor().id() == id) {
                    part[i] = Some(g);
                }
            }
            Ok((part, adjoint.positions))
        }
        Kept::Graph(kept) => {
            let objective = (kept.acceleration * a_bar)?.sum_all()?;
            let store = objective.backward()?;
            add_parameter_grads(&store, params, &mut part)?;
            let x_bar = match &kept.positions {
                Some(v) if exact => store.get(v.as_tensor()).map(Tensor::detach),
                _ => None,
            };
            Ok((part, x_bar))
        }
    }
}

fn add_opt(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some((a + b)?),
        (a, None) => a,
        (None, b) => b,
    })
}

/// `⟨a, b⟩` accumulated in f64.
pub(crate) fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (a, b) = if a.dtype() == DType::F64 {
        (a.clone(), b.clone())
    } else {
        (a.to_dtype(DType::F64)?, b.to_dtype(DType::F64)?)
    };
    Ok((a * b)?.sum_all()?.to_scalar::<f64>()?)
}

/// Bytes in a mebibyte (the unit of `TrainConfig::keep_graphs_mib`).
pub(crate) const MIB: u64 = 1 << 20;

#[cfg(test)]
mod tests;
