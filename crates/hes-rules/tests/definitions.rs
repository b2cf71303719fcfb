//! `rules.json` (read by the Flink job) is the Rust rules' definitions, not a copy that drifts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hes_rules::definitions::definitions_text;
use hes_rules::Rules;

#[test]
fn rules_json_equals_the_rust_definitions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules.json");
    let want = definitions_text(&Rules::default());
    if std::env::var_os("HES_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "{path} differs from the Rust rules: run HES_BLESS=1 cargo test -p hes-rules --test definitions"
    );
}
