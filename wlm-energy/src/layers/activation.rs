//! Exact (erf) GELU and SiLU with their VJPs, written in plain candle ops (or the fused GELU kernels).

use candle_core::{Result, Tensor};

use crate::kernels::{gelu as fused, Kernels};

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `Φ(z) = ½(1 + erf(z/√2))`.
fn normal_cdf(z: &Tensor) -> Result<Tensor> {
    ((z * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)? * 0.5
}

/// `gelu(z) = z Φ(z)`.
///
/// # Shapes
/// Elementwise.
pub(crate) fn gelu(z: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Plain => z * normal_cdf(z)?,
        Kernels::Fused => fused::gelu(z),
    }
}

/// `g ⊙ (Φ(z) + z φ(z))`, `φ(z) = exp(−z²/2)/√(2π)`.
///
/// # Shapes
/// Elementwise; `z` and `g` of equal shape.
pub(crate) fn gelu_vjp(z: &Tensor, g: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Plain => {
            let pdf = ((z.sqr()? * -0.5)?.exp()? * FRAC_1_SQRT_2PI)?;
            g * (normal_cdf(z)? + (z * pdf)?)?
        }
        Kernels::Fused => fused::gelu_vjp(z, g),
    }
}

/// The logistic `s(z) = 1/(1 + exp(−z))`.
fn logistic(z: &Tensor) -> Result<Tensor> {
    (z.neg()?.exp()? + 1.0)?.recip()
}

/// `silu(z) = z s(z)`.
///
/// # Shapes
/// Elementwise.
pub(crate) fn silu(z: &Tensor) -> Result<Tensor> {
    z * logistic(z)?
}

/// `g ⊙ s(z)(1 + z(1 − s(z)))`.
///
/// # Shapes
/// Elementwise; `z` and `g` of equal shape.
#[cfg(test)]
pub(crate) fn silu_vjp(z: &Tensor, g: &Tensor) -> Result<Tensor> {
    let s = logistic(z)?;
    let one_minus_s = s.affine(-1.0, 1.0)?;
    g * (&s * ((z * one_minus_s)? + 1.0)?)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{autograd_vjp, entry_rel, random};
    use candle_core::Var;

    #[test]
    fn gelu_vjp_matches_autograd() -> Result<()> {
        let z = Var::from_tensor(&random(&[17, 9], 1, -6.0, 6.0)?)?;
        let g = random(&[17, 9], 2, -1.0, 1.0)?;
        let y = gelu(z.as_tensor(), Kernels::Plain)?;
        let auto = autograd_vjp(&z, &y, &g)?;
        assert!(entry_rel(&gelu_vjp(z.as_tensor(), &g, Kernels::Plain)?, &auto)? < 1e-13);
        assert!(entry_rel(&gelu_vjp(z.as_tensor(), &g, Kernels::Fused)?, &auto)? < 1e-13);
        Ok(())
    }

    #[test]
    fn silu_vjp_matches_autograd() -> Result<()> {
        let z = Var::from_tensor(&random(&[17, 9], 1, -30.0, 30.0)?)?;
        let g = random(&[17, 9], 2, -1.0, 1.0)?;
        let y = silu(z.as_tensor())?;
        let auto = autograd_vjp(&z, &y, &g)?;
        assert!(entry_rel(&silu_vjp(z.as_tensor(), &g)?, &auto)? < 1e-13);
        Ok(())
    }

    #[test]
    fn gelu_matches_known_values() -> Result<()> {
        let z = Tensor::new(&[-1.0f64, 0.0, 1.0, 3.0], &candle_core::Device::Cpu)?;
        let y = gelu(&z, Kernels::Plain)?.to_vec1::<f64>()?;
        let want = [
            -0.158_655_253_931_457_05,
            0.0,
            0.841_344_746_068_542_9,
            2.995_950_305_905_11,
        ];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        Ok(())
    }
}
