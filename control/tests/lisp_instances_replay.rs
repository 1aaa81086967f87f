//! Replays the `lisp_instances` fuzz corpus and artifacts through the xTR and the
//! Map-Server/Map-Resolver (roamer_control::lisp::fuzz_harness): nothing panics, no table
//! outgrows its limit.

use std::fs;
use std::path::Path;

use roamer_control::lisp::fuzz_harness::Harness;

#[test]
fn replay_lisp_instances_corpus_and_artifacts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "artifacts"] {
        if let Ok(rd) = fs::read_dir(root.join(kind).join("lisp_instances")) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    assert!(files.len() > 100, "the lisp_instances corpus is missing");
    let mut h = Harness::new().expect("harness configuration");
    for f in &files {
        let data = fs::read(f).expect("readable corpus file");
        h.feed(&data);
    }
}
