//! Replays every file of `fuzz/corpus/pipeline/` and `fuzz/artifacts/pipeline/` through the
//! `pipeline` fuzz target's harness (roamer_forwarding::pipeline::fuzz_harness): a configured
//! switch fed each file as a frame; no panic, the frame stays inside its buffer, memory stays
//! bounded.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use roamer_forwarding::pipeline::fuzz_harness::PipelineHarness;

#[test]
fn replay_pipeline_corpus_and_artifacts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "artifacts"] {
        if let Ok(rd) = fs::read_dir(root.join(kind).join("pipeline")) {
            files.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".keep")),
            );
        }
    }
    files.sort();
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
