//! `wlm simulate boids|gf-sde`: synthetic data sets written as particle `.npz` files.

use anyhow::{bail, Context, Result};

use wlm_boids::{FlockingConfig, Start};
use wlm_data::{GfSdeConfig, Pairing, Potential, Snapshots};

use crate::cli::{BoidsArgs, GfSdeArgs, PotentialName, SimulateCommon};
use crate::data::{read_start, StartSnapshot};

/// Simulates Boids (METHOD.md §5) from a random or given start.
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
        .with_context(|| format!("boids simulation failed (--n-snapshots {n_snapshots})"))
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

/// The GF-SDE config the options describe (METHOD.md §5 defaults otherwise).
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
            let config = GfSdeConfig {
                dim: start.positions.dim,
                ..config
            };
            config
                .generate_from(&start.positions.values)
                .context("gf-sde simulation failed")
        }
    }
}
