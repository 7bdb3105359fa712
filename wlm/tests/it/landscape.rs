//! The landscape of analytic potentials against the potentials themselves, and its forces
//! against finite differences of its energies.

use candle_core::{DType, Device};
use wlm::{landscape, linspace, EnergyAt, EnergyConfig, Model, ModelConfig, Plane, Precision};
use wlm_energy::{AnalyticPotential, AttentionEnergyConfig};
use wlm_numeric::SeedRng;

/// `ψ` written out here, independently of wlm-energy's candle implementation.
fn psi(potential: &AnalyticPotential, y: &[f64]) -> f64 {
    match potential {
        AnalyticPotential::Quadratic => 0.5 * y.iter().map(|v| v * v).sum::<f64>(),
        AnalyticPotential::StyblinskiTang => {
            0.5 * y
                .iter()
                .map(|v| v.powi(4) - 16.0 * v * v + 5.0 * v)
                .sum::<f64>()
        }
        other => panic!("no test formula for {other:?}"),
    }
}

/// Central difference of `ψ` along `direction` at `y`.
fn directional_derivative(potential: &AnalyticPotential, y: &[f64], direction: &[f64]) -> f64 {
    let h = 1e-5;
    let shifted =
        |s: f64| -> Vec<f64> { y.iter().zip(direction).map(|(y, d)| y + s * d).collect() };
    (psi(potential, &shifted(h)) - psi(potential, &shifted(-h))) / (2.0 * h)
}

fn centred(values: &[f64]) -> Vec<f64> {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| v - mean).collect()
}

/// A random population of `n` particles in `dim` dimensions, stretched along the first axes
/// so that the principal plane is well defined.
fn population(rng: &mut SeedRng, n: usize, dim: usize) -> Vec<f64> {
    (0..n * dim)
        .map(|i| rng.normal() * [2.0, 1.5, 0.3, 0.2, 0.1][(i % dim).min(4)] + 0.1)
        .collect()
}

/// Landscape energies equal `ψ(y)` and forces `−∇ψ(y)` projected on the plane, for the
/// quadratic and Styblinski–Tang potentials summed over particles, in 2-D (the data plane)
/// and 4-D (the principal plane).
#[test]
fn landscape_of_a_separable_potential_is_the_potential_and_its_gradient() {
    let mut rng = SeedRng::seed_from(11);
    for potential in [
        AnalyticPotential::Quadratic,
        AnalyticPotential::StyblinskiTang,
    ] {
        for dim in [2, 4] {
            let x = population(&mut rng, 40, dim);
            let plane = Plane::principal(&x, dim).unwrap();
            let energy = EnergyAt {
                energy: &potential,
                time: 0.0,
                dtype: DType::F64,
                device: Device::Cpu,
            };
            let (u, v) = (linspace(-3.0, 3.5, 14), linspace(-2.5, 2.0, 11));
            let l = landscape(&energy, &x, &plane, &u, &v).unwrap();
            let mut expected = Vec::new();
            for (j, &b) in v.iter().enumerate() {
                for (i, &a) in u.iter().enumerate() {
                    let y = plane.lift(a, b);
                    expected.push(psi(&potential, &y));
                    let k = j * u.len() + i;
                    for (c, axis) in plane.axes.iter().enumerate() {
                        let want = -directional_derivative(&potential, &y, axis);
                        let got = l.force[2 * k + c];
                        assert!(
                            (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                            "{potential:?} d={dim} ({a}, {b}) axis {c}: force {got} vs {want}"
                        );
                    }
                }
            }
            for (k, (got, want)) in centred(&l.energy)
                .iter()
                .zip(centred(&expected))
                .enumerate()
            {
                assert!(
                    (got - want).abs() <= 1e-6,
                    "{potential:?} d={dim} grid point {k}: energy {got} vs {want}"
                );
            }
            let e_x: f64 = x.chunks_exact(dim).map(|p| psi(&potential, p)).sum();
            assert!((l.population_energy - e_x).abs() <= 1e-9 * (1.0 + e_x.abs()));
        }
    }
}

/// With an interacting energy the probe changes every pair term: the landscape of the
/// harmonic trap with soft repulsion equals the difference of the total energies written out
/// here, through the closure seam.
#[test]
fn landscape_of_an_interacting_energy_is_the_energy_difference() {
    let (k, a, ell) = (0.7, 0.4, 0.8);
    let potential = AnalyticPotential::HarmonicRepulsion {
        stiffness: k,
        repulsion: a,
        length: ell,
    };
    let total = |x: &[f64], dim: usize| -> f64 {
        let n = x.len() / dim;
        let mut e = 0.5 * k * x.iter().map(|v| v * v).sum::<f64>();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let d2: f64 = (0..dim)
                        .map(|c| (x[i * dim + c] - x[j * dim + c]).powi(2))
                        .sum();
                    e += a / n as f64 * (-d2 / (2.0 * ell * ell)).exp();
                }
            }
        }
        e
    };
    let mut rng = SeedRng::seed_from(5);
    let dim = 3;
    let x = population(&mut rng, 25, dim);
    let plane = Plane::principal(&x, dim).unwrap();
    let (u, v) = (linspace(-2.0, 2.0, 7), linspace(-1.0, 1.5, 6));
    let by_candle = EnergyAt {
        energy: &potential,
        time: 0.0,
        dtype: DType::F64,
        device: Device::Cpu,
    };
    let l = landscape(&by_candle, &x, &plane, &u, &v).unwrap();
    let by_hand = |p: &[f64], dim: usize| -> wlm::Result<(f64, Vec<f64>)> {
        Ok((total(p, dim), vec![0.0; p.len()]))
    };
    let reference = landscape(&by_hand, &x, &plane, &u, &v).unwrap();
    for (got, want) in l.energy.iter().zip(&reference.energy) {
        assert!(
            (got - want).abs() <= 1e-10 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
    // The force is minus the gradient of the landscape: central differences of it.
    let h = 1e-5;
    for (j, &b) in v.iter().enumerate() {
        for (i, &a0) in u.iter().enumerate() {
            let at = |du: f64, dv: f64| {
                landscape(&by_hand, &x, &plane, &[a0 + du], &[b + dv])
                    .unwrap()
                    .energy[0]
            };
            let want = [
                -(at(h, 0.0) - at(-h, 0.0)) / (2.0 * h),
                -(at(0.0, h) - at(0.0, -h)) / (2.0 * h),
            ];
            let kk = j * u.len() + i;
            for c in 0..2 {
                let got = l.force[2 * kk + c];
                assert!(
                    (got - want[c]).abs() <= 1e-6 * (1.0 + want[c].abs()),
                    "{got} vs {want:?}"
                );
            }
        }
    }
}

/// A trained model's energy (the attention energy, f64) through `Model::energy`: the probe
/// force is minus the finite-difference gradient of the probe energy.
#[test]
fn attention_landscape_force_is_minus_the_gradient_of_its_energy() {
    let config = ModelConfig {
        energy: EnergyConfig::Attention(AttentionEnergyConfig {
            dim: 2,
            heads: 2,
            hidden: 8,
            blocks: 1,
            ff: 8,
            time_features: true,
            ..AttentionEnergyConfig::default()
        }),
        precision: Precision::F64,
        init_seed: 4,
        ..ModelConfig::default()
    };
    let model = Model::new(config, &Device::Cpu).unwrap();
    let energy = EnergyAt {
        energy: model.energy(),
        time: 0.3,
        dtype: DType::F64,
        device: Device::Cpu,
    };
    let mut rng = SeedRng::seed_from(9);
    let x = population(&mut rng, 30, 2);
    let plane = Plane::coordinate(2).unwrap();
    let (u, v) = (linspace(-2.0, 2.0, 4), linspace(-1.0, 1.0, 3));
    let l = landscape(&energy, &x, &plane, &u, &v).unwrap();
    let h = 1e-5;
    for (j, &b) in v.iter().enumerate() {
        for (i, &a) in u.iter().enumerate() {
            let at = |du: f64, dv: f64| {
                landscape(&energy, &x, &plane, &[a + du], &[b + dv])
                    .unwrap()
                    .energy[0]
            };
            let want = [
                -(at(h, 0.0) - at(-h, 0.0)) / (2.0 * h),
                -(at(0.0, h) - at(0.0, -h)) / (2.0 * h),
            ];
            let k = j * u.len() + i;
            for c in 0..2 {
                let got = l.force[2 * k + c];
                assert!(
                    (got - want[c]).abs() <= 1e-6 * (1.0 + want[c].abs()),
                    "{got} vs {want:?}"
                );
            }
        }
    }
    // Bad input is an error naming the problem, not a panic.
    let err = landscape(&energy, &x[..3], &plane, &u, &v).unwrap_err();
    assert!(err.to_string().contains("3 population values"), "{err}");
}
