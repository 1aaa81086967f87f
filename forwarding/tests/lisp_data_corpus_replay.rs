//! Replays every file of `fuzz/corpus/lisp_data/` and `fuzz/artifacts/lisp_data/` through the
//! same checks as the fuzz target: no panic, and encap → decap returns the inner bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use roamer_forwarding::wire::lisp_data::{
    EncapParams, LispDataRepr, decapsulate, decapsulate_in_place, encapsulate_in_place,
    flow_source_port,
};

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    roamer_test_support::corpus::inputs("lisp_data")
}

/// The body of `fuzz/fuzz_targets/lisp_data.rs`.
fn exercise(data: &[u8]) {
    if let Ok(d) = decapsulate(data) {
        assert!(d.inner_range().end <= data.len());
        let _ = LispDataRepr::parse_bytes(&data[d.inner_start - 8..]);
    }
    let mut copy = data.to_vec();
    let _ = decapsulate_in_place(&mut copy);
    let _ = LispDataRepr::parse_bytes(data);

    // Encapsulate the input as an inner packet, then decapsulate it back.
    let Some((&sel, inner)) = data.split_first() else {
        return;
    };
    let v6 = sel & 1 == 1;
    let header = LispDataRepr::parse_bytes(inner).unwrap_or_default();
    let mut header = header;
    header.key_id = 0;
    header.next_protocol = None;
    let (src, dst) = if v6 {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    };
    let params = EncapParams::new(src, dst, flow_source_port(inner, 0), header);
    let headroom = params.overhead();
    let mut buf = vec![0u8; headroom + inner.len()];
    buf[headroom..].copy_from_slice(inner);
    if let Ok(start) = encapsulate_in_place(&mut buf, headroom, inner.len(), &params) {
        let d = decapsulate(&buf[start..]).expect("our own encapsulation decapsulates");
        assert_eq!(d.inner(&buf[start..]), inner);
        assert_eq!(d.header, header);
    }
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
