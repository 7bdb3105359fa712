//! Snapshots of a population at a few times: the validated [`Snapshots`] type, loaders and
//! writers, the blur estimate, and synthetic SDE data.

mod error;
mod snapshots;

pub use error::{Error, Result};
pub use snapshots::Snapshots;
