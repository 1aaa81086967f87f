//! LISP data-plane header and encap/decap: protocols.md §2.2 worked header, the §11.3 vector
//! `data_header` and the §11.3 pcap data packet byte for byte, reserved bits ignored, every
//! negative case with its typed error, property round-trips.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use roamer_forwarding::ForwardingError;
use roamer_forwarding::wire::checksum;
use roamer_forwarding::wire::lisp_data::{
    EcnEncapMode, EncapParams, GpeNextProtocol, HEADER_LEN, InnerKind, LispDataHeader,
    LispDataRepr, NonceField, OVERHEAD_IPV4, OVERHEAD_IPV6, SOURCE_PORT_BASE, apply_outer_to_inner,
    decapsulate, decapsulate_in_place, ecn_decapsulate, encapsulate_in_place, flow_hash,
    flow_source_port, udp_checksum_ok,
};
use roamer_hal::Iid;
use roamer_test_support::hex;

fn iid(v: u32) -> Option<Iid> {
    Some(Iid::new(v).unwrap())
}

/// §11.3 `data_header` (N+L+I, nonce 0x5A3C91, IID 101, LSB 0x01) and the §2.2 worked header.
const DATA_HEADER: &str = "c85a3c9100006501";

/// §11.3 `--pcap` data packet: IPv4 10.2.2.2 → 10.3.3.3, TTL 63, scapy defaults (ident 1, no DF),
/// UDP 52361 → 4341 with scapy's checksum, the `data_header` vector, then the inner ICMP echo
/// `ipv4("172.16.2.20", "172.16.1.10", 1, 0800f7ff00000000, ttl=63)`.
const PCAP_OUTER: &str = "45000040000100003f1162a30a0202020a030303cc8910f5002c9f20\
                          c85a3c9100006501\
                          4500001c000040003f01e0a2ac100214ac10010a0800f7ff00000000";
const PCAP_INNER: &str = "4500001c000040003f01e0a2ac100214ac10010a0800f7ff00000000";

fn worked_repr() -> LispDataRepr {
    LispDataRepr {
        nonce: NonceField::Nonce {
            nonce: 0x5a3c91,
            echo_request: false,
        },
        instance_id: iid(101),
        lsb: Some(0x01),
        key_id: 0,
        next_protocol: None,
    }
}

#[test]
fn vector_data_header_emit_and_parse() {
    let bytes = hex(DATA_HEADER);
    assert_eq!(worked_repr().to_bytes().unwrap().to_vec(), bytes);
    let view = LispDataHeader::new_checked(&bytes[..]).unwrap();
    assert!(view.nonce_present() && view.lsb_enabled() && view.instance_id_present());
    assert!(!view.echo_nonce_request() && !view.map_version_present());
    assert!(!view.next_protocol_present());
    assert_eq!(view.nonce(), 0x5a3c91);
    assert_eq!(view.instance_id(), 101);
    assert_eq!(view.lsb8(), 1);
    assert_eq!(view.key_id(), 0);
    assert_eq!(LispDataRepr::parse(&view), worked_repr());
}

#[test]
fn view_setters_build_the_vector() {
    let mut buf = [0u8; HEADER_LEN];
    let mut h = LispDataHeader::new_checked(&mut buf[..]).unwrap();
    h.set_flags(0xc8);
    h.set_nonce(0x5a3c91);
    h.set_instance_id(101);
    h.set_lsb8(1);
    assert_eq!(buf.to_vec(), hex(DATA_HEADER));
}

#[test]
fn vector_pcap_data_packet_decap() {
    let pkt = hex(PCAP_OUTER);
    let d = decapsulate(&pkt).unwrap();
    assert_eq!(d.header, worked_repr());
    assert_eq!(d.inner_kind, InnerKind::Ipv4);
    assert_eq!(d.inner(&pkt), &hex(PCAP_INNER)[..]);
    assert_eq!(d.outer.src, IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)));
    assert_eq!(d.outer.dst, IpAddr::V4(Ipv4Addr::new(10, 3, 3, 3)));
    assert_eq!(d.outer.ttl, 63);
    assert_eq!(d.outer.src_port, 52361);
    assert_eq!(d.outer.udp_checksum, 0x9f20);
    assert!(udp_checksum_ok(&pkt, &d));
    let mut bad = pkt.clone();
    bad[63] ^= 0x01; // corrupt the inner payload: the UDP checksum no longer verifies
    let d2 = decapsulate(&bad).unwrap();
    assert!(!udp_checksum_ok(&bad, &d2));
}

#[test]
fn vector_pcap_data_packet_encap() {
    let inner = hex(PCAP_INNER);
    let mut buf = vec![0u8; OVERHEAD_IPV4 + inner.len()];
    buf[OVERHEAD_IPV4..].copy_from_slice(&inner);
    let mut p = EncapParams::new(
        IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)),
        IpAddr::V4(Ipv4Addr::new(10, 3, 3, 3)),
        52361,
        worked_repr(),
    );
    p.ipv4_ident = 1;
    p.dont_fragment = false;
    let start = encapsulate_in_place(&mut buf, OVERHEAD_IPV4, inner.len(), &p).unwrap();
    assert_eq!(start, 0);
    let mut expected = hex(PCAP_OUTER);
    // The only difference from scapy: roamer sends UDP checksum 0 over IPv4 (RFC 9300 §5.3).
    expected[26] = 0;
    expected[27] = 0;
    assert_eq!(buf, expected);
}

#[test]
fn header_variants() {
    // N + E (echo-nonce request), no IID, L with 32-bit LSBs.
    let r = LispDataRepr {
        nonce: NonceField::Nonce {
            nonce: 0x123456,
            echo_request: true,
        },
        lsb: Some(0x8000_0003),
        ..Default::default()
    };
    assert_eq!(r.to_bytes().unwrap().to_vec(), hex("e0123456 80000003"));
    assert_eq!(
        LispDataRepr::parse_bytes(&hex("e0123456 80000003")).unwrap(),
        r
    );
    // V: source map-version 0xabc, destination 0x123.
    let r = LispDataRepr {
        nonce: NonceField::MapVersion {
            source: 0xabc,
            dest: 0x123,
        },
        ..Default::default()
    };
    assert_eq!(r.to_bytes().unwrap().to_vec(), hex("10abc123 00000000"));
    let v = LispDataHeader::new_checked(&hex("10abc123 00000000")[..])
        .map(|h| (h.source_map_version(), h.dest_map_version()))
        .unwrap();
    assert_eq!(v, (0xabc, 0x123));
    // I only, IID 0xffffff, no LSBs.
    let r = LispDataRepr {
        instance_id: iid(0xff_ffff),
        ..Default::default()
    };
    assert_eq!(r.to_bytes().unwrap().to_vec(), hex("08000000 ffffff00"));
    // LISP-GPE: P + I, next protocol Ethernet.
    let r = LispDataRepr {
        instance_id: iid(7),
        next_protocol: Some(GpeNextProtocol::ETHERNET),
        ..Default::default()
    };
    assert_eq!(r.to_bytes().unwrap().to_vec(), hex("0c000003 00000700"));
}

#[test]
fn reserved_and_meaningless_bits_are_ignored() {
    // N=0, V=0: octets 1-3 ignored.
    let r = LispDataRepr::parse_bytes(&hex("00ffffff 00000000")).unwrap();
    assert_eq!(r, LispDataRepr::default());
    // E without N: ignored.
    let r = LispDataRepr::parse_bytes(&hex("20abcdef 00000000")).unwrap();
    assert_eq!(r, LispDataRepr::default());
    // N and V both set: the field is a nonce.
    let r = LispDataRepr::parse_bytes(&hex("90abcdef 00000000")).unwrap();
    assert_eq!(
        r.nonce,
        NonceField::Nonce {
            nonce: 0xabcdef,
            echo_request: false
        }
    );
    // I=1, L=0: octet 7 ignored.
    let r = LispDataRepr::parse_bytes(&hex("08000000 000065ff")).unwrap();
    assert_eq!(r.instance_id, iid(101));
    assert_eq!(r.lsb, None);
    // P=1: N, E, V and octets 1-2 ignored (RFC 9305 §3).
    let r = LispDataRepr::parse_bytes(&hex("fcffff01 00006500")).unwrap();
    assert_eq!(r.nonce, NonceField::None);
    assert_eq!(r.next_protocol, Some(GpeNextProtocol::IPV4));
    assert_eq!(r.instance_id, iid(101));
    assert_eq!(r.lsb, Some(0));
    // A decapsulated packet with ignored bits still yields the inner packet.
    let mut pkt = hex(PCAP_OUTER);
    pkt[28] = 0x68; // L + E(without N) + I
    pkt[29] = 0xff;
    let d = decapsulate(&pkt).unwrap();
    assert_eq!(d.header.nonce, NonceField::None);
    assert_eq!(d.inner(&pkt), &hex(PCAP_INNER)[..]);
}

#[test]
fn emit_rejects_unsendable_reprs() {
    let cases: [(LispDataRepr, &str); 5] = [
        (
            LispDataRepr {
                nonce: NonceField::Nonce {
                    nonce: 0x100_0000,
                    echo_request: false,
                },
                ..Default::default()
            },
            "LISP nonce (24 bits)",
        ),
        (
            LispDataRepr {
                nonce: NonceField::MapVersion {
                    source: 0x1000,
                    dest: 0,
                },
                ..Default::default()
            },
            "LISP map-version (12 bits)",
        ),
        (
            LispDataRepr {
                instance_id: iid(1),
                lsb: Some(0x100),
                ..Default::default()
            },
            "LISP locator-status-bits with an instance-ID (8 bits)",
        ),
        (
            LispDataRepr {
                key_id: 4,
                ..Default::default()
            },
            "LISP key id (2 bits)",
        ),
        (
            LispDataRepr {
                nonce: NonceField::Nonce {
                    nonce: 1,
                    echo_request: false,
                },
                next_protocol: Some(GpeNextProtocol::IPV4),
                ..Default::default()
            },
            "LISP-GPE header with nonce or map-version (N/E/V must be 0 with P=1)",
        ),
    ];
    for (repr, what) in cases {
        match repr.to_bytes() {
            Err(ForwardingError::BadValue { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{repr:?}: {other:?}"),
        }
    }
    assert!(matches!(
        LispDataRepr::parse_bytes(&[0u8; 7]),
        Err(ForwardingError::Truncated {
            needed: 8,
            available: 7,
            ..
        })
    ));
    let mut short = [0u8; 4];
    assert!(matches!(
        worked_repr().emit_bytes(&mut short),
        Err(ForwardingError::Truncated { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Packet builders for the decap tests (independent of the code under test).

fn ipv4_packet(src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, tos: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap();
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, ttl, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = ipv4_csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv4_csum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop: u8, tc: u8, payload: &[u8]) -> Vec<u8> {
    let w0 = (6u32 << 28) | (u32::from(tc) << 20) | 0x12345;
    let mut h = w0.to_be_bytes().to_vec();
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.push(next);
    h.push(hop);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn icmp_inner() -> Vec<u8> {
    hex(PCAP_INNER)
}

fn inner_v6() -> Vec<u8> {
    ipv6_packet(
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
        59,
        64,
        0,
        b"",
    )
}

/// An IPv4/UDP 4341 packet around `lisp_and_inner`.
fn lisp_v4(lisp_and_inner: &[u8]) -> Vec<u8> {
    ipv4_packet(
        [10, 2, 2, 2],
        [10, 3, 3, 3],
        17,
        64,
        0,
        &udp(50000, 4341, lisp_and_inner),
    )
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

#[test]
fn gpe_decap_ipv4_ipv6_ethernet() {
    // P + I, next protocol 1 (IPv4).
    let pkt = lisp_v4(&cat(&hex("0c000001 00006500"), &icmp_inner()));
    let d = decapsulate(&pkt).unwrap();
    assert_eq!(d.inner_kind, InnerKind::Ipv4);
    assert_eq!(d.header.instance_id, iid(101));
    assert_eq!(d.inner(&pkt), &icmp_inner()[..]);
    // P, next protocol 2 (IPv6).
    let pkt = lisp_v4(&cat(&hex("04000002 00000000"), &inner_v6()));
    let d = decapsulate(&pkt).unwrap();
    assert_eq!(d.inner_kind, InnerKind::Ipv6);
    assert_eq!(d.inner(&pkt), &inner_v6()[..]);
    // P + I, next protocol 3 (Ethernet): the inner frame is returned unchanged.
    let eth = cat(&hex("00000c07ac0a 001122334455 0800"), &icmp_inner());
    let mut pkt = lisp_v4(&cat(&hex("0c000003 00000a00"), &eth));
    let d = decapsulate_in_place(&mut pkt).unwrap();
    assert_eq!(d.inner_kind, InnerKind::Ethernet);
    assert_eq!(d.inner(&pkt), &eth[..]);
    // P, next protocol 4 (NSH) is not supported.
    let pkt = lisp_v4(&cat(&hex("04000004 00000000"), &eth));
    assert_eq!(
        decapsulate(&pkt),
        Err(ForwardingError::BadValue {
            what: "LISP-GPE next protocol (supported: 1 IPv4, 2 IPv6, 3 Ethernet)",
            value: 4
        })
    );
}

#[test]
fn decap_negative_cases_have_typed_errors() {
    let good = hex(PCAP_OUTER);
    assert!(decapsulate(&good).is_ok());

    assert!(matches!(
        decapsulate(&[]),
        Err(ForwardingError::Truncated { .. })
    ));
    assert!(matches!(
        decapsulate(&good[..19]),
        Err(ForwardingError::Truncated { needed: 20, .. })
    ));
    // Version 5.
    let mut p = good.clone();
    p[0] = 0x55;
    assert_eq!(
        decapsulate(&p),
        Err(ForwardingError::BadValue {
            what: "outer IP version",
            value: 5
        })
    );
    // IHL 4.
    let mut p = good.clone();
    p[0] = 0x44;
    assert!(matches!(
        decapsulate(&p),
        Err(ForwardingError::BadValue { value: 4, .. })
    ));
    // Total length beyond the data.
    assert!(matches!(
        decapsulate(&good[..63]),
        Err(ForwardingError::BadLength {
            declared: 64,
            actual: 63,
            ..
        })
    ));
    // Header checksum.
    let mut p = good.clone();
    p[11] ^= 0xff;
    match decapsulate(&p) {
        Err(ForwardingError::BadChecksum {
            found, expected, ..
        }) => {
            assert_eq!(expected, 0x62a3);
            assert_eq!(found, 0x625c);
        }
        other => panic!("{other:?}"),
    }
    // Fragment (MF set; checksum fixed).
    let mut p = good.clone();
    p[6] = 0x20;
    refix_v4(&mut p);
    assert_eq!(
        decapsulate(&p),
        Err(ForwardingError::Fragmented {
            what: "outer IPv4 packet",
            offset: 0,
            more_fragments: true
        })
    );
    // Not UDP.
    let mut p = good.clone();
    p[9] = 6;
    refix_v4(&mut p);
    assert!(matches!(
        decapsulate(&p),
        Err(ForwardingError::BadValue { value: 6, .. })
    ));
    // UDP 4342 (control) is not data.
    let mut p = good.clone();
    p[22..24].copy_from_slice(&4342u16.to_be_bytes());
    assert_eq!(
        decapsulate(&p),
        Err(ForwardingError::BadValue {
            what: "UDP destination port (not LISP data 4341)",
            value: 4342
        })
    );
    // UDP length shorter than UDP + LISP header, and longer than the datagram.
    for len in [15u16, 45] {
        let mut p = good.clone();
        p[24..26].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            decapsulate(&p),
            Err(ForwardingError::BadLength { declared, .. }) if declared == usize::from(len)
        ));
    }
    // No room for the UDP header.
    let p = ipv4_packet([10, 2, 2, 2], [10, 3, 3, 3], 17, 64, 0, &[0x11; 7]);
    assert!(matches!(
        decapsulate(&p),
        Err(ForwardingError::Truncated { needed: 8, .. })
    ));
    // KK != 0: LISP-crypto.
    let mut p = good.clone();
    p[28] |= 0x01;
    assert_eq!(
        decapsulate(&p),
        Err(ForwardingError::BadValue {
            what: "LISP key id (LISP-crypto payload not supported)",
            value: 1
        })
    );
    // Inner version 5, empty inner, inner header too short.
    let p = lisp_v4(&cat(&hex(DATA_HEADER), &[0x55; 20]));
    assert_eq!(
        decapsulate(&p),
        Err(ForwardingError::BadValue {
            what: "inner IP version",
            value: 5
        })
    );
    let p = lisp_v4(&hex(DATA_HEADER));
    assert!(matches!(
        decapsulate(&p),
        Err(ForwardingError::Truncated { needed: 1, .. })
    ));
    let p = lisp_v4(&cat(&hex(DATA_HEADER), &[0x45; 19]));
    assert!(matches!(
        decapsulate(&p),
        Err(ForwardingError::Truncated {
            needed: 20,
            available: 19,
            ..
        })
    ));
    // IPv6 outer: next header not UDP, payload length beyond the data.
    let s: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let t: Ipv6Addr = "2001:db8::b".parse().unwrap();
    let p = ipv6_packet(s, t, 6, 64, 0, &udp(1, 4341, &hex(DATA_HEADER)));
    assert!(matches!(
        decapsulate(&p),
        Err(ForwardingError::BadValue { value: 6, .. })
    ));
    let p = ipv6_packet(
        s,
        t,
        17,
        64,
        0,
        &udp(1, 4341, &cat(&hex(DATA_HEADER), &icmp_inner())),
    );
    assert!(matches!(
        decapsulate(&p[..p.len() - 1]),
        Err(ForwardingError::BadLength { .. })
    ));
    assert!(matches!(
        decapsulate(&p[..39]),
        Err(ForwardingError::Truncated { needed: 40, .. })
    ));
    // Trailing Ethernet padding after the datagram is ignored.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0u8; 6]);
    assert_eq!(
        decapsulate(&padded).unwrap().inner(&padded),
        &icmp_inner()[..]
    );
}

fn refix_v4(p: &mut [u8]) {
    p[10] = 0;
    p[11] = 0;
    let c = ipv4_csum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn encap_negative_cases_have_typed_errors() {
    let inner = icmp_inner();
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let params = EncapParams::new(v4(10, 1, 1, 1), v4(10, 2, 2, 2), 50000, worked_repr());
    let mk = |headroom: usize| {
        let mut b = vec![0u8; headroom + inner.len()];
        b[headroom..].copy_from_slice(&inner);
        b
    };
    // Not enough headroom.
    let mut b = mk(35);
    assert_eq!(
        encapsulate_in_place(&mut b, 35, inner.len(), &params),
        Err(ForwardingError::NoHeadroom {
            what: "LISP encapsulation (IPv4 outer)",
            needed: 36,
            available: 35
        })
    );
    let mut p6 = params;
    p6.outer_src = "2001:db8::1".parse().unwrap();
    p6.outer_dst = "2001:db8::2".parse().unwrap();
    let mut b = mk(55);
    assert!(matches!(
        encapsulate_in_place(&mut b, 55, inner.len(), &p6),
        Err(ForwardingError::NoHeadroom { needed: 56, .. })
    ));
    // Inner range beyond the buffer.
    let mut b = mk(36);
    assert!(matches!(
        encapsulate_in_place(&mut b, 36, inner.len() + 1, &params),
        Err(ForwardingError::Truncated { .. })
    ));
    assert!(matches!(
        encapsulate_in_place(&mut b, usize::MAX, 2, &params),
        Err(ForwardingError::Truncated { .. })
    ));
    // Inner not IP / too short.
    let mut b = mk(36);
    b[36] = 0x15;
    assert!(matches!(
        encapsulate_in_place(&mut b, 36, inner.len(), &params),
        Err(ForwardingError::BadValue { value: 1, .. })
    ));
    let mut b = mk(36);
    assert!(matches!(
        encapsulate_in_place(&mut b, 36, 19, &params),
        Err(ForwardingError::Truncated { needed: 20, .. })
    ));
    // Families differ; forbidden addresses.
    let mut mixed = params;
    mixed.outer_dst = "2001:db8::2".parse().unwrap();
    let mut b = mk(56);
    assert!(matches!(
        encapsulate_in_place(&mut b, 56, inner.len(), &mixed),
        Err(ForwardingError::BadAddress { .. })
    ));
    for (src, dst) in [
        (v4(224, 1, 1, 1), v4(10, 2, 2, 2)),
        (v4(10, 1, 1, 1), v4(255, 255, 255, 255)),
        (v4(10, 1, 1, 1), v4(224, 0, 0, 5)),
        (v4(0, 0, 0, 0), v4(10, 2, 2, 2)),
    ] {
        let mut p = params;
        p.outer_src = src;
        p.outer_dst = dst;
        let mut b = mk(36);
        assert!(matches!(
            encapsulate_in_place(&mut b, 36, inner.len(), &p),
            Err(ForwardingError::BadAddress { .. })
        ));
    }
    let mut p = p6;
    p.outer_dst = "ff02::1".parse().unwrap();
    let mut b = mk(56);
    assert!(matches!(
        encapsulate_in_place(&mut b, 56, inner.len(), &p),
        Err(ForwardingError::BadAddress { .. })
    ));
    // Unsendable header.
    let mut p = params;
    p.header.key_id = 9;
    let mut b = mk(36);
    assert!(matches!(
        encapsulate_in_place(&mut b, 36, inner.len(), &p),
        Err(ForwardingError::BadValue { .. })
    ));
    // Too large for a 16-bit length.
    let big = 65535 - 36 + 1;
    let mut b = vec![0u8; 36 + big];
    b[36] = 0x45;
    assert!(matches!(
        encapsulate_in_place(&mut b, 36, big, &params),
        Err(ForwardingError::BadLength { .. })
    ));
    // The buffer is untouched by a failed encapsulation.
    let mut b = mk(36);
    let before = b.clone();
    let _ = encapsulate_in_place(&mut b, 36, inner.len(), &mixed);
    assert_eq!(b, before);
}

#[test]
fn ecn_and_ttl_rules() {
    // RFC 6040 decapsulation table (protocols.md §2.4 step 6).
    let expect = [
        [Some(0), Some(0), Some(0), None],
        [Some(1), Some(1), Some(1), Some(3)],
        [Some(2), Some(1), Some(2), Some(3)],
        [Some(3), Some(3), Some(3), Some(3)],
    ];
    // Rows: inner Not-ECT, ECT(1), ECT(0), CE; columns: outer Not-ECT, ECT(1), ECT(0), CE.
    for (inner, row) in expect.iter().enumerate() {
        for (outer, want) in row.iter().enumerate() {
            let got = ecn_decapsulate(inner as u8, outer as u8).ok();
            assert_eq!(got, *want, "inner {inner} outer {outer}");
        }
    }
    assert_eq!(ecn_decapsulate(0, 3), Err(ForwardingError::EcnCeOnNotEct));

    // Encap copies TTL and ToS; decap_in_place applies min TTL, outer DSCP, ECN, fixes checksum.
    let inner = ipv4_packet(
        [172, 16, 2, 20],
        [172, 16, 1, 10],
        17,
        40,
        0xb8 | 2,
        &udp(1, 2, b"x"),
    );
    let mut b = vec![0u8; 36 + inner.len()];
    b[36..].copy_from_slice(&inner);
    let p = EncapParams::new(
        IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)),
        50000,
        LispDataRepr::default(),
    );
    encapsulate_in_place(&mut b, 36, inner.len(), &p).unwrap();
    assert_eq!(b[1], 0xba); // DSCP 46 + ECT(0) copied
    assert_eq!(b[8], 40);
    let mut compat = p;
    compat.ecn = EcnEncapMode::Compatibility;
    let mut c = vec![0u8; 36 + inner.len()];
    c[36..].copy_from_slice(&inner);
    encapsulate_in_place(&mut c, 36, inner.len(), &compat).unwrap();
    assert_eq!(c[1], 0xb8);
    // In transit: outer TTL drops to 7, DSCP re-marked to AF11 (0x28), ECN set to CE.
    b[8] = 7;
    b[1] = 0x28 | 3;
    refix_v4(&mut b);
    let d = decapsulate_in_place(&mut b).unwrap();
    let got = &b[d.inner_range()];
    assert_eq!(got[8], 7);
    assert_eq!(got[1], 0x28 | 3);
    assert_eq!(ipv4_csum(&got[..20]), 0, "inner IPv4 checksum updated");
    // Inner Not-ECT with outer CE: drop.
    let inner = ipv4_packet(
        [172, 16, 2, 20],
        [172, 16, 1, 10],
        17,
        40,
        0,
        &udp(1, 2, b"x"),
    );
    let mut b = vec![0u8; 36 + inner.len()];
    b[36..].copy_from_slice(&inner);
    encapsulate_in_place(&mut b, 36, inner.len(), &p).unwrap();
    b[1] = 3;
    refix_v4(&mut b);
    assert_eq!(
        decapsulate_in_place(&mut b),
        Err(ForwardingError::EcnCeOnNotEct)
    );
    // IPv6 inner: hop limit min, traffic class rewritten, flow label kept.
    let mut v6 = inner_v6();
    apply_outer_to_inner(&mut v6, InnerKind::Ipv6, 9, 0x28 | 1).unwrap();
    assert_eq!(v6[7], 9);
    assert_eq!((v6[0] << 4) | (v6[1] >> 4), 0x28);
    assert_eq!(u32::from_be_bytes([0, v6[1] & 0x0f, v6[2], v6[3]]), 0x12345);
    let mut short = [0x45u8; 10];
    assert!(matches!(
        apply_outer_to_inner(&mut short, InnerKind::Ipv4, 1, 0),
        Err(ForwardingError::Truncated { .. })
    ));
}

#[test]
fn ipv6_outer_has_a_valid_udp_checksum() {
    let inner = icmp_inner();
    let mut b = vec![0u8; OVERHEAD_IPV6 + inner.len()];
    b[OVERHEAD_IPV6..].copy_from_slice(&inner);
    let s: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let t: Ipv6Addr = "2001:db8:2::2".parse().unwrap();
    let mut p = EncapParams::new(IpAddr::V6(s), IpAddr::V6(t), 61000, worked_repr());
    p.ipv6_flow_label = 0xabcde;
    let start = encapsulate_in_place(&mut b, OVERHEAD_IPV6, inner.len(), &p).unwrap();
    assert_eq!(start, 0);
    // Independent check with etherparse.
    let (ip, rest) = etherparse::Ipv6Header::from_slice(&b).unwrap();
    assert_eq!(ip.hop_limit, 63);
    assert_eq!(ip.flow_label.value(), 0xabcde);
    assert_eq!(usize::from(ip.payload_length), 16 + inner.len());
    let (u, payload) = etherparse::UdpHeader::from_slice(rest).unwrap();
    assert_eq!(u.destination_port, 4341);
    assert_ne!(u.checksum, 0);
    assert_eq!(u.calc_checksum_ipv6(&ip, payload).unwrap(), u.checksum);
    let d = decapsulate(&b).unwrap();
    assert!(udp_checksum_ok(&b, &d));
    assert_eq!(d.inner(&b), &inner[..]);
    // Zero UDP checksum over IPv6 is accepted (RFC 6935/6936).
    b[46] = 0;
    b[47] = 0;
    let d = decapsulate(&b).unwrap();
    assert!(udp_checksum_ok(&b, &d));
    let _ = checksum::IPPROTO_UDP;
}

#[test]
fn flow_port_range_and_stability() {
    let a = ipv4_packet(
        [1, 1, 1, 1],
        [2, 2, 2, 2],
        6,
        64,
        0,
        &hex("0050 1f90 00000000"),
    );
    let b = ipv4_packet(
        [1, 1, 1, 1],
        [2, 2, 2, 2],
        6,
        12,
        0x10,
        &hex("0050 1f90 ffffffff"),
    );
    let c = ipv4_packet(
        [1, 1, 1, 1],
        [2, 2, 2, 2],
        6,
        64,
        0,
        &hex("0050 1f91 00000000"),
    );
    // Same 5-tuple, other TTL / ToS / payload: same port. Other destination port: other hash.
    assert_eq!(flow_source_port(&a, 0), flow_source_port(&b, 0));
    assert_ne!(flow_hash(&a, 0), flow_hash(&c, 0));
    assert_ne!(flow_hash(&a, 0), flow_hash(&a, 1));
    for p in [&a, &b, &c] {
        assert!(flow_source_port(p, 7) >= SOURCE_PORT_BASE);
    }
    // Garbage and empty input never fail.
    assert!(flow_source_port(&[], 0) >= SOURCE_PORT_BASE);
    assert!(flow_source_port(&[0x45, 1, 2], 0) >= SOURCE_PORT_BASE);
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn arb_iid() -> impl Strategy<Value = Option<Iid>> {
    prop::option::of((0u32..=0xff_ffff).prop_map(|v| Iid::new(v).unwrap()))
}

fn arb_repr() -> impl Strategy<Value = LispDataRepr> {
    let nonce = prop_oneof![
        Just(NonceField::None),
        (0u32..=0xff_ffff, any::<bool>()).prop_map(|(nonce, echo_request)| NonceField::Nonce {
            nonce,
            echo_request
        }),
        (0u16..=0xfff, 0u16..=0xfff)
            .prop_map(|(source, dest)| NonceField::MapVersion { source, dest }),
    ];
    (
        nonce,
        arb_iid(),
        prop::option::of(any::<u32>()),
        0u8..=3,
        prop::option::of(any::<u8>()),
    )
        .prop_map(|(nonce, instance_id, lsb, key_id, np)| {
            let lsb = if instance_id.is_some() {
                lsb.map(|l| l & 0xff)
            } else {
                lsb
            };
            let (nonce, next_protocol) = match np {
                Some(n) => (NonceField::None, Some(GpeNextProtocol(n))),
                None => (nonce, None),
            };
            LispDataRepr {
                nonce,
                instance_id,
                lsb,
                key_id,
                next_protocol,
            }
        })
}

/// A random inner IPv4 or IPv6 packet (valid version nibble and header length).
fn arb_inner() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            1u8..=255,
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..1500)
        )
            .prop_map(|(s, d, proto, ttl, tos, pl)| ipv4_packet(s, d, proto, ttl, tos, &pl)),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            1u8..=255,
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..1400)
        )
            .prop_map(|(s, d, nh, hop, tc, pl)| ipv6_packet(
                Ipv6Addr::from(s),
                Ipv6Addr::from(d),
                nh,
                hop,
                tc,
                &pl
            )),
    ]
}

fn arb_rlocs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (1u8..=223, any::<[u8; 3]>(), 1u8..=223, any::<[u8; 3]>()).prop_map(|(a, r, b, s)| (
            IpAddr::V4(Ipv4Addr::new(a, r[0], r[1], r[2])),
            IpAddr::V4(Ipv4Addr::new(b, s[0], s[1], s[2].max(1)))
        )),
        (any::<[u16; 7]>(), any::<[u16; 7]>()).prop_map(|(a, b)| (
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6] | 1
            )),
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                b[0],
                b[1],
                b[2],
                b[3],
                b[4],
                b[5],
                b[6] | 1
            ))
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn header_round_trip(repr in arb_repr()) {
        let bytes = repr.to_bytes().unwrap();
        prop_assert_eq!(LispDataRepr::parse_bytes(&bytes).unwrap(), repr);
        let mut buf = [0u8; 8];
        repr.emit_bytes(&mut buf).unwrap();
        prop_assert_eq!(buf, bytes);
    }

    #[test]
    fn header_parse_never_fails_and_reemits_stably(bytes in any::<[u8; 8]>()) {
        let r = LispDataRepr::parse_bytes(&bytes).unwrap();
        let again = LispDataRepr::parse_bytes(&r.to_bytes().unwrap()).unwrap();
        prop_assert_eq!(again, r);
    }

    #[test]
    fn encap_then_decap_returns_the_inner_packet(
        inner in arb_inner(),
        (src, dst) in arb_rlocs(),
        repr in arb_repr(),
        headroom_extra in 0usize..64,
        tail in 0usize..8,
        sport in any::<u16>(),
    ) {
        let mut repr = repr;
        repr.key_id = 0;
        if repr.next_protocol.is_some() {
            repr.next_protocol = Some(if inner[0] >> 4 == 4 { GpeNextProtocol::IPV4 } else { GpeNextProtocol::IPV6 });
        }
        let params = EncapParams::new(src, dst, sport, repr);
        let headroom = params.overhead() + headroom_extra;
        let mut buf = vec![0xeeu8; headroom + inner.len() + tail];
        buf[headroom..headroom + inner.len()].copy_from_slice(&inner);
        let start = encapsulate_in_place(&mut buf, headroom, inner.len(), &params).unwrap();
        prop_assert_eq!(start, headroom_extra);
        prop_assert!(buf[..start].iter().all(|&b| b == 0xee));
        let pkt = &buf[start..];
        let d = decapsulate(pkt).unwrap();
        prop_assert_eq!(d.inner(pkt), &inner[..]);
        prop_assert_eq!(d.header, repr);
        prop_assert_eq!(d.outer.src, src);
        prop_assert_eq!(d.outer.dst, dst);
        prop_assert_eq!(d.outer.src_port, sport);
        prop_assert!(udp_checksum_ok(pkt, &d));
        let inner_ttl = if inner[0] >> 4 == 4 { inner[8] } else { inner[7] };
        prop_assert_eq!(d.outer.ttl, inner_ttl);
        // Independent checks of the outer headers with etherparse.
        if src.is_ipv4() {
            let (ip, _) = etherparse::Ipv4Header::from_slice(pkt).unwrap();
            prop_assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
            prop_assert_eq!(usize::from(ip.total_len), 36 + inner.len());
        } else {
            let (ip, rest) = etherparse::Ipv6Header::from_slice(pkt).unwrap();
            let (u, payload) = etherparse::UdpHeader::from_slice(rest).unwrap();
            // etherparse does not bound `rest` by the IPv6 payload length: drop the tail.
            let payload = &payload[..usize::from(u.length) - 8];
            prop_assert_eq!(u.calc_checksum_ipv6(&ip, payload).unwrap(), u.checksum);
        }
        // In place: decap keeps the inner packet unchanged (outer TTL = inner TTL, outer ToS =
        // inner ToS) unless ECN says drop, which cannot happen here.
        let mut copy = pkt.to_vec();
        let d2 = decapsulate_in_place(&mut copy).unwrap();
        prop_assert_eq!(&copy[d2.inner_range()], &inner[..]);
    }

    #[test]
    fn decap_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decapsulate(&bytes);
        let mut b = bytes.clone();
        let _ = decapsulate_in_place(&mut b);
        let _ = flow_source_port(&bytes, 0);
    }

    #[test]
    fn decap_of_mutated_valid_packets_never_panics(pos in 0usize..64, val in any::<u8>()) {
        let mut p = hex(PCAP_OUTER);
        p[pos] = val;
        if let Ok(d) = decapsulate(&p) {
            prop_assert!(d.inner_range().end <= p.len());
        }
    }
}
