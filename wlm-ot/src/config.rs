//! `SinkhornConfig`: the parameters of the debiased Sinkhorn divergence, with geomloss defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parameters of [`sinkhorn_divergence`](crate::sinkhorn_divergence). Plain data; `Default` gives
/// the reference's settings (`p = 2`, `blur = 0.05`, `scaling = 0.9`, geomloss's single pass at
/// the final temperature).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SinkhornConfig {
    /// Cost exponent: `1` for `C = |x − y|`, `2` for `C = ½|x − y|²`. Default 2.
    pub p: u32,
    /// Blur, in the units of the coordinates; the final temperature is `ε = blur^p`.
    /// Must be finite and > 0. Default 0.05.
    pub blur: f64,
    /// Ratio between successive blurs of the ε-annealing schedule, in (0, 1). Default 0.9 (the
    /// reference's; geomloss's own default is 0.5). Closer to 1 = more steps, more accurate.
    pub scaling: f64,
    /// `None` (default): geomloss's schedule, one update at the final ε, whose envelope gradient
    /// is *not* the exact derivative of the value. `Some(..)`: keep updating at the final ε until
    /// converged, so that the gradient is the derivative of the value.
    pub converge_final: Option<FinalConvergence>,
}

impl Default for SinkhornConfig {
    fn default() -> Self {
        Self {
            p: 2,
            blur: 0.05,
            scaling: 0.9,
            converge_final: None,
        }
    }
}

/// Extra updates at the final temperature, after geomloss's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinalConvergence {
    /// Stop when no potential moved by more than this in one averaged update (units of the cost),
    /// or by more than 8 ulps of the largest potential (the precision floor, which matters for
    /// f32). Default 1e-12.
    pub tolerance: f64,
    /// Cap on the extra updates; reaching it is not an error (see
    /// [`SinkhornOutput::final_change`](crate::SinkhornOutput::final_change)). Default 10 000.
    pub max_iterations: usize,
}

impl Default for FinalConvergence {
    fn default() -> Self {
        Self {
            tolerance: 1e-12,
            max_iterations: 10_000,
        }
    }
}

impl SinkhornConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidExponent`], [`Error::InvalidBlur`], [`Error::InvalidScaling`],
    /// [`Error::InvalidConvergence`].
    pub fn validate(&self) -> Result<()> {
        if self.p != 1 && self.p != 2 {
            return Err(Error::InvalidExponent(self.p));
        }
        if !(self.blur.is_finite() && self.blur > 0.0) {
            return Err(Error::InvalidBlur(self.blur));
        }
        if !(self.scaling > 0.0 && self.scaling < 1.0) {
            return Err(Error::InvalidScaling(self.scaling));
        }
        if let Some(conv) = self.converge_final {
            if !(conv.tolerance.is_finite() && conv.tolerance > 0.0) || conv.max_iterations == 0 {
                return Err(Error::InvalidConvergence {
                    tolerance: conv.tolerance,
                    max_iterations: conv.max_iterations,
                });
            }
        }
        Ok(())
    }

    /// The final temperature `ε = blur^p`, as geomloss computes it (`0.2**2 = 0.04000000000000001`).
    pub fn final_epsilon(&self) -> f64 {
        self.blur.powi(self.p as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_reference_setting() {
        let c = SinkhornConfig::default();
        assert_eq!((c.p, c.blur, c.scaling), (2, 0.05, 0.9));
        assert!(c.converge_final.is_none());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn every_bad_field_is_an_error() {
        let ok = SinkhornConfig::default();
        let bad = [
            SinkhornConfig { p: 3, ..ok },
            SinkhornConfig { p: 0, ..ok },
            SinkhornConfig { blur: 0.0, ..ok },
            SinkhornConfig { blur: -1.0, ..ok },
            SinkhornConfig {
                blur: f64::NAN,
                ..ok
            },
            SinkhornConfig {
                blur: f64::INFINITY,
                ..ok
            },
            SinkhornConfig { scaling: 1.0, ..ok },
            SinkhornConfig { scaling: 0.0, ..ok },
            SinkhornConfig {
                scaling: f64::NAN,
                ..ok
            },
            SinkhornConfig {
                converge_final: Some(FinalConvergence {
                    tolerance: 0.0,
                    max_iterations: 5,
                }),
                ..ok
            },
            SinkhornConfig {
                converge_final: Some(FinalConvergence {
                    tolerance: 1e-9,
                    max_iterations: 0,
                }),
                ..ok
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?} was accepted");
        }
    }

    #[test]
    fn final_epsilon_is_a_python_float_power() {
        let c = SinkhornConfig {
            blur: 0.2,
            ..Default::default()
        };
        assert_eq!(c.final_epsilon(), 0.04000000000000001);
        let c1 = SinkhornConfig {
            p: 1,
            blur: 0.2,
            ..Default::default()
        };
        assert_eq!(c1.final_epsilon(), 0.2);
    }
}
