//! Tests of exact OT: the network simplex against brute force and closed forms.
use super::*;

#[test]
fn problems_larger_than_the_memory_available_are_refused_up_front() {
    // 1000 × 1000 arcs need 24 MB and a little.
    assert!(check_size(1000, 1000, Some(30_000_000)).is_ok());
    assert!(check_size(1000, 1000, None).is_ok());
    let err = check_size(1000, 1000, Some(20_000_000)).expect_err("too big");
    let msg = err.to_string();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{msg}");
    assert!(msg.contains("1000 and 1000 points"), "{msg}");
    assert!(matches!(
        check_size(1 << 20, 1 << 20, None),
        Err(Error::ProblemTooLarge { .. })
    ));
    assert!(matches!(
        check_size(usize::MAX, 2, None),
        Err(Error::ProblemTooLarge { .. })
    ));
}

#[test]
fn single_points_cost_their_distance() {
    assert_eq!(emd_uniform(&[2.5], 1, 1).expect("ok"), 2.5);
}

#[test]
fn two_by_two_picks_the_cheaper_matching() {
    // matching (0,1),(1,0) costs (1 + 2)/2, the identity (5 + 7)/2
    let c = [5.0, 1.0, 2.0, 7.0];
    assert!((emd_uniform(&c, 2, 2).expect("ok") - 1.5).abs() < 1e-15);
}

#[test]
fn one_source_spreads_over_all_sinks() {
    let c = [1.0, 2.0, 6.0];
    assert!((emd_uniform(&c, 1, 3).expect("ok") - 3.0).abs() < 1e-15);
}

#[test]
fn unequal_sizes_split_mass() {
    // 2 sources (mass 1/2), 3 sinks (mass 1/3) on a line: x = {0, 1}, y = {0, 0.5, 1}
    let x = [0.0_f64, 1.0];
    let y = [0.0_f64, 0.5, 1.0];
    let c: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| (a - b).abs()))
        .collect();
    // sorted 1-d coupling: quantile functions differ only on the middle third: 1/6 · 0.5 · 2
    let w = emd_uniform(&c, 2, 3).expect("ok");
    assert!((w - 1.0 / 6.0).abs() < 1e-15, "{w}");
}
