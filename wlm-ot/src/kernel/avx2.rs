//! Explicit AVX2 + FMA softmin kernels (8 f32 or 4 f64 lanes), picked at run time on CPUs with
//! AVX2 and FMA but without AVX-512: the body of [`super::avx512`] (from [`super::body`]) over
//! vector operations written for this instruction set.
//!
//! Deliberate duplication: `ops32`/`ops64` here and in [`super::avx512`] are the same vector
//! vocabulary for each lane type and instruction set (`duplicates` pairs them); the kernel body is
//! written once, in [`super::body`], and expanded over each. Change them together.
//!
//! What differs from the AVX-512 operations:
//! - no mask registers: a mask is a vector whose selected lanes have every bit set (from a
//!   compare), applied with an `and`;
//! - `exp2` has no `vreduce`/`vscalef`: the argument is clamped from below (−127 in f32, −1023
//!   in f64), floored, the fraction goes through the same minimax polynomial, and `2^⌊t⌋` is
//!   built in the exponent bits (`⌊t⌋ + bias + 2^23` (resp. `2^52`) holds the biased exponent
//!   in its low mantissa bits; shifting left by 23 (52) moves it into the exponent field). The
//!   clamp makes every argument below the normal range, `−∞` included, give exactly 0, so the
//!   lanes of padding and zero weights need no mask: `mask_at` selects every lane;
//! - `p = 1` in f32 with d ≤ 3 takes `sqrt` as `rsqrtps` (12 bits) plus one Newton step.

/// Vector operations on 8 f32 lanes, with the names of [`super::avx512`]'s `ops32`.
mod ops32 {
    use std::arch::x86_64::*;

    pub(super) type V = __m256;
    /// Lanes with every bit set are selected (the result of a compare).
    pub(super) type Mask = __m256;
    pub(super) const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn splat(a: f32) -> V {
        _mm256_set1_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn load(s: &[f32; LANES]) -> V {
        // SAFETY: `s` holds exactly LANES readable f32; the load is unaligned.
        unsafe { _mm256_loadu_ps(s.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn store(s: &mut [f32; LANES], v: V) {
        // SAFETY: `s` holds exactly LANES writable f32; the store is unaligned.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add(a: V, b: V) -> V {
        _mm256_add_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sub(a: V, b: V) -> V {
        _mm256_sub_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn mul(a: V, b: V) -> V {
        _mm256_mul_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn max(a: V, b: V) -> V {
        _mm256_max_ps(a, b)
    }

    /// `a·b + c`, fused.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fmadd(a: V, b: V, c: V) -> V {
        _mm256_fmadd_ps(a, b, c)
    }

    /// Lanes where `a > b` (false for NaN).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn gt(a: V, b: V) -> Mask {
        _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)
    }

    /// Whether any lane of `m` is set.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn any(m: Mask) -> bool {
        _mm256_movemask_ps(m) != 0
    }

    /// Every lane: [`exp2_masked`] gives exactly 0 for the `−∞` logits of padding and zero
    /// weights, so the finite bits are not needed (the `and` with all ones folds away).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn mask_at(_bits: &[u8], _v: usize) -> Mask {
        _mm256_castsi256_ps(_mm256_set1_epi32(-1))
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
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn reduce_add(a: V) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn reduce_max(a: V) -> f32 {
        let s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
    }

    /// `2^t` in the lanes of `keep` (where `t` must be below 128, or NaN), 0 elsewhere and
    /// wherever `t < −126` (`−∞` included): `p(t − ⌊t⌋)·2^⌊t⌋` with `t` clamped at −127 first,
    /// whose power of two has a zero exponent field. Relative error below 1 ulp plus the
    /// polynomial's 7.5e-8 in the normal range.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp2_masked(t: V, keep: Mask) -> V {
        // Minimax (relative) on [0, 1], coefficients rounded to f32 (as the AVX-512 kernel).
        const C: [f32; 6] = [
            0.999_999_94,
            0.693_153_1,
            0.240_153_61,
            0.055_826_318,
            0.008_989_34,
            0.001_877_576_7,
        ];
        // 2^23 + 127: adding it to an integer-valued k in [−127, 128] leaves k + 127 in the
        // low mantissa bits.
        const BIAS: f32 = 8_388_735.0;
        // `max` returns its second operand for NaN, so a NaN argument gives 0 too.
        let t = _mm256_max_ps(t, _mm256_set1_ps(-127.0));
        let k = _mm256_floor_ps(t);
        let f = _mm256_sub_ps(t, k);
        let mut p = _mm256_set1_ps(C[5]);
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C[4]));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C[3]));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C[2]));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C[1]));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C[0]));
        let biased = _mm256_castps_si256(_mm256_add_ps(k, _mm256_set1_ps(BIAS)));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased));
        _mm256_and_ps(keep, _mm256_mul_ps(p, scale))
    }

    /// `h + k·sqrt(d2)` for `d2 > 0` (already floored): `rsqrtps` (12 bits) and one Newton
    /// step, `sqrt(d2) ≈ ½ s (3 − s r)` with `r ≈ 1/sqrt(d2)`, `s = d2 r`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add_scaled_sqrt(d2: V, k: V, h: V) -> V {
        let r = _mm256_rsqrt_ps(d2);
        let s = _mm256_mul_ps(d2, r);
        let e = _mm256_fnmadd_ps(s, r, _mm256_set1_ps(3.0));
        let half_k = _mm256_mul_ps(k, _mm256_set1_ps(0.5));
        _mm256_fmadd_ps(_mm256_mul_ps(s, e), half_k, h)
    }

    /// `h + k·sqrt(d2)` with the IEEE square root.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add_scaled_sqrt_exact(d2: V, k: V, h: V) -> V {
        _mm256_fmadd_ps(_mm256_sqrt_ps(d2), k, h)
    }

    /// `1/sqrt(d2)` where `d2 >= floor`, 0 elsewhere (IEEE division and square root).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn inv_sqrt_above(d2: V, floor: V) -> V {
        let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(d2, floor);
        let inv = _mm256_div_ps(_mm256_set1_ps(1.0), _mm256_sqrt_ps(d2));
        _mm256_and_ps(keep, inv)
    }
}

/// Vector operations on 4 f64 lanes, with the same names as [`ops32`].
mod ops64 {
    use std::arch::x86_64::*;

    pub(super) type V = __m256d;
    /// Lanes with every bit set are selected (the result of a compare).
    pub(super) type Mask = __m256d;
    pub(super) const LANES: usize = 4;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn splat(a: f64) -> V {
        _mm256_set1_pd(a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn load(s: &[f64; LANES]) -> V {
        // SAFETY: `s` holds exactly LANES readable f64; the load is unaligned.
        unsafe { _mm256_loadu_pd(s.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn store(s: &mut [f64; LANES], v: V) {
        // SAFETY: `s` holds exactly LANES writable f64; the store is unaligned.
        unsafe { _mm256_storeu_pd(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add(a: V, b: V) -> V {
        _mm256_add_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sub(a: V, b: V) -> V {
        _mm256_sub_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn mul(a: V, b: V) -> V {
        _mm256_mul_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn max(a: V, b: V) -> V {
        _mm256_max_pd(a, b)
    }

    /// `a·b + c`, fused.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fmadd(a: V, b: V, c: V) -> V {
        _mm256_fmadd_pd(a, b, c)
    }

    /// Lanes where `a > b` (false for NaN).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn gt(a: V, b: V) -> Mask {
        _mm256_cmp_pd::<_CMP_GT_OQ>(a, b)
    }

    /// Whether any lane of `m` is set.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn any(m: Mask) -> bool {
        _mm256_movemask_pd(m) != 0
    }

    /// Every lane, as [`super::ops32::mask_at`].
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn mask_at(_bits: &[u8], _v: usize) -> Mask {
        _mm256_castsi256_pd(_mm256_set1_epi64x(-1))
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
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn reduce_add(a: V) -> f64 {
        let s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd::<1>(a));
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn reduce_max(a: V) -> f64 {
        let s = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd::<1>(a));
        _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)))
    }

    /// `2^t` in the lanes of `keep` (where `t` must be below 1024, or NaN), 0 elsewhere and
    /// wherever `t < −1022`; as [`super::ops32::exp2_masked`] with the clamp at −1023. Relative
    /// error a few ulp (polynomial 1.1e-17).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp2_masked(t: V, keep: Mask) -> V {
        // Minimax (relative) on [0, 1] (as the AVX-512 kernel).
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
        // 2^52 + 1023, as in `ops32`.
        const BIAS: f64 = 4_503_599_627_371_519.0;
        let t = _mm256_max_pd(t, _mm256_set1_pd(-1023.0));
        let k = _mm256_floor_pd(t);
        let f = _mm256_sub_pd(t, k);
        let mut p = _mm256_set1_pd(C[11]);
        for &c in C[..11].iter().rev() {
            p = _mm256_fmadd_pd(p, f, _mm256_set1_pd(c));
        }
        let biased = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(BIAS)));
        let scale = _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased));
        _mm256_and_pd(keep, _mm256_mul_pd(p, scale))
    }

    /// `h + k·sqrt(d2)` (IEEE square root).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add_scaled_sqrt(d2: V, k: V, h: V) -> V {
        _mm256_fmadd_pd(_mm256_sqrt_pd(d2), k, h)
    }

    /// `h + k·sqrt(d2)` (IEEE square root), as [`add_scaled_sqrt`].
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add_scaled_sqrt_exact(d2: V, k: V, h: V) -> V {
        add_scaled_sqrt(d2, k, h)
    }

    /// `1/sqrt(d2)` where `d2 >= floor`, 0 elsewhere.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn inv_sqrt_above(d2: V, floor: V) -> V {
        let keep = _mm256_cmp_pd::<_CMP_GE_OQ>(d2, floor);
        let inv = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_sqrt_pd(d2));
        _mm256_and_pd(keep, inv)
    }
}

/// The f32 kernel (8 lanes).
pub(crate) mod f32x8 {
    use super::ops32 as ops;
    type T = f32;
    super::super::body::softmin_kernel!("avx2,fma");
}

/// The f64 kernel (4 lanes).
pub(crate) mod f64x4 {
    use super::ops64 as ops;
    type T = f64;
    super::super::body::softmin_kernel!("avx2,fma");
}

/// Whether this CPU runs the AVX2 kernels.
pub(crate) fn supported() -> bool {
    wlm_numeric::has_avx2_fma()
}

#[cfg(test)]
mod tests;
