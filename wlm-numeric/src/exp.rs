//! Branch-free polynomial `exp`, written so that LLVM vectorises it.
//!
//! Range reduction `t = n ln2 + r`, `|r| <= ln2/2`, with `n` rounded by the "magic number" trick
//! (adding `1.5·2^mantissa_bits` leaves `n` in the low bits), a polynomial for `exp(r)`, and the
//! scaling by `2^n` done by adding `n` to the exponent bits. In the non-positive variants (the
//! Sinkhorn softmin) arguments below the type's cutoff (−80 for f32, −700 for f64) return exactly
//! 0, so no denormal or slow path is ever taken; the whole-range f32 variant (softmax, GELU,
//! sigmoid) clamps its argument to `[−86, 88]`, where `2^n` stays a normal number.
//! `FMA` selects fused multiply-adds (bitwise different rounding; use `true` inside kernels
//! compiled with the `fma` target feature).
//! Accuracy: about 1 ulp for f32 (Cephes `expf` polynomial), a few ulp for f64 (degree-13 Taylor
//! polynomial, truncation error < 5e-18).

/// `exp(x)` for f32 `x` in `[−86, 88]` (no range check): the shared range reduction,
/// polynomial and exponent-bit scaling.
#[inline(always)]
fn exp_reduced_f32<const FMA: bool>(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 0.693359375, exact in few bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_66,
        0.5,
    ];
    let mad = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    let shifted = mad(x, LOG2E, MAGIC);
    let n = shifted - MAGIC;
    let n_bits = (shifted.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let r = mad(n, -LN2_LO, mad(n, -LN2_HI, x));
    let r2 = r * r;
    let mut poly = P[0];
    for &c in &P[1..] {
        poly = mad(poly, r, c);
    }
    let e = mad(poly, r2, r + 1.0);
    f32::from_bits((e.to_bits() as i32).wrapping_add(n_bits.wrapping_shl(23)) as u32)
}

/// `exp(t)` on the whole f32 range: the argument is clamped to `[−86, 88]` (below −86 the result
/// is `exp(−86)` ≈ 4.5e-38, above 88 it is `exp(88)` ≈ 1.7e38, never ∞); about 1 ulp inside.
#[inline(always)]
pub fn exp_f32<const FMA: bool>(t: f32) -> f32 {
    exp_reduced_f32::<FMA>(t.clamp(-86.0, 88.0))
}

/// `exp(t)` for `t <= 0` in f32; 0 when `t < −80`.
#[inline(always)]
pub fn exp_nonpositive_f32<const FMA: bool>(t: f32) -> f32 {
    let x = if t < -80.0 { -80.0 } else { t };
    let scaled = exp_reduced_f32::<FMA>(x);
    if t < -80.0 {
        0.0
    } else {
        scaled
    }
}

/// `exp(t)` for `t <= 0` in f64; 0 when `t < −700`.
#[inline(always)]
pub fn exp_nonpositive_f64<const FMA: bool>(t: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000); // fdlibm's ln2_hi
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76); // fdlibm's ln2_lo
                                                               // 1/k! for k = 13 down to 2.
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
    let mad = |a: f64, b: f64, c: f64| if FMA { a.mul_add(b, c) } else { a * b + c };
    let x = if t < -700.0 { -700.0 } else { t };
    let shifted = mad(x, LOG2E, MAGIC);
    let n = shifted - MAGIC;
    let n_bits = (shifted.to_bits() as i64).wrapping_sub(0x4338_0000_0000_0000);
    let r = mad(n, -LN2_LO, mad(n, -LN2_HI, x));
    let mut poly = P[0];
    for &c in &P[1..] {
        poly = mad(poly, r, c);
    }
    let e = mad(poly, r * r, r + 1.0);
    let scaled = f64::from_bits((e.to_bits() as i64).wrapping_add(n_bits.wrapping_shl(52)) as u64);
    if t < -700.0 {
        0.0
    } else {
        scaled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: f64, n: usize) -> impl Iterator<Item = f64> {
        (0..=n).map(move |k| lo * k as f64 / n as f64)
    }

    #[test]
    fn f64_exp_is_within_a_few_ulp_of_libm() {
        for fma in [false, true] {
            let mut worst = 0.0_f64;
            for t in grid(-700.0, 200_000).chain(grid(-1.0, 10_000)) {
                let got = if fma {
                    exp_nonpositive_f64::<true>(t)
                } else {
                    exp_nonpositive_f64::<false>(t)
                };
                let want = t.exp();
                worst = worst.max(((got - want) / want).abs());
            }
            assert!(
                worst < 4.0 * f64::EPSILON,
                "fma {fma}: worst rel err {worst:e}"
            );
        }
    }

    #[test]
    fn f32_exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0_f64;
        for t in grid(-80.0, 200_000).chain(grid(-1.0, 10_000)) {
            let got = exp_nonpositive_f32::<true>(t as f32) as f64;
            let want = (t as f32 as f64).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2.0 * f32::EPSILON as f64, "worst rel err {worst:e}");
    }

    #[test]
    fn exp_below_cutoff_and_of_minus_infinity_is_exactly_zero() {
        assert_eq!(exp_nonpositive_f32::<true>(-80.01), 0.0);
        assert_eq!(exp_nonpositive_f32::<false>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive_f64::<true>(-700.5), 0.0);
        assert_eq!(exp_nonpositive_f64::<false>(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive_f64::<true>(0.0), 1.0);
        assert_eq!(exp_nonpositive_f32::<true>(0.0), 1.0);
    }

    #[test]
    fn whole_range_f32_exp_is_within_two_ulp_of_libm_and_never_infinite() {
        for fma in [false, true] {
            let mut worst = 0.0f64;
            for t in grid(-86.0, 100_000).chain(grid(88.0, 100_000)) {
                let t = t as f32;
                let got = if fma {
                    exp_f32::<true>(t)
                } else {
                    exp_f32::<false>(t)
                } as f64;
                let want = (t as f64).exp();
                worst = worst.max(((got - want) / want).abs());
            }
            assert!(
                worst < 2.0 * f32::EPSILON as f64,
                "fma {fma}: worst rel err {worst:e}"
            );
        }
        assert!(exp_f32::<true>(1000.0).is_finite());
        assert!(exp_f32::<true>(f32::INFINITY).is_finite());
        assert!(exp_f32::<false>(-1000.0) > 0.0 && exp_f32::<false>(-1000.0) < 1e-37);
        assert!(exp_f32::<false>(f32::NEG_INFINITY) < 1e-37);
        assert!(exp_f32::<true>(f32::NAN).is_nan());
    }
}
