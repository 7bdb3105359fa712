//! `wlm simulate boids|gf-sde`.

use wlm_data::load_particles_npz;

use crate::common::{fails, numbers, ok, wlm_in, write_cloud_npy};

#[test]
fn simulate_boids_writes_the_particle_layout_with_times() {
    let dir = tempfile::tempdir().unwrap();
    ok(&wlm_in(
        dir.path(),
        &[
            "simulate",
            "boids",
            "-n",
            "30",
            "--n-snapshots",
            "5",
            "--seed",
            "3",
            "--out",
            "b.npz",
        ],
    ));
    let s = load_particles_npz(dir.path().join("b.npz"), None).unwrap();
    assert_eq!((s.len(), s.n_particles(0), s.dim()), (5, 30, 2));
    assert!(s.has_all_velocities());
    assert_eq!(s.times()[4], 2.0, "record k is at k · 0.5");
    // Unit speeds after the first step (the reference normalises velocities).
    let v = s.velocities(2).unwrap();
    for p in v.chunks(2) {
        assert!(((p[0] * p[0] + p[1] * p[1]).sqrt() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn simulate_boids_from_a_given_start_keeps_it_as_snapshot_zero() {
    let dir = tempfile::tempdir().unwrap();
    let start = wlm_data::Snapshots::new(
        vec![0.0],
        2,
        vec![numbers(20, 5)],
        Some(vec![Some(numbers(20, 6))]),
    )
    .unwrap();
    wlm_data::write_particles_npz(dir.path().join("start.npz"), &start).unwrap();
    ok(&wlm_in(
        dir.path(),
        &[
            "simulate",
            "boids",
            "--init",
            "start.npz",
            "--n-snapshots",
            "3",
            "--out",
            "b.npz",
        ],
    ));
    let s = load_particles_npz(dir.path().join("b.npz"), None).unwrap();
    assert_eq!(s.n_particles(0), 10);
    assert_eq!(s.positions(0), start.positions(0));
    // An .npy start has no velocities, which Boids need.
    write_cloud_npy(&dir.path().join("x.npy"), &numbers(20, 5), 10, 2);
    let err = fails(&wlm_in(
        dir.path(),
        &["simulate", "boids", "--init", "x.npy", "--out", "c.npz"],
    ));
    assert!(err.contains("x.npy") && err.contains("velocities"), "{err}");
}

#[test]
fn simulate_gf_sde_matches_the_data_crate_and_accepts_a_start() {
    let dir = tempfile::tempdir().unwrap();
    ok(&wlm_in(
        dir.path(),
        &[
            "simulate",
            "gf-sde",
            "--potential",
            "styblinski-tang",
            "-n",
            "40",
            "--n-snapshots",
            "4",
            "--seed",
            "2",
            "--out",
            "g.npz",
        ],
    ));
    let s = load_particles_npz(dir.path().join("g.npz"), None).unwrap();
    let expected = wlm_data::GfSdeConfig {
        potential: wlm_data::Potential::StyblinskiTang,
        n_particles: 40,
        n_snapshots: 4,
        seed: 2,
        ..wlm_data::GfSdeConfig::default()
    }
    .generate()
    .unwrap();
    assert_eq!(s, expected);
    write_cloud_npy(&dir.path().join("x0.npy"), &numbers(50 * 2, 9), 50, 2);
    ok(&wlm_in(
        dir.path(),
        &[
            "simulate",
            "gf-sde",
            "--init",
            "x0.npy",
            "--n-snapshots",
            "3",
            "--dt",
            "0.05",
            "--out",
            "h.npz",
        ],
    ));
    let h = load_particles_npz(dir.path().join("h.npz"), None).unwrap();
    assert_eq!((h.len(), h.n_particles(2)), (3, 50));
    assert_eq!(h.positions(0), numbers(100, 9).as_slice());
    assert!(h.has_all_velocities());
    assert!((h.times()[2] - 0.1).abs() < 1e-12);
}

#[test]
fn simulate_rejects_bad_starts_and_options() {
    let dir = tempfile::tempdir().unwrap();
    write_cloud_npy(&dir.path().join("flat.npy"), &numbers(4, 1), 1, 4);
    std::fs::write(dir.path().join("broken.npz"), b"nonsense").unwrap();
    let err = fails(&wlm_in(
        dir.path(),
        &[
            "simulate",
            "gf-sde",
            "--init",
            "broken.npz",
            "--out",
            "o.npz",
        ],
    ));
    assert!(err.contains("broken.npz"), "{err}");
    let err = fails(&wlm_in(
        dir.path(),
        &["simulate", "gf-sde", "--dt", "-1", "--out", "o.npz"],
    ));
    assert!(err.contains("dt"), "{err}");
    let err = fails(&wlm_in(
        dir.path(),
        &["simulate", "boids", "--n-snapshots", "0", "--out", "o.npz"],
    ));
    assert!(
        err.contains("n_records") || err.contains("snapshots"),
        "{err}"
    );
    assert!(!dir.path().join("o.npz").exists());
}

#[test]
fn a_huge_snapshot_count_is_an_error_naming_it_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, n) in [
        ("boids", "1000000000000000000"),
        ("gf-sde", "1000000000000000000"),
    ] {
        let err = fails(&wlm_in(
            dir.path(),
            &["simulate", kind, "--n-snapshots", n, "--out", "b.npz"],
        ));
        assert!(err.contains(n) && err.contains("bytes"), "{kind}: {err}");
    }
    assert!(!dir.path().join("b.npz").exists());
}
