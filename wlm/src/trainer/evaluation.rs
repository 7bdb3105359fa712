//! The trainer's evaluations and forecasts: the free functions of `evaluate.rs` with the EMA
//! weights swapped in.

use wlm_data::Snapshots;

use super::Trainer;
use crate::config::{EvalConfig, Split};
use crate::evaluate::{
    evaluate_with_predictions, forecast_with_velocities, initial_velocities, Evaluation, Forecast,
    Predictions,
};
use crate::Result;

impl Trainer {
    /// [`evaluate`] with the EMA weights swapped in when `config.use_ema` (restored after).
    ///
    /// # Errors
    /// As [`evaluate`].
    pub fn evaluate(
        &self,
        snapshots: &Snapshots,
        split: &Split,
        config: &EvalConfig,
    ) -> Result<Evaluation> {
        self.evaluate_with_predictions(snapshots, split, config)
            .map(|(evaluation, _)| evaluation)
    }

    /// [`evaluate_with_predictions`] with the EMA weights swapped in when `config.use_ema`
    /// (restored after); an unset [`EvalConfig::model_start_velocities`] is the training
    /// config's `initial_velocities`.
    ///
    /// # Errors
    /// As [`evaluate_with_predictions`].
    pub fn evaluate_with_predictions(
        &self,
        snapshots: &Snapshots,
        split: &Split,
        config: &EvalConfig,
    ) -> Result<(Evaluation, Predictions)> {
        let config = config.with_training_start(&self.config);
        let run = || evaluate_with_predictions(&self.model, snapshots, split, &config);
        if config.use_ema {
            self.ema.with_shadows(run)
        } else {
            run()
        }
    }

    /// The forecast from snapshot 0 with the EMA weights when `config.use_ema`; its initial
    /// velocities are [`initial_velocities`] with every snapshot known (`Model`: the
    /// `model_start_velocities`, by default the training config's `initial_velocities`).
    ///
    /// # Errors
    /// As [`initial_velocities`] and [`forecast_with_velocities`].
    pub fn forecast(&self, snapshots: &Snapshots, config: &EvalConfig) -> Result<Forecast> {
        let config = config.with_training_start(&self.config);
        let known: Vec<usize> = (0..snapshots.len()).collect();
        let run = || {
            let v0 = initial_velocities(&self.model, snapshots, 0, &known, &config)?;
            forecast_with_velocities(&self.model, snapshots, 0, &v0, config.steps_per_interval)
        };
        if config.use_ema {
            self.ema.with_shadows(run)
        } else {
            run()
        }
    }
}
