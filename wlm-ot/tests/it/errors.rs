//! Every bad input is an `Err` with a message naming the problem, never a panic.

use candle_core::{DType, Device, Tensor};
use wlm_ot::{
    energy_distance, mmd_rbf, sinkhorn, sinkhorn_divergence, sinkhorn_divergence_weighted,
    wasserstein_1, wasserstein_2, Error, SinkhornConfig,
};

fn t(v: &[f64], n: usize, d: usize) -> Tensor {
    Tensor::from_slice(v, (n, d), &Device::Cpu).expect("tensor")
}

fn message(r: wlm_ot::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn non_finite_coordinates_are_rejected_by_every_entry_point() {
    let good = t(&[0.0, 1.0, 2.0, 3.0], 2, 2);
    for bad_value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let bad = t(&[0.0, 1.0, bad_value, 3.0], 2, 2);
        let c = SinkhornConfig::default();
        let msg = message(sinkhorn_divergence(&bad, &good, &c));
        assert!(
            msg.contains("non-finite") && msg.contains("point 1"),
            "{msg}"
        );
        assert!(message(sinkhorn(&good, &bad, &c)).contains("y has a non-finite"));
        assert!(matches!(
            wasserstein_1(&bad, &good),
            Err(Error::NonFiniteCoordinate { .. })
        ));
        assert!(matches!(
            wasserstein_2(&good, &bad),
            Err(Error::NonFiniteCoordinate { .. })
        ));
        assert!(matches!(
            energy_distance(&bad, &good),
            Err(Error::NonFiniteCoordinate { .. })
        ));
        assert!(matches!(
            mmd_rbf(&good, &bad, 1.0),
            Err(Error::NonFiniteCoordinate { .. })
        ));
    }
}

#[test]
fn empty_clouds_wrong_rank_and_mismatched_dimensions_are_rejected() {
    let good = t(&[0.0, 1.0], 1, 2);
    let empty = Tensor::zeros((0, 2), DType::F64, &Device::Cpu).expect("empty");
    let no_dim = Tensor::zeros((3, 0), DType::F64, &Device::Cpu).expect("no dim");
    let flat = Tensor::zeros(4, DType::F64, &Device::Cpu).expect("flat");
    let three_d = t(&[0.0, 1.0, 2.0], 1, 3);
    let c = SinkhornConfig::default();
    assert!(message(sinkhorn_divergence(&empty, &good, &c)).contains("x is empty"));
    assert!(message(sinkhorn_divergence(&good, &no_dim, &c)).contains("y is empty"));
    assert!(message(sinkhorn_divergence(&flat, &good, &c)).contains("2-d tensor"));
    assert!(message(sinkhorn_divergence(&good, &three_d, &c)).contains("dimension mismatch"));
    assert!(matches!(
        wasserstein_1(&good, &empty),
        Err(Error::EmptyCloud { .. })
    ));
    assert!(matches!(
        wasserstein_2(&good, &three_d),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        energy_distance(&flat, &good),
        Err(Error::NotAPointCloud { .. })
    ));
}

#[test]
fn clouds_whose_bounding_box_overflows_are_rejected() {
    let x = t(&[0.0, 0.0], 1, 2).to_dtype(DType::F32).expect("f32");
    let y = t(&[3e38, 3e38], 1, 2).to_dtype(DType::F32).expect("f32");
    let msg = message(sinkhorn(&x, &y, &SinkhornConfig::default()));
    assert!(msg.contains("non-finite diagonal"), "{msg}");
}

#[test]
fn mixed_or_integer_dtypes_are_rejected() {
    let x64 = t(&[0.0, 1.0], 1, 2);
    let x32 = x64.to_dtype(DType::F32).expect("f32");
    let c = SinkhornConfig::default();
    assert!(message(sinkhorn_divergence(&x64, &x32, &c)).contains("unsupported dtypes"));
    let ints = Tensor::from_slice(&[1u32, 2], (1, 2), &Device::Cpu).expect("u32");
    assert!(matches!(
        sinkhorn(&ints, &ints, &c),
        Err(Error::UnsupportedDType { .. })
    ));
}

#[test]
fn invalid_configs_are_rejected_before_any_work() {
    let x = t(&[0.0, 1.0], 1, 2);
    let ok = SinkhornConfig::default();
    let cases = [
        (
            SinkhornConfig { p: 3, ..ok },
            "cost exponent p must be 1 or 2, got 3",
        ),
        (
            SinkhornConfig { blur: 0.0, ..ok },
            "blur must be finite and > 0, got 0",
        ),
        (
            SinkhornConfig { blur: -0.1, ..ok },
            "blur must be finite and > 0, got -0.1",
        ),
        (
            SinkhornConfig { scaling: 1.0, ..ok },
            "scaling must be in the open interval (0, 1), got 1",
        ),
        (
            SinkhornConfig { scaling: 0.0, ..ok },
            "scaling must be in the open interval (0, 1), got 0",
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(message(sinkhorn_divergence(&x, &x, &config)), expected);
    }
}

#[test]
fn bad_weights_are_rejected() {
    let dev = Device::Cpu;
    let x = t(&[0.0, 1.0, 2.0, 3.0], 2, 2);
    let c = SinkhornConfig::default();
    let w = |v: &[f64]| Tensor::from_slice(v, v.len(), &dev).expect("w");
    let good = w(&[0.5, 0.5]);
    let cases = [
        (w(&[0.7, 0.7]), "sum to"),
        (w(&[1.5, -0.5]), "must be finite and >= 0"),
        (w(&[f64::NAN, 1.0]), "must be finite and >= 0"),
        (w(&[1.0]), "expected shape [2]"),
    ];
    for (bad, expected) in cases {
        let msg = message(sinkhorn_divergence_weighted(&bad, &x, &good, &x, &c));
        assert!(
            msg.starts_with("weights a: ") && msg.contains(expected),
            "{msg}"
        );
        let msg = message(sinkhorn_divergence_weighted(&good, &x, &bad, &x, &c));
        assert!(msg.starts_with("weights b: "), "{msg}");
    }
}

#[test]
fn a_scaling_too_close_to_one_is_rejected_before_any_work() {
    // ε would take about 7e9 steps from the diameter 2.8 down to the blur 0.05.
    let x = t(&[0.0, 0.0, 2.0, 2.0], 2, 2);
    let config = SinkhornConfig {
        scaling: 1.0 - 1e-9,
        ..SinkhornConfig::default()
    };
    let err = sinkhorn(&x, &x, &config).expect_err("schedule too long");
    assert!(matches!(err, Error::ScheduleTooLong { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("steps") && msg.contains("scaling"), "{msg}");
    assert!(matches!(
        sinkhorn_divergence(&x, &x, &config),
        Err(Error::ScheduleTooLong { .. })
    ));
}
