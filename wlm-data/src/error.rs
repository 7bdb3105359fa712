//! The error type of `wlm-data`.

use std::path::PathBuf;

/// Everything that can go wrong when building, loading or writing snapshots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The snapshots themselves are inconsistent (times, shapes, values).
    #[error("snapshot {index}: {problem}")]
    InvalidSnapshot {
        /// Index of the offending snapshot.
        index: usize,
        /// What is wrong, in words.
        problem: String,
    },
    /// A problem with the collection as a whole (no snapshots, mismatched list lengths).
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file was read but its content is not what the loader expects.
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key or field.
        problem: String,
    },
    /// A named entry of a file (an `.npz` key, an HDF5 path, a CSV column) is missing or
    /// malformed.
    #[error("{path}: key `{key}`: {problem}")]
    Key {
        /// The file (`<memory>` for bytes parsed without a file).
        path: PathBuf,
        /// The entry: `.npz` key, HDF5 path such as `obsm/X_pca`, or CSV column.
        key: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// A tensor operation failed while converting to or from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
