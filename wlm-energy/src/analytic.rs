//! Analytic potentials (the GF-SDE potentials of METHOD.md §5 and a harmonic trap with soft repulsion) behind [`Energy`].

use candle_core::{bail, Result, Tensor, D};

use crate::energy::{check_positions, check_time, Energy};

/// A closed set of analytic population energies, `E(X) = Σ_i ψ(x_i)` (+ a pair term for
/// [`AnalyticPotential::HarmonicRepulsion`]), with closed-form forces in candle ops
/// (differentiable in `x`, so exact-mode rollouts work). Time-independent.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AnalyticPotential {
    /// `ψ(v) = ½ Σ_k v_k²`.
    Quadratic,
    /// `ψ(v) = ½ Σ_k (v_k⁴ − 16 v_k² + 5 v_k)`.
    StyblinskiTang,
    /// `ψ(v) = v₀² + 2 v₁² − 0.3 cos(3π v₀) − 0.4 cos(4π v₁) + 0.7` (dimension 2 only).
    Bohachevsky,
    /// `ψ(v) = Σ_k v_k + Σ_k v_k² + Σ_k v_k v_{k+1}` (as in JKOnet*).
    OakleyOHagan,
    /// `ψ(v) = Σ_k sin v_k`.
    WavyPlateau,
    /// `E = ½ k Σ_i |x_i|² + (a/N) Σ_{i≠j} exp(−|x_i − x_j|²/(2ℓ²))`.
    HarmonicRepulsion {
        /// Trap stiffness `k`.
        stiffness: f64,
        /// Repulsion amplitude `a` (positive repels).
        repulsion: f64,
        /// Repulsion length `ℓ > 0`.
        length: f64,
    },
}

impl AnalyticPotential {
    /// The five GF-SDE potentials, in METHOD.md §5's order.
    pub const GF_SDE: [AnalyticPotential; 5] = [
        AnalyticPotential::Quadratic,
        AnalyticPotential::StyblinskiTang,
        AnalyticPotential::Bohachevsky,
        AnalyticPotential::OakleyOHagan,
        AnalyticPotential::WavyPlateau,
    ];

    /// Checks `x` and the parameters; returns `(n_particles, dim)`.
    fn check(&self, x: &Tensor, t: f64, what: &str) -> Result<(usize, usize)> {
        let dim = match x.dims() {
            [_, d] => *d,
            dims => bail!("{what}: positions must have shape (n_particles, dim), got {dims:?}"),
        };
        let n = check_positions(x, dim, x.dtype(), what)?;
        check_time(t, what)?;
        match self {
            AnalyticPotential::Bohachevsky if dim != 2 => {
                bail!("{what}: the Bohachevsky potential needs dim 2, got dim {dim}")
            }
            AnalyticPotential::HarmonicRepulsion {
                stiffness,
                repulsion,
                length,
            } => {
                if !(stiffness.is_finite() && repulsion.is_finite()) {
                    bail!("{what}: stiffness {stiffness} and repulsion {repulsion} must be finite");
                }
                if !(length.is_finite() && *length > 0.0) {
                    bail!("{what}: repulsion length must be finite and positive, got {length}");
                }
            }
            _ => {}
        }
        Ok((n, dim))
    }

    /// `exp(−|x_i − x_j|²/(2ℓ²))` for all pairs, `(n, n)`, and the differences `(n, n, d)`.
    fn gaussian_kernel(x: &Tensor, length: f64) -> Result<(Tensor, Tensor)> {
        let diff = x.unsqueeze(1)?.broadcast_sub(&x.unsqueeze(0)?)?;
        let sq = diff.sqr()?.sum(D::Minus1)?;
        let kernel = (sq * (-0.5 / (length * length)))?.exp()?;
        Ok((kernel, diff))
    }
}

impl Energy for AnalyticPotential {
    fn energy(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let (n, dim) = self.check(x, t, "analytic energy")?;
        match self {
            AnalyticPotential::Quadratic => x.sqr()?.sum_all()? * 0.5,
            AnalyticPotential::StyblinskiTang => {
                let x2 = x.sqr()?;
                let terms = ((x2.sqr()? - (&x2 * 16.0)?)? + (x * 5.0)?)?;
                terms.sum_all()? * 0.5
            }
            AnalyticPotential::Bohachevsky => {
                let v0 = x.narrow(1, 0, 1)?;
                let v1 = x.narrow(1, 1, 1)?;
                let pi = std::f64::consts::PI;
                let per = ((v0.sqr()? + (v1.sqr()? * 2.0)?)?
                    - ((&v0 * (3.0 * pi))?.cos()? * 0.3)?)?
                    .sub(&((&v1 * (4.0 * pi))?.cos()? * 0.4)?)?;
                (per + 0.7)?.sum_all()
            }
            AnalyticPotential::OakleyOHagan => {
                let linear = (x.sum_all()? + x.sqr()?.sum_all()?)?;
                if dim < 2 {
                    Ok(linear)
                } else {
                    let pairs = (x.narrow(1, 0, dim - 1)? * x.narrow(1, 1, dim - 1)?)?;
                    linear + pairs.sum_all()?
                }
            }
            AnalyticPotential::WavyPlateau => x.sin()?.sum_all(),
            AnalyticPotential::HarmonicRepulsion {
                stiffness,
                repulsion,
                length,
            } => {
                let trap = (x.sqr()?.sum_all()? * (0.5 * stiffness))?;
                let (kernel, _) = Self::gaussian_kernel(x, *length)?;
                // The diagonal terms are exactly exp(0) = 1 each.
                let pairs = (kernel.sum_all()? - n as f64)?;
                trap + (pairs * (repulsion / n as f64))?
            }
        }
    }

    fn force(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let (n, dim) = self.check(x, t, "analytic force")?;
        let grad = match self {
            AnalyticPotential::Quadratic => x.clone(),
            AnalyticPotential::StyblinskiTang => {
                // ½(4v³ − 32v + 5)
                ((x.powf(3.0)? * 2.0)? - (x * 16.0)?)?.affine(1.0, 2.5)?
            }
            AnalyticPotential::Bohachevsky => {
                let pi = std::f64::consts::PI;
                let v0 = x.narrow(1, 0, 1)?;
                let v1 = x.narrow(1, 1, 1)?;
                let g0 = ((&v0 * 2.0)? + ((&v0 * (3.0 * pi))?.sin()? * (0.9 * pi))?)?;
                let g1 = ((&v1 * 4.0)? + ((&v1 * (4.0 * pi))?.sin()? * (1.6 * pi))?)?;
                Tensor::cat(&[g0, g1], 1)?
            }
            AnalyticPotential::OakleyOHagan => {
                // 1 + 2 v_k + v_{k−1} + v_{k+1}
                let base = x.affine(2.0, 1.0)?;
                if dim < 2 {
                    base
                } else {
                    let zeros = x.narrow(1, 0, 1)?.zeros_like()?;
                    let left = Tensor::cat(&[&zeros, &x.narrow(1, 0, dim - 1)?], 1)?;
                    let right = Tensor::cat(&[&x.narrow(1, 1, dim - 1)?, &zeros], 1)?;
                    ((base + left)? + right)?
                }
            }
            AnalyticPotential::WavyPlateau => x.cos()?,
            AnalyticPotential::HarmonicRepulsion {
                stiffness,
                repulsion,
                length,
            } => {
                let (kernel, diff) = Self::gaussian_kernel(x, *length)?;
                // −(2a/(Nℓ²)) Σ_j K_ij (x_i − x_j)
                let push = diff.broadcast_mul(&kernel.unsqueeze(2)?)?.sum(1)?;
                let coef = -2.0 * repulsion / (n as f64 * length * length);
                ((x * *stiffness)? + (push * coef)?)?
            }
        };
        grad.neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{force_vs_autograd, random};

    fn all_potentials() -> Vec<AnalyticPotential> {
        let mut all = AnalyticPotential::GF_SDE.to_vec();
        all.push(AnalyticPotential::HarmonicRepulsion {
            stiffness: 1.5,
            repulsion: 0.7,
            length: 0.8,
        });
        all
    }

    #[test]
    fn analytic_force_matches_autograd_of_energy() -> Result<()> {
        for potential in all_potentials() {
            for &dim in &[1usize, 2, 5] {
                if potential == AnalyticPotential::Bohachevsky && dim != 2 {
                    continue;
                }
                for &n in &[1usize, 2, 17] {
                    let x = random(&[n, dim], 3, -2.0, 2.0)?;
                    let err = force_vs_autograd(&potential, &x, 0.0)?;
                    assert!(err < 1e-12, "{potential:?} d={dim} n={n}: {err}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn analytic_energies_match_the_formulas_at_a_point() -> Result<()> {
        let x = Tensor::new(&[[0.5f64, -1.0]], &candle_core::Device::Cpu)?;
        let e = |p: AnalyticPotential| -> Result<f64> { p.energy(&x, 0.0)?.to_scalar::<f64>() };
        let pi = std::f64::consts::PI;
        assert!((e(AnalyticPotential::Quadratic)? - 0.625).abs() < 1e-14);
        let st = 0.5 * ((0.0625 - 4.0 + 2.5) + (1.0 - 16.0 - 5.0));
        assert!((e(AnalyticPotential::StyblinskiTang)? - st).abs() < 1e-14);
        let bo = 0.25 + 2.0 - 0.3 * (1.5 * pi).cos() - 0.4 * (-4.0 * pi).cos() + 0.7;
        assert!((e(AnalyticPotential::Bohachevsky)? - bo).abs() < 1e-14);
        assert!((e(AnalyticPotential::OakleyOHagan)? - (-0.5 + 1.25 - 0.5)).abs() < 1e-14);
        let wp = 0.5f64.sin() + (-1.0f64).sin();
        assert!((e(AnalyticPotential::WavyPlateau)? - wp).abs() < 1e-14);
        Ok(())
    }

    #[test]
    fn bad_arguments_are_errors_naming_the_values() -> Result<()> {
        let x = random(&[3, 3], 1, -1.0, 1.0)?;
        let err = AnalyticPotential::Bohachevsky.force(&x, 0.0).unwrap_err();
        assert!(err.to_string().contains("dim 3"), "{err}");
        let bad = AnalyticPotential::HarmonicRepulsion {
            stiffness: 1.0,
            repulsion: 1.0,
            length: 0.0,
        };
        let err = bad.energy(&x, 0.0).unwrap_err();
        assert!(err.to_string().contains("length"), "{err}");
        let err = AnalyticPotential::Quadratic
            .energy(&x.flatten_all()?, 0.0)
            .unwrap_err();
        assert!(err.to_string().contains("[9]"), "{err}");
        Ok(())
    }

    #[test]
    fn analytic_potentials_round_trip_through_serde() {
        for p in all_potentials() {
            let json = serde_json::to_string(&p).expect("serialise");
            let back: AnalyticPotential = serde_json::from_str(&json).expect("parse");
            assert_eq!(back, p);
        }
    }
}
