//! The two damped leapfrog schemes, the population [`State`] they advance, and one step of each.

use candle_core::{bail, DType, Result, Tensor};

use crate::force::{evaluate, ForceField};

/// Which damped leapfrog scheme advances the population (METHOD.md §2.2).
///
/// Both make exactly one force evaluation per step: the acceleration at the end of a step is
/// carried in [`State::acceleration`] and reused at the start of the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Integrator {
    /// The reference implementation's damped leapfrog (default, for number-for-number parity):
    ///
    /// ```text
    /// m = exp(−γ h / 2)      c = m h / 2 + (1 − m)
    /// v½ = m v + c a(x, t)
    /// x ← x + h v½
    /// t ← t + h
    /// a ← a(x, t)
    /// v ← m v½ + c a
    /// ```
    ///
    /// `γ = 0` is velocity Verlet; `γ → ∞` gives `x ← x + h a(x)` (unit-mobility gradient flow).
    /// **Its small-`h` limit is `dv/dt = (1 + γ) a − γ v`, not the paper's
    /// `dv/dt = a − γ v`**: the factor `c → h/2 + γh/2` multiplies the force by `1 + γ`. It is
    /// kept exactly for parity with the reference; use [`Integrator::ConformalLeapfrog`] for the
    /// paper's equation.
    #[default]
    ReferenceLeapfrog,
    /// Conformal symplectic leapfrog, consistent with the paper's `dv/dt = a − γ v`; the damping
    /// is split off and solved exactly:
    ///
    /// ```text
    /// v ← e^{−γh/2} v;  v ← v + (h/2) a;  x ← x + h v;  t ← t + h;
    /// a ← a(x, t);  v ← v + (h/2) a;  v ← e^{−γh/2} v
    /// ```
    ///
    /// At `γ = 0` it is velocity Verlet (symplectic, bounded energy error); for `γ > 0` it
    /// contracts the symplectic form by exactly `e^{−γh}` per step, like the continuous flow.
    ConformalLeapfrog,
}

/// A population's state: positions, velocities, the acceleration at those positions, and time.
///
/// `acceleration` is `a(positions, time)`, carried so that each step makes one force
/// evaluation. Every tensor keeps its candle graph: nothing here is detached.
///
/// # Shapes
/// `positions`, `velocities`, `acceleration`: `(n_particles, dim)`, one dtype, one device
/// (any common shape works; the integrators are elementwise).
#[derive(Clone, Debug)]
pub struct State {
    /// Particle positions `x`, `(n_particles, dim)`.
    pub positions: Tensor,
    /// Particle velocities `v`, `(n_particles, dim)`.
    pub velocities: Tensor,
    /// Accelerations `a(x, t)` at `positions` and `time`, `(n_particles, dim)`.
    pub acceleration: Tensor,
    /// Time `t` of this state (same unit as the step size).
    pub time: f64,
}

impl State {
    /// Builds a state, evaluating the field once at `(positions, time)`.
    ///
    /// # Shapes
    /// `positions`, `velocities`: `(n_particles, dim)`, same dtype and device.
    ///
    /// # Errors
    /// Positions and velocities that differ in shape, dtype or device; a non-finite `time`; a
    /// field that fails or returns an acceleration of another shape or dtype.
    pub fn new(
        field: &dyn ForceField,
        positions: Tensor,
        velocities: Tensor,
        time: f64,
    ) -> Result<State> {
        if !time.is_finite() {
            bail!("initial time must be finite, got {time}");
        }
        check_like("velocities", &velocities, &positions)?;
        let acceleration = evaluate(field, &positions, time)?;
        Ok(State {
            positions,
            velocities,
            acceleration,
            time,
        })
    }

    /// Checks that velocities and acceleration match positions in shape, dtype and device.
    pub(crate) fn validate(&self) -> Result<()> {
        check_like("velocities", &self.velocities, &self.positions)?;
        check_like("acceleration", &self.acceleration, &self.positions)
    }
}

impl Integrator {
    /// Advances `state` by one step of size `dt` (see the variants for the formulas).
    ///
    /// `friction` is a rank-0 tensor `γ ≥ 0` of the positions' dtype and device, so that
    /// gradients reach it (e.g. `γ = exp(θ_γ)`). Time advances as `state.time + dt`
    /// (accumulated, like the reference). `dt` may be negative (backward integration).
    ///
    /// # Shapes
    /// The state's tensors are `(n_particles, dim)`; `friction` is `()`.
    ///
    /// # Errors
    /// A non-finite `dt`; a friction tensor that is not rank-0, is negative or non-finite, or
    /// has another dtype or device than the positions; a state whose tensors disagree in shape,
    /// dtype or device; any failure of the field (or an acceleration of the wrong shape).
    pub fn step(
        &self,
        field: &dyn ForceField,
        state: &State,
        dt: f64,
        friction: &Tensor,
    ) -> Result<State> {
        check_dt(dt)?;
        state.validate()?;
        check_friction(friction, &state.positions)?;
        self.step_unchecked(field, state, dt, friction)
    }

    /// One step without argument validation (the caller has checked `dt` and `friction`).
    pub(crate) fn step_unchecked(
        &self,
        field: &dyn ForceField,
        state: &State,
        dt: f64,
        friction: &Tensor,
    ) -> Result<State> {
        match self {
            Integrator::ReferenceLeapfrog => reference_step(field, state, dt, friction),
            Integrator::ConformalLeapfrog => conformal_step(field, state, dt, friction),
        }
    }
}

/// The reference scheme's coefficients `m = exp(−γ dt / 2)` and `c = m dt/2 + (1 − m)`.
///
/// Evaluated in the reference's operation order, `m = exp((−0.5 γ) dt)` and
/// `c = m (dt/2) + (1 − m)·1`, so f64 results match PyTorch to rounding.
///
/// # Shapes
/// `friction`: `()` → `(m, c)`, both `()`, same dtype and device.
///
/// # Errors
/// A non-finite `dt`; a friction tensor that is not rank-0, negative or non-finite.
pub fn reference_coefficients(friction: &Tensor, dt: f64) -> Result<(Tensor, Tensor)> {
    check_dt(dt)?;
    check_friction_value(friction)?;
    coefficients_unchecked(friction, dt)
}

fn coefficients_unchecked(friction: &Tensor, dt: f64) -> Result<(Tensor, Tensor)> {
    let m = friction.affine(-0.5, 0.0)?.affine(dt, 0.0)?.exp()?;
    let c = (m.affine(dt / 2.0, 0.0)? + m.affine(-1.0, 1.0)?)?;
    Ok((m, c))
}

fn reference_step(
    field: &dyn ForceField,
    state: &State,
    dt: f64,
    friction: &Tensor,
) -> Result<State> {
    let (m, c) = coefficients_unchecked(friction, dt)?;
    let v_half = (state.velocities.broadcast_mul(&m)? + state.acceleration.broadcast_mul(&c)?)?;
    let positions = (&state.positions + v_half.affine(dt, 0.0)?)?;
    let time = state.time + dt;
    let acceleration = evaluate(field, &positions, time)?;
    let velocities = (v_half.broadcast_mul(&m)? + acceleration.broadcast_mul(&c)?)?;
    Ok(State {
        positions,
        velocities,
        acceleration,
        time,
    })
}

fn conformal_step(
    field: &dyn ForceField,
    state: &State,
    dt: f64,
    friction: &Tensor,
) -> Result<State> {
    let damping = friction.affine(-0.5 * dt, 0.0)?.exp()?;
    let v = state.velocities.broadcast_mul(&damping)?;
    let v = (v + state.acceleration.affine(dt / 2.0, 0.0)?)?;
    let positions = (&state.positions + v.affine(dt, 0.0)?)?;
    let time = state.time + dt;
    let acceleration = evaluate(field, &positions, time)?;
    let v = (v + acceleration.affine(dt / 2.0, 0.0)?)?;
    let velocities = v.broadcast_mul(&damping)?;
    Ok(State {
        positions,
        velocities,
        acceleration,
        time,
    })
}

/// `dt` must be a finite number.
pub(crate) fn check_dt(dt: f64) -> Result<()> {
    if !dt.is_finite() {
        bail!("step size dt must be finite, got {dt}");
    }
    Ok(())
}

/// `friction` must be rank-0, finite and non-negative, with the positions' dtype and device.
///
/// Its dtype and device checks mirror [`check_like`]'s on purpose: the messages differ (one
/// scalar, not a plural tensor) and the shape check does not apply.
pub(crate) fn check_friction(friction: &Tensor, positions: &Tensor) -> Result<()> {
    if friction.dtype() != positions.dtype() {
        bail!(
            "friction has dtype {:?} but positions have dtype {:?}",
            friction.dtype(),
            positions.dtype()
        );
    }
    if !friction.device().same_device(positions.device()) {
        bail!(
            "friction is on {:?} but positions are on {:?}",
            friction.device(),
            positions.device()
        );
    }
    check_friction_value(friction)
}

fn check_friction_value(friction: &Tensor) -> Result<()> {
    if friction.rank() != 0 {
        bail!(
            "friction must be a rank-0 tensor, got shape {:?}",
            friction.dims()
        );
    }
    let value = friction.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !(value.is_finite() && value >= 0.0) {
        bail!("friction must be finite and non-negative, got {value}");
    }
    Ok(())
}

/// `tensor` must have the shape, dtype and device of `positions`.
fn check_like(name: &str, tensor: &Tensor, positions: &Tensor) -> Result<()> {
    if tensor.dims() != positions.dims() {
        bail!(
            "{name} have shape {:?} but positions have shape {:?}",
            tensor.dims(),
            positions.dims()
        );
    }
    if tensor.dtype() != positions.dtype() {
        bail!(
            "{name} have dtype {:?} but positions have dtype {:?}",
            tensor.dtype(),
            positions.dtype()
        );
    }
    if !tensor.device().same_device(positions.device()) {
        bail!(
            "{name} are on {:?} but positions are on {:?}",
            tensor.device(),
            positions.device()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{FnField, Harmonic};
    use candle_core::Device;

    fn state() -> Result<State> {
        let x = Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0]], &Device::Cpu)?;
        let v = Tensor::new(&[[0.5f64, -0.5], [0.0, 1.0]], &Device::Cpu)?;
        State::new(&Harmonic { stiffness: 1.0 }, x, v, 0.0)
    }

    fn step_err(dt: f64, friction: &Tensor) -> String {
        let state = state().expect("state");
        Integrator::default()
            .step(&Harmonic { stiffness: 1.0 }, &state, dt, friction)
            .expect_err("must be an Err")
            .to_string()
    }

    #[test]
    fn step_rejects_bad_step_sizes_and_friction_with_clear_messages() -> Result<()> {
        let ok = Tensor::new(0.1f64, &Device::Cpu)?;
        assert!(step_err(f64::INFINITY, &ok).contains("dt must be finite, got inf"));
        assert!(step_err(f64::NAN, &ok).contains("dt must be finite, got NaN"));
        let rank1 = Tensor::new(&[0.1f64], &Device::Cpu)?;
        assert!(step_err(0.1, &rank1).contains("rank-0 tensor, got shape [1]"));
        let negative = Tensor::new(-0.1f64, &Device::Cpu)?;
        assert!(step_err(0.1, &negative).contains("non-negative, got -0.1"));
        let nan = Tensor::new(f64::NAN, &Device::Cpu)?;
        assert!(step_err(0.1, &nan).contains("non-negative, got NaN"));
        let wrong_dtype = Tensor::new(0.1f32, &Device::Cpu)?;
        assert!(step_err(0.1, &wrong_dtype).contains("friction has dtype F32"));
        assert!(reference_coefficients(&negative, 0.1).is_err());
        assert!(reference_coefficients(&ok, f64::NAN).is_err());
        Ok(())
    }

    #[test]
    fn state_rejects_mismatched_velocities_and_bad_field_outputs() -> Result<()> {
        let field = Harmonic { stiffness: 1.0 };
        let x = Tensor::zeros((3, 2), DType::F64, &Device::Cpu)?;
        let v = Tensor::zeros((2, 3), DType::F64, &Device::Cpu)?;
        let err = State::new(&field, x.clone(), v, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("velocities have shape [2, 3]"), "{err}");
        let v32 = Tensor::zeros((3, 2), DType::F32, &Device::Cpu)?;
        let err = State::new(&field, x.clone(), v32, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("velocities have dtype F32"), "{err}");
        let v = Tensor::zeros((3, 2), DType::F64, &Device::Cpu)?;
        let bad_field = FnField(|x: &Tensor, _t: f64| x.sum_keepdim(1));
        let err = State::new(&bad_field, x.clone(), v.clone(), 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("acceleration of shape [3, 1]"), "{err}");
        let err = State::new(&field, x, v, f64::NAN).unwrap_err().to_string();
        assert!(err.contains("initial time must be finite"), "{err}");
        Ok(())
    }

    #[test]
    fn conformal_step_at_zero_friction_equals_the_reference_step() -> Result<()> {
        let field = Harmonic { stiffness: 2.0 };
        let zero = Tensor::new(0.0f64, &Device::Cpu)?;
        let s = state()?;
        let a = Integrator::ReferenceLeapfrog.step(&field, &s, 0.1, &zero)?;
        let b = Integrator::ConformalLeapfrog.step(&field, &s, 0.1, &zero)?;
        let diff = (a.positions - b.positions)?
            .abs()?
            .max_all()?
            .to_scalar::<f64>()?
            + (a.velocities - b.velocities)?
                .abs()?
                .max_all()?
                .to_scalar::<f64>()?;
        assert!(diff < 1e-15, "{diff}");
        // … and at positive friction they differ (different equations).
        let gamma = Tensor::new(0.5f64, &Device::Cpu)?;
        let a = Integrator::ReferenceLeapfrog.step(&field, &s, 0.1, &gamma)?;
        let b = Integrator::ConformalLeapfrog.step(&field, &s, 0.1, &gamma)?;
        let diff = (a.velocities - b.velocities)?
            .abs()?
            .max_all()?
            .to_scalar::<f64>()?;
        assert!(diff > 1e-3, "{diff}");
        Ok(())
    }

    #[test]
    fn integrator_serializes_by_variant_name_and_defaults_to_reference() {
        assert_eq!(Integrator::default(), Integrator::ReferenceLeapfrog);
        let json = serde_json::to_string(&Integrator::ConformalLeapfrog).expect("serialize");
        assert_eq!(json, "\"ConformalLeapfrog\"");
        let back: Integrator = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, Integrator::ConformalLeapfrog);
    }
}
