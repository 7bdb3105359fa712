//! Fuzz target: the particle `.npz` loader (`wlm_data::parse_particles_npz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wlm_data::parse_particles_npz(data, None);
});
