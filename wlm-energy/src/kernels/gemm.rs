//! A small register-blocked matrix product `C (+)= A · B` on row-major slices, for the fused attention.
//!
//! Written so that LLVM keeps a `4 × 16` accumulator tile in vector registers when the caller
//! is compiled with AVX2 (see `simd_dispatch!`): per step of the inner dimension, one row of
//! `B` is loaded as vectors and four entries of `A` are broadcast.

use super::float::Float;

mod avx2;
mod avx512;

/// Rows of the register tile (4 measured best on Zen 4 with AVX2 and AVX-512: larger tiles
/// spill).
const MR: usize = 4;
/// Columns of the register tile.
const NR: usize = 16;

/// `C[i][j] (+)= Σ_p A[i][p] B[p][j]` for `i < m`, `j < n`, `p < k`, with leading dimensions
/// `lda`, `ldb`, `ldc` (row-major). `accumulate = false` overwrites `C`.
///
/// Runs a fast kernel where the type has one (f32: the AVX-512 micro-kernel of [`avx512`],
/// else the AVX2 one of [`avx2`], whichever this CPU runs), else [`gemm_generic`].
///
/// # Panics
/// If a slice is too short for its shape and leading dimension (a bug in the caller).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
) {
    let fast = match (T::as_f32(a), T::as_f32(b), T::as_f32_mut(c)) {
        (Some(a), Some(b), Some(c)) => {
            avx512::gemm_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
                || avx2::gemm_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
        }
        _ => false,
    };
    if !fast {
        gemm_generic(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }
}

/// [`gemm`] in plain Rust for any [`Float`]: the fallback and the fast kernels' test reference.
///
/// # Panics
/// If a slice is too short for its shape and leading dimension (a bug in the caller).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_generic<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k, "gemm: A too short");
    assert!(k == 0 || b.len() >= (k - 1) * ldb + n, "gemm: B too short");
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: C too short");
    let n_full = n / NR * NR;
    let mut i = 0;
    while i + MR <= m {
        let mut j = 0;
        while j < n_full {
            tile::<T, MR>(i, j, k, a, lda, b, ldb, c, ldc, accumulate);
            j += NR;
        }
        if n_full < n {
            tail::<T, MR>(i, n_full, n - n_full, k, a, lda, b, ldb, c, ldc, accumulate);
        }
        i += MR;
    }
    while i < m {
        let mut j = 0;
        while j < n_full {
            tile::<T, 1>(i, j, k, a, lda, b, ldb, c, ldc, accumulate);
            j += NR;
        }
        if n_full < n {
            tail::<T, 1>(i, n_full, n - n_full, k, a, lda, b, ldb, c, ldc, accumulate);
        }
        i += 1;
    }
}

/// One `M × NR` tile at row `i`, column `j`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<T: Float, const M: usize>(
    i: usize,
    j: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[T::ZERO; NR]; M];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&c[(i + r) * ldc + j..(i + r) * ldc + j + NR]);
        }
    }
    let a_rows: [&[T]; M] = std::array::from_fn(|r| &a[(i + r) * lda..(i + r) * lda + k]);
    for p in 0..k {
        let b_row: &[T; NR] = b[p * ldb + j..p * ldb + j + NR]
            .try_into()
            .expect("NR-wide slice");
        for r in 0..M {
            let av = a_rows[r][p];
            for l in 0..NR {
                acc[r][l] = av.mul_add_v(b_row[l], acc[r][l]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[(i + r) * ldc + j..(i + r) * ldc + j + NR].copy_from_slice(row);
    }
}

/// The last `width < NR` columns of `M` rows.
///
/// Deliberately mirrors [`tile`] with a run-time width: `tile`'s loops keep the compile-time
/// bound `NR` so that LLVM vectorises them, which a shared width parameter would lose.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tail<T: Float, const M: usize>(
    i: usize,
    j: usize,
    width: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[T::ZERO; NR]; M];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            row[..width].copy_from_slice(&c[(i + r) * ldc + j..(i + r) * ldc + j + width]);
        }
    }
    for p in 0..k {
        let b_row = &b[p * ldb + j..p * ldb + j + width];
        for r in 0..M {
            let av = a[(i + r) * lda + p];
            for (acc_l, &bl) in acc[r].iter_mut().zip(b_row) {
                *acc_l = av.mul_add_v(bl, *acc_l);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[(i + r) * ldc + j..(i + r) * ldc + j + width].copy_from_slice(&row[..width]);
    }
}

/// The slice checks every fast kernel makes before its `unsafe` call, and the shapes with
/// nothing to multiply: returns `true` when the product is done (`m` or `n` zero; `k` zero,
/// where `C` is zeroed unless `accumulate`), `false` when `m, n, k ≥ 1` and every element of
/// `A` (`i < m`, `p < k`), `B` (`p < k`, `j < n`) and `C` (`i < m`, `j < n`) is in bounds.
///
/// # Panics
/// If a slice is too short for its shape and leading dimension (a bug in the caller).
#[allow(clippy::too_many_arguments)]
pub(super) fn checked_or_trivial<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    assert!(a.len() >= (m - 1) * lda + k, "gemm: A too short");
    assert!(k == 0 || b.len() >= (k - 1) * ldb + n, "gemm: B too short");
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: C too short");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * ldc..i * ldc + n].fill(T::ZERO);
            }
        }
        return true;
    }
    false
}

/// `out (cols × rows) = inᵀ` for a row-major `rows × cols` block with leading dimension `ld`.
/// Walks `TILE × TILE` tiles so that both the reads and the strided writes stay in L1.
#[inline]
pub(crate) fn transpose<T: Float>(input: &[T], rows: usize, cols: usize, ld: usize, out: &mut [T]) {
    const TILE: usize = 16;
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        input.len() >= (rows - 1) * ld + cols && out.len() >= rows * cols,
        "transpose: short slice"
    );
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for r in r0..r1 {
                let row = &input[r * ld + c0..r * ld + c1];
                for (col, &v) in (c0..c1).zip(row) {
                    out[col * rows + r] = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_equals_the_naive_product_for_all_tile_remainders() {
        for &(m, n, k) in &[
            (1usize, 1usize, 1usize),
            (4, 16, 3),
            (7, 37, 5),
            (9, 33, 17),
            (13, 5, 40),
        ] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7 % 13) as f64) - 6.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 5 % 11) as f64) * 0.5).collect();
            let want = naive(m, n, k, &a, &b);
            let mut c = vec![1.0; m * n];
            gemm_generic(m, n, k, &a, k, &b, n, &mut c, n, false);
            assert_eq!(c, want, "m={m} n={n} k={k}");
            gemm_generic(m, n, k, &a, k, &b, n, &mut c, n, true);
            let twice: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
            assert_eq!(c, twice);
        }
    }

    #[test]
    fn blocked_transpose_equals_the_index_definition_with_a_leading_dimension() {
        for &(rows, cols, ld) in &[
            (1usize, 1usize, 1usize),
            (17, 33, 40),
            (40, 16, 16),
            (3, 50, 51),
        ] {
            let input: Vec<f64> = (0..rows * ld).map(|i| i as f64 * 0.5 - 3.0).collect();
            let mut out = vec![f64::NAN; rows * cols];
            transpose(&input, rows, cols, ld, &mut out);
            for r in 0..rows {
                for col in 0..cols {
                    assert_eq!(
                        out[col * rows + r],
                        input[r * ld + col],
                        "{rows}x{cols} ld {ld}"
                    );
                }
            }
        }
    }

    #[test]
    fn transpose_swaps_indices() {
        let input: Vec<f64> = (0..12).map(|v| v as f64).collect(); // 3 × 4
        let mut out = vec![0.0; 12];
        transpose(&input, 3, 4, 4, &mut out);
        assert_eq!(out[3 + 2], input[2 * 4 + 1]); // out[1][2] = in[2][1]
        assert_eq!(out, vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]);
    }
}
