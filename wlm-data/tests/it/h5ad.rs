//! The `.h5ad` loader and writer: files written here with hdf5-pure in anndata's layout, the
//! committed file written by anndata itself, round trips, and errors.

use std::path::PathBuf;

use hdf5_pure::{AttrValue, FileBuilder};
use wlm_data::{load_h5ad, parse_h5ad, write_h5ad, H5adConfig, H5adMatrix, Snapshots};

fn text(s: &str) -> AttrValue {
    AttrValue::VarLenString(s.into())
}

fn encoded(builder: &mut hdf5_pure::DatasetBuilder, kind: &str) {
    builder
        .set_attr("encoding-type", text(kind))
        .set_attr("encoding-version", text("0.2.0"));
}

/// An anndata-style file: 6 cells; `obs/day` categorical with string categories `day0..day2`
/// (codes int8), `obs/hours` int64; `obsm/X_pca` (6, 3) float32 chunked and deflated, with
/// `X_pca[i, j] = 10 i + j`; `layers/velocity` (6, 3) float64 with `v[i, j] = −i`.
fn anndata_like(codes: &[i8], with_sparse_x: bool) -> Vec<u8> {
    anndata_with_codes(
        |ds| {
            ds.with_i8_data(codes);
        },
        with_sparse_x,
    )
}

/// [`anndata_like`] with the category codes written by `set_codes`.
fn anndata_with_codes(
    set_codes: impl FnOnce(&mut hdf5_pure::DatasetBuilder),
    with_sparse_x: bool,
) -> Vec<u8> {
    let mut fb = FileBuilder::new();
    fb.set_attr("encoding-type", text("anndata"));
    fb.set_attr("encoding-version", text("0.1.0"));
    let mut obs = fb.create_group("obs");
    obs.set_attr("encoding-type", text("dataframe"));
    obs.set_attr("_index", text("_index"));
    encoded(
        obs.create_dataset("_index")
            .with_vlen_strings(&["a", "b", "c", "d", "e", "f"]),
        "string-array",
    );
    encoded(
        obs.create_dataset("hours")
            .with_i64_data(&[0, 24, 48, 0, 24, 48]),
        "array",
    );
    let mut day = obs.create_group("day");
    day.set_attr("encoding-type", text("categorical"));
    day.set_attr("encoding-version", text("0.2.0"));
    day.set_attr("ordered", AttrValue::I8(0));
    encoded(
        day.create_dataset("categories")
            .with_vlen_strings(&["day0", "day1", "day2"]),
        "string-array",
    );
    let codes = day.create_dataset("codes");
    set_codes(codes);
    encoded(codes, "array");
    obs.add_group(day.finish());
    fb.add_group(obs.finish());

    let pca: Vec<f32> = (0..6)
        .flat_map(|i| (0..3).map(move |j| (10 * i + j) as f32))
        .collect();
    let mut obsm = fb.create_group("obsm");
    obsm.set_attr("encoding-type", text("dict"));
    let ds = obsm.create_dataset("X_pca");
    ds.with_f32_data(&pca)
        .with_shape(&[6, 3])
        .with_chunks(&[4, 3])
        .with_deflate(6);
    encoded(ds, "array");
    fb.add_group(obsm.finish());

    let vel: Vec<f64> = (0..6).flat_map(|i| [-(i as f64); 3]).collect();
    let mut layers = fb.create_group("layers");
    layers.set_attr("encoding-type", text("dict"));
    encoded(
        layers
            .create_dataset("velocity")
            .with_f64_data(&vel)
            .with_shape(&[6, 3]),
        "array",
    );
    fb.add_group(layers.finish());

    if with_sparse_x {
        let mut x = fb.create_group("X");
        x.set_attr("encoding-type", text("csr_matrix"));
        x.create_dataset("data").with_f64_data(&[1.0]);
        fb.add_group(x.finish());
    }
    fb.finish().unwrap()
}

fn day_config() -> H5adConfig {
    H5adConfig {
        time_key: "day".into(),
        n_components: Some(2),
        velocity: Some(H5adMatrix::Layer("velocity".into())),
        ..H5adConfig::default()
    }
}

#[test]
fn categorical_string_days_become_snapshots_in_category_order() {
    let bytes = anndata_like(&[2, 0, 1, 0, 2, 1], false);
    let s = parse_h5ad(&bytes, &day_config()).unwrap();
    assert_eq!(s.times(), &[0.0, 1.0, 2.0]);
    assert_eq!(s.names().unwrap(), &["day0", "day1", "day2"]);
    assert_eq!(s.dim(), 2);
    // day0 = cells 1 and 3, first two components of the chunked, deflated float32 matrix.
    assert_eq!(s.positions(0), &[10.0, 11.0, 30.0, 31.0]);
    assert_eq!(s.velocities(2).unwrap(), &[0.0, 0.0, -4.0, -4.0]);
}

#[test]
fn numeric_obs_columns_give_their_values_as_times() {
    let bytes = anndata_like(&[2, 0, 1, 0, 2, 1], false);
    let config = H5adConfig {
        time_key: "hours".into(),
        ..H5adConfig::default()
    };
    let s = parse_h5ad(&bytes, &config).unwrap();
    assert_eq!(s.times(), &[0.0, 24.0, 48.0]);
    assert_eq!(s.names().unwrap(), &["0", "24", "48"]);
    assert_eq!(s.positions(1), &[10.0, 11.0, 12.0, 40.0, 41.0, 42.0]);
    assert!(s.velocities(0).is_none());
}

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/anndata_small.h5ad"
    ))
}

#[test]
fn a_file_written_by_anndata_loads() {
    // See tests/data/make_anndata_fixture.py: cell i has day i % 3, X_pca[i, j] = i + j / 10,
    // velocity_pca[i, j] = −(i + 1)(j + 1) / 100, X[i, j] = i − j, layers/velocity = 2 X.
    let config = H5adConfig {
        time_key: "day".into(),
        velocity: Some(H5adMatrix::Obsm("velocity_pca".into())),
        ..H5adConfig::default()
    };
    let s = load_h5ad(fixture(), &config).unwrap();
    assert_eq!(s.times(), &[0.0, 1.0, 2.0]);
    assert_eq!(s.names().unwrap(), &["day0", "day1", "day2"]);
    assert_eq!(s.dim(), 3);
    // day1 holds cells 1, 4, 7.
    assert_eq!(&s.positions(1)[..3], &[1.0, 1.1, 1.2]);
    assert_eq!(&s.positions(1)[6..], &[7.0, 7.1, 7.2]);
    assert_eq!(&s.velocities(1).unwrap()[3..6], &[-0.05, -0.1, -0.15]);

    // Integer categories 0, 2, 4 are times; a float column too.
    for (time_key, times) in [("day_number", [0.0, 2.0, 4.0]), ("time", [0.0, 0.5, 1.0])] {
        let config = H5adConfig {
            time_key: time_key.into(),
            ..H5adConfig::default()
        };
        assert_eq!(
            load_h5ad(fixture(), &config).unwrap().times(),
            &times,
            "{time_key}"
        );
    }

    // X (float32) with a layer as velocity.
    let genes = H5adConfig {
        time_key: "day".into(),
        embedding: H5adMatrix::X,
        velocity: Some(H5adMatrix::Layer("velocity".into())),
        n_components: None,
    };
    let s = load_h5ad(fixture(), &genes).unwrap();
    assert_eq!(s.positions(2)[..2], [2.0, 1.0]);
    assert_eq!(s.velocities(2).unwrap()[..2], [4.0, 2.0]);
}

fn sample() -> Snapshots {
    Snapshots::new(
        vec![0.0, 0.5, 2.0],
        2,
        vec![
            vec![0.1, 0.2, 0.3, 0.4],
            vec![1.0, 2.0],
            vec![-1.0, 1e-300, 5.0, 6.0, 7.0, 8.0],
        ],
        Some(vec![
            Some(vec![1.0, 1.0, 2.0, 2.0]),
            None,
            Some(vec![0.0, -0.0, 3.0, 3.0, 9.0, 9.0]),
        ]),
    )
    .unwrap()
}

#[test]
fn written_files_load_back_exactly_for_every_matrix_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.h5ad");
    let s = sample();
    let configs = [
        H5adConfig {
            velocity: Some(H5adMatrix::Obsm("velocity_pca".into())),
            ..H5adConfig::default()
        },
        H5adConfig {
            time_key: "day".into(),
            embedding: H5adMatrix::X,
            velocity: Some(H5adMatrix::Layer("velocity".into())),
            n_components: None,
        },
        H5adConfig {
            embedding: H5adMatrix::Layer("pos".into()),
            ..H5adConfig::default()
        },
    ];
    for config in configs {
        write_h5ad(&path, &s, &config).unwrap();
        let back = load_h5ad(&path, &config).unwrap();
        assert_eq!(back.times(), s.times());
        for k in 0..3 {
            assert_eq!(back.positions(k), s.positions(k), "{config:?}");
            let want = if config.velocity.is_some() {
                s.velocities(k)
            } else {
                None
            };
            assert_eq!(back.velocities(k), want, "{config:?}");
        }
    }
    let msg = write_h5ad(
        &path,
        &s,
        &H5adConfig {
            velocity: Some(H5adMatrix::Obsm("X_pca".into())),
            ..H5adConfig::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("cannot both be written to obsm/X_pca"),
        "{msg}"
    );
}

#[test]
fn errors_name_the_hdf5_path() {
    let good = anndata_like(&[2, 0, 1, 0, 2, 1], true);
    let cases: Vec<(Vec<u8>, H5adConfig, &str)> = vec![
        (Vec::new(), day_config(), "empty file"),
        (
            b"not hdf5 at all".to_vec(),
            day_config(),
            "not a readable HDF5",
        ),
        (good[..good.len() / 2].to_vec(), day_config(), "<memory>"),
        (
            good.clone(),
            H5adConfig {
                time_key: "age".into(),
                ..day_config()
            },
            "key `obs/age`: missing: obs has the columns [\"day\", \"hours\"]",
        ),
        (
            good.clone(),
            H5adConfig {
                time_key: "_index".into(),
                ..day_config()
            },
            "holds strings: a time column must be numeric or categorical",
        ),
        (
            good.clone(),
            H5adConfig {
                embedding: H5adMatrix::Obsm("X_umap".into()),
                ..day_config()
            },
            "key `obsm/X_umap`: missing: the file holds X (csr_matrix, not readable), X_pca (6×3), layers/velocity (6×3)",
        ),
        (
            good.clone(),
            H5adConfig {
                embedding: H5adMatrix::X,
                ..day_config()
            },
            "key `X`: is csr_matrix: only dense matrices are supported",
        ),
        (
            good.clone(),
            H5adConfig {
                n_components: Some(7),
                ..day_config()
            },
            "7 components requested but the matrix has 3",
        ),
        (
            anndata_like(&[2, 0, -1, 0, 2, 1], false),
            day_config(),
            "key `obs/day`: cell 2 has no category (code -1)",
        ),
        (
            anndata_like(&[2, 0, 9, 0, 2, 1], false),
            day_config(),
            "cell 2 has code 9 but there are 3 categories",
        ),
        (
            anndata_with_codes(
                |ds| {
                    ds.with_f64_data(&[2.0, 0.0, f64::NAN, 0.0, 2.0, 1.0]);
                },
                false,
            ),
            day_config(),
            "key `obs/day`: cell 2 has code NaN, not an integer category index",
        ),
        (
            anndata_with_codes(
                |ds| {
                    ds.with_f64_data(&[2.0, 0.0, 1.0, 0.5, 2.0, 1.0]);
                },
                false,
            ),
            day_config(),
            "key `obs/day`: cell 3 has code 0.5, not an integer category index",
        ),
        (
            anndata_like(&[2, 0, 1, 0, 2], false),
            day_config(),
            "key `obsm/X_pca`: 6 rows but obs has 5 cells",
        ),
        (
            {
                let mut fb = FileBuilder::new();
                fb.create_dataset("X").with_f64_data(&[1.0]);
                fb.finish().unwrap()
            },
            day_config(),
            "key `obs`: missing: not an AnnData file",
        ),
    ];
    for (bytes, config, expected) in cases {
        let msg = parse_h5ad(&bytes, &config).unwrap_err().to_string();
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
    }
}

#[test]
fn nan_in_the_embedding_names_the_cell() {
    let mut fb = FileBuilder::new();
    let mut obs = fb.create_group("obs");
    obs.create_dataset("time").with_f64_data(&[0.0, 1.0]);
    fb.add_group(obs.finish());
    let mut obsm = fb.create_group("obsm");
    obsm.create_dataset("X_pca")
        .with_f64_data(&[0.0, 1.0, 2.0, f64::NAN])
        .with_shape(&[2, 2]);
    fb.add_group(obsm.finish());
    let msg = parse_h5ad(&fb.finish().unwrap(), &H5adConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("key `obsm/X_pca`: cell 1, component 1 is not finite (NaN)"),
        "{msg}"
    );
}

#[test]
fn the_contents_list_obs_columns_and_matrices_with_shapes_and_sparse_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.h5ad");
    std::fs::write(&path, anndata_like(&[2, 0, 1, 0, 2, 1], true)).unwrap();
    let (columns, matrices) = wlm_data::h5ad_contents(&path).unwrap();
    assert_eq!(columns, ["day", "hours"]);
    let listed: Vec<String> = matrices.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "X (csr_matrix, not readable)",
            "X_pca (6×3)",
            "layers/velocity (6×3)"
        ]
    );
    assert_eq!(matrices[1].matrix, H5adMatrix::Obsm("X_pca".into()));
    assert_eq!(matrices[1].shape, Some(vec![6, 3]));
    // A missing embedding lists them too, the sparse X included.
    let config = H5adConfig {
        embedding: H5adMatrix::Obsm("X_tsne".into()),
        ..day_config()
    };
    let msg = load_h5ad(&path, &config).unwrap_err().to_string();
    assert!(
        msg.contains("obsm/X_tsne") && msg.contains("X (csr_matrix, not readable), X_pca (6×3)"),
        "{msg}"
    );
}

/// A 55 KB file (found by the `h5ad` fuzz target) whose datasets declare far more values than
/// its bytes can hold: an error naming the dataset, read without allocating for the declared
/// size (the fuzz target's 2 GiB limit caught 2.7 GB before the bound).
#[test]
fn a_dataset_declaring_more_values_than_the_file_holds_is_refused() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/h5ad_declared_size_bomb.h5ad"
    ))
    .expect("fixture");
    let config = H5adConfig {
        velocity: Some(H5adMatrix::Obsm("velocity".into())),
        ..H5adConfig::default()
    };
    let err = parse_h5ad(&bytes, &config)
        .expect_err("a declared-size bomb must not load")
        .to_string();
    assert!(err.contains("more than a"), "{err}");
}
