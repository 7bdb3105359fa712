//! An explicit AVX-512 f32 micro-kernel for `C (+)= A · B`: the first choice of the attention
//! kernels' `gemm` where the CPU has AVX-512F.
//!
//! Deliberate duplication: this file and [`super::avx2`] are the same blocked algorithm written
//! twice, once per register width and instruction set (`duplicates` pairs them, and the tiles
//! inside each file pair with each other). A macro over both would hide the intrinsics, which
//! are the point of these files; change both together.
//!
//! The shape of [`super::avx2`] with 16-lane zmm registers and twice the register file:
//! tiles of up to `12 × 32` (24 zmm accumulators, two zmm for a row of `B`, one for a broadcast
//! entry of `A`: 27 of the 32 registers), or `12 × 16` for a last column panel of at most 16
//! columns (the `n = c = 16` products of the 4-head energies, `O = P V`). Column panels of `B`
//! are the outer loop and the inner dimension is blocked by `KC = 256` (a `KC × 32` panel is
//! 32 KB, inside a 48 KB L1d); `k = 16` runs a const-unrolled tile; column tails use masked
//! loads and stores (AVX-512 masks suppress faults on the lanes they leave out).
//!
//! On cores with two 512-bit FMA units (Intel Xeon since Skylake-SP) this doubles the
//! products' peak over the 8-lane kernel; on Zen 4, which splits a 512-bit FMA into two 256-bit
//! halves, the peak is the same. `WLM_GEMM=avx2` in the environment (read once) keeps the AVX2
//! kernel, for side-by-side measurements.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Most rows of a register tile.
#[cfg(target_arch = "x86_64")]
const MR: usize = 12;
/// Columns of a full register tile (two 16-lane vectors).
#[cfg(target_arch = "x86_64")]
const NR: usize = 32;
/// Most steps of the inner dimension per pass over `C`.
#[cfg(target_arch = "x86_64")]
const KC: usize = 256;

/// Whether this kernel may run: the CPU has AVX-512F (with AVX2 and FMA, as [`wlm_numeric::has_avx512`]
/// checks) and `WLM_GEMM` is not `avx2`.
pub(super) fn enabled() -> bool {
    use std::sync::OnceLock;
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        wlm_numeric::has_avx512() && std::env::var("WLM_GEMM").map_or(true, |v| v != "avx2")
    })
}

/// `C[i][j] (+)= Σ_p A[i][p] B[p][j]` (row-major, leading dimensions `lda`, `ldb`, `ldc`;
/// `accumulate = false` overwrites `C`) with the AVX-512 micro-kernel, when [`enabled`].
/// Returns whether it ran; `false` leaves `C` untouched.
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
        if !enabled() {
            return false;
        }
        if super::checked_or_trivial(m, n, k, a, lda, b, ldb, c, ldc, accumulate) {
            return true;
        }
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (`enabled` checked it), the only
        // requirement of the `target_feature` function. `checked_or_trivial` returned
        // `false`: `k, m, n ≥ 1` and its bound checks cover every element the kernel reads or writes: `A[i·lda + p]` for
        // `i < m`, `p < k`, `B[p·ldb + j]` for `p < k`, `j < n` and `C[i·ldc + j]` for
        // `i < m`, `j < n` (the masked loads and stores of a column tail touch only lanes
        // `j < n`). `c` is a unique borrow, so it overlaps neither `a` nor `b`.
        unsafe {
            gemm_avx512(
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

/// The inner-dimension blocks of [`gemm_f32`].
///
/// # Safety
/// The CPU has AVX-512F, AVX2 and FMA; `m, n, k ≥ 1`; `a` is valid for reads of
/// `A[i·lda + p]` (`i < m`, `p < k`), `b` of `B[p·ldb + j]` (`p < k`, `j < n`), `c` for reads
/// and writes of `C[i·ldc + j]` (`i < m`, `j < n`), and `c`'s elements overlap neither `a`'s
/// nor `b`'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx512(
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

/// The column panels and row tiles of [`gemm_avx512`] for one block of the inner dimension.
///
/// # Safety
/// As [`gemm_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
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
    let mut j = 0;
    while j < n {
        let width = (n - j).min(NR);
        // Lane `l` of the first (second) vector is live iff `l < width` (`l + 16 < width`).
        let live = |w: usize| -> __mmask16 {
            if w >= 16 {
                0xFFFF
            } else {
                ((1u32 << w) - 1) as __mmask16
            }
        };
        let mask = [live(width), live(width.saturating_sub(16))];
        let mut i = 0;
        for t in 0..tiles {
            let h = base + usize::from(t < extra);
            // SAFETY: rows `i..i + h` lie below `m` (the heights sum to `m`) and columns
            // `j..j + width` below `n`, so the tile touches only the elements the caller
            // vouched for; the offsets stay inside those allocations.
            unsafe {
                tile_of_height(
                    h,
                    width,
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

/// Runs the tile of height `h` (`1..=MR`) and `width` columns (`1..=NR`): two vectors per row
/// above 16 columns, one up to 16; masked unless the vectors are full.
///
/// # Safety
/// As [`tile`], for `H = h`, the `W` and `MASKED` that `width` selects, and `mask` the lanes
/// below `width`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_of_height(
    h: usize,
    width: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    mask: [__mmask16; 2],
) {
    macro_rules! go {
        ($h:literal) => {
            match (width, k == 16) {
                (NR, true) => tile::<$h, 2, false, 16>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
                (NR, false) => tile::<$h, 2, false, 0>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
                (16, true) => tile::<$h, 1, false, 16>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
                (16, false) => tile::<$h, 1, false, 0>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
                (w, _) if w > 16 => {
                    tile::<$h, 2, true, 0>(k, a, lda, b, ldb, c, ldc, accumulate, mask)
                }
                _ => tile::<$h, 1, true, 0>(k, a, lda, b, ldb, c, ldc, accumulate, mask),
            }
        };
    }
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match h {
            12 => go!(12),
            11 => go!(11),
            10 => go!(10),
            9 => go!(9),
            8 => go!(8),
            7 => go!(7),
            6 => go!(6),
            5 => go!(5),
            4 => go!(4),
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
    }
}

/// One `H × 16W` tile: `C (+)= A · B` over `k` steps, with a row of `B` in `W` zmm registers
/// and the entries of `A` broadcast. `MASKED`: only the lanes of `mask` exist in `B` and `C`.
///
/// # Safety
/// The CPU has AVX-512F; `k ≥ 1`; `a` is valid for reads of `a[r·lda + p]` (`r < H`,
/// `p < k`); `b` of `b[p·ldb + l]` and `c` for reads and writes of `c[r·ldc + l]` for every
/// live lane `l` (all `l < 16W` unless `MASKED`, else the lanes set in `mask`, vector `v`
/// holding lanes `16v..16v + 16`); `c` overlaps neither `a` nor `b`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const H: usize, const W: usize, const MASKED: bool, const K: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    mask: [__mmask16; 2],
) {
    // SAFETY: every pointer read or written below is `a + r·lda + p`, `b + p·ldb + 16v` or
    // `c + r·ldc + 16v` with `r < H`, `p < k`, `v < W`, which the contract makes valid for
    // full tiles; for masked tiles the addresses are formed with `wrapping_add` (a second
    // vector's may lie past the allocation) and the masked loads and stores touch only live
    // lanes, which the contract makes valid. AVX-512F is enabled on this function.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); W]; H];
        if accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                *row = load::<W, MASKED>(c.wrapping_add(r * ldc), mask);
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
            let bv = load::<W, MASKED>(b_row, mask);
            for r in 0..H {
                let av = _mm512_set1_ps(*a_rows[r].add(p));
                for v in 0..W {
                    acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
                }
            }
            b_row = b_row.wrapping_add(ldb);
        }
        for (r, row) in acc.iter().enumerate() {
            let ptr = c.wrapping_add(r * ldc);
            for (v, value) in row.iter().enumerate() {
                if MASKED {
                    _mm512_mask_storeu_ps(ptr.wrapping_add(16 * v), mask[v], *value);
                } else {
                    _mm512_storeu_ps(ptr.add(16 * v), *value);
                }
            }
        }
    }
}

/// The `16W` floats at `ptr` as `W` vectors; `MASKED`: only the lanes of `mask`, zeros
/// elsewhere.
///
/// # Safety
/// The CPU has AVX-512F; `ptr[l]` is valid for reads for every live lane `l` (all `l < 16W`
/// unless `MASKED`, else the lanes set in `mask`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn load<const W: usize, const MASKED: bool>(
    ptr: *const f32,
    mask: [__mmask16; 2],
) -> [__m512; W] {
    let mut out = [_mm512_setzero_ps(); W];
    // SAFETY: by the contract; the addresses are formed with `wrapping_add` when masked (a
    // second vector's may lie past the allocation, and only its live lanes are read).
    unsafe {
        for (v, value) in out.iter_mut().enumerate() {
            *value = if MASKED {
                _mm512_maskz_loadu_ps(mask[v], ptr.wrapping_add(16 * v))
            } else {
                _mm512_loadu_ps(ptr.add(16 * v))
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{gemm, gemm_generic};
    use super::*;
    use rand::{Rng, SeedableRng};

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
        assert_eq!(ran, enabled(), "{what}: ran = {ran}");
        if !ran {
            return; // No AVX-512 here: nothing to check (the other kernels have their tests).
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
    fn avx512_kernel_equals_the_naive_product_for_every_tile_remainder() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x512);
        for m in (1..=26).chain([37]) {
            for &n in &[1usize, 5, 15, 16, 17, 31, 32, 33, 47, 48, 65] {
                for &k in &[0usize, 1, 2, 7, 16, 17, 40, 300] {
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
    fn avx512_kernel_handles_the_attention_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for &n in &[256usize, 400, 1000] {
            for rows in [32usize, 31, 8] {
                check(&mut rng, rows, n, 16, 16, n, n, false); // S = Q Kᵀ
                check(&mut rng, rows, 16, n, n, 16, 16, true); // O = P V (accumulating)
                check(&mut rng, 16, n, rows, rows, n, n, true); // dKᵀ += Qᵀ dS
                check(&mut rng, rows, 256, n, n, 256, 256, true); // one head of c = 256
            }
        }
    }

    #[test]
    fn gemm_takes_the_avx512_kernel_when_enabled_and_agrees_with_avx2() {
        // The dispatching `gemm` on f32 equals this kernel bit for bit where it is enabled
        // (it is the kernel that ran), and the AVX2 kernel within rounding.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (m, n, k) = (29, 70, 45);
        let a = uniform(&mut rng, m * k);
        let b = uniform(&mut rng, k * n);
        let mut via_gemm = vec![0.0f32; m * n];
        gemm(m, n, k, &a, k, &b, n, &mut via_gemm, n, false);
        let mut direct = vec![0.0f32; m * n];
        if !gemm_f32(m, n, k, &a, k, &b, n, &mut direct, n, false) {
            return;
        }
        assert_eq!(via_gemm, direct);
        let mut avx2 = vec![0.0f32; m * n];
        assert!(super::super::avx2::gemm_f32(
            m, n, k, &a, k, &b, n, &mut avx2, n, false
        ));
        for (x, y) in direct.iter().zip(&avx2) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
