//! Velocity estimates from unpaired snapshots: OT finite differences, and velocities carried
//! from one cloud onto another along an exact OT plan.
//!
//! Both rest on the barycentric projection of the exact W2 plan `π` between the uniform
//! measures on `x` (`N` points) and `y` (`M` points): `T(x_i) = Σ_j π_ij y_j / Σ_j π_ij`
//! (`Σ_j π_ij = 1/N`). For `N = M` the plan is a permutation and `T(x_i)` is the point `x_i`
//! is matched with; for `N ≠ M` it is the plan-weighted mean of the points `x_i` sends mass to.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use wlm_data::Snapshots;
use wlm_ot::{GroundCost, TransportPlan};

use crate::{Error, Result};

/// A finite-difference scheme in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    /// `(T₊(x) − x) / (t_{k+1} − t_k)` with the next snapshot: first order, error `O(Δt)`.
    Forward,
    /// `(x − T₋(x)) / (t_k − t_{k−1})` with the previous snapshot: first order.
    Backward,
    /// The weighted mean of the two, second order (error `O(Δt²)`), also for unequal steps.
    Central,
}

/// OT finite-difference estimate of the velocities of the points of snapshot `index`.
///
/// Snapshots are unpaired, so the partner of each point in a neighbouring snapshot is taken
/// from the exact W2 plan between the two clouds (network simplex, [`wlm_ot::exact_plan`]),
/// through its barycentric projection `T(x_i) = N Σ_j π_ij y_j` (the matched point when the
/// sizes agree, the plan-weighted mean of the points `x_i` sends mass to when they do not).
/// With `x = ` snapshot `k = index`, `T₊` the projection onto snapshot `k + 1`, `T₋` onto
/// `k − 1`, `h₊ = t_{k+1} − t_k`, `h₋ = t_k − t_{k−1}`:
///
/// ```text
/// Forward:   v_i = (T₊(x_i) − x_i) / h₊ =: D₊
/// Backward:  v_i = (x_i − T₋(x_i)) / h₋ =: D₋
/// Central:   v_i = (h₋ D₊ + h₊ D₋) / (h₋ + h₊)        (= (T₊ − T₋) / (2h) for equal steps)
/// ```
///
/// The central weights cancel the `O(Δt)` terms of the one-sided differences for unequal
/// steps too, so on smooth paired motion its error is `O(h₊ h₋)`, the one-sided errors
/// `O(h)`. At the first snapshot, which has no previous one, `Central` and `Backward` use the
/// forward difference; at the last, `Central` and `Forward` use the backward difference.
///
/// What it estimates: for a smooth flow sampled finely (displacements between snapshots small
/// against the spacing of the points) the plan recovers the true pairing and this is the
/// classical finite difference of the trajectories; for a dense cloud it estimates the
/// velocity field's gradient part (the Wasserstein tangent vector: the part that changes the
/// density; a rotation of an isotropic cloud is invisible to it), blurred by the sampling
/// noise of the clouds, which the division by `Δt` amplifies.
///
/// Cost: one (two for `Central`) exact OT problem of `N_k × N_{k±1}` (the cost matrix is
/// `O(N_k N_{k±1})` memory).
///
/// # Shapes
/// → `(n_particles(index), dim)`, f64, on the CPU, rows in the order of snapshot `index`.
///
/// # Errors
/// [`Error::Data`] naming the snapshot for an `index` out of range or data of a single
/// snapshot (no neighbour to difference with); [`Error::Ot`] if the exact problem is too
/// large.
pub fn ot_finite_difference(snapshots: &Snapshots, index: usize, scheme: Scheme) -> Result<Tensor> {
    let n_snapshots = snapshots.len();
    if index >= n_snapshots {
        return Err(Error::Data(format!(
            "velocity estimate at snapshot {index}: the snapshot does not exist, the data have {n_snapshots} snapshots"
        )));
    }
    if n_snapshots < 2 {
        return Err(Error::Data(format!(
            "velocity estimate at snapshot {index}: a finite difference needs a neighbouring snapshot, but the data have only 1 snapshot"
        )));
    }
    let previous = index.checked_sub(1);
    let next = (index + 1 < n_snapshots).then_some(index + 1);
    ot_difference(snapshots, index, previous, next, scheme)
}

/// [`ot_finite_difference`] at snapshot `index` with the given neighbours (`previous <
/// index < next`, valid indices; not necessarily adjacent: the snapshots a rollout may know).
/// A missing neighbour makes the scheme one-sided.
///
/// # Errors
/// [`Error::Data`] naming the snapshot when both neighbours are missing; exact-OT failures.
pub(crate) fn ot_difference(
    snapshots: &Snapshots,
    index: usize,
    previous: Option<usize>,
    next: Option<usize>,
    scheme: Scheme,
) -> Result<Tensor> {
    let scheme = match (scheme, previous, next) {
        (_, None, None) => {
            return Err(Error::Data(format!(
                "velocity estimate at snapshot {index}: a finite difference needs a neighbouring snapshot, but none is known"
            )))
        }
        (Scheme::Central | Scheme::Backward, None, Some(_)) => Scheme::Forward,
        (Scheme::Central | Scheme::Forward, Some(_), None) => Scheme::Backward,
        (scheme, _, _) => scheme,
    };
    let dim = snapshots.dim();
    let times = snapshots.times();
    let x = snapshots.positions(index);
    // D₊ and D₋ as row-major `(N, dim)` values, with their steps.
    let forward = || -> Result<(Vec<f64>, f64)> {
        let next = next.unwrap_or(index);
        let h = times[next] - times[index];
        let mapped = project(snapshots, index, next)?;
        Ok((mapped.iter().zip(x).map(|(t, x)| (t - x) / h).collect(), h))
    };
    let backward = || -> Result<(Vec<f64>, f64)> {
        let previous = previous.unwrap_or(index);
        let h = times[index] - times[previous];
        let mapped = project(snapshots, index, previous)?;
        Ok((mapped.iter().zip(x).map(|(t, x)| (x - t) / h).collect(), h))
    };
    let velocities = match scheme {
        Scheme::Forward => forward()?.0,
        Scheme::Backward => backward()?.0,
        Scheme::Central => {
            let ((d_forward, h_forward), (d_backward, h_backward)) = (forward()?, backward()?);
            let (w_forward, w_backward) = (
                h_backward / (h_forward + h_backward),
                h_forward / (h_forward + h_backward),
            );
            d_forward
                .iter()
                .zip(d_backward)
                .map(|(f, b)| w_forward * f + w_backward * b)
                .collect()
        }
    };
    let n = velocities.len() / dim;
    Ok(Tensor::from_vec(velocities, (n, dim), &Device::Cpu)?)
}

/// The barycentric projection of snapshot `from`'s points onto snapshot `to`, row-major.
fn project(snapshots: &Snapshots, from: usize, to: usize) -> Result<Vec<f64>> {
    let x = snapshots.positions_tensor(from, DType::F64, &Device::Cpu)?;
    let y = snapshots.positions_tensor(to, DType::F64, &Device::Cpu)?;
    let plan = wlm_ot::exact_plan(&x, &y, GroundCost::SquaredEuclidean)?;
    Ok(plan_mean(&plan, snapshots.positions(to), snapshots.dim()))
}

/// `N Σ_j π_ij values_j` for every `i`: the plan-weighted mean, over the points of `y` that
/// `x_i` sends mass to, of per-point `values` (row-major `(n_y, dim)`).
fn plan_mean(plan: &TransportPlan, values: &[f64], dim: usize) -> Vec<f64> {
    let units_per_row = (plan.total_units / plan.n_x) as f64;
    let mut out = vec![0.0; plan.n_x * dim];
    for &(i, j, units) in &plan.entries {
        let weight = units as f64 / units_per_row;
        for (o, v) in out[i * dim..(i + 1) * dim]
            .iter_mut()
            .zip(&values[j * dim..(j + 1) * dim])
        {
            *o += weight * v;
        }
    }
    out
}

/// Velocities carried from a simulated cloud onto an observed one along their exact W2 plan:
/// each observed point `y_i` gets the plan-weighted mean of the velocities of the simulated
/// points it is coupled with, `u_i = M Σ_j π_ij v_j` (`π` the exact plan between the uniform
/// measures on `onto` (`M` points) and `positions`). Equal sizes: the velocity of the matched
/// point. This is how a rollout's velocities restart the model at an observed snapshot
/// ([`crate::VelocitySource::Model`]).
///
/// # Shapes
/// `positions`, `velocities`: `(N, dim)`; `onto`: `(M, dim)`; any float dtype and device →
/// `(M, dim)` f64 on the CPU, rows in the order of `onto`.
///
/// # Errors
/// [`Error::Data`] if `velocities` and `positions` differ in shape; [`Error::Ot`] for bad
/// clouds (empty, non-finite, mismatched dimensions) or a problem too large.
pub fn carry_velocities(positions: &Tensor, velocities: &Tensor, onto: &Tensor) -> Result<Tensor> {
    if positions.dims() != velocities.dims() {
        return Err(Error::Data(format!(
            "carrying velocities: {:?} velocities for {:?} positions",
            velocities.dims(),
            positions.dims()
        )));
    }
    let host =
        |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(DType::F64)?.to_device(&Device::Cpu)?) };
    let (positions, onto) = (host(positions)?, host(onto)?);
    let plan = wlm_ot::exact_plan(&onto, &positions, GroundCost::SquaredEuclidean)?;
    let dim = onto.dim(1)?;
    let values = host(velocities)?.flatten_all()?.to_vec1::<f64>()?;
    let carried = plan_mean(&plan, &values, dim);
    Ok(Tensor::from_vec(carried, (plan.n_x, dim), &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    type Rng64 = rand::rngs::StdRng;

    fn uniform_cloud(rng: &mut Rng64, n: usize, dim: usize) -> Vec<f64> {
        (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// The rows of `points` (`dim` columns) in a random order.
    fn shuffled(rng: &mut Rng64, points: &[f64], dim: usize) -> (Vec<f64>, Vec<usize>) {
        let mut order: Vec<usize> = (0..points.len() / dim).collect();
        order.shuffle(rng);
        let out = order
            .iter()
            .flat_map(|&i| points[i * dim..(i + 1) * dim].iter().copied())
            .collect();
        (out, order)
    }

    fn rows(t: &Tensor) -> Vec<Vec<f64>> {
        t.to_vec2::<f64>().expect("f64 matrix")
    }

    /// Brute-force optimal assignment between `x` (`n_x` rows) and `y` (`n_y` rows) with cost
    /// `|x − y|²`: every point is split into `lcm / n` equal copies and every permutation of the
    /// `lcm` copies is tried. Returns, for each `x_i`, the `y` indices its copies are assigned to.
    fn brute_force_assignment(x: &[f64], y: &[f64], dim: usize) -> Vec<Vec<usize>> {
        let (n_x, n_y) = (x.len() / dim, y.len() / dim);
        let lcm = (1..=n_x * n_y)
            .find(|l| l % n_x == 0 && l % n_y == 0)
            .unwrap_or(1);
        assert!(lcm <= 8, "brute force over {lcm}! permutations is too slow");
        let (copies_x, copies_y) = (lcm / n_x, lcm / n_y);
        let cost = |a: usize, b: usize| -> f64 {
            let (i, j) = (a / copies_x, b / copies_y);
            (0..dim)
                .map(|d| (x[i * dim + d] - y[j * dim + d]).powi(2))
                .sum()
        };
        let mut perm: Vec<usize> = (0..lcm).collect();
        let mut best = (f64::INFINITY, perm.clone());
        let mut consider = |perm: &[usize]| {
            let total: f64 = perm.iter().enumerate().map(|(a, &b)| cost(a, b)).sum();
            if total < best.0 {
                best = (total, perm.to_vec());
            }
        };
        // Heap's algorithm, iterative: every permutation of `perm` once.
        consider(&perm);
        let mut c = vec![0; lcm];
        let mut i = 0;
        while i < lcm {
            if c[i] < i {
                if i % 2 == 0 {
                    perm.swap(0, i);
                } else {
                    perm.swap(c[i], i);
                }
                consider(&perm);
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        (0..n_x)
            .map(|i| {
                (0..copies_x)
                    .map(|c| best.1[i * copies_x + c] / copies_y)
                    .collect()
            })
            .collect()
    }

    /// For each `x_i`, the mean of `values` (rows of `dim`) over the `y` points assigned to it.
    fn assigned_mean(assignment: &[Vec<usize>], values: &[f64], dim: usize) -> Vec<Vec<f64>> {
        assignment
            .iter()
            .map(|js| {
                (0..dim)
                    .map(|d| js.iter().map(|&j| values[j * dim + d]).sum::<f64>() / js.len() as f64)
                    .collect()
            })
            .collect()
    }

    /// The barycentric projection `T(x_i)` of the brute-force assignment.
    fn brute_force_projection(x: &[f64], y: &[f64], dim: usize) -> Vec<Vec<f64>> {
        assigned_mean(&brute_force_assignment(x, y, dim), y, dim)
    }

    fn snapshots(times: Vec<f64>, dim: usize, clouds: Vec<Vec<f64>>) -> Snapshots {
        Snapshots::new(times, dim, clouds, None).expect("valid snapshots")
    }

    /// A rigid translation `x(t) = x₀ + c t`, each snapshot shuffled (unpaired), unequal steps:
    /// every scheme at every snapshot gives `c` to rounding. (The W2 plan between a cloud and its
    /// translate is the translation, whatever its size.)
    #[test]
    fn a_rigid_translation_is_recovered_exactly() {
        let mut rng = Rng64::seed_from_u64(3);
        let dim = 3;
        let x0 = uniform_cloud(&mut rng, 40, dim);
        let c = [0.7, -1.3, 2.1];
        let times = vec![0.0, 0.3, 0.45, 1.2];
        let clouds = times
            .iter()
            .map(|&t| {
                let moved: Vec<f64> = x0
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x + c[i % dim] * t)
                    .collect();
                shuffled(&mut rng, &moved, dim).0
            })
            .collect();
        let data = snapshots(times, dim, clouds);
        for index in 0..data.len() {
            for scheme in [Scheme::Forward, Scheme::Backward, Scheme::Central] {
                let v = ot_finite_difference(&data, index, scheme).expect("estimate");
                assert_eq!(v.dims(), &[40, dim]);
                for row in rows(&v) {
                    for (d, value) in row.iter().enumerate() {
                        assert!(
                            (value - c[d]).abs() < 1e-9,
                            "{scheme:?} at {index}: {value} vs {}",
                            c[d]
                        );
                    }
                }
            }
        }
    }

    /// Largest error of the estimate at the middle of three snapshots of a rigid rotation
    /// `x(t) = R(ωt) x₀` (ω = 1), with steps `h₋ = h`, `h₊ = 1.5 h`, each snapshot shuffled,
    /// against the true velocity `ω J x(t₁)`; also `max |x₀|`.
    fn rotation_error(h: f64, scheme: Scheme) -> (f64, f64) {
        let mut rng = Rng64::seed_from_u64(11);
        let x0 = uniform_cloud(&mut rng, 16, 2);
        let radius = x0.chunks(2).map(|p| p[0].hypot(p[1])).fold(0.0, f64::max);
        let rotate = |t: f64| -> Vec<f64> {
            let (s, c) = t.sin_cos();
            x0.chunks(2)
                .flat_map(|p| [c * p[0] - s * p[1], s * p[0] + c * p[1]])
                .collect()
        };
        let t1 = 0.4;
        let times = vec![t1 - h, t1, t1 + 1.5 * h];
        let middle = rotate(t1);
        let clouds = vec![
            shuffled(&mut rng, &rotate(times[0]), 2).0,
            middle.clone(),
            shuffled(&mut rng, &rotate(times[2]), 2).0,
        ];
        let data = snapshots(times, 2, clouds);
        let v = ot_finite_difference(&data, 1, scheme).expect("estimate");
        let error = rows(&v)
            .iter()
            .zip(middle.chunks(2))
            .map(|(v, x)| (v[0] + x[1]).hypot(v[1] - x[0]))
            .fold(0.0, f64::max);
        (error, radius)
    }

    /// On a slow rotation (displacements far below the spacing of 16 points, so the plan is the
    /// true pairing) the central estimate's error follows its `O(h₊h₋)` bound and halves twice
    /// per halving of the step; the forward estimate's follows `O(h)` and halves once.
    #[test]
    fn central_differences_are_second_order_and_forward_first_order_on_a_slow_rotation() {
        for h in [0.02, 0.01, 0.005] {
            let (central, radius) = rotation_error(h, Scheme::Central);
            let (central_half, _) = rotation_error(h / 2.0, Scheme::Central);
            let (forward, _) = rotation_error(h, Scheme::Forward);
            let (forward_half, _) = rotation_error(h / 2.0, Scheme::Forward);
            // Taylor bounds on the circle of radius r (|x''| = ω² r, |x'''| = ω³ r, ω = 1):
            // forward |(x(t+k) − x(t))/k − x'| ≤ k r / 2 with k = 1.5 h; central (weighted,
            // steps h and 1.5 h) ≤ h₊h₋ r / 6 = 1.5 h² r / 6.
            assert!(
                forward <= 1.5 * h * radius / 2.0,
                "forward h={h}: {forward}"
            );
            assert!(
                central <= 1.5 * h * h * radius / 6.0,
                "central h={h}: {central}"
            );
            let (ratio_c, ratio_f) = (central / central_half, forward / forward_half);
            assert!(
                (3.6..4.4).contains(&ratio_c),
                "central ratio {ratio_c} at h={h}"
            );
            assert!(
                (1.8..2.2).contains(&ratio_f),
                "forward ratio {ratio_f} at h={h}"
            );
        }
    }

    /// Unequal sizes: the barycentric projection of the simplex's plan equals the one of a
    /// brute-force optimal assignment of split copies, for sizes whose lcm is small.
    #[test]
    fn unequal_sizes_use_the_barycentric_projection_of_the_optimal_plan() {
        let mut rng = Rng64::seed_from_u64(5);
        for (n_x, n_y) in [
            (2, 3),
            (3, 2),
            (4, 2),
            (2, 4),
            (4, 8),
            (8, 4),
            (1, 5),
            (5, 1),
            (6, 3),
        ] {
            let x = uniform_cloud(&mut rng, n_x, 2);
            let y = uniform_cloud(&mut rng, n_y, 2);
            let dt = 0.25;
            let data = snapshots(vec![0.0, dt], 2, vec![x.clone(), y.clone()]);
            let v = rows(&ot_finite_difference(&data, 0, Scheme::Forward).expect("estimate"));
            let mapped = brute_force_projection(&x, &y, 2);
            assert_eq!(v.len(), n_x);
            for i in 0..n_x {
                for d in 0..2 {
                    let expected = (mapped[i][d] - x[i * 2 + d]) / dt;
                    assert!(
                        (v[i][d] - expected).abs() < 1e-12,
                        "({n_x}, {n_y}) point {i}: {} vs {expected}",
                        v[i][d]
                    );
                }
            }
            // Backward from y onto x, as the second of the two snapshots.
            let v = rows(&ot_finite_difference(&data, 1, Scheme::Backward).expect("estimate"));
            let mapped = brute_force_projection(&y, &x, 2);
            for j in 0..n_y {
                for d in 0..2 {
                    let expected = (y[j * 2 + d] - mapped[j][d]) / dt;
                    assert!(
                        (v[j][d] - expected).abs() < 1e-12,
                        "({n_x}, {n_y}) back {j}"
                    );
                }
            }
        }
    }

    /// The central estimate at a middle snapshot of three of sizes 4, 2, 8 is the weighted mean
    /// of the brute-force forward and backward differences.
    #[test]
    fn central_estimate_with_unequal_sizes_and_steps_matches_brute_force() {
        let mut rng = Rng64::seed_from_u64(9);
        let clouds: Vec<Vec<f64>> = [4, 2, 8]
            .iter()
            .map(|&n| uniform_cloud(&mut rng, n, 2))
            .collect();
        let times = vec![0.0, 0.2, 0.5];
        let data = snapshots(times, 2, clouds.clone());
        let v = rows(&ot_finite_difference(&data, 1, Scheme::Central).expect("estimate"));
        let forward = brute_force_projection(&clouds[1], &clouds[2], 2);
        let backward = brute_force_projection(&clouds[1], &clouds[0], 2);
        let (h_f, h_b) = (0.3, 0.2);
        for i in 0..2 {
            for d in 0..2 {
                let x = clouds[1][i * 2 + d];
                let d_f = (forward[i][d] - x) / h_f;
                let d_b = (x - backward[i][d]) / h_b;
                let expected = (h_b * d_f + h_f * d_b) / (h_f + h_b);
                assert!(
                    (v[i][d] - expected).abs() < 1e-12,
                    "point {i}: {} vs {expected}",
                    v[i][d]
                );
            }
        }
    }

    /// The ends fall back to one-sided differences; the estimate's shapes follow the snapshot.
    #[test]
    fn central_falls_back_to_one_sided_differences_at_the_ends() {
        let mut rng = Rng64::seed_from_u64(1);
        let clouds: Vec<Vec<f64>> = (0..3).map(|_| uniform_cloud(&mut rng, 5, 2)).collect();
        let data = snapshots(vec![0.0, 1.0, 3.0], 2, clouds);
        let est = |k, s| rows(&ot_finite_difference(&data, k, s).expect("estimate"));
        assert_eq!(est(0, Scheme::Central), est(0, Scheme::Forward));
        assert_eq!(est(0, Scheme::Backward), est(0, Scheme::Forward));
        assert_eq!(est(2, Scheme::Central), est(2, Scheme::Backward));
        assert_eq!(est(2, Scheme::Forward), est(2, Scheme::Backward));
        assert_ne!(est(1, Scheme::Central), est(1, Scheme::Forward));
    }

    /// A snapshot of one point sends all its mass to every point of the next: its velocity is
    /// towards their mean. A neighbour of one point receives everything: every velocity points
    /// at it.
    #[test]
    fn a_snapshot_of_one_point_has_a_defined_estimate() {
        let data = snapshots(
            vec![0.0, 0.5, 1.0],
            2,
            vec![
                vec![1.0, 2.0],
                vec![0.0, 0.0, 2.0, 0.0, 1.0, 3.0],
                vec![5.0, 5.0],
            ],
        );
        let v = rows(&ot_finite_difference(&data, 0, Scheme::Forward).expect("estimate"));
        assert_eq!(v.len(), 1);
        // mean of the next cloud = (1, 1); (1 − 1, 1 − 2) / 0.5.
        assert!(
            (v[0][0] - 0.0).abs() < 1e-12 && (v[0][1] + 2.0).abs() < 1e-12,
            "{v:?}"
        );
        let v = rows(&ot_finite_difference(&data, 1, Scheme::Forward).expect("estimate"));
        let middle = [[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]];
        for (v, x) in v.iter().zip(middle) {
            assert!((v[0] - (5.0 - x[0]) / 0.5).abs() < 1e-12);
            assert!((v[1] - (5.0 - x[1]) / 0.5).abs() < 1e-12);
        }
    }

    #[test]
    fn a_single_snapshot_or_a_missing_index_is_an_error_naming_the_snapshot() {
        let one = snapshots(vec![0.0], 2, vec![vec![0.0, 1.0, 2.0, 3.0]]);
        let message = ot_finite_difference(&one, 0, Scheme::Central)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("snapshot 0") && message.contains("only 1 snapshot"),
            "{message}"
        );
        let two = snapshots(vec![0.0, 1.0], 1, vec![vec![0.0], vec![1.0]]);
        let message = ot_finite_difference(&two, 5, Scheme::Forward)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("snapshot 5") && message.contains("2 snapshots"),
            "{message}"
        );
    }

    /// Carrying velocities from a shuffled copy of a cloud gives each point its own velocity
    /// back; with unequal sizes, the plan-weighted mean of a brute-force assignment.
    #[test]
    fn carried_velocities_follow_the_optimal_plan() {
        let mut rng = Rng64::seed_from_u64(21);
        let x = uniform_cloud(&mut rng, 30, 2);
        let v = uniform_cloud(&mut rng, 30, 2);
        let (x_shuffled, order) = shuffled(&mut rng, &x, 2);
        let v_shuffled: Vec<f64> = order
            .iter()
            .flat_map(|&i| [v[2 * i], v[2 * i + 1]])
            .collect();
        let tensor = |values: &[f64]| {
            Tensor::from_vec(values.to_vec(), (values.len() / 2, 2), &Device::Cpu).expect("tensor")
        };
        let carried = carry_velocities(&tensor(&x_shuffled), &tensor(&v_shuffled), &tensor(&x))
            .expect("carry");
        assert_eq!(
            carried
                .flatten_all()
                .expect("flat")
                .to_vec1::<f64>()
                .expect("values"),
            v
        );
        // Unequal sizes: observed 3 points, simulated 6 (two each): each observed point gets
        // the mean velocity of the simulated points a brute-force assignment gives it.
        let observed = uniform_cloud(&mut rng, 3, 2);
        let simulated = uniform_cloud(&mut rng, 6, 2);
        let velocities = uniform_cloud(&mut rng, 6, 2);
        let carried = rows(
            &carry_velocities(
                &tensor(&simulated),
                &tensor(&velocities),
                &tensor(&observed),
            )
            .expect("carry"),
        );
        let assignment = brute_force_assignment(&observed, &simulated, 2);
        let expected = assigned_mean(&assignment, &velocities, 2);
        for i in 0..3 {
            for d in 0..2 {
                assert!(
                    (carried[i][d] - expected[i][d]).abs() < 1e-12,
                    "point {i}: {} vs {}",
                    carried[i][d],
                    expected[i][d]
                );
            }
        }
        let wrong_shape =
            carry_velocities(&tensor(&simulated), &tensor(&observed), &tensor(&observed));
        let message = wrong_shape.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("velocities"), "{message}");
    }
}
