//! Fuzz target: `.npy` `(T, N, d)` snapshots (`wlm_data::parse_npy_snapshots`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wlm_data::parse_npy_snapshots(data, None);
});
