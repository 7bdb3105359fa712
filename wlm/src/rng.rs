//! The trainer's random number generator: [`wlm_numeric::SeedRng`] under its historical name.
//!
//! xoshiro256++ seeded through splitmix64, whose whole state is four `u64`s: a checkpoint
//! stores them (`meta/rng`), so a resumed run draws exactly the numbers an uninterrupted one
//! would. The trainer draws only through `SeedRng`'s own pinned methods (`below`,
//! `range_inclusive`, `sample_indices`), never through `rand`, so a seed means the same
//! horizons and minibatches across dependency upgrades.

pub use wlm_numeric::SeedRng as TrainRng;
