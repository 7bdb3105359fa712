//! Tests of the reverse sweep: against graph backprop, finite differences and the kept-graph paths.
#[path = "../../../testing/close.rs"]
mod close;

use super::*;
use crate::loss::RolloutLoss;
use crate::model::Model;
use candle_core::Device;
use wlm_integrate::State;

/// `A(x, t) = −α x + tanh(x W₁ + b₁) W₂ + β (mean(x) − x) + t u`, parameters as Vars.
struct TestField {
    alpha: Var,
    w1: Var,
    b1: Var,
    w2: Var,
    beta: Var,
    u: Var,
}

impl TestField {
    fn new(dim: usize, hidden: usize) -> candle_core::Result<Self> {
        let dev = Device::Cpu;
        let r = |shape: &[usize], s: f64, seed: u64| -> candle_core::Result<Var> {
            let n: usize = shape.iter().product();
            let vals: Vec<f64> = (0..n)
                .map(|i| ((i as f64 + 1.0) * 0.71 + seed as f64 * 1.3).sin() * s)
                .collect();
            Var::from_tensor(&Tensor::from_vec(vals, shape, &dev)?)
        };
        Ok(Self {
            alpha: r(&[1], 0.8, 1)?,
            w1: r(&[dim, hidden], 0.9, 2)?,
            b1: r(&[hidden], 0.3, 3)?,
            w2: r(&[hidden, dim], 0.9, 4)?,
            beta: r(&[1], 0.5, 5)?,
            u: r(&[dim], 0.4, 6)?,
        })
    }

    fn params(&self) -> Vec<Var> {
        vec![
            self.alpha.clone(),
            self.w1.clone(),
            self.b1.clone(),
            self.w2.clone(),
            self.beta.clone(),
            self.u.clone(),
        ]
    }
}

impl ForceField for TestField {
    fn acceleration(&self, x: &Tensor, t: f64) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let spring = x.broadcast_mul(self.alpha.as_tensor())?.neg()?;
        let hidden = x
            .matmul(self.w1.as_tensor())?
            .broadcast_add(self.b1.as_tensor())?
            .tanh()?;
        let mlp = hidden.matmul(self.w2.as_tensor())?;
        let mean = x.mean_keepdim(0)?.broadcast_as(x.shape())?;
        let pull = (mean - x)?.broadcast_mul(self.beta.as_tensor())?;
        let drift = (self.u.as_tensor() * t)?.unsqueeze(0)?.repeat((n, 1))?;
        spring + mlp + pull + drift
    }
}

struct Detached<'a>(&'a dyn ForceField);

impl ForceField for Detached<'_> {
    fn acceleration(&self, x: &Tensor, t: f64) -> candle_core::Result<Tensor> {
        self.0.acceleration(&x.detach(), t)
    }
}

fn cloud(n: usize, d: usize, seed: f64) -> Tensor {
    let vals: Vec<f64> = (0..n * d)
        .map(|i| ((i as f64) * 1.37 + seed).sin())
        .collect();
    Tensor::from_vec(vals, (n, d), &Device::Cpu).unwrap()
}

/// Loss `L = (1/k) Σ_m ⟨W_m, x_m⟩ + ½ α_m |x_m|²`.
fn loss_terms(k: usize, n: usize, d: usize) -> Vec<(Tensor, f64)> {
    (1..=k)
        .map(|m| (cloud(n, d, m as f64 * 0.31), 0.2 * m as f64))
        .collect()
}

/// The largest entry-wise relative error (`close::entry_rel`, floored at 1% of the RMS of `b`).
fn entry_rel(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    close::entry_rel(&flat(a), &flat(b))
}

fn check(integrator: Integrator, exact: bool) {
    let (n, d, hidden) = (7, 2, 5);
    let field = TestField::new(d, hidden).unwrap();
    let params = field.params();
    let theta = Var::from_tensor(&Tensor::new(0.4f64.ln(), &Device::Cpu).unwrap()).unwrap();
    let gamma_value = theta.as_tensor().exp().unwrap().to_scalar::<f64>().unwrap();
    let dts = [0.1, 0.25, 0.15, 0.2];
    let k = dts.len();
    let x0 = cloud(n, d, 0.0);
    let v0 = (cloud(n, d, 2.0) * 0.5).unwrap();
    let t0 = 0.3;
    let terms = loss_terms(k, n, d);

    // Plain backprop through the whole rollout.
    let gamma = theta.as_tensor().exp().unwrap();
    let detached = Detached(&field);
    let used: &dyn ForceField = if exact { &field } else { &detached };
    let mut state = State::new(used, x0.clone(), v0.clone(), t0).unwrap();
    let mut loss = Tensor::new(0.0f64, &Device::Cpu).unwrap();
    for (m, &dt) in dts.iter().enumerate() {
        state = integrator.step(used, &state, dt, &gamma).unwrap();
        let (w, alpha) = &terms[m];
        let term = ((&state.positions * w).unwrap().sum_all().unwrap()
            + (state.positions.sqr().unwrap().sum_all().unwrap() * (0.5 * alpha)).unwrap())
        .unwrap();
        loss = (loss + term).unwrap();
    }
    let loss = (loss / k as f64).unwrap();
    let store = loss.backward().unwrap();

    // Reverse sweep.
    let coefficients: Vec<_> = dts
        .iter()
        .map(|&dt| StepCoefficients::new(integrator, gamma_value, dt))
        .collect();
    let tape = forward(integrator, &field, &x0, &v0, t0, &coefficients).unwrap();
    let last = &state.positions;
    assert!(entry_rel(&tape.positions[k], last) < 1e-14);
    let loss_grads: Vec<Tensor> = (1..=k)
        .map(|m| {
            let (w, alpha) = &terms[m - 1];
            ((w + (&tape.positions[m] * *alpha).unwrap()).unwrap() / k as f64).unwrap()
        })
        .collect();
    let graphs = ForceDerivatives {
        field: &field,
        native: None,
    };
    let sweep = reverse_sweep(graphs, &tape, &loss_grads, &params, exact).unwrap();
    // The same sweep reusing the forward pass's graphs: all of them, two, or none.
    let one_graph = graph_bytes(&field.acceleration(&x0, t0).unwrap());
    assert!(one_graph > 0);
    for (budget, want_kept) in [(u64::MAX, k), (5 * one_graph / 2, 2), (1, 0)] {
        let keep = KeepGraphs {
            field: &field,
            exact,
            budget_bytes: budget,
            hidden_bytes: 0,
            native: None,
        };
        let kept_tape = forward_keeping(
            integrator,
            &field,
            Some(keep),
            &x0,
            &v0,
            t0,
            &coefficients,
            &mut |_, _| Ok(()),
        )
        .unwrap();
        let kept_count = kept_tape
            .kept
            .iter()
            .filter(|g| g.borrow().is_some())
            .count();
        assert_eq!(kept_count, want_kept, "budget {budget}");
        for (a, b) in kept_tape.positions.iter().zip(&tape.positions) {
            assert_eq!(entry_rel(a, b), 0.0);
        }
        let kept_sweep = reverse_sweep(graphs, &kept_tape, &loss_grads, &params, exact).unwrap();
        assert!(kept_tape.kept.iter().all(|g| g.borrow().is_none()));
        for (got, want) in kept_sweep.params.iter().zip(&sweep.params) {
            let err = entry_rel(got.as_ref().unwrap(), want.as_ref().unwrap());
            assert!(
                err < 1e-14,
                "{integrator:?} exact={exact} budget {budget}: {err}"
            );
        }
        assert!((kept_sweep.gamma - sweep.gamma).abs() <= 1e-14 * sweep.gamma.abs());
    }
    for (var, got) in params.iter().zip(&sweep.params) {
        let want = store.get(var.as_tensor()).unwrap();
        let err = entry_rel(got.as_ref().unwrap(), want);
        assert!(
            err < 1e-10,
            "{integrator:?} exact={exact}: parameter error {err}"
        );
    }
    let want_theta = store
        .get(theta.as_tensor())
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let got_theta = gamma_value * sweep.gamma;
    assert!(
        (got_theta - want_theta).abs() <= 1e-10 * want_theta.abs().max(1e-3),
        "{integrator:?} exact={exact}: friction {got_theta} vs {want_theta}"
    );
}

#[test]
fn reverse_sweep_equals_backprop_reference_leapfrog_detached() {
    check(Integrator::ReferenceLeapfrog, false);
}

#[test]
fn reverse_sweep_equals_backprop_reference_leapfrog_exact() {
    check(Integrator::ReferenceLeapfrog, true);
}

#[test]
fn reverse_sweep_equals_backprop_conformal_leapfrog_detached() {
    check(Integrator::ConformalLeapfrog, false);
}

#[test]
fn reverse_sweep_equals_backprop_conformal_leapfrog_exact() {
    check(Integrator::ConformalLeapfrog, true);
}

/// The model-level sweep that keeps graphs or native tapes (all, some, none) gives the
/// loss and gradients of the sweep that rebuilds them and of plain backprop, on an
/// attention energy with time features and learned friction, targets of unequal sizes,
/// both integrators and both position-gradient modes.
#[test]
fn keeping_graphs_equals_rebuilding_them_and_backprop_for_attention() {
    use crate::config::GradientMethod;
    use crate::model::{EnergyConfig, FrictionConfig, ModelConfig, Precision};
    use wlm_energy::AttentionEnergyConfig;
    use wlm_ot::SinkhornConfig;

    let problem = RolloutLoss {
        x0: cloud(9, 2, 0.1),
        v0: (cloud(9, 2, 2.0) * 0.4).unwrap(),
        t0: 0.5,
        dts: vec![0.1, 0.2, 0.15],
        targets: vec![cloud(8, 2, 3.0), cloud(10, 2, 4.0), cloud(7, 2, 5.0)],
        sinkhorn: SinkhornConfig {
            p: 2,
            blur: 0.3,
            scaling: 0.9,
            converge_final: None,
        },
    };
    let cases = [
        (Integrator::ReferenceLeapfrog, true),
        (Integrator::ReferenceLeapfrog, false),
        (Integrator::ConformalLeapfrog, true),
        (Integrator::ConformalLeapfrog, false),
    ];
    for (integrator, detach_positions) in cases {
        let config = ModelConfig {
            energy: EnergyConfig::Attention(AttentionEnergyConfig {
                dim: 2,
                heads: 2,
                hidden: 8,
                blocks: 2,
                ff: 16,
                time_features: true,
                dropout: 0.0,
            }),
            friction: FrictionConfig {
                gamma: 0.7,
                learnable: true,
            },
            integrator,
            detach_positions,
            precision: Precision::F64,
            init_seed: 3,
        };
        let model = Model::new(config, &Device::Cpu).unwrap();
        let plain = model
            .loss_and_gradients(&problem, GradientMethod::Backprop)
            .unwrap();
        let x0 = model.prepare(&problem.x0).unwrap();
        let field = model.force_field();
        let one_graph = graph_bytes(&field.acceleration(&x0, problem.t0).unwrap());
        let one_tape = model
            .energy()
            .force_tape(&x0, problem.t0)
            .unwrap()
            .expect("a native tape")
            .bytes();
        // The graph sweep, then the graph-free one (native tapes), each against its own
        // rebuilding sweep (bit for bit) and against plain backprop.
        for (native, one) in [(false, one_graph), (true, one_tape)] {
            let method = if native {
                GradientMethod::ReverseSweep
            } else {
                GradientMethod::GraphSweep
            };
            let rebuilt = model.loss_and_gradients(&problem, method).unwrap();
            for budget in [u64::MAX, 2 * one, 0] {
                let kept = model
                    .sweep_loss_and_gradients(&problem, budget, native)
                    .unwrap();
                let case = format!(
                    "{integrator:?} detach={detach_positions} native={native} budget {budget}"
                );
                assert_eq!(kept.loss, rebuilt.loss, "{case}");
                assert!(
                    (kept.loss - plain.loss).abs() < 1e-13 * plain.loss.abs(),
                    "{case}"
                );
                assert_eq!(kept.names, rebuilt.names);
                for (i, name) in kept.names.iter().enumerate() {
                    match (&kept.grads[i], &rebuilt.grads[i], &plain.grads[i]) {
                        (Some(a), Some(b), Some(c)) => {
                            let to_rebuilt = entry_rel(a, b);
                            let to_plain = entry_rel(a, c);
                            assert!(
                                // Parallel kept terms are summed in the sweep's order:
                                // the sequential rebuild's result, bit for bit.
                                to_rebuilt == 0.0 && to_plain < 1e-10,
                                "{case}: {name} {to_rebuilt:e} {to_plain:e}"
                            );
                        }
                        (None, None, None) => {}
                        _ => panic!("{case}: {name}: gradient present in only some methods"),
                    }
                }
            }
        }
    }
}
