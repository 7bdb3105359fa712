//! `wlm forecast`: a rollout of a trained run from one snapshot to the observed times or to
//! any given times (between snapshots, past the last), optionally every integrator step and
//! from a resample of the start cloud.
//!
//! Steps: interval `k` (from the previous prediction time, or the start, to `times[k]`) gets
//! `max(s, ⌈s · len_k / Δ_max⌉)` integrator steps, where `s` is `eval.steps_per_interval` and
//! `Δ_max` the longest interval between the data's snapshots: no step is longer than the
//! longest step of a forecast at the data's own times, and at the data's own times every
//! interval gets `s` steps, which is the rollout of `wlm::forecast_with_velocities`.

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use wlm_numeric::SeedRng;

use crate::cli::ForecastArgs;
use crate::output::write_snapshots;
use crate::progress::Mode;
use crate::report::simple_table;
use crate::runs::load_run;
use crate::source::output_layout;

/// Checks `--times`: finite, strictly increasing, after the start time `t0`.
///
/// # Errors
/// Naming the offending value and its position.
pub(crate) fn check_times(times: &[f64], t0: f64, from: usize) -> Result<()> {
    let mut previous = t0;
    for (k, &t) in times.iter().enumerate() {
        if !t.is_finite() {
            bail!("--times: value {k} ({t}) is not finite");
        }
        if t <= previous {
            if k == 0 {
                bail!("--times: {t} is not after the start time {t0} (snapshot {from}, --from {from}); times must increase from there");
            }
            bail!("--times: {t} (value {k}) does not increase after {previous}: times must be strictly increasing");
        }
        previous = t;
    }
    Ok(())
}

/// Integrator steps per interval from `t0` through `times` (see the module docs).
pub(crate) fn step_counts(
    observed: &[f64],
    t0: f64,
    times: &[f64],
    per_interval: usize,
) -> Vec<usize> {
    let longest = observed
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0_f64, f64::max);
    let mut previous = t0;
    times
        .iter()
        .map(|&t| {
            let len = t - previous;
            previous = t;
            if longest <= 0.0 {
                return per_interval;
            }
            // The 1e-9 keeps an interval as long as the longest at exactly `per_interval`.
            let wanted = (per_interval as f64 * len / longest - 1e-9).ceil();
            per_interval.max(if wanted.is_finite() && wanted < 1e9 {
                wanted as usize
            } else {
                usize::MAX
            })
        })
        .collect()
}

/// `m` rows of `x` and `v` drawn with replacement (the same rows of both).
fn resample(x: &Tensor, v: &Tensor, m: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let n = x.dim(0)?;
    let mut rng = SeedRng::seed_from(seed);
    let rows: Vec<u32> = (0..m)
        .map(|_| u32::try_from(rng.below(n as u64)).unwrap_or(0))
        .collect();
    let index = Tensor::from_vec(rows, m, x.device())?;
    Ok((x.index_select(&index, 0)?, v.index_select(&index, 0)?))
}

/// `wlm forecast`.
///
/// # Errors
/// Loading, bad `--from`/`--times`/`--n-samples` (naming the value), simulation and I/O
/// failures.
pub(crate) fn forecast(args: &ForecastArgs, mode: Mode) -> Result<()> {
    let loaded = load_run(&args.eval)?;
    let s = &loaded.snapshots;
    let from = args.from;
    if from >= s.len() {
        bail!(
            "--from {from}: the data have snapshots 0..{} (times {:?})",
            s.len() - 1,
            s.times()
        );
    }
    let t0 = s.times()[from];
    let given = !args.times.is_empty();
    let times: Vec<f64> = if given {
        check_times(&args.times, t0, from)?;
        args.times.clone()
    } else {
        s.times()[from + 1..].to_vec()
    };
    if times.is_empty() {
        bail!("--from {from} is the last snapshot (time {t0}): give --times after it");
    }
    if args.n_samples == Some(0) {
        bail!("--n-samples must be at least 1, got 0");
    }
    let eval = &loaded.config.eval;
    let steps = step_counts(s.times(), t0, &times, eval.steps_per_interval);
    if steps.iter().sum::<usize>() > 100_000_000 {
        bail!(
            "--times {:?}: the rollout would take more than 10^8 integrator steps",
            times
        );
    }
    let (x0, v0, states) = loaded.weights.with_model(eval.use_ema, |model| {
        let v0 = wlm::initial_velocities(model, s, from, &loaded.split.train, eval)?;
        let x0 = s.positions_tensor(from, model.dtype(), model.device())?;
        let (x0, v0) = match args.n_samples {
            Some(m) => resample(&x0, &v0, m, args.seed)?,
            None => (x0, v0),
        };
        let states = model.simulate_steps(&x0, &v0, t0, &times, &steps, args.trajectories)?;
        Ok((x0, v0, states))
    })?;
    // The states at the prediction times, and what is written.
    let at_times: Vec<usize> = if args.trajectories {
        steps
            .iter()
            .scan(0, |sum, n| {
                *sum += n;
                Some(*sum - 1)
            })
            .collect()
    } else {
        (0..states.len()).collect()
    };
    let mut out_times = Vec::new();
    let mut positions = Vec::new();
    let mut velocities = Vec::new();
    if !given || args.trajectories {
        out_times.push(t0);
        positions.push(x0);
        velocities.push(Some(v0));
    }
    let mut next = 0;
    for (i, state) in states.iter().enumerate() {
        let t = if at_times.get(next) == Some(&i) {
            next += 1;
            times[next - 1]
        } else {
            state.time
        };
        out_times.push(t);
        positions.push(state.positions.clone());
        velocities.push(Some(state.velocities.clone()));
    }
    let predicted = wlm_data::Snapshots::from_tensors(out_times, &positions, Some(&velocities))
        .context("the forecast produced invalid values")?;
    let out = args
        .eval
        .out
        .clone()
        .unwrap_or_else(|| args.eval.run_dir.join(wlm::FORECAST_FILE));
    write_snapshots(&out, &predicted, &output_layout(&loaded.data_source))?;

    // Exact W1 wherever a prediction time is an observed time.
    let pairs: Vec<(usize, &Tensor)> = times
        .iter()
        .zip(&at_times)
        .filter_map(|(t, &i)| {
            let k = s.times().iter().position(|u| u == t)?;
            Some((k, &states[i].positions))
        })
        .collect();
    if pairs.is_empty() {
        if mode != Mode::Quiet {
            eprintln!("no prediction time is an observed time: nothing to score");
        }
    } else {
        let w1 = wlm::w1_scores(s, &pairs)?;
        let rows: Vec<(usize, f64, Vec<f64>)> = pairs
            .iter()
            .zip(w1)
            .map(|(&(k, _), w)| {
                let held_out = if loaded.split.test.contains(&k) {
                    1.0
                } else {
                    0.0
                };
                (k, s.times()[k], vec![w, held_out])
            })
            .collect();
        println!(
            "{}",
            simple_table(
                &format!(
                    "forecast from snapshot {from} ({}), exact W1",
                    loaded.source.display()
                ),
                &["model W1", "held out (1 = yes)"],
                &rows
            )
        );
    }
    if mode != Mode::Quiet {
        eprintln!("predictions: {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_intervals_get_the_configured_steps_and_longer_ones_more() {
        let observed = [0.0, 0.5, 1.5, 2.0];
        // The data's own times: s steps each, whatever their lengths.
        assert_eq!(step_counts(&observed, 0.0, &observed[1..], 4), [4, 4, 4]);
        // Past the last: steps no longer than the longest observed step (1.0 / 4).
        assert_eq!(step_counts(&observed, 2.0, &[3.0, 5.5, 5.6], 4), [4, 10, 4]);
        // Between snapshots, and from a later start.
        assert_eq!(step_counts(&observed, 0.5, &[0.7, 1.0], 2), [2, 2]);
        for (t0, times, per) in [(0.0, vec![0.1, 7.3], 3), (1.5, vec![1.6, 2.0, 40.0], 5)] {
            let steps = step_counts(&observed, t0, &times, per);
            let mut previous = t0;
            for (t, n) in times.iter().zip(steps) {
                assert!(n >= per && (t - previous) / n as f64 <= 1.0 / per as f64 + 1e-12);
                previous = *t;
            }
        }
    }

    #[test]
    fn times_must_be_finite_and_increase_from_the_start() {
        assert!(check_times(&[1.0, 2.5], 0.5, 0).is_ok());
        let err = |times: &[f64]| check_times(times, 1.0, 2).unwrap_err().to_string();
        assert!(err(&[1.0]).contains("not after the start time 1 (snapshot 2"));
        assert!(err(&[2.0, 2.0]).contains("2 (value 1) does not increase after 2"));
        assert!(err(&[2.0, f64::INFINITY]).contains("value 1 (inf) is not finite"));
    }
}
