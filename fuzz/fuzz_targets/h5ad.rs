//! Fuzz target: the AnnData `.h5ad` loader (`wlm_data::parse_h5ad`), which also exercises the
//! hdf5-pure reader on corrupt files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wlm_data::{H5adConfig, H5adMatrix};

fuzz_target!(|data: &[u8]| {
    let config = H5adConfig {
        velocity: Some(H5adMatrix::Obsm("velocity".into())),
        ..H5adConfig::default()
    };
    let _ = wlm_data::parse_h5ad(data, &config);
});
