//! Building `Snapshots`, writing and reading them back as `.npz` and `.csv`, and the GF-SDE generator.
//!
//! Shows `wlm-data`'s main type, [`Snapshots`] (clouds at strictly increasing times, optional
//! velocities), its validation, two of its file formats, and the synthetic data of SPEC 5. It
//! checks that an invalid snapshot list is an error naming the snapshot, that `.npz` and `.csv`
//! round-trip exactly (files go to a temporary directory that is removed at the end), and that
//! the Ornstein–Uhlenbeck GF-SDE data (quadratic potential) spread with the variance the SDE
//! predicts, `v(t) = v₀ e^{−2t} + σ²/2 (1 − e^{−2t})`.
//!
//! Run it with `cargo run -p wlm-data --example snapshots_round_trip`; it exits non-zero if a
//! check fails.

use anyhow::ensure;
use candle_core::{DType, Device};
use wlm_data::{
    estimate_blur, load_csv, load_particles_npz, write_csv, write_particles_npz, BlurConfig, Error,
    GfSdeConfig, Pairing, Potential, Snapshots,
};

fn main() -> anyhow::Result<()> {
    // Three snapshots of four points in 2-D (row-major), velocities on the first one only.
    let times = vec![0.0, 0.5, 1.0];
    let positions = vec![
        vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        vec![0.1, 0.0, 1.1, 0.1, 0.0, 1.2, 1.1, 1.0],
        vec![0.2, 0.1, 1.2, 0.2, 0.1, 1.3, 1.3, 1.1],
    ];
    let velocities = vec![
        Some(vec![0.2, 0.0, 0.2, 0.1, 0.0, 0.3, 0.2, 0.0]),
        None,
        None,
    ];
    let snapshots = Snapshots::new(
        times.clone(),
        2,
        positions.clone(),
        Some(velocities.clone()),
    )?;
    println!(
        "built {} snapshots of {} points in {}-D at times {:?}",
        snapshots.len(),
        snapshots.n_particles(0),
        snapshots.dim(),
        snapshots.times()
    );
    let tensor = snapshots.positions_tensor(1, DType::F32, &Device::Cpu)?;
    ensure!(
        tensor.dims() == [4, 2],
        "snapshot 1 as a tensor has shape {:?}, expected [4, 2]",
        tensor.dims()
    );

    // Bad input is an error that names the snapshot, never a panic.
    match Snapshots::new(vec![0.0, 1.0, 1.0], 2, positions, Some(velocities)) {
        Err(err @ Error::InvalidSnapshot { index: 2, .. }) => {
            println!("repeated time rejected: {err}");
        }
        other => anyhow::bail!("a repeated time should be rejected at snapshot 2, got {other:?}"),
    }

    // Writers are atomic and loaders read back exactly what was written.
    let dir = tempfile::tempdir()?;
    let npz = dir.path().join("snapshots.npz");
    write_particles_npz(&npz, &snapshots)?;
    let from_npz = load_particles_npz(&npz, Some(&times))?;
    ensure!(
        from_npz == snapshots,
        "the .npz round trip changed the snapshots"
    );
    let csv = dir.path().join("snapshots.csv");
    write_csv(&csv, &snapshots)?;
    let from_csv = load_csv(&csv)?;
    ensure!(
        from_csv == snapshots,
        "the .csv round trip changed the snapshots"
    );
    println!(
        "wrote and read back {} ({} bytes) and {} ({} bytes) exactly",
        npz.file_name().unwrap_or_default().to_string_lossy(),
        std::fs::metadata(&npz)?.len(),
        csv.file_name().unwrap_or_default().to_string_lossy(),
        std::fs::metadata(&csv)?.len()
    );

    // GF-SDE data: dX = −∇ψ(X) dt + σ dW with ψ = ½|x|², unpaired snapshots with
    // probability-flow velocities (a small variant of SPEC 5's N = 1000, 21 snapshots).
    let config = GfSdeConfig {
        potential: Potential::Quadratic,
        n_particles: 400,
        n_snapshots: 6,
        dt: 0.2,
        pairing: Pairing::Unpaired,
        seed: 5,
        ..GfSdeConfig::default()
    };
    let data = config.generate()?;
    ensure!(
        data.len() == config.n_snapshots && data.has_all_velocities(),
        "expected {} snapshots with velocities, got {} (velocities: {})",
        config.n_snapshots,
        data.len(),
        data.has_all_velocities()
    );
    for (k, &t) in data.times().iter().enumerate() {
        let cloud = data.positions(k);
        let n_values = cloud.len() as f64;
        let mean = cloud.iter().sum::<f64>() / n_values;
        let variance = cloud.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n_values - 1.0);
        let decay = (-2.0 * t).exp();
        let expected = config.initial_variance * decay + 0.5 * config.sigma.powi(2) * (1.0 - decay);
        println!(
            "GF-SDE t = {t:.1}: coordinate variance {variance:.3} (SDE: {expected:.3}), mean {mean:+.3}"
        );
        // Four standard errors of a sample variance of Gaussian values.
        let tolerance = 4.0 * expected * (2.0 / (n_values - 1.0)).sqrt();
        ensure!(
            (variance - expected).abs() < tolerance,
            "at t = {t} the coordinate variance is {variance}, the SDE gives {expected}"
        );
    }
    let blur = estimate_blur(&data, &BlurConfig::default());
    println!("estimated Sinkhorn blur of the GF-SDE data: {blur:.3}");
    ensure!(
        blur.is_finite() && blur > 0.0,
        "the blur estimate should be positive, got {blur}"
    );
    println!("all checks passed");
    Ok(())
}
