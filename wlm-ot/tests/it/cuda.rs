//! The device preference and GPU parity: the CUDA path (feature `cuda`, with a device) against
//! the CPU kernel on the fixtures and on random clouds; without a device, requesting CUDA falls
//! back to the CPU with identical results.

use candle_core::{DType, Tensor};
use wlm_ot::{
    cuda_available, sinkhorn, with_device_preference, DevicePreference, SinkhornConfig,
    SinkhornOutput,
};

use crate::common::{
    check_close, load_cases, rng, shifted_pair, tensor, tensor_from_rows, uniform_cloud, values,
    SinkhornCase,
};

fn run(pref: DevicePreference, x: &Tensor, y: &Tensor, c: &SinkhornConfig) -> SinkhornOutput {
    with_device_preference(pref, || sinkhorn(x, y, c)).expect("sinkhorn")
}

/// GPU vs CPU in the same dtype, entry by entry: `|gpu − cpu| ≤ tol·(unit + |cpu|)`, with the
/// unit of a gradient entry `diameter^(p−1)/N` (`a_i` times a cost gradient, `|∇₁C| ≤ diameter`
/// for `p = 2` and `≤ 1` for `p = 1`) and of a potential `max(diameter^p, ε)`; the value
/// within `tol` relative; the schedule identical.
fn assert_parity(name: &str, x: &Tensor, y: &Tensor, c: &SinkhornConfig, tol: f64) {
    let cpu = run(DevicePreference::Cpu, x, y, c);
    let gpu = run(DevicePreference::Cuda, x, y, c);
    assert_eq!(gpu.eps_list, cpu.eps_list, "{name}: schedule");
    let scale = cpu.value.abs().max(1e-12);
    let v_err = (gpu.value - cpu.value).abs() / scale;
    assert!(
        v_err < tol,
        "{name}: value {} vs {} (rel {v_err:e})",
        gpu.value,
        cpu.value
    );
    let p = c.p as i32;
    let (n, m) = (x.dims()[0] as f64, y.dims()[0] as f64);
    let grad_unit = cpu.diameter.powi(p - 1);
    let potential_unit = cpu.diameter.powi(p).max(c.final_epsilon());
    for (what, g, w, unit) in [
        ("grad_x", &gpu.grad_x, &cpu.grad_x, grad_unit / n),
        ("grad_y", &gpu.grad_y, &cpu.grad_y, grad_unit / m),
        ("f_ba", &gpu.f_ba, &cpu.f_ba, potential_unit),
    ] {
        if let Err(msg) = check_close(&values(g), &values(w), tol * unit, tol) {
            panic!("{name}: {what}: {msg}");
        }
    }
}

#[test]
fn requesting_cuda_without_a_device_gives_the_cpu_result() {
    if cuda_available() {
        eprintln!("a CUDA device is present: the fallback is not exercised");
        return;
    }
    let (x, y) = shifted_pair(11, 40, 30);
    let c = SinkhornConfig::default();
    let cpu = run(DevicePreference::Cpu, &x, &y, &c);
    let cuda = run(DevicePreference::Cuda, &x, &y, &c);
    assert_eq!(cpu.value.to_bits(), cuda.value.to_bits());
    assert_eq!(values(&cpu.grad_x), values(&cuda.grad_x));
}

#[test]
fn device_preference_scopes_nest_and_restore() {
    let outer = wlm_ot::device_preference();
    with_device_preference(DevicePreference::Cpu, || {
        assert_eq!(wlm_ot::device_preference(), DevicePreference::Cpu);
        with_device_preference(DevicePreference::Cuda, || {
            assert_eq!(wlm_ot::device_preference(), DevicePreference::Cuda);
        });
        assert_eq!(wlm_ot::device_preference(), DevicePreference::Cpu);
    });
    assert_eq!(wlm_ot::device_preference(), outer);
}

#[test]
fn gpu_matches_cpu_on_the_fixtures_f64_and_f32() {
    if !cuda_available() {
        eprintln!("no CUDA device found: skipping");
        return;
    }
    for (name, case) in &load_cases::<SinkhornCase>("sinkhorn") {
        let c = case.config();
        let (x, y) = (tensor_from_rows(&case.x), tensor_from_rows(&case.y));
        assert_parity(&format!("{name} f64"), &x, &y, &c, 1e-10);
        let (x, y) = (
            x.to_dtype(DType::F32).expect("f32"),
            y.to_dtype(DType::F32).expect("f32"),
        );
        assert_parity(&format!("{name} f32"), &x, &y, &c, 1e-5);
    }
}

#[test]
fn gpu_matches_cpu_on_random_clouds() {
    if !cuda_available() {
        eprintln!("no CUDA device found: skipping");
        return;
    }
    let mut r = rng(7);
    for (n, m, d) in [
        (300, 200, 2),
        (1000, 1500, 5),
        (257, 511, 3),
        (2000, 2000, 8),
    ] {
        for p in [1, 2] {
            let x = tensor(&uniform_cloud(&mut r, n, d, 0.0, 1.0), n, d);
            let y = tensor(&uniform_cloud(&mut r, m, d, 0.3, 1.3), m, d);
            let c = SinkhornConfig {
                p,
                blur: 0.05,
                ..Default::default()
            };
            let name = format!("N={n} M={m} d={d} p={p}");
            assert_parity(&format!("{name} f64"), &x, &y, &c, 1e-10);
            let (x, y) = (
                x.to_dtype(DType::F32).expect("f32"),
                y.to_dtype(DType::F32).expect("f32"),
            );
            assert_parity(&format!("{name} f32"), &x, &y, &c, 1e-5);
        }
    }
}
