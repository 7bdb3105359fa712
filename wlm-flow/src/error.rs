//! The crate's error type: bad configs name their field, bad data name the snapshot.

/// Failures of flow-matching training and prediction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config field out of range; `field` is its dotted path (e.g. `flow.path.omega`).
    #[error("invalid config field `{field}`: {message}")]
    Config {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong, with the offending value.
        message: String,
    },
    /// Data that cannot train or be predicted from (too few snapshots, wrong dimension, a
    /// snapshot index out of range, non-finite values).
    #[error("invalid data: {0}")]
    Data(String),
    /// Training produced a non-finite loss.
    #[error("training diverged at step {step}: the loss is {loss}")]
    Diverged {
        /// The step (0-based).
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// Reading or writing weights.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An exact transport plan failed.
    #[error(transparent)]
    Ot(#[from] wlm_ot::Error),
    /// A data-crate failure (e.g. writing a file atomically).
    #[error(transparent)]
    Snapshots(#[from] wlm_data::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    /// A [`Error::Config`] for `field`.
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            field,
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
