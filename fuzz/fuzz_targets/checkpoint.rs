//! Fuzz target: the safetensors loaders of the learner, `Model::load_weights` and
//! `Trainer::load_checkpoint`, on the same bytes: `Ok` or `Err`, never a panic.
//!
//! Both take a path, so each input is written to one file per process (in `/dev/shm` when
//! there is one). The model (a one-block attention energy in 2-D, learned friction) and its
//! trainer are built once; a failed load leaves the trainer's tensors with their shapes, so
//! reusing it does not change what the next input does.
//!
//! Seeds: with `WLM_FUZZ_WRITE_SEEDS=DIR`, the first run writes a valid `weights.safetensors`
//! and `checkpoint.safetensors` of this model into `DIR`.
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use libfuzzer_sys::fuzz_target;
use wlm::{
    EnergyConfig, FrictionConfig, Model, ModelConfig, Precision, TrainConfig, Trainer,
    VelocitySource,
};
use wlm_energy::AttentionEnergyConfig;

struct State {
    trainer: Trainer,
    path: PathBuf,
}

thread_local! {
    // The trainer is not `Send` (its energy is a `dyn Energy`): one per thread.
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn model() -> Model {
    let config = ModelConfig {
        energy: EnergyConfig::Attention(AttentionEnergyConfig {
            dim: 2,
            heads: 1,
            hidden: 4,
            blocks: 1,
            ff: 4,
            time_features: false,
            dropout: 0.0,
        }),
        friction: FrictionConfig {
            gamma: 0.5,
            learnable: true,
        },
        precision: Precision::F32,
        ..ModelConfig::default()
    };
    Model::new(config, &Device::Cpu).expect("model")
}

fn state() -> State {
    let clouds: Vec<Tensor> = (0..3)
        .map(|k| {
            let values: Vec<f64> = (0..8).map(|i| (i as f64 * 0.7 + k as f64).sin()).collect();
            Tensor::from_vec(values, (4, 2), &Device::Cpu).expect("cloud")
        })
        .collect();
    let snapshots =
        wlm_data::Snapshots::from_tensors(vec![0.0, 0.1, 0.2], &clouds, None).expect("snapshots");
    let config = TrainConfig {
        initial_velocities: VelocitySource::Zero,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(model(), config, &snapshots).expect("trainer");
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!(
        "wlm-fuzz-checkpoint-{}.safetensors",
        std::process::id()
    ));
    if let Some(seeds) = std::env::var_os("WLM_FUZZ_WRITE_SEEDS") {
        let seeds = PathBuf::from(seeds);
        std::fs::create_dir_all(&seeds).expect("seed directory");
        trainer
            .model()
            .save_weights(seeds.join("weights.safetensors"))
            .expect("weights");
        trainer
            .save_checkpoint(seeds.join("checkpoint.safetensors"))
            .expect("checkpoint");
    }
    State { trainer, path }
}

fuzz_target!(|data: &[u8]| {
    STATE.with_borrow_mut(|slot| {
        let state = slot.get_or_insert_with(state);
        std::fs::write(&state.path, data).expect("write the input");
        let _ = state.trainer.model().load_weights(&state.path);
        let _ = state.trainer.load_checkpoint(&state.path);
    });
});
