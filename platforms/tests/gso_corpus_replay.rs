//! Replays every file of `fuzz/corpus/gso/` and `fuzz/artifacts/gso/` through the `gso` fuzz
//! target's harness (roamer_platforms::software::fuzz_harness): no panic, pieces within their
//! slots carrying the original payload, refused appends change nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use roamer_platforms::software::fuzz_harness::GsoHarness;

#[test]
fn replay_gso_corpus_and_artifacts() {
    let mut h = GsoHarness::new();
    roamer_test_support::corpus::replay("gso", |data| h.feed(data));
}
