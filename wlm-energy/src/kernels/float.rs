//! The float abstraction of the fused kernels: f32/f64 arithmetic, a vectorisable `exp`/`erf`, storage access.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result};
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// Scalar type of a fused kernel (`f32` or `f64`).
///
/// `f32` uses the branch-free polynomial `wlm_numeric::exp_f32` (relative error a few ulp) and a rational `erf`
/// (absolute error < 5e-7) that LLVM vectorises; `f64` uses the standard library's `exp` and
/// libm's `erf`, so the f64 fused path agrees with the plain candle path to rounding.
///
/// Its operator bounds mirror `wlm_ot`'s `kernel::Real` on purpose: the lower crates do not
/// depend on each other, and their shared `wlm-numeric` has no candle types to hang it on.
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
    /// The values as `f32`, when `Self` is `f32` (the fast f32 kernels' downcast).
    #[inline(always)]
    fn as_f32(_values: &[Self]) -> Option<&[f32]> {
        None
    }
    /// The values as mutable `f32`, when `Self` is `f32`.
    #[inline(always)]
    fn as_f32_mut(_values: &mut [Self]) -> Option<&mut [f32]> {
        None
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

// Deliberately parallel to `impl Float for f64` above, method for method; only the precision
// and the `exp`/`erf` approximations differ.
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
        // Plain multiply-adds: this runs in the baseline build too, where a fused one would be
        // a libm call.
        wlm_numeric::exp_f32::<false>(self)
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
    fn as_f32(values: &[Self]) -> Option<&[f32]> {
        Some(values)
    }
    #[inline(always)]
    fn as_f32_mut(values: &mut [Self]) -> Option<&mut [f32]> {
        Some(values)
    }
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
pub(crate) use wlm_numeric::has_avx2_fma;
/// Whether the AVX-512 variants of the kernels can run on this CPU.
pub(crate) use wlm_numeric::has_avx512;

/// Defines `$name(args)` that runs the `#[inline(always)]` generic body `$body` compiled for
/// AVX2+FMA when the CPU has them, and the baseline build otherwise.
///
/// Each use restates its body's signature (the macro has to see the arguments); that repetition
/// of every `*_body` signature in a `simd_dispatch!` call is deliberate.
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
