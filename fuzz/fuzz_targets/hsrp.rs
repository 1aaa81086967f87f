#![no_main]
//! HSRP: parsing arbitrary UDP payloads and frames must never panic; whatever parses must
//! re-emit and re-parse to the same representation; MD5 helpers must not panic.

use libfuzzer_sys::fuzz_target;
use roamer_control::wire::hsrp::{
    HsrpAuthConfig, HsrpMd5Key, HsrpPacket, build_hsrp_frame, md5_digest, parse_hsrp_frame,
    verify_md5,
};
use roamer_hal::Mac;

fuzz_target!(|data: &[u8]| {
    let key = HsrpMd5Key::new(b"fuzz").expect("valid key");
    if let Ok(p) = HsrpPacket::parse(data) {
        let _ = p.authenticate(data, &HsrpAuthConfig::default());
        let _ = p.authenticate(data, &HsrpAuthConfig::Md5(key.clone()));
        if let Ok(bytes) = p.to_bytes() {
            assert_eq!(bytes.len(), p.buffer_len());
            let again = HsrpPacket::parse(&bytes).expect("re-parse of our own emit");
            assert_eq!(again, p);
            // And as a full frame.
            let src = if matches!(&p, HsrpPacket::V2(r) if r.group_state.virtual_ip.is_ipv6()) {
                "fe80::1".parse().expect("addr")
            } else {
                "10.0.0.1".parse().expect("addr")
            };
            if let Ok(frame) = build_hsrp_frame(&p, Mac([0, 1, 2, 3, 4, 5]), src, Some(&key)) {
                let parsed = parse_hsrp_frame(&frame).expect("parse of our own frame");
                if !matches!(p.auth(), roamer_control::wire::hsrp::HsrpAuth::Md5(_)) {
                    assert_eq!(parsed.packet, p);
                } else {
                    verify_md5(parsed.payload(&frame), &key).expect("our own signature");
                }
            }
        }
    }
    let _ = md5_digest(data, &key);
    let _ = verify_md5(data, &key);
    if let Ok(f) = parse_hsrp_frame(data) {
        assert!(f.payload.end <= data.len());
    }
});
