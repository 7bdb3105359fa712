//! Fuzz target: the long-format CSV loader (`wlm_data::parse_csv`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshots) = wlm_data::parse_csv(data) {
        // Whatever parses also survives a write and a re-read unchanged.
        let dir = std::env::temp_dir().join(format!("wlm-data-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("round.csv");
        wlm_data::write_csv(&path, &snapshots).unwrap();
        assert_eq!(wlm_data::load_csv(&path).unwrap(), snapshots);
    }
});
