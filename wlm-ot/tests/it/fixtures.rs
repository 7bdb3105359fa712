//! Parity with geomloss 0.3.1 on the shared Sinkhorn fixtures (f64 and f32).

use candle_core::DType;
use serde::Deserialize;
use wlm_ot::{sinkhorn, sinkhorn_divergence, SinkhornConfig};

use crate::common::{load_cases, rel_max_err, tensor_from_rows, values};

#[derive(Deserialize)]
struct SinkhornCase {
    p: u32,
    blur: f64,
    scaling: f64,
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    value: f64,
    grad_x: Vec<Vec<f64>>,
    eps_list: Vec<f64>,
    diameter: f64,
}

impl SinkhornCase {
    fn config(&self) -> SinkhornConfig {
        SinkhornConfig {
            p: self.p,
            blur: self.blur,
            scaling: self.scaling,
            ..Default::default()
        }
    }
}

#[test]
fn f64_value_gradient_and_schedule_match_geomloss() {
    let cases = load_cases::<SinkhornCase>("sinkhorn");
    for (name, case) in &cases {
        let (x, y) = (tensor_from_rows(&case.x), tensor_from_rows(&case.y));
        let out = sinkhorn(&x, &y, &case.config()).expect("sinkhorn");
        assert_eq!(out.diameter, case.diameter, "{name}: diameter");
        assert_eq!(out.eps_list, case.eps_list, "{name}: eps_list");
        let value_err = ((out.value - case.value) / case.value).abs();
        assert!(
            value_err < 1e-10,
            "{name}: value {} vs {} (rel {value_err:e})",
            out.value,
            case.value
        );
        let want: Vec<f64> = case.grad_x.iter().flatten().copied().collect();
        let grad_err = rel_max_err(&values(&out.grad_x), &want);
        assert!(grad_err < 1e-8, "{name}: grad_x rel err {grad_err:e}");
        eprintln!("{name}: f64 value rel err {value_err:.1e}, grad rel err {grad_err:.1e}");
    }
}

#[test]
fn f32_value_and_gradient_match_geomloss_within_1e_4() {
    let cases = load_cases::<SinkhornCase>("sinkhorn");
    for (name, case) in &cases {
        let x = tensor_from_rows(&case.x).to_dtype(DType::F32).expect("f32");
        let y = tensor_from_rows(&case.y).to_dtype(DType::F32).expect("f32");
        let out = sinkhorn(&x, &y, &case.config()).expect("sinkhorn");
        assert_eq!(out.grad_x.dtype(), DType::F32);
        let value_err = ((out.value - case.value) / case.value).abs();
        assert!(
            value_err < 1e-4,
            "{name}: f32 value {} vs {} (rel {value_err:e})",
            out.value,
            case.value
        );
        let want: Vec<f64> = case.grad_x.iter().flatten().copied().collect();
        let grad_err = rel_max_err(&values(&out.grad_x), &want);
        assert!(grad_err < 1e-4, "{name}: f32 grad_x rel err {grad_err:e}");
        eprintln!("{name}: f32 value rel err {value_err:.1e}, grad rel err {grad_err:.1e}");
        let s = sinkhorn_divergence(&x, &y, &case.config()).expect("divergence");
        assert_eq!(s.dtype(), DType::F32);
        assert_eq!(s.to_scalar::<f32>().expect("scalar"), out.value as f32);
    }
}
