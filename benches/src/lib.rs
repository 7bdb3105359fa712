//! criterion benchmarks of the WLM crates; the benchmarks live in `benches/`.
