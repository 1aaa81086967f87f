//! LISP control-message costs: Map-Register parse + HMAC verify (SHA-1 and SHA-256), Map-Reply
//! emit, Map-Request parse, and reliable-transport frame decoding.
//!
//! `cargo bench -p roamer-control --bench lisp_control -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use roamer_control::wire::lisp::{
    Address, AuthKey, EidPrefix, EidRecord, KeyId, LocatorRecord, MapRegister, MapReply,
    MapRequest, verify,
};
use roamer_control::wire::reliable::{ReliableDecoder, ReliableFrame, ReliableMessage};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn record(host: u8) -> EidRecord {
    EidRecord::authoritative(
        EidPrefix {
            eid: Address::Ip(v4(172, 16, 1, host)),
            mask_len: 32,
        },
        1440,
        vec![
            LocatorRecord::local(v4(10, 1, 1, 1), 1, 50),
            LocatorRecord::local(v4(10, 1, 1, 2), 1, 50),
        ],
    )
}

fn benches(c: &mut Criterion) {
    let sha1 = AuthKey::new(KeyId::HmacSha1, b"cisco").expect("key");
    let sha256 = AuthKey::new(KeyId::HmacSha256, b"cisco").expect("key");
    let reg = MapRegister::new(vec![record(10)]);
    let reg_sha1 = reg.to_signed_vec(&sha1).expect("sign");
    let reg_sha256 = reg.to_signed_vec(&sha256).expect("sign");

    c.bench_function("map_register_parse_verify_sha1", |b| {
        b.iter(|| {
            let m = MapRegister::parse_verified(black_box(&reg_sha1), &sha1).expect("ok");
            black_box(m.records.len())
        })
    });
    c.bench_function("map_register_parse_verify_sha256", |b| {
        b.iter(|| {
            let m = MapRegister::parse_verified(black_box(&reg_sha256), &sha256).expect("ok");
            black_box(m.records.len())
        })
    });
    c.bench_function("map_register_verify_only_sha1", |b| {
        b.iter(|| verify(black_box(&reg_sha1), &sha1).expect("ok"))
    });
    c.bench_function("map_register_sign_sha1", |b| {
        b.iter(|| black_box(reg.to_signed_vec(&sha1).expect("sign")))
    });

    let reply = MapReply {
        probe: false,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce: 0x4D04_AB2F_99FF_6FF5,
        records: vec![record(10)],
    };
    let mut buf = [0u8; 1500];
    c.bench_function("map_reply_emit", |b| {
        b.iter(|| black_box(black_box(&reply).emit(&mut buf).expect("emit")))
    });

    let req = common::smr_invoked_struct().to_vec().expect("emit");
    c.bench_function("map_request_parse", |b| {
        b.iter(|| black_box(MapRequest::parse(black_box(&req)).expect("parse")))
    });

    let frame = ReliableFrame {
        msg_id: 2,
        message: ReliableMessage::Registration {
            map_register: reg_sha1.clone(),
        },
    }
    .to_vec()
    .expect("emit");
    let stream: Vec<u8> = std::iter::repeat_n(frame.as_slice(), 16)
        .flatten()
        .copied()
        .collect();
    c.bench_function("reliable_decode_16_registrations", |b| {
        b.iter(|| {
            let mut d = ReliableDecoder::default();
            black_box(d.feed(black_box(&stream)).expect("frames").len())
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
