//! A training run on disk: resolved config, metrics, checkpoints and predictions in one
//! directory, with exact resume.
//!
//! Layout of a run directory:
//!
//! | file | content |
//! |---|---|
//! | `config.ron` | the resolved [`RunConfig`] |
//! | `metrics.csv` | `step,horizon,batch,loss,friction,wall_seconds,train_w1,train_w1_se,test_w1,test_w1_se,selection_score` (evaluation columns empty between evaluations; `selection_score` empty without `train.model_selection`) |
//! | `checkpoint.safetensors` | the latest checkpoint (see [`Trainer::save_checkpoint`]), replaced atomically |
//! | `weights.safetensors`, `ema_weights.safetensors` | final weights under the reference names ([`Run::finish`]) |
//! | `forecast.npz` | the EMA model's forecast from snapshot 0 at every observed time ([`Run::finish`]) |
//! | `evaluation.ron` | the final [`Evaluation`] ([`Run::finish`]) |
//! | `best.safetensors` | with `train.model_selection`, the evaluated weights (EMA unless `eval.use_ema` is false) that scored lowest, under the reference names; replaced atomically when an evaluation scores lower |
//! | `best.ron` | the [`BestScore`] (step and score) of `best.safetensors`, written after it |

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};
use wlm_data::Snapshots;

use crate::config::{EvalConfig, Split, SplitConfig, TrainConfig};
use crate::evaluate::{Evaluation, Predictions};
use crate::model::{Model, ModelConfig};
use crate::trainer::{StepReport, Trainer};
use crate::{Error, Result};

/// File name of the resolved config in a run directory.
pub const CONFIG_FILE: &str = "config.ron";
/// File name of the metrics table.
pub const METRICS_FILE: &str = "metrics.csv";
/// File name of the latest checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// File name of the final weights.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// File name of the final EMA weights.
pub const EMA_WEIGHTS_FILE: &str = "ema_weights.safetensors";
/// File name of the final forecast.
pub const FORECAST_FILE: &str = "forecast.npz";
/// File name of the final evaluation.
pub const EVALUATION_FILE: &str = "evaluation.ron";

/// File name of the best weights of model selection.
pub const BEST_WEIGHTS_FILE: &str = "best.safetensors";
/// File name of the step and score of the best weights.
pub const BEST_FILE: &str = "best.ron";

const METRICS_HEADER: &str = "step,horizon,batch,loss,friction,wall_seconds,train_w1,train_w1_se,test_w1,test_w1_se,selection_score";

/// The step and score of the best weights of model selection (`best.ron`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestScore {
    /// The training step whose evaluation scored lowest.
    pub step: usize,
    /// Its score ([`crate::ModelSelection::score`]; lower is better).
    pub score: f64,
}

/// Records `score` at `step` into `best` if it is finite and strictly lower than the best so
/// far (the earliest step wins a tie); returns whether it did.
pub(crate) fn record_best(best: &mut Option<BestScore>, step: usize, score: f64) -> bool {
    let better = score.is_finite() && best.is_none_or(|b| score < b.score);
    if better {
        *best = Some(BestScore { step, score });
    }
    better
}

/// Everything a run needs besides the data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// The model.
    pub model: ModelConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// Evaluation.
    pub eval: EvalConfig,
    /// Which snapshots train and which are held out.
    pub split: SplitConfig,
}

/// The split and a fresh trainer on its training snapshots, after checking the evaluation
/// settings: what [`Run::create`] and [`Run::resume`] both start from.
fn prepare(config: &RunConfig, snapshots: &Snapshots, device: &Device) -> Result<(Split, Trainer)> {
    let split = config.resolve_split(snapshots.len())?;
    config.eval.validate()?;
    let model = Model::new(config.model.clone(), device)?;
    let train = snapshots.select(&split.train)?;
    let trainer = Trainer::new(model, config.train.clone(), &train)?;
    Ok((split, trainer))
}

impl RunConfig {
    /// The split for `n_snapshots` snapshots, with the validation snapshots of
    /// `train.model_selection` taken out of the training ones.
    ///
    /// # Errors
    /// As [`SplitConfig::resolve`] and [`crate::ModelSelection::apply`].
    pub fn resolve_split(&self, n_snapshots: usize) -> Result<Split> {
        self.train
            .model_selection
            .apply(self.split.resolve(n_snapshots)?)
    }
}

/// Receives progress from [`Run::train`]; libraries never print, the CLI implements this.
pub trait TrainObserver {
    /// After every training step.
    fn on_step(&mut self, report: &StepReport) {
        let _ = report;
    }
    /// After every periodic (and the final) evaluation.
    fn on_evaluation(&mut self, step: usize, evaluation: &Evaluation) {
        let _ = (step, evaluation);
    }
    /// After a checkpoint was written.
    fn on_checkpoint(&mut self, step: usize, path: &Path) {
        let _ = (step, path);
    }
}

/// An observer that ignores everything.
impl TrainObserver for () {}

/// A training run bound to a directory.
#[derive(Debug)]
pub struct Run {
    dir: PathBuf,
    config: RunConfig,
    snapshots: Snapshots,
    split: Split,
    trainer: Trainer,
    /// The latest evaluation of [`Run::train_for`], with the step it scored and its rollouts:
    /// [`Run::finish`] reuses it when training has not moved since.
    scored: Option<Scored>,
    /// The best score of model selection so far (read back from `best.ron` on resume).
    best: Option<BestScore>,
}

/// An evaluation made at a step, with the rollouts it scored.
#[derive(Debug)]
struct Scored {
    step: usize,
    evaluation: Evaluation,
    predictions: Predictions,
}

impl Run {
    /// Starts a new run in `dir` (created if needed) on all `snapshots`; writes `config.ron`
    /// (with the estimated blur and `eval.model_start_velocities` filled in) and the metrics
    /// header; removes `best.ron` and `best.safetensors` left by an earlier run there.
    ///
    /// # Errors
    /// [`Error::File`] if `dir` already holds a checkpoint (resume it instead); config
    /// errors naming the field; I/O failures.
    pub fn create(
        dir: impl AsRef<Path>,
        mut config: RunConfig,
        snapshots: Snapshots,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let checkpoint = dir.join(CHECKPOINT_FILE);
        if checkpoint.exists() {
            return Err(Error::file(
                checkpoint,
                "a run already exists here: resume it instead",
            ));
        }
        let (split, trainer) = prepare(&config, &snapshots, device)?;
        config.train.loss.blur = Some(trainer.blur());
        config.eval = config.eval.with_training_start(&config.train);
        write_atomic(&dir.join(CONFIG_FILE), &to_ron(&config)?)?;
        write_atomic(&dir.join(METRICS_FILE), &format!("{METRICS_HEADER}\n"))?;
        // A fresh run forgets any best weights of an earlier run in this directory.
        for name in [BEST_FILE, BEST_WEIGHTS_FILE] {
            let path = dir.join(name);
            if path.exists() {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(Self::assemble(dir, config, snapshots, split, trainer, None))
    }

    /// A run from its parts, nothing scored yet in this process.
    fn assemble(
        dir: PathBuf,
        config: RunConfig,
        snapshots: Snapshots,
        split: Split,
        trainer: Trainer,
        best: Option<BestScore>,
    ) -> Self {
        Self {
            dir,
            config,
            snapshots,
            split,
            trainer,
            scored: None,
            best,
        }
    }

    /// Reopens the run in `dir` at its checkpoint; continuing it gives exactly the losses an
    /// uninterrupted run would. Metrics rows after the checkpoint's step are dropped. The best
    /// score of model selection is read back from `best.ron`, so a resumed run replaces
    /// `best.safetensors` only with a strictly lower score (a best found after the
    /// checkpoint stays: the replayed steps score exactly as before).
    ///
    /// # Errors
    /// [`Error::File`] for a missing or unreadable `config.ron` or checkpoint; config errors.
    pub fn resume(dir: impl AsRef<Path>, snapshots: Snapshots, device: &Device) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join(CONFIG_FILE);
        let text = fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: RunConfig =
            ron::from_str(&text).map_err(|e| Error::file(&config_path, e.to_string()))?;
        let (split, mut trainer) = prepare(&config, &snapshots, device)?;
        trainer.load_checkpoint(dir.join(CHECKPOINT_FILE))?;
        truncate_metrics(&dir.join(METRICS_FILE), trainer.step_count())?;
        let best = read_best(&dir.join(BEST_FILE))?;
        Ok(Self::assemble(dir, config, snapshots, split, trainer, best))
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The resolved configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The resolved split.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// All snapshots (train and test).
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The best score of model selection so far (`None` before the first scored evaluation
    /// or without `train.model_selection`).
    pub fn best(&self) -> Option<BestScore> {
        self.best
    }

    /// The trainer.
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// Mutable access to the trainer (e.g. to inspect or perturb parameters in tests). It
    /// forgets the latest evaluation: [`Run::finish`] scores the model again.
    pub fn trainer_mut(&mut self) -> &mut Trainer {
        self.scored = None;
        &mut self.trainer
    }

    /// Trains until `config.train.steps` steps are done (see [`Run::train_for`]).
    ///
    /// # Errors
    /// As [`Run::train_for`].
    pub fn train(&mut self, observer: &mut dyn TrainObserver) -> Result<()> {
        let remaining = self
            .config
            .train
            .steps
            .saturating_sub(self.trainer.step_count());
        self.train_for(remaining, observer)
    }

    /// Runs up to `n_steps` more steps (never past `config.train.steps`), appending to
    /// `metrics.csv`, evaluating every `eval_every` steps (keeping `best.safetensors` when
    /// `train.model_selection` scores an evaluation lower than any before) and checkpointing
    /// every `checkpoint_every` steps and at the last step of the run.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the step (the previous checkpoint stays as it was);
    /// evaluation, checkpoint and I/O failures.
    pub fn train_for(&mut self, n_steps: usize, observer: &mut dyn TrainObserver) -> Result<()> {
        let target = (self.trainer.step_count() + n_steps).min(self.config.train.steps);
        let metrics_path = self.dir.join(METRICS_FILE);
        while self.trainer.step_count() < target {
            let report = self.trainer.step()?;
            observer.on_step(&report);
            let step = report.step;
            let last = step == self.config.train.steps;
            let every = |n: usize| n > 0 && step.is_multiple_of(n);
            let mut selection_score = None;
            if every(self.config.train.eval_every) || last {
                let (evaluation, predictions) = self.evaluate_with_predictions()?;
                observer.on_evaluation(step, &evaluation);
                selection_score = self.config.train.model_selection.score(&evaluation);
                if let Some(score) = selection_score {
                    self.keep_if_best(step, score)?;
                }
                self.scored = Some(Scored {
                    step,
                    evaluation,
                    predictions,
                });
            }
            let evaluation = self
                .scored
                .as_ref()
                .filter(|s| s.step == step)
                .map(|s| &s.evaluation);
            append_metrics(
                &metrics_path,
                &report,
                self.trainer.wall_seconds(),
                evaluation,
                selection_score,
            )?;
            if every(self.config.train.checkpoint_every) || last {
                let path = self.dir.join(CHECKPOINT_FILE);
                self.trainer.save_checkpoint(&path)?;
                observer.on_checkpoint(step, &path);
            }
        }
        Ok(())
    }

    /// Writes the evaluated weights as `best.safetensors` (atomically) and `best.ron` when
    /// `score` beats the best so far.
    fn keep_if_best(&mut self, step: usize, score: f64) -> Result<()> {
        let mut best = self.best;
        if !record_best(&mut best, step, score) {
            return Ok(());
        }
        let Some(new_best) = best else {
            return Ok(());
        };
        let path = self.dir.join(BEST_WEIGHTS_FILE);
        let model = self.trainer.model();
        if self.config.eval.use_ema {
            self.trainer
                .ema()
                .with_shadows(|| model.save_weights(&path))?;
        } else {
            model.save_weights(&path)?;
        }
        write_atomic(&self.dir.join(BEST_FILE), &to_ron(&new_best)?)?;
        self.best = best;
        Ok(())
    }

    /// Evaluates the current (EMA) model on the split.
    ///
    /// # Errors
    /// As [`crate::evaluate`].
    pub fn evaluate(&self) -> Result<Evaluation> {
        self.evaluate_with_predictions()
            .map(|(evaluation, _)| evaluation)
    }

    /// [`Run::evaluate`], also returning the rollouts it scored.
    ///
    /// # Errors
    /// As [`crate::evaluate_with_predictions`].
    pub fn evaluate_with_predictions(&self) -> Result<(Evaluation, Predictions)> {
        self.trainer
            .evaluate_with_predictions(&self.snapshots, &self.split, &self.config.eval)
    }

    /// Writes the final outputs: weights, EMA weights, the forecast (`.npz`) and the
    /// evaluation (`.ron`); returns the evaluation and the rollouts it scored (the forecast
    /// written, the interpolations of an interpolation split).
    ///
    /// The evaluation [`Run::train_for`] made at the last step is reused, not computed again;
    /// the model is scored only when training moved since (or never evaluated).
    ///
    /// # Errors
    /// Evaluation and I/O failures.
    pub fn finish(&mut self) -> Result<(Evaluation, Predictions)> {
        let model = self.trainer.model();
        model.save_weights(self.dir.join(WEIGHTS_FILE))?;
        self.trainer
            .ema()
            .with_shadows(|| model.save_weights(self.dir.join(EMA_WEIGHTS_FILE)))?;
        let step = self.trainer.step_count();
        let (evaluation, predictions) = match self.scored.take() {
            Some(s) if s.step == step => (s.evaluation, s.predictions),
            _ => self.evaluate_with_predictions()?,
        };
        let path = self.dir.join(FORECAST_FILE);
        wlm_data::write_particles_npz(&path, &predictions.forecast.to_snapshots()?)?;
        write_atomic(&self.dir.join(EVALUATION_FILE), &to_ron(&evaluation)?)?;
        Ok((evaluation, predictions))
    }
}

fn to_ron<T: Serialize>(value: &T) -> Result<String> {
    ron::ser::to_string_pretty(value, ron::ser::PrettyConfig::default())
        .map_err(|e| Error::Data(format!("cannot serialise to RON: {e}")))
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    Ok(wlm_data::write_atomic(path, text.as_bytes())?)
}

/// The [`BestScore`] in `path`; `None` when the file does not exist.
fn read_best(path: &Path) -> Result<Option<BestScore>> {
    match fs::read_to_string(path) {
        Ok(text) => ron::from_str(&text)
            .map(Some)
            .map_err(|e| Error::file(path, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn append_metrics(
    path: &Path,
    report: &StepReport,
    wall: f64,
    evaluation: Option<&Evaluation>,
    selection_score: Option<f64>,
) -> Result<()> {
    let mut line = format!(
        "{},{},{},{:e},{:e},{:.3}",
        report.step, report.horizon, report.batch, report.loss, report.friction, wall
    );
    let cell = |m: Option<crate::evaluate::MeanSe>| match m {
        Some(m) => format!(",{:e},{:e}", m.mean, m.se),
        None => ",,".to_string(),
    };
    match evaluation {
        Some(e) => {
            line.push_str(&cell(e.train_w1));
            line.push_str(&cell(e.test_w1));
        }
        None => line.push_str(",,,,"),
    }
    line.push(',');
    if let Some(score) = selection_score {
        line.push_str(&format!("{score:e}"));
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(file, "{line}").map_err(|e| Error::io(path, e))
}

fn truncate_metrics(path: &Path, step: usize) -> Result<()> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = format!("{METRICS_HEADER}\n");
    for line in text.lines().skip(1) {
        let row_step = line.split(',').next().and_then(|s| s.parse::<usize>().ok());
        if matches!(row_step, Some(s) if s <= step) {
            out.push_str(line);
            out.push('\n');
        }
    }
    write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted score sequence [3, 1, 2] keeps the step of 1; a worse, equal or non-finite
    /// score never replaces the best, a lower one does.
    #[test]
    fn best_is_the_step_with_the_lowest_score() {
        let mut best = None;
        let kept: Vec<bool> = [(10, 3.0), (20, 1.0), (30, 2.0)]
            .into_iter()
            .map(|(step, score)| record_best(&mut best, step, score))
            .collect();
        assert_eq!(kept, [true, true, false]);
        assert_eq!(
            best,
            Some(BestScore {
                step: 20,
                score: 1.0
            })
        );
        assert!(!record_best(&mut best, 40, 1.0));
        assert!(!record_best(&mut best, 50, f64::NAN));
        assert!(!record_best(&mut best, 60, f64::NEG_INFINITY));
        assert_eq!(best.map(|b| b.step), Some(20));
        assert!(record_best(&mut best, 70, 0.5));
        assert_eq!(
            best,
            Some(BestScore {
                step: 70,
                score: 0.5
            })
        );
    }
}
