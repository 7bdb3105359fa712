//! Snapshots from a table of cells (one time, one embedding row and optional velocity row per
//! cell), grouped by time: the grouping of the AnnData loader, shared with the Python bindings.

use std::fmt;

use crate::Snapshots;

/// The time and name of each category of a categorical time column whose categories are
/// strings: the categories' values when every one is a finite number (`"3"`, `" 1.5"`),
/// otherwise each category's position in the list (`0, 1, …`, so an ordered categorical like
/// `day0 < day1` keeps its order). The name is the category itself.
pub fn string_category_times(categories: Vec<String>) -> Vec<(f64, String)> {
    let parsed: Option<Vec<f64>> = categories
        .iter()
        .map(|s| s.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    match parsed {
        Some(values) => values.into_iter().zip(categories).collect(),
        None => categories
            .into_iter()
            .enumerate()
            .map(|(i, s)| (i as f64, s))
            .collect(),
    }
}

/// The time and name of each category of a categorical time column whose categories are
/// numbers (the caller checks that they are finite): the value, named by its `Display`.
pub fn numeric_category_times(categories: &[f64]) -> Vec<(f64, String)> {
    categories.iter().map(|&v| (v, format!("{v}"))).collect()
}

/// A table of cells to group into snapshots.
#[derive(Debug, Clone, Copy)]
pub struct CellTable<'a> {
    /// Each cell's time (finite; `-0.0` counts as `0.0`).
    pub times: &'a [f64],
    /// The name of each distinct time, e.g. from [`string_category_times`]; a time without an
    /// entry is named by its `Display` (`[]` for a numeric column).
    pub names: &'a [(f64, String)],
    /// Number of components of a row.
    pub dim: usize,
    /// Positions, row-major `(cells, dim)`.
    pub positions: &'a [f64],
    /// Velocities, row-major `(cells, dim)`: a snapshot whose rows are all NaN has none.
    pub velocities: Option<&'a [f64]>,
}

/// Why a [`CellTable`] cannot be grouped.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupError {
    /// The velocities of snapshot `snapshot` are NaN on some cells and not on others.
    MixedVelocities {
        /// The snapshot index.
        snapshot: usize,
        /// Its time.
        time: f64,
    },
    /// The table's sizes disagree, or the grouped snapshots are not valid [`Snapshots`].
    Invalid(String),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MixedVelocities { snapshot, time } => write!(
                f,
                "snapshot {snapshot} (time {time}) has velocities on some cells but NaN on others"
            ),
            Self::Invalid(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for GroupError {}

/// Groups cells by time: one snapshot per distinct time, in increasing time order, each cell
/// keeping its table order; snapshots are named by [`CellTable::names`].
///
/// # Errors
/// [`GroupError::Invalid`] for sizes that disagree (`positions` or `velocities` not
/// `cells × dim`), no cells, or data that [`Snapshots::new`] refuses (non-finite values,
/// `dim == 0`); [`GroupError::MixedVelocities`].
pub fn group_cells(table: &CellTable<'_>) -> Result<Snapshots, GroupError> {
    let dim = table.dim;
    let cells = table.times.len();
    let sized = |what: &str, len: usize| {
        if Some(len) == cells.checked_mul(dim) {
            Ok(())
        } else {
            Err(GroupError::Invalid(format!(
                "{what} have {len} values, not {cells} cells × {dim} components"
            )))
        }
    };
    sized("positions", table.positions.len())?;
    if let Some(v) = table.velocities {
        sized("velocities", v.len())?;
    }
    if cells == 0 {
        return Err(GroupError::Invalid("no cells".into()));
    }
    let times: Vec<f64> = table.times.iter().map(|t| t + 0.0).collect();
    let mut unique = times.clone();
    unique.sort_by(f64::total_cmp);
    unique.dedup();
    let mut clouds = vec![Vec::new(); unique.len()];
    let mut vel_clouds = vec![Vec::new(); unique.len()];
    for (i, t) in times.iter().enumerate() {
        let s = unique.partition_point(|u| u < t);
        clouds[s].extend_from_slice(&table.positions[i * dim..(i + 1) * dim]);
        if let Some(v) = table.velocities {
            vel_clouds[s].extend_from_slice(&v[i * dim..(i + 1) * dim]);
        }
    }
    let velocities = match table.velocities {
        Some(_) => {
            let mut out = Vec::with_capacity(unique.len());
            for (s, v) in vel_clouds.into_iter().enumerate() {
                if v.iter().all(|x| x.is_nan()) {
                    out.push(None);
                } else if v.iter().any(|x| x.is_nan()) {
                    return Err(GroupError::MixedVelocities {
                        snapshot: s,
                        time: unique[s],
                    });
                } else {
                    out.push(Some(v));
                }
            }
            Some(out)
        }
        None => None,
    };
    let names = unique
        .iter()
        .map(|t| {
            table
                .names
                .iter()
                .find(|(v, _)| v == t)
                .map_or_else(|| format!("{t}"), |(_, name)| name.clone())
        })
        .collect();
    Snapshots::new(unique, dim, clouds, velocities)
        .and_then(|s| s.with_names(names))
        .map_err(|e| GroupError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells at times 2, 0, 2, 1 (−0 counted as 0) group into three snapshots in time order,
    /// each keeping the cells' order; velocities all NaN in one snapshot mean none there.
    #[test]
    fn cells_group_by_time_in_order_and_keep_their_order() {
        let nan = f64::NAN;
        let table = CellTable {
            times: &[2.0, -0.0, 2.0, 1.0],
            names: &[(2.0, "late".into())],
            dim: 1,
            positions: &[10.0, 11.0, 12.0, 13.0],
            velocities: Some(&[1.0, nan, 3.0, 4.0]),
        };
        let s = group_cells(&table).unwrap();
        assert_eq!(s.times(), [0.0, 1.0, 2.0]);
        assert!(s.times()[0].is_sign_positive());
        assert_eq!(s.positions(0), [11.0]);
        assert_eq!(s.positions(1), [13.0]);
        assert_eq!(s.positions(2), [10.0, 12.0]);
        assert_eq!(s.velocities(0), None);
        assert_eq!(s.velocities(2), Some(&[1.0, 3.0][..]));
        assert_eq!(s.names().unwrap(), ["0", "1", "late"]);
    }

    #[test]
    fn mixed_velocities_and_bad_sizes_are_named() {
        let table = CellTable {
            times: &[0.0, 0.0],
            names: &[],
            dim: 1,
            positions: &[1.0, 2.0],
            velocities: Some(&[1.0, f64::NAN]),
        };
        assert_eq!(
            group_cells(&table).unwrap_err(),
            GroupError::MixedVelocities {
                snapshot: 0,
                time: 0.0
            }
        );
        let short = CellTable {
            positions: &[1.0],
            ..table
        };
        let err = group_cells(&short).unwrap_err().to_string();
        assert!(err.contains("positions have 1 values"), "{err}");
    }

    #[test]
    fn string_categories_are_numbers_when_all_are_and_positions_otherwise() {
        let numeric = string_category_times(vec!["3".into(), " 1.5".into()]);
        assert_eq!(numeric, [(3.0, "3".into()), (1.5, " 1.5".into())]);
        let named = string_category_times(vec!["day3".into(), "2".into()]);
        assert_eq!(named, [(0.0, "day3".into()), (1.0, "2".into())]);
        assert_eq!(numeric_category_times(&[2.0]), [(2.0, "2".into())]);
    }
}
