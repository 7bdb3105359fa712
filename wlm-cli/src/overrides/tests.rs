//! Tests of `--set` overrides: paths, values, comments, non-ASCII text, nesting and any text.
use super::*;

const DOC: &str = r#"// A config.
(
    name: "boids", // trailing comment
    model: (energy: Attention((dim: 2, heads: 4)), friction: (gamma: 0.0)),
    train: (steps: 100, loss: (p: 1)),
    split: Forecast(n_train: 5),
    data: (source: Boids((n_particles: 64, flocking: ()))),
)
"#;

#[test]
fn existing_field_is_replaced_and_the_rest_kept() {
    let out = set_path(DOC, "train.steps", "7").unwrap();
    assert!(out.contains("train: (steps: 7, loss: (p: 1))"), "{out}");
    assert!(out.contains("// trailing comment"));
    assert!(out.contains("split: Forecast(n_train: 5)"));
}

#[test]
fn fields_inside_enum_variants_and_newtypes_are_reachable() {
    let out = set_path(DOC, "split.n_train", "9").unwrap();
    assert!(out.contains("Forecast(n_train: 9)"), "{out}");
    let out = set_path(DOC, "model.energy.heads", "2").unwrap();
    assert!(out.contains("Attention((dim: 2, heads: 2))"), "{out}");
    let out = set_path(DOC, "data.source.flocking.dt", "0.25").unwrap();
    assert!(out.contains("flocking: (dt: 0.25)"), "{out}");
}

#[test]
fn missing_fields_and_structs_are_inserted() {
    let out = set_path(DOC, "train.lr", "0.001").unwrap();
    assert!(out.contains("train: (lr: 0.001, steps: 100"), "{out}");
    let out = set_path(DOC, "eval.steps_per_interval", "3").unwrap();
    assert!(
        out.contains("(eval: (steps_per_interval: 3), \n    name"),
        "{out}"
    );
}

#[test]
fn bare_words_replacing_strings_are_quoted() {
    let out = set_path(DOC, "name", "run1").unwrap();
    assert!(out.contains("name: \"run1\","), "{out}");
    let out = set_path(DOC, "name", "\"run2\"").unwrap();
    assert!(out.contains("name: \"run2\","), "{out}");
}

#[test]
fn non_ascii_text_in_comments_and_strings_is_kept() {
    let doc = "/* σ = 0.1 — the noise, ∂t */ (name: \"σ-run ü\", /* ∞ */ train: (lr: 0.1), \
                   note: r#\"λ \"quoted\" μ\"#, c: 'é') // trailing ✓";
    let out = set_path(doc, "train.lr", "0.5").unwrap();
    assert!(out.contains("train: (lr: 0.5)"), "{out}");
    assert!(out.starts_with("/* σ = 0.1 — the noise, ∂t */"), "{out}");
    assert!(out.ends_with("// trailing ✓"), "{out}");
    let out = set_path(&out, "name", "\"τ\"").unwrap();
    assert!(out.contains("name: \"τ\""), "{out}");
    let out = set_path(&out, "c", "'ß'").unwrap();
    assert!(out.contains("c: 'ß'"), "{out}");
    // A value replaced twice: the second scan reads the first one's non-ASCII string.
    let out = set_path(&out, "train.lr", "0.25").unwrap();
    assert!(out.contains("train: (lr: 0.25)"), "{out}");
}

#[test]
fn a_unicode_minus_in_a_value_is_an_error_naming_the_value() {
    let err = set_path(DOC, "train.lr", "1e\u{2212}4")
        .unwrap_err()
        .to_string();
    assert!(err.contains("value `1e−4`"), "{err}");
    assert!(err.contains("U+2212"), "{err}");
    assert!(err.contains("the ASCII `-`"), "{err}");
    let err = set_path(DOC, "name", "\u{201c}x\u{201d}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ASCII quotes"), "{err}");
    // Inside a string it is just text.
    let out = set_path(DOC, "name", "\"1e−4\"").unwrap();
    assert!(out.contains("name: \"1e−4\""), "{out}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("(a: {}1{})", "(".repeat(100_000), ")".repeat(100_000));
    let err = set_path(&deep, "a.b", "1").unwrap_err().to_string();
    assert!(err.contains("nesting deeper than 128 levels"), "{err}");
}

#[test]
fn raw_identifiers_are_field_names() {
    let out = set_path("(r#type: 1, b: 2)", "type", "3").unwrap();
    assert_eq!(out, "(r#type: 3, b: 2)");
}

proptest::proptest! {
    #[test]
    fn any_text_gives_a_result_never_a_panic(
        text in "\\PC{0,40}",
        value in "\\PC{0,8}",
    ) {
        let _ = set_path(&text, "a.b", &value);
        let _ = set_path(&format!("(a: (b: {text}))"), "a.b", &value);
        let _ = set_path(&format!("/* {text} */ (a: 1)"), "a", &value);
    }
}

#[test]
fn paths_through_non_structs_are_errors() {
    let err = set_path(DOC, "train.steps.x", "1").unwrap_err().to_string();
    assert!(err.contains("`train.steps` is not a struct"), "{err}");
    assert!(set_path(DOC, "train..steps", "1").is_err());
    assert!(set_path("(a: \"unterminated)", "a", "1").is_err());
}
