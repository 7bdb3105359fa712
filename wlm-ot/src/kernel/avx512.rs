//! Explicit AVX-512 softmin kernels (16 f32 or 8 f64 lanes), picked at run time on CPUs with
//! AVX-512F and AVX-512DQ; the same passes as [`super::softmin`], written for this instruction set.
//! The kernel body lives in [`super::body`] and is shared with the AVX2 kernels of
//! [`super::avx2`]; this module holds the AVX-512 vector operations it is expanded over.
//! (Deliberately parallel to `avx2.rs`'s operations: see there.)
//!
//! What differs from the portable kernel (all of it is about instructions per pair):
//! - logits are in base-2 units (`log2 e` is folded into the per-pass column data by
//!   [`Columns::prepare`](super::softmin::Columns::prepare)), so `exp` is `exp2`: the fraction
//!   `t − ⌊t⌋` in one instruction (`vreduce`), a degree-5 (f32) or degree-11 (f64) minimax
//!   polynomial of it, and `vscalef` for the power of two, with no range clamp;
//! - a vector whose lanes all lie more than `Columns::skip_bits` below the row's running maximum
//!   is not exponentiated at all (the terms dropped that way weigh less than `2^-9` ulp of the
//!   sum together), and single lanes below it are zeroed by the same mask (this also takes care
//!   of the `−∞` padding); since the compare costs about a tenth of a vector's work, rows use it
//!   only while it skips at least 1/8 of the vectors (probed every few rows), and otherwise
//!   exponentiate every finite lane (mask `Columns::finite`);
//! - `p = 2` without gradients exponentiates each tile in the same pass that computes its
//!   logits, against a guessed reference (the previous row's), and keeps the sum when the tile's
//!   maximum lies within `ops::FUSED_WINDOW` of it; otherwise (and for `p = 1`, where one pass
//!   measured slower) a tile is done in two passes: logits and their maximum, then `exp2`.
//!   References are integers, so moving one is an exact power of two (no `exp` call);
//! - `p = 1` in f32 and d ≤ 3 takes `sqrt` as `rsqrt14` plus one Newton step (relative error
//!   ~1e-7, like the rounding of the logits themselves); larger d, and f64, keep the IEEE `sqrt`.

/// Vector operations on 16 f32 lanes, with the same names as [`ops64`].
mod ops32 {
    use std::arch::x86_64::*;

    pub(super) type V = __m512;
    pub(super) type Mask = __mmask16;
    pub(super) const LANES: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn splat(a: f32) -> V {
        _mm512_set1_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn load(s: &[f32; LANES]) -> V {
        // SAFETY: `s` holds exactly LANES readable f32; the load is unaligned.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn store(s: &mut [f32; LANES], v: V) {
        // SAFETY: `s` holds exactly LANES writable f32; the store is unaligned.
        unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add(a: V, b: V) -> V {
        _mm512_add_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn sub(a: V, b: V) -> V {
        _mm512_sub_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn mul(a: V, b: V) -> V {
        _mm512_mul_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn max(a: V, b: V) -> V {
        _mm512_max_ps(a, b)
    }

    /// `a·b + c`, fused.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn fmadd(a: V, b: V, c: V) -> V {
        _mm512_fmadd_ps(a, b, c)
    }

    /// Lanes where `a > b` (false for NaN).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn gt(a: V, b: V) -> Mask {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b)
    }

    /// Whether any lane of `m` is set.
    #[inline(always)]
    pub(super) fn any(m: Mask) -> bool {
        m != 0
    }

    /// The lanes of vector `v` in a bit set of columns (8 per byte).
    #[inline(always)]
    pub(super) fn mask_at(bits: &[u8], v: usize) -> Mask {
        u16::from_le_bytes([bits[2 * v], bits[2 * v + 1]])
    }

    /// How far a tile's maximum may lie from the fused path's guessed reference
    /// (terms up to `2^FUSED_WINDOW` cannot overflow a sum, terms within 2^-FUSED_WINDOW of the
    /// maximum stay normal).
    pub(super) const FUSED_WINDOW: f32 = 60.0;

    /// `2^k` for an integer-valued `k <= 127` (0 below the normal range, also for `−∞`).
    #[inline(always)]
    pub(super) fn pow2i(k: f32) -> f32 {
        if k >= -126.0 {
            f32::from_bits(((k as i64 + 127) as u32) << 23)
        } else {
            0.0
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_add(a: V) -> f32 {
        _mm512_reduce_add_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_max(a: V) -> f32 {
        _mm512_reduce_max_ps(a)
    }

    /// `2^t` in the lanes of `keep` (where `t` must be finite and at most ~100 in magnitude),
    /// 0 elsewhere: `p(t − ⌊t⌋)·2^⌊t⌋` with the fraction from `vreduceps` and the power of two
    /// applied by `vscalefps` (which floors `t` itself). Relative error below 1 ulp plus the
    /// polynomial's 7.5e-8.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn exp2_masked(t: V, keep: Mask) -> V {
        // Minimax (relative) on [0, 1], coefficients rounded to f32.
        const C: [f32; 6] = [
            0.999_999_94,
            0.693_153_1,
            0.240_153_61,
            0.055_826_318,
            0.008_989_34,
            0.001_877_576_7,
        ];
        // t − ⌊t⌋ (round down, no exceptions).
        let f = _mm512_reduce_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(t);
        let mut p = _mm512_set1_ps(C[5]);
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[4]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[3]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[2]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[1]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[0]));
        _mm512_maskz_scalef_ps(keep, p, t)
    }

    /// `h + k·sqrt(d2)` for `d2 > 0` (already floored): `rsqrt14` and one Newton step,
    /// `sqrt(d2) ≈ ½ s (3 − s r)` with `r ≈ 1/sqrt(d2)`, `s = d2 r`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt(d2: V, k: V, h: V) -> V {
        let r = _mm512_rsqrt14_ps(d2);
        let s = _mm512_mul_ps(d2, r);
        let e = _mm512_fnmadd_ps(s, r, _mm512_set1_ps(3.0));
        let half_k = _mm512_mul_ps(k, _mm512_set1_ps(0.5));
        _mm512_fmadd_ps(_mm512_mul_ps(s, e), half_k, h)
    }

    /// `h + k·sqrt(d2)` with the IEEE square root (`vsqrtps`): fewer instructions but a long
    /// occupancy of the divider, which pays once the squared distance itself costs more (d ≥ 4
    /// measured here).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt_exact(d2: V, k: V, h: V) -> V {
        _mm512_fmadd_ps(_mm512_sqrt_ps(d2), k, h)
    }

    /// `1/sqrt(d2)` where `d2 >= floor`, 0 elsewhere (IEEE division and square root).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn inv_sqrt_above(d2: V, floor: V) -> V {
        let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(d2, floor);
        _mm512_maskz_div_ps(keep, _mm512_set1_ps(1.0), _mm512_sqrt_ps(d2))
    }
}

/// Vector operations on 8 f64 lanes, with the same names as [`ops32`].
mod ops64 {
    use std::arch::x86_64::*;

    pub(super) type V = __m512d;
    pub(super) type Mask = __mmask8;
    pub(super) const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn splat(a: f64) -> V {
        _mm512_set1_pd(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn load(s: &[f64; LANES]) -> V {
        // SAFETY: `s` holds exactly LANES readable f64; the load is unaligned.
        unsafe { _mm512_loadu_pd(s.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn store(s: &mut [f64; LANES], v: V) {
        // SAFETY: `s` holds exactly LANES writable f64; the store is unaligned.
        unsafe { _mm512_storeu_pd(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add(a: V, b: V) -> V {
        _mm512_add_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn sub(a: V, b: V) -> V {
        _mm512_sub_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn mul(a: V, b: V) -> V {
        _mm512_mul_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn max(a: V, b: V) -> V {
        _mm512_max_pd(a, b)
    }

    /// `a·b + c`, fused.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn fmadd(a: V, b: V, c: V) -> V {
        _mm512_fmadd_pd(a, b, c)
    }

    /// Lanes where `a > b` (false for NaN).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn gt(a: V, b: V) -> Mask {
        _mm512_cmp_pd_mask::<_CMP_GT_OQ>(a, b)
    }

    /// Whether any lane of `m` is set.
    #[inline(always)]
    pub(super) fn any(m: Mask) -> bool {
        m != 0
    }

    /// The lanes of vector `v` in a bit set of columns (8 per byte).
    #[inline(always)]
    pub(super) fn mask_at(bits: &[u8], v: usize) -> Mask {
        bits[v]
    }

    /// How far a tile's maximum may lie from the fused path's guessed reference
    /// (terms up to `2^FUSED_WINDOW` cannot overflow a sum, terms within 2^-FUSED_WINDOW of the
    /// maximum stay normal).
    pub(super) const FUSED_WINDOW: f64 = 500.0;

    /// `2^k` for an integer-valued `k <= 1023` (0 below the normal range, also for `−∞`).
    #[inline(always)]
    pub(super) fn pow2i(k: f64) -> f64 {
        if k >= -1022.0 {
            f64::from_bits(((k as i64 + 1023) as u64) << 52)
        } else {
            0.0
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_add(a: V) -> f64 {
        _mm512_reduce_add_pd(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_max(a: V) -> f64 {
        _mm512_reduce_max_pd(a)
    }

    /// `2^t` in the lanes of `keep` (where `t` must be finite and at most ~1000 in magnitude),
    /// 0 elsewhere; as [`super::ops32::exp2_masked`]. Relative error a few ulp (polynomial
    /// 1.1e-17).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn exp2_masked(t: V, keep: Mask) -> V {
        // Minimax (relative) on [0, 1].
        const C: [f64; 12] = [
            1.0,
            0.693_147_180_559_946_2,
            0.240_226_506_959_055_2,
            0.055_504_108_665_705_27,
            0.009_618_129_098_827_552,
            0.001_333_355_866_045_025_9,
            0.000_154_035_114_659_831_58,
            1.525_319_010_902_800_5e-5,
            1.320_819_272_358_017e-6,
            1.025_447_980_508_366_6e-7,
            6.554_298_389_547_021e-9,
            6.272_830_739_582_347e-10,
        ];
        let f = _mm512_reduce_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(t);
        let mut p = _mm512_set1_pd(C[11]);
        for &c in C[..11].iter().rev() {
            p = _mm512_fmadd_pd(p, f, _mm512_set1_pd(c));
        }
        _mm512_maskz_scalef_pd(keep, p, t)
    }

    /// `h + k·sqrt(d2)` (IEEE square root).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt(d2: V, k: V, h: V) -> V {
        _mm512_fmadd_pd(_mm512_sqrt_pd(d2), k, h)
    }

    /// `h + k·sqrt(d2)` (IEEE square root), as [`add_scaled_sqrt`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt_exact(d2: V, k: V, h: V) -> V {
        add_scaled_sqrt(d2, k, h)
    }

    /// `1/sqrt(d2)` where `d2 >= floor`, 0 elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn inv_sqrt_above(d2: V, floor: V) -> V {
        let keep = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(d2, floor);
        _mm512_maskz_div_pd(keep, _mm512_set1_pd(1.0), _mm512_sqrt_pd(d2))
    }
}

/// The f32 kernel (16 lanes).
pub(crate) mod f32x16 {
    use super::ops32 as ops;
    type T = f32;
    super::super::body::softmin_kernel!("avx512f,avx512dq");
}

/// The f64 kernel (8 lanes).
pub(crate) mod f64x8 {
    use super::ops64 as ops;
    type T = f64;
    super::super::body::softmin_kernel!("avx512f,avx512dq");
}

/// Whether this CPU runs the AVX-512 kernels.
pub(crate) fn supported() -> bool {
    wlm_numeric::has_avx512()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_is_within_a_few_ulp_of_libm_and_masks_lanes() {
        if !supported() {
            return;
        }
        // SAFETY: AVX-512F and AVX-512DQ were detected above.
        unsafe { check_exp2() }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    fn check_exp2() {
        let (mut worst32, mut worst64) = (0.0_f64, 0.0_f64);
        for k in 0..=200_000 {
            let t = -100.0 * k as f64 / 200_000.0;
            let t32 = t as f32;
            let mut out32 = [0.0f32; 16];
            ops32::store(&mut out32, ops32::exp2_masked(ops32::splat(t32), 0xFFFF));
            let want32 = (t32 as f64).exp2();
            worst32 = worst32.max(((out32[3] as f64 - want32) / want32).abs());
            let mut out64 = [0.0f64; 8];
            ops64::store(&mut out64, ops64::exp2_masked(ops64::splat(t), 0xFF));
            worst64 = worst64.max(((out64[5] - t.exp2()) / t.exp2()).abs());
        }
        assert!(worst32 < 2.0 * f32::EPSILON as f64, "f32 worst {worst32:e}");
        assert!(worst64 < 4.0 * f64::EPSILON, "f64 worst {worst64:e}");
        // Masked lanes are exactly zero, even for −∞ (which would give NaN unmasked).
        let mut out = [1.0f32; 16];
        ops32::store(
            &mut out,
            ops32::exp2_masked(ops32::splat(f32::NEG_INFINITY), 0),
        );
        assert!(out.iter().all(|&v| v == 0.0));
        let mut out = [0.0f64; 8];
        ops64::store(&mut out, ops64::exp2_masked(ops64::splat(0.0), 0b1));
        assert_eq!(out[0], 1.0);
        assert_eq!(out[1], 0.0);
    }

    #[test]
    fn rsqrt_newton_square_root_is_accurate_to_single_precision() {
        if !supported() {
            return;
        }
        // SAFETY: AVX-512F and AVX-512DQ were detected above.
        unsafe { check_sqrt() }
    }

    // The twin of `avx2/tests.rs`'s `check_sqrt` at 16 lanes, kept apart: each must be compiled
    // for its own instruction set (`target_feature`), which a shared generic body cannot be.
    #[target_feature(enable = "avx512f,avx512dq")]
    fn check_sqrt() {
        let mut worst = 0.0_f64;
        for k in 0..100_000 {
            let d2 = (1e-8_f64 * 1.0002_f64.powi(k)) as f32;
            let mut out = [0.0f32; 16];
            let got =
                ops32::add_scaled_sqrt(ops32::splat(d2), ops32::splat(1.0), ops32::splat(0.0));
            ops32::store(&mut out, got);
            let want = (d2 as f64).sqrt();
            worst = worst.max(((out[7] as f64 - want) / want).abs());
        }
        assert!(worst < 3.0 * f32::EPSILON as f64, "worst {worst:e}");
    }
}
