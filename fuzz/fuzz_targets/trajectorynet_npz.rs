//! Fuzz target: the TrajectoryNet `.npz` loader (`wlm_data::parse_trajectorynet_npz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = wlm_data::TrajectoryNetConfig {
        n_components: 2,
        ..Default::default()
    };
    let _ = wlm_data::parse_trajectorynet_npz(data, &config);
});
