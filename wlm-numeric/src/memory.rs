//! How much memory the system says is available, to refuse sizes that cannot fit (exact OT's
//! arcs, a loader's declared array size) with an error instead of an aborting allocation.

/// Bytes of memory available to this process now: `MemAvailable + SwapFree` of
/// `/proc/meminfo` on Linux; `None` elsewhere or when it cannot be read (callers then skip the
/// check).
pub fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

/// `MemAvailable + SwapFree` (both in kB in the file) in bytes.
fn parse_meminfo(text: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        kb.checked_mul(1024)
    };
    let available = field("MemAvailable:")?;
    Some(available.saturating_add(field("SwapFree:").unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_available_and_free_swap_are_added() {
        let text = "MemTotal:  16 kB\nMemAvailable:   8 kB\nSwapFree:  2 kB\n";
        assert_eq!(parse_meminfo(text), Some(10 * 1024));
        assert_eq!(parse_meminfo("MemAvailable: 1 kB\n"), Some(1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemAvailable: lots\n"), None);
    }
}
