//! [`Flock`]: the state of a flock and one step of the Boids rules.

use rayon::prelude::*;

use crate::cells::CellGrid;
use crate::{FlockingConfig, NeighbourSearch, Result, Start};

/// Boids per rayon task: below this, splitting costs more than it saves.
const MIN_BOIDS_PER_TASK: usize = 256;

/// A flock: positions and velocities of `n_boids` boids in `R^dim`, advanced by
/// [`Flock::step`] under the rules of its [`FlockingConfig`].
///
/// # Shapes
/// Positions and velocities are row-major `(n_boids, dim)`.
#[derive(Debug, Clone)]
pub struct Flock {
    config: FlockingConfig,
    dim: usize,
    positions: Vec<f64>,
    velocities: Vec<f64>,
    next_velocities: Vec<f64>,
    sorted_next_velocities: Vec<f64>,
    steps_taken: usize,
}

impl Flock {
    /// A flock at time 0 from a checked config and start.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) from [`FlockingConfig::validate`];
    /// [`Error::Start`](crate::Error::Start) from [`Start::realise`].
    pub fn new(config: FlockingConfig, start: &Start) -> Result<Self> {
        config.validate()?;
        let (positions, velocities, dim) = start.realise()?;
        let next_velocities = vec![0.0; velocities.len()];
        Ok(Self {
            config,
            dim,
            positions,
            velocities,
            next_velocities,
            sorted_next_velocities: Vec::new(),
            steps_taken: 0,
        })
    }

    /// Advances every boid by one time step `dt` (see [`FlockingConfig`] for the rules).
    ///
    /// All boids are updated from the old state. Neighbour contributions are summed in
    /// ascending boid index with either [`NeighbourSearch`], so both give bitwise identical
    /// results. Cost: `O(N · neighbours)` with the cell list, `O(N²)` with all pairs.
    pub fn step(&mut self) {
        let dim = self.dim;
        let n_boids = self.n_boids();
        let rules = Rules::new(&self.config);
        let positions = &self.positions;
        let velocities = &self.velocities;
        match self.config.neighbour_search {
            NeighbourSearch::AllPairs => {
                let mut sums = vec![0.0; 3 * dim];
                for (boid, out) in self.next_velocities.chunks_exact_mut(dim).enumerate() {
                    let others =
                        (0..n_boids).map(|j| (row(positions, dim, j), row(velocities, dim, j)));
                    let (x_i, v_i) = (row(positions, dim, boid), row(velocities, dim, boid));
                    rules.steer(x_i, v_i, others, &mut sums, out);
                }
            }
            NeighbourSearch::CellList => {
                // Work in cell order (slots) so that neighbours are close in memory; sum them
                // in ascending boid index; then scatter the results back to boid order.
                let radius = rules.outer_radius.max(rules.inner_radius);
                let grid = CellGrid::build(positions, velocities, dim, radius);
                let search_sq = rules.outer_sq.max(rules.inner_sq);
                let sorted_next = &mut self.sorted_next_velocities;
                sorted_next.resize(n_boids * dim, 0.0);
                sorted_next
                    .par_chunks_mut(dim)
                    .with_min_len(MIN_BOIDS_PER_TASK)
                    .enumerate()
                    .for_each_init(
                        || (Vec::new(), vec![0.0; 3 * dim]),
                        |(found, sums), (slot, out)| {
                            grid.neighbours_of(slot, search_sq, found);
                            let others = found
                                .iter()
                                .map(|&packed| grid.state((packed & u64::from(u32::MAX)) as usize));
                            let (x_i, v_i) = grid.state(slot);
                            rules.steer(x_i, v_i, others, sums, out);
                        },
                    );
                for (slot, &boid) in grid.order().iter().enumerate() {
                    self.next_velocities[boid * dim..(boid + 1) * dim]
                        .copy_from_slice(&sorted_next[slot * dim..(slot + 1) * dim]);
                }
            }
        }
        std::mem::swap(&mut self.velocities, &mut self.next_velocities);
        let dt = self.config.dt;
        for (x, v) in self.positions.iter_mut().zip(&self.velocities) {
            *x += dt * v;
        }
        self.steps_taken += 1;
    }

    /// The rules in use.
    pub fn config(&self) -> &FlockingConfig {
        &self.config
    }

    /// Dimension of space.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of boids.
    pub fn n_boids(&self) -> usize {
        self.positions.len() / self.dim
    }

    /// Positions, row-major `(n_boids, dim)`.
    pub fn positions(&self) -> &[f64] {
        &self.positions
    }

    /// Velocities, row-major `(n_boids, dim)`; unit speed (or zero) after the first step.
    pub fn velocities(&self) -> &[f64] {
        &self.velocities
    }

    /// Number of steps taken since the start.
    pub fn steps_taken(&self) -> usize {
        self.steps_taken
    }

    /// Current time, `steps_taken · dt` (not accumulated, so exactly a multiple of `dt`).
    pub fn time(&self) -> f64 {
        self.steps_taken as f64 * self.config.dt
    }
}

/// The config's numbers in the form the inner loop wants.
struct Rules {
    dt: f64,
    outer_radius: f64,
    inner_radius: f64,
    outer_sq: f64,
    inner_sq: f64,
    cohesion_weight: f64,
    separation_weight: f64,
    alignment_weight: f64,
    boundary_weight: f64,
    box_half_width: f64,
}

impl Rules {
    fn new(c: &FlockingConfig) -> Self {
        Self {
            dt: c.dt,
            outer_radius: c.outer_radius,
            inner_radius: c.inner_radius,
            outer_sq: c.outer_radius * c.outer_radius,
            inner_sq: c.inner_radius * c.inner_radius,
            cohesion_weight: c.cohesion_weight,
            separation_weight: c.separation_weight,
            alignment_weight: c.alignment_weight,
            boundary_weight: c.boundary_weight,
            box_half_width: c.box_half_width,
        }
    }

    /// Writes the new (normalised) velocity of the boid at `x_i` with velocity `v_i` into
    /// `out`.
    ///
    /// `others` yields `(x_j, v_j)` in ascending boid index and must include every neighbour
    /// within the larger radius (the boid itself too); non-neighbours among them are filtered
    /// here, so the arithmetic is the same whichever search produced them. `sums` is scratch
    /// of length `3 · dim`.
    fn steer<'a>(
        &self,
        x_i: &[f64],
        v_i: &[f64],
        others: impl Iterator<Item = (&'a [f64], &'a [f64])>,
        sums: &mut [f64],
        out: &mut [f64],
    ) {
        let dim = x_i.len();
        sums.fill(0.0);
        let (cohesion, rest) = sums.split_at_mut(dim);
        let (separation, alignment) = rest.split_at_mut(dim);
        let mut n_outer = 0usize;
        for (x_j, v_j) in others {
            let d_sq = squared_distance(x_i, x_j);
            if d_sq < self.outer_sq {
                n_outer += 1;
                for k in 0..dim {
                    cohesion[k] += x_j[k] - x_i[k];
                    alignment[k] += v_j[k] - v_i[k];
                }
            }
            if d_sq < self.inner_sq {
                for k in 0..dim {
                    separation[k] -= x_j[k] - x_i[k];
                }
            }
        }
        let count = n_outer.max(1) as f64;
        for k in 0..dim {
            let boundary = if x_i[k].abs() > self.box_half_width {
                -x_i[k].signum()
            } else {
                0.0
            };
            let steering = self.cohesion_weight * (cohesion[k] / count)
                + self.separation_weight * separation[k]
                + self.alignment_weight * (alignment[k] / count)
                + self.boundary_weight * boundary;
            out[k] = v_i[k] + self.dt * steering;
        }
        normalise(out);
    }
}

/// Row `j` of a row-major array with `dim` columns.
fn row(values: &[f64], dim: usize, j: usize) -> &[f64] {
    &values[j * dim..(j + 1) * dim]
}

/// `Σ_k (b_k − a_k)²`, summed in coordinate order. Both searches use this one function.
pub(crate) fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (q - p) * (q - p)).sum()
}

/// Scales `v` to unit Euclidean norm; an exactly zero vector stays zero (never NaN).
pub(crate) fn normalise(v: &mut [f64]) {
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|a| *a /= norm);
        return;
    }
    // Zero, or a norm that under- or overflowed: rescale by the largest entry first.
    let largest = v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    if largest > 0.0 && largest.is_finite() {
        v.iter_mut().for_each(|a| *a /= largest);
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_keeps_zero_and_rescues_tiny_and_huge_vectors() {
        let mut zero = [0.0, 0.0];
        normalise(&mut zero);
        assert_eq!(zero, [0.0, 0.0]);
        for scale in [1e-200, 1.0, 1e200] {
            let mut v = [3.0 * scale, -4.0 * scale];
            normalise(&mut v);
            assert!(
                (v[0] - 0.6).abs() < 1e-15 && (v[1] + 0.8).abs() < 1e-15,
                "{v:?}"
            );
        }
    }

    #[test]
    fn time_is_an_exact_multiple_of_dt() {
        let config = FlockingConfig {
            dt: 0.1,
            ..FlockingConfig::default()
        };
        let mut flock = Flock::new(config, &Start::random_2d(5, 0)).unwrap();
        for _ in 0..7 {
            flock.step();
        }
        assert_eq!(flock.steps_taken(), 7);
        assert_eq!(flock.time(), 7.0 * 0.1);
    }
}
