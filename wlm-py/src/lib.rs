//! The Python module `wlm`: snapshots from numpy or AnnData, training, forecasts and exact or
//! Sinkhorn transport distances, by the workspace's library crates (no second implementation).
//!
//! Built into one abi3 wheel (CPython ≥ 3.9) by maturin: `maturin build` in `wlm-py/`, see its
//! README. The Python API and its docstrings are in `wlm.pyi`; the tests are the pytest suite
//! in `wlm-py/tests` (`.ci/python`).
//!
//! # Entry points
//! | Python | Rust | cost |
//! |---|---|---|
//! | `Snapshots(positions, times, velocities)`, `Snapshots.from_anndata` | [`wlm_data::Snapshots::new`], [`wlm_data::group_cells`] | one copy of the arrays |
//! | `Snapshots.load`, `Snapshots.read_h5ad` | [`wlm_data::load_any`], [`wlm_data::load_h5ad`] | one file read |
//! | `train(snapshots, config, run_dir)` | [`wlm::Run::create`], [`wlm::Run::train_for`] one step at a time, [`wlm::Run::finish`] | as `wlm train` |
//! | `Run.load`, `run.forecast`, `run.interpolate`, `run.evaluate`, `run.energy`, `run.force` | [`wlm::Run::resume`], [`wlm::Model::simulate`], [`wlm::Run::evaluate`] | rollouts, exact W1 |
//! | `w1`, `w2`, `sinkhorn` | [`wlm_ot::wasserstein_1`], [`wlm_ot::wasserstein_2`], [`wlm_ot::sinkhorn`] | exact OT `O(N·M)` memory; Sinkhorn online |
//!
//! # What can go wrong
//! - Bad input is a `ValueError` naming the argument (dtype other than float32/float64, wrong
//!   rank, ragged dimensions, NaN, an unknown config key with its dotted path); unreadable
//!   files are an `OSError`; a diverging training run is a `RuntimeError`. Nothing panics.
//! - Heavy work (training steps, rollouts, transport) runs with the GIL released; Ctrl-C is
//!   seen between training steps, which then stops with a checkpoint at the last finished
//!   step.

mod arrays;
mod config;
mod errors;
mod ot;
mod progress;
mod run;
mod snapshots;

use pyo3::prelude::*;

/// The module `wlm`.
#[pymodule(name = "wlm")]
fn wlm_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<snapshots::PySnapshots>()?;
    m.add_class::<run::PyRun>()?;
    m.add_function(wrap_pyfunction!(run::train, m)?)?;
    m.add_function(wrap_pyfunction!(ot::w1, m)?)?;
    m.add_function(wrap_pyfunction!(ot::w2, m)?)?;
    m.add_function(wrap_pyfunction!(ot::sinkhorn, m)?)?;
    Ok(())
}
