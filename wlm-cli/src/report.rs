//! Plain-text tables of scores: W1 per snapshot against the baselines, and mean ± SE lines.

use std::fmt::Write;

use wlm::{Evaluation, MeanSe, Role};

/// The role's name in tables and CSV files.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Start => "start",
        Role::Train => "train",
        Role::Test => "test",
        Role::Validation => "validation",
    }
}

fn mean_se(m: Option<MeanSe>) -> String {
    match m {
        Some(m) => format!("{:.4} ± {:.4}", m.mean, m.se),
        None => "-".into(),
    }
}

/// The W1 table of an evaluation: one row per snapshot (the start omitted), the model's W1
/// and each baseline's on the test rows, then mean ± SE over train and test snapshots.
pub(crate) fn evaluation_table(e: &Evaluation) -> String {
    let mut out = String::new();
    let kind = if e.forecast {
        "forecast from snapshot 0"
    } else {
        "forecast from snapshot 0 (train rows); interpolation from the snapshot before (test rows)"
    };
    let _ = writeln!(out, "exact W1 per snapshot ({kind})");
    let mut header = format!(
        "{:>5}  {:>10}  {:>10}  {:>10}",
        "index", "time", "role", "model"
    );
    for b in &e.baselines {
        let _ = write!(header, "  {:>17}", b.name);
    }
    let _ = writeln!(out, "{header}");
    for s in e.scores.iter().filter(|s| s.role != Role::Start) {
        let mut row = format!(
            "{:>5}  {:>10.4}  {:>10}  {:>10.4}",
            s.index,
            s.time,
            role_name(s.role),
            s.w1
        );
        for b in &e.baselines {
            match b.w1.iter().find(|(i, _)| *i == s.index) {
                Some((_, w)) => {
                    let _ = write!(row, "  {w:>17.4}");
                }
                None => {
                    let _ = write!(row, "  {:>17}", "");
                }
            }
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out, "mean ± SE of W1:");
    let _ = writeln!(
        out,
        "  {:<18} train {}  test {}",
        "model",
        mean_se(e.train_w1),
        mean_se(e.test_w1)
    );
    if e.validation_w1.is_some() {
        let _ = writeln!(
            out,
            "  {:<18} validation {}   (left out of the loss, for model selection)",
            "model",
            mean_se(e.validation_w1)
        );
    }
    if e.test_w1_from_last.is_some() {
        let _ = writeln!(
            out,
            "  {:<18}                     test {}   (rolled out from the last training snapshot, as the baselines)",
            "model from last",
            mean_se(e.test_w1_from_last)
        );
    }
    for b in &e.baselines {
        let _ = writeln!(
            out,
            "  {:<18}                     test {}",
            b.name,
            mean_se(b.test_w1)
        );
    }
    if e.train_w2.is_some() || e.test_w2.is_some() {
        let _ = writeln!(
            out,
            "mean ± SE of W2:\n  {:<18} train {}  test {}",
            "model",
            mean_se(e.train_w2),
            mean_se(e.test_w2)
        );
    }
    out
}

/// A table of `(index, time, label, W1 columns…)` rows with the given column names.
pub(crate) fn simple_table(
    title: &str,
    columns: &[&str],
    rows: &[(usize, f64, Vec<f64>)],
) -> String {
    let mut out = format!("{title}\n");
    let mut header = format!("{:>5}  {:>10}", "index", "time");
    for c in columns {
        let _ = write!(header, "  {c:>17}");
    }
    let _ = writeln!(out, "{header}");
    for (index, time, values) in rows {
        let mut row = format!("{index:>5}  {time:>10.4}");
        for v in values {
            if v.is_nan() {
                let _ = write!(row, "  {:>17}", "-");
            } else {
                let _ = write!(row, "  {v:>17.4}");
            }
        }
        let _ = writeln!(out, "{row}");
    }
    if !rows.is_empty() {
        let mut row = format!("{:>5}  {:>10}", "mean", "");
        for c in 0..columns.len() {
            // A missing value (NaN, printed as `-`) is left out of the mean.
            let values: Vec<f64> = rows
                .iter()
                .map(|r| r.2[c])
                .filter(|v| !v.is_nan())
                .collect();
            let m = MeanSe::of(&values).map(|m| m.mean).unwrap_or(f64::NAN);
            let _ = write!(row, "  {m:>17.4}");
        }
        let _ = writeln!(out, "{row}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wlm::{BaselineScore, SnapshotScore};

    #[test]
    fn table_lists_test_rows_with_baselines_and_means() {
        let e = Evaluation {
            forecast: true,
            scores: vec![
                SnapshotScore {
                    index: 0,
                    time: 0.0,
                    role: Role::Start,
                    w1: 0.0,
                    w2: None,
                },
                SnapshotScore {
                    index: 1,
                    time: 0.5,
                    role: Role::Train,
                    w1: 0.1,
                    w2: None,
                },
                SnapshotScore {
                    index: 2,
                    time: 1.0,
                    role: Role::Test,
                    w1: 0.25,
                    w2: None,
                },
            ],
            train_w1: MeanSe::of(&[0.1]),
            test_w1: MeanSe::of(&[0.25]),
            train_w2: None,
            test_w2: None,
            validation_w1: None,
            from_last: vec![(2, 0.125)],
            test_w1_from_last: MeanSe::of(&[0.125]),
            baselines: vec![BaselineScore {
                name: "repeat_last".into(),
                w1: vec![(2, 0.75)],
                test_w1: MeanSe::of(&[0.75]),
            }],
        };
        let text = evaluation_table(&e);
        assert!(text.contains("repeat_last"), "{text}");
        assert!(text.contains("0.7500"), "{text}");
        assert!(text.contains("model from last"), "{text}");
        assert!(text.contains("test 0.1250"), "{text}");
        assert!(text.contains("test 0.2500 ± 0.0000"), "{text}");
        assert!(!text.lines().any(|l| l.contains("start")), "{text}");
    }
}
