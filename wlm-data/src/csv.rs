//! Long-format CSV: one row per point, `time,x0,…,x{d-1}[,v0,…,v{d-1}]`, with a header.

use std::fmt::Write as _;
use std::path::Path;

use crate::fs::{read_file, write_atomic};
use crate::npz::MEMORY;
use crate::{Error, Result, Snapshots};

/// Loads a long-format CSV: a header `time,x0,…,x{d-1}` optionally followed by
/// `v0,…,v{d-1}`, then one row per point.
///
/// Rows with the same time form one snapshot (rows need not be sorted; snapshots come out in
/// increasing time order and points keep their file order). Blank lines are skipped; fields
/// may be padded with spaces; `\r\n` line ends are accepted. Velocity fields may be left empty
/// for every row of a snapshot, meaning that snapshot has no velocities.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] naming the line for an empty
/// file, text that is not UTF-8, a bad header, no data rows, or a row whose field count differs
/// from the header's (ragged rows); [`Error::Key`] naming the column and line for a value that
/// is not a number or not finite, and for velocities given on some rows of a snapshot only.
pub fn load_csv(path: impl AsRef<Path>) -> Result<Snapshots> {
    let path = path.as_ref();
    csv(&read_file(path)?, path)
}

// Every format has this `load_*` (a path) / `parse_*` (bytes) pair over one private parser, on
// purpose (`duplicates` pairs them across the loaders): two documented entry points each.
/// [`load_csv`] on the bytes of a file; errors name the file `<memory>`.
///
/// # Errors
/// As [`load_csv`], without the I/O errors.
pub fn parse_csv(bytes: &[u8]) -> Result<Snapshots> {
    csv(bytes, Path::new(MEMORY))
}

fn csv(bytes: &[u8], path: &Path) -> Result<Snapshots> {
    let format = |problem: String| Error::Format {
        path: path.to_owned(),
        problem,
    };
    let key = |column: &str, problem: String| Error::Key {
        path: path.to_owned(),
        key: column.to_owned(),
        problem,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format(format!(
            "not UTF-8 text: invalid byte at offset {}",
            e.valid_up_to()
        ))
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(format("empty file: expected a header `time,x0,…`".into()));
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let dim = parse_header(&columns)
        .map_err(|problem| format(format!("line {header_line} (header): {problem}")))?;
    let has_velocity = columns.len() == 1 + 2 * dim;

    // Per row: time, positions, velocities (None if the fields are empty).
    let mut rows: Vec<(f64, usize, Option<usize>, usize)> = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    for (line, text) in lines {
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(format(format!(
                "line {line}: {} fields but the header has {} columns",
                fields.len(),
                columns.len()
            )));
        }
        let number = |c: usize| -> Result<f64> {
            let v: f64 = fields[c].parse().map_err(|_| {
                key(
                    columns[c],
                    format!("line {line}: cannot parse {:?} as a number", fields[c]),
                )
            })?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(key(
                    columns[c],
                    format!("line {line}: value is not finite ({v})"),
                ))
            }
        };
        let time = number(0)? + 0.0;
        let start = values.len();
        for c in 1..=dim {
            values.push(number(c)?);
        }
        let velocity = if has_velocity {
            let empty = fields[dim + 1..].iter().all(|f| f.is_empty());
            if empty {
                None
            } else {
                let v_start = values.len();
                for c in dim + 1..=2 * dim {
                    values.push(number(c)?);
                }
                Some(v_start)
            }
        } else {
            None
        };
        rows.push((time, start, velocity, line));
    }
    if rows.is_empty() {
        return Err(format("no data rows after the header".into()));
    }

    let mut times: Vec<f64> = rows.iter().map(|r| r.0).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut positions = vec![Vec::new(); times.len()];
    let mut velocities: Vec<Vec<f64>> = vec![Vec::new(); times.len()];
    // Per snapshot: the first line with and the first line without velocities.
    let mut seen: Vec<(Option<usize>, Option<usize>)> = vec![(None, None); times.len()];
    for &(t, start, velocity, line) in &rows {
        let s = times.partition_point(|u| *u < t);
        positions[s].extend_from_slice(&values[start..start + dim]);
        match velocity {
            Some(v) => {
                velocities[s].extend_from_slice(&values[v..v + dim]);
                seen[s].0.get_or_insert(line);
            }
            None => {
                seen[s].1.get_or_insert(line);
            }
        }
    }
    let velocities = if has_velocity {
        let mut out = Vec::with_capacity(times.len());
        for (s, v) in velocities.into_iter().enumerate() {
            match seen[s] {
                (Some(with), Some(without)) => {
                    return Err(key(
                        "v0",
                        format!(
                            "snapshot at time {}: line {with} has velocities but line {without} \
                             has none (give all or none per snapshot)",
                            times[s]
                        ),
                    ))
                }
                (Some(_), None) => out.push(Some(v)),
                _ => out.push(None),
            }
        }
        Some(out)
    } else {
        None
    };
    Snapshots::new(times, dim, positions, velocities).map_err(|e| format(e.to_string()))
}

/// Checks the header and returns the dimension.
fn parse_header(columns: &[&str]) -> std::result::Result<usize, String> {
    if columns.first() != Some(&"time") {
        return Err(format!(
            "the first column must be `time`, found `{}`",
            columns[0]
        ));
    }
    let dim = columns[1..]
        .iter()
        .take_while(|c| c.starts_with('x'))
        .count();
    if dim == 0 {
        return Err("no position columns: expected `x0` after `time`".into());
    }
    for (i, c) in columns[1..=dim].iter().enumerate() {
        if *c != format!("x{i}") {
            return Err(format!("column {} must be `x{i}`, found `{c}`", i + 2));
        }
    }
    let rest = &columns[dim + 1..];
    if rest.is_empty() {
        return Ok(dim);
    }
    if rest.len() != dim {
        return Err(format!(
            "{} columns after the {dim} position columns: expected none or {dim} velocity columns",
            rest.len()
        ));
    }
    for (i, c) in rest.iter().enumerate() {
        if *c != format!("v{i}") {
            return Err(format!(
                "column {} must be `v{i}`, found `{c}`",
                dim + i + 2
            ));
        }
    }
    Ok(dim)
}

/// The CSV text [`write_csv`] writes.
pub(crate) fn to_csv(snapshots: &Snapshots) -> String {
    let dim = snapshots.dim();
    let any_velocity = (0..snapshots.len()).any(|k| snapshots.velocities(k).is_some());
    let mut out = String::from("time");
    for i in 0..dim {
        let _ = write!(out, ",x{i}");
    }
    if any_velocity {
        for i in 0..dim {
            let _ = write!(out, ",v{i}");
        }
    }
    out.push('\n');
    for k in 0..snapshots.len() {
        let t = snapshots.times()[k];
        let positions = snapshots.positions(k);
        let velocities = snapshots.velocities(k);
        for p in 0..snapshots.n_particles(k) {
            // `{:?}` prints the shortest text that parses back to the same f64.
            let _ = write!(out, "{t:?}");
            for x in &positions[p * dim..(p + 1) * dim] {
                let _ = write!(out, ",{x:?}");
            }
            match velocities {
                Some(v) => {
                    for x in &v[p * dim..(p + 1) * dim] {
                        let _ = write!(out, ",{x:?}");
                    }
                }
                None if any_velocity => out.push_str(&",".repeat(dim)),
                None => {}
            }
            out.push('\n');
        }
    }
    out
}

/// Writes snapshots as long-format CSV (see [`load_csv`]); velocity columns are written if any
/// snapshot has velocities, left empty for the snapshots without. Values are written with the
/// shortest text that reads back to the same `f64`, so a round trip is exact. Names are not
/// stored. The write is atomic.
///
/// # Errors
/// [`Error::Io`] if writing fails.
pub fn write_csv(path: impl AsRef<Path>, snapshots: &Snapshots) -> Result<()> {
    write_atomic(path.as_ref(), to_csv(snapshots).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsorted_rows_are_grouped_by_time() {
        let s = parse_csv(b"time,x0\n1,10\n0,0\n1,11\n").unwrap();
        assert_eq!(s.times(), &[0.0, 1.0]);
        assert_eq!(s.positions(1), &[10.0, 11.0]);
    }

    #[test]
    fn empty_velocity_fields_mean_no_velocities() {
        let s = parse_csv(b"time,x0,v0\r\n0,1,\r\n\r\n1,2,3\r\n").unwrap();
        assert_eq!(s.velocities(0), None);
        assert_eq!(s.velocities(1), Some(&[3.0][..]));
    }

    #[test]
    fn written_text_parses_back_exactly() {
        let s = Snapshots::new(
            vec![0.0, 0.1],
            2,
            vec![vec![1e-300, -0.0], vec![1.0 / 3.0, 2.5e17]],
            Some(vec![None, Some(vec![f64::MAX, f64::MIN_POSITIVE])]),
        )
        .unwrap();
        let back = parse_csv(to_csv(&s).as_bytes()).unwrap();
        assert_eq!(back.positions(0)[0], 1e-300);
        assert_eq!(back, s);
    }
}
