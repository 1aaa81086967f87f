//! Replays every file of `fuzz/corpus/lisp_data/` and `fuzz/artifacts/lisp_data/` through the
//! same checks as the fuzz target: no panic, and encap → decap returns the inner bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use roamer_forwarding::wire::lisp_data::fuzz_harness::exercise;

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    roamer_test_support::corpus::inputs("lisp_data")
}

#[test]
fn replay_lisp_data_corpus_and_artifacts() {
    let inputs = inputs();
    assert!(!inputs.is_empty(), "the lisp_data seed corpus is empty");
    for (path, bytes) in &inputs {
        let r = std::panic::catch_unwind(|| exercise(bytes));
        assert!(r.is_ok(), "panic on {}", path.display());
    }
}
