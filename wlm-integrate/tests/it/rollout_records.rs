//! `rollout` records exactly the requested steps, matches manual stepping, and rejects bad
//! record lists with an `Err`.

use candle_core::Result;
use wlm_integrate::{rollout, Integrator, State};

use crate::common::{scalar, tensor2, Nonlinear};

fn initial() -> Result<State> {
    State::new(
        &Nonlinear,
        tensor2(&[vec![0.3, -1.1], vec![1.4, 0.25]])?,
        tensor2(&[vec![0.5, 0.1], vec![-0.2, 0.8]])?,
        0.25,
    )
}

#[test]
fn rollout_records_the_requested_steps_and_matches_manual_stepping() -> Result<()> {
    let (dt, n_steps) = (0.05, 12);
    let friction = scalar(0.4)?;
    let record = [0, 3, 4, 12];
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let traj = rollout(
            integrator,
            &Nonlinear,
            initial()?,
            dt,
            n_steps,
            &friction,
            &record,
        )?;
        assert_eq!(traj.steps, record.to_vec());
        assert_eq!(traj.states.len(), record.len());

        let mut state = initial()?;
        let mut time = state.time;
        for step_idx in 0..=n_steps {
            if step_idx > 0 {
                state = integrator.step(&Nonlinear, &state, dt, &friction)?;
                time += dt;
            }
            if let Some(k) = record.iter().position(|&r| r == step_idx) {
                let got = &traj.states[k];
                assert_eq!(traj.times[k], time, "accumulated time at step {step_idx}");
                assert_eq!(got.time, time);
                assert_eq!(
                    got.positions.to_vec2::<f64>()?,
                    state.positions.to_vec2::<f64>()?
                );
                assert_eq!(
                    got.velocities.to_vec2::<f64>()?,
                    state.velocities.to_vec2::<f64>()?
                );
                assert!(traj.state_at(step_idx).is_some());
            } else {
                assert!(traj.state_at(step_idx).is_none());
            }
        }
        assert_eq!(traj.stacked_positions()?.dims(), &[4, 2, 2]);
    }
    Ok(())
}

#[test]
fn rollout_with_an_empty_record_returns_an_empty_trajectory() -> Result<()> {
    let traj = rollout(
        Integrator::default(),
        &Nonlinear,
        initial()?,
        0.1,
        5,
        &scalar(0.0)?,
        &[],
    )?;
    assert!(traj.steps.is_empty() && traj.states.is_empty() && traj.times.is_empty());
    assert!(traj.stacked_positions().is_err());
    Ok(())
}

#[test]
fn rollout_rejects_bad_record_lists_and_arguments_with_clear_errors() -> Result<()> {
    let friction = scalar(0.1)?;
    let cases: [(&[usize], f64, &str); 4] = [
        (
            &[0, 6],
            0.1,
            "record index 6 is out of range: the rollout has only 5 steps",
        ),
        (&[3, 1], 0.1, "strictly increasing, got 3 then 1"),
        (&[2, 2], 0.1, "strictly increasing, got 2 then 2"),
        (&[1], f64::NAN, "step size dt must be finite, got NaN"),
    ];
    for (record, dt, expected) in cases {
        let err = rollout(
            Integrator::default(),
            &Nonlinear,
            initial()?,
            dt,
            5,
            &friction,
            record,
        )
        .expect_err("bad arguments must be an Err");
        assert!(
            err.to_string().contains(expected),
            "{err} (wanted {expected})"
        );
    }
    // The last valid index is accepted.
    let traj = rollout(
        Integrator::default(),
        &Nonlinear,
        initial()?,
        0.1,
        5,
        &friction,
        &[5],
    )?;
    assert_eq!(traj.steps, vec![5]);
    Ok(())
}
