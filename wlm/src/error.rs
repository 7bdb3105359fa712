//! The crate's error type: every failure names the field, file or training step involved.

use std::path::PathBuf;

/// Errors of the learner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or inconsistent with the data.
    #[error("invalid config field `{field}`: {message}")]
    Config {
        /// Dotted path of the offending field, e.g. `train.lr`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The data cannot be used as asked (too few snapshots, missing velocities, ...).
    #[error("data: {0}")]
    Data(String),
    /// The loss or a gradient became NaN or infinite; training stopped before updating.
    #[error("step {step}: non-finite {what}; training stopped, the last checkpoint is kept")]
    NonFinite {
        /// The training step (1-based) at which it happened; 0 when raised outside a
        /// [`crate::Trainer`] (e.g. by [`crate::Model::loss_and_gradients`]).
        step: usize,
        /// What was non-finite (`loss`, or `gradient of <parameter>`).
        what: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint, weights or config file has the wrong content.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// The optimal-transport crate failed.
    #[error(transparent)]
    Ot(#[from] wlm_ot::Error),
    /// The data crate failed.
    #[error(transparent)]
    Snapshots(#[from] wlm_data::Error),
}

impl Error {
    /// A [`Error::Config`] for `field`.
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::File`] for `path`.
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::File {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
