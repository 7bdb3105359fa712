//! [`Flock`]: the state of a flock and one step of the Boids rules.

use rayon::prelude::*;

use crate::cells::{unpack_slot, CellGrid};
use crate::{FlockingConfig, NeighbourSearch, Result, Start};

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
                for (boid, out) in self.next_velocities.chunks_exact_mut(dim).enumerate() {
                    let (x_i, v_i) = (row(positions, dim, boid), row(velocities, dim, boid));
                    rules.steer(x_i, v_i, positions, velocities, out);
                }
            }
            NeighbourSearch::CellList => {
                // Work cell by cell in slot order: the boids of one cell share their candidates
                // (the cells around it), gathered once into contiguous arrays in ascending boid
                // index; then scatter the results back to boid order.
                let radius = rules.outer_radius.max(rules.inner_radius);
                let grid = CellGrid::build(positions, velocities, dim, radius);
                let sorted_next = &mut self.sorted_next_velocities;
                sorted_next.resize(n_boids * dim, 0.0);
                let mut work = Vec::new();
                let mut rest = sorted_next.as_mut_slice();
                for cell in 0..grid.n_cells() {
                    let slots = grid.cell_slots(cell);
                    if !slots.is_empty() {
                        let (head, tail) = rest.split_at_mut(slots.len() * dim);
                        work.push((cell, slots.start, head));
                        rest = tail;
                    }
                }
                work.into_par_iter().for_each_init(
                    || (Vec::new(), Vec::new(), Vec::new()),
                    |(packed, others_x, others_v), (cell, first_slot, out)| {
                        grid.candidates_of_cell(cell, packed);
                        others_x.clear();
                        others_v.clear();
                        for &candidate in packed.iter() {
                            let (x_j, v_j) = grid.state(unpack_slot(candidate));
                            others_x.extend_from_slice(x_j);
                            others_v.extend_from_slice(v_j);
                        }
                        for (offset, out) in out.chunks_exact_mut(dim).enumerate() {
                            let (x_i, v_i) = grid.state(first_slot + offset);
                            rules.steer(x_i, v_i, others_x, others_v, out);
                        }
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
    /// `others_x`, `others_v` (row-major, `dim` columns) list candidates in ascending boid
    /// index and must include every neighbour within the larger radius (the boid itself
    /// too); non-neighbours among them are filtered here, so the arithmetic is the same
    /// whichever search produced them.
    fn steer(&self, x_i: &[f64], v_i: &[f64], others_x: &[f64], others_v: &[f64], out: &mut [f64]) {
        match x_i.len() {
            1 => self.steer_in::<1>(x_i, v_i, others_x, others_v, out),
            2 => self.steer_in::<2>(x_i, v_i, others_x, others_v, out),
            3 => self.steer_in::<3>(x_i, v_i, others_x, others_v, out),
            _ => self.steer_any(x_i, v_i, others_x, others_v, out),
        }
    }

    /// [`Rules::steer`] for any dimension, read from `x_i`.
    fn steer_any(
        &self,
        x_i: &[f64],
        v_i: &[f64],
        others_x: &[f64],
        others_v: &[f64],
        out: &mut [f64],
    ) {
        let dim = x_i.len();
        let mut sums = Sums::new(dim);
        let others = others_x.chunks_exact(dim).zip(others_v.chunks_exact(dim));
        for (x_j, v_j) in others {
            self.add_candidate(x_i, v_i, x_j, v_j, &mut sums);
        }
        self.finish(x_i, v_i, &sums, out);
    }

    /// [`Rules::steer`] with the dimension `D` fixed at compile time (fixed-size arrays,
    /// loops unrolled): the same operations in the same order as [`Rules::steer_any`]. Kept as
    /// that function's twin on purpose: the fixed-size arrays are what makes it fast.
    fn steer_in<const D: usize>(
        &self,
        x_i: &[f64],
        v_i: &[f64],
        others_x: &[f64],
        others_v: &[f64],
        out: &mut [f64],
    ) {
        let fixed = |row: &[f64]| -> [f64; D] { std::array::from_fn(|k| row[k]) };
        let (x_i, v_i) = (fixed(x_i), fixed(v_i));
        let mut cohesion = [0.0; D];
        let mut separation = [0.0; D];
        let mut alignment = [0.0; D];
        let mut n_outer = 0usize;
        let n_others = others_x.len() / D;
        for j in 0..n_others {
            let x_j = fixed(&others_x[j * D..j * D + D]);
            let v_j = fixed(&others_v[j * D..j * D + D]);
            let mut d_sq = 0.0;
            for k in 0..D {
                d_sq += (x_j[k] - x_i[k]) * (x_j[k] - x_i[k]);
            }
            // Selects, not branches: see `add_candidate`.
            let is_outer = d_sq < self.outer_sq;
            let is_inner = d_sq < self.inner_sq;
            n_outer += usize::from(is_outer);
            for k in 0..D {
                let dx = x_j[k] - x_i[k];
                let dv = v_j[k] - v_i[k];
                cohesion[k] += if is_outer { dx } else { 0.0 };
                alignment[k] += if is_outer { dv } else { 0.0 };
                separation[k] -= if is_inner { dx } else { 0.0 };
            }
        }
        let sums = Sums {
            cohesion,
            separation,
            alignment,
            n_outer,
        };
        self.finish(&x_i, &v_i, &sums, out);
    }

    /// Adds candidate `j` to the sums if it is a neighbour.
    #[inline(always)]
    fn add_candidate<S: AsMut<[f64]>>(
        &self,
        x_i: &[f64],
        v_i: &[f64],
        x_j: &[f64],
        v_j: &[f64],
        sums: &mut Sums<S>,
    ) {
        let dim = x_i.len();
        let mut d_sq = 0.0;
        for k in 0..dim {
            d_sq += (x_j[k] - x_i[k]) * (x_j[k] - x_i[k]);
        }
        // Selects rather than branches: about a third of the candidates are neighbours, so
        // branches would mispredict. Adding +0.0 to a sum that started at +0.0 leaves it
        // unchanged, so the result equals summing the neighbours alone.
        let is_outer = d_sq < self.outer_sq;
        let is_inner = d_sq < self.inner_sq;
        sums.n_outer += usize::from(is_outer);
        let (cohesion, separation, alignment) = (
            sums.cohesion.as_mut(),
            sums.separation.as_mut(),
            sums.alignment.as_mut(),
        );
        for k in 0..dim {
            let dx = x_j[k] - x_i[k];
            let dv = v_j[k] - v_i[k];
            cohesion[k] += if is_outer { dx } else { 0.0 };
            alignment[k] += if is_outer { dv } else { 0.0 };
            separation[k] -= if is_inner { dx } else { 0.0 };
        }
    }

    /// `out ← normalise(v + dt (weighted sums + boundary))`.
    #[inline(always)]
    fn finish<S: AsRef<[f64]>>(&self, x_i: &[f64], v_i: &[f64], sums: &Sums<S>, out: &mut [f64]) {
        let (cohesion, separation, alignment) = (
            sums.cohesion.as_ref(),
            sums.separation.as_ref(),
            sums.alignment.as_ref(),
        );
        let count = sums.n_outer.max(1) as f64;
        for k in 0..x_i.len() {
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

/// Running neighbour sums of one boid: `Σ_outer (x_j − x_i)`, `−Σ_inner (x_j − x_i)`,
/// `Σ_outer (v_j − v_i)` and `n_outer`; `S` is `[f64; D]` or `Vec<f64>`.
struct Sums<S> {
    cohesion: S,
    separation: S,
    alignment: S,
    n_outer: usize,
}

impl Sums<Vec<f64>> {
    fn new(dim: usize) -> Self {
        Self {
            cohesion: vec![0.0; dim],
            separation: vec![0.0; dim],
            alignment: vec![0.0; dim],
            n_outer: 0,
        }
    }
}

/// Row `j` of a row-major array with `dim` columns.
fn row(values: &[f64], dim: usize, j: usize) -> &[f64] {
    &values[j * dim..(j + 1) * dim]
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
