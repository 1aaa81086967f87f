//! Replays every fuzz corpus and artifact input of the `lisp_control` and `reliable_framing`
//! targets through the decoders: no panic, and for every input that parses, emit → parse gives
//! the same value (idempotence) and emitting is byte-stable.
//!
//! `ROAMER_WRITE_FUZZ_SEEDS=1 cargo test -p roamer-control --test lisp_corpus_replay` (re)writes
//! the seed inputs built from the wire fixtures into `fuzz/corpus/<target>/`, named by the SHA-1
//! of their content (libFuzzer's convention).

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use roamer_control::wire::lisp::{
    Address, AuthKey, Ecm, EidPrefix, EidRecord, KeyId, LispMessage, LocatorRecord, MapNotify,
    MapRegister, MapReply, MapRequest, XtrSiteId, parse_message, verify,
};
use roamer_control::wire::reliable::{
    Frame, RefreshScope, RejectReason, ReliableDecoder, ReliableFrame, ReliableMessage, TypeNumbers,
};
use roamer_test_support::hex;
use sha1::{Digest, Sha1};

fn fuzz_dir() -> PathBuf {
    roamer_test_support::corpus::fuzz_dir()
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    roamer_test_support::corpus::inputs(target)
}

fn replay_lisp(data: &[u8]) -> bool {
    for alg in [KeyId::HmacSha1, KeyId::HmacSha256] {
        let key = AuthKey::new(alg, b"cisco").expect("key");
        let _ = verify(data, &key);
    }
    match parse_message(data) {
        Ok(msg) => {
            let bytes = msg.to_vec().expect("a parsed message must emit");
            assert_eq!(bytes.len(), msg.buffer_len());
            let again = parse_message(&bytes).expect("emitted bytes must parse");
            assert_eq!(again, msg);
            assert_eq!(again.to_vec().expect("emit"), bytes);
            true
        }
        Err(_) => false,
    }
}

fn replay_reliable(data: &[u8]) -> usize {
    let t = TypeNumbers::default();
    let Some((&ctl, stream)) = data.split_first() else {
        return 0;
    };
    let chunk = usize::from(ctl % 32) + 1;
    let max = if ctl & 0x80 != 0 { 256 } else { 65535 };
    let mut d = ReliableDecoder::new(max);
    let mut frames = Vec::new();
    for c in stream.chunks(chunk) {
        match d.feed(c) {
            Ok(f) => frames.extend(f),
            Err(_) => break,
        }
    }
    let mut typed = 0;
    for f in &frames {
        let raw = f.to_vec().expect("emit");
        assert_eq!(&Frame::parse(&raw).expect("re-parse"), f);
        if let Ok(m) = ReliableFrame::from_frame(f, &t) {
            let b = m.to_vec().expect("emit");
            assert_eq!(ReliableFrame::parse(&b).expect("re-parse"), m);
            typed += 1;
        }
    }
    let _ = ReliableFrame::parse(stream);
    typed
}

#[test]
fn replay_lisp_control_corpus() {
    let all = inputs("lisp_control");
    let mut parsed = 0;
    for (path, data) in &all {
        let ok = std::panic::catch_unwind(|| replay_lisp(data))
            .unwrap_or_else(|_| panic!("panic replaying {}", path.display()));
        parsed += usize::from(ok);
    }
    eprintln!("lisp_control: {} inputs, {parsed} parse", all.len());
    assert!(!all.is_empty(), "the lisp_control seed corpus is missing");
    assert!(parsed > 0);
}

#[test]
fn replay_reliable_framing_corpus() {
    let all = inputs("reliable_framing");
    let mut typed = 0;
    for (path, data) in &all {
        typed += std::panic::catch_unwind(|| replay_reliable(data))
            .unwrap_or_else(|_| panic!("panic replaying {}", path.display()));
    }
    eprintln!(
        "reliable_framing: {} inputs, {typed} typed frames",
        all.len()
    );
    assert!(
        !all.is_empty(),
        "the reliable_framing seed corpus is missing"
    );
    assert!(typed > 0);
}

// ---------------------------------------------------------------------------------------------
// Seed corpus (written on demand)
// ---------------------------------------------------------------------------------------------

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn record(iid: Option<u32>) -> EidRecord {
    EidRecord::authoritative(
        EidPrefix {
            eid: match iid {
                None => Address::Ip(v4(172, 16, 1, 0)),
                Some(iid) => Address::InstanceId {
                    iid,
                    mask_len: 0,
                    addr: Some(v4(172, 16, 1, 0)),
                },
            },
            mask_len: 24,
        },
        1440,
        vec![LocatorRecord::local(v4(10, 1, 1, 1), 1, 100)],
    )
}

fn lisp_seeds() -> Vec<Vec<u8>> {
    let sha1 = AuthKey::new(KeyId::HmacSha1, b"cisco").expect("key");
    let sha256 = AuthKey::new(KeyId::HmacSha256, b"cisco").expect("key");
    let mut seeds: Vec<Vec<u8>> = [
        "300001010000000000000000000100142de2473150d1b167e7e4240b97a826074562dd71000005a00118100000000001ac1001000164ff00000500010a010101",
        "30000101000000000000000000020020f4442d2825dee57021cb8a3837d3af3ea4a20f9077d050973779462f51bc9342000005a00118100000000001ac1001000164ff00000500010a010101",
        "30000101000000000000000000010014b6546e0c508ba0918ebaaaa27e953f7fcdaa9dcb000005a0011810000000400300000200000a000000650001ac1001000164ff00000500010a010101",
        "1300200168e45971e3df49310001ac10010a00010a01010100200001c0a80016",
        "800000004500003c00004000401181930a020202ac10010a10f610f600289829104000014d04ab2f99ff6ff50001c0a8001600010a02020200200001ac10010a",
        "200000014d04ab2f99ff6ff5000005a00120100000000001ac10010a0164ff00000500010a030303",
        "2000000100000000000000010000000f00082000000000010a000000",
    ]
    .iter()
    .map(|h| hex(h))
    .collect();

    let mut reg = MapRegister::new(vec![record(None)]);
    reg.xtr = Some(XtrSiteId {
        xtr_id: [1; 16],
        site_id: 1,
    });
    reg.proxy_reply = true;
    seeds.push(reg.to_signed_vec(&sha1).expect("sign"));
    let notify = MapNotify::acknowledging(&reg);
    seeds.push(notify.to_signed_vec(&sha256).expect("sign"));
    seeds.push(
        MapNotify::ack_of(&notify)
            .to_signed_vec(&sha1)
            .expect("sign"),
    );
    let req = MapRequest {
        probe: true,
        local_xtr: true,
        map_reply_record: Some(record(Some(101))),
        ..MapRequest::query(
            7,
            Address::None,
            vec![v4(10, 1, 1, 1), "2001:db8::1".parse().expect("ip")],
            vec![EidPrefix {
                eid: Address::InstanceId {
                    iid: 101,
                    mask_len: 0,
                    addr: Some("2001:db8:1::".parse().expect("ip")),
                },
                mask_len: 48,
            }],
        )
    };
    seeds.push(req.to_vec().expect("emit"));
    let reply = MapReply {
        probe: true,
        echo_nonce_capable: true,
        lisp_sec: false,
        nonce: 7,
        records: vec![record(Some(101)), record(None)],
    };
    seeds.push(reply.to_vec().expect("emit"));
    let ecm6 = Ecm {
        ddt: false,
        inner_src: "2001:db8::2".parse().expect("ip"),
        inner_dst: "2001:db8:1::a".parse().expect("ip"),
        inner_ttl: 64,
        inner_src_port: 61001,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(req)),
    };
    seeds.push(ecm6.to_vec().expect("emit"));
    // RFC 9437 publish/subscribe: a subscribing Map-Request (I and N bits, xTR-ID and Site-ID
    // appended), plain and encapsulated, and a publication (Map-Notify with the xTR-ID) as
    // roamer's harness xTR (RLOC 192.0.2.1) would receive it.
    let xtr = XtrSiteId {
        xtr_id: "::ffff:192.0.2.1"
            .parse::<std::net::Ipv6Addr>()
            .expect("ip")
            .octets(),
        site_id: 0,
    };
    let subscribing = MapRequest {
        subscribe: Some(xtr),
        ..MapRequest::query(
            8,
            Address::None,
            vec![v4(192, 0, 2, 7)],
            vec![EidPrefix {
                eid: Address::Ip(v4(10, 9, 0, 5)),
                mask_len: 32,
            }],
        )
    };
    seeds.push(subscribing.to_vec().expect("emit"));
    let ecm_sub = Ecm {
        ddt: false,
        inner_src: v4(192, 0, 2, 7),
        inner_dst: v4(10, 9, 0, 5),
        inner_ttl: 64,
        inner_src_port: 4342,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(subscribing)),
    };
    seeds.push(ecm_sub.to_vec().expect("emit"));
    let mut moved = record(None);
    moved.prefix = EidPrefix {
        eid: Address::Ip(v4(10, 9, 0, 5)),
        mask_len: 32,
    };
    let publication = MapNotify {
        ack: false,
        nonce: 9,
        auth: roamer_control::wire::lisp::Authentication::none(),
        records: vec![moved],
        xtr: Some(xtr),
    };
    seeds.push(publication.to_signed_vec(&sha1).expect("sign"));
    seeds.push(
        MapNotify::ack_of(&publication)
            .to_signed_vec(&sha1)
            .expect("sign"),
    );
    // RFC 9301 §7.1: a probe answer with the probed locator's p bit, and one with no record.
    let mut probed = record(None);
    for l in &mut probed.locators {
        l.probed = true;
    }
    for records in [vec![probed], Vec::new()] {
        let answer = MapReply {
            probe: true,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: 10,
            records,
        };
        seeds.push(answer.to_vec().expect("emit"));
    }
    seeds
}

fn reliable_seeds() -> Vec<Vec<u8>> {
    let reg = hex(
        "300001010000000000000000000100142de2473150d1b167e7e4240b97a826074562dd71000005a00118100000000001ac1001000164ff00000500010a010101",
    );
    let p = |c: u8| EidPrefix {
        eid: Address::Ip(v4(172, 16, c, 0)),
        mask_len: 24,
    };
    let frames = [
        ReliableMessage::RegistrationRefresh {
            scope: RefreshScope::All,
            rejected_only: false,
            eid: None,
        },
        ReliableMessage::Registration { map_register: reg },
        ReliableMessage::RegistrationAck { eid: p(1) },
        ReliableMessage::RegistrationNack {
            reason: RejectReason::AuthenticationFailure,
            eid: p(9),
        },
        common::refresh_iid101(),
        ReliableMessage::MappingNotification {
            xtr_id: [2; 16],
            site_id: 3,
            record: record(None),
        },
        ReliableMessage::ErrorNotification {
            code: 1,
            offending_type: 17,
            offending_length: 76,
            offending_id: 2,
            offending_data: vec![],
        },
    ];
    let encoded: Vec<Vec<u8>> = frames
        .into_iter()
        .enumerate()
        .map(|(i, message)| {
            ReliableFrame {
                msg_id: i as u32 + 1,
                message,
            }
            .to_vec()
            .expect("emit")
        })
        .collect();
    // Control octet first: chunk size (low 5 bits + 1), bit 7 = small session maximum.
    let mut seeds: Vec<Vec<u8>> = encoded
        .iter()
        .map(|f| {
            let mut s = vec![0x1F];
            s.extend_from_slice(f);
            s
        })
        .collect();
    let mut stream = vec![0x02];
    for f in &encoded {
        stream.extend_from_slice(f);
    }
    seeds.push(stream);
    seeds.push(hex("00 0014 0008 9facade9"));
    seeds
}

fn write_seeds(target: &str, seeds: &[Vec<u8>]) {
    let dir = fuzz_dir().join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    for s in seeds {
        let name: String = Sha1::digest(s).iter().map(|b| format!("{b:02x}")).collect();
        fs::write(dir.join(name), s).expect("write seed");
    }
}

#[test]
fn seeds_decode_and_optionally_are_written() {
    let lisp = lisp_seeds();
    for s in &lisp {
        assert!(replay_lisp(s), "seed does not parse: {s:02x?}");
    }
    let rel = reliable_seeds();
    for s in &rel {
        replay_reliable(s);
    }
    if std::env::var_os("ROAMER_WRITE_FUZZ_SEEDS").is_some() {
        write_seeds("lisp_control", &lisp);
        // The instances' harness (control/src/lisp/fuzz_harness.rs) takes the same messages.
        write_seeds("lisp_instances", &lisp);
        write_seeds("reliable_framing", &rel);
    }
}
