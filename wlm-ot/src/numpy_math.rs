//! Bit-exact ports of numpy's float64 `exp` and `log` on AVX-512 machines (numpy 1.26 calls
//! Intel SVML's `__svml_exp8` / `__svml_log8` there), used only to build the ε schedule exactly
//! as geomloss does.
//!
//! geomloss builds its schedule with `np.log` and `np.exp`; numpy's SVML results differ from the
//! correctly rounded (glibc) ones by an ulp in about a fifth of the cases, and the reference
//! fixtures were made on such a machine. Costs nothing: a schedule has ~40 entries. Arguments
//! outside the kernels' main paths (|x| ≥ 707 for exp; zero, negative, non-finite for log) fall
//! back to the standard library.

/// `2^(j/16)`, `j = 0..16`.
const EXP_TABLE: [u64; 16] = [
    0x3FF0000000000000,
    0x3FF0B5586CF9890F,
    0x3FF172B83C7D517B,
    0x3FF2387A6E756238,
    0x3FF306FE0A31B715,
    0x3FF3DEA64C123422,
    0x3FF4BFDAD5362A27,
    0x3FF5AB07DD485429,
    0x3FF6A09E667F3BCD,
    0x3FF7A11473EB0187,
    0x3FF8ACE5422AA0DB,
    0x3FF9C49182A3F090,
    0x3FFAE89F995AD3AD,
    0x3FFC199BDD85529C,
    0x3FFD5818DCFBA487,
    0x3FFEA4AFA2A490DA,
];
/// `−log` of the rounded reciprocal's mantissa, by its top 4 mantissa bits.
const LOG_TABLE: [u64; 16] = [
    0x0000000000000000,
    0xBFAF0A30C01162A6,
    0xBFBE27076E2AF2E6,
    0xBFC5FF3070A793D4,
    0xBFCC8FF7C79A9A22,
    0xBFD1675CABABA60E,
    0xBFD4618BC21C5EC2,
    0xBFD739D7F6BBD007,
    0x3FD269621134DB92,
    0x3FCF991C6CB3B379,
    0x3FCA93ED3C8AD9E3,
    0x3FC5BF406B543DB2,
    0x3FC1178E8227E47C,
    0x3FB9335E5D594989,
    0x3FB08598B59E3A07,
    0x3FA0415D89E74444,
];

const fn f(bits: u64) -> f64 {
    f64::from_bits(bits)
}

/// `a · 2^floor(n)` (AVX-512 `vscalefpd` in the normal range).
fn scalef(a: f64, n: f64) -> f64 {
    let m = n.floor() as i32;
    if (-1000..=1000).contains(&m) {
        a * 2f64.powi(m)
    } else {
        a * 2f64.powi(m / 2) * 2f64.powi(m - m / 2)
    }
}

/// numpy's float64 `exp` on AVX-512 (SVML `__svml_exp8`): `N = x log2(e)` rounded down to a
/// multiple of 1/16, `exp(x) = 2^floor(N) · 2^frac(N) · exp(r)`, `r = x − N ln2`.
pub(crate) fn np_exp(x: f64) -> f64 {
    const L2E: f64 = f(0x3FF71547652B82FE);
    const L2H: f64 = f(0x3FE62E42FEFA39EF);
    const L2L: f64 = f(0x3C7ABC9E3B39803F);
    const C2: f64 = f(0x3FE0000000002622);
    const C3: f64 = f(0x3FC5555554B508A2);
    const C4: f64 = f(0x3FA555564BB4F5F0);
    const C5: f64 = f(0x3F81106603D97C00);
    const C6: f64 = f(0x3F572EB5EF0D213D);
    const THRESHOLD: f64 = f(0x40861DA04CBAFE44);
    if x.is_nan() || x.abs() >= THRESHOLD {
        return x.exp();
    }
    // fma(x, log2 e, 1.5·2^48) rounded toward zero = 1.5·2^48 + floor16(x log2 e), exactly.
    let product = x * L2E;
    let product_err = x.mul_add(L2E, -product);
    let sixteenths = product * 16.0;
    let mut k = sixteenths.floor();
    if k == sixteenths && product_err < 0.0 {
        k -= 1.0;
    }
    let n = k / 16.0;
    let th = f(EXP_TABLE[(k as i64).rem_euclid(16) as usize]);
    let r = (-n).mul_add(L2H, x);
    let r = (-n).mul_add(L2L, r);
    let r = f(r.to_bits() & 0xBFFF_FFFF_FFFF_FFFF);
    let r2 = r * r;
    let p56 = C6.mul_add(r, C5);
    let p34 = C4.mul_add(r, C3);
    let r3 = r2 * r;
    let p12 = r2.mul_add(C2, r);
    let p36 = r2.mul_add(p56, p34);
    let expm1 = r3.mul_add(p36, p12);
    scalef(th.mul_add(expm1, th), n)
}

/// `vrcp14sd`: the hardware's 14-bit reciprocal when the CPU has AVX-512F (what numpy's SVML
/// ran on), else the correctly rounded reciprocal (they differ in the rounding to 1/32 below
/// for about 3 inputs in 100 000).
fn rcp14(m: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            let r: f64;
            // SAFETY: AVX-512F was detected on this CPU just above; the instruction only reads
            // and writes the named xmm registers.
            unsafe {
                std::arch::asm!(
                    "vrcp14sd {r}, {m}, {m}",
                    r = lateout(xmm_reg) r,
                    m = in(xmm_reg) m,
                    options(pure, nomem, nostack),
                );
            }
            return r;
        }
    }
    1.0 / m
}

/// numpy's float64 `log` on AVX-512 (SVML `__svml_log8`): `x = 2^e m`, `m ∈ [1, 2)`,
/// `rcp ≈ 1/m` rounded to 1/32, `log x = e ln2 − log(rcp) + log1p(rcp·m − 1)`.
///
/// Its block of bit-exact constants has the shape of [`np_exp`]'s (`duplicates` pairs them): each
/// function transcribes its own SVML routine, and the coefficients are all that they share.
pub(crate) fn np_log(x: f64) -> f64 {
    const P256: f64 = f(0x3FBC81CD309D7C70);
    const P320: f64 = f(0xBFC007357E93AF62);
    const P384: f64 = f(0x3FC249229CEE81EF);
    const P448: f64 = f(0xBFC55553FB28DB06);
    const P512: f64 = f(0x3FC9999999CC9F5C);
    const P576: f64 = f(0xBFD00000000C05BD);
    const P640: f64 = f(0x3FD5555555555466);
    const P704: f64 = f(0xBFDFFFFFFFFFFFC6);
    const LN2: f64 = f(0x3FE62E42FEFA39EF);
    if !x.is_finite() || x < f64::MIN_POSITIVE {
        return x.ln();
    }
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as f64 - 1023.0;
    let mantissa = f((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    let rcp = (rcp14(mantissa) * 32.0).round_ties_even() / 32.0;
    let r = rcp.mul_add(mantissa, -1.0);
    let exponent = if rcp < 0.75 { exponent + 1.0 } else { exponent };
    let table = f(LOG_TABLE[((rcp.to_bits() >> 48) & 0xF) as usize]);
    let a = P384.mul_add(r, P448);
    let b = P256.mul_add(r, P320);
    let c = P640.mul_add(r, P704);
    let r2 = r * r;
    let d = P512.mul_add(r, P576);
    let r4 = r2 * r2;
    let b = r2.mul_add(b, a);
    let d = r2.mul_add(d, c);
    let poly = r4.mul_add(b, d);
    let poly = r2.mul_add(poly, r);
    LN2.mul_add(exponent, table + poly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_log_are_within_an_ulp_of_libm() {
        let mut worst = (0.0_f64, 0.0_f64);
        for k in 0..200_000 {
            let x = -700.0 + 1400.0 * k as f64 / 200_000.0;
            worst.0 = worst.0.max(((np_exp(x) - x.exp()) / x.exp()).abs());
            let y = 1e-300_f64 * 1.0037_f64.powi(k);
            if y.is_finite() {
                let (got, want) = (np_log(y), y.ln());
                worst.1 = worst.1.max((got - want).abs() / want.abs().max(1.0));
            }
        }
        assert!(worst.0 < 3e-16 && worst.1 < 3e-16, "{worst:?}");
    }

    #[test]
    fn exp_and_log_reproduce_numpy_bit_for_bit() {
        // (input bits, numpy 1.26.4 output bits) on an AVX-512 machine.
        let exp_cases: [(u64, u64); 6] = [
            (0xc0114a6b7aef9bd4, 0x3f8b2a56529713e1),
            (0x40020e3ea8029ec0, 0x40231ba04a5150a5),
            (0xc023acdaab2af455, 0x3f0bffe683a43c50),
            (0xc06a7a74a4909144, 0x2cd517845ca2de4b),
            (0x407106e8a5551864, 0x58806781e31bbf9c),
            (0x3fc3c3092812cc6f, 0x3ff2abcee212b054),
        ];
        for (x, want) in exp_cases {
            assert_eq!(np_exp(f(x)).to_bits(), want, "exp({:e})", f(x));
        }
        let log_cases: [(u64, u64); 6] = [
            (0x402021391bfa64e2, 0x4000b33da5dbe7be),
            (0x40325f546b709c33, 0x4007496af7522caf),
            (0x161233998f154e79, 0xc07d04799e9f59e6),
            (0x47fa8d13700f05bf, 0x40564ead30de48b8),
            (0x3ff00cb108fa2a8f, 0x3f6958060fbb3e22),
            (0x3feccccccccccccd, 0xbfbaf8e8210a415c),
        ];
        for (x, want) in log_cases {
            assert_eq!(np_log(f(x)).to_bits(), want, "log({:e})", f(x));
        }
    }
}
