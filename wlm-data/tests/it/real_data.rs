//! Every data file in `shared/data` loads with the shapes PROVENANCE.md states, and every
//! loaded data set round-trips through every writer.

use std::path::Path;

use wlm_data::{
    load_csv, load_h5ad, load_npy, load_particles_npz, load_snapmmd_npz, write_csv, write_h5ad,
    write_npy, write_particles_npz, H5adConfig, H5adMatrix, Snapshots,
};

use crate::shared_data;

/// File (relative to shared/data), loader, (T, N, d), velocities, one known point
/// `(snapshot, point, positions)`, and for some files one known velocity.
struct Expected {
    file: &'static str,
    loader: Loader,
    shape: (usize, usize, usize),
    has_velocities: bool,
    position: (usize, usize, &'static [f64]),
    velocity: Option<(usize, usize, &'static [f64])>,
}

#[derive(Clone, Copy)]
enum Loader {
    Particles,
    SnapMmd,
    Npy,
}

// A table on purpose: one row per file (`duplicates` pairs rows of the same shape).
const EXPECTED: &[Expected] = &[
    Expected {
        file: "oceans/oceans_with_v0.npz",
        loader: Loader::Particles,
        shape: (9, 111, 2),
        has_velocities: true,
        position: (0, 0, &[-0.6446159075413931, -0.2988474686082725]),
        velocity: Some((8, 110, &[-0.181099563837051, 0.92196398973465])),
    },
    Expected {
        file: "oceans/big_oceans_forecast.npz",
        loader: Loader::Particles,
        shape: (11, 400, 2),
        has_velocities: true,
        position: (10, 399, &[1.360520919366536, -0.5005495586702899]),
        velocity: Some((0, 0, &[-0.438245117664337, -0.393568158149719])),
    },
    Expected {
        file: "oceans/GoM_data.npz",
        loader: Loader::SnapMmd,
        shape: (11, 200, 2),
        has_velocities: false,
        position: (10, 199, &[0.7774040679425077, -0.9412554222077357]),
        velocity: None,
    },
    Expected {
        file: "oceans/GoM_data_interp_val.npz",
        loader: Loader::SnapMmd,
        shape: (9, 200, 2),
        has_velocities: false,
        position: (0, 0, &[-0.18041405426027715, -0.8595284887849483]),
        velocity: None,
    },
    Expected {
        file: "oceans/GoMvortex_data.npy",
        loader: Loader::Npy,
        shape: (9, 111, 2),
        has_velocities: false,
        position: (8, 110, &[1.0844329575096623, 0.04021930015536057]),
        velocity: None,
    },
    Expected {
        file: "oceans/GoMvortexsmall_data.npy",
        loader: Loader::Npy,
        shape: (9, 111, 2),
        has_velocities: false,
        position: (1, 2, &[-0.03591284008935247, 0.3939336507823228]),
        velocity: None,
    },
    Expected {
        file: "eb/eb_300.npy",
        loader: Loader::Npy,
        shape: (5, 300, 5),
        has_velocities: false,
        position: (
            4,
            299,
            &[
                -0.004848220539860989,
                0.609984481837738,
                0.6311898077755677,
                -0.4888304919883663,
                -0.9365956124594165,
            ],
        ),
        velocity: None,
    },
];

fn load(path: &Path, loader: Loader) -> wlm_data::Result<Snapshots> {
    match loader {
        Loader::Particles => load_particles_npz(path, None),
        Loader::SnapMmd => load_snapmmd_npz(path),
        Loader::Npy => load_npy(path, None),
    }
}

fn point(values: &[f64], dim: usize, i: usize) -> &[f64] {
    &values[i * dim..(i + 1) * dim]
}

#[test]
fn every_shared_data_file_loads_with_its_documented_shape() {
    let Some(dir) = shared_data("the shared data files") else {
        return;
    };
    for e in EXPECTED {
        let path = dir.join(e.file);
        let s = load(&path, e.loader).unwrap_or_else(|err| panic!("{err}"));
        let (t, n, d) = e.shape;
        assert_eq!((s.len(), s.dim()), (t, d), "{}", e.file);
        assert!((0..t).all(|k| s.n_particles(k) == n), "{}", e.file);
        assert_eq!(s.has_all_velocities(), e.has_velocities, "{}", e.file);
        let (k, i, want) = e.position;
        assert_eq!(point(s.positions(k), d, i), want, "{}", e.file);
        if let Some((k, i, want)) = e.velocity {
            assert_eq!(point(s.velocities(k).unwrap(), d, i), want, "{}", e.file);
        }
    }
}

#[test]
fn every_npz_and_npy_file_in_shared_data_is_covered() {
    let Some(dir) = shared_data("the coverage check") else {
        return;
    };
    for sub in ["oceans", "eb"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
            if name.ends_with(".npz") || name.ends_with(".npy") {
                assert!(
                    EXPECTED.iter().any(|e| e.file == name),
                    "{name} has no expected shape"
                );
            }
        }
    }
}

#[test]
fn snapmmd_times_are_the_dts_key() {
    let Some(dir) = shared_data("the snapMMD times") else {
        return;
    };
    let s = load_snapmmd_npz(dir.join("oceans/GoM_data.npz")).unwrap();
    // float32 in the file, widened exactly.
    assert_eq!(s.times()[1], f64::from(0.8f32));
    assert_eq!(s.times()[10], 8.0);
    let val = load_snapmmd_npz(dir.join("oceans/GoM_data_interp_val.npz")).unwrap();
    assert_eq!(val.times(), &[0.4, 1.2, 2.0, 2.8, 3.6, 4.4, 5.2, 6.0, 6.8]);
}

/// Times, dimension, positions and velocities agree exactly (names are not stored by the
/// writers).
fn assert_same_data(a: &Snapshots, b: &Snapshots, what: &str) {
    assert_eq!(a.times(), b.times(), "{what}: times");
    assert_eq!(a.dim(), b.dim(), "{what}: dim");
    for k in 0..a.len() {
        assert_eq!(
            a.positions(k),
            b.positions(k),
            "{what}: positions of snapshot {k}"
        );
        assert_eq!(
            a.velocities(k),
            b.velocities(k),
            "{what}: velocities of snapshot {k}"
        );
    }
}

#[test]
fn every_loaded_file_round_trips_through_every_writer() {
    let Some(dir) = shared_data("the round trips") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    for e in EXPECTED {
        let s = load(&dir.join(e.file), e.loader).unwrap();
        let npz = out.path().join("round.npz");
        write_particles_npz(&npz, &s).unwrap();
        assert_same_data(&s, &load_particles_npz(&npz, None).unwrap(), e.file);

        let csv = out.path().join("round.csv");
        write_csv(&csv, &s).unwrap();
        assert_same_data(&s, &load_csv(&csv).unwrap(), e.file);

        let config = H5adConfig {
            velocity: Some(H5adMatrix::Layer("velocity".into())),
            ..H5adConfig::default()
        };
        let h5ad = out.path().join("round.h5ad");
        write_h5ad(&h5ad, &s, &config).unwrap();
        assert_same_data(&s, &load_h5ad(&h5ad, &config).unwrap(), e.file);

        let npy = out.path().join("round.npy");
        write_npy(&npy, &s).unwrap();
        let back = load_npy(&npy, Some(s.times())).unwrap();
        for k in 0..s.len() {
            assert_eq!(
                s.positions(k),
                back.positions(k),
                "{}: npy snapshot {k}",
                e.file
            );
        }
    }
}
