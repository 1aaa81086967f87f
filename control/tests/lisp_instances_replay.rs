//! Replays the `lisp_instances` fuzz corpus and artifacts through the xTR and the
//! Map-Server/Map-Resolver (roamer_control::lisp::fuzz_harness): nothing panics, no table
//! outgrows its limit.

use std::fs;

use roamer_control::lisp::fuzz_harness::Harness;

#[test]
fn replay_lisp_instances_corpus_and_artifacts() {
    let files = roamer_test_support::corpus::files("lisp_instances");
    assert!(files.len() > 100, "the lisp_instances corpus is missing");
    let mut h = Harness::new().expect("harness configuration");
    for f in &files {
        let data = fs::read(f).expect("readable corpus file");
        h.feed(&data);
    }
}
