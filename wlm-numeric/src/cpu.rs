//! Which explicit SIMD kernels this CPU runs (run-time CPUID checks, cached by std).

/// Whether the CPU has AVX2 and FMA (the `"avx2,fma"` kernels may run).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX-512 F, VL and DQ besides AVX2 and FMA: every kernel compiled with a
/// subset of `"avx512f,avx512vl,avx512dq,avx2,fma"` may run. (Every AVX-512 CPU since Skylake-SP
/// has all five; only the Xeon Phi lacked VL and DQ.)
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && has_avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx512_implies_avx2_and_fma() {
        assert!(!has_avx512() || has_avx2_fma());
    }
}
