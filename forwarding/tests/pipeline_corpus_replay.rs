//! Replays every file of `fuzz/corpus/pipeline/` and `fuzz/artifacts/pipeline/` through the
//! `pipeline` fuzz target's harness (roamer_forwarding::pipeline::fuzz_harness): a configured
//! switch fed each file as a frame; no panic, the frame stays inside its buffer, memory stays
//! bounded.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use roamer_forwarding::pipeline::fuzz_harness::PipelineHarness;

#[test]
fn replay_pipeline_corpus_and_artifacts() {
    let mut h = PipelineHarness::new().unwrap();
    roamer_test_support::corpus::replay("pipeline", |data| h.feed(data));
}
