//! Fuzz target: the NPY parser (`wlm_data::parse_npy`) must return `Ok` or `Err`, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = wlm_data::parse_npy(data) {
        // What parses is consistent: as many values as the shape says.
        assert_eq!(array.data.len(), array.shape.iter().product::<usize>());
    }
});
