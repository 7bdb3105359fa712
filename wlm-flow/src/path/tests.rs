//! Paths against independent closed forms, finite differences and the action integral.

use super::*;
use wlm_numeric::SeedRng;

fn cloud(rng: &mut SeedRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn eval(path: &Path, x0: &[f64], x1: &[f64], tau: f64, velocity: bool) -> Vec<f64> {
    let mut out = vec![0.0; x0.len()];
    if velocity {
        path.velocity(x0, x1, tau, &mut out);
    } else {
        path.position(x0, x1, tau, &mut out);
    }
    out
}

fn anisotropic(rng: &mut SeedRng, dim: usize) -> Path {
    // A stretched cloud so the principal directions are well defined.
    let data: Vec<f64> = (0..200 * dim)
        .map(|i| rng.normal() * (1.0 + (i % dim) as f64) + 0.3 * (i % dim) as f64)
        .collect();
    Path::new(
        &PathKind::Anisotropic {
            omega_base: 0.7,
            omega_ratio: 2.5,
        },
        &data,
        dim,
    )
    .unwrap()
}

#[test]
fn harmonic_position_and_velocity_match_torchlfm_closed_form() {
    // torchlfm: μ = cos(ωt) x₀ + sin(ωt)(x₁ − cos ω x₀)/sin ω,
    //           u = −ω sin(ωt) x₀ + ω cos(ωt)(x₁ − cos ω x₀)/sin ω.
    let mut rng = SeedRng::seed_from(1);
    for omega in [0.3, 1.0, std::f64::consts::FRAC_PI_2, 3.0] {
        let path = Path::Harmonic { omega };
        for _ in 0..20 {
            let (x0, x1, t) = (cloud(&mut rng, 3), cloud(&mut rng, 3), rng.uniform());
            let mu = eval(&path, &x0, &x1, t, false);
            let u = eval(&path, &x0, &x1, t, true);
            for k in 0..3 {
                let b = (x1[k] - omega.cos() * x0[k]) / omega.sin();
                let mu_ref = (omega * t).cos() * x0[k] + (omega * t).sin() * b;
                let u_ref = -omega * (omega * t).sin() * x0[k] + omega * (omega * t).cos() * b;
                assert!((mu[k] - mu_ref).abs() < 1e-12 * (1.0 + mu_ref.abs()));
                assert!((u[k] - u_ref).abs() < 1e-11 * (1.0 + u_ref.abs()));
            }
        }
    }
}

#[test]
fn linear_path_is_the_straight_line() {
    let mut rng = SeedRng::seed_from(2);
    let (x0, x1) = (cloud(&mut rng, 4), cloud(&mut rng, 4));
    let mu = eval(&Path::Linear, &x0, &x1, 0.25, false);
    let u = eval(&Path::Linear, &x0, &x1, 0.25, true);
    for k in 0..4 {
        assert!((mu[k] - (0.75 * x0[k] + 0.25 * x1[k])).abs() < 1e-15);
        assert!((u[k] - (x1[k] - x0[k])).abs() < 1e-15);
    }
}

#[test]
fn velocities_are_central_differences_of_positions_and_endpoints_hold() {
    let mut rng = SeedRng::seed_from(3);
    let paths = vec![
        Path::Linear,
        Path::Harmonic { omega: 0.9 },
        Path::Harmonic { omega: 2.8 },
        anisotropic(&mut rng, 3),
    ];
    let h = 1e-5;
    for path in &paths {
        for _ in 0..20 {
            let (x0, x1) = (cloud(&mut rng, 3), cloud(&mut rng, 3));
            let t = 0.05 + 0.9 * rng.uniform();
            let (plus, minus) = (
                eval(path, &x0, &x1, t + h, false),
                eval(path, &x0, &x1, t - h, false),
            );
            let u = eval(path, &x0, &x1, t, true);
            for k in 0..3 {
                let fd = (plus[k] - minus[k]) / (2.0 * h);
                assert!(
                    (u[k] - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{path:?}: {} vs {fd}",
                    u[k]
                );
            }
            let (start, end) = (
                eval(path, &x0, &x1, 0.0, false),
                eval(path, &x0, &x1, 1.0, false),
            );
            for k in 0..3 {
                assert!((start[k] - x0[k]).abs() < 1e-12 && (end[k] - x1[k]).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn small_omega_gives_the_linear_path() {
    let mut rng = SeedRng::seed_from(4);
    let harmonic = Path::Harmonic { omega: 1e-4 };
    for _ in 0..50 {
        let (x0, x1, t) = (cloud(&mut rng, 5), cloud(&mut rng, 5), rng.uniform());
        for velocity in [false, true] {
            let (a, b) = (
                eval(&harmonic, &x0, &x1, t, velocity),
                eval(&Path::Linear, &x0, &x1, t, velocity),
            );
            for k in 0..5 {
                assert!((a[k] - b[k]).abs() < 1e-6, "{} vs {}", a[k], b[k]);
            }
        }
    }
}

#[test]
fn action_cost_is_the_integral_of_the_lagrangian_along_the_path() {
    // Simpson's rule on L = ½|u|² − ½ Σ ω_k² y_k² (y: coordinates about the path's centre).
    let mut rng = SeedRng::seed_from(5);
    let aniso = anisotropic(&mut rng, 2);
    let paths = vec![Path::Linear, Path::Harmonic { omega: 1.3 }, aniso];
    let n = 2000;
    for path in &paths {
        let (x0, x1) = (cloud(&mut rng, 2), cloud(&mut rng, 2));
        let lagrangian = |t: f64| {
            let (mu, u) = (
                eval(path, &x0, &x1, t, false),
                eval(path, &x0, &x1, t, true),
            );
            let kinetic = 0.5 * u.iter().map(|v| v * v).sum::<f64>();
            let potential = match path {
                Path::Linear => 0.0,
                Path::Harmonic { omega } => {
                    0.5 * omega * omega * mu.iter().map(|m| m * m).sum::<f64>()
                }
                Path::Anisotropic(b) => {
                    let y = b.to_principal(&mu);
                    0.5 * y
                        .iter()
                        .zip(&b.omegas)
                        .map(|(y, w)| w * w * y * y)
                        .sum::<f64>()
                }
            };
            kinetic - potential
        };
        let step = 1.0 / n as f64;
        let integral: f64 = (0..=n)
            .map(|i| {
                let w = if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                w * lagrangian(i as f64 * step)
            })
            .sum::<f64>()
            * step
            / 3.0;
        let closed = path.action_cost(&x0, &x1);
        assert!(
            (integral - closed).abs() < 1e-9 * (1.0 + closed.abs()),
            "{path:?}: {integral} vs {closed}"
        );
    }
}

#[test]
fn equal_anisotropic_frequencies_give_the_harmonic_path_about_the_mean() {
    let mut rng = SeedRng::seed_from(6);
    let data: Vec<f64> = (0..300)
        .map(|i| rng.normal() * (1 + i % 3) as f64)
        .collect();
    let aniso = Path::new(
        &PathKind::Anisotropic {
            omega_base: 1.1,
            omega_ratio: 1.0,
        },
        &data,
        3,
    )
    .unwrap();
    let Path::Anisotropic(basis) = &aniso else {
        unreachable!()
    };
    let harmonic = Path::Harmonic { omega: 1.1 };
    let (x0, x1, t) = (cloud(&mut rng, 3), cloud(&mut rng, 3), 0.37);
    let shift = |x: &[f64]| {
        x.iter()
            .zip(&basis.center)
            .map(|(a, c)| a - c)
            .collect::<Vec<_>>()
    };
    let want = eval(&harmonic, &shift(&x0), &shift(&x1), t, false);
    let got = eval(&aniso, &x0, &x1, t, false);
    for k in 0..3 {
        assert!((got[k] - basis.center[k] - want[k]).abs() < 1e-12);
    }
}
