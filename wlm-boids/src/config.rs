//! [`FlockingConfig`]: every weight, radius, box size and time step of the Boids rules.

use serde::{Deserialize, Serialize};
use wlm_data::Snapshots;

use crate::{Error, Flock, Result, Start};

/// How a step finds each boid's neighbours. Both give bitwise identical trajectories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NeighbourSearch {
    /// Bin boids into a uniform grid of cells at least half as wide as the larger radius and
    /// look only in the `5^dim` cells around each boid's cell: `O(N · neighbours)` per step.
    #[default]
    CellList,
    /// Test every pair: `O(N²)` per step. The reference that the cell list is tested against.
    AllPairs,
}

/// The parameters of the reference Boids rules (METHOD.md §5); `Default` gives the reference
/// values.
///
/// One step with time step `dt` updates every boid `i` from the *old* state of all boids:
///
/// ```text
/// outer(i) = { j : |x_j − x_i| < outer_radius }      (self included: distance 0 counts)
/// inner(i) = { j : |x_j − x_i| < inner_radius }
/// coh = Σ_outer (x_j − x_i) / max(1, n_outer)
/// sep = −Σ_inner (x_j − x_i)
/// ali = Σ_outer (v_j − v_i) / max(1, n_outer)
/// bnd_k = −sign(x_k) if |x_k| > box_half_width, else 0          (per coordinate k)
/// v ← normalise(v + dt (cohesion_weight coh + separation_weight sep
///                        + alignment_weight ali + boundary_weight bnd))
/// x ← x + dt v
/// ```
///
/// "Within" is strict: a neighbour at exactly the radius does not count (tested as
/// `squared distance < radius²`). `normalise` divides by the Euclidean norm; a velocity that is
/// exactly zero stays zero (no NaN), so that boid does not move this step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlockingConfig {
    /// Time step `dt` (time units) of one update, also the factor of the position update.
    /// Must be positive and finite. Default `0.5`.
    pub dt: f64,
    /// Outer radius (length units): neighbours for cohesion and alignment lie strictly closer
    /// than this. Must be positive and finite. Default `1.0`.
    pub outer_radius: f64,
    /// Inner radius (length units): neighbours for separation lie strictly closer than this.
    /// Must be positive and finite. Default `0.3`.
    pub inner_radius: f64,
    /// Weight of cohesion, the pull towards the mean position of the outer neighbours
    /// (dimensionless). Must be finite. Default `0.005`.
    pub cohesion_weight: f64,
    /// Weight of separation, the push away from inner neighbours (dimensionless). Must be
    /// finite. Default `0.1`.
    pub separation_weight: f64,
    /// Weight of alignment, the pull towards the mean velocity of the outer neighbours
    /// (dimensionless). Must be finite. Default `0.3`.
    pub alignment_weight: f64,
    /// Weight of the boundary push (dimensionless). Must be finite. Default `0.5`.
    pub boundary_weight: f64,
    /// Half-width of the box `[−L, L]^dim` (length units): a coordinate with `|x_k| > L` is
    /// pushed back by `−sign(x_k)`. Must be non-negative and not NaN; `+∞` disables the
    /// boundary. Default `5.0`.
    pub box_half_width: f64,
    /// How neighbours are found; does not change the result. Default
    /// [`NeighbourSearch::CellList`].
    pub neighbour_search: NeighbourSearch,
}

impl Default for FlockingConfig {
    fn default() -> Self {
        Self {
            dt: 0.5,
            outer_radius: 1.0,
            inner_radius: 0.3,
            cohesion_weight: 0.005,
            separation_weight: 0.1,
            alignment_weight: 0.3,
            boundary_weight: 0.5,
            box_half_width: 5.0,
            neighbour_search: NeighbourSearch::CellList,
        }
    }
}

impl FlockingConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field and its value: `dt` or a radius that is
    /// not positive and finite, a weight that is NaN or infinite, a NaN or negative
    /// `box_half_width`.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value, problem| {
            Err(Error::Config {
                field,
                value,
                problem,
            })
        };
        for (field, value) in [
            ("dt", self.dt),
            ("outer_radius", self.outer_radius),
            ("inner_radius", self.inner_radius),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return bad(field, value, "must be positive and finite");
            }
        }
        for (field, value) in [
            ("cohesion_weight", self.cohesion_weight),
            ("separation_weight", self.separation_weight),
            ("alignment_weight", self.alignment_weight),
            ("boundary_weight", self.boundary_weight),
        ] {
            if !value.is_finite() {
                return bad(field, value, "must be finite");
            }
        }
        if self.box_half_width.is_nan() || self.box_half_width < 0.0 {
            return bad(
                "box_half_width",
                self.box_half_width,
                "must be non-negative (or +inf)",
            );
        }
        Ok(())
    }

    /// Simulates a flock and records it: `n_records` snapshots with velocities, the first
    /// being the start itself at time 0 and the next ones `steps_per_record` steps apart, so
    /// snapshot `k` is at time `k · steps_per_record · dt`.
    ///
    /// The reference experiment is `FlockingConfig::default().simulate(&Start::Random {
    /// n_boids: 1000, dim: 2, seed }, 101, 1)`.
    ///
    /// # Shapes
    /// Every snapshot holds `n_boids` points in `R^dim`, row-major, in the same boid order
    /// (the trajectories are paired).
    ///
    /// # Errors
    /// [`Error::Config`] from [`FlockingConfig::validate`]; [`Error::Start`] for a bad start
    /// (see [`Flock::new`]); [`Error::Recording`] if `n_records == 0` or
    /// `steps_per_record == 0`, or if the records would not fit in the memory available
    /// ([`Snapshots::check_fits`]).
    pub fn simulate(
        &self,
        start: &Start,
        n_records: usize,
        steps_per_record: usize,
    ) -> Result<Snapshots> {
        if n_records == 0 {
            return Err(Error::Recording(
                "n_records must be at least 1, got 0".into(),
            ));
        }
        if steps_per_record == 0 {
            return Err(Error::Recording(
                "steps_per_record must be at least 1, got 0".into(),
            ));
        }
        // Every record holds positions and velocities of the whole flock: refuse sizes that
        // cannot fit before drawing the start or reserving the records.
        let (n_boids, dim) = match start {
            Start::Random { n_boids, dim, .. } => (*n_boids, *dim),
            Start::Given { positions, dim, .. } => (positions.len() / (*dim).max(1), *dim),
        };
        Snapshots::check_fits(n_records, n_boids, dim, true)
            .map_err(|e| Error::Recording(format!("n_records is {n_records}: {e}")))?;
        let mut flock = Flock::new(self.clone(), start)?;
        let mut times = Vec::with_capacity(n_records);
        let mut positions = Vec::with_capacity(n_records);
        let mut velocities = Vec::with_capacity(n_records);
        for record in 0..n_records {
            if record > 0 {
                for _ in 0..steps_per_record {
                    flock.step();
                }
            }
            times.push(flock.time());
            positions.push(flock.positions().to_vec());
            velocities.push(Some(flock.velocities().to_vec()));
        }
        Ok(Snapshots::new(
            times,
            flock.dim(),
            positions,
            Some(velocities),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_the_reference_values() {
        let c = FlockingConfig::default();
        c.validate().unwrap();
        assert_eq!(
            (c.dt, c.outer_radius, c.inner_radius, c.box_half_width),
            (0.5, 1.0, 0.3, 5.0)
        );
        assert_eq!(
            (
                c.cohesion_weight,
                c.separation_weight,
                c.alignment_weight,
                c.boundary_weight
            ),
            (0.005, 0.1, 0.3, 0.5)
        );
    }

    #[test]
    fn each_bad_field_is_named_with_its_value() {
        type Spoil = fn(&mut FlockingConfig);
        let cases: [(Spoil, &str); 7] = [
            (|c| c.dt = 0.0, "dt = 0"),
            (|c| c.dt = f64::INFINITY, "dt = inf"),
            (|c| c.outer_radius = -1.0, "outer_radius = -1"),
            (|c| c.inner_radius = f64::NAN, "inner_radius = NaN"),
            (|c| c.alignment_weight = f64::NAN, "alignment_weight = NaN"),
            (
                |c| c.boundary_weight = f64::NEG_INFINITY,
                "boundary_weight = -inf",
            ),
            (|c| c.box_half_width = -0.5, "box_half_width = -0.5"),
        ];
        for (spoil, expected) in cases {
            let mut c = FlockingConfig::default();
            spoil(&mut c);
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(expected), "{msg} should contain {expected}");
        }
    }

    #[test]
    fn infinite_box_and_negative_weights_are_allowed() {
        let c = FlockingConfig {
            box_half_width: f64::INFINITY,
            cohesion_weight: -1.0,
            ..FlockingConfig::default()
        };
        c.validate().unwrap();
    }

    #[test]
    fn records_that_cannot_fit_in_memory_are_an_error_naming_n_records() {
        let start = Start::random_2d(10, 0);
        for n_records in [usize::MAX, 1 << 50] {
            let err = FlockingConfig::default()
                .simulate(&start, n_records, 1)
                .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Recording(_)), "{msg}");
            assert!(msg.contains(&format!("n_records is {n_records}")), "{msg}");
        }
    }
}
