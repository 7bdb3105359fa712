//! The float abstraction of the fused kernels: f32/f64 arithmetic, a vectorisable `exp`/`erf`, storage access.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result};
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// Scalar type of a fused kernel (`f32` or `f64`).
///
/// `f32` uses a branch-free polynomial `exp` (relative error a few ulp) and a rational `erf`
/// (absolute error < 5e-7) that LLVM vectorises; `f64` uses the standard library's `exp` and
/// libm's `erf`, so the f64 fused path agrees with the plain candle path to rounding.
pub(crate) trait Float:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + candle_core::WithDType
{
    const ZERO: Self;
    const ONE: Self;
    fn of(v: f64) -> Self;
    fn max_of(self, other: Self) -> Self;
    /// `self · a + b`, one fused multiply-add where the target has FMA.
    fn mul_add_v(self, a: Self, b: Self) -> Self;
    /// `exp(self)`; vectorisable for f32.
    fn exp_v(self) -> Self;
    /// `erf(self)`; vectorisable for f32 (no `exp`: a rational function).
    fn erf_v(self) -> Self;
    fn slice(storage: &CpuStorage) -> Result<&[Self]>;
    fn storage(values: Vec<Self>) -> CpuStorage;
    /// `C (+)= A · B` (the contract of `gemm`) by a kernel specific to the type, if it has one
    /// that runs on this CPU; returns whether it ran (`false` leaves `C` untouched).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gemm_fast(
        _m: usize,
        _n: usize,
        _k: usize,
        _a: &[Self],
        _lda: usize,
        _b: &[Self],
        _ldb: usize,
        _c: &mut [Self],
        _ldc: usize,
        _accumulate: bool,
    ) -> bool {
        false
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn mul_add_v(self, a: Self, b: Self) -> Self {
        self.mul_add(a, b)
    }
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn max_of(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
    #[inline(always)]
    fn exp_v(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn erf_v(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    fn slice(storage: &CpuStorage) -> Result<&[Self]> {
        match storage {
            CpuStorage::F64(v) => Ok(v),
            other => bail!("fused kernel expected f64 storage, got {:?}", other.dtype()),
        }
    }
    fn storage(values: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(values)
    }
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn mul_add_v(self, a: Self, b: Self) -> Self {
        self.mul_add(a, b)
    }
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn max_of(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
    #[inline(always)]
    fn exp_v(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn erf_v(self) -> Self {
        erf_f32(self)
    }
    fn slice(storage: &CpuStorage) -> Result<&[Self]> {
        match storage {
            CpuStorage::F32(v) => Ok(v),
            other => bail!("fused kernel expected f32 storage, got {:?}", other.dtype()),
        }
    }
    fn storage(values: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(values)
    }
    #[inline(always)]
    fn gemm_fast(
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        c: &mut [Self],
        ldc: usize,
        accumulate: bool,
    ) -> bool {
        super::gemm_avx512::gemm_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
            || super::gemm_avx2::gemm_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
    }
}

/// Branch-free `exp` for f32 (Cephes `expf` polynomial, relative error ≤ 2 ulp on
/// `[−87, 88]`; inputs below −87.3 give ≈ 1e-38 instead of a denormal or 0, above 88.7 give
/// ≈ 3e38).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFTER: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.7);
    let shifted = x * LOG2E + SHIFTER;
    let n = shifted - SHIFTER;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    p * scale
}

/// Branch-free `erf` for f32: a rational minimax fit on `[−4, 4]` (the one of Eigen's
/// `generic_fast_erf_float`), clamped outside; absolute error < 5e-7.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 - 2.101_024e-6;
    let p = p * x2 - 5.692_506_4e-5;
    let p = p * x2 - 7.349_906_3e-4;
    let p = p * x2 - 2.954_600_2e-3;
    let p = p * x2 - 1.609_603_3e-2;
    let p = p * x;
    let q = -1.456_607_2e-5_f32;
    let q = q * x2 - 2.133_740_6e-4;
    let q = q * x2 - 1.682_827e-3;
    let q = q * x2 - 7.373_329e-3;
    let q = q * x2 - 1.426_474e-2;
    p / q
}

/// The contiguous slice of a tensor's storage, or an error naming `what`.
pub(crate) fn contiguous_slice<'a, T: Float>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&T::slice(storage)?[start..end]),
        None => bail!("fused kernel {what}: input is not contiguous"),
    }
}

/// Whether the AVX2+FMA variants of the kernels can run on this CPU.
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX-512 variants of the kernels can run on this CPU.
#[inline]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && has_avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name(args)` that runs the `#[inline(always)]` generic body `$body` compiled for
/// AVX2+FMA when the CPU has them, and the baseline build otherwise.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* fn $name:ident<T: Float>($($arg:ident : $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        pub(crate) fn $name<T: Float>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn with_avx512<T: Float>($($arg: $ty),*) {
                    $body::<T>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2<T: Float>($($arg: $ty),*) {
                    $body::<T>($($arg),*)
                }
                if $crate::kernels::float::has_avx512() {
                    // SAFETY: the CPU supports avx512f, avx512vl, avx2 and fma (checked at run
                    // time just above), the only requirement of a `target_feature` function.
                    unsafe { with_avx512::<T>($($arg),*) };
                    return;
                }
                if $crate::kernels::float::has_avx2_fma() {
                    // SAFETY: the CPU supports avx2 and fma (checked at run time just above),
                    // which is the only requirement of calling a `target_feature` function.
                    unsafe { with_avx2::<T>($($arg),*) };
                    return;
                }
            }
            $body::<T>($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_f32_is_within_a_few_ulp_of_std_exp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let fast = exp_f32(x) as f64;
            let exact = (x as f64).exp();
            worst = worst.max((fast - exact).abs() / exact);
            x += 0.0137;
        }
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst relative error {worst}"
        );
        assert!(exp_f32(-1000.0) < 1e-37);
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn fast_erf_f32_has_small_absolute_error() {
        let mut worst = 0.0f64;
        let mut x = -7.0f32;
        while x < 7.0 {
            let exact = candle_core::cpu::erf::erf_f64(x as f64);
            worst = worst.max((erf_f32(x) as f64 - exact).abs());
            x += 0.0037;
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
    }
}
