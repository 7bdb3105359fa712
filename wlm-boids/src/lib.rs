//! The Boids flocking simulator with the reference rules of METHOD.md §5.
//!
//! `wlm-boids` produces the Boids data set of the reference experiments: `N` agents steered by
//! cohesion, separation, alignment and a soft box, recorded as [`wlm_data::Snapshots`] with
//! velocities. It depends only on `wlm-data` (for the snapshot type); the learner reads its
//! output like any other data set.
//!
//! # Quick start
//!
//! ```
//! use wlm_boids::{FlockingConfig, Start};
//!
//! // The reference experiment is N = 1000 and 101 records; a small one here.
//! let config = FlockingConfig::default(); // dt 0.5, radii 1.0 / 0.3, box ±5
//! let snapshots = config.simulate(&Start::random_2d(100, 7), 11, 1)?;
//! assert_eq!(snapshots.len(), 11);
//! assert_eq!(snapshots.times()[10], 5.0); // record k at k · dt
//! assert!(snapshots.has_all_velocities());
//! # Ok::<(), wlm_boids::Error>(())
//! ```
//!
//! # Entry points
//!
//! | item | what | cost |
//! |---|---|---|
//! | [`FlockingConfig`] | every weight, radius, box size and `dt`; `Default` = reference | — |
//! | [`FlockingConfig::simulate`] | start → [`Snapshots`](wlm_data::Snapshots) with velocities | `n_records · steps_per_record` steps |
//! | [`Start`] | seeded reference start (`x, v ~ N(0, I)`, mean-centred unit speeds) or given arrays | `O(N · dim)` |
//! | [`Flock::new`], [`Flock::step`] | low-level state and one step (for benchmarks and custom recording) | `O(N · neighbours)` per step (cell list), `O(N²)` ([`NeighbourSearch::AllPairs`]) |
//!
//! The cell list bins boids into cells half as wide as the larger radius, lets the boids of a
//! cell share one candidate list (the 5^dim cells around it, in ascending boid index) and runs
//! cells in parallel (rayon); the all-pairs search is the serial reference. Both feed the same
//! rule code with candidates in ascending boid index, so their trajectories are bitwise
//! identical.
//!
//! # Decisions the reference leaves open
//!
//! - "Within a radius" is strict: `distance < radius`, tested as `squared distance <
//!   radius²`. A boid is its own neighbour (distance 0).
//! - A velocity that is exactly zero after the update stays zero (no NaN); such a boid does
//!   not move that step.
//! - Any dimension works; the reference and [`Start::random_2d`] are 2-D. The boundary rule
//!   acts per coordinate.
//! - Record 0 is the start itself, at time 0. Given start velocities are used as given (the
//!   first step normalises them); random ones already have unit speed.
//!
//! # What can go wrong
//!
//! - A non-positive or non-finite `dt` or radius, a NaN or infinite weight, a negative or NaN
//!   box half-width: [`Error::Config`] naming the field and value.
//! - A given start with a shape mismatch or a NaN/infinite value, zero boids or `dim == 0`:
//!   [`Error::Start`] naming the boid and coordinate.
//! - Zero records or zero steps between records: [`Error::Recording`].
//! - Density, not `N`, sets the cost: from the reference start (`x ~ N(0, I)`) a
//!   100 000-boid flock gives each boid about 25 000 neighbours and one step took 33 s of CPU
//!   on the 2-core dev box, against 0.37 s when the start (and the box) are spread by `√N` to
//!   keep the reference density (see `benches/notes/boids.md`).
//! - The box is soft: the push `dt · boundary_weight = 0.25` is smaller than the unit speed,
//!   so a boid heading nearly straight out turns back only slowly (one heading exactly out
//!   never does); boids of a reference flock can wander well outside `±5`.
//! - Absurd magnitudes (weights or positions near `1e300`) can overflow to infinity during
//!   stepping; [`FlockingConfig::simulate`] then returns [`Error::Data`] from the snapshot
//!   validation.
//! - Stepping never fails and never panics once [`Flock::new`] has accepted the inputs.
//!
//! # References
//!
//! C. W. Reynolds, "Flocks, herds and schools: a distributed behavioral model", SIGGRAPH 1987;
//! the rules and constants are those of the WLM reference experiments (`docs/METHOD.md` §5 in
//! the repository).

mod cells;
mod config;
mod error;
mod flock;
mod start;

pub use config::{FlockingConfig, NeighbourSearch};
pub use error::{Error, Result};
pub use flock::Flock;
pub use start::Start;
