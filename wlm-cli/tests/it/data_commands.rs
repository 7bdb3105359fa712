//! `wlm distance` and `wlm inspect`.

use candle_core::{Device, Tensor};
use wlm_ot::SinkhornConfig;

use crate::common::{fails, numbers, ok, shared_data, small_snapshots, wlm_in, write_cloud_npy};

fn tensor(values: &[f64], n: usize) -> Tensor {
    Tensor::from_slice(values, (n, 2), &Device::Cpu).unwrap()
}

#[test]
fn distance_prints_the_numbers_of_wlm_ot() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (numbers(40 * 2, 1), numbers(30 * 2, 2));
    let b: Vec<f64> = b.iter().map(|v| v + 0.5).collect();
    write_cloud_npy(&dir.path().join("a.npy"), &a, 40, 2);
    write_cloud_npy(&dir.path().join("b.npy"), &b, 30, 2);
    let (x, y) = (tensor(&a, 40), tensor(&b, 30));
    let sinkhorn = SinkhornConfig {
        p: 1,
        blur: 0.1,
        scaling: 0.8,
        ..SinkhornConfig::default()
    };
    let expected = [
        ("w1", wlm_ot::wasserstein_1(&x, &y).unwrap(), vec![]),
        ("w2", wlm_ot::wasserstein_2(&x, &y).unwrap(), vec![]),
        ("energy", wlm_ot::energy_distance(&x, &y).unwrap(), vec![]),
        (
            "sinkhorn",
            wlm_ot::sinkhorn_divergence(&x, &y, &sinkhorn)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap(),
            vec!["--p", "1", "--blur", "0.1", "--scaling", "0.8"],
        ),
    ];
    for (metric, value, extra) in expected {
        let mut args = vec!["distance", "a.npy", "b.npy", "--metric", metric];
        args.extend(extra);
        let printed: f64 = ok(&wlm_in(dir.path(), &args)).trim().parse().unwrap();
        assert_eq!(printed, value, "{metric}");
        assert!(value > 0.0, "{metric} of distinct clouds is {value}");
    }
}

#[test]
fn distance_reads_csv_clouds_like_npy() {
    let dir = tempfile::tempdir().unwrap();
    let a = numbers(20 * 2, 3);
    write_cloud_npy(&dir.path().join("a.npy"), &a, 20, 2);
    let csv: String = std::iter::once("x,y\n".to_string())
        .chain(a.chunks(2).map(|p| format!("{},{}\n", p[0], p[1] + 1.0)))
        .collect();
    std::fs::write(dir.path().join("b.csv"), csv).unwrap();
    let printed: f64 = ok(&wlm_in(dir.path(), &["distance", "a.npy", "b.csv"]))
        .trim()
        .parse()
        .unwrap();
    // Every point moved by (0, 1): W1 is exactly 1 (up to rounding).
    assert!((printed - 1.0).abs() < 1e-9, "{printed}");
}

#[test]
fn distance_errors_name_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    write_cloud_npy(&dir.path().join("a.npy"), &numbers(6, 1), 3, 2);
    std::fs::write(dir.path().join("bad.npy"), b"not an npy file").unwrap();
    let err = fails(&wlm_in(dir.path(), &["distance", "a.npy", "bad.npy"]));
    assert!(err.contains("bad.npy"), "{err}");
    let err = fails(&wlm_in(dir.path(), &["distance", "a.npy", "missing.npy"]));
    assert!(err.contains("missing.npy"), "{err}");
    write_cloud_npy(&dir.path().join("d3.npy"), &numbers(9, 1), 3, 3);
    let err = fails(&wlm_in(dir.path(), &["distance", "a.npy", "d3.npy"]));
    assert!(err.contains("different dimensions"), "{err}");
    let err = fails(&wlm_in(
        dir.path(),
        &[
            "distance", "a.npy", "a.npy", "--metric", "sinkhorn", "--blur", "-1",
        ],
    ));
    assert!(err.contains("sinkhorn"), "{err}");
}

#[test]
fn inspect_describes_every_writable_format() {
    let dir = tempfile::tempdir().unwrap();
    let s = small_snapshots(3, 7);
    let p = dir.path();
    wlm_data::write_particles_npz(p.join("s.npz"), &s).unwrap();
    wlm_data::write_npy(p.join("s.npy"), &s).unwrap();
    wlm_data::write_csv(p.join("s.csv"), &s).unwrap();
    wlm_data::write_h5ad(p.join("s.h5ad"), &s, &wlm_data::H5adConfig::default()).unwrap();
    // .npy stores no times: they read back as 0, 1, 2.
    for (file, velocities, last_time) in [
        ("s.npz", "yes", "1"),
        ("s.npy", "no", "2"),
        ("s.csv", "yes", "1"),
        ("s.h5ad", "no", "1"),
    ] {
        let text = ok(&wlm_in(p, &["inspect", file]));
        assert!(text.contains("snapshots:   3"), "{file}: {text}");
        assert!(text.contains("dimension:   2"), "{file}: {text}");
        assert!(
            text.contains("points:      7 per snapshot"),
            "{file}: {text}"
        );
        assert!(
            text.contains(&format!("velocities:  {velocities}")),
            "{file}: {text}"
        );
        let row = text.lines().last().unwrap();
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(last_time),
            "{file}: {text}"
        );
    }
}

#[test]
fn inspect_reads_the_shared_data_sets() {
    let Some(data) = shared_data() else {
        eprintln!("skipped: ../shared/data is absent");
        return;
    };
    let cases = [
        (
            "oceans/oceans_with_v0.npz",
            "snapshots:   9",
            "points:      111",
        ),
        (
            "oceans/big_oceans_forecast.npz",
            "snapshots:   11",
            "points:      400",
        ),
        (
            "oceans/GoMvortex_data.npy",
            "snapshots:   9",
            "points:      111",
        ),
        ("oceans/GoM_data.npz", "snapshots:   11", "points:      200"),
        ("eb/eb_300.npy", "dimension:   5", "points:      300"),
    ];
    for (file, a, b) in cases {
        let path = data.join(file);
        let text = ok(&wlm_in(&data, &["inspect", path.to_str().unwrap()]));
        assert!(text.contains(a) && text.contains(b), "{file}: {text}");
    }
}

#[test]
fn inspect_errors_name_the_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.npz"), b"PK\x03\x04 but not a zip").unwrap();
    let err = fails(&wlm_in(dir.path(), &["inspect", "junk.npz"]));
    assert!(err.contains("junk.npz"), "{err}");
    std::fs::write(dir.path().join("data.xyz"), b"1,2").unwrap();
    let err = fails(&wlm_in(dir.path(), &["inspect", "data.xyz"]));
    assert!(
        err.contains("data.xyz") && err.contains("unknown data format"),
        "{err}"
    );
    std::fs::write(dir.path().join("bad.csv"), b"time,x0\n0,1\n1,oops\n").unwrap();
    let err = fails(&wlm_in(dir.path(), &["inspect", "bad.csv"]));
    assert!(err.contains("bad.csv"), "{err}");
}
