//! `wlm simulate boids|gf-sde`: synthetic data sets written as particle `.npz` files.

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use wlm_boids::{FlockingConfig, Start};
use wlm_data::{GfSdeConfig, Pairing, Potential, Snapshots};

use crate::cli::{BoidsArgs, GfSdeArgs, PotentialName, SimulateCommon};
use crate::data::{read_start, StartSnapshot};

/// Simulates Boids (SPEC 5) from a random or given start.
///
/// # Errors
/// Invalid options, an unreadable start file, simulator errors.
pub(crate) fn boids(args: &BoidsArgs) -> Result<Snapshots> {
    let c = &args.common;
    let mut flocking = FlockingConfig::default();
    if let Some(dt) = c.dt {
        flocking.dt = dt;
    }
    let start = match &c.init {
        Some(path) => {
            let StartSnapshot {
                positions,
                velocities,
            } = read_start(path)?;
            let velocities = match velocities {
                Some(v) => v,
                None => bail!(
                    "{}: Boids need start velocities: give an .npz with `positions` and `velocities`",
                    path.display()
                ),
            };
            Start::Given {
                positions: positions.values,
                velocities,
                dim: positions.dim,
            }
        }
        None => Start::random_2d(c.n_particles.unwrap_or(1000), c.seed),
    };
    let n_snapshots = c.n_snapshots.unwrap_or(101);
    flocking
        .simulate(&start, n_snapshots, 1)
        .context("boids simulation failed")
}

fn potential(name: PotentialName) -> Potential {
    match name {
        PotentialName::Quadratic => Potential::Quadratic,
        PotentialName::StyblinskiTang => Potential::StyblinskiTang,
        PotentialName::Bohachevsky => Potential::Bohachevsky,
        PotentialName::OakleyOhagan => Potential::OakleyOHagan,
        PotentialName::WavyPlateau => Potential::WavyPlateau,
    }
}

/// The GF-SDE config the options describe (SPEC 5 defaults otherwise).
pub(crate) fn gf_sde_config(args: &GfSdeArgs) -> GfSdeConfig {
    let c: &SimulateCommon = &args.common;
    let defaults = GfSdeConfig::default();
    GfSdeConfig {
        potential: potential(args.potential),
        n_particles: c.n_particles.unwrap_or(defaults.n_particles),
        n_snapshots: c.n_snapshots.unwrap_or(defaults.n_snapshots),
        dt: c.dt.unwrap_or(defaults.dt),
        sigma: args.sigma.unwrap_or(defaults.sigma),
        pairing: if args.unpaired {
            Pairing::Unpaired
        } else {
            Pairing::Paired
        },
        seed: c.seed,
        ..defaults
    }
}

/// Simulates the gradient-flow SDE from random or given start points.
///
/// # Errors
/// Invalid options, an unreadable start file, a diverging simulation.
pub(crate) fn gf_sde(args: &GfSdeArgs) -> Result<Snapshots> {
    let config = gf_sde_config(args);
    match &args.common.init {
        None => config.generate().context("gf-sde simulation failed"),
        Some(path) => {
            let start = read_start(path)?;
            gf_sde_from(&config, &start.positions.values, start.positions.dim)
                .context("gf-sde simulation failed")
        }
    }
}

/// Adapter: `wlm_data::GfSdeConfig::generate` always draws its start, so a given start is
/// simulated here by the same scheme (Euler–Maruyama, `substeps` steps per interval,
/// probability-flow velocities from `wlm_data::probability_flow_velocity`). Paired: one set
/// of trajectories; unpaired: snapshot `k` is re-simulated from a resample (with
/// replacement) of the start points.
///
/// # Errors
/// Invalid config fields; divergence to non-finite values.
pub(crate) fn gf_sde_from(config: &GfSdeConfig, x0: &[f64], dim: usize) -> Result<Snapshots> {
    let config = GfSdeConfig {
        dim,
        n_particles: x0.len() / dim,
        ..config.clone()
    };
    config.validate()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let h = config.dt / config.substeps as f64;
    let noise = config.sigma * h.sqrt();
    let n = x0.len() / dim;
    let step = |x: &mut [f64], steps: usize, rng: &mut rand::rngs::StdRng| {
        let mut grad = vec![0.0; dim];
        for _ in 0..steps {
            for point in x.chunks_exact_mut(dim) {
                config.potential.gradient(point, &mut grad);
                for (xi, g) in point.iter_mut().zip(&grad) {
                    *xi += -g * h + noise * rng.sample::<f64, _>(StandardNormal);
                }
            }
        }
    };
    let mut positions = vec![x0.to_vec()];
    let mut x = x0.to_vec();
    for k in 1..config.n_snapshots {
        if config.pairing == Pairing::Paired {
            step(&mut x, config.substeps, &mut rng);
            positions.push(x.clone());
        } else {
            let mut y = Vec::with_capacity(x0.len());
            for _ in 0..n {
                let i = rng.random_range(0..n);
                y.extend_from_slice(&x0[i * dim..(i + 1) * dim]);
            }
            step(&mut y, k * config.substeps, &mut rng);
            positions.push(y);
        }
    }
    let sign = config.score_sign;
    let velocities = positions
        .iter()
        .map(|p| {
            Some(wlm_data::probability_flow_velocity(
                p,
                dim,
                config.potential,
                config.sigma,
                sign,
            ))
        })
        .collect();
    let times = (0..config.n_snapshots)
        .map(|k| k as f64 * config.dt)
        .collect();
    Snapshots::new(times, dim, positions, Some(velocities))
        .context("the simulation diverged (try a smaller --dt)")
}
