//! Fuzz target: the RON configs with `--set key=value` overrides, the experiment config
//! (`wlm_cli::check_config`) and the flow-matching config (`wlm_cli::check_flow_config`) on
//! the same input: `Ok` or `Err`, never a panic, and what either returns parses again to the
//! same config.
//!
//! Input: the config text, then up to four overrides, separated by NUL bytes (invalid UTF-8 is
//! replaced, as no `&str` can hold it).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Parses with `check`; what it writes must read back to itself.
fn round_trip<E: std::fmt::Display>(
    check: impl Fn(&str, &[String]) -> Result<String, E>,
    text: &str,
    overrides: &[String],
) {
    if let Ok(ron) = check(text, overrides) {
        let again = check(&ron, &[])
            .unwrap_or_else(|e| panic!("the written config does not parse: {e:#}\n{ron}"));
        assert_eq!(again, ron, "the written config changes when read back");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let overrides: Vec<String> = parts
        .take(4)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    round_trip(wlm_cli::check_config, &text, &overrides);
    round_trip(wlm_cli::check_flow_config, &text, &overrides);
});
