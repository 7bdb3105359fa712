//! GF-SDE statistics: Ornstein–Uhlenbeck marginals, determinism, and the sign of the
//! probability-flow velocity.

use wlm_data::{
    load_csv, load_h5ad, load_particles_npz, write_csv, write_h5ad, write_particles_npz,
    GfSdeConfig, H5adConfig, H5adMatrix, Pairing, Potential, ScoreSign, Snapshots,
    VelocitySnapshots,
};

/// Per-coordinate sample mean and (unbiased) variance of snapshot `k`, pooled over coordinates.
fn moments(s: &Snapshots, k: usize) -> (Vec<f64>, f64) {
    let (x, d, n) = (s.positions(k), s.dim(), s.n_particles(k));
    let mean: Vec<f64> = (0..d)
        .map(|c| x.iter().skip(c).step_by(d).sum::<f64>() / n as f64)
        .collect();
    let var = (0..d)
        .map(|c| {
            x.iter()
                .skip(c)
                .step_by(d)
                .map(|v| (v - mean[c]).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (d * (n - 1)) as f64;
    (mean, var)
}

#[test]
fn quadratic_marginals_match_the_ornstein_uhlenbeck_solution() {
    // dX = −X dt + σ dW from N(0, v0 I): mean 0, variance σ²/2 + (v0 − σ²/2) e^{−2t} per
    // coordinate. Tolerances: 4.5 standard errors (mean √(var/N); variance var·√(2/(dN))).
    for pairing in [Pairing::Paired, Pairing::Unpaired] {
        let config = GfSdeConfig {
            n_particles: 4000,
            velocities: VelocitySnapshots::None,
            pairing,
            seed: 11,
            ..GfSdeConfig::default()
        };
        let s = config.generate().unwrap();
        let (n, d) = (config.n_particles as f64, config.dim as f64);
        for k in 0..s.len() {
            let t = s.times()[k];
            let want = 0.5 + (config.initial_variance - 0.5) * (-2.0 * t).exp();
            let (mean, var) = moments(&s, k);
            for m in mean {
                assert!(
                    m.abs() < 4.5 * (want / n).sqrt(),
                    "{pairing:?} t = {t}: mean {m}"
                );
            }
            let tol = 4.5 * want * (2.0 / (d * n)).sqrt();
            assert!(
                (var - want).abs() < tol,
                "{pairing:?} t = {t}: variance {var} vs {want} ± {tol}"
            );
        }
    }
}

#[test]
fn unpaired_snapshots_are_independent_samples() {
    // Paired snapshots 1 and 0 share their particles (correlation ≈ 1); unpaired ones do not.
    let correlation = |pairing| {
        let s = GfSdeConfig {
            n_particles: 2000,
            n_snapshots: 2,
            pairing,
            velocities: VelocitySnapshots::None,
            ..GfSdeConfig::default()
        }
        .generate()
        .unwrap();
        let (a, b) = (s.positions(0), s.positions(1));
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|y| y * y).sum::<f64>()).sqrt()
    };
    assert!(correlation(Pairing::Paired) > 0.9);
    assert!(correlation(Pairing::Unpaired).abs() < 0.1);
    assert!(correlation(Pairing::UnpairedBootstrap).abs() < 0.1);
}

#[test]
fn one_seed_gives_identical_data_and_another_seed_does_not() {
    for potential in Potential::ALL {
        let config = GfSdeConfig {
            n_particles: 200,
            potential,
            seed: 5,
            ..GfSdeConfig::default()
        };
        let a = config.generate().unwrap();
        assert_eq!(a, config.generate().unwrap(), "{potential}");
        let other = GfSdeConfig { seed: 6, ..config }.generate().unwrap();
        assert_ne!(a.positions(0), other.positions(0), "{potential}");
    }
}

/// Second moment `m₂ = mean |x|²` and the rate `mean 2 x·v` the velocities predict for it.
fn second_moment_and_rate(s: &Snapshots, k: usize) -> (f64, f64) {
    let (x, v, n) = (
        s.positions(k),
        s.velocities(k).unwrap(),
        s.n_particles(k) as f64,
    );
    let m2 = x.iter().map(|x| x * x).sum::<f64>() / n;
    let rate = 2.0 * x.iter().zip(v).map(|(x, v)| x * v).sum::<f64>() / n;
    (m2, rate)
}

#[test]
fn probability_flow_velocities_predict_the_change_of_the_second_moment() {
    // Along the flow, d m₂/dt = mean 2 x·v. From N(0, 0.2 I) in the quadratic potential the
    // cloud spreads (m₂: 0.4 → 1), so the correct velocity predicts growth; the reference's
    // sign predicts shrinking. The kernel score's smoothing biases the prediction low (its
    // entropic term is ~15 % weak, which makes the predicted change ~25 % low at N = 2000) and
    // the observed change has a sampling error of ~10 %, so 40 % is allowed.
    let config = GfSdeConfig {
        n_particles: 2000,
        n_snapshots: 11,
        seed: 4,
        ..GfSdeConfig::default()
    };
    let s = config.generate().unwrap();
    let steps = s.len() - 1;
    let observed = second_moment_and_rate(&s, steps).0 - second_moment_and_rate(&s, 0).0;
    let rates: Vec<f64> = (0..=steps)
        .map(|k| second_moment_and_rate(&s, k).1)
        .collect();
    let predicted: f64 = (0..steps)
        .map(|k| 0.5 * (rates[k] + rates[k + 1]) * config.dt)
        .sum();
    // The observed change is the Ornstein–Uhlenbeck one given the start: (e^{−2t} − 1) m₂(0)
    // + d σ²/2 (1 − e^{−2t}), within 4 sampling standard deviations (0.011 at N = 2000).
    let t = s.times()[steps];
    let m2_start = second_moment_and_rate(&s, 0).0;
    let expected = ((-2.0 * t).exp() - 1.0) * m2_start + (1.0 - (-2.0 * t).exp());
    assert!(
        (observed - expected).abs() < 0.045,
        "observed {observed} vs expected {expected}"
    );
    assert!(
        (predicted - observed).abs() < 0.4 * observed,
        "predicted {predicted} vs observed {observed}"
    );
    assert!(rates.iter().all(|&r| r > 0.0), "{rates:?}");

    let reference = GfSdeConfig {
        score_sign: ScoreSign::Reference,
        ..config
    }
    .generate()
    .unwrap();
    let (_, rate) = second_moment_and_rate(&reference, 0);
    assert!(
        rate < -1.0,
        "the reference sign predicts shrinking: rate {rate}"
    );
}

#[test]
fn partial_velocities_round_trip_through_the_writers() {
    let s = GfSdeConfig {
        n_particles: 50,
        n_snapshots: 5,
        velocities: VelocitySnapshots::First,
        ..GfSdeConfig::default()
    }
    .generate()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("gf.npz");
    write_particles_npz(&npz, &s).unwrap();
    assert_eq!(load_particles_npz(&npz, None).unwrap(), s);
    let csv = dir.path().join("gf.csv");
    write_csv(&csv, &s).unwrap();
    assert_eq!(load_csv(&csv).unwrap(), s);
    let config = H5adConfig {
        velocity: Some(H5adMatrix::Obsm("velocity".into())),
        ..H5adConfig::default()
    };
    let h5ad = dir.path().join("gf.h5ad");
    write_h5ad(&h5ad, &s, &config).unwrap();
    let back = load_h5ad(&h5ad, &config).unwrap();
    assert_eq!(back.velocities(0), s.velocities(0));
    assert_eq!(back.velocities(1), None);
    assert_eq!(back.positions(4), s.positions(4));
}
