//! Row reductions with eight independent lanes (so LLVM vectorises them) and rayon row chunking.

use rayon::prelude::*;

use super::float::Float;

const LANES: usize = 8;

/// Maximum of a non-empty row.
#[inline(always)]
pub(crate) fn row_max<T: Float>(row: &[T]) -> T {
    let mut acc = [row[0]; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for lane in 0..LANES {
            acc[lane] = acc[lane].max_of(chunk[lane]);
        }
    }
    let mut best = acc[0];
    for &v in acc[1..].iter().chain(tail) {
        best = best.max_of(v);
    }
    best
}

/// `Σ_j a_j b_j`.
#[inline(always)]
pub(crate) fn row_dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for lane in 0..LANES {
            acc[lane] += xa[lane] * xb[lane];
        }
    }
    let mut total = T::ZERO;
    for (&x, &y) in ta.iter().zip(tb) {
        total += x * y;
    }
    fold(acc) + total
}

/// `Σ_j a_j`.
#[inline(always)]
pub(crate) fn row_sum<T: Float>(a: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let ca = a.chunks_exact(LANES);
    let ta = ca.remainder();
    for xa in ca {
        for lane in 0..LANES {
            acc[lane] += xa[lane];
        }
    }
    let mut total = T::ZERO;
    for &x in ta {
        total += x;
    }
    fold(acc) + total
}

#[inline(always)]
fn fold<T: Float>(acc: [T; LANES]) -> T {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Rows per rayon task so that each task touches about 32k elements.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (32_768 / row_len.max(1)).max(1)
}

/// Runs `kernel` in parallel on aligned chunks of `chunk` elements of the `K` inputs, each
/// call writing the matching chunks of `M` new outputs (zeros, of the first input's length).
/// Chunks are taken while every input has one left, like `zip` of `par_chunks`.
pub(crate) fn par_chunked<T: Float, const K: usize, const M: usize>(
    chunk: usize,
    inputs: [&[T]; K],
    kernel: impl Fn([&[T]; K], [&mut [T]; M]) + Sync,
) -> [Vec<T>; M] {
    let len = inputs.first().map_or(0, |x| x.len());
    let mut outputs: [Vec<T>; M] = std::array::from_fn(|_| vec![T::ZERO; len]);
    let mut ins = inputs.map(|x| x.chunks(chunk));
    let mut outs: Vec<_> = outputs.iter_mut().map(|o| o.chunks_mut(chunk)).collect();
    let mut tasks = Vec::new();
    loop {
        let i: [Option<&[T]>; K] = std::array::from_fn(|k| ins[k].next());
        let o: [Option<&mut [T]>; M] = std::array::from_fn(|m| outs[m].next());
        if i.iter().any(Option::is_none) || o.iter().any(Option::is_none) {
            break;
        }
        tasks.push((i.map(Option::unwrap), o.map(Option::unwrap)));
    }
    tasks.into_par_iter().for_each(|(i, o)| kernel(i, o));
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_reductions_equal_plain_loops() {
        for n in [1usize, 3, 8, 9, 17, 64, 100] {
            let a: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64) - 4.5).collect();
            let b: Vec<f64> = (0..n).map(|i| ((i * 5 % 13) as f64) * 0.25).collect();
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let sum: f64 = a.iter().sum();
            let max = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert!((row_dot(&a, &b) - dot).abs() < 1e-12);
            assert!((row_sum(&a) - sum).abs() < 1e-12);
            assert_eq!(row_max(&a), max);
        }
    }
}
