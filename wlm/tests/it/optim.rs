//! `wlm::AdamW` against `torch.optim.AdamW` (float64): two parameter groups with their own
//! learning rates, betas, ε and weight decays, six steps of fixed gradients, one parameter
//! without a gradient at one step (`tests/fixtures/adamw_torch.json`, made by
//! `tests/fixtures/make_adamw.py`). At step 1 every Adam variant moves each entry by about
//! ±lr; the later steps tell the moment updates, bias corrections and decay apart.

use candle_core::{DType, Device, Tensor, Var};
use serde_json::Value;
use wlm::{AdamW, AdamWGroup};

fn values(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

#[test]
fn adamw_follows_torch_over_several_steps_with_two_groups_and_a_skipped_gradient(
) -> anyhow::Result<()> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/adamw_torch.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let dev = Device::Cpu;
    let mut groups = Vec::new();
    let mut params = Vec::new();
    let mut names = Vec::new();
    for (gi, g) in json["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .enumerate()
    {
        let betas = values(&g["betas"]);
        groups.push(AdamWGroup {
            lr: g["lr"].as_f64().expect("lr"),
            weight_decay: g["weight_decay"].as_f64().expect("weight_decay"),
            beta1: betas[0],
            beta2: betas[1],
            eps: g["eps"].as_f64().expect("eps"),
        });
        for name in g["names"].as_array().expect("names") {
            let name = name.as_str().expect("a name").to_string();
            let shape: Vec<usize> = values(&json["shapes"][&name])
                .iter()
                .map(|&d| d as usize)
                .collect();
            let init = Tensor::from_vec(values(&json["initial"][&name]), shape, &dev)?;
            params.push((name.clone(), Var::from_tensor(&init)?, gi));
            names.push(name);
        }
    }
    let vars: Vec<Var> = params.iter().map(|(_, v, _)| v.clone()).collect();
    let mut opt = AdamW::new(groups, params)?;
    let steps = json["steps"].as_array().expect("steps");
    assert!(steps.len() >= 5);
    for (s, step) in steps.iter().enumerate() {
        let grads: Vec<Option<Tensor>> = names
            .iter()
            .zip(&vars)
            .map(|(n, v)| {
                let g = &step["grads"][n];
                (!g.is_null())
                    .then(|| Tensor::from_vec(values(g), v.shape(), &dev))
                    .transpose()
            })
            .collect::<candle_core::Result<_>>()?;
        opt.step(&grads)?;
        for (n, v) in names.iter().zip(&vars) {
            let want = values(&step["params"][n]);
            let got: Vec<f64> = v
                .as_tensor()
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1()?;
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // Entry-wise relative error: no entry hides behind a larger one.
                let err = (g - w).abs() / w.abs().max(1e-12);
                assert!(
                    err < 1e-12,
                    "step {} param {n}[{i}]: {g} vs torch {w}",
                    s + 1
                );
            }
        }
    }
    Ok(())
}
