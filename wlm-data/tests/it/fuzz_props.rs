//! Every parser returns `Ok` or `Err` (never panics) on random bytes and on mutations of
//! valid files: the same property the cargo-fuzz targets in `fuzz/` check at scale.

use proptest::prelude::*;
use wlm_data::{
    encode_npy, parse_csv, parse_h5ad, parse_npy, parse_npy_snapshots, parse_particles_npz,
    parse_snapmmd_npz, parse_trajectorynet_npz, write_h5ad, write_particles_npz, H5adConfig,
    H5adMatrix, Snapshots, TrajectoryNetConfig,
};

use crate::zip_archive;

type Parser = fn(&[u8]) -> bool;

/// Each parser, reporting whether it accepted the bytes.
const PARSERS: [(&str, Parser); 7] = [
    ("npy", |b| parse_npy(b).is_ok()),
    ("npy snapshots", |b| parse_npy_snapshots(b, None).is_ok()),
    ("particle npz", |b| parse_particles_npz(b, None).is_ok()),
    ("snapMMD npz", |b| parse_snapmmd_npz(b).is_ok()),
    ("TrajectoryNet npz", |b| {
        let config = TrajectoryNetConfig {
            n_components: 2,
            ..TrajectoryNetConfig::default()
        };
        parse_trajectorynet_npz(b, &config).is_ok()
    }),
    ("csv", |b| parse_csv(b).is_ok()),
    ("h5ad", |b| {
        let config = H5adConfig {
            velocity: Some(H5adMatrix::Obsm("velocity".into())),
            ..H5adConfig::default()
        };
        parse_h5ad(b, &config).is_ok()
    }),
];

fn small() -> Snapshots {
    Snapshots::new(
        vec![0.0, 1.5],
        2,
        vec![vec![0.0, 1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0, 7.0]],
        Some(vec![Some(vec![1.0; 4]), None]),
    )
    .unwrap()
}

/// A valid input for each entry of [`PARSERS`], in the same order (built once).
fn valid_inputs() -> &'static [Vec<u8>] {
    static INPUTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    INPUTS.get_or_init(build_valid_inputs)
}

fn build_valid_inputs() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("s.npz");
    write_particles_npz(&npz, &small()).unwrap();
    let h5ad = dir.path().join("s.h5ad");
    let config = H5adConfig {
        velocity: Some(H5adMatrix::Obsm("velocity".into())),
        ..H5adConfig::default()
    };
    write_h5ad(&h5ad, &small(), &config).unwrap();
    let tnd = encode_npy(&[2, 2, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).unwrap();
    vec![
        tnd.clone(),
        tnd.clone(),
        std::fs::read(&npz).unwrap(),
        zip_archive(&[
            ("Xs.npy", tnd),
            ("dts.npy", encode_npy(&[2], &[0.0, 0.5]).unwrap()),
        ]),
        zip_archive(&[
            (
                "pcs.npy",
                encode_npy(&[3, 2], &[0.0, 1.0, 2.0, 3.0, 5.0, 4.0]).unwrap(),
            ),
            (
                "sample_labels.npy",
                encode_npy(&[3], &[1.0, 0.0, 1.0]).unwrap(),
            ),
            ("pcs_delta.npy", encode_npy(&[3, 2], &[1.0; 6]).unwrap()),
        ]),
        b"time,x0,x1,v0,v1\n0,1,2,3,4\n0.5,1,2,,\n".to_vec(),
        std::fs::read(&h5ad).unwrap(),
    ]
}

#[test]
fn the_valid_inputs_are_accepted() {
    for ((name, parse), bytes) in PARSERS.iter().zip(valid_inputs()) {
        assert!(parse(bytes), "{name} rejected its valid input");
    }
}

/// One edit of a byte string: overwrite, insert, delete, or truncate at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *edit {
        Edit::Set(i, b) => bytes[i % n] = b,
        Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
        Edit::Delete(i) => {
            bytes.remove(i % n);
        }
        Edit::Truncate(i) => bytes.truncate(i % n),
    }
}

// 256 cases per property by default; `PROPTEST_CASES=100000` for a longer run.
proptest! {
    #[test]
    fn parsers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (_, parse) in PARSERS {
            parse(&bytes);
        }
    }

    #[test]
    fn parsers_never_panic_on_random_bytes_with_a_valid_prefix(
        which in 0..PARSERS.len(),
        keep in any::<usize>(),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let valid = &valid_inputs()[which];
        let mut bytes = valid[..keep % (valid.len() + 1)].to_vec();
        bytes.extend_from_slice(&tail);
        (PARSERS[which].1)(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_mutated_valid_files(
        which in 0..PARSERS.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let mut bytes = valid_inputs()[which].clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        (PARSERS[which].1)(&bytes);
    }
}
