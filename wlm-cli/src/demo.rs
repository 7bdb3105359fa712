//! `wlm demo`: simulate Boids, train a small model, forecast the held-out half, compare with
//! the baselines and draw the plots, with no input files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use wlm::Role;

use crate::cli::DemoArgs;
use crate::config::ExperimentConfig;
use crate::progress::Mode;
use crate::runs::train_config;

/// The demo's config (RON), embedded in the binary.
pub(crate) const DEMO_CONFIG: &str = include_str!("demo.ron");

/// Overrides of the `--quick` variant: a seconds-long run for tests.
const QUICK: [&str; 7] = [
    "name=demo-quick",
    "data.source.n_particles=48",
    "data.source.n_snapshots=9",
    "split.n_train=5",
    "model.energy=Attention((dim: 2, heads: 1, hidden: 8, blocks: 1, ff: 8))",
    "train.steps=20",
    "train.batch_size=None",
];

/// The demo's experiment config.
///
/// # Errors
/// Only if the embedded config is broken (a test checks it is not).
pub(crate) fn demo_config(args: &DemoArgs) -> Result<ExperimentConfig> {
    let mut overrides: Vec<String> = if args.quick {
        QUICK.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    if let Some(steps) = args.steps {
        overrides.push(format!("train.steps={steps}"));
    }
    overrides.push(format!("data.source.seed={}", args.seed));
    overrides.push(format!("train.seed={}", args.seed));
    ExperimentConfig::parse(DEMO_CONFIG, &overrides)
}

/// `runs/<name>`, or `runs/<name>-2`, `-3`, … when that already holds a run.
fn fresh_run_dir(name: &str) -> PathBuf {
    let base = Path::new("runs").join(name);
    if !base.join(wlm::CHECKPOINT_FILE).exists() {
        return base;
    }
    (2..)
        .map(|k| Path::new("runs").join(format!("{name}-{k}")))
        .find(|p| !p.join(wlm::CHECKPOINT_FILE).exists())
        .unwrap_or(base)
}

/// Runs the demo; prints the W1 table and a summary.
///
/// # Errors
/// Any failure of simulation, training, evaluation or plotting.
pub(crate) fn demo(args: &DemoArgs, mode: Mode) -> Result<()> {
    let start = Instant::now();
    let config = demo_config(args)?;
    let dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| fresh_run_dir(&config.name));
    if mode != Mode::Quiet {
        if let crate::config::DataSource::Boids(b) = &config.data.source {
            eprintln!(
                "wlm demo: {} boids, {} snapshots {} apart; training on the first half, forecasting the rest",
                b.n_particles,
                b.n_snapshots,
                b.flocking.dt * b.steps_per_snapshot as f64
            );
        }
    }
    let e = train_config(&config, &dir, false, mode)?;
    let model: Vec<(usize, f64)> = e
        .scores
        .iter()
        .filter(|s| s.role == Role::Test)
        .map(|s| (s.index, s.w1))
        .collect();
    for b in &e.baselines {
        let wins = model
            .iter()
            .filter(|(k, w)| b.w1.iter().any(|(j, bw)| j == k && w < bw))
            .count();
        println!(
            "model beats {} at {wins} of {} test times (mean W1 {:.4} vs {:.4})",
            b.name,
            model.len(),
            e.test_w1.map_or(f64::NAN, |m| m.mean),
            b.test_w1.map_or(f64::NAN, |m| m.mean),
        );
    }
    println!(
        "demo finished in {:.1} s; run directory {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_config_parses_in_both_variants() {
        let full = DemoArgs {
            quick: false,
            run_dir: None,
            steps: None,
            seed: 0,
        };
        let c = demo_config(&full).unwrap();
        assert_eq!(c.name, "demo");
        let quick = demo_config(&DemoArgs {
            quick: true,
            steps: Some(7),
            ..full
        })
        .unwrap();
        assert_eq!((quick.name.as_str(), quick.train.steps), ("demo-quick", 7));
    }
}
