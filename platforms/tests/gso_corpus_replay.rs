//! Replays every file of `fuzz/corpus/gso/` and `fuzz/artifacts/gso/` through the `gso` fuzz
//! target's harness (roamer_platforms::software::fuzz_harness): no panic, pieces within their
//! slots carrying the original payload, refused appends change nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;

use roamer_platforms::software::fuzz_harness::GsoHarness;

#[test]
fn replay_gso_corpus_and_artifacts() {
    let root = roamer_test_support::corpus::fuzz_dir();
    let files = roamer_test_support::corpus::files("gso");
    let corpus = files
        .iter()
        .filter(|p| p.starts_with(root.join("corpus")))
        .count();
    assert!(corpus > 0, "the gso corpus is missing");
    let mut h = GsoHarness::new();
    for f in &files {
        let data = fs::read(f).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.feed(&data)));
        assert!(r.is_ok(), "panic on {}", f.display());
    }
}
