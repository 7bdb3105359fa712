//! `wlm landscape` on tiny trained runs: the arrays against the potential a run was given,
//! the PNG, and bad flags.

use wlm_data::{load_npz_array, Snapshots};

use crate::common::{check_png, fails, numbers, ok, small_snapshots, wlm_in};

/// A run whose energy is the Styblinski–Tang potential summed over particles (no network), in
/// 3-D: the landscape must be that potential on the principal plane.
const ANALYTIC: &str = r#"(
    name: "analytic",
    data: (source: Particles("data3.npz")),
    model: (
        energy: Analytic(potential: StyblinskiTang, dim: 3),
        friction: (gamma: 0.25, learnable: false),
        precision: F64,
    ),
    train: (steps: 1, lr: 1e-3),
    eval: (steps_per_interval: 1),
    split: Forecast(n_train: 3),
)
"#;

const TINY: &str = r#"(
    name: "tiny",
    data: (source: Particles("data.npz")),
    model: (
        energy: Attention((dim: 2, heads: 1, hidden: 8, blocks: 1, ff: 8)),
        friction: (gamma: 0.5, learnable: true),
    ),
    train: (steps: 2, lr: 1e-3),
    eval: (steps_per_interval: 1),
    split: Forecast(n_train: 4),
)
"#;

fn psi(y: &[f64]) -> f64 {
    0.5 * y
        .iter()
        .map(|v| v.powi(4) - 16.0 * v * v + 5.0 * v)
        .sum::<f64>()
}

#[test]
fn landscape_of_an_analytic_run_is_its_potential_on_the_principal_plane() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // 3-D clouds, stretched along the first axis.
    let clouds = (0..4)
        .map(|k| {
            numbers(20 * 3, k + 7)
                .chunks_exact(3)
                .flat_map(|c| [3.0 * c[0], c[1], 0.3 * c[2]])
                .collect()
        })
        .collect();
    let velocities = Some((0..4).map(|_| Some(vec![0.0; 60])).collect());
    let data = Snapshots::new(vec![0.0, 0.5, 1.0, 1.5], 3, clouds, velocities).unwrap();
    wlm_data::write_particles_npz(p.join("data3.npz"), &data).unwrap();
    std::fs::write(p.join("analytic.ron"), ANALYTIC).unwrap();
    ok(&wlm_in(
        p,
        &["train", "--config", "analytic.ron", "--run-dir", "run"],
    ));
    let out = ok(&wlm_in(
        p,
        &[
            "landscape",
            "--run-dir",
            "run",
            "--snapshot",
            "1",
            "--grid",
            "7",
            "--out",
            "figs",
        ],
    ));
    assert!(
        out.contains("landscape-1.npz") && out.contains("landscape-1.png"),
        "{out}"
    );
    let npz = p.join("figs/landscape-1.npz");
    let get = |key: &str| load_npz_array(&npz, key).unwrap();
    let (u, v, energy, force) = (get("u"), get("v"), get("energy"), get("force"));
    let (origin, axes) = (get("origin").data, get("axes").data);
    assert_eq!(
        (energy.shape.clone(), force.shape.clone()),
        (vec![7, 7], vec![7, 7, 2])
    );
    assert_eq!(get("axes").shape, [2, 3]);
    assert_eq!(get("friction").data, [0.25]);
    assert_eq!(get("time").data, [0.5]);
    assert_eq!(get("snapshot").shape, [20, 2]);
    // Energies: ψ at the lifted grid points, up to a constant.
    let lift = |a: f64, b: f64| -> Vec<f64> {
        (0..3)
            .map(|i| origin[i] + a * axes[i] + b * axes[3 + i])
            .collect()
    };
    let mut expected = Vec::new();
    for &b in &v.data {
        for &a in &u.data {
            expected.push(psi(&lift(a, b)));
        }
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (m_got, m_want) = (mean(&energy.data), mean(&expected));
    for (k, (got, want)) in energy.data.iter().zip(&expected).enumerate() {
        assert!(
            ((got - m_got) - (want - m_want)).abs() < 1e-6,
            "grid point {k}: {got} vs {want}"
        );
    }
    // Forces: minus the central difference of ψ along each plane axis.
    let h = 1e-5;
    for (j, &b) in v.data.iter().enumerate() {
        for (i, &a) in u.data.iter().enumerate() {
            let k = j * 7 + i;
            let fd_u = (psi(&lift(a + h, b)) - psi(&lift(a - h, b))) / (2.0 * h);
            let fd_v = (psi(&lift(a, b + h)) - psi(&lift(a, b - h))) / (2.0 * h);
            for (got, want) in [(force.data[2 * k], -fd_u), (force.data[2 * k + 1], -fd_v)] {
                assert!(
                    (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                    "{got} vs {want}"
                );
            }
        }
    }
    check_png(&p.join("figs/landscape-1.png"));
}

#[test]
fn landscape_of_a_trained_attention_run_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = small_snapshots(6, 16);
    wlm_data::write_particles_npz(p.join("data.npz"), &data).unwrap();
    std::fs::write(p.join("tiny.ron"), TINY).unwrap();
    ok(&wlm_in(
        p,
        &["train", "--config", "tiny.ron", "--run-dir", "run"],
    ));
    ok(&wlm_in(
        p,
        &[
            "landscape",
            "--run-dir",
            "run",
            "--snapshot",
            "2",
            "--grid",
            "12",
        ],
    ));
    let npz = p.join("run/plots/landscape-2.npz");
    let snapshot = load_npz_array(&npz, "snapshot").unwrap();
    // 2-D data: the plane is the data plane, the snapshot its own coordinates.
    assert_eq!(snapshot.data, data.positions(2));
    let energy = load_npz_array(&npz, "energy").unwrap();
    assert_eq!(energy.shape, [12, 12]);
    assert!(energy.data.iter().all(|e| e.is_finite()));
    let friction = load_npz_array(&npz, "friction").unwrap().data[0];
    assert!(friction > 0.0 && friction.is_finite(), "{friction}");
    let (w, h) = check_png(&p.join("run/plots/landscape-2.png"));
    assert!(w >= 600 && h >= 500, "{w}×{h}");

    let err = fails(&wlm_in(
        p,
        &["landscape", "--run-dir", "run", "--snapshot", "6"],
    ));
    assert!(
        err.contains("--snapshot 6") && err.contains("6 snapshots"),
        "{err}"
    );
    let err = fails(&wlm_in(
        p,
        &["landscape", "--run-dir", "run", "--grid", "1"],
    ));
    assert!(err.contains("--grid 1"), "{err}");
    let err = fails(&wlm_in(p, &["landscape", "--run-dir", "nowhere"]));
    assert!(err.contains("nowhere"), "{err}");
}
