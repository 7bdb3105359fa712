//! An explicit AVX2+FMA f32 micro-kernel for `C (+)= A · B`: the fast path of the attention kernels' `gemm`.
//!
//! Deliberate duplication: the same blocked algorithm as [`super::avx512`] at another register
//! width (see there); change both together.
//!
//! Register tile: up to `6 × 16` (twelve ymm accumulators, two ymm for a row of `B`, one for a
//! broadcast entry of `A`: 15 of the 16 ymm registers). Column panels of `B` (`k × 16`) are the
//! outer loop, so a panel stays in L1 while every row tile of `A` passes over it; the rows are
//! split into tiles of near-equal height (`m = 32` → 6, 6, 5, 5, 5, 5; `m = 16` → 6, 5, 5), so no
//! thin tile runs latency-bound on a few accumulators; the inner dimension is blocked by
//! `KC = 256` (the `k = n` products); `k = 16` (the wide `S = Q Kᵀ`, `dP = G Vᵀ`) runs a
//! const-unrolled tile; the last `n mod 16` columns use masked loads and stores. The generic [`super::gemm_generic`] stays the fallback (f64, no
//! AVX2, not x86-64) and the tests' reference.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Most rows of a register tile.
#[cfg(target_arch = "x86_64")]
const MR: usize = 6;
/// Columns of a register tile (two 8-lane vectors).
#[cfg(target_arch = "x86_64")]
const NR: usize = 16;
/// Most steps of the inner dimension per pass over `C`.
#[cfg(target_arch = "x86_64")]
const KC: usize = 256;

/// `C[i][j] (+)= Σ_p A[i][p] B[p][j]` (row-major, leading dimensions `lda`, `ldb`, `ldc`;
/// `accumulate = false` overwrites `C`) with the AVX2 micro-kernel, when the CPU has AVX2 and
/// FMA. Returns whether it ran; `false` leaves `C` untouched.
///
/// # Panics
/// If a slice is too short for its shape and leading dimension (a bug in the caller).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(super) fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !wlm_numeric::has_avx2_fma() {
            return false;
        }
        if super::checked_or_trivial(m, n, k, a, lda, b, ldb, c, ldc, accumulate) {
            return true;
        }
        // SAFETY: the CPU has AVX2 and FMA (checked just above), the only requirement of the
        // `target_feature` function. `checked_or_trivial` returned `false`: `k, m, n ≥ 1` and
        // its bound checks cover every element the kernel reads or writes: `A[i·lda + p]` for `i < m`, `p < k`,
        // `B[p·ldb + j]` for `p < k`, `j < n` and `C[i·ldc + j]` for `i < m`, `j < n` (the
        // masked loads and stores of a column tail touch only lanes `j < n`). `c` is a unique
        // borrow, so it overlaps neither `a` nor `b`.
        unsafe {
            gemm_avx2(
                m,
                n,
                k,
                a.as_ptr(),
                lda,
                b.as_ptr(),
                ldb,
                c.as_mut_ptr(),
                ldc,
                accumulate,
            )
        };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The panel and tile loops of [`gemm_f32`].
///
/// # Safety
/// The CPU has AVX2 and FMA; `m, n, k ≥ 1`; `a` is valid for reads of `A[i·lda + p]`
/// (`i < m`, `p < k`), `b` of `B[p·ldb + j]` (`p < k`, `j < n`), `c` for reads and writes of
/// `C[i·ldc + j]` (`i < m`, `j < n`), and `c`'s elements overlap neither `a`'s nor `b`'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx2(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // Blocks of the inner dimension, so that a `KC × 16` panel of `B` (16 KB) stays in L1
    // while the row tiles pass over it (the `k = n` products: `O = P V`, `dQ = dS K`).
    let mut p0 = 0;
    while p0 < k {
        let kc = (k - p0).min(KC);
        // SAFETY: rows `p0..p0 + kc` of `B` and columns `p0..p0 + kc` of `A` lie inside the
        // caller's `k`; the later blocks add onto what the first wrote.
        unsafe {
            panels(
                m,
                n,
                kc,
                a.add(p0),
                lda,
                b.add(p0 * ldb),
                ldb,
                c,
                ldc,
                accumulate || p0 > 0,
            )
        };
        p0 += kc;
    }
}

/// The column panels and row tiles of [`gemm_avx2`] for one block of the inner dimension.
///
/// # Safety
/// As [`gemm_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn panels(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let tiles = m.div_ceil(MR);
    // The first `extra` tiles have `base + 1` rows, the others `base` (1 ≤ base ≤ MR).
    let (base, extra) = (m / tiles, m % tiles);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut j = 0;
    while j < n {
        let width = (n - j).min(NR);
        let w = _mm256_set1_epi32(width as i32);
        // Lane `l` of the first (second) half is live iff `l < width` (`l + 8 < width`).
        let mask = [
            _mm256_cmpgt_epi32(w, lanes),
            _mm256_cmpgt_epi32(w, _mm256_add_epi32(lanes, _mm256_set1_epi32(8))),
        ];
        let mut i = 0;
        for t in 0..tiles {
            let h = base + usize::from(t < extra);
            // SAFETY: rows `i..i + h` lie below `m` (the heights sum to `m`) and columns
            // `j..j + width` below `n`, so the tile touches only the elements the caller
            // vouched for; the offsets stay inside those allocations.
            unsafe {
                tile_of_height(
                    h,
                    width == NR,
                    k,
                    a.add(i * lda),
                    lda,
                    b.add(j),
                    ldb,
                    c.add(i * ldc + j),
                    ldc,
                    accumulate,
                    mask,
                )
            };
            i += h;
        }
        j += width;
    }
}

/// Runs the tile of height `h` (`1..=MR`), full (`NR` columns) or masked.
///
/// # Safety
/// As [`tile`], for `H = h` and `MASKED = !full`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_of_height(
    h: usize,
    full: bool,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    mask: [__m256i; 2],
) {
    macro_rules! go {
        ($h:literal) => {
            match (full, k == 16) {
                (true, true) => tile::<$h, false, 16>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
                (true, false) => tile::<$h, false, 0>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
                (false, _) => tile::<$h, true, 0>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
            }
        };
    }
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match h {
            6 => go!(6),
            5 => go!(5),
            4 => go!(4),
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
    }
}

/// One `H × 16` tile: `C (+)= A · B` over `k` steps, with a row of `B` in two ymm registers and
/// the entries of `A` broadcast. `MASKED`: only the lanes of `mask` exist in `B` and `C`.
///
/// # Safety
/// The CPU has AVX2 and FMA; `k ≥ 1`; `a` is valid for reads of `a[r·lda + p]` (`r < H`,
/// `p < k`); `b` of `b[p·ldb + l]` and `c` for reads and writes of `c[r·ldc + l]` for every
/// live lane `l` (all `l < 16` unless `MASKED`, else the lanes set in `mask`, which are a
/// prefix); `c` overlaps neither `a` nor `b`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const H: usize, const MASKED: bool, const K: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    mask: [__m256i; 2],
) {
    // SAFETY: every pointer read or written below is `a + r·lda + p`, `b + p·ldb (+ 8)` or
    // `c + r·ldc (+ 8)` with `r < H`, `p < k`, which the contract makes valid for full tiles;
    // for masked tiles the second half's address is formed with `wrapping_add` (it may lie
    // past the allocation) and the masked loads and stores touch only live lanes, which the
    // contract makes valid. AVX2 and FMA are enabled on this function.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; H];
        if accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                *row = load::<MASKED>(c.add(r * ldc), mask);
            }
        }
        let mut a_rows = [a; H];
        for (r, row) in a_rows.iter_mut().enumerate() {
            *row = a.add(r * lda);
        }
        // `K > 0`: the inner dimension is `K` (= `k`), a constant, so the loop unrolls.
        let k = if K > 0 { K } else { k };
        let mut b_row = b;
        for p in 0..k {
            let [b0, b1] = load::<MASKED>(b_row, mask);
            for r in 0..H {
                let av = _mm256_set1_ps(*a_rows[r].add(p));
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
            b_row = b_row.wrapping_add(ldb);
        }
        for (r, row) in acc.iter().enumerate() {
            let ptr = c.add(r * ldc);
            if MASKED {
                _mm256_maskstore_ps(ptr, mask[0], row[0]);
                _mm256_maskstore_ps(ptr.wrapping_add(8), mask[1], row[1]);
            } else {
                _mm256_storeu_ps(ptr, row[0]);
                _mm256_storeu_ps(ptr.add(8), row[1]);
            }
        }
    }
}

/// The 16 floats at `ptr` as two vectors; `MASKED`: only the lanes of `mask`, zeros elsewhere.
///
/// # Safety
/// The CPU has AVX2; `ptr[l]` is valid for reads for every live lane `l` (all `l < 16`
/// unless `MASKED`, else the lanes set in `mask`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load<const MASKED: bool>(ptr: *const f32, mask: [__m256i; 2]) -> [__m256; 2] {
    // SAFETY: by the contract; the second half's address is formed with `wrapping_add` when
    // masked (it may lie past the allocation, and only its live lanes are read).
    unsafe {
        if MASKED {
            [
                _mm256_maskload_ps(ptr, mask[0]),
                _mm256_maskload_ps(ptr.wrapping_add(8), mask[1]),
            ]
        } else {
            [_mm256_loadu_ps(ptr), _mm256_loadu_ps(ptr.add(8))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{gemm, gemm_generic};
    use super::*;
    use rand::{Rng, SeedableRng};
    use wlm_numeric::has_avx2_fma;

    /// Fresh uniform values in `[−1, 1)`.
    fn uniform(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Checks `gemm_f32` against the naive triple loop (in f64) and the generic `gemm` for one
    /// shape; `C` has padding between rows (`ldc > n`) that must stay untouched.
    #[allow(clippy::too_many_arguments)]
    fn check(
        rng: &mut rand::rngs::StdRng,
        m: usize,
        n: usize,
        k: usize,
        lda: usize,
        ldb: usize,
        ldc: usize,
        accumulate: bool,
    ) {
        let what = format!("m={m} n={n} k={k} lda={lda} ldb={ldb} ldc={ldc} acc={accumulate}");
        let a = uniform(rng, m.max(1) * lda);
        let b = uniform(rng, k.max(1) * ldb);
        let c0 = uniform(rng, m * ldc);
        let mut fast = c0.clone();
        let ran = gemm_f32(m, n, k, &a, lda, &b, ldb, &mut fast, ldc, accumulate);
        assert_eq!(ran, has_avx2_fma(), "{what}: ran = {ran}");
        if !ran {
            return; // No AVX2 here: nothing to check (the generic path has its own test).
        }
        let mut generic = c0.clone();
        gemm_generic(m, n, k, &a, lda, &b, ldb, &mut generic, ldc, accumulate);
        // Rounding of a k-term f32 sum: ≤ k·ε·Σ|terms| (plus the accumulated start value).
        let tol = |mag: f64| 2.0 * (k as f64 + 1.0) * f32::EPSILON as f64 * mag + 1e-30;
        for i in 0..m {
            for j in 0..ldc {
                let idx = i * ldc + j;
                if j >= n {
                    assert_eq!(fast[idx].to_bits(), c0[idx].to_bits(), "{what}: padding");
                    continue;
                }
                let start = if accumulate { c0[idx] as f64 } else { 0.0 };
                let (mut want, mut mag) = (start, start.abs());
                for p in 0..k {
                    let term = a[i * lda + p] as f64 * b[p * ldb + j] as f64;
                    want += term;
                    mag += term.abs();
                }
                let (got, reference) = (fast[idx] as f64, generic[idx] as f64);
                assert!(
                    (got - want).abs() <= tol(mag),
                    "{what}: C[{i}][{j}] = {got}, naive {want}"
                );
                assert!(
                    (got - reference).abs() <= 2.0 * tol(mag),
                    "{what}: C[{i}][{j}] = {got}, generic {reference}"
                );
            }
        }
    }

    #[test]
    fn avx2_kernel_equals_the_naive_product_for_every_tile_remainder() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for m in 1..=14 {
            for &n in &[1usize, 5, 8, 9, 15, 16, 17, 24, 33, 47] {
                for &k in &[0usize, 1, 2, 7, 16, 17, 40] {
                    for accumulate in [false, true] {
                        // Tight and padded leading dimensions.
                        check(&mut rng, m, n, k, k, n, n, accumulate);
                        check(&mut rng, m, n, k, k + 3, n + 5, n + 2, accumulate);
                    }
                }
            }
        }
    }

    #[test]
    fn avx2_kernel_handles_the_attention_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for &n in &[256usize, 1000] {
            for rows in [32usize, 31, 8] {
                check(&mut rng, rows, n, 16, 16, n, n, false); // S = Q Kᵀ
                check(&mut rng, rows, 16, n, n, 16, 16, true); // O = P V (accumulating)
                check(&mut rng, 16, n, rows, rows, n, n, true); // dKᵀ += Qᵀ dS
            }
        }
    }

    #[test]
    fn dispatching_gemm_uses_a_correct_kernel_for_f32() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (m, n, k) = (13, 37, 19);
        let a = uniform(&mut rng, m * k);
        let b = uniform(&mut rng, k * n);
        let mut got = vec![7.0f32; m * n];
        gemm(m, n, k, &a, k, &b, n, &mut got, n, false);
        let mut want = vec![0.0f32; m * n];
        gemm_generic(m, n, k, &a, k, &b, n, &mut want, n, false);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }
}
