//! Fuzz target: the snapMMD `.npz` loader (`wlm_data::parse_snapmmd_npz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wlm_data::parse_snapmmd_npz(data);
});
