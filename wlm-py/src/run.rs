//! `wlm.train` and `wlm.Run`: a run directory of the learner (`wlm::Run`), trained one step at
//! a time with the GIL released, then forecasts, interpolations, evaluation, energy and force.

use std::path::PathBuf;

use candle_core::{DType, Tensor};
use pyo3::prelude::*;
use wlm::{Evaluation, Model, Run, StepReport, TrainObserver};
use wlm_data::{H5adConfig, H5adMatrix, Snapshots};

use crate::arrays::{read_array, read_cloud, tensor_to_numpy};
use crate::config::{run_config, to_py, value_to_py};
use crate::errors::{from_data, from_tensor, from_wlm, io_error, value_error};
use crate::progress::{Progress, StepInfo};
use crate::snapshots::PySnapshots;

/// The snapshots a run was trained on, written by `wlm.train` so that `Run.load` needs no data.
const SNAPSHOTS_FILE: &str = "snapshots.h5ad";

fn snapshots_h5ad() -> H5adConfig {
    H5adConfig {
        time_key: "time".into(),
        embedding: H5adMatrix::Obsm("X".into()),
        n_components: None,
        velocity: Some(H5adMatrix::Obsm("velocity".into())),
    }
}

/// The snapshots `wlm.train` stored in a run directory, as they were given (without the
/// names the `.h5ad` loader gives them).
fn read_snapshots(path: &std::path::Path) -> wlm_data::Result<Snapshots> {
    let s = wlm_data::load_h5ad(path, &snapshots_h5ad())?;
    let positions = (0..s.len()).map(|k| s.positions(k).to_vec()).collect();
    let velocities = (0..s.len())
        .map(|k| s.velocities(k).map(<[f64]>::to_vec))
        .collect();
    Snapshots::new(s.times().to_vec(), s.dim(), positions, Some(velocities))
}

/// Keeps what one step reported for the progress display.
#[derive(Default)]
struct Observer {
    info: StepInfo,
}

impl TrainObserver for Observer {
    fn on_step(&mut self, report: &StepReport) {
        self.info = StepInfo {
            step: report.step,
            loss: report.loss,
            friction: report.friction,
            horizon: report.horizon,
            evaluation: None,
        };
    }

    fn on_evaluation(&mut self, _step: usize, e: &Evaluation) {
        self.info.evaluation = Some((e.train_w1.map(|m| m.mean), e.test_w1.map(|m| m.mean)));
    }
}

/// Trains `run` to its configured number of steps, one step per GIL release; between steps it
/// reports progress and checks for signals. On Ctrl-C (or an exception from a progress
/// callback) it writes a checkpoint at the last finished step and re-raises. Then writes the
/// final outputs ([`Run::finish`]).
fn train_to_end<'py>(py: Python<'py>, run: &mut Run, mut progress: Progress<'py>) -> PyResult<()> {
    let total = run.config().train.steps;
    while run.trainer().step_count() < total {
        let mut observer = Observer::default();
        if let Err(e) = py.detach(|| run.train_for(1, &mut observer)) {
            let _ = progress.finish(py);
            return Err(from_wlm(e));
        }
        let stop = progress
            .update(py, &observer.info, total)
            .and_then(|()| py.check_signals());
        if let Err(interrupt) = stop {
            let _ = progress.finish(py);
            let path = run.dir().join(wlm::CHECKPOINT_FILE);
            py.detach(|| run.trainer().save_checkpoint(&path))
                .map_err(from_wlm)?;
            return Err(interrupt);
        }
    }
    progress.finish(py)?;
    py.detach(|| run.finish()).map_err(from_wlm)?;
    Ok(())
}

/// A fresh directory `wlm-run-*` in the system's temporary folder (kept after the run).
fn temporary_run_dir() -> PyResult<PathBuf> {
    let base = std::env::temp_dir();
    let dir = tempfile::Builder::new()
        .prefix("wlm-run-")
        .tempdir_in(&base)
        .map_err(|e| {
            io_error(
                format!(
                    "run_dir: cannot create a directory in {}: {e}",
                    base.display()
                ),
                &e,
            )
        })?;
    Ok(dir.keep())
}

/// Trains a model on `snapshots` as `wlm train` does and returns the finished `Run`.
///
/// `config`: None (defaults), a dict in the RON schema of the run configuration (`model`,
/// `train`, `eval`, `split`; structs are dicts, enum variants `{"Variant": {...}}` or their
/// name), or a path to such a RON file; unknown keys raise ValueError naming their dotted
/// path. `run_dir`: where the run's files go (default: a new `wlm-run-*` folder in the
/// temporary directory). `progress`: True (a bar on stderr), False, or a callable taking a
/// dict per step. Steps run with the GIL released; Ctrl-C stops after the current step,
/// writes a checkpoint and raises KeyboardInterrupt (continue with `Run.load(dir).train()`).
#[pyfunction]
#[pyo3(
    signature = (snapshots, config=None, run_dir=None, progress=None),
    text_signature = "(snapshots, config=None, run_dir=None, progress=True)"
)]
pub(crate) fn train(
    py: Python<'_>,
    snapshots: &PySnapshots,
    config: Option<&Bound<'_, PyAny>>,
    run_dir: Option<PathBuf>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<PyRun> {
    let progress = Progress::from_arg(progress, 0)?;
    let config = run_config(config)?;
    let data = snapshots.inner.clone();
    let model_dim = config.model.energy.dim();
    if model_dim != data.dim() {
        return Err(value_error(format!(
            "config: invalid config field `model.energy.dim`: the model is {model_dim}-dimensional \
             but the snapshots are {}-dimensional",
            data.dim()
        )));
    }
    config.split.resolve(data.len()).map_err(from_wlm)?;
    let dir = match run_dir {
        Some(dir) => dir,
        None => temporary_run_dir()?,
    };
    if dir.join(wlm::CHECKPOINT_FILE).exists() {
        return Err(value_error(format!(
            "run_dir: {} already holds a run: continue it with wlm.Run.load(run_dir).train(), or \
             choose another run_dir",
            dir.display()
        )));
    }
    let mut run = py
        .detach(|| {
            let run = Run::create(&dir, config, data, &candle_core::Device::Cpu)?;
            wlm_data::write_h5ad(dir.join(SNAPSHOTS_FILE), run.snapshots(), &snapshots_h5ad())?;
            Ok::<_, wlm::Error>(run)
        })
        .map_err(from_wlm)?;
    train_to_end(py, &mut run, progress)?;
    Ok(PyRun { run })
}

/// A training run in its directory: configuration, checkpoint, metrics and outputs. Made by
/// `wlm.train` or `Run.load(run_dir)`; predicts with `forecast`, `interpolate`, scores with
/// `evaluate`, and exposes the learned `energy` and `force`.
#[pyclass(name = "Run", module = "wlm")]
pub(crate) struct PyRun {
    run: Run,
}

impl PyRun {
    /// Runs `f` on the model the run evaluates: the EMA weights when `eval.use_ema`.
    fn with_model<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Model) -> wlm::Result<T> + Send,
    ) -> PyResult<T> {
        let run = &self.run;
        py.detach(|| {
            let trainer = run.trainer();
            if run.config().eval.use_ema {
                trainer.ema().with_shadows(|| f(trainer.model()))
            } else {
                f(trainer.model())
            }
        })
        .map_err(from_wlm)
    }

    fn model_input(&self, x: &Bound<'_, PyAny>) -> PyResult<Tensor> {
        let cloud = read_cloud(x, "x")?;
        let model = self.run.trainer().model();
        if cloud.dim != model.dim() {
            return Err(value_error(format!(
                "x: has {} columns but the model is {}-dimensional",
                cloud.dim,
                model.dim()
            )));
        }
        cloud.tensor(model.dtype())
    }
}

fn check_time(t: f64) -> PyResult<f64> {
    if t.is_finite() {
        Ok(t)
    } else {
        Err(value_error(format!("t: must be finite, got {t}")))
    }
}

#[pymethods]
impl PyRun {
    /// Reopens the run in `run_dir` at its checkpoint.
    #[staticmethod]
    #[pyo3(signature = (run_dir, snapshots=None))]
    fn load(py: Python<'_>, run_dir: PathBuf, snapshots: Option<&PySnapshots>) -> PyResult<Self> {
        let data = match snapshots {
            Some(s) => s.inner.clone(),
            None => {
                let path = run_dir.join(SNAPSHOTS_FILE);
                if !path.exists() {
                    return Err(value_error(format!(
                        "snapshots: {} is absent (the run was not trained by wlm.train): pass the \
                         run's snapshots",
                        path.display()
                    )));
                }
                py.detach(|| read_snapshots(&path)).map_err(from_data)?
            }
        };
        if !run_dir.join(wlm::CONFIG_FILE).exists() {
            let e = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(io_error(
                format!(
                    "run_dir: {} is not a run directory (no {})",
                    run_dir.display(),
                    wlm::CONFIG_FILE
                ),
                &e,
            ));
        }
        let run = py
            .detach(|| Run::resume(&run_dir, data, &candle_core::Device::Cpu))
            .map_err(from_wlm)?;
        Ok(Self { run })
    }

    /// Continues training to `config["train"]["steps"]`, then writes the final outputs.
    #[pyo3(signature = (progress=None), text_signature = "($self, progress=True)")]
    fn train(&mut self, py: Python<'_>, progress: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let progress = Progress::from_arg(progress, self.run.trainer().step_count())?;
        train_to_end(py, &mut self.run, progress)
    }

    /// The run directory.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.run.dir().to_path_buf()
    }

    /// The resolved configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.run.config())
    }

    /// The run's snapshots (train and test).
    #[getter]
    fn snapshots(&self) -> PySnapshots {
        PySnapshots::new_checked(self.run.snapshots().clone())
    }

    /// Training steps done.
    #[getter]
    fn step(&self) -> usize {
        self.run.trainer().step_count()
    }

    /// The split's snapshot indices, `{"train": [...], "test": [...]}`.
    #[getter]
    fn split<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(self.run.split())
            .map_err(|e| value_error(format!("split: {e}")))?;
        value_to_py(py, &value)
    }

    /// Rolls snapshot `start` forward through `times` (default: the observed times after it).
    #[pyo3(signature = (times=None, start=0))]
    fn forecast(
        &mut self,
        py: Python<'_>,
        times: Option<&Bound<'_, PyAny>>,
        start: usize,
    ) -> PyResult<PySnapshots> {
        let s = self.run.snapshots();
        if start >= s.len() {
            return Err(value_error(format!(
                "start: {start} is not a snapshot index (the run has {} snapshots)",
                s.len()
            )));
        }
        let t0 = s.times()[start];
        let times: Vec<f64> = match times {
            None => s.times()[start + 1..].to_vec(),
            Some(t) => {
                let array = read_array(t, "times")?;
                if array.shape.len() > 1 {
                    return Err(value_error(format!(
                        "times: expected a 1-d array, got shape {:?}",
                        array.shape
                    )));
                }
                array.values
            }
        };
        if times.is_empty() {
            return Err(value_error(
                "times: no times to forecast (start is the last snapshot)",
            ));
        }
        let mut previous = t0;
        for &t in &times {
            if !(t.is_finite() && t > previous) {
                return Err(value_error(format!(
                    "times: must be finite, increasing and after the start time {t0}; got {t} after {previous}"
                )));
            }
            previous = t;
        }
        let split = self.run.split().train.clone();
        let eval = self.run.config().eval.clone();
        let states = self.with_model(py, |model| {
            let v0 = wlm::initial_velocities(model, s, start, &split, &eval)?;
            let x0 = s.positions_tensor(start, model.dtype(), model.device())?;
            model.simulate(&x0, &v0, t0, &times, eval.steps_per_interval)
        })?;
        let positions: Vec<Tensor> = states.iter().map(|st| st.positions.clone()).collect();
        let velocities: Vec<Option<Tensor>> = states
            .iter()
            .map(|st| Some(st.velocities.clone()))
            .collect();
        Snapshots::from_tensors(times, &positions, Some(&velocities))
            .map(PySnapshots::new_checked)
            .map_err(|e| value_error(format!("forecast: {e}")))
    }

    /// Each snapshot of `indices` (default: the held-out ones) from the observed one before it.
    #[pyo3(signature = (indices=None))]
    fn interpolate(
        &mut self,
        py: Python<'_>,
        indices: Option<Vec<usize>>,
    ) -> PyResult<PySnapshots> {
        let s = self.run.snapshots();
        let indices = indices.unwrap_or_else(|| self.run.split().test.clone());
        if indices.is_empty() {
            return Err(value_error(
                "indices: none given and the run's split holds none out",
            ));
        }
        for pair in indices.windows(2) {
            if pair[1] <= pair[0] {
                return Err(value_error(format!(
                    "indices: must increase, got {indices:?}"
                )));
            }
        }
        if let Some(&h) = indices.iter().find(|&&h| h == 0 || h >= s.len()) {
            return Err(value_error(format!(
                "indices: {h} is not a snapshot with one before it (1..{})",
                s.len()
            )));
        }
        let split = self.run.split().train.clone();
        let eval = self.run.config().eval.clone();
        let predictions = self.with_model(py, |model| {
            indices
                .iter()
                .map(|&h| {
                    let v = wlm::initial_velocities(model, s, h - 1, &split, &eval)?;
                    wlm::interpolate_with_velocities(model, s, h, &v, eval.steps_per_interval)
                })
                .collect::<wlm::Result<Vec<Tensor>>>()
        })?;
        let times = indices.iter().map(|&h| s.times()[h]).collect();
        Snapshots::from_tensors(times, &predictions, None)
            .map(PySnapshots::new_checked)
            .map_err(|e| value_error(format!("interpolate: {e}")))
    }

    /// Exact W1 (and W2) of the model and the baselines, as `wlm eval` reports them.
    fn evaluate<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let run = &self.run;
        let evaluation = py.detach(|| run.evaluate()).map_err(from_wlm)?;
        let value = serde_json::to_value(&evaluation)
            .map_err(|e| value_error(format!("evaluation: {e}")))?;
        value_to_py(py, &value)
    }

    /// The total energy `E(x, t)`.
    #[pyo3(signature = (x, t=0.0))]
    fn energy(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>, t: f64) -> PyResult<f64> {
        let t = check_time(t)?;
        let x = self.model_input(x)?;
        let e = self.with_model(py, |model| Ok(model.energy().energy_detached(&x, t)?))?;
        e.to_dtype(DType::F64)
            .and_then(|e| e.to_scalar::<f64>())
            .map_err(from_tensor)
    }

    /// The force `−∇_x E(x, t)`, `(N, d)`.
    #[pyo3(signature = (x, t=0.0))]
    fn force<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = check_time(t)?;
        let x = self.model_input(x)?;
        let f = self.with_model(py, |model| Ok(model.energy().force_detached(&x, t)?))?;
        tensor_to_numpy(py, &f)
    }

    fn __repr__(&self) -> String {
        format!(
            "Run({:?}, step {}/{})",
            self.run.dir().display().to_string(),
            self.run.trainer().step_count(),
            self.run.config().train.steps
        )
    }
}
