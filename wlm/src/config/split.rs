//! Which snapshots train and which are held out: the config and its resolution.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which snapshots train the model and which are held out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SplitConfig {
    /// Forecasting: the first `n_train` snapshots train, the rest are test snapshots.
    Forecast {
        /// Number of leading training snapshots (at least 2).
        n_train: usize,
    },
    /// Interpolation: the listed snapshots (never 0) are held out, the others train.
    Holdout {
        /// Held-out snapshot indices.
        indices: Vec<usize>,
    },
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self::Forecast { n_train: 2 }
    }
}

/// Resolved snapshot indices of a split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training snapshot indices, increasing, starting with 0.
    pub train: Vec<usize>,
    /// Test snapshot indices, increasing.
    pub test: Vec<usize>,
    /// Validation snapshot indices, increasing: observed between training snapshots but left
    /// out of the loss ([`ModelSelection::Validation`]); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<usize>,
}

impl Split {
    /// Whether this is a forecast split (every test snapshot after the last training one).
    pub fn is_forecast(&self) -> bool {
        let last_train = self.train.last().copied().unwrap_or(0);
        self.test.iter().all(|&h| h > last_train)
    }
}

impl SplitConfig {
    /// The indices for `n_snapshots` snapshots.
    ///
    /// # Errors
    /// [`Error::Config`] (`split`) for fewer than 2 training snapshots, a holdout index of 0
    /// or out of range.
    pub fn resolve(&self, n_snapshots: usize) -> Result<Split> {
        let split = match self {
            SplitConfig::Forecast { n_train } => {
                if *n_train < 2 || *n_train > n_snapshots {
                    return Err(Error::config(
                        "split.n_train",
                        format!(
                            "must be in 2..={n_snapshots} (the number of snapshots), got {n_train}"
                        ),
                    ));
                }
                Split {
                    train: (0..*n_train).collect(),
                    test: (*n_train..n_snapshots).collect(),
                    validation: Vec::new(),
                }
            }
            SplitConfig::Holdout { indices } => {
                let mut test = indices.clone();
                test.sort_unstable();
                test.dedup();
                if let Some(&bad) = test.iter().find(|&&h| h == 0 || h >= n_snapshots) {
                    return Err(Error::config(
                        "split.indices",
                        format!("held-out index {bad} must be in 1..{n_snapshots}"),
                    ));
                }
                let train: Vec<usize> = (0..n_snapshots).filter(|k| !test.contains(k)).collect();
                if train.len() < 2 {
                    return Err(Error::config(
                        "split.indices",
                        "at least 2 training snapshots must remain",
                    ));
                }
                Split {
                    train,
                    test,
                    validation: Vec::new(),
                }
            }
        };
        Ok(split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_resolve_and_reject_bad_indices() {
        let s = SplitConfig::Forecast { n_train: 3 }.resolve(5).unwrap();
        assert_eq!(s.train, vec![0, 1, 2]);
        assert_eq!(s.test, vec![3, 4]);
        assert!(s.is_forecast());
        let s = SplitConfig::Holdout {
            indices: vec![3, 1],
        }
        .resolve(5)
        .unwrap();
        assert_eq!(s.train, vec![0, 2, 4]);
        assert_eq!(s.test, vec![1, 3]);
        assert!(!s.is_forecast());
        assert!(SplitConfig::Holdout { indices: vec![0] }
            .resolve(5)
            .is_err());
        assert!(SplitConfig::Forecast { n_train: 1 }.resolve(5).is_err());
    }
}
