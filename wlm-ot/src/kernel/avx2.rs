//! Hand-written AVX2 + FMA single-pass softmin rows (f32 and f64), used for the passes of the
//! Sinkhorn loop when the CPU has AVX2 and FMA.
//!
//! Each row is shifted by a *guess* of its log-sum-exp (the row's potential from the previous
//! ε, `−f_prev/ε`) instead of its maximum, so one pass over the columns suffices: logits are
//! computed in registers, `exp(z − shift)` is summed, and nothing is stored. Shifted arguments
//! are clamped to ±80 (f32) / ±700 (f64): the clamped terms are below the precision of any
//! accepted sum. A row whose shifted sum leaves the trusted range (`e^±40` in f32, `e^±600` in
//! f64: the guess was off) is handed back and recomputed by the exact two-pass kernel.

use std::arch::x86_64::*;

use super::softmin::{Columns, SQ_DIST_FLOOR};
use super::Cloud;

/// Columns per loop iteration (two registers).
const UNROLL_F32: usize = 16;
const UNROLL_F64: usize = 8;

/// `exp(t)` for `t ∈ [−80, 80]`, 8 lanes of f32 (Cephes `expf` polynomial, about 1 ulp).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn exp_ps(t: __m256) -> __m256 {
    // SAFETY: register-only AVX2/FMA arithmetic; the caller guarantees the features.
    unsafe {
        let magic = _mm256_set1_ps(12_582_912.0); // 1.5 * 2^23
        let shifted = _mm256_fmadd_ps(t, _mm256_set1_ps(std::f32::consts::LOG2_E), magic);
        let n = _mm256_sub_ps(shifted, magic);
        let n_bits = _mm256_slli_epi32(
            _mm256_sub_epi32(
                _mm256_castps_si256(shifted),
                _mm256_set1_epi32(0x4B40_0000),
            ),
            23,
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), t);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_9e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.166_666_66));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
        let e = _mm256_fmadd_ps(
            p,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(e), n_bits))
    }
}

/// `exp(t)` for `t ∈ [−700, 700]`, 4 lanes of f64 (degree-13 Taylor polynomial, a few ulp).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn exp_pd(t: __m256d) -> __m256d {
    const P: [f64; 12] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];
    // SAFETY: register-only AVX2/FMA arithmetic; the caller guarantees the features.
    unsafe {
        let magic = _mm256_set1_pd(6_755_399_441_055_744.0); // 1.5 * 2^52
        let shifted = _mm256_fmadd_pd(t, _mm256_set1_pd(std::f64::consts::LOG2_E), magic);
        let n = _mm256_sub_pd(shifted, magic);
        let n_bits = _mm256_slli_epi64(
            _mm256_sub_epi64(
                _mm256_castpd_si256(shifted),
                _mm256_set1_epi64x(0x4338_0000_0000_0000),
            ),
            52,
        );
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(f64::from_bits(0x3FE6_2E42_FEE0_0000)), t);
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(f64::from_bits(0x3DEA_39EF_3579_3C76)), r);
        let mut p = _mm256_set1_pd(P[0]);
        for &c in &P[1..] {
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
        }
        let e = _mm256_fmadd_pd(
            p,
            _mm256_mul_pd(r, r),
            _mm256_add_pd(r, _mm256_set1_pd(1.0)),
        );
        _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(e), n_bits))
    }
}

/// Horizontal sum of 8 f32 lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn hsum_ps(v: __m256) -> f32 {
    // SAFETY: register-only AVX arithmetic; the caller guarantees the features.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// Horizontal sum of 4 f64 lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn hsum_pd(v: __m256d) -> f64 {
    // SAFETY: register-only AVX arithmetic; the caller guarantees the features.
    unsafe {
        let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        let s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
        _mm_cvtsd_f64(s)
    }
}

macro_rules! guess_rows {
    (
        $name:ident, $t:ty, $vec:ty, $unroll:expr, $lanes:expr,
        set1 = $set1:ident, load = $load:ident, add = $add:ident, sub = $sub:ident,
        fmadd = $fmadd:ident, fnmadd = $fnmadd:ident, max = $max:ident, min = $min:ident,
        sqrt = $sqrt:ident, exp = $exp:ident, hsum = $hsum:ident,
        clamp = $clamp:expr, trusted_ln = $trusted:expr
    ) => {
        /// Single-pass softmin of rows `row_start..row_start + out.len()` shifted by
        /// `guess` (the rows' previous potentials). Rows whose shifted sum is untrusted are
        /// pushed to `retry` (indices into `out`) and left unwritten.
        ///
        /// `D` is the point dimension, or 0 for "read it from `rows`".
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA. `columns` must be prepared from a cloud of the
        /// same dimension as `rows` (padded to a multiple of the unroll width).
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn $name<const P2: bool, const D: usize>(
            columns: &Columns<'_, $t>,
            rows: &Cloud<$t>,
            row_start: usize,
            guess: &[$t],
            out: &mut [$t],
            retry: &mut Vec<usize>,
        ) {
            let dim = if D == 0 { rows.dim } else { D };
            let cols = columns.cols;
            let n_pad = cols.n_pad;
            debug_assert_eq!(n_pad % $unroll, 0);
            let coords: &[$t] = if P2 { &columns.scaled } else { &cols.columns };
            debug_assert!(coords.len() >= dim * n_pad && columns.offset.len() >= n_pad);
            let eps = columns.eps;
            let inv_eps = columns.inv_eps;
            let lo = -$clamp;
            let hi = $clamp;
            let (lo_ok, hi_ok) = ((-$trusted as $t).exp(), ($trusted as $t).exp());
            // SAFETY: AVX2/FMA are enabled for this function (the caller's contract). Every
            // load reads `$lanes` values at `offset[j..]` or `coords[k·n_pad + j..]` with
            // `j + $unroll <= n_pad` and `k < dim`, inside the slices checked above.
            unsafe {
                for (r, out_r) in out.iter_mut().enumerate() {
                    let i = row_start + r;
                    let x_i = rows.point(i);
                    let row_shift = if P2 {
                        rows.sq_norms[i] * columns.half_inv_eps
                    } else {
                        0.0
                    };
                    // log-sum-exp guess for the dot-product logits
                    let shift = -guess[r] * inv_eps + row_shift;
                    let v_shift = $set1(shift);
                    let v_lo = $set1(lo);
                    let v_hi = $set1(hi);
                    let v_inv_eps = $set1(inv_eps);
                    let v_floor = $set1(SQ_DIST_FLOOR as $t);
                    let mut acc0 = $set1(0.0);
                    let mut acc1 = $set1(0.0);
                    let offset = columns.offset.as_ptr();
                    let base = coords.as_ptr();
                    let mut j = 0;
                    while j < n_pad {
                        let mut z0: $vec = $load(offset.add(j));
                        let mut z1: $vec = $load(offset.add(j + $lanes));
                        if P2 {
                            for k in 0..dim {
                                let xk = $set1(*x_i.get_unchecked(k));
                                let y = base.add(k * n_pad + j);
                                z0 = $fmadd(xk, $load(y), z0);
                                z1 = $fmadd(xk, $load(y.add($lanes)), z1);
                            }
                        } else {
                            let mut sq0 = $set1(0.0);
                            let mut sq1 = $set1(0.0);
                            for k in 0..dim {
                                let xk = $set1(*x_i.get_unchecked(k));
                                let y = base.add(k * n_pad + j);
                                let d0 = $sub(xk, $load(y));
                                let d1 = $sub(xk, $load(y.add($lanes)));
                                sq0 = $fmadd(d0, d0, sq0);
                                sq1 = $fmadd(d1, d1, sq1);
                            }
                            z0 = $fnmadd($sqrt($max(sq0, v_floor)), v_inv_eps, z0);
                            z1 = $fnmadd($sqrt($max(sq1, v_floor)), v_inv_eps, z1);
                        }
                        let t0 = $min($max($sub(z0, v_shift), v_lo), v_hi);
                        let t1 = $min($max($sub(z1, v_shift), v_lo), v_hi);
                        acc0 = $add(acc0, $exp(t0));
                        acc1 = $add(acc1, $exp(t1));
                        j += $unroll;
                    }
                    let total = $hsum($add(acc0, acc1));
                    if total > lo_ok && total < hi_ok {
                        *out_r = -(eps * (shift + total.ln() - row_shift));
                    } else {
                        retry.push(r);
                    }
                }
            }
        }
    };
}

guess_rows!(
    guess_rows_f32, f32, __m256, UNROLL_F32, 8,
    set1 = _mm256_set1_ps, load = _mm256_loadu_ps, add = _mm256_add_ps, sub = _mm256_sub_ps,
    fmadd = _mm256_fmadd_ps, fnmadd = _mm256_fnmadd_ps, max = _mm256_max_ps,
    min = _mm256_min_ps, sqrt = _mm256_sqrt_ps, exp = exp_ps, hsum = hsum_ps,
    clamp = 80.0, trusted_ln = 40.0
);

guess_rows!(
    guess_rows_f64, f64, __m256d, UNROLL_F64, 4,
    set1 = _mm256_set1_pd, load = _mm256_loadu_pd, add = _mm256_add_pd, sub = _mm256_sub_pd,
    fmadd = _mm256_fmadd_pd, fnmadd = _mm256_fnmadd_pd, max = _mm256_max_pd,
    min = _mm256_min_pd, sqrt = _mm256_sqrt_pd, exp = exp_pd, hsum = hsum_pd,
    clamp = 700.0, trusted_ln = 600.0
);
