//! Byte-exact fixtures for the LISP control messages, their authentication and the reliable
//! transport framing: protocols.md §3.11 (worked Map-Register and its variants), §4.7 (SMR,
//! SMR-invoked ECM, Map-Reply, negative Map-Reply), §5.4 (reliable stream) and every LISP control
//! vector of the §11.3 table; plus unknown-bit tolerance and negative cases with typed errors.

mod common;

use common::{
    map_reply_struct, neg_map_reply_struct, smr_invoked_struct, smr_struct, v4, worked_record,
    worked_register,
};
use roamer_control::ControlError;
use roamer_control::wire::lisp::{
    Action, Address, AuthKey, Authentication, Ecm, EidPrefix, KeyId, LispMessage, MapNotify,
    MapRegister, MapReply, MapRequest, MessageType, XtrSiteId, parse_message, sign, verify,
};
use roamer_control::wire::reliable::{
    END_MARKER, Frame, RefreshScope, RejectReason, ReliableDecoder, ReliableFrame, ReliableMessage,
    TypeNumbers,
};
use roamer_test_support::hex;

fn cisco(alg: KeyId) -> AuthKey {
    AuthKey::new(alg, b"cisco").expect("key")
}

// ---- §11.3 table (hex copied verbatim) ----
const MAP_REGISTER_SHA1: &str = "300001010000000000000000000100142de2473150d1b167e7e4240b97a826074562dd71000005a00118100000000001ac1001000164ff00000500010a010101";
const MAP_REGISTER_SHA256: &str = "30000101000000000000000000020020f4442d2825dee57021cb8a3837d3af3ea4a20f9077d050973779462f51bc9342000005a00118100000000001ac1001000164ff00000500010a010101";
const MAP_REGISTER_IID101_SHA1: &str = "30000101000000000000000000010014b6546e0c508ba0918ebaaaa27e953f7fcdaa9dcb000005a0011810000000400300000200000a000000650001ac1001000164ff00000500010a010101";
const SMR: &str = "1300200168e45971e3df49310001ac10010a00010a01010100200001c0a80016";
const ECM_SMR_INVOKED: &str = "800000004500003c00004000401181930a020202ac10010a10f610f600289829104000014d04ab2f99ff6ff50001c0a8001600010a02020200200001ac10010a";
const MAP_REPLY: &str =
    "200000014d04ab2f99ff6ff5000005a00120100000000001ac10010a0164ff00000500010a030303";
const NEG_MAP_REPLY: &str = "2000000100000000000000010000000f00082000000000010a000000";

fn ecm_struct() -> Ecm {
    Ecm {
        ddt: false,
        inner_src: v4(10, 2, 2, 2),
        inner_dst: v4(172, 16, 1, 10),
        inner_ttl: 64,
        inner_src_port: 4342,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(smr_invoked_struct())),
    }
}

/// Asserts `bytes` parse to `msg`, that `msg` emits exactly `bytes`, and `buffer_len` agrees.
fn both_ways(bytes: &[u8], msg: &LispMessage) {
    assert_eq!(&parse_message(bytes).expect("parse"), msg);
    assert_eq!(msg.buffer_len(), bytes.len());
    assert_eq!(msg.to_vec().expect("emit"), bytes);
}

// ---------------------------------------------------------------------------------------------
// §3.11 worked example and its variants
// ---------------------------------------------------------------------------------------------

#[test]
fn worked_map_register_sha1_byte_for_byte() {
    let key = cisco(KeyId::HmacSha1);
    let bytes = worked_register(None).to_signed_vec(&key).expect("sign");
    assert_eq!(bytes.len(), 64);
    assert_eq!(bytes, hex(MAP_REGISTER_SHA1));
    assert_eq!(
        bytes[16..36],
        hex("2de2473150d1b167e7e4240b97a826074562dd71")[..]
    );
    verify(&bytes, &key).expect("verifies");
    let parsed = MapRegister::parse_verified(&bytes, &key).expect("parse");
    assert_eq!(parsed.auth.key_id, 1);
    assert_eq!(parsed.auth.algorithm(), Ok(KeyId::HmacSha1));
    assert!(parsed.want_map_notify && !parsed.proxy_reply && parsed.xtr.is_none());
    assert_eq!(parsed.nonce, 0);
    let mut expected = worked_register(None);
    expected.auth = Authentication {
        key_id: 1,
        data: hex("2de2473150d1b167e7e4240b97a826074562dd71"),
    };
    both_ways(&bytes, &LispMessage::MapRegister(expected));
}

#[test]
fn worked_map_register_hmac_input_is_message_with_zeroed_field() {
    // The zeroed HMAC input printed in §3.11.
    let zeroed = hex("30000101 0000000000000000 0001 0014
         0000000000000000000000000000000000000000
         000005a0 01181000 00000001 ac100100 0164ff00 00050001 0a010101");
    let mut m = worked_register(None);
    m.auth = Authentication::placeholder(&cisco(KeyId::HmacSha1));
    assert_eq!(m.to_vec().expect("emit"), zeroed);
    let mut signed = zeroed.clone();
    sign(&mut signed, &cisco(KeyId::HmacSha1)).expect("sign");
    assert_eq!(signed, hex(MAP_REGISTER_SHA1));
}

#[test]
fn map_register_sha256_vector() {
    let key = cisco(KeyId::HmacSha256);
    let bytes = worked_register(None).to_signed_vec(&key).expect("sign");
    assert_eq!(bytes.len(), 76);
    assert_eq!(bytes, hex(MAP_REGISTER_SHA256));
    verify(&bytes, &key).expect("verifies");
    // A SHA-1 key does not verify a SHA-256 message.
    assert_eq!(
        verify(&bytes, &cisco(KeyId::HmacSha1)),
        Err(ControlError::AuthFailed { key_id: 2 })
    );
}

#[test]
fn map_register_iid101_vector() {
    let key = cisco(KeyId::HmacSha1);
    let bytes = worked_register(Some(101))
        .to_signed_vec(&key)
        .expect("sign");
    assert_eq!(bytes.len(), 76);
    assert_eq!(bytes, hex(MAP_REGISTER_IID101_SHA1));
    let m = MapRegister::parse_verified(&bytes, &key).expect("parse");
    let p = m.records[0].prefix;
    assert_eq!(p.eid.iid(), Some(101));
    assert_eq!(p.hal_iid().map(|i| i.get()), Some(101));
    assert_eq!(
        p.prefix().map(|p| p.to_string()),
        Some("172.16.1.0/24".into())
    );
    assert_eq!(p.to_string(), "[101] 172.16.1.0/24");
}

#[test]
fn map_register_proxy_reply_variant() {
    let key = cisco(KeyId::HmacSha1);
    let mut m = worked_register(None);
    m.proxy_reply = true;
    let bytes = m.to_signed_vec(&key).expect("sign");
    assert_eq!(bytes[..4], [0x38, 0x00, 0x01, 0x01]);
    assert_eq!(
        bytes[16..36],
        hex("d800fa16cb25b962b56b42f8969c419794d0affe")[..]
    );
    assert!(
        MapRegister::parse_verified(&bytes, &key)
            .expect("ok")
            .proxy_reply
    );
}

#[test]
fn map_register_nonce_variant() {
    let key = cisco(KeyId::HmacSha1);
    let mut m = worked_register(None);
    m.nonce = 0x1122_3344_5566_7788;
    let bytes = m.to_signed_vec(&key).expect("sign");
    assert_eq!(bytes[4..12], hex("1122334455667788")[..]);
    assert_eq!(
        bytes[16..36],
        hex("ffcd2308cac24844168f0f63d5206fa78f2f63f4")[..]
    );
    assert_eq!(MapRegister::parse(&bytes).expect("ok").nonce, m.nonce);
}

fn xtr_register() -> MapRegister {
    let mut m = worked_register(None);
    let mut xtr_id = [0u8; 16];
    for (i, b) in xtr_id.iter_mut().enumerate() {
        *b = i as u8;
    }
    m.xtr = Some(XtrSiteId { xtr_id, site_id: 1 });
    m
}

#[test]
fn map_register_xtr_id_trailer_both_scopes() {
    let key = cisco(KeyId::HmacSha1);
    // Generated: digest over the whole message including the trailer (§12 #4).
    let bytes = xtr_register().to_signed_vec(&key).expect("sign");
    assert_eq!(bytes.len(), 64 + 24);
    assert_eq!(bytes[..4], [0x32, 0x00, 0x01, 0x01]);
    assert_eq!(
        bytes[16..36],
        hex("33724e68649e006b1e3964d443a8d9dc1826e6e6")[..]
    );
    verify(&bytes, &key).expect("trailer-included digest verifies");
    let parsed = MapRegister::parse(&bytes).expect("parse");
    assert_eq!(parsed.xtr, xtr_register().xtr);

    // RFC 9301 reading (trailer excluded) is accepted too.
    let mut rfc9301 = bytes.clone();
    rfc9301[16..36].copy_from_slice(&hex("82c989e1f89462412078b1ff367cb7c5e4c9dabb"));
    verify(&rfc9301, &key).expect("trailer-excluded digest verifies");

    // A digest over neither scope is refused.
    let mut bad = bytes.clone();
    bad[20] ^= 1;
    assert_eq!(
        verify(&bad, &key),
        Err(ControlError::AuthFailed { key_id: 1 })
    );
    // Without the I bit only the whole-message scope counts.
    let mut no_i = hex(MAP_REGISTER_SHA1);
    no_i[20] ^= 1;
    assert!(verify(&no_i, &key).is_err());
}

#[test]
fn key_id_layouts_16_bit_and_8_plus_8() {
    // Cisco key-id 1 = `00 01`; RFC 9301 key 1 / algorithm 1 = `01 01`; key 7 / SHA-256 = `07 02`.
    let k0 = cisco(KeyId::HmacSha1);
    let k1 = cisco(KeyId::HmacSha1).with_key_index(1);
    let k7 = cisco(KeyId::HmacSha256).with_key_index(7);
    assert_eq!(k0.key_id_field(), 0x0001);
    assert_eq!(k1.key_id_field(), 0x0101);
    assert_eq!(k7.key_id_field(), 0x0702);

    let b0 = worked_register(None).to_signed_vec(&k0).expect("sign");
    let b1 = worked_register(None).to_signed_vec(&k1).expect("sign");
    let b7 = worked_register(None).to_signed_vec(&k7).expect("sign");
    assert_eq!(b1[12..16], [0x01, 0x01, 0x00, 0x14]);
    assert_eq!(b7[12..16], [0x07, 0x02, 0x00, 0x20]);

    let m1 = MapRegister::parse(&b1).expect("parse");
    assert_eq!(m1.auth.key_id, 0x0101);
    assert_eq!(m1.auth.key_index(), 1);
    assert_eq!(m1.auth.algorithm(), Ok(KeyId::HmacSha1));
    let m7 = MapRegister::parse(&b7).expect("parse");
    assert_eq!(
        (m7.auth.key_index(), m7.auth.algorithm()),
        (7, Ok(KeyId::HmacSha256))
    );

    verify(&b0, &k0).expect("00 01");
    verify(&b1, &k1).expect("01 01");
    verify(&b7, &k7).expect("07 02");
    // The key index must match too.
    assert_eq!(
        verify(&b1, &k0),
        Err(ControlError::AuthFailed { key_id: 0x0101 })
    );
    assert_eq!(
        verify(&b0, &k1),
        Err(ControlError::AuthFailed { key_id: 0x0001 })
    );
}

#[test]
fn worked_register_in_udp_frame_matches_reference_checksums() {
    // §3.11 full frame: ETR 10.1.1.1:61000 → MS 10.9.9.9:4342, TTL 255, ID 0x1234, DF.
    let payload = hex(MAP_REGISTER_SHA1);
    let mut ip = etherparse::Ipv4Header::new(
        (8 + payload.len()) as u16,
        255,
        etherparse::IpNumber::UDP,
        [10, 1, 1, 1],
        [10, 9, 9, 9],
    )
    .expect("ip");
    ip.identification = 0x1234;
    ip.dont_fragment = true;
    ip.header_checksum = ip.calc_header_checksum();
    let udp = etherparse::UdpHeader::with_ipv4_checksum(61000, 4342, &ip, &payload).expect("udp");
    let mut frame = Vec::new();
    ip.write(&mut frame).expect("w");
    udp.write(&mut frame).expect("w");
    frame.extend_from_slice(&payload);
    assert_eq!(
        frame[..28],
        hex("45 00 00 5c 12 34 40 00 ff 11 4b 49 0a 01 01 01 0a 09 09 09 ee 48 10 f6 00 48 7d fe")
            [..]
    );
}

#[test]
fn map_notify_acknowledging_the_worked_register() {
    let key = cisco(KeyId::HmacSha1);
    let reg = MapRegister::parse(&hex(MAP_REGISTER_SHA1)).expect("parse");
    let notify = MapNotify::acknowledging(&reg);
    let bytes = notify.to_signed_vec(&key).expect("sign");
    assert_eq!(bytes[..4], [0x40, 0x00, 0x00, 0x01]);
    assert_eq!(bytes[4..16], hex("0000000000000000 0001 0014")[..]);
    assert_eq!(bytes[36..], hex(MAP_REGISTER_SHA1)[36..]);
    let back = MapNotify::parse_verified(&bytes, &key).expect("verified");
    assert!(!back.ack);
    assert_eq!(back.records, reg.records);

    let ack = MapNotify::ack_of(&back).to_signed_vec(&key).expect("sign");
    assert_eq!(ack[0], 0x50);
    let back_ack = MapNotify::parse_verified(&ack, &key).expect("verified");
    assert!(back_ack.ack);
    assert_eq!(
        parse_message(&ack).expect("parse").message_type(),
        MessageType::MapNotifyAck
    );
    // Notify with an xTR-ID trailer (I bit 0x0800_0000).
    let xn = MapNotify::acknowledging(&xtr_register());
    let xb = xn.to_signed_vec(&key).expect("sign");
    assert_eq!(xb[0..4], [0x48, 0x00, 0x00, 0x01]);
    let xp = MapNotify::parse_verified(&xb, &key).expect("verified");
    assert_eq!(xp.xtr, xtr_register().xtr);
}

// ---------------------------------------------------------------------------------------------
// §4.7 / §11.3 Map-Request, ECM, Map-Reply vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn smr_vector() {
    let bytes = hex(SMR);
    assert_eq!(bytes.len(), 32);
    both_ways(&bytes, &LispMessage::MapRequest(smr_struct()));
    let m = MapRequest::parse(&bytes).expect("parse");
    assert!(m.smr && m.probe && m.dont_map_reply && !m.smr_invoked);
}

#[test]
fn ecm_smr_invoked_vector() {
    let bytes = hex(ECM_SMR_INVOKED);
    assert_eq!(bytes.len(), 64);
    both_ways(&bytes, &LispMessage::Ecm(ecm_struct()));
    // Inner checksums as in the reference: IPv4 0x8193, UDP 0x9829.
    assert_eq!(bytes[14..16], [0x81, 0x93]);
    assert_eq!(bytes[30..32], [0x98, 0x29]);
}

#[test]
fn ecm_ipv6_inner_round_trip() {
    let mut e = ecm_struct();
    e.inner_src = "2001:db8::2".parse().expect("ip");
    e.inner_dst = "2001:db8:1::a".parse().expect("ip");
    e.inner_src_port = 61001;
    e.ddt = true;
    let bytes = e.to_vec().expect("emit");
    assert_eq!(bytes[0], 0x84);
    assert_eq!(bytes[4] >> 4, 6);
    assert_eq!(Ecm::parse(&bytes).expect("parse"), e);
    // Corrupt the inner UDP checksum.
    let mut bad = bytes.clone();
    bad[4 + 40 + 6] ^= 0xFF;
    assert!(matches!(
        Ecm::parse(&bad),
        Err(ControlError::BadValue {
            what: "ECM inner UDP checksum",
            ..
        })
    ));
}

#[test]
fn map_reply_vector() {
    let bytes = hex(MAP_REPLY);
    assert_eq!(bytes.len(), 40);
    both_ways(&bytes, &LispMessage::MapReply(map_reply_struct()));
}

#[test]
fn negative_map_reply_vector() {
    let bytes = hex(NEG_MAP_REPLY);
    assert_eq!(bytes.len(), 28);
    both_ways(&bytes, &LispMessage::MapReply(neg_map_reply_struct()));
    let r = MapReply::parse(&bytes).expect("parse");
    assert_eq!(r.records[0].action, Action::NativelyForward);
    assert!(r.records[0].locators.is_empty());
}

#[test]
fn map_request_with_map_data_record_and_ipv6() {
    let mut m = smr_invoked_struct();
    m.itr_rlocs.push("2001:db8::1".parse().expect("ip"));
    m.source_eid = Address::InstanceId {
        iid: 7,
        mask_len: 0,
        addr: Some("2001:db8:5::1".parse().expect("ip")),
    };
    m.records.push(EidPrefix {
        eid: Address::Ip("2001:db8:6::".parse().expect("ip")),
        mask_len: 48,
    });
    m.map_reply_record = Some(worked_record(Some(7)));
    m.local_xtr = true;
    let bytes = m.to_vec().expect("emit");
    assert_eq!(bytes[0] & 0x04, 0x04, "M bit");
    assert_eq!(bytes[2] & 0x1F, 1, "IRC = count - 1");
    assert_eq!(bytes[3], 2, "record count");
    assert_eq!(MapRequest::parse(&bytes).expect("parse"), m);
}

// ---------------------------------------------------------------------------------------------
// Unknown / reserved bits are ignored on receive and sent as zero
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_flag_bits_ignored() {
    // Map-Request: lispers m/I bits (0x0030_0000), RFC 9301 reserved 0x001F_0000 and 0x0000_8000.
    let mut b = hex(SMR);
    b[1] |= 0x3F;
    b[2] |= 0x80;
    assert_eq!(MapRequest::parse(&b).expect("parse"), smr_struct());
    assert_eq!(smr_struct().to_vec().expect("emit"), hex(SMR));

    // Map-Register: NAT-draft R (0x0100_0000), reserved 0x00FF_C000 and 0x0000_0200 (bit 22).
    let mut r = hex(MAP_REGISTER_SHA1);
    r[0] |= 0x01;
    r[1] |= 0xFF;
    r[2] |= 0xC2;
    // record reserved bits (ACT/A word low 12 bits, version word high 4 bits), locator unused bits
    r[0x2a] |= 0x0F;
    r[0x2b] |= 0xFF;
    r[0x2c] |= 0xF0;
    r[0x38] |= 0xFF;
    r[0x39] |= 0xF8;
    let m = MapRegister::parse(&r).expect("parse");
    let mut expected = worked_register(None);
    expected.auth = Authentication {
        key_id: 1,
        data: hex("2de2473150d1b167e7e4240b97a826074562dd71"),
    };
    assert_eq!(m, expected);
    assert_eq!(m.to_vec().expect("emit"), hex(MAP_REGISTER_SHA1));

    // Map-Reply reserved bits (17 bits after P/E/S).
    let mut p = hex(MAP_REPLY);
    p[1] |= 0x1F;
    p[2] |= 0xFF;
    assert_eq!(MapReply::parse(&p).expect("parse"), map_reply_struct());

    // Map-Notify NAT-draft R bit and reserved bits.
    let mut n = hex(MAP_REGISTER_SHA1);
    n[0] = 0x44;
    n[1] = 0xFF;
    let nm = MapNotify::parse(&n).expect("parse");
    assert!(nm.xtr.is_none() && !nm.ack);

    // ECM E and M bits and the 24 reserved bits.
    let mut e = hex(ECM_SMR_INVOKED);
    e[0] |= 0x03;
    e[1..4].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    assert_eq!(Ecm::parse(&e).expect("parse"), ecm_struct());

    // LCAF Rsvd1 and Flags octets.
    let mut l = hex(MAP_REGISTER_IID101_SHA1);
    l[0x30] = 0xAA;
    l[0x31] = 0x55;
    let lm = MapRegister::parse(&l).expect("parse");
    assert_eq!(lm.records[0].prefix.eid.iid(), Some(101));

    // Trailing octets after the message are ignored.
    let mut t = hex(SMR);
    t.extend_from_slice(&[1, 2, 3]);
    assert_eq!(MapRequest::parse(&t).expect("parse"), smr_struct());
}

// ---------------------------------------------------------------------------------------------
// Negative cases: every error is typed, nothing panics
// ---------------------------------------------------------------------------------------------

#[test]
fn every_truncation_is_a_typed_error() {
    for v in [
        MAP_REGISTER_SHA1,
        MAP_REGISTER_SHA256,
        MAP_REGISTER_IID101_SHA1,
        SMR,
        ECM_SMR_INVOKED,
        MAP_REPLY,
        NEG_MAP_REPLY,
    ] {
        let b = hex(v);
        for n in 0..b.len() {
            match parse_message(&b[..n]) {
                Err(
                    ControlError::Truncated { .. }
                    | ControlError::BadLength { .. }
                    | ControlError::BadValue { .. },
                ) => {}
                other => panic!("{v} cut at {n}: {other:?}"),
            }
        }
    }
}

#[test]
fn typed_errors_for_bad_fields() {
    // Unknown message types.
    for t in [0u8, 6, 7, 9, 15] {
        assert_eq!(
            parse_message(&[t << 4, 0, 0, 0]),
            Err(ControlError::BadValue {
                what: "LISP message type",
                value: u64::from(t)
            })
        );
    }
    assert!(matches!(
        parse_message(&[]),
        Err(ControlError::Truncated { .. })
    ));

    // Unsupported AFI (MAC, 16389) as source EID.
    let mut b = hex(SMR);
    b[12..14].copy_from_slice(&16389u16.to_be_bytes());
    assert_eq!(
        MapRequest::parse(&b),
        Err(ControlError::UnsupportedAfi {
            what: "Map-Request source EID",
            afi: 16389
        })
    );

    // Map-Request record count 0.
    let mut b = hex(SMR);
    b[3] = 0;
    assert_eq!(
        MapRequest::parse(&b),
        Err(ControlError::BadValue {
            what: "Map-Request record count",
            value: 0
        })
    );

    // IRC claims 32 ITR-RLOCs in a 32-octet message.
    let mut b = hex(SMR);
    b[2] |= 0x1F;
    assert!(matches!(
        MapRequest::parse(&b),
        Err(ControlError::Truncated {
            what: "Map-Request ITR-RLOCs",
            ..
        })
    ));

    // Locator count 255 with one locator present.
    let mut b = hex(MAP_REGISTER_SHA1);
    b[0x28] = 255;
    assert!(matches!(
        MapRegister::parse(&b),
        Err(ControlError::Truncated {
            what: "EID-record locators",
            ..
        })
    ));

    // Record count 255 with one record present.
    let mut b = hex(MAP_REPLY);
    b[3] = 255;
    assert!(matches!(
        MapReply::parse(&b),
        Err(ControlError::Truncated {
            what: "EID-records",
            ..
        })
    ));

    // Mask length 33 on an IPv4 EID.
    let mut b = hex(MAP_REGISTER_SHA1);
    b[0x29] = 33;
    assert_eq!(
        MapRegister::parse(&b),
        Err(ControlError::BadValue {
            what: "EID-record mask length",
            value: 33
        })
    );

    // LCAF of a type other than Instance-ID.
    let mut b = hex(MAP_REGISTER_IID101_SHA1);
    b[0x32] = 12;
    assert_eq!(
        MapRegister::parse(&b),
        Err(ControlError::BadValue {
            what: "LCAF type",
            value: 12
        })
    );
    // LCAF length disagreeing with its content.
    let mut b = hex(MAP_REGISTER_IID101_SHA1);
    b[0x35] = 0x08;
    assert!(matches!(
        MapRegister::parse(&b),
        Err(ControlError::BadLength {
            what: "Instance-ID LCAF length",
            ..
        })
    ));
    // LCAF length beyond the message.
    let mut b = hex(MAP_REGISTER_IID101_SHA1);
    b[0x34] = 0x40;
    assert!(matches!(
        MapRegister::parse(&b),
        Err(ControlError::Truncated {
            what: "Instance-ID LCAF",
            ..
        })
    ));

    // Auth length beyond the message.
    let mut b = hex(MAP_REGISTER_SHA1);
    b[14..16].copy_from_slice(&[0xFF, 0xFF]);
    assert!(matches!(
        MapRegister::parse(&b),
        Err(ControlError::Truncated {
            what: "authentication data",
            ..
        })
    ));

    // ECM: bad inner IPv4 checksum, bad inner UDP checksum, S bit, ECM in ECM, not UDP.
    let mut b = hex(ECM_SMR_INVOKED);
    b[14] ^= 0xFF;
    assert!(matches!(
        Ecm::parse(&b),
        Err(ControlError::BadValue {
            what: "ECM inner IPv4 header checksum",
            ..
        })
    ));
    let mut b = hex(ECM_SMR_INVOKED);
    b[31] ^= 0x01;
    assert_eq!(
        Ecm::parse(&b),
        Err(ControlError::BadValue {
            what: "ECM inner UDP checksum",
            value: 0x9828
        })
    );
    let mut b = hex(ECM_SMR_INVOKED);
    b[0] |= 0x08;
    assert!(matches!(
        Ecm::parse(&b),
        Err(ControlError::BadValue {
            what: "ECM S bit (LISP-SEC not supported)",
            ..
        })
    ));
    let nested = Ecm {
        message: Box::new(LispMessage::Ecm(ecm_struct())),
        ..ecm_struct()
    };
    assert!(matches!(
        nested.to_vec(),
        Err(ControlError::BadValue {
            what: "ECM inside an ECM",
            ..
        })
    ));
    let mut b = hex(ECM_SMR_INVOKED);
    b[4] = 0x55;
    assert!(matches!(
        Ecm::parse(&b),
        Err(ControlError::BadValue {
            what: "ECM inner IP version",
            ..
        })
    ));

    // Emitting into a short buffer.
    let mut small = [0u8; 10];
    assert!(matches!(
        smr_struct().emit(&mut small),
        Err(ControlError::Truncated {
            what: "emit buffer",
            ..
        })
    ));
    // Emitting a Map-Request without ITR-RLOCs / with 33.
    let mut m = smr_struct();
    m.itr_rlocs.clear();
    assert!(m.to_vec().is_err());
    m.itr_rlocs = vec![v4(1, 1, 1, 1); 33];
    assert!(m.to_vec().is_err());
}

#[test]
fn authentication_failures_are_typed() {
    let key = cisco(KeyId::HmacSha1);
    let good = hex(MAP_REGISTER_SHA1);
    // Wrong password.
    let other = AuthKey::new(KeyId::HmacSha1, b"cisco1").expect("key");
    assert_eq!(
        verify(&good, &other),
        Err(ControlError::AuthFailed { key_id: 1 })
    );
    // Tampered record.
    let mut b = good.clone();
    b[0x3F] ^= 1;
    assert_eq!(
        verify(&b, &key),
        Err(ControlError::AuthFailed { key_id: 1 })
    );
    // Truncated (96-bit) digest is refused: the full 20 octets are required.
    let mut m = MapRegister::parse(&good).expect("parse");
    m.auth.data.truncate(12);
    let b = m.to_vec().expect("emit");
    assert_eq!(
        verify(&b, &key),
        Err(ControlError::AuthFailed { key_id: 1 })
    );
    // Algorithm 3 (HKDF) and key-id 0 are refused.
    let mut b = good.clone();
    b[13] = 3;
    assert_eq!(
        verify(&b, &key),
        Err(ControlError::AuthFailed { key_id: 3 })
    );
    let mut m = MapRegister::parse(&good).expect("parse");
    m.auth = Authentication::none();
    assert_eq!(
        verify(&m.to_vec().expect("emit"), &key),
        Err(ControlError::AuthFailed { key_id: 0 })
    );
    assert!(KeyId::from_field(3).is_err());
    // Only types 3, 4, 5 are authenticated.
    assert!(matches!(
        verify(&hex(SMR), &key),
        Err(ControlError::BadValue {
            what: "authenticated message type",
            ..
        })
    ));
    assert!(matches!(
        verify(&good[..14], &key),
        Err(ControlError::Truncated { .. })
    ));
    // sign() refuses a message whose Key-ID does not match the key.
    let mut b = good.clone();
    assert!(sign(&mut b, &cisco(KeyId::HmacSha256)).is_err());
    // A key of algorithm "none" does not exist.
    assert!(AuthKey::new(KeyId::None, b"x").is_err());
}

#[test]
fn auth_key_debug_is_redacted() {
    let key = AuthKey::new(KeyId::HmacSha1, b"s3cr3t-password").expect("key");
    let d = format!("{key:?}");
    assert!(d.contains("<redacted>"), "{d}");
    assert!(!d.contains("s3cr3t"), "{d}");
    assert!(!d.contains("115"), "{d}"); // no byte dump of the secret either
}

// ---------------------------------------------------------------------------------------------
// §5.4 reliable transport stream
// ---------------------------------------------------------------------------------------------

const REFRESH: &str = "0014000f00000001000000 9facade9";
const ACK: &str = "00120013 00000003 180001ac100100 9facade9";
const NACK: &str = "00130016 00000004 020000 180001ac100900 9facade9";

fn registration_hex() -> String {
    format!("0011004c00000002{MAP_REGISTER_SHA1}9facade9")
}

fn prefix24(a: u8, b: u8, c: u8) -> EidPrefix {
    EidPrefix {
        eid: Address::Ip(v4(a, b, c, 0)),
        mask_len: 24,
    }
}

#[test]
fn reliable_stream_vectors() {
    let refresh = ReliableFrame {
        msg_id: 1,
        message: ReliableMessage::RegistrationRefresh {
            scope: RefreshScope::All,
            rejected_only: false,
            eid: None,
        },
    };
    let registration = ReliableFrame {
        msg_id: 2,
        message: ReliableMessage::Registration {
            map_register: hex(MAP_REGISTER_SHA1),
        },
    };
    let ack = ReliableFrame {
        msg_id: 3,
        message: ReliableMessage::RegistrationAck {
            eid: prefix24(172, 16, 1),
        },
    };
    let nack = ReliableFrame {
        msg_id: 4,
        message: ReliableMessage::RegistrationNack {
            reason: RejectReason::AuthenticationFailure,
            eid: prefix24(172, 16, 9),
        },
    };
    let cases = [
        (hex(REFRESH), &refresh),
        (hex(&registration_hex()), &registration),
        (hex(ACK), &ack),
        (hex(NACK), &nack),
    ];
    for (bytes, frame) in &cases {
        assert_eq!(&ReliableFrame::parse(bytes).expect("parse"), *frame);
        assert_eq!(frame.to_vec().expect("emit"), *bytes);
        assert_eq!(frame.buffer_len(), bytes.len());
    }
    assert_eq!(hex(&registration_hex()).len(), 76);
    // The Map-Register inside verifies.
    let reg = ReliableFrame::parse(&hex(&registration_hex())).expect("parse");
    match &reg.message {
        ReliableMessage::Registration { map_register } => {
            verify(map_register, &cisco(KeyId::HmacSha1)).expect("verifies")
        }
        other => panic!("{other:?}"),
    }
    assert!(reg.message.map_register().expect("some").is_ok());

    // Whole stream, fed one octet at a time and in one go.
    let stream: Vec<u8> = cases.iter().flat_map(|(b, _)| b.clone()).collect();
    let t = TypeNumbers::default();
    for chunk in [1usize, 3, 7, stream.len()] {
        let mut d = ReliableDecoder::default();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            for f in d.feed(c).expect("framing ok") {
                got.push(ReliableFrame::from_frame(&f, &t).expect("decode"));
            }
        }
        assert_eq!(d.buffered(), 0);
        let want: Vec<ReliableFrame> = cases.iter().map(|(_, f)| (*f).clone()).collect();
        assert_eq!(got, want, "chunk {chunk}");
    }
}

#[test]
fn reliable_other_messages_round_trip() {
    let frames = [
        ReliableFrame {
            msg_id: 9,
            message: ReliableMessage::ErrorNotification {
                code: 3,
                offending_type: 17,
                offending_length: 76,
                offending_id: 2,
                offending_data: vec![1, 2, 3],
            },
        },
        ReliableFrame {
            msg_id: 10,
            message: common::refresh_iid101(),
        },
        ReliableFrame {
            msg_id: 11,
            message: ReliableMessage::MappingNotification {
                xtr_id: [7; 16],
                site_id: 42,
                record: worked_record(None),
            },
        },
        ReliableFrame {
            msg_id: 12,
            message: ReliableMessage::Other {
                msg_type: 22,
                data: vec![0, 1, 0, 0, 0, 5],
            },
        },
    ];
    for f in &frames {
        let b = f.to_vec().expect("emit");
        assert_eq!(&ReliableFrame::parse(&b).expect("parse"), f);
        assert_eq!(b[b.len() - 4..], END_MARKER.to_be_bytes());
    }
    // Refresh with scope 0 but an EID, or scope 4 without, is refused on emit.
    let bad = ReliableFrame {
        msg_id: 1,
        message: ReliableMessage::RegistrationRefresh {
            scope: RefreshScope::All,
            rejected_only: false,
            eid: Some(prefix24(1, 2, 3)),
        },
    };
    assert!(bad.to_vec().is_err());
    // A Registration that is not a Map-Register is refused (typed, no reset needed).
    let mut b = hex(&registration_hex());
    b[8] = 0x10;
    assert!(matches!(
        ReliableFrame::parse(&b),
        Err(ControlError::BadValue {
            what: "LISP message type",
            ..
        })
    ));
    // Custom type numbers.
    let t = TypeNumbers {
        registration_ack: 118,
        ..TypeNumbers::default()
    };
    let ack = ReliableFrame {
        msg_id: 3,
        message: ReliableMessage::RegistrationAck {
            eid: prefix24(172, 16, 1),
        },
    };
    let mut buf = [0u8; 64];
    let n = ack.emit_with(&mut buf, &t).expect("emit");
    let f = Frame::parse(&buf[..n]).expect("frame");
    assert_eq!(f.msg_type, 118);
    assert_eq!(ReliableFrame::from_frame(&f, &t).expect("decode"), ack);
}

#[test]
fn reliable_framing_errors_require_reset() {
    let framing = |r: Result<Vec<Frame>, ControlError>| {
        assert!(matches!(r, Err(ControlError::Framing { .. })), "{r:?}");
    };
    // Bad end marker.
    let mut b = hex(ACK);
    let n = b.len();
    b[n - 1] = 0xEA;
    let mut d = ReliableDecoder::default();
    framing(d.feed(&b));
    // Sticky until reset.
    framing(d.feed(&hex(ACK)));
    d.reset();
    assert_eq!(d.feed(&hex(ACK)).expect("ok").len(), 1);

    // Length below 8, between 9 and 11, above the maximum: detected from the 4-octet header.
    for len in [0u16, 7, 9, 10, 11] {
        let mut d = ReliableDecoder::default();
        let mut h = vec![0x00, 0x12];
        h.extend_from_slice(&len.to_be_bytes());
        framing(d.feed(&h));
    }
    let mut d = ReliableDecoder::new(100);
    framing(d.feed(&[0x00, 0x11, 0x00, 101]));
    let mut d = ReliableDecoder::new(100);
    assert!(
        d.feed(&[0x00, 0x11, 0x00, 100])
            .expect("waiting")
            .is_empty()
    );
    assert_eq!(d.buffered(), 4);

    // An 8-octet frame: no message id, decodes at framing level, refused as a typed message.
    let mut d = ReliableDecoder::default();
    let f = d
        .feed(&hex("0014 0008 9facade9"))
        .expect("framing ok")
        .pop()
        .expect("frame");
    assert_eq!(f.msg_id, None);
    assert!(matches!(
        ReliableFrame::from_frame(&f, &TypeNumbers::default()),
        Err(ControlError::BadLength { .. })
    ));
    assert_eq!(f.to_vec().expect("emit"), hex("0014 0008 9facade9"));

    // Frame::parse refuses trailing octets and partial frames.
    let mut b = hex(ACK);
    b.push(0);
    assert!(matches!(
        Frame::parse(&b),
        Err(ControlError::Framing { .. })
    ));
    assert!(matches!(
        Frame::parse(&hex(ACK)[..10]),
        Err(ControlError::Framing { .. })
    ));
}
