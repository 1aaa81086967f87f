//! HSRP wire vectors: protocols.md §11.3 `hsrp_v1_hello` / `hsrp_v2_hello` and the §7.2 / §7.4
//! worked examples byte for byte, the five Cisco MD5 captures (v1 and v2), full frames for v1, v2
//! and HSRP for IPv6, ignored fields, every negative case with its typed error, authentication,
//! `Debug` redaction, and property round-trips for every kind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use roamer_control::ControlError;
use roamer_control::wire::hsrp::{
    AuthText, HSRP_IPV6_MCAST_MAC, HSRP_V1_MCAST_MAC, HSRP_V2_MCAST_MAC, HsrpAuth, HsrpAuthConfig,
    HsrpInterfaceState, HsrpMd5Auth, HsrpMd5Key, HsrpOpCode, HsrpPacket, HsrpState, HsrpTransport,
    HsrpV1Packet, HsrpV1Repr, HsrpV2GroupState, HsrpV2Repr, HsrpV2Tlvs, build_hsrp_frame,
    emit_hsrp_frame, hello_source_mac, hsrp_frame_len, md5_digest, parse_hsrp_frame, sign_md5,
    verify_md5, virtual_link_local_ipv6, virtual_mac_ipv6, virtual_mac_v1, virtual_mac_v2,
};
use roamer_hal::Mac;
use roamer_test_support::hex;

/// §11.3 `hsrp_v1_hello` = §7.2 worked hello (Active, prio 110, group 10, VIP 10.10.10.1).
const V1_HELLO: &str = "000010030a6e0a00636973636f0000000a0a0a01";
/// §11.3 `hsrp_v2_hello` = §7.4 worked v2 hello (52 octets).
const V2_HELLO: &str = "012802000604000a0011223344550000006e00000bb8000027100a0a0a01\
                        000000000000000000000000 0308636973636f000000";

/// Full frames (independent Python builder: Ethernet, IPv4 ToS 0xc0 / TTL 1 / id 0, UDP checksum).
const V1_FRAME: &str = "01005e00000200000c07ac0a080045c00030000000000111c4ef0a0a0a02e0000002\
                        07c107c1001c7ddc000010030a6e0a00636973636f0000000a0a0a01";
const V2_FRAME: &str = "01005e00006600000c9ff00a080045c00050000000000111c46b0a0a0a02e0000066\
                        07c107c1003cfb9b012802000604000a0011223344550000006e00000bb800002710\
                        0a0a0a010000000000000000000000000308636973636f000000";
/// HSRP for IPv6: group 10 Active, VIP fe80::5:73ff:fea0:a, from fe80::211:22ff:fe33:4455,
/// hop limit 255, traffic class 0xc0, UDP 2029.
const V6_FRAME: &str = "333300000066000573a0000a86dd6c000000003c11fffe80000000000000021122fffe33\
                        4455ff02000000000000000000000000006607ed07ed003c2d0c012802000606000a\
                        0011223344550000006e00000bb800002710fe80000000000000000573fffea0000a\
                        0308636973636f000000";

/// MD5 vectors: captures from Cisco IOS images published as John the Ripper `hsrp` format test
/// vectors (src/hsrp_fmt_plug.c): payload with the digest zeroed, digest, key string.
const MD5_VECTORS: [(&str, &str, &str); 5] = [
    (
        "000004030a64010000000000000000000a000064041c010000000a0000140000000000000000000000000000000000000000",
        "52e1db09d18d695b8fefb3730ff8d9d6",
        "password12345",
    ),
    (
        "000004030a5a01000000000000000000ac102801041c01000000ac1028140000000000000000000000000000000000000000",
        "f15dfa631a0679e0801f8e6b0c0c17ac",
        "openwall",
    ),
    (
        "000010030a64010000000000000000000a000064041c010000000a0000140000000000000000000000000000000000000000",
        "f02fc41b1b516e2d1261d8800d39ccea",
        "openwall12345",
    ),
    (
        "0128020006040001aabbcc000a000000006400000bb8000027100a000064000000000000000000000000\
         041c010000000a00000a0000000000000000000000000000000000000000",
        "642fedafe1f374bd2fdd8f1ba81d87a2",
        "password",
    ),
    (
        "0128020006040001aabbcc001400000000c800000bb8000027100a000064000000000000000000000000\
         041c010000000a0000140000000000000000000000000000000000000000",
        "0481257f0fe583b275f03a48e88de72f",
        "password12345",
    ),
];

fn v1_hello_repr() -> HsrpV1Repr {
    HsrpV1Repr {
        op_code: HsrpOpCode::Hello,
        state: HsrpState::Active,
        hellotime: 3,
        holdtime: 10,
        priority: 110,
        group: 10,
        auth: HsrpAuth::Text(AuthText::cisco()),
        virtual_ip: Ipv4Addr::new(10, 10, 10, 1),
    }
}

fn v2_hello_repr() -> HsrpV2Repr {
    HsrpV2Repr {
        group_state: HsrpV2GroupState {
            op_code: HsrpOpCode::Hello,
            state: HsrpState::Active,
            group: 10,
            identifier: Mac([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            priority: 110,
            hellotime_ms: 3000,
            holdtime_ms: 10000,
            virtual_ip: IpAddr::V4(Ipv4Addr::new(10, 10, 10, 1)),
        },
        interface_state: None,
        auth: HsrpAuth::Text(AuthText::cisco()),
    }
}

fn v6_hello_repr() -> HsrpV2Repr {
    let mut r = v2_hello_repr();
    r.group_state.virtual_ip = IpAddr::V6("fe80::5:73ff:fea0:a".parse().unwrap());
    r
}

#[test]
fn vector_v1_hello() {
    let bytes = hex(V1_HELLO);
    let view = HsrpV1Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.version(), 0);
    assert_eq!(view.op_code(), 0);
    assert_eq!(view.state(), 16);
    assert_eq!(view.hellotime(), 3);
    assert_eq!(view.holdtime(), 10);
    assert_eq!(view.priority(), 110);
    assert_eq!(view.group(), 10);
    assert_eq!(&view.auth_data(), b"cisco\0\0\0");
    assert_eq!(view.virtual_ip(), Ipv4Addr::new(10, 10, 10, 1));
    assert!(view.md5_tlv().is_none());
    let p = HsrpPacket::parse(&bytes).unwrap();
    assert_eq!(p, HsrpPacket::V1(v1_hello_repr()));
    assert_eq!(p.to_bytes().unwrap(), bytes);
    assert_eq!(HsrpPacket::V1(v1_hello_repr()).to_bytes().unwrap(), bytes);
}

#[test]
fn vector_v2_hello() {
    let bytes = hex(V2_HELLO);
    assert_eq!(bytes.len(), 52);
    let p = HsrpPacket::parse(&bytes).unwrap();
    assert_eq!(p, HsrpPacket::V2(v2_hello_repr()));
    assert_eq!(p.to_bytes().unwrap(), bytes);
    let tlvs: Vec<_> = HsrpV2Tlvs::new(&bytes).map(|t| t.unwrap()).collect();
    assert_eq!(tlvs.len(), 2);
    assert_eq!(
        (tlvs[0].tlv_type, tlvs[0].value.len(), tlvs[0].offset),
        (1, 40, 0)
    );
    assert_eq!(
        (tlvs[1].tlv_type, tlvs[1].value.len(), tlvs[1].offset),
        (3, 8, 42)
    );
}

#[test]
fn frames_v1_v2_v6_byte_exact() {
    let vmac_v1 = virtual_mac_v1(10);
    let f = build_hsrp_frame(
        &HsrpPacket::V1(v1_hello_repr()),
        vmac_v1,
        IpAddr::V4(Ipv4Addr::new(10, 10, 10, 2)),
        None,
    )
    .unwrap();
    assert_eq!(f, hex(V1_FRAME));
    let f = build_hsrp_frame(
        &HsrpPacket::V2(v2_hello_repr()),
        virtual_mac_v2(10).unwrap(),
        IpAddr::V4(Ipv4Addr::new(10, 10, 10, 2)),
        None,
    )
    .unwrap();
    assert_eq!(f, hex(V2_FRAME));
    let src: Ipv6Addr = "fe80::211:22ff:fe33:4455".parse().unwrap();
    let p6 = HsrpPacket::V2(v6_hello_repr());
    assert_eq!(hsrp_frame_len(&p6, IpAddr::V6(src)), hex(V6_FRAME).len());
    let f = build_hsrp_frame(&p6, virtual_mac_ipv6(10).unwrap(), IpAddr::V6(src), None).unwrap();
    assert_eq!(f, hex(V6_FRAME));

    // And parsed back.
    for (frame, transport, dst_mac, ttl) in [
        (hex(V1_FRAME), HsrpTransport::V1, HSRP_V1_MCAST_MAC, 1),
        (hex(V2_FRAME), HsrpTransport::V2Ipv4, HSRP_V2_MCAST_MAC, 1),
        (
            hex(V6_FRAME),
            HsrpTransport::V2Ipv6,
            HSRP_IPV6_MCAST_MAC,
            255,
        ),
    ] {
        let parsed = parse_hsrp_frame(&frame).unwrap();
        assert_eq!(parsed.transport(), Some(transport));
        assert_eq!(parsed.dst_mac, dst_mac);
        assert_eq!(parsed.ttl, ttl);
        assert_eq!(parsed.dst_ip, transport.dst_ip());
        assert_eq!(parsed.vlan, None);
        let payload = parsed.payload(&frame);
        assert_eq!(HsrpPacket::parse(payload).unwrap(), parsed.packet);
    }
}

#[test]
fn md5_cisco_captures() {
    for (i, (zeroed, digest, key)) in MD5_VECTORS.iter().enumerate() {
        let zeroed = hex(zeroed);
        let digest = hex(digest);
        let key = HsrpMd5Key::new(key.as_bytes()).unwrap();
        assert_eq!(
            md5_digest(&zeroed, &key).unwrap().to_vec(),
            digest,
            "vector {i}"
        );
        // The packet as it was on the wire (digest filled in).
        let mut wire = zeroed.clone();
        let n = wire.len();
        wire[n - 16..].copy_from_slice(&digest);
        verify_md5(&wire, &key).unwrap();
        let p = HsrpPacket::parse(&wire).unwrap();
        p.authenticate(&wire, &HsrpAuthConfig::Md5(key.clone()))
            .unwrap();
        // Byte-exact re-emit, and signing the zeroed emit gives the capture back.
        assert_eq!(p.to_bytes().unwrap(), wire, "vector {i}");
        let mut signed = zeroed.clone();
        sign_md5(&mut signed, &key).unwrap();
        assert_eq!(signed, wire);
        // A wrong key or a flipped bit fails, with the typed error.
        let wrong = HsrpMd5Key::new(b"cisco").unwrap();
        assert_eq!(
            verify_md5(&wire, &wrong),
            Err(ControlError::HsrpAuthFailed {
                reason: "MD5 digest mismatch"
            })
        );
        let mut flipped = wire.clone();
        flipped[5] ^= 1;
        assert!(verify_md5(&flipped, &key).is_err());
        assert!(
            p.authenticate(&wire, &HsrpAuthConfig::Text(AuthText::cisco()))
                .is_err()
        );
    }
    // Field-level check of the first v1 and the first v2 capture.
    let mut wire = hex(MD5_VECTORS[0].0);
    wire[34..].copy_from_slice(&hex(MD5_VECTORS[0].1));
    match HsrpPacket::parse(&wire).unwrap() {
        HsrpPacket::V1(r) => {
            assert_eq!(r.state, HsrpState::Speak);
            assert_eq!(r.priority, 100);
            assert_eq!(r.group, 1);
            assert_eq!(r.virtual_ip, Ipv4Addr::new(10, 0, 0, 100));
            let HsrpAuth::Md5(m) = r.auth else {
                panic!("{:?}", r.auth)
            };
            assert_eq!(m.algorithm, 1);
            assert_eq!(m.sender_ip, Ipv4Addr::new(10, 0, 0, 20));
            assert_eq!(m.key_id, 0);
        }
        other => panic!("{other:?}"),
    }
    let wire = hex(MD5_VECTORS[3].0);
    match HsrpPacket::parse(&wire).unwrap() {
        HsrpPacket::V2(r) => {
            let g = r.group_state;
            assert_eq!(g.state, HsrpState::Active);
            assert_eq!(g.group, 1);
            assert_eq!(g.identifier, Mac([0xaa, 0xbb, 0xcc, 0x00, 0x0a, 0x00]));
            assert_eq!(g.priority, 100);
            assert_eq!(g.virtual_ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)));
            assert!(
                matches!(r.auth, HsrpAuth::Md5(m) if m.sender_ip == Ipv4Addr::new(10, 0, 0, 10))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn md5_frame_is_signed_before_the_udp_checksum() {
    let key = HsrpMd5Key::new(b"s3cret-key").unwrap();
    let mut r = v2_hello_repr();
    r.auth = HsrpAuth::Md5(HsrpMd5Auth::unsigned(Ipv4Addr::new(10, 10, 10, 2), 7));
    let p = HsrpPacket::V2(r);
    let f = build_hsrp_frame(
        &p,
        Mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]),
        IpAddr::V4(Ipv4Addr::new(10, 10, 10, 2)),
        Some(&key),
    )
    .unwrap();
    let parsed = parse_hsrp_frame(&f).unwrap(); // UDP checksum verified here
    let payload = parsed.payload(&f);
    verify_md5(payload, &key).unwrap();
    parsed
        .packet
        .authenticate(payload, &HsrpAuthConfig::Md5(key))
        .unwrap();
    // v1 with MD5: text field zero, 50 octets.
    let mut r1 = v1_hello_repr();
    r1.auth = HsrpAuth::Md5(HsrpMd5Auth::unsigned(Ipv4Addr::new(10, 10, 10, 2), 0));
    let b = HsrpPacket::V1(r1).to_bytes().unwrap();
    assert_eq!(b.len(), 50);
    assert_eq!(&b[8..16], &[0u8; 8]);
    assert_eq!(&b[20..22], &[4, 28]);
}

#[test]
fn text_authentication_rules() {
    let v1 = hex(V1_HELLO);
    let p = HsrpPacket::parse(&v1).unwrap();
    p.authenticate(&v1, &HsrpAuthConfig::default()).unwrap();
    let other = HsrpAuthConfig::Text(AuthText::new(b"s3cret").unwrap());
    assert_eq!(
        p.authenticate(&v1, &other),
        Err(ControlError::HsrpAuthFailed {
            reason: "text mismatch"
        })
    );
    assert!(
        p.authenticate(&v1, &HsrpAuthConfig::Md5(HsrpMd5Key::new(b"k").unwrap()))
            .is_err()
    );
    // v2 without an authentication TLV: accepted for the default text only.
    let mut r = v2_hello_repr();
    r.auth = HsrpAuth::None;
    let bytes = HsrpPacket::V2(r).to_bytes().unwrap();
    assert_eq!(bytes.len(), 42);
    let p = HsrpPacket::parse(&bytes).unwrap();
    p.authenticate(&bytes, &HsrpAuthConfig::default()).unwrap();
    assert!(p.authenticate(&bytes, &other).is_err());
    // Text longer than 8 octets.
    assert_eq!(
        AuthText::new(b"123456789"),
        Err(ControlError::TooLarge {
            what: "HSRP authentication text",
            limit: 8,
            actual: 9
        })
    );
    assert!(HsrpMd5Key::new(b"").is_err());
    assert!(HsrpMd5Key::new(&[b'k'; 65]).is_err());
    assert!(HsrpMd5Key::new(&[b'k'; 64]).is_ok());
}

#[test]
fn secrets_are_redacted_in_debug() {
    let text = AuthText::new(b"tops3crt").unwrap();
    let key = HsrpMd5Key::new(b"md5-key-string").unwrap();
    let mut r = v1_hello_repr();
    r.auth = HsrpAuth::Text(text);
    let shown = [
        format!("{text:?}"),
        format!("{key:?}"),
        format!("{:?}", HsrpAuthConfig::Md5(key.clone())),
        format!("{:?}", HsrpAuthConfig::Text(text)),
        format!("{:?}", HsrpPacket::V1(r)),
        format!("{:?}", HsrpPacket::parse(&hex(V1_HELLO)).unwrap()),
    ];
    for s in &shown {
        assert!(s.contains("<redacted>"), "{s}");
        for secret in ["tops3crt", "md5-key-string", "cisco", "116, 111, 112"] {
            assert!(!s.contains(secret), "{s} shows {secret}");
        }
    }
}

#[test]
fn states_and_op_codes() {
    // v2 state codes: send 6 for Active; accept 6 and 16 (protocols.md §12 #1).
    let mut b = hex(V2_HELLO);
    b[4] = 16;
    let p = HsrpPacket::parse(&b).unwrap();
    assert!(matches!(&p, HsrpPacket::V2(r) if r.group_state.state == HsrpState::Active));
    assert_eq!(p.to_bytes().unwrap()[4], 6);
    b[4] = 8;
    assert!(matches!(HsrpPacket::parse(&b).unwrap(),
        HsrpPacket::V2(r) if r.group_state.state == HsrpState::Standby));
    for (code, state) in [
        (0, HsrpState::Disabled),
        (1, HsrpState::Initial),
        (2, HsrpState::Learn),
        (3, HsrpState::Listen),
        (4, HsrpState::Speak),
        (5, HsrpState::Standby),
        (6, HsrpState::Active),
    ] {
        b[4] = code;
        assert!(matches!(HsrpPacket::parse(&b).unwrap(),
            HsrpPacket::V2(r) if r.group_state.state == state));
    }
    b[4] = 7;
    assert_eq!(
        HsrpPacket::parse(&b),
        Err(ControlError::BadValue {
            what: "HSRP v2 state",
            value: 7
        })
    );
    // v1 states and op codes (Coup, Resign).
    for (code, state) in [
        (0, HsrpState::Initial),
        (1, HsrpState::Learn),
        (2, HsrpState::Listen),
        (4, HsrpState::Speak),
        (8, HsrpState::Standby),
        (16, HsrpState::Active),
    ] {
        let mut b = hex(V1_HELLO);
        b[2] = code;
        let p = HsrpPacket::parse(&b).unwrap();
        assert!(matches!(p, HsrpPacket::V1(r) if r.state == state));
        assert_eq!(p.to_bytes().unwrap(), b);
    }
    for (code, op) in [(1, HsrpOpCode::Coup), (2, HsrpOpCode::Resign)] {
        let mut b = hex(V1_HELLO);
        b[1] = code;
        assert!(matches!(HsrpPacket::parse(&b).unwrap(), HsrpPacket::V1(r) if r.op_code == op));
        let mut b = hex(V2_HELLO);
        b[3] = code;
        assert!(matches!(HsrpPacket::parse(&b).unwrap(),
            HsrpPacket::V2(r) if r.group_state.op_code == op));
    }
    // v1 Disabled cannot be sent.
    let mut r = v1_hello_repr();
    r.state = HsrpState::Disabled;
    assert!(matches!(
        HsrpPacket::V1(r).to_bytes(),
        Err(ControlError::BadValue { .. })
    ));
}

#[test]
fn ignored_fields_and_advertise() {
    // v1 reserved octet and trailing octets (not an MD5 TLV) are ignored.
    let mut b = hex(V1_HELLO);
    b[7] = 0xff;
    b.extend_from_slice(&[9, 9, 9]);
    assert_eq!(
        HsrpPacket::parse(&b).unwrap(),
        HsrpPacket::V1(v1_hello_repr())
    );
    // 50 octets that are not an MD5 TLV: text auth kept.
    let mut b = hex(V1_HELLO);
    b.extend_from_slice(&[5u8; 30]);
    assert_eq!(
        HsrpPacket::parse(&b).unwrap(),
        HsrpPacket::V1(v1_hello_repr())
    );
    // v1 op code 3 (Advertise, §7.3): recognised, ignored, never sent.
    let adv = hex("0003 0001 000a 0300 0001 0000 00000000 00000000");
    let p = HsrpPacket::parse(&adv).unwrap();
    assert_eq!(p, HsrpPacket::V1Advertise);
    assert!(p.authenticate(&adv, &HsrpAuthConfig::default()).is_err());
    assert_eq!(
        p.to_bytes(),
        Err(ControlError::BadValue {
            what: "HSRP v1 Advertise (op code 3) is never sent",
            value: 3
        })
    );
    // v2: unknown TLV skipped, trailing single octet ignored, the 12 octets after an IPv4 VIP
    // ignored.
    let mut b = hex(V2_HELLO);
    b[30] = 0xee;
    b.extend_from_slice(&hex("630300aabb"));
    b.push(0);
    assert_eq!(
        HsrpPacket::parse(&b).unwrap(),
        HsrpPacket::V2(v2_hello_repr())
    );
    // Interface State TLV with the group state, and alone.
    let mut r = v2_hello_repr();
    r.interface_state = Some(HsrpInterfaceState {
        active_groups: 3,
        passive_groups: 1,
    });
    let bytes = HsrpPacket::V2(r).to_bytes().unwrap();
    assert_eq!(&bytes[42..48], &hex("0204 0003 0001")[..]);
    assert_eq!(HsrpPacket::parse(&bytes).unwrap(), HsrpPacket::V2(r));
    let alone = hex("0204 0002 0000 0308 636973636f000000");
    assert_eq!(
        HsrpPacket::parse(&alone).unwrap(),
        HsrpPacket::V2InterfaceState {
            state: HsrpInterfaceState {
                active_groups: 2,
                passive_groups: 0
            },
            auth: HsrpAuth::Text(AuthText::cisco())
        }
    );
}

#[test]
fn negative_cases_have_typed_errors() {
    use ControlError::*;
    assert!(matches!(HsrpPacket::parse(&[]), Err(Truncated { .. })));
    let b = hex(V1_HELLO);
    assert_eq!(
        HsrpPacket::parse(&b[..19]),
        Err(Truncated {
            what: "HSRP v1 packet",
            needed: 20,
            available: 19
        })
    );
    let mut x = b.clone();
    x[1] = 4;
    assert_eq!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v1 op code",
            value: 4
        })
    );
    let mut x = b.clone();
    x[2] = 3;
    assert_eq!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v1 state",
            value: 3
        })
    );
    assert!(matches!(
        HsrpV1Repr::parse_bytes(&hex(V2_HELLO)),
        Err(BadValue {
            what: "HSRP v1 version",
            value: 1
        })
    ));

    let v2 = hex(V2_HELLO);
    // Group State TLV with a wrong length.
    let mut x = v2.clone();
    x[1] = 39;
    assert!(matches!(
        HsrpPacket::parse(&x),
        Err(BadLength { declared: 39, .. })
    ));
    // TLV running past the end.
    assert!(matches!(
        HsrpPacket::parse(&v2[..50]),
        Err(Truncated {
            what: "HSRP v2 TLV",
            ..
        })
    ));
    // Version, op code, IP version, group.
    let mut x = v2.clone();
    x[2] = 3;
    assert!(matches!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v2 Group State version",
            value: 3
        })
    ));
    let mut x = v2.clone();
    x[3] = 3;
    assert!(matches!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v2 op code",
            value: 3
        })
    ));
    let mut x = v2.clone();
    x[5] = 5;
    assert_eq!(
        HsrpPacket::parse(&x),
        Err(UnsupportedAfi {
            what: "HSRP v2 IP version",
            afi: 5
        })
    );
    let mut x = v2.clone();
    x[6..8].copy_from_slice(&4096u16.to_be_bytes());
    assert_eq!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v2 group (0-4095)",
            value: 4096
        })
    );
    // Duplicate TLVs.
    let mut x = v2[..42].to_vec();
    x.extend_from_slice(&v2[..42]);
    assert!(matches!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v2 duplicate Group State TLV",
            ..
        })
    ));
    let mut x = v2.clone();
    x.extend_from_slice(&v2[42..]);
    assert!(matches!(
        HsrpPacket::parse(&x),
        Err(BadValue {
            what: "HSRP v2 second authentication TLV",
            ..
        })
    ));
    // Text / MD5 / interface TLVs with wrong lengths.
    for bad in ["0307 63697363 6f0000", "041b", "0203 000000"] {
        let mut x = v2[..42].to_vec();
        let mut t = hex(bad);
        let n = usize::from(t[1]);
        t.resize(2 + n, 0);
        x.extend_from_slice(&t);
        assert!(
            matches!(HsrpPacket::parse(&x), Err(BadLength { .. })),
            "{bad}"
        );
    }
    // Neither Group State nor Interface State.
    assert!(matches!(
        HsrpPacket::parse(&hex("0308 636973636f000000")),
        Err(BadValue { .. })
    ));
    assert!(matches!(
        HsrpV2Repr::parse_bytes(&hex("0204 0002 0000")),
        Err(BadValue { .. })
    ));
    // Emit errors: group > 4095, buffer too small.
    let mut r = v2_hello_repr();
    r.group_state.group = 5000;
    assert!(matches!(HsrpPacket::V2(r).to_bytes(), Err(BadValue { .. })));
    let mut small = [0u8; 51];
    assert!(matches!(
        HsrpPacket::V2(v2_hello_repr()).emit(&mut small),
        Err(TooLarge { .. })
    ));
    let mut small = [0u8; 19];
    assert!(matches!(
        HsrpPacket::V1(v1_hello_repr()).emit(&mut small),
        Err(TooLarge { .. })
    ));
    let mut r = v1_hello_repr();
    r.auth = HsrpAuth::None;
    assert!(matches!(HsrpPacket::V1(r).to_bytes(), Err(BadValue { .. })));
    // MD5 helpers on a packet without MD5.
    let key = HsrpMd5Key::new(b"k").unwrap();
    assert!(matches!(verify_md5(&v2, &key), Err(HsrpAuthFailed { .. })));
    assert!(matches!(verify_md5(&[], &key), Err(Truncated { .. })));
}

#[test]
fn frame_negative_cases_have_typed_errors() {
    use ControlError::*;
    let f1 = hex(V1_FRAME);
    assert!(matches!(parse_hsrp_frame(&f1[..13]), Err(Truncated { .. })));
    let mut x = f1.clone();
    x[12] = 0x88;
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadValue {
            what: "Ethertype (not IPv4 / IPv6)",
            ..
        })
    ));
    let mut x = f1.clone();
    x[24] ^= 0xff; // IPv4 header checksum
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadChecksum {
            what: "IPv4 header",
            expected: 0xc4ef,
            ..
        })
    ));
    let mut x = f1.clone();
    x[41] ^= 0xff; // UDP checksum
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadChecksum {
            what: "UDP",
            expected: 0x7ddc,
            ..
        })
    ));
    let mut x = f1.clone();
    x[40..42].copy_from_slice(&[0, 0]); // UDP checksum 0 over IPv4: accepted
    assert!(parse_hsrp_frame(&x).is_ok());
    let mut x = f1.clone();
    x[36..38].copy_from_slice(&1986u16.to_be_bytes());
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadValue { value: 1986, .. })
    ));
    let mut x = f1.clone();
    x[38..40].copy_from_slice(&100u16.to_be_bytes());
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadLength { declared: 100, .. })
    ));
    assert!(matches!(
        parse_hsrp_frame(&f1[..f1.len() - 1]),
        Err(BadLength { .. })
    ));
    let f6 = hex(V6_FRAME);
    let mut x = f6.clone();
    let n = x.len();
    x[n - 54..n - 52].copy_from_slice(&[0, 0]); // UDP checksum 0 over IPv6
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadValue {
            what: "UDP checksum 0 over IPv6",
            ..
        })
    ));
    let mut x = f6.clone();
    x[20] = 6;
    assert!(matches!(
        parse_hsrp_frame(&x),
        Err(BadValue {
            what: "IPv6 next header (not UDP)",
            ..
        })
    ));
    // Building: family and link-local rules.
    let p6 = HsrpPacket::V2(v6_hello_repr());
    let mac = Mac([0, 1, 2, 3, 4, 5]);
    assert!(matches!(
        build_hsrp_frame(&p6, mac, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), None),
        Err(UnsupportedAfi { .. })
    ));
    assert!(matches!(
        build_hsrp_frame(&p6, mac, "2001:db8::1".parse().unwrap(), None),
        Err(BadValue { .. })
    ));
    assert!(matches!(
        build_hsrp_frame(
            &HsrpPacket::V1(v1_hello_repr()),
            mac,
            "fe80::1".parse().unwrap(),
            None
        ),
        Err(UnsupportedAfi { .. })
    ));
    let mut small = vec![0u8; 61];
    assert!(matches!(
        emit_hsrp_frame(
            &HsrpPacket::V1(v1_hello_repr()),
            mac,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            None,
            &mut small
        ),
        Err(TooLarge { .. })
    ));
    // A tagged frame parses, with its VLAN.
    let mut tagged = f1[..12].to_vec();
    tagged.extend_from_slice(&hex("8100 000a"));
    tagged.extend_from_slice(&f1[12..]);
    assert_eq!(parse_hsrp_frame(&tagged).unwrap().vlan, Some(10));
}

#[test]
fn virtual_macs_and_addresses() {
    assert_eq!(virtual_mac_v1(10), Mac([0, 0, 0x0c, 0x07, 0xac, 0x0a]));
    assert_eq!(
        virtual_mac_v2(10).unwrap(),
        Mac([0, 0, 0x0c, 0x9f, 0xf0, 0x0a])
    );
    assert_eq!(
        virtual_mac_v2(4095).unwrap(),
        Mac([0, 0, 0x0c, 0x9f, 0xff, 0xff])
    );
    assert_eq!(
        virtual_mac_ipv6(10).unwrap(),
        Mac([0, 0x05, 0x73, 0xa0, 0x00, 0x0a])
    );
    assert_eq!(
        virtual_link_local_ipv6(0).unwrap(),
        "fe80::5:73ff:fea0:0".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        virtual_link_local_ipv6(1).unwrap(),
        "fe80::5:73ff:fea0:1".parse::<Ipv6Addr>().unwrap()
    );
    for f in [virtual_mac_v2, virtual_mac_ipv6] {
        assert!(matches!(
            f(4096),
            Err(ControlError::BadValue { value: 4096, .. })
        ));
    }
    assert!(virtual_link_local_ipv6(4096).is_err());
    let vmac = virtual_mac_v1(10);
    let ifmac = Mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(hello_source_mac(HsrpState::Active, vmac, ifmac), vmac);
    for s in [HsrpState::Standby, HsrpState::Speak, HsrpState::Listen] {
        assert_eq!(hello_source_mac(s, vmac, ifmac), ifmac);
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn arb_op() -> impl Strategy<Value = HsrpOpCode> {
    prop_oneof![
        Just(HsrpOpCode::Hello),
        Just(HsrpOpCode::Coup),
        Just(HsrpOpCode::Resign)
    ]
}

fn arb_state(v1: bool) -> impl Strategy<Value = HsrpState> {
    let states = if v1 {
        vec![
            HsrpState::Initial,
            HsrpState::Learn,
            HsrpState::Listen,
            HsrpState::Speak,
            HsrpState::Standby,
            HsrpState::Active,
        ]
    } else {
        vec![
            HsrpState::Disabled,
            HsrpState::Initial,
            HsrpState::Learn,
            HsrpState::Listen,
            HsrpState::Speak,
            HsrpState::Standby,
            HsrpState::Active,
        ]
    };
    prop::sample::select(states)
}

fn arb_md5() -> impl Strategy<Value = HsrpMd5Auth> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<[u8; 4]>(),
        any::<u32>(),
        any::<[u8; 16]>(),
    )
        .prop_map(|(algorithm, flags, ip, key_id, digest)| HsrpMd5Auth {
            algorithm,
            flags,
            sender_ip: Ipv4Addr::from(ip),
            key_id,
            digest,
        })
}

fn arb_auth(allow_none: bool) -> impl Strategy<Value = HsrpAuth> {
    let text = any::<[u8; 8]>().prop_map(|t| HsrpAuth::Text(AuthText::from_wire(t)));
    let md5 = arb_md5().prop_map(HsrpAuth::Md5);
    if allow_none {
        prop_oneof![Just(HsrpAuth::None), text, md5].boxed()
    } else {
        prop_oneof![text, md5].boxed()
    }
}

fn arb_v1() -> impl Strategy<Value = HsrpV1Repr> {
    (
        arb_op(),
        arb_state(true),
        any::<[u8; 4]>(),
        arb_auth(false),
        any::<[u8; 4]>(),
    )
        .prop_map(|(op_code, state, [h, d, p, g], auth, vip)| HsrpV1Repr {
            op_code,
            state,
            hellotime: h,
            holdtime: d,
            priority: p,
            group: g,
            auth,
            virtual_ip: Ipv4Addr::from(vip),
        })
}

fn arb_v2() -> impl Strategy<Value = HsrpV2Repr> {
    let vip = prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ];
    (
        (arb_op(), arb_state(false), 0u16..=4095, any::<[u8; 6]>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), vip),
        prop::option::of(any::<(u16, u16)>()),
        arb_auth(true),
    )
        .prop_map(
            |((op_code, state, group, mac), (priority, hello, hold, virtual_ip), ifs, auth)| {
                HsrpV2Repr {
                    group_state: HsrpV2GroupState {
                        op_code,
                        state,
                        group,
                        identifier: Mac(mac),
                        priority,
                        hellotime_ms: hello,
                        holdtime_ms: hold,
                        virtual_ip,
                    },
                    interface_state: ifs.map(|(a, p)| HsrpInterfaceState {
                        active_groups: a,
                        passive_groups: p,
                    }),
                    auth,
                }
            },
        )
}

fn arb_packet() -> impl Strategy<Value = HsrpPacket> {
    prop_oneof![
        arb_v1().prop_map(HsrpPacket::V1),
        arb_v2().prop_map(HsrpPacket::V2),
        (any::<(u16, u16)>(), arb_auth(true)).prop_map(|((a, p), auth)| {
            HsrpPacket::V2InterfaceState {
                state: HsrpInterfaceState {
                    active_groups: a,
                    passive_groups: p,
                },
                auth,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn packet_round_trip(p in arb_packet()) {
        let bytes = p.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), p.buffer_len());
        prop_assert_eq!(HsrpPacket::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn v1_round_trip(r in arb_v1()) {
        let p = HsrpPacket::V1(r);
        prop_assert_eq!(HsrpV1Repr::parse_bytes(&p.to_bytes().unwrap()).unwrap(), r);
    }

    #[test]
    fn v2_and_ipv6_round_trip(r in arb_v2()) {
        let p = HsrpPacket::V2(r);
        prop_assert_eq!(HsrpV2Repr::parse_bytes(&p.to_bytes().unwrap()).unwrap(), r);
    }

    #[test]
    fn frame_round_trip(p in arb_packet(), mac in any::<[u8; 6]>(), v4 in any::<[u8; 4]>(), ll in any::<u64>()) {
        let src = match HsrpTransport::for_packet(&p, IpAddr::V4(Ipv4Addr::from(v4))) {
            HsrpTransport::V2Ipv6 => IpAddr::V6(Ipv6Addr::from((0xfe80u128 << 112) | u128::from(ll))),
            _ => IpAddr::V4(Ipv4Addr::from(v4)),
        };
        let key = HsrpMd5Key::new(b"prop-key").unwrap();
        let f = build_hsrp_frame(&p, Mac(mac), src, Some(&key)).unwrap();
        let parsed = parse_hsrp_frame(&f).unwrap();
        prop_assert_eq!(parsed.src_ip, src);
        prop_assert_eq!(parsed.src_mac, Mac(mac));
        let payload = parsed.payload(&f);
        match p.auth() {
            HsrpAuth::Md5(_) => {
                verify_md5(payload, &key).unwrap();
                // Equal apart from the digest that was signed in.
                let mut q = parsed.packet.clone();
                match (&mut q, &p) {
                    (HsrpPacket::V1(a), HsrpPacket::V1(b)) => a.auth = b.auth,
                    (HsrpPacket::V2(a), HsrpPacket::V2(b)) => a.auth = b.auth,
                    (HsrpPacket::V2InterfaceState { auth: a, .. }, HsrpPacket::V2InterfaceState { auth: b, .. }) => *a = *b,
                    _ => prop_assert!(false, "kind changed"),
                }
                prop_assert_eq!(q, p);
            }
            _ => prop_assert_eq!(parsed.packet, p),
        }
    }

    #[test]
    fn parse_never_panics_and_reemits_stably(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(p) = HsrpPacket::parse(&bytes)
            && let Ok(again) = p.to_bytes()
        {
            prop_assert_eq!(HsrpPacket::parse(&again).unwrap(), p);
        }
        let _ = parse_hsrp_frame(&bytes);
        let key = HsrpMd5Key::new(b"k").unwrap();
        let _ = verify_md5(&bytes, &key);
    }

    #[test]
    fn mutated_vectors_never_panic(pos in 0usize..52, val in any::<u8>(), which in 0usize..3) {
        let mut b = match which { 0 => hex(V1_HELLO), 1 => hex(V2_HELLO), _ => hex(MD5_VECTORS[3].0) };
        let pos = pos % b.len();
        b[pos] = val;
        if let Ok(p) = HsrpPacket::parse(&b)
            && let Ok(again) = p.to_bytes()
        {
            prop_assert_eq!(HsrpPacket::parse(&again).unwrap(), p);
        }
    }
}
