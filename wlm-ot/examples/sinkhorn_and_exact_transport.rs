//! The debiased Sinkhorn divergence with its autograd gradient, and exact W1/W2, on random clouds.
//!
//! Shows `wlm-ot` the way the learner uses it: [`sinkhorn_divergence`] as a differentiable
//! scalar tensor whose `backward()` gives the gradient with respect to the points, and
//! [`wasserstein_1`] / [`wasserstein_2`] as exact evaluation metrics. It checks that the
//! divergence of a cloud with itself is zero, that it is symmetric, that the gradient (with the
//! final potentials converged) matches a central finite difference, and that exact W1 and W2
//! of a cloud and its translate by `s` both equal `|s|`.
//!
//! Run it with `cargo run -p wlm-ot --example sinkhorn_and_exact_transport`; it exits non-zero
//! if a check fails.

use anyhow::{ensure, Context};
use candle_core::{Device, Tensor, Var};
use rand::{rngs::StdRng, Rng, SeedableRng};
use wlm_ot::{sinkhorn_divergence, wasserstein_1, wasserstein_2, FinalConvergence, SinkhornConfig};

/// Points per cloud.
const N_POINTS: usize = 200;
/// Dimension of the points.
const DIM: usize = 2;

/// `n_points` points uniform in the unit square shifted by `offset`, as an `(n_points, DIM)` f64 tensor.
fn uniform_cloud(
    rng: &mut StdRng,
    n_points: usize,
    offset: [f64; DIM],
    device: &Device,
) -> candle_core::Result<Tensor> {
    let values: Vec<f64> = (0..n_points * DIM)
        .map(|idx| rng.random::<f64>() + offset[idx % DIM])
        .collect();
    Tensor::from_vec(values, (n_points, DIM), device)
}

/// `S(x, y)` as a plain number.
fn divergence(x: &Tensor, y: &Tensor, config: &SinkhornConfig) -> anyhow::Result<f64> {
    Ok(sinkhorn_divergence(x, y, config)?.to_scalar::<f64>()?)
}

fn main() -> anyhow::Result<()> {
    let device = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(7);
    let x = uniform_cloud(&mut rng, N_POINTS, [0.0, 0.0], &device)?;
    let y = uniform_cloud(&mut rng, N_POINTS, [0.5, -0.25], &device)?;

    // The reference's settings: p = 2 (cost ½|x − y|²), blur 0.05, scaling 0.9.
    let reference = SinkhornConfig::default();
    let s_xy = divergence(&x, &y, &reference)?;
    let s_yx = divergence(&y, &x, &reference)?;
    let s_xx = divergence(&x, &x, &reference)?;
    println!("Sinkhorn divergence S(x, y) = {s_xy:.6}, S(y, x) = {s_yx:.6}, S(x, x) = {s_xx:.1e}");
    ensure!(
        s_xx.abs() < 1e-10,
        "the divergence of a cloud with itself should be 0, got {s_xx:e}"
    );
    ensure!(s_xy > 0.0, "S(x, y) should be positive, got {s_xy}");
    ensure!(
        (s_xy - s_yx).abs() <= 1e-10 * s_xy,
        "the divergence should be symmetric: S(x, y) = {s_xy}, S(y, x) = {s_yx}"
    );

    // The gradient through candle autograd. With the final potentials converged it is the
    // derivative of the value, so it must match a central difference along a direction.
    let converged = SinkhornConfig {
        converge_final: Some(FinalConvergence::default()),
        ..SinkhornConfig::default()
    };
    let x_var = Var::from_tensor(&x)?;
    let loss = sinkhorn_divergence(x_var.as_tensor(), &y, &converged)?;
    let grads = loss.backward()?;
    let grad = grads
        .get(x_var.as_tensor())
        .context("the divergence should have a gradient with respect to x")?;
    ensure!(
        grad.dims() == [N_POINTS, DIM],
        "gradient of shape {:?}, expected {:?}",
        grad.dims(),
        [N_POINTS, DIM]
    );
    let direction = uniform_cloud(&mut rng, N_POINTS, [-0.5, -0.5], &device)?;
    let analytic = (grad * &direction)?.sum_all()?.to_scalar::<f64>()?;
    let h = 1e-5;
    let plus = divergence(&(&x + direction.affine(h, 0.0)?)?, &y, &converged)?;
    let minus = divergence(&(&x - direction.affine(h, 0.0)?)?, &y, &converged)?;
    let finite_difference = (plus - minus) / (2.0 * h);
    let relative = (analytic - finite_difference).abs() / finite_difference.abs();
    println!(
        "directional derivative: autograd {analytic:.9}, finite difference {finite_difference:.9} (relative difference {relative:.1e})"
    );
    ensure!(
        relative < 1e-6,
        "the gradient does not match the finite difference: {analytic} vs {finite_difference}"
    );

    // Exact transport between a cloud and its translate by s: W1 = W2 = |s|.
    let shift: [f64; DIM] = [0.3, -0.4];
    let shifted = (&x + Tensor::new(&[shift], &device)?.broadcast_as((N_POINTS, DIM))?)?;
    let w1 = wasserstein_1(&x, &shifted)?;
    let w2 = wasserstein_2(&x, &shifted)?;
    let length = shift[0].hypot(shift[1]);
    println!("exact transport to the translate by |s| = {length}: W1 = {w1:.12}, W2 = {w2:.12}");
    ensure!(
        (w1 - length).abs() < 1e-9 && (w2 - length).abs() < 1e-9,
        "W1 and W2 of a translate should both be |s| = {length}, got {w1} and {w2}"
    );

    // Between the two random clouds, W1 ≤ W2 (Jensen).
    let w1_xy = wasserstein_1(&x, &y)?;
    let w2_xy = wasserstein_2(&x, &y)?;
    println!("exact transport between the random clouds: W1 = {w1_xy:.6}, W2 = {w2_xy:.6}");
    ensure!(
        w1_xy > 0.0 && w1_xy <= w2_xy + 1e-12,
        "expected 0 < W1 ≤ W2, got W1 = {w1_xy}, W2 = {w2_xy}"
    );
    println!("all checks passed");
    Ok(())
}
