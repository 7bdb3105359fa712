//! Conditional paths `μ_τ(x₀, x₁)`, their velocities `u_τ = ∂_τ μ_τ` and action costs: the
//! linear (kinetic) path, the harmonic path of Lagrangian flow matching, and its anisotropic
//! variant with one frequency per principal direction.
//!
//! # Why the harmonic coupling is the squared-Euclidean one
//!
//! The harmonic action between `x₀` and `x₁` is
//! `S(x₀, x₁) = (ω / 2 sin ω) [(|x₀|² + |x₁|²) cos ω − 2⟨x₀, x₁⟩]`. Summed over a coupling of
//! two fixed clouds, the `|x₀|²` and `|x₁|²` terms contribute the same amount to every
//! coupling (each point carries its fixed mass), so the optimal coupling minimises
//! `−(ω / sin ω) Σ π_ij ⟨x₀ᵢ, x₁ⱼ⟩`. For isotropic `ω ∈ (0, π)` the factor `ω / sin ω` is
//! positive, so that is the coupling maximising `Σ π_ij ⟨x₀ᵢ, x₁ⱼ⟩`, which is exactly the
//! coupling minimising `Σ π_ij |x₀ᵢ − x₁ⱼ|²`. The anisotropic action is the same sum per
//! principal coordinate with factors `c_k = ω_k / sin ω_k > 0`: its plan is the
//! squared-Euclidean plan of the coordinates scaled by `√c_k`
//! ([`Path::coupling_coordinates`]), which differs from the plain one when the `ω_k` differ.

use crate::config::PathKind;
use crate::error::{Error, Result};
use wlm_numeric::{mean_and_covariance, symmetric_eigen};

/// Principal axes of the training data and one harmonic frequency per axis.
#[derive(Clone, Debug, PartialEq)]
pub struct AnisotropicBasis {
    /// The data mean, `(dim,)`.
    pub center: Vec<f64>,
    /// Row-major `(dim, dim)`: row `k` is the `k`-th principal direction (decreasing variance).
    pub directions: Vec<f64>,
    /// `ω_k ∈ (0, π)` of each direction.
    pub omegas: Vec<f64>,
}

impl AnisotropicBasis {
    /// Principal axes of the row-major `(n, dim)` cloud `x`, with `ω_k` spaced linearly from
    /// `omega_base` (first direction) to `omega_base · omega_ratio` (last), as torchlfm's
    /// `AnisoParams.from_data` with `freq_mode="linear"`.
    ///
    /// # Errors
    /// [`Error::Data`] for an empty cloud or one with non-finite values; [`Error::Config`]
    /// for frequencies outside (0, π).
    pub fn fit(x: &[f64], dim: usize, omega_base: f64, omega_ratio: f64) -> Result<Self> {
        if dim == 0 || x.is_empty() || !x.len().is_multiple_of(dim) {
            return Err(Error::Data(format!(
                "cannot fit principal directions to {} values in {dim} dimensions",
                x.len()
            )));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(
                "non-finite coordinate in the training data".into(),
            ));
        }
        let omega_max = omega_base * omega_ratio;
        for (field, w) in [
            ("flow.path.omega_base", omega_base),
            ("flow.path.omega_ratio", omega_max),
        ] {
            if !(w > 0.0 && w < std::f64::consts::PI) {
                return Err(Error::config(field, format!("frequency {w} not in (0, π)")));
            }
        }
        let (center, cov) = mean_and_covariance(x, dim);
        let (_, directions) = symmetric_eigen(&cov, dim);
        let omegas = (0..dim)
            .map(|k| {
                if dim == 1 {
                    omega_base
                } else {
                    omega_base + (omega_max - omega_base) * k as f64 / (dim - 1) as f64
                }
            })
            .collect();
        Ok(Self {
            center,
            directions,
            omegas,
        })
    }

    fn dim(&self) -> usize {
        self.center.len()
    }

    /// Principal coordinates `R (x − c)` of one point.
    fn to_principal(&self, x: &[f64]) -> Vec<f64> {
        let dim = self.dim();
        (0..dim)
            .map(|k| {
                self.directions[k * dim..(k + 1) * dim]
                    .iter()
                    .zip(x.iter().zip(&self.center))
                    .map(|(r, (xi, ci))| r * (xi - ci))
                    .sum()
            })
            .collect()
    }

    /// `Rᵀ y` (no centre added).
    fn to_data_offset(&self, y: &[f64], out: &mut [f64]) {
        let dim = self.dim();
        out.fill(0.0);
        for (k, yk) in y.iter().enumerate() {
            for (o, r) in out.iter_mut().zip(&self.directions[k * dim..(k + 1) * dim]) {
                *o += r * yk;
            }
        }
    }
}

/// A conditional path ready to use (the anisotropic one fitted to data).
#[derive(Clone, Debug, PartialEq)]
pub enum Path {
    /// `μ_τ = (1−τ)x₀ + τx₁`, `u_τ = x₁ − x₀`.
    Linear,
    /// `μ_τ = (sin(ω(1−τ)) x₀ + sin(ωτ) x₁) / sin ω`,
    /// `u_τ = ω (cos(ωτ) x₁ − cos(ω(1−τ)) x₀) / sin ω`.
    Harmonic {
        /// ω ∈ (0, π).
        omega: f64,
    },
    /// The harmonic path per principal coordinate with its own `ω_k`, about the data mean.
    Anisotropic(AnisotropicBasis),
}

/// The harmonic weights of `(x₀, x₁)` in `μ_τ` and in `u_τ`.
fn harmonic_weights(omega: f64, tau: f64) -> ([f64; 2], [f64; 2]) {
    let s = omega.sin();
    (
        [(omega * (1.0 - tau)).sin() / s, (omega * tau).sin() / s],
        [
            -omega * (omega * (1.0 - tau)).cos() / s,
            omega * (omega * tau).cos() / s,
        ],
    )
}

impl Path {
    /// The path of `kind`; the anisotropic one is fitted to the row-major `(n, dim)` cloud
    /// `data` (the pooled training points).
    ///
    /// # Errors
    /// As [`AnisotropicBasis::fit`].
    pub fn new(kind: &PathKind, data: &[f64], dim: usize) -> Result<Self> {
        Ok(match *kind {
            PathKind::Linear => Self::Linear,
            PathKind::Harmonic { omega } => Self::Harmonic { omega },
            PathKind::Anisotropic {
                omega_base,
                omega_ratio,
            } => Self::Anisotropic(AnisotropicBasis::fit(data, dim, omega_base, omega_ratio)?),
        })
    }

    /// Writes `μ_τ(x₀, x₁)` into `out`. All slices have the data dimension.
    pub fn position(&self, x0: &[f64], x1: &[f64], tau: f64, out: &mut [f64]) {
        match self {
            Self::Linear => {
                for ((o, a), b) in out.iter_mut().zip(x0).zip(x1) {
                    *o = (1.0 - tau) * a + tau * b;
                }
            }
            Self::Harmonic { omega } => {
                let ([w0, w1], _) = harmonic_weights(*omega, tau);
                for ((o, a), b) in out.iter_mut().zip(x0).zip(x1) {
                    *o = w0 * a + w1 * b;
                }
            }
            Self::Anisotropic(basis) => {
                let (y0, y1) = (basis.to_principal(x0), basis.to_principal(x1));
                let y: Vec<f64> = (0..y0.len())
                    .map(|k| {
                        let ([w0, w1], _) = harmonic_weights(basis.omegas[k], tau);
                        w0 * y0[k] + w1 * y1[k]
                    })
                    .collect();
                basis.to_data_offset(&y, out);
                for (o, c) in out.iter_mut().zip(&basis.center) {
                    *o += c;
                }
            }
        }
    }

    /// Writes the conditional velocity `u_τ = ∂_τ μ_τ(x₀, x₁)` into `out`.
    pub fn velocity(&self, x0: &[f64], x1: &[f64], tau: f64, out: &mut [f64]) {
        match self {
            Self::Linear => {
                for ((o, a), b) in out.iter_mut().zip(x0).zip(x1) {
                    *o = b - a;
                }
            }
            Self::Harmonic { omega } => {
                let (_, [w0, w1]) = harmonic_weights(*omega, tau);
                for ((o, a), b) in out.iter_mut().zip(x0).zip(x1) {
                    *o = w0 * a + w1 * b;
                }
            }
            Self::Anisotropic(basis) => {
                let (y0, y1) = (basis.to_principal(x0), basis.to_principal(x1));
                let u: Vec<f64> = (0..y0.len())
                    .map(|k| {
                        let (_, [w0, w1]) = harmonic_weights(basis.omegas[k], tau);
                        w0 * y0[k] + w1 * y1[k]
                    })
                    .collect();
                basis.to_data_offset(&u, out);
            }
        }
    }

    /// The action `∫₀¹ L(μ_τ, u_τ) dτ` of the path from `x₀` to `x₁`: `½|x₁ − x₀|²` for the
    /// linear path; `(ω / 2 sin ω)[(|x₀|² + |x₁|²) cos ω − 2⟨x₀, x₁⟩]` for the harmonic one
    /// (summed over principal coordinates about the mean for the anisotropic one).
    pub fn action_cost(&self, x0: &[f64], x1: &[f64]) -> f64 {
        let harmonic = |omega: f64, a: &[f64], b: &[f64]| {
            let (sq0, sq1, dot) = a.iter().zip(b).fold((0.0, 0.0, 0.0), |acc, (p, q)| {
                (acc.0 + p * p, acc.1 + q * q, acc.2 + p * q)
            });
            omega / (2.0 * omega.sin()) * ((sq0 + sq1) * omega.cos() - 2.0 * dot)
        };
        match self {
            Self::Linear => {
                0.5 * x0
                    .iter()
                    .zip(x1)
                    .map(|(a, b)| (b - a) * (b - a))
                    .sum::<f64>()
            }
            Self::Harmonic { omega } => harmonic(*omega, x0, x1),
            Self::Anisotropic(basis) => {
                let (y0, y1) = (basis.to_principal(x0), basis.to_principal(x1));
                (0..y0.len())
                    .map(|k| harmonic(basis.omegas[k], &y0[k..=k], &y1[k..=k]))
                    .sum()
            }
        }
    }

    /// Coordinates of the row-major `(n, dim)` cloud `x` whose squared-Euclidean optimal plan
    /// is the optimal plan of [`Path::action_cost`] (see the module docs): `x` itself for the
    /// linear and harmonic paths, `√(ω_k / sin ω_k) · R(x − c)` for the anisotropic one.
    pub fn coupling_coordinates(&self, x: &[f64], dim: usize) -> Vec<f64> {
        match self {
            Self::Linear | Self::Harmonic { .. } => x.to_vec(),
            Self::Anisotropic(basis) => {
                let scale: Vec<f64> = basis.omegas.iter().map(|w| (w / w.sin()).sqrt()).collect();
                x.chunks_exact(dim)
                    .flat_map(|p| {
                        basis
                            .to_principal(p)
                            .into_iter()
                            .zip(&scale)
                            .map(|(y, s)| y * s)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests;
