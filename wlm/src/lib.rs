//! The WLM learner: an energy network, friction and an integrator, trained on snapshots.

mod adjoint;
mod checkpoint;
mod config;
mod ema;
mod error;
mod evaluate;
mod loss;
mod model;
mod optim;
mod rng;
mod run;
mod trainer;

pub use config::{
    EvalConfig, GradientMethod, LossConfig, Split, SplitConfig, TrainConfig, VelocitySource,
};
pub use ema::Ema;
pub use error::{Error, Result};
pub use evaluate::{
    baselines, evaluate, forecast, interpolate, BaselineScore, Evaluation, Forecast, MeanSe,
    Role, SnapshotScore,
};
pub use loss::{LossGradients, RolloutLoss};
pub use model::{
    EnergyConfig, FrictionConfig, Model, ModelConfig, Precision, FRICTION_PARAMETER,
};
pub use optim::{AdamW, AdamWGroup};
pub use rng::TrainRng;
pub use run::{
    Run, RunConfig, TrainObserver, CHECKPOINT_FILE, CONFIG_FILE, EMA_WEIGHTS_FILE,
    EVALUATION_FILE, FORECAST_FILE, METRICS_FILE, WEIGHTS_FILE,
};
pub use trainer::{StepReport, Trainer};
