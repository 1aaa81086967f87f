//! Replays every file of `fuzz/corpus/hsrp/` and `fuzz/artifacts/hsrp/` through the HSRP
//! decoders with the same checks as the fuzz target: no panic, parse → emit → parse stable.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use roamer_control::wire::hsrp::{
    HsrpAuth, HsrpAuthConfig, HsrpMd5Key, HsrpPacket, build_hsrp_frame, md5_digest,
    parse_hsrp_frame, verify_md5,
};
use roamer_hal::Mac;

/// The body of `fuzz/fuzz_targets/hsrp.rs`.
fn exercise(data: &[u8]) {
    let key = HsrpMd5Key::new(b"fuzz").unwrap();
    if let Ok(p) = HsrpPacket::parse(data) {
        let _ = p.authenticate(data, &HsrpAuthConfig::default());
        let _ = p.authenticate(data, &HsrpAuthConfig::Md5(key.clone()));
        if let Ok(bytes) = p.to_bytes() {
            assert_eq!(bytes.len(), p.buffer_len());
            assert_eq!(HsrpPacket::parse(&bytes).unwrap(), p);
            let src = if matches!(&p, HsrpPacket::V2(r) if r.group_state.virtual_ip.is_ipv6()) {
                "fe80::1".parse().unwrap()
            } else {
                "10.0.0.1".parse().unwrap()
            };
            if let Ok(frame) = build_hsrp_frame(&p, Mac([0, 1, 2, 3, 4, 5]), src, Some(&key)) {
                let parsed = parse_hsrp_frame(&frame).unwrap();
                if matches!(p.auth(), HsrpAuth::Md5(_)) {
                    verify_md5(parsed.payload(&frame), &key).unwrap();
                } else {
                    assert_eq!(parsed.packet, p);
                }
            }
        }
    }
    let _ = md5_digest(data, &key);
    let _ = verify_md5(data, &key);
    if let Ok(f) = parse_hsrp_frame(data) {
        assert!(f.payload.end <= data.len());
    }
}

#[test]
fn replay_hsrp_corpus_and_artifacts() {
    roamer_test_support::corpus::replay("hsrp", exercise);
}
