//! criterion benchmarks: energy (filled by the issue that owns it).

use criterion::{criterion_group, criterion_main, Criterion};

fn placeholder(c: &mut Criterion) {
    let _ = c;
}

criterion_group!(benches, placeholder);
criterion_main!(benches);
