//! At zero friction both schemes are time-reversible: n steps, flip v, n steps, flip v → start.

use candle_core::{Result, Tensor};
use proptest::prelude::*;
use wlm_integrate::{Integrator, State};

use crate::common::{max_abs_diff, scalar, tensor2, Pendulums};

type Cloud = Vec<Vec<f64>>;

/// Returns the final positions, the final (re-flipped) velocities and how far the forward leg
/// moved the positions.
fn forward_flip_forward_flip(
    integrator: Integrator,
    x0: &[Vec<f64>],
    v0: &[Vec<f64>],
    dt: f64,
    n_steps: usize,
) -> Result<(Cloud, Cloud, f64)> {
    let friction = scalar(0.0)?;
    let mut state = State::new(&Pendulums, tensor2(x0)?, tensor2(v0)?, 0.0)?;
    for _ in 0..n_steps {
        state = integrator.step(&Pendulums, &state, dt, &friction)?;
    }
    let moved = max_abs_diff(&state.positions.to_vec2::<f64>()?, x0);
    state.velocities = state.velocities.neg()?;
    for _ in 0..n_steps {
        state = integrator.step(&Pendulums, &state, dt, &friction)?;
    }
    let v_back: Tensor = state.velocities.neg()?;
    Ok((
        state.positions.to_vec2::<f64>()?,
        v_back.to_vec2::<f64>()?,
        moved,
    ))
}

fn cloud(n_particles: usize, dim: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    prop::collection::vec(prop::collection::vec(-2.0f64..2.0, dim), n_particles)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn both_schemes_are_time_reversible_at_zero_friction(
        (x0, v0) in (1usize..4, 1usize..3).prop_flat_map(|(n, d)| (cloud(n, d), cloud(n, d))),
        dt in 0.01f64..0.3,
        n_steps in 1usize..40,
        conformal in any::<bool>(),
    ) {
        let integrator = if conformal {
            Integrator::ConformalLeapfrog
        } else {
            Integrator::ReferenceLeapfrog
        };
        let (x, v, _) = forward_flip_forward_flip(integrator, &x0, &v0, dt, n_steps)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(max_abs_diff(&x, &x0) < 1e-11, "x {:?} vs {:?}", x, x0);
        prop_assert!(max_abs_diff(&v, &v0) < 1e-11, "v {:?} vs {:?}", v, v0);
    }
}

#[test]
fn friction_breaks_reversibility_so_the_property_test_can_fail() -> Result<()> {
    // Same protocol with γ > 0 must not return to the start (damping is not reversed by a flip).
    let x0 = vec![vec![1.0, -0.5], vec![0.2, 0.7]];
    let v0 = vec![vec![0.3, 0.1], vec![-0.4, 0.2]];
    let (_, _, moved) =
        forward_flip_forward_flip(Integrator::ReferenceLeapfrog, &x0, &v0, 0.1, 20)?;
    assert!(moved > 0.1, "the forward leg must move the particles");
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let friction = scalar(0.5)?;
        let mut state = State::new(&Pendulums, tensor2(&x0)?, tensor2(&v0)?, 0.0)?;
        for _ in 0..20 {
            state = integrator.step(&Pendulums, &state, 0.1, &friction)?;
        }
        state.velocities = state.velocities.neg()?;
        for _ in 0..20 {
            state = integrator.step(&Pendulums, &state, 0.1, &friction)?;
        }
        let v = state.velocities.neg()?.to_vec2::<f64>()?;
        assert!(max_abs_diff(&v, &v0) > 1e-3, "{integrator:?}");
    }
    Ok(())
}
