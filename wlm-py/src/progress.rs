//! Training progress for Python: a bar redrawn on `sys.stderr`, a user callback, or nothing;
//! called between training steps with the GIL held.

use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::value_error;

/// What one training step reported, copied out of the observer.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepInfo {
    pub(crate) step: usize,
    pub(crate) loss: f64,
    pub(crate) friction: f64,
    pub(crate) horizon: usize,
    /// Mean exact W1 of the evaluation made at this step (train, test), if one was made.
    pub(crate) evaluation: Option<(Option<f64>, Option<f64>)>,
}

/// Where progress goes.
pub(crate) enum Progress<'py> {
    Off,
    Bar {
        start: Instant,
        first: usize,
        last_draw: Option<Instant>,
        drawn: bool,
    },
    Callback(Bound<'py, PyAny>),
}

impl<'py> Progress<'py> {
    /// `True`/`None`: the bar; `False`: nothing; a callable: called with a dict per step.
    ///
    /// # Errors
    /// `ValueError` naming `progress` for anything else.
    pub(crate) fn from_arg(arg: Option<Bound<'py, PyAny>>, first: usize) -> PyResult<Self> {
        let bar = || Progress::Bar {
            start: Instant::now(),
            first,
            last_draw: None,
            drawn: false,
        };
        match arg {
            None => Ok(bar()),
            Some(a) if a.is_none() => Ok(bar()),
            Some(a) if a.is_callable() => Ok(Progress::Callback(a)),
            Some(a) => match a.extract::<bool>() {
                Ok(true) => Ok(bar()),
                Ok(false) => Ok(Progress::Off),
                Err(_) => Err(value_error(
                    "progress: expected True, False or a callable taking a dict",
                )),
            },
        }
    }

    /// Reports a finished step of `total`; a callback's exception is returned.
    pub(crate) fn update(
        &mut self,
        py: Python<'py>,
        info: &StepInfo,
        total: usize,
    ) -> PyResult<()> {
        match self {
            Progress::Off => Ok(()),
            Progress::Callback(f) => {
                let report = PyDict::new(py);
                report.set_item("step", info.step)?;
                report.set_item("total", total)?;
                report.set_item("loss", info.loss)?;
                report.set_item("friction", info.friction)?;
                report.set_item("horizon", info.horizon)?;
                if let Some((train, test)) = info.evaluation {
                    report.set_item("train_w1", train)?;
                    report.set_item("test_w1", test)?;
                }
                f.call1((report,))?;
                Ok(())
            }
            Progress::Bar {
                start,
                first,
                last_draw,
                drawn,
            } => {
                let now = Instant::now();
                let due = last_draw.is_none_or(|t| now.duration_since(t).as_secs_f64() >= 0.1);
                if !(due || info.step >= total || info.evaluation.is_some()) {
                    return Ok(());
                }
                *last_draw = Some(now);
                *drawn = true;
                let elapsed = now.duration_since(*start).as_secs_f64();
                let rate = (info.step - *first) as f64 / elapsed.max(1e-9);
                let width = 24;
                let filled = (info.step * width).checked_div(total).unwrap_or(width);
                let mut line = format!(
                    "\rtrain {:>w$}/{total} [{}{}] loss {:.4e} {rate:.2} steps/s",
                    info.step,
                    "=".repeat(filled.min(width)),
                    " ".repeat(width - filled.min(width)),
                    info.loss,
                    w = total.to_string().len()
                );
                if let Some((train, test)) = info.evaluation {
                    let fmt = |m: Option<f64>| m.map_or("-".into(), |m| format!("{m:.4}"));
                    line.push_str(&format!(" | W1 train {} test {}", fmt(train), fmt(test)));
                }
                write_stderr(py, &format!("{line}\x1b[K"))
            }
        }
    }

    /// Ends the bar's line.
    pub(crate) fn finish(&mut self, py: Python<'py>) -> PyResult<()> {
        if let Progress::Bar { drawn: true, .. } = self {
            write_stderr(py, "\n")?;
        }
        Ok(())
    }
}

fn write_stderr(py: Python<'_>, text: &str) -> PyResult<()> {
    let stderr = py.import("sys")?.getattr("stderr")?;
    if stderr.is_none() {
        return Ok(());
    }
    stderr.call_method1("write", (text,))?;
    stderr.call_method0("flush")?;
    Ok(())
}
