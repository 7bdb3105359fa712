//! Parity with geomloss 0.3.1 on the shared Sinkhorn fixtures (f64 and f32).

use candle_core::{DType, Tensor, Var};
use wlm_ot::{sinkhorn, sinkhorn_divergence, SinkhornOutput};

use crate::common::{assert_close, load_cases, tensor_from_rows, values, SinkhornCase};

/// The natural unit of a gradient entry, `∂S/∂x_i = a_i · (mean of ∇₁C)`: `|∇₁C| ≤ diameter`
/// for `p = 2` and `≤ 1` for `p = 1`, and `a_i = 1/N`.
fn grad_unit(case: &SinkhornCase) -> f64 {
    case.diameter.powi(case.p as i32 - 1) / case.x.len() as f64
}

/// Debug aid: the largest `|got − want|` in units of `unit`, and the largest relative error.
fn err_stats(got: &[f64], want: &[f64], unit: f64) -> (f64, f64) {
    got.iter()
        .zip(want)
        .fold((0.0f64, 0.0f64), |(a, r), (g, w)| {
            let e = (g - w).abs();
            (a.max(e / unit), r.max(e / w.abs()))
        })
}

/// The solver in `dtype` on one case against geomloss: value within `value_tol` relative,
/// gradient `|Δ| ≤ grad_atol·unit + grad_rtol·|geomloss|`; returns the output and the inputs.
fn solve_and_compare(
    name: &str,
    case: &SinkhornCase,
    dtype: DType,
    value_tol: f64,
    grad_atol: f64,
    grad_rtol: f64,
) -> (SinkhornOutput, Tensor, Tensor) {
    let x = tensor_from_rows(&case.x).to_dtype(dtype).expect("x");
    let y = tensor_from_rows(&case.y).to_dtype(dtype).expect("y");
    let out = sinkhorn(&x, &y, &case.config()).expect("sinkhorn");
    assert_eq!(out.grad_x.dtype(), dtype, "{name}: gradient dtype");
    let value_err = ((out.value - case.value) / case.value).abs();
    assert!(
        value_err < value_tol,
        "{name}: {dtype:?} value {} vs {} (rel {value_err:e})",
        out.value,
        case.value
    );
    let want: Vec<f64> = case.grad_x.iter().flatten().copied().collect();
    let got = values(&out.grad_x);
    let (abs_u, rel) = err_stats(&got, &want, grad_unit(case));
    eprintln!(
        "{name}: {dtype:?} value rel err {value_err:.1e}, grad err {abs_u:.1e} units, rel {rel:.1e}"
    );
    assert_close(
        &format!("{name}: {dtype:?} grad_x"),
        &got,
        &want,
        grad_atol * grad_unit(case),
        grad_rtol,
    );
    (out, x, y)
}

#[test]
fn f64_value_gradient_and_schedule_match_geomloss() {
    let cases = load_cases::<SinkhornCase>("sinkhorn");
    for (name, case) in &cases {
        let (out, _, _) = solve_and_compare(name, case, DType::F64, 1e-10, 1e-10, 1e-8);
        assert_eq!(out.diameter, case.diameter, "{name}: diameter");
        assert_eq!(out.eps_list, case.eps_list, "{name}: eps_list");
    }
}

#[test]
fn f32_value_and_gradient_match_geomloss_within_1e_4() {
    let cases = load_cases::<SinkhornCase>("sinkhorn");
    for (name, case) in &cases {
        let (out, x, y) = solve_and_compare(name, case, DType::F32, 1e-4, 1e-5, 1e-4);
        let s = sinkhorn_divergence(&x, &y, &case.config()).expect("divergence");
        assert_eq!(s.dtype(), DType::F32);
        assert_eq!(s.to_scalar::<f32>().expect("scalar"), out.value as f32);
    }
}

/// The candle custom op, not the solver: its value and the gradient that `backward()` delivers
/// to a `Var` against geomloss's `value` and `grad_x`, entry by entry. f64: value within 1e-10
/// relative, gradient `|Δ| ≤ 1e-10·unit + 1e-8·|geomloss|` (unit = `diameter^(p−1)/N`, the
/// scale of one entry; the worst case measured is 4e-11 units, on `p = 1` entries whose relative
/// error is 1e-10). f32: value 1e-4 relative, gradient `1e-5·unit + 1e-4·|geomloss|` (worst
/// measured 4e-6 units).
#[test]
fn divergence_op_value_and_backward_match_geomloss() {
    let cases = load_cases::<SinkhornCase>("sinkhorn");
    for (name, case) in &cases {
        let want: Vec<f64> = case.grad_x.iter().flatten().copied().collect();
        let unit = grad_unit(case);
        for (dtype, value_tol, atol, rtol) in [
            (DType::F64, 1e-10, 1e-10 * unit, 1e-8),
            (DType::F32, 1e-4, 1e-5 * unit, 1e-4),
        ] {
            let x = tensor_from_rows(&case.x).to_dtype(dtype).expect("x");
            let y = tensor_from_rows(&case.y).to_dtype(dtype).expect("y");
            let var = Var::from_tensor(&x).expect("var");
            let s = sinkhorn_divergence(var.as_tensor(), &y, &case.config()).expect("divergence");
            let value = s
                .to_dtype(DType::F64)
                .expect("f64")
                .to_scalar::<f64>()
                .expect("scalar");
            let value_err = ((value - case.value) / case.value).abs();
            assert!(
                value_err < value_tol,
                "{name} {dtype:?}: op value {value} vs geomloss {} (rel {value_err:e})",
                case.value
            );
            let grads = s.backward().expect("backward");
            let got = values(grads.get(var.as_tensor()).expect("gradient of x"));
            assert_close(
                &format!("{name} {dtype:?}: op grad_x"),
                &got,
                &want,
                atol,
                rtol,
            );
        }
    }
}
