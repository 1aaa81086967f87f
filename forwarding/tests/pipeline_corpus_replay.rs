//! Replays every file of `fuzz/corpus/pipeline/` and `fuzz/artifacts/pipeline/` through the
//! `pipeline` fuzz target's harness (roamer_forwarding::pipeline::fuzz_harness): a configured
//! switch fed each file as a frame; no panic, the frame stays inside its buffer, memory stays
//! bounded.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;

use roamer_forwarding::pipeline::fuzz_harness::PipelineHarness;

#[test]
fn replay_pipeline_corpus_and_artifacts() {
    let root = roamer_test_support::corpus::fuzz_dir();
    let files = roamer_test_support::corpus::files("pipeline");
    let corpus = files
        .iter()
        .filter(|p| p.starts_with(root.join("corpus")))
        .count();
    assert!(corpus > 0, "the pipeline corpus is missing");
    let mut h = PipelineHarness::new().unwrap();
    for f in &files {
        let data = fs::read(f).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.feed(&data)));
        assert!(r.is_ok(), "panic on {}", f.display());
    }
}
