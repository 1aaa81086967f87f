//! Replays every file of `fuzz/corpus/lisp_data/` and `fuzz/artifacts/lisp_data/` through the
//! same checks as the fuzz target: no panic, and encap → decap returns the inner bytes.

use roamer_forwarding::wire::lisp_data::fuzz_harness::exercise;

#[test]
fn replay_lisp_data_corpus_and_artifacts() {
    roamer_test_support::corpus::replay("lisp_data", exercise);
}
