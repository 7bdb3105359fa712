//! The force is permutation-equivariant and the energy permutation-invariant (proptest).

use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use proptest::prelude::*;
use wlm_energy::{AttentionEnergy, Energy, Kernels};

use crate::common::{check_close, random, seeded_model, small_config};

fn model() -> &'static AttentionEnergy {
    static MODEL: OnceLock<AttentionEnergy> = OnceLock::new();
    MODEL.get_or_init(|| {
        let (energy, _varmap) =
            seeded_model(&small_config(3, true), 9, DType::F64).expect("model builds");
        energy.with_kernels(Kernels::Fused)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn force_is_permutation_equivariant(
        perm in (1usize..20).prop_flat_map(|n| Just((0..n).collect::<Vec<usize>>()).prop_shuffle()),
        seed in 0u64..1000,
        t in -1.0f64..1.0,
    ) {
        let n = perm.len();
        let energy = model();
        let x = random(&[n, 3], seed, -2.0, 2.0, DType::F64).unwrap();
        let idx = Tensor::new(perm.iter().map(|&i| i as u32).collect::<Vec<_>>(), &Device::Cpu).unwrap();
        let permuted = x.index_select(&idx, 0).unwrap();
        let force_of_permuted = energy.force(&permuted, t).unwrap();
        let permuted_force = energy.force(&x, t).unwrap().index_select(&idx, 0).unwrap();
        // Same terms summed in another order: f64 rounding on O(1) forces, entry by entry.
        let close = check_close(&force_of_permuted, &permuted_force, 1e-13, 1e-12);
        prop_assert!(close.is_ok(), "{}", close.unwrap_err());
        let e = energy.energy(&x, t).unwrap().to_scalar::<f64>().unwrap();
        let ep = energy.energy(&permuted, t).unwrap().to_scalar::<f64>().unwrap();
        prop_assert!((e - ep).abs() <= 1e-12 * e.abs().max(1.0));
    }
}
