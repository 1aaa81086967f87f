//! The files of a fuzz target's corpus and artifacts (`fuzz/corpus/TARGET/`,
//! `fuzz/artifacts/TARGET/`), for the tests that replay them.

use std::fs;
use std::path::{Path, PathBuf};

/// The fuzz crate's directory (`fuzz/` at the root of the repository).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The directory of `target`'s corpus.
pub fn corpus_dir(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

/// The files of `target`'s corpus, then of its artifacts (a missing directory has none),
/// without `.keep`, sorted by path.
pub fn files(target: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let Ok(rd) = fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        out.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".keep")),
        );
    }
    out.sort();
    out
}

/// [`files`] with their contents.
pub fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files(target)
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).expect("readable corpus file");
            (p, bytes)
        })
        .collect()
}

/// Feeds every file of `target`'s corpus, then of its artifacts, to `exercise` (the fuzz
/// target's body): fails naming the file it panicked on, or when the corpus has no file.
pub fn replay(target: &str, mut exercise: impl FnMut(&[u8])) {
    let corpus = fuzz_dir().join("corpus");
    let files = files(target);
    assert!(
        files.iter().any(|p| p.starts_with(&corpus)),
        "the {target} corpus is missing"
    );
    for f in &files {
        let data = fs::read(f).expect("readable corpus file");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&data)));
        assert!(r.is_ok(), "panic on {}", f.display());
    }
}
