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
    /// Whatever the compile target allows, without FMA.
    Generic,
    /// AVX2 and FMA.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX-512 (F, VL, DQ, BW) and FMA.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

/// The best level this CPU supports (detected once).
pub(crate) fn detected_simd() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return SimdLevel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
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
    [SimdLevel::Generic, SimdLevel::Avx2, SimdLevel::Avx512]
        .into_iter()
        .filter(|&l| match best {
            SimdLevel::Generic => l == SimdLevel::Generic,
            SimdLevel::Avx2 => l != SimdLevel::Avx512,
            SimdLevel::Avx512 => true,
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
unsafe fn rows_avx512<T: Real, const P2: bool, const GRAD: bool>(
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    softmin_rows::<T, true, P2, GRAD>(columns, task.rows, task.row_start, task.out, task.grad, scratch);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2<T: Real, const P2: bool, const GRAD: bool>(
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    softmin_rows::<T, true, P2, GRAD>(columns, task.rows, task.row_start, task.out, task.grad, scratch);
}

fn rows_generic<T: Real, const P2: bool, const GRAD: bool>(
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    softmin_rows::<T, false, P2, GRAD>(columns, task.rows, task.row_start, task.out, task.grad, scratch);
}

fn run_rows<T: Real, const P2: bool, const GRAD: bool>(
    level: SimdLevel,
    columns: &Columns<'_, T>,
    task: &mut Task<'_, T>,
    scratch: &mut Scratch<T>,
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` is `Avx512` only when `detected_simd` found these features on this CPU
        // (or a test picked it from `available_simd`, which is bounded by the same detection).
        SimdLevel::Avx512 => unsafe { rows_avx512::<T, P2, GRAD>(columns, task, scratch) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, `Avx2` is only chosen when AVX2 and FMA were detected.
        SimdLevel::Avx2 => unsafe { rows_avx2::<T, P2, GRAD>(columns, task, scratch) },
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

fn run_task<T: Real>(level: SimdLevel, columns: &Columns<'_, T>, task: &mut Task<'_, T>) {
    let mut scratch = Scratch::new(task.rows.dim);
    let grad = !task.grad.is_empty();
    match (columns.cost, grad) {
        (Cost::HalfSquaredEuclidean, false) => run_rows::<T, true, false>(level, columns, task, &mut scratch),
        (Cost::HalfSquaredEuclidean, true) => run_rows::<T, true, true>(level, columns, task, &mut scratch),
        (Cost::Euclidean, false) => run_rows::<T, false, false>(level, columns, task, &mut scratch),
        (Cost::Euclidean, true) => run_rows::<T, false, true>(level, columns, task, &mut scratch),
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
        .map(|p| Columns::prepare(p, eps, cost))
        .collect();
    let total_pairs: usize = passes
        .iter()
        .map(|p| p.rows.n_points * p.cols.n_pad)
        .sum();
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
    if parallel {
        tasks
            .into_par_iter()
            .for_each(|mut t| run_task(level, &columns[t.pass_idx], &mut t));
    } else {
        for mut t in tasks {
            run_task(level, &columns[t.pass_idx], &mut t);
        }
    }
}
