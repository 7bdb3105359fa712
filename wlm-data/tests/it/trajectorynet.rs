//! The TrajectoryNet `.npz` loader on small files written here.

use wlm_data::{encode_npy, load_trajectorynet_npz, parse_trajectorynet_npz, TrajectoryNetConfig};

use crate::{raw_npy, zip_archive, Entries};

/// 6 cells, 3 components. Column 0 is 1, 3, 1, 3, 1, 3 (mean 2, population std 1); column 1
/// is 0, 0, 0, 0, 0, 6 (mean 1, population std √5); column 2 is dropped by `n_components: 2`.
fn pcs() -> Vec<u8> {
    let rows = [
        [1.0, 0.0, 9.0],
        [3.0, 0.0, 9.0],
        [1.0, 0.0, 9.0],
        [3.0, 0.0, 9.0],
        [1.0, 0.0, 9.0],
        [3.0, 6.0, 9.0],
    ];
    encode_npy(&[6, 3], &rows.concat()).unwrap()
}

/// Labels 2, 0, 1, 0, 2, 1 stored as int64, as NumPy writes integer labels.
fn labels() -> Vec<u8> {
    let data: Vec<u8> = [2i64, 0, 1, 0, 2, 1]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    raw_npy(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }",
        &data,
    )
}

/// Velocity 2 in column 0 and √5 in column 1 for every cell.
fn deltas() -> Vec<u8> {
    let row = [2.0, 5f64.sqrt(), 0.0];
    encode_npy(&[6, 3], &row.repeat(6)).unwrap()
}

fn config() -> TrajectoryNetConfig {
    TrajectoryNetConfig {
        n_components: 2,
        ..TrajectoryNetConfig::default()
    }
}

/// The archive with all three arrays: `pcs`, `sample_labels` and `pcs_delta`.
fn full_archive() -> Vec<u8> {
    zip_archive(&[
        ("pcs.npy", pcs()),
        ("sample_labels.npy", labels()),
        ("pcs_delta.npy", deltas()),
    ])
}

#[test]
fn labels_become_sorted_snapshots_with_global_zscores() {
    let bytes = full_archive();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eb_small.npz");
    std::fs::write(&path, &bytes).unwrap();
    let s = load_trajectorynet_npz(&path, &config()).unwrap();
    assert_eq!(s.times(), &[0.0, 1.0, 2.0]);
    assert_eq!(s.names().unwrap(), &["0", "1", "2"]);
    assert_eq!(s.dim(), 2);
    // Label 0 holds cells 1 and 3 (file order), both (3, 0) → (1, −1/√5).
    let z = -1.0 / 5f64.sqrt();
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(
        close(s.positions(0), &[1.0, z, 1.0, z]),
        "{:?}",
        s.positions(0)
    );
    // Label 1 holds cells 2 and 5: (1, 0) → (−1, −1/√5) and (3, 6) → (1, 5/√5).
    assert!(
        close(s.positions(1), &[-1.0, z, 1.0, 5.0 / 5f64.sqrt()]),
        "{:?}",
        s.positions(1)
    );
    // Velocities are divided by the same std, without centring: (2, √5) → (2, 1).
    assert!(close(s.velocities(2).unwrap(), &[2.0, 1.0, 2.0, 1.0]));
    // Over all cells, each kept component has mean 0 and population std 1.
    let all: Vec<f64> = (0..3).flat_map(|k| s.positions(k).to_vec()).collect();
    for c in 0..2 {
        let col: Vec<f64> = all.iter().skip(c).step_by(2).copied().collect();
        let mean = col.iter().sum::<f64>() / 6.0;
        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 6.0;
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12,
            "component {c}: {mean}, {var}"
        );
    }
}

#[test]
fn options_turn_off_standardization_and_velocities() {
    let bytes = full_archive();
    let raw = TrajectoryNetConfig {
        standardize: false,
        velocity_key: None,
        ..config()
    };
    let s = parse_trajectorynet_npz(&bytes, &raw).unwrap();
    assert_eq!(s.positions(2), &[1.0, 0.0, 1.0, 0.0]);
    assert!(s.velocities(0).is_none());
    // An archive without `pcs_delta` loads without velocities.
    let no_delta = zip_archive(&[("pcs.npy", pcs()), ("sample_labels.npy", labels())]);
    assert!(!parse_trajectorynet_npz(&no_delta, &config())
        .unwrap()
        .has_all_velocities());
}

#[test]
fn float_labels_give_their_values_as_times() {
    let labels = encode_npy(&[6], &[0.5, 0.5, 2.5, 2.5, 0.5, 2.5]).unwrap();
    let bytes = zip_archive(&[("pcs.npy", pcs()), ("sample_labels.npy", labels)]);
    let s = parse_trajectorynet_npz(&bytes, &config()).unwrap();
    assert_eq!(s.times(), &[0.5, 2.5]);
    assert_eq!(s.names().unwrap(), &["0.5", "2.5"]);
}

#[test]
fn layout_errors_name_the_key() {
    let short_labels = encode_npy(&[5], &[0.0; 5]).unwrap();
    let string_labels = raw_npy(
        "{'descr': '<U1', 'fortran_order': False, 'shape': (6,), }",
        &[0; 24],
    );
    let nan_pcs = encode_npy(
        &[6, 3],
        &[
            [f64::NAN; 3],
            [0.0; 3],
            [0.0; 3],
            [0.0; 3],
            [0.0; 3],
            [0.0; 3],
        ]
        .concat(),
    )
    .unwrap();
    let flat_pcs = encode_npy(&[18], &[0.0; 18]).unwrap();
    let cases: Vec<(Entries, TrajectoryNetConfig, &str)> = vec![
        (
            vec![("sample_labels.npy", labels())],
            config(),
            "key `pcs`: missing",
        ),
        (
            vec![("pcs.npy", pcs())],
            config(),
            "key `sample_labels`: missing",
        ),
        (
            vec![("pcs.npy", pcs()), ("sample_labels.npy", short_labels)],
            config(),
            "expected shape (6,), one label per row of `pcs`, got [5]",
        ),
        (
            vec![("pcs.npy", pcs()), ("sample_labels.npy", string_labels)],
            config(),
            "key `sample_labels`: unsupported dtype \"<U1\"",
        ),
        (
            vec![("pcs.npy", pcs()), ("sample_labels.npy", labels())],
            TrajectoryNetConfig {
                n_components: 4,
                ..config()
            },
            "n_components is 4 but the array has 3 components",
        ),
        (
            vec![("pcs.npy", nan_pcs), ("sample_labels.npy", labels())],
            config(),
            "key `pcs`: cell 0 has a non-finite value",
        ),
        (
            vec![("pcs.npy", flat_pcs), ("sample_labels.npy", labels())],
            config(),
            "expected rank 2 (cells, components), got shape [18]",
        ),
        (
            vec![
                ("pcs.npy", pcs()),
                ("sample_labels.npy", labels()),
                ("pcs_delta.npy", encode_npy(&[2, 3], &[0.0; 6]).unwrap()),
            ],
            config(),
            "key `pcs_delta`: 2 rows but `pcs` has 6",
        ),
    ];
    for (entries, config, expected) in cases {
        let msg = parse_trajectorynet_npz(&zip_archive(&entries), &config)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
        assert!(msg.starts_with("<memory>: "), "{msg}");
    }
}
