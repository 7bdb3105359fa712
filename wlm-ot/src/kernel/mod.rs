//! The CPU kernel: log-domain softmin passes over tiles, never storing an N×M matrix.
//!
//! Structure (a GPU path slots in behind the same three functions):
//! - `wlm_numeric::exp_nonpositive_*`: the branch-free polynomial `exp` that vectorises;
//! - [`softmin`]: one *softmin pass* `out_i = −ε log Σ_j exp(h_j − C(x_i, y_j)/ε)` with an online
//!   log-sum-exp over column tiles, optionally also accumulating the *gradient sums*
//!   `Σ_j P_ij ∇₁C(x_i, y_j)`; the four potentials of the Sinkhorn loop all go through it;
//! - [`dispatch`]: runs a batch of passes over rows, multi-threaded when the batch is large,
//!   with the best kernel this CPU runs, picked at run time: the explicit AVX-512 kernels of
//!   [`avx512`], the explicit AVX2 + FMA kernels of [`avx2`] (both expanded from the one body in
//!   [`body`]), or the portable [`softmin`].

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "x86_64")]
mod body;
pub(crate) mod dispatch;
pub(crate) mod softmin;

use std::fmt::Debug;

#[cfg(target_arch = "x86_64")]
use softmin::{Columns, Scratch};
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub(crate) use dispatch::run_passes;
pub(crate) use softmin::{Cloud, Cost, PassSpec};

/// The float types the kernels run in: `f32` and `f64` (conversions `from_f64`/`to_f64` and
/// `DTYPE` come from candle's `WithDType`).
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + Debug
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
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// −∞ (padding logits, empty maxima).
    const NEG_INFINITY: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// Finite (neither NaN nor ±∞).
    fn is_finite(self) -> bool;
    /// `self * a + b`, fused when `FMA`.
    fn madd<const FMA: bool>(self, a: Self, b: Self) -> Self;
    /// `exp(t)` for `t <= 0` (vectorisable polynomial); exactly 0 below −80 (f32) / −700 (f64).
    fn exp_nonpositive<const FMA: bool>(self) -> Self;
    /// Square root (IEEE).
    fn sqrt(self) -> Self;
    /// Natural log (libm).
    fn ln(self) -> Self;
    /// `exp` (libm), for scalar rescaling factors.
    fn exp(self) -> Self;
    /// The AVX-512 kernel of this type ([`avx512`]): `softmin_rows` in base-2 units.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512DQ.
    #[cfg(target_arch = "x86_64")]
    unsafe fn softmin_rows_avx512<const P2: bool, const GRAD: bool>(
        columns: &Columns<'_, Self>,
        rows: &Cloud<Self>,
        row_start: usize,
        out: &mut [Self],
        grad: &mut [Self],
        scratch: &mut Scratch<Self>,
    );
    /// The AVX2 + FMA kernel of this type ([`avx2`]): `softmin_rows` in base-2 units.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn softmin_rows_avx2<const P2: bool, const GRAD: bool>(
        columns: &Columns<'_, Self>,
        rows: &Cloud<Self>,
        row_start: usize,
        out: &mut [Self],
        grad: &mut [Self],
        scratch: &mut Scratch<Self>,
    );
    /// The larger of two values; `other` when `self` is NaN (vectorises to `max`).
    #[inline(always)]
    fn max_fast(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
}

macro_rules! impl_real {
    ($t:ty, $exp:ident, $avx2:ident, $avx512:ident) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const EPSILON: Self = <$t>::EPSILON;
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn madd<const FMA: bool>(self, a: Self, b: Self) -> Self {
                if FMA {
                    self.mul_add(a, b)
                } else {
                    self * a + b
                }
            }
            #[inline(always)]
            fn exp_nonpositive<const FMA: bool>(self) -> Self {
                wlm_numeric::$exp::<FMA>(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            // `softmin_rows_avx2` and `softmin_rows_avx512` are deliberately parallel forwards,
            // one per instruction set (each with its own safety contract); change them together.
            #[cfg(target_arch = "x86_64")]
            unsafe fn softmin_rows_avx2<const P2: bool, const GRAD: bool>(
                columns: &Columns<'_, Self>,
                rows: &Cloud<Self>,
                row_start: usize,
                out: &mut [Self],
                grad: &mut [Self],
                scratch: &mut Scratch<Self>,
            ) {
                // SAFETY: the caller guarantees AVX2 and FMA.
                unsafe {
                    avx2::$avx2::softmin_rows::<P2, GRAD>(
                        columns, rows, row_start, out, grad, scratch,
                    )
                }
            }
            #[cfg(target_arch = "x86_64")]
            unsafe fn softmin_rows_avx512<const P2: bool, const GRAD: bool>(
                columns: &Columns<'_, Self>,
                rows: &Cloud<Self>,
                row_start: usize,
                out: &mut [Self],
                grad: &mut [Self],
                scratch: &mut Scratch<Self>,
            ) {
                // SAFETY: the caller guarantees AVX-512F and AVX-512DQ.
                unsafe {
                    avx512::$avx512::softmin_rows::<P2, GRAD>(
                        columns, rows, row_start, out, grad, scratch,
                    )
                }
            }
        }
    };
}

impl_real!(f32, exp_nonpositive_f32, f32x8, f32x16);
impl_real!(f64, exp_nonpositive_f64, f64x4, f64x8);

/// One step of the tests' linear congruential generator (Knuth's MMIX constants).
#[cfg(test)]
pub(crate) fn lcg_step(state: u64) -> u64 {
    state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
}

/// `n` deterministic pseudo-random values in `[0, 1)`: the top 53 bits of successive
/// [`lcg_step`]s from `state` (test inputs).
#[cfg(test)]
pub(crate) fn lcg_values(n: usize, mut state: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            state = lcg_step(state);
            (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}
