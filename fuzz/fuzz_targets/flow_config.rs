//! Fuzz target: the RON flow-matching config (`wlm flow train --config`) with `--set key=value`
//! overrides (`wlm_cli::check_flow_config`): `Ok` or `Err`, never a panic, and what it returns
//! parses again to the same config.
//!
//! Input: the config text, then up to four overrides, separated by NUL bytes (invalid UTF-8 is
//! replaced, as no `&str` can hold it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let overrides: Vec<String> = parts
        .take(4)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if let Ok(ron) = wlm_cli::check_flow_config(&text, &overrides) {
        let again = wlm_cli::check_flow_config(&ron, &[])
            .unwrap_or_else(|e| panic!("the written config does not parse: {e:#}\n{ron}"));
        assert_eq!(again, ron, "the written flow config changes when read back");
    }
});
