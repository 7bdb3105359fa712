//! The five potentials `ψ` of the GF-SDE experiments (METHOD.md §5), with hand-written gradients.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A potential `ψ: R^d → R` acting on each point separately.
///
/// Formulas (per point `v`, coordinates `v_k`), as in JKOnet* and the WLM reference:
///
/// | variant | `ψ(v)` | `∂ψ/∂v_k` |
/// |---|---|---|
/// | `Quadratic` (`poly`) | `½ Σ v_k²` | `v_k` |
/// | `StyblinskiTang` | `½ Σ (v_k⁴ − 16 v_k² + 5 v_k)` | `2 v_k³ − 16 v_k + 2.5` |
/// | `Bohachevsky` | `v₀² + 2 v₁² − 0.3 cos 3πv₀ − 0.4 cos 4πv₁ + 0.7` | `2v₀ + 0.9π sin 3πv₀`, `4v₁ + 1.6π sin 4πv₁`, 0 beyond |
/// | `OakleyOHagan` | `Σ v_k + Σ v_k² + Σ_{k<d−1} v_k v_{k+1}` | `1 + 2v_k + v_{k−1} + v_{k+1}` (missing neighbours dropped) |
/// | `WavyPlateau` | `Σ sin v_k` | `cos v_k` |
///
/// Bohachevsky uses the first two coordinates only (the reference's definition), so it needs
/// `d ≥ 2`; the others accept any dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Potential {
    /// `½|v|²`: the Ornstein–Uhlenbeck drift.
    Quadratic,
    /// Styblinski–Tang: a double well per coordinate.
    StyblinskiTang,
    /// Bohachevsky: a bowl with cosine ripples (2-D).
    Bohachevsky,
    /// The JKOnet* "Oakley–O'Hagan" quadratic with linear and neighbour terms.
    OakleyOHagan,
    /// `Σ sin v_k`: a wavy, unbounded-below plateau.
    WavyPlateau,
}

impl Potential {
    /// Every potential, in the order of the reference experiments' table.
    pub const ALL: [Potential; 5] = [
        Self::Quadratic,
        Self::StyblinskiTang,
        Self::Bohachevsky,
        Self::OakleyOHagan,
        Self::WavyPlateau,
    ];

    /// The snake-case name (`quadratic`, `styblinski_tang`, …); [`FromStr`] also accepts the
    /// reference's `poly` for `quadratic`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Quadratic => "quadratic",
            Self::StyblinskiTang => "styblinski_tang",
            Self::Bohachevsky => "bohachevsky",
            Self::OakleyOHagan => "oakley_ohagan",
            Self::WavyPlateau => "wavy_plateau",
        }
    }

    /// The smallest dimension the potential is defined for.
    pub fn min_dim(self) -> usize {
        match self {
            Self::Bohachevsky => 2,
            _ => 1,
        }
    }

    /// `ψ(v)` of one point. Panics if `v.len() < self.min_dim()`.
    pub fn value(self, v: &[f64]) -> f64 {
        match self {
            Self::Quadratic => 0.5 * v.iter().map(|x| x * x).sum::<f64>(),
            Self::StyblinskiTang => {
                0.5 * v
                    .iter()
                    .map(|x| x.powi(4) - 16.0 * x * x + 5.0 * x)
                    .sum::<f64>()
            }
            Self::Bohachevsky => {
                v[0] * v[0] + 2.0 * v[1] * v[1]
                    - 0.3 * (3.0 * PI * v[0]).cos()
                    - 0.4 * (4.0 * PI * v[1]).cos()
                    + 0.7
            }
            Self::OakleyOHagan => {
                v.iter().map(|x| x + x * x).sum::<f64>()
                    + v.windows(2).map(|w| w[0] * w[1]).sum::<f64>()
            }
            Self::WavyPlateau => v.iter().map(|x| x.sin()).sum(),
        }
    }

    /// Writes `∇ψ(v)` of one point into `grad` (same length as `v`). Panics if the lengths
    /// differ or `v.len() < self.min_dim()`.
    pub fn gradient(self, v: &[f64], grad: &mut [f64]) {
        assert_eq!(
            v.len(),
            grad.len(),
            "gradient: point and output lengths differ"
        );
        match self {
            Self::Quadratic => grad.copy_from_slice(v),
            Self::StyblinskiTang => {
                for (g, x) in grad.iter_mut().zip(v) {
                    *g = 2.0 * x * x * x - 16.0 * x + 2.5;
                }
            }
            Self::Bohachevsky => {
                grad.fill(0.0);
                grad[0] = 2.0 * v[0] + 0.9 * PI * (3.0 * PI * v[0]).sin();
                grad[1] = 4.0 * v[1] + 1.6 * PI * (4.0 * PI * v[1]).sin();
            }
            Self::OakleyOHagan => {
                let d = v.len();
                for k in 0..d {
                    let left = if k > 0 { v[k - 1] } else { 0.0 };
                    let right = if k + 1 < d { v[k + 1] } else { 0.0 };
                    grad[k] = 1.0 + 2.0 * v[k] + left + right;
                }
            }
            Self::WavyPlateau => {
                for (g, x) in grad.iter_mut().zip(v) {
                    *g = x.cos();
                }
            }
        }
    }
}

impl fmt::Display for Potential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Potential {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "poly" {
            return Ok(Self::Quadratic);
        }
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                "unknown potential {s:?}: expected one of quadratic (or poly), styblinski_tang, \
                 bohachevsky, oakley_ohagan, wavy_plateau"
            ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_central_differences() {
        let points = [[0.3, -1.2, 0.7], [-2.1, 0.05, 1.9], [1.0, 1.0, -1.0]];
        for potential in Potential::ALL {
            for p in points {
                let mut grad = [0.0; 3];
                potential.gradient(&p, &mut grad);
                for k in 0..3 {
                    let h = 1e-6;
                    let (mut plus, mut minus) = (p, p);
                    plus[k] += h;
                    minus[k] -= h;
                    let fd = (potential.value(&plus) - potential.value(&minus)) / (2.0 * h);
                    assert!(
                        (fd - grad[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{potential} at {p:?}, coordinate {k}: analytic {} vs difference {fd}",
                        grad[k]
                    );
                }
            }
        }
    }

    #[test]
    fn names_parse_back_and_poly_means_quadratic() {
        for p in Potential::ALL {
            assert_eq!(p.name().parse::<Potential>().unwrap(), p);
        }
        assert_eq!("poly".parse::<Potential>().unwrap(), Potential::Quadratic);
        let msg = "rosenbrock".parse::<Potential>().unwrap_err().to_string();
        assert!(msg.contains("unknown potential \"rosenbrock\""), "{msg}");
    }
}
