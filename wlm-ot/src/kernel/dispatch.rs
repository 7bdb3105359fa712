//! Runs a batch of softmin passes: row tasks, rayon when the batch is large, best SIMD level.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::softmin::{softmin_rows, Columns, Cost, PassSpec, Scratch};
use super::Real;

/// Below this many (row, column) pairs in a batch, run on the calling thread.
const PARALLEL_MIN_PAIRS: usize = 1 << 16;
/// Target number of pairs per rayon task.
const PAIRS_PER_TASK: usize = 1 << 15;

/// Instruction set the kernels are compiled for, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimdLevel {
    /// The portable kernel of [`super::softmin`], compiled for whatever the target allows,
    /// without FMA.
    Generic,
    /// AVX2 and FMA: the explicit kernels of [`super::avx2`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX-512F and AVX-512DQ: the explicit kernels of [`super::avx512`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

/// The best level this CPU supports (detected once).
pub(crate) fn detected_simd() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if super::avx512::supported() {
                return SimdLevel::Avx512;
            }
            if super::avx2::supported() {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Generic
    })
}

/// Every level this CPU can run (for parity tests).
#[cfg(test)]
pub(crate) fn available_simd() -> Vec<SimdLevel> {
    let best = detected_simd();
    match best {
        SimdLevel::Generic => vec![SimdLevel::Generic],
        SimdLevel::Avx2 => vec![SimdLevel::Generic, SimdLevel::Avx2],
        SimdLevel::Avx512 => {
            // AVX-512F implies AVX2 on every CPU that has it, but FMA is a separate flag.
            let mut levels = vec![SimdLevel::Generic];
            if super::avx2::supported() {
                levels.push(SimdLevel::Avx2);
            }
            levels.push(SimdLevel::Avx512);
            levels
        }
    }
}

fn rows_generic<T: Real, const P2: bool, const GRAD: bool>(
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    softmin_rows::<T, false, P2, GRAD>(
        columns,
        task.rows,
        task.row_start,
        task.out,
        task.grad,
        scratch,
    );
}

fn run_rows<T: Real, const P2: bool, const GRAD: bool>(
    level: SimdLevel,
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    // The Avx2 and Avx512 arms are deliberately parallel: one call per instruction set, each
    // under its own detection guarantee.
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` is `Avx2` only when `detected_simd` found AVX2 and FMA on this CPU (or
        // a test picked it from `available_simd`, which is bounded by the same detection).
        SimdLevel::Avx2 => unsafe {
            T::softmin_rows_avx2::<P2, GRAD>(
                columns,
                task.rows,
                task.row_start,
                task.out,
                task.grad,
                scratch,
            )
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` is `Avx512` only when `detected_simd` found AVX-512F and DQ on this CPU (or a
        // test picked it from `available_simd`, which is bounded by the same detection).
        SimdLevel::Avx512 => unsafe {
            T::softmin_rows_avx512::<P2, GRAD>(
                columns,
                task.rows,
                task.row_start,
                task.out,
                task.grad,
                scratch,
            )
        },
        _ => rows_generic::<T, P2, GRAD>(columns, task, scratch),
    }
}

/// A contiguous block of rows of one pass.
pub(crate) struct Task<'a, T> {
    pass_idx: usize,
    rows: &'a super::Cloud<T>,
    row_start: usize,
    out: &'a mut [T],
    grad: &'a mut [T],
}

/// Runs the rows of one task: per tile, the logits and their maximum, then the sum.
/// `scratch` is reused across the tasks of one worker.
fn run_task<T: Real>(
    level: SimdLevel,
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    scratch.grad_acc.resize(task.rows.dim, T::ZERO);
    let grad = !task.grad.is_empty();
    match (columns.cost, grad) {
        (Cost::HalfSquaredEuclidean, false) => {
            run_rows::<T, true, false>(level, columns, task, scratch)
        }
        (Cost::HalfSquaredEuclidean, true) => {
            run_rows::<T, true, true>(level, columns, task, scratch)
        }
        (Cost::Euclidean, false) => run_rows::<T, false, false>(level, columns, task, scratch),
        (Cost::Euclidean, true) => run_rows::<T, false, true>(level, columns, task, scratch),
    }
}

/// Runs every pass of `passes` at temperature `eps` with the detected SIMD level.
pub(crate) fn run_passes<T: Real>(passes: Vec<PassSpec<'_, T>>, eps: f64, cost: Cost) {
    run_passes_with(detected_simd(), passes, eps, cost);
}

/// [`run_passes`] at a given SIMD level (which the CPU must support).
pub(crate) fn run_passes_with<T: Real>(
    level: SimdLevel,
    passes: Vec<PassSpec<'_, T>>,
    eps: f64,
    cost: Cost,
) {
    let columns: Vec<Columns<'_, T>> = passes
        .iter()
        .map(|p| Columns::prepare(p, eps, cost, level != SimdLevel::Generic))
        .collect();
    let total_pairs: usize = passes.iter().map(|p| p.rows.n_points * p.cols.n_pad).sum();
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && total_pairs >= PARALLEL_MIN_PAIRS;
    let mut tasks = Vec::new();
    for (pass_idx, pass) in passes.into_iter().enumerate() {
        let n_rows = pass.rows.n_points;
        let dim = pass.rows.dim;
        let rows_per_task = if parallel {
            (PAIRS_PER_TASK / pass.cols.n_pad)
                .clamp(1, n_rows.div_ceil(2 * threads))
                .max(1)
        } else {
            n_rows
        };
        let grads: Vec<&mut [T]> = match pass.grad {
            Some(g) => g.chunks_mut(rows_per_task * dim).collect(),
            None => Vec::new(),
        };
        let mut grads = grads.into_iter();
        for (chunk_idx, out) in pass.out.chunks_mut(rows_per_task).enumerate() {
            tasks.push(Task {
                pass_idx,
                rows: pass.rows,
                row_start: chunk_idx * rows_per_task,
                out,
                grad: grads.next().unwrap_or_default(),
            });
        }
    }
    let Some(dim) = tasks.first().map(|t| t.rows.dim) else {
        return;
    };
    if parallel {
        tasks.into_par_iter().for_each_init(
            || Scratch::new(dim),
            |scratch, mut t| run_task(level, &columns[t.pass_idx], &mut t, scratch),
        );
    } else {
        let mut scratch = Scratch::new(dim);
        for mut t in tasks {
            run_task(level, &columns[t.pass_idx], &mut t, &mut scratch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Cloud;

    /// Deterministic pseudo-random values in [0, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        crate::kernel::lcg_values(n, crate::kernel::lcg_step(seed))
    }

    /// `−ε LSE_j(h_j − C_ij/ε)` and `Σ_j P_ij ∇₁C` computed directly in f64.
    fn direct(
        x: &[f64],
        y: &[f64],
        dim: usize,
        h: &[f64],
        eps: f64,
        cost: Cost,
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut out, mut grad) = (Vec::new(), Vec::new());
        for xi in x.chunks(dim) {
            let mut z = Vec::new();
            let mut g = Vec::new();
            for (yj, hj) in y.chunks(dim).zip(h) {
                let sq: f64 = xi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum();
                let (c, scale) = match cost {
                    Cost::HalfSquaredEuclidean => (0.5 * sq, 1.0),
                    Cost::Euclidean => {
                        let c = sq.max(1e-8).sqrt();
                        (c, if sq >= 1e-8 { 1.0 / c } else { 0.0 })
                    }
                };
                z.push(hj - c / eps);
                g.push(
                    (0..dim)
                        .map(|k| scale * (xi[k] - yj[k]))
                        .collect::<Vec<_>>(),
                );
            }
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let w: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = w.iter().sum();
            out.push(-eps * (m + s.ln()));
            for k in 0..dim {
                grad.push(w.iter().zip(&g).map(|(wj, gj)| wj * gj[k]).sum::<f64>() / s);
            }
        }
        (out, grad)
    }

    #[test]
    fn every_simd_level_matches_a_direct_log_sum_exp_across_tiles() {
        // 2500 columns = three tiles; logits grow along the columns so the running maximum
        // moves and the sum is rescaled.
        let (n_rows, n_cols, dim) = (7, 2500, 3);
        let x = values(n_rows * dim, 1);
        let y = values(n_cols * dim, 2);
        let log_w: Vec<f64> = (0..n_cols)
            .map(|j| -(n_cols as f64).ln() + 1e-3 * j as f64)
            .collect();
        let pot: Vec<f64> = values(n_cols, 3).iter().map(|v| 0.01 * v).collect();
        let eps = 0.02;
        let h: Vec<f64> = log_w.iter().zip(&pot).map(|(l, g)| l + g / eps).collect();
        let center = vec![0.0; dim];
        let rows = Cloud::new(&x, dim, &center);
        let cols = Cloud::new(&y, dim, &center);
        for cost in [Cost::HalfSquaredEuclidean, Cost::Euclidean] {
            let (want, want_grad) = direct(&x, &y, dim, &h, eps, cost);
            for (level, with_grad) in available_simd()
                .into_iter()
                .flat_map(|l| [(l, true), (l, false)])
            {
                for parallel_sized in [false, true] {
                    let mut out = vec![0.0; n_rows];
                    let mut grad = vec![0.0; n_rows * dim];
                    let spec = PassSpec {
                        rows: &rows,
                        cols: &cols,
                        col_log_weights: &log_w,
                        col_potential: Some(&pot),
                        out: &mut out,
                        grad: with_grad.then_some(grad.as_mut_slice()),
                    };
                    // The second variant also runs a large unrelated pass so the batch is
                    // split into rayon tasks.
                    let big_rows = Cloud::new(&values(64 * dim, 4), dim, &center);
                    let mut big_out = vec![0.0; 64];
                    let mut passes = vec![spec];
                    if parallel_sized {
                        passes.push(PassSpec {
                            rows: &big_rows,
                            cols: &cols,
                            col_log_weights: &log_w,
                            col_potential: None,
                            out: &mut big_out,
                            grad: None,
                        });
                    }
                    run_passes_with(level, passes, eps, cost);
                    for (g, w) in out.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-13 * w.abs().max(1.0),
                            "{level:?} {cost:?}: {g} vs {w}"
                        );
                    }
                    if with_grad {
                        for (g, w) in grad.iter().zip(&want_grad) {
                            assert!((g - w).abs() < 1e-12, "{level:?} {cost:?}: grad {g} vs {w}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn skipping_negligible_columns_leaves_the_result_unchanged() {
        // 1024 columns near the rows, then 1024 far away (logits ~1e3 below the maximum, so
        // whole vectors are skipped), then near ones again; rows alternate so both the
        // skipping and the plain loop run.
        let (n_rows, dim) = (20, 2);
        let x: Vec<f64> = values(n_rows * dim, 7).iter().map(|v| 0.1 * v).collect();
        let mut y: Vec<f64> = values(1024 * dim, 8).iter().map(|v| 0.1 * v).collect();
        y.extend(values(1024 * dim, 9).iter().map(|v| 5.0 + v));
        y.extend(values(100 * dim, 10).iter().map(|v| 0.1 * v));
        let n_cols = y.len() / dim;
        let log_w = vec![-(n_cols as f64).ln(); n_cols];
        let center = vec![0.0; dim];
        let rows = Cloud::new(&x, dim, &center);
        let cols = Cloud::new(&y, dim, &center);
        let eps = 0.01;
        for cost in [Cost::HalfSquaredEuclidean, Cost::Euclidean] {
            let (want, want_grad) = direct(&x, &y, dim, &log_w, eps, cost);
            for level in available_simd() {
                let mut out = vec![0.0; n_rows];
                let mut grad = vec![0.0; n_rows * dim];
                let spec = PassSpec {
                    rows: &rows,
                    cols: &cols,
                    col_log_weights: &log_w,
                    col_potential: None,
                    out: &mut out,
                    grad: Some(&mut grad),
                };
                run_passes_with(level, vec![spec], eps, cost);
                for (g, w) in out.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-13 * w.abs().max(1.0),
                        "{level:?} {cost:?}: {g} vs {w}"
                    );
                }
                for (g, w) in grad.iter().zip(&want_grad) {
                    assert!((g - w).abs() < 1e-12, "{level:?} {cost:?}: grad {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn rows_whose_maxima_jump_match_the_direct_sum() {
        // Columns in a small ball around (1, 1); rows alternate, three at a time, between the
        // origin and the ball. The logits leave out the row constant |x|²/2ε, so their row
        // maximum moves by ~2/ε between the two groups: the one-pass path's guess (the previous
        // row's maximum) is off by far more than its window at small ε and the tile is redone
        // with two passes, while the other rows accept it. The spread within a row is small,
        // so rows do not switch to the skipping loop. No gradients, so the p = 2 AVX-512 kernel
        // takes its one-pass path.
        let (n_rows, n_cols, dim) = (40, 1500, 2);
        let x: Vec<f64> = values(n_rows * dim, 11)
            .iter()
            .enumerate()
            .map(|(k, v)| 0.01 * v + if (k / dim / 3) % 2 == 0 { 0.0 } else { 1.0 })
            .collect();
        let y: Vec<f64> = values(n_cols * dim, 12)
            .iter()
            .map(|v| 1.0 + 0.01 * v)
            .collect();
        let log_w = vec![-(n_cols as f64).ln(); n_cols];
        let center = vec![0.0; dim];
        let rows = Cloud::new(&x, dim, &center);
        let cols = Cloud::new(&y, dim, &center);
        for eps in [0.001, 0.05, 2.0] {
            for cost in [Cost::HalfSquaredEuclidean, Cost::Euclidean] {
                let (want, _) = direct(&x, &y, dim, &log_w, eps, cost);
                for level in available_simd() {
                    let mut out = vec![0.0; n_rows];
                    let spec = PassSpec {
                        rows: &rows,
                        cols: &cols,
                        col_log_weights: &log_w,
                        col_potential: None,
                        out: &mut out,
                        grad: None,
                    };
                    run_passes_with(level, vec![spec], eps, cost);
                    for (g, w) in out.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-13 * w.abs().max(1.0),
                            "{level:?} {cost:?} eps {eps}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn f32_passes_agree_with_f64_to_single_precision() {
        let (n_rows, n_cols, dim) = (5, 1500, 2);
        let x = values(n_rows * dim, 5);
        let y = values(n_cols * dim, 6);
        let log_w = vec![-(n_cols as f64).ln(); n_cols];
        let center = vec![0.5; dim];
        let eps = 0.01;
        for cost in [Cost::HalfSquaredEuclidean, Cost::Euclidean] {
            let rows = Cloud::new(&x, dim, &center);
            let cols = Cloud::new(&y, dim, &center);
            let mut out64 = vec![0.0; n_rows];
            run_passes(
                vec![PassSpec {
                    rows: &rows,
                    cols: &cols,
                    col_log_weights: &log_w,
                    col_potential: None,
                    out: &mut out64,
                    grad: None,
                }],
                eps,
                cost,
            );
            let to32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            let rows32 = Cloud::new(&to32(&x), dim, &to32(&center));
            let cols32 = Cloud::new(&to32(&y), dim, &to32(&center));
            let log_w32 = to32(&log_w);
            let mut out32 = vec![0.0f32; n_rows];
            run_passes(
                vec![PassSpec {
                    rows: &rows32,
                    cols: &cols32,
                    col_log_weights: &log_w32,
                    col_potential: None,
                    out: &mut out32,
                    grad: None,
                }],
                eps,
                cost,
            );
            for (a, b) in out32.iter().zip(&out64) {
                assert!(
                    (*a as f64 - b).abs() < 1e-5 * b.abs().max(eps),
                    "{cost:?}: {a} vs {b}"
                );
            }
        }
    }
}
