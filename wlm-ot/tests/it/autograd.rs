//! Plumbing of the custom op: its backward pass delivers the envelope gradient of `sinkhorn`,
//! scales with the upstream gradient, and reaches `y` when `y` is a variable. These compare the
//! op with the crate's own solver; the numbers themselves are checked against independent
//! references in `fixtures.rs` (geomloss's value and gradient, through `backward()`) and
//! `fixed_epsilon.rs` (a dense fixed-ε Sinkhorn and its finite differences).

use candle_core::{DType, Device, Tensor, Var};
use wlm_ot::{sinkhorn, sinkhorn_divergence, sinkhorn_divergence_weighted, SinkhornConfig};

use crate::common::{assert_close, rng, shifted_pair, tensor, uniform_cloud, values};

#[test]
fn backward_of_x_equals_the_envelope_gradient() {
    let mut r = rng(21);
    for (p, dtype) in [
        (2, DType::F64),
        (1, DType::F64),
        (2, DType::F32),
        (1, DType::F32),
    ] {
        let x = tensor(&uniform_cloud(&mut r, 30, 3, 0.0, 1.0), 30, 3)
            .to_dtype(dtype)
            .expect("x");
        let y = tensor(&uniform_cloud(&mut r, 25, 3, 0.2, 1.2), 25, 3)
            .to_dtype(dtype)
            .expect("y");
        let config = SinkhornConfig {
            p,
            blur: 0.1,
            ..Default::default()
        };
        let var = Var::from_tensor(&x).expect("var");
        let s = sinkhorn_divergence(var.as_tensor(), &y, &config).expect("divergence");
        assert_eq!(s.dims(), &[] as &[usize]);
        let grads = s.backward().expect("backward");
        let g = grads.get(var.as_tensor()).expect("gradient of x");
        let want = sinkhorn(&x, &y, &config).expect("sinkhorn");
        assert_eq!(values(g), values(&want.grad_x), "p {p} {dtype:?}");
        assert!(grads.get(&y).is_none(), "a constant y got a gradient");
    }
}

#[test]
fn backward_reaches_y_when_y_is_a_variable() {
    let (x, y) = shifted_pair(22, 20, 15);
    let config = SinkhornConfig::default();
    let y_var = Var::from_tensor(&y).expect("var");
    let s = sinkhorn_divergence(&x, y_var.as_tensor(), &config).expect("divergence");
    let grads = s.backward().expect("backward");
    let want = sinkhorn(&x, &y, &config).expect("sinkhorn");
    assert_eq!(
        values(grads.get(y_var.as_tensor()).expect("grad y")),
        values(&want.grad_y)
    );
}

#[test]
fn three_times_the_divergence_has_three_times_the_gradient() {
    let mut r = rng(23);
    let x = Var::from_tensor(&tensor(&uniform_cloud(&mut r, 12, 2, 0.0, 1.0), 12, 2)).expect("var");
    let y = tensor(&uniform_cloud(&mut r, 9, 2, 0.5, 1.5), 9, 2);
    let config = SinkhornConfig::default();
    let s = sinkhorn_divergence(x.as_tensor(), &y, &config).expect("divergence");
    let g1 = values(s.backward().expect("bwd").get(x.as_tensor()).expect("g"));
    let s3 = (s * 3.0).expect("scale");
    let g3 = values(s3.backward().expect("bwd").get(x.as_tensor()).expect("g"));
    let tripled: Vec<f64> = g1.iter().map(|g| 3.0 * g).collect();
    // The upstream gradient 3 multiplies each entry once: equal to rounding of that product.
    assert_close("3 × gradient", &g3, &tripled, 0.0, 2.0 * f64::EPSILON);
}

#[test]
fn divergence_value_equals_the_solver_value_and_weights_enter() {
    let (x, y) = shifted_pair(24, 10, 8);
    let config = SinkhornConfig::default();
    let s = sinkhorn_divergence(&x, &y, &config).expect("divergence");
    let want = sinkhorn(&x, &y, &config).expect("sinkhorn").value;
    assert_eq!(s.to_scalar::<f64>().expect("scalar"), want);
    // The reference's weights 1/(N + 1e-12) move the value by ~1e-13 relative, no more.
    let dev = Device::Cpu;
    let a = Tensor::full(1.0 / (10.0 + 1e-12), 10, &dev).expect("a");
    let b = Tensor::full(1.0 / (8.0 + 1e-12), 8, &dev).expect("b");
    let sw = sinkhorn_divergence_weighted(&a, &x, &b, &y, &config).expect("weighted");
    let vw = sw.to_scalar::<f64>().expect("scalar");
    assert!(
        ((vw - want) / want).abs() < 1e-11 && vw != want,
        "{vw} vs {want}"
    );
}
