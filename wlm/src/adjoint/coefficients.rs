//! The scalar coefficients of one integrator step, `m`, `c₁`, `c₂`, and their derivatives with
//! respect to the friction `γ` (the sweep's `γ̄` needs them).

use wlm_integrate::Integrator;

/// The step's scalar coefficients and their derivatives with respect to `γ`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StepCoefficients {
    pub(crate) dt: f64,
    pub(crate) m: f64,
    pub(crate) c1: f64,
    pub(crate) c2: f64,
    pub(crate) dm: f64,
    pub(crate) dc1: f64,
    pub(crate) dc2: f64,
}

impl StepCoefficients {
    /// The coefficients of `integrator` for step size `dt` and friction `gamma`, computed in
    /// the reference's operation order (`m = exp((−0.5 γ) dt)`).
    pub(crate) fn new(integrator: Integrator, gamma: f64, dt: f64) -> Self {
        let m = (-0.5 * gamma * dt).exp();
        let dm = -(dt / 2.0) * m;
        match integrator {
            Integrator::ReferenceLeapfrog => {
                let c = m * (dt / 2.0) + (1.0 - m);
                let dc = (dt / 2.0 - 1.0) * dm;
                Self {
                    dt,
                    m,
                    c1: c,
                    c2: c,
                    dm,
                    dc1: dc,
                    dc2: dc,
                }
            }
            Integrator::ConformalLeapfrog => Self {
                dt,
                m,
                c1: dt / 2.0,
                c2: m * dt / 2.0,
                dm,
                dc1: 0.0,
                dc2: dt / 2.0 * dm,
            },
        }
    }
}
