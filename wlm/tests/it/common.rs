//! Helpers shared by the integration tests: tolerances and small synthetic data.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use wlm_data::Snapshots;

/// The largest entry-wise relative error of `a` against `b` (`close::entry_rel`: each entry's
/// error over its own size, floored at 1% of the RMS of `b`).
pub(crate) fn entry_rel(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    anyhow::ensure!(
        a.dims() == b.dims(),
        "shapes differ: {:?} vs {:?}",
        a.dims(),
        b.dims()
    );
    let flat = |t: &Tensor| {
        t.to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()
    };
    Ok(crate::close::entry_rel(&flat(a)?, &flat(b)?))
}

/// Seeded Gaussian clouds drifting with time, with velocities: `n` points in 2-D per snapshot.
pub(crate) fn drifting_clouds(
    n_snapshots: usize,
    n: usize,
    seed: u64,
) -> anyhow::Result<Snapshots> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut positions = Vec::new();
    let mut velocities = Vec::new();
    let times: Vec<f64> = (0..n_snapshots).map(|k| 0.2 * k as f64).collect();
    for (k, t) in times.iter().enumerate() {
        let _ = k;
        let mut pos = Vec::with_capacity(2 * n);
        let mut vel = Vec::with_capacity(2 * n);
        for _ in 0..n {
            pos.push(rng.random::<f64>() - 0.5 + 0.5 * t);
            pos.push(rng.random::<f64>() - 0.5 - 0.3 * t);
            vel.push(0.5 + 0.1 * (rng.random::<f64>() - 0.5));
            vel.push(-0.3 + 0.1 * (rng.random::<f64>() - 0.5));
        }
        positions.push(pos);
        velocities.push(Some(vel));
    }
    Ok(Snapshots::new(times, 2, positions, Some(velocities))?)
}
