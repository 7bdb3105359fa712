//! The exact W1/W2 of an evaluation as one batch of independent jobs, and the baselines'
//! plans scored by the same jobs.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use wlm_data::Snapshots;

use crate::config::Split;
use crate::{Error, Result};

use super::*;

/// The exact distances of an evaluation.
#[derive(Clone, Copy, Debug)]
pub(super) enum Metric {
    W1,
    W2,
}

/// One independent exact-OT computation of an evaluation.
#[derive(Debug)]
pub(super) enum Job {
    /// `metric(prediction, observed[target])`; `prediction` is an f64 CPU tensor.
    Distance {
        metric: Metric,
        prediction: Tensor,
        target: usize,
    },
    /// W1 between observed snapshot `held_out` and the displacement interpolation of its
    /// neighbours `held_out ∓ 1` at `fraction` (the `ot_midpoint` baseline).
    Midpoint { held_out: usize, fraction: f64 },
}

impl Job {
    pub(super) fn run(&self, observed: &[Tensor]) -> Result<f64> {
        Ok(match self {
            Job::Distance {
                metric: Metric::W1,
                prediction,
                target,
            } => wlm_ot::wasserstein_1(prediction, &observed[*target])?,
            Job::Distance {
                metric: Metric::W2,
                prediction,
                target,
            } => wlm_ot::wasserstein_2(prediction, &observed[*target])?,
            Job::Midpoint { held_out, fraction } => {
                let h = *held_out;
                // The interpolation's points weighted, not repeated: its lcm(N₋, N₊) points
                // against N_h would not fit in memory for coprime sizes of a thousand.
                wlm_ot::displacement_interpolation_w1(
                    &observed[h - 1],
                    &observed[h + 1],
                    *fraction,
                    &observed[h],
                )?
            }
        })
    }
}

/// The indices into [`Jobs`] of one per-snapshot score.
pub(super) struct Row {
    pub(super) index: usize,
    pub(super) role: Role,
    pub(super) w1: usize,
    pub(super) w2: Option<usize>,
}

/// A batch of exact-OT computations against the observed snapshots, run in parallel.
pub(super) struct Jobs<'a> {
    observed: &'a [Tensor],
    jobs: Vec<Job>,
}

impl<'a> Jobs<'a> {
    pub(super) fn new(observed: &'a [Tensor]) -> Self {
        Self {
            observed,
            jobs: Vec::new(),
        }
    }

    /// Queues `metric(prediction, observed[target])`; returns its index in the results.
    pub(super) fn distance(&mut self, metric: Metric, prediction: Tensor, target: usize) -> usize {
        self.jobs.push(Job::Distance {
            metric,
            prediction,
            target,
        });
        self.jobs.len() - 1
    }

    /// Queues W1 (and W2 when `w2`) of `prediction` (any dtype and device) against observed
    /// snapshot `index`.
    pub(super) fn row(
        &mut self,
        index: usize,
        role: Role,
        prediction: &Tensor,
        w2: bool,
    ) -> Result<Row> {
        let prediction = to_cpu_f64(prediction)?;
        let w2 = w2.then(|| self.distance(Metric::W2, prediction.clone(), index));
        Ok(Row {
            index,
            role,
            w1: self.distance(Metric::W1, prediction, index),
            w2,
        })
    }

    /// Runs every job (in parallel) and returns the values in the order they were queued.
    ///
    /// # Errors
    /// The first failure in that order.
    pub(super) fn run(self) -> Result<Vec<f64>> {
        let observed = self.observed;
        let results: Vec<Result<f64>> = self.jobs.par_iter().map(|j| j.run(observed)).collect();
        results.into_iter().collect()
    }
}

/// Baselines waiting for their queued W1s: `(name, [(snapshot index, job index)])`.
pub(super) struct BaselinePlan(Vec<(&'static str, Vec<(usize, usize)>)>);

impl BaselinePlan {
    pub(super) fn scores(&self, values: &[f64]) -> Vec<BaselineScore> {
        self.0
            .iter()
            .map(|(name, jobs)| {
                baseline_score(name, jobs.iter().map(|&(h, j)| (h, values[j])).collect())
            })
            .collect()
    }
}

/// Queues the baselines of `split` (see [`baselines`]) on `jobs`.
pub(super) fn plan_baselines(
    snapshots: &Snapshots,
    split: &Split,
    observed: &[Tensor],
    jobs: &mut Jobs<'_>,
) -> Result<BaselinePlan> {
    if !split.is_forecast() {
        return plan_interpolation_baselines(snapshots, &split.test, jobs);
    }
    let last = *split
        .train
        .last()
        .ok_or_else(|| Error::config("split", "no training snapshots"))?;
    let x_last = &observed[last];
    let mut plan = Vec::new();
    let repeat = split
        .test
        .iter()
        .map(|&h| (h, jobs.distance(Metric::W1, x_last.clone(), h)))
        .collect();
    plan.push(("repeat_last", repeat));
    if let Some(v) = snapshots.velocities_tensor(last, DType::F64, &Device::Cpu)? {
        let times = snapshots.times();
        let mut cv = Vec::with_capacity(split.test.len());
        for &h in &split.test {
            let moved = (x_last + (&v * (times[h] - times[last]))?)?;
            cv.push((h, jobs.distance(Metric::W1, moved, h)));
        }
        plan.push(("constant_velocity", cv));
    }
    Ok(BaselinePlan(plan))
}

/// Queues the interpolation baselines of held-out snapshots `test` on `jobs`.
pub(super) fn plan_interpolation_baselines(
    snapshots: &Snapshots,
    test: &[usize],
    jobs: &mut Jobs<'_>,
) -> Result<BaselinePlan> {
    if let Some(&h) = test.iter().find(|&&h| h == 0 || h >= snapshots.len()) {
        return Err(Error::config(
            "held_out",
            format!(
                "held-out snapshot must be in 1..{}, got {h}",
                snapshots.len()
            ),
        ));
    }
    let previous = test
        .iter()
        .map(|&h| {
            (
                h,
                jobs.distance(Metric::W1, jobs.observed[h - 1].clone(), h),
            )
        })
        .collect();
    let mut plan = vec![("repeat_previous", previous)];
    // The OT midpoint: displacement interpolation between the neighbours h − 1 and h + 1
    // along their exact W2 plan, at the held-out time.
    let times = snapshots.times();
    let midpoint: Vec<(usize, usize)> = test
        .iter()
        .filter(|&&h| h + 1 < snapshots.len())
        .map(|&h| {
            let s = (times[h] - times[h - 1]) / (times[h + 1] - times[h - 1]);
            jobs.jobs.push(Job::Midpoint {
                held_out: h,
                fraction: s.clamp(0.0, 1.0),
            });
            (h, jobs.jobs.len() - 1)
        })
        .collect();
    if !midpoint.is_empty() {
        plan.push(("ot_midpoint", midpoint));
    }
    Ok(BaselinePlan(plan))
}

/// A baseline's per-snapshot W1 with its mean ± SE.
pub(super) fn baseline_score(name: &str, w1: Vec<(usize, f64)>) -> BaselineScore {
    let values: Vec<f64> = w1.iter().map(|(_, w)| *w).collect();
    BaselineScore {
        name: name.into(),
        test_w1: MeanSe::of(&values),
        w1,
    }
}

/// The baselines of METHOD.md §4 on the test snapshots. Forecast split: `repeat_last` (the last
/// training snapshot) and, when it has velocities, `constant_velocity`
/// (`x + (t_h − t_last) v`). Interpolation split: `repeat_previous` (observed snapshot `h − 1`)
/// and, when `h + 1` exists, `ot_midpoint` (displacement interpolation between snapshots
/// `h − 1` and `h + 1` along their exact W2 plan, at the time of `h`). The W1s are computed
/// in parallel.
///
/// # Errors
/// [`Error::Config`] (`split`) for a snapshot index the data do not have or no training
/// snapshots; W1 failures.
pub fn baselines(snapshots: &Snapshots, split: &Split) -> Result<Vec<BaselineScore>> {
    check_split(snapshots, split)?;
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    let plan = plan_baselines(snapshots, split, &observed, &mut jobs)?;
    Ok(plan.scores(&jobs.run()?))
}

/// The interpolation baselines of held-out snapshots `test`: `repeat_previous` (observed
/// snapshot `h − 1`) and, where `h + 1` exists, `ot_midpoint` (displacement interpolation
/// between snapshots `h − 1` and `h + 1` along their exact W2 plan, at the time of `h`). The
/// W1s are computed in parallel.
///
/// # Errors
/// [`Error::Config`] (`held_out`) for a test index 0 or out of range; W1 failures.
pub fn interpolation_baselines(
    snapshots: &Snapshots,
    test: &[usize],
) -> Result<Vec<BaselineScore>> {
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    let plan = plan_interpolation_baselines(snapshots, test, &mut jobs)?;
    Ok(plan.scores(&jobs.run()?))
}

/// Exact W1 of each prediction against its observed snapshot, computed in parallel, in the
/// order given: e.g. the table of `wlm forecast` or `wlm interpolate`.
///
/// # Shapes
/// Each prediction `(n, dim)` (any dtype and device) against snapshot `k`'s `(n_k, dim)`.
///
/// # Errors
/// [`Error::Config`] (`snapshot`) for an index the data do not have; W1 failures, the first
/// in the order given.
pub fn w1_scores(snapshots: &Snapshots, pairs: &[(usize, &Tensor)]) -> Result<Vec<f64>> {
    if let Some(&(k, _)) = pairs.iter().find(|(k, _)| *k >= snapshots.len()) {
        return Err(Error::config(
            "snapshot",
            format!(
                "snapshot {k} does not exist: the data have {} snapshots",
                snapshots.len()
            ),
        ));
    }
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    for &(k, prediction) in pairs {
        jobs.distance(Metric::W1, to_cpu_f64(prediction)?, k);
    }
    jobs.run()
}
