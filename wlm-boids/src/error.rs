//! The error type of `wlm-boids`.

/// Everything that can go wrong when configuring, starting or recording a flock.
///
/// Stepping a valid [`Flock`](crate::Flock) never fails: every check happens up front.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of [`FlockingConfig`](crate::FlockingConfig) has a value the rules cannot use.
    #[error("invalid flocking config: {field} = {value} ({problem})")]
    Config {
        /// Name of the offending field, as spelled in the struct.
        field: &'static str,
        /// The offending value.
        value: f64,
        /// What the field must be instead.
        problem: &'static str,
    },
    /// The [`Start`](crate::Start) is unusable (no boids, zero dimension, shape mismatch,
    /// non-finite value).
    #[error("invalid start: {0}")]
    Start(String),
    /// The recording request is unusable (no records, zero steps between records).
    #[error("invalid recording: {0}")]
    Recording(String),
    /// Building the output [`Snapshots`](wlm_data::Snapshots) failed.
    #[error(transparent)]
    Data(#[from] wlm_data::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
