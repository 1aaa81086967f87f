//! Property tests: `parse(emit(x)) == x` for every LISP control message kind, for the
//! reliable-transport frames and typed messages, for the incremental decoder under arbitrary
//! chunking; sign/verify agreement; and no panic on arbitrary input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use roamer_control::wire::lisp::{
    Action, Address, AuthKey, Authentication, Ecm, EidPrefix, EidRecord, KeyId, LispMessage,
    LocatorRecord, MapNotify, MapRegister, MapReply, MapRequest, XtrSiteId, parse_message, verify,
};
use roamer_control::wire::reliable::{
    Frame, RefreshScope, RejectReason, ReliableDecoder, ReliableFrame, ReliableMessage, TypeNumbers,
};

fn ipv4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
}

fn ipv6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![ipv4(), ipv6()]
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        Just(Address::None),
        ip().prop_map(Address::Ip),
        (any::<u32>(), any::<u8>(), option::of(ip())).prop_map(|(iid, mask_len, addr)| {
            Address::InstanceId {
                iid,
                mask_len,
                addr,
            }
        }),
    ]
}

fn eid_prefix() -> impl Strategy<Value = EidPrefix> {
    (address(), any::<u8>()).prop_map(|(eid, m)| {
        let mask_len = match eid.ip() {
            Some(_) => m % (eid.max_mask_len() + 1),
            None => m,
        };
        EidPrefix { eid, mask_len }
    })
}

fn locator() -> impl Strategy<Value = LocatorRecord> {
    (any::<[u8; 4]>(), any::<[bool; 3]>(), ip()).prop_map(|(p, f, rloc)| LocatorRecord {
        priority: p[0],
        weight: p[1],
        m_priority: p[2],
        m_weight: p[3],
        local: f[0],
        probed: f[1],
        reachable: f[2],
        rloc,
    })
}

fn record() -> impl Strategy<Value = EidRecord> {
    (
        any::<u32>(),
        eid_prefix(),
        0u8..8,
        any::<bool>(),
        0u16..=EidRecord::MAX_MAP_VERSION,
        vec(locator(), 0..4),
    )
        .prop_map(
            |(ttl, prefix, act, authoritative, map_version, locators)| EidRecord {
                ttl,
                prefix,
                action: Action::from_bits(act),
                authoritative,
                map_version,
                locators,
            },
        )
}

fn map_request() -> impl Strategy<Value = MapRequest> {
    (
        any::<[bool; 7]>(),
        any::<u64>(),
        address(),
        prop_oneof![vec(ip(), 1..4), vec(ip(), 32..=32)],
        vec(eid_prefix(), 1..4),
        option::of(record()),
        xtr(),
    )
        .prop_map(
            |(f, nonce, source_eid, itr_rlocs, records, map_reply_record, subscribe)| MapRequest {
                authoritative: f[0],
                probe: f[1],
                smr: f[2],
                pitr: f[3],
                smr_invoked: f[4],
                local_xtr: f[5],
                dont_map_reply: f[6],
                nonce,
                source_eid,
                itr_rlocs,
                records,
                map_reply_record,
                subscribe,
            },
        )
}

fn map_reply() -> impl Strategy<Value = MapReply> {
    (any::<[bool; 3]>(), any::<u64>(), vec(record(), 0..4)).prop_map(|(f, nonce, records)| {
        MapReply {
            probe: f[0],
            echo_nonce_capable: f[1],
            lisp_sec: f[2],
            nonce,
            records,
        }
    })
}

fn authentication() -> impl Strategy<Value = Authentication> {
    (any::<u16>(), vec(any::<u8>(), 0..40))
        .prop_map(|(key_id, data)| Authentication { key_id, data })
}

fn xtr() -> impl Strategy<Value = Option<XtrSiteId>> {
    option::of(
        (any::<[u8; 16]>(), any::<u64>())
            .prop_map(|(xtr_id, site_id)| XtrSiteId { xtr_id, site_id }),
    )
}

fn map_register() -> impl Strategy<Value = MapRegister> {
    (
        any::<[bool; 7]>(),
        any::<u64>(),
        authentication(),
        vec(record(), 0..4),
        xtr(),
    )
        .prop_map(|(f, nonce, auth, records, xtr)| MapRegister {
            proxy_reply: f[0],
            lisp_sec: f[1],
            reliable_transport: f[2],
            eid_notify: f[3],
            ttl_timeout: f[4],
            merge: f[5],
            want_map_notify: f[6],
            nonce,
            auth,
            records,
            xtr,
        })
}

fn map_notify() -> impl Strategy<Value = MapNotify> {
    (
        any::<bool>(),
        any::<u64>(),
        authentication(),
        vec(record(), 0..4),
        xtr(),
    )
        .prop_map(|(ack, nonce, auth, records, xtr)| MapNotify {
            ack,
            nonce,
            auth,
            records,
            xtr,
        })
}

fn plain_message() -> impl Strategy<Value = LispMessage> {
    prop_oneof![
        map_request().prop_map(LispMessage::MapRequest),
        map_reply().prop_map(LispMessage::MapReply),
        map_register().prop_map(LispMessage::MapRegister),
        map_notify().prop_map(LispMessage::MapNotify),
    ]
}

fn ecm() -> impl Strategy<Value = Ecm> {
    (
        any::<bool>(),
        prop_oneof![(ipv4(), ipv4()), (ipv6(), ipv6())],
        any::<u8>(),
        any::<[u16; 2]>(),
        plain_message(),
    )
        .prop_map(|(ddt, (src, dst), ttl, ports, m)| Ecm {
            ddt,
            inner_src: src,
            inner_dst: dst,
            inner_ttl: ttl,
            inner_src_port: ports[0],
            inner_dst_port: ports[1],
            message: Box::new(m),
        })
}

fn any_message() -> impl Strategy<Value = LispMessage> {
    prop_oneof![plain_message(), ecm().prop_map(LispMessage::Ecm)]
}

fn reliable_message() -> impl Strategy<Value = ReliableMessage> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            vec(any::<u8>(), 0..20)
        )
            .prop_map(|(code, t, l, id, d)| ReliableMessage::ErrorNotification {
                code,
                offending_type: t,
                offending_length: l,
                offending_id: id,
                offending_data: d,
            }),
        map_register().prop_map(|m| ReliableMessage::Registration {
            map_register: m.to_vec().expect("emit"),
        }),
        eid_prefix().prop_map(|eid| ReliableMessage::RegistrationAck { eid }),
        (any::<u8>(), eid_prefix()).prop_map(|(r, eid)| ReliableMessage::RegistrationNack {
            reason: RejectReason::from_u8(r),
            eid,
        }),
        (any::<u8>(), any::<bool>(), eid_prefix()).prop_map(|(s, rejected_only, p)| {
            let scope = RefreshScope::from_u8(s % 6);
            ReliableMessage::RegistrationRefresh {
                scope,
                rejected_only,
                eid: (scope != RefreshScope::All).then_some(p),
            }
        }),
        (any::<[u8; 16]>(), any::<u64>(), record()).prop_map(|(xtr_id, site_id, record)| {
            ReliableMessage::MappingNotification {
                xtr_id,
                site_id,
                record,
            }
        }),
        (22u16..1000, vec(any::<u8>(), 0..30))
            .prop_map(|(msg_type, data)| ReliableMessage::Other { msg_type, data }),
    ]
}

fn reliable_frame() -> impl Strategy<Value = ReliableFrame> {
    (any::<u32>(), reliable_message())
        .prop_map(|(msg_id, message)| ReliableFrame { msg_id, message })
}

fn raw_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        any::<u16>().prop_map(|msg_type| Frame {
            msg_type,
            msg_id: None,
            data: vec![],
        }),
        (any::<u16>(), any::<u32>(), vec(any::<u8>(), 0..64)).prop_map(|(t, id, data)| Frame {
            msg_type: t,
            msg_id: Some(id),
            data,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn map_request_round_trip(m in map_request()) {
        let b = m.to_vec().expect("emit");
        prop_assert_eq!(b.len(), m.buffer_len());
        prop_assert_eq!(MapRequest::parse(&b).expect("parse"), m);
    }

    #[test]
    fn map_reply_round_trip(m in map_reply()) {
        let b = m.to_vec().expect("emit");
        prop_assert_eq!(b.len(), m.buffer_len());
        prop_assert_eq!(MapReply::parse(&b).expect("parse"), m);
    }

    #[test]
    fn map_register_round_trip(m in map_register()) {
        let b = m.to_vec().expect("emit");
        prop_assert_eq!(b.len(), m.buffer_len());
        prop_assert_eq!(MapRegister::parse(&b).expect("parse"), m);
    }

    #[test]
    fn map_notify_round_trip(m in map_notify()) {
        let b = m.to_vec().expect("emit");
        prop_assert_eq!(b.len(), m.buffer_len());
        prop_assert_eq!(MapNotify::parse(&b).expect("parse"), m);
    }

    #[test]
    fn ecm_round_trip(e in ecm()) {
        let b = e.to_vec().expect("emit");
        prop_assert_eq!(b.len(), e.buffer_len());
        prop_assert_eq!(Ecm::parse(&b).expect("parse"), e);
    }

    #[test]
    fn any_message_round_trip(m in any_message()) {
        let b = m.to_vec().expect("emit");
        prop_assert_eq!(parse_message(&b).expect("parse"), m);
    }

    #[test]
    fn signed_messages_verify_and_tamper_fails(
        m in map_register(),
        n in map_notify(),
        secret in vec(any::<u8>(), 0..40),
        sha256 in any::<bool>(),
        index in any::<u8>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let alg = if sha256 { KeyId::HmacSha256 } else { KeyId::HmacSha1 };
        let key = AuthKey::new(alg, &secret).expect("key").with_key_index(index);
        for b in [m.to_signed_vec(&key).expect("sign"), n.to_signed_vec(&key).expect("sign")] {
            prop_assert!(verify(&b, &key).is_ok());
            let mut t = b.clone();
            let i = flip.index(t.len());
            t[i] ^= 0x01;
            // Any flipped bit breaks either the parse, the key-id match, or the digest —
            // except bits that the parser ignores *and* that sit outside both digest scopes,
            // of which there are none: the digest covers every octet.
            prop_assert!(verify(&t, &key).is_err());
        }
    }

    #[test]
    fn reliable_frame_round_trip(f in reliable_frame()) {
        let b = f.to_vec().expect("emit");
        prop_assert_eq!(b.len(), f.buffer_len());
        prop_assert_eq!(ReliableFrame::parse(&b).expect("parse"), f);
    }

    #[test]
    fn raw_frame_round_trip(f in raw_frame()) {
        let b = f.to_vec().expect("emit");
        prop_assert_eq!(Frame::parse(&b).expect("parse"), f);
    }

    #[test]
    fn decoder_reassembles_any_chunking(
        frames in vec(raw_frame(), 0..8),
        cuts in vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.to_vec().expect("emit")).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut d = ReliableDecoder::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            got.extend(d.feed(&stream[w[0]..w[1]]).expect("framing"));
        }
        prop_assert_eq!(d.buffered(), 0);
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn typed_decode_of_any_frame_never_panics(f in raw_frame()) {
        let _ = ReliableFrame::from_frame(&f, &TypeNumbers::default());
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..200)) {
        if let Ok(m) = parse_message(&b) {
            let again = m.to_vec().expect("a parsed message emits");
            prop_assert_eq!(parse_message(&again).expect("re-parse"), m);
        }
        let key = AuthKey::new(KeyId::HmacSha1, b"cisco").expect("key");
        let _ = verify(&b, &key);
        let mut d = ReliableDecoder::default();
        let _ = d.feed(&b);
    }
}
