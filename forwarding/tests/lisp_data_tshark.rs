//! Every kind of LISP data packet roamer emits, written to a pcap and decoded by tshark: each frame
//! must decode as `lisp-data` with the expected flags and fields, with IP and UDP checksum
//! verification on, and there must be no malformed packet and no expert info at all.
//!
//! tshark is required: this test fails (it does not skip) when tshark is missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_forwarding::wire::checksum;
use roamer_forwarding::wire::lisp_data::{
    EncapParams, LispDataRepr, NonceField, decapsulate, encapsulate_in_place, flow_source_port,
};
use roamer_hal::Iid;
use roamer_test_support::pcap::{
    assert_expert_summary_without, assert_frame, tshark_ok as tshark, write_frames,
};

fn inner_icmp_v4() -> Vec<u8> {
    // protocols.md §11.3: ICMP echo 172.16.2.20 -> 172.16.1.10, TTL 63.
    let mut p = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 63, 1, 0, 0, 172, 16, 2, 20, 172, 16, 1, 10,
    ];
    let c = checksum::ipv4_header(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&[0x08, 0x00, 0xf7, 0xff, 0, 0, 0, 0]);
    p
}

fn inner_udp_v6() -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8:a::10".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8:b::20".parse().unwrap();
    let payload = b"roamer";
    let len = u16::try_from(8 + payload.len()).unwrap();
    let mut udp = Vec::new();
    udp.extend_from_slice(&40000u16.to_be_bytes());
    udp.extend_from_slice(&9u16.to_be_bytes());
    udp.extend_from_slice(&len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let c = checksum::udp_field(checksum::pseudo_ipv6(src, dst, 17, u32::from(len)), &udp);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.push(17);
    p.push(62);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&udp);
    p
}

/// Ethernet + encapsulated packet, built in place in one buffer the way the forwarding core does.
fn frame(inner: &[u8], src: IpAddr, dst: IpAddr, header: LispDataRepr) -> Vec<u8> {
    let params = EncapParams::new(src, dst, flow_source_port(inner, 0), header);
    let headroom = 14 + params.overhead();
    let mut buf = vec![0u8; headroom + inner.len()];
    buf[headroom..].copy_from_slice(inner);
    let start = encapsulate_in_place(&mut buf, headroom, inner.len(), &params).unwrap();
    assert_eq!(start, 14);
    let ethertype: u16 = if src.is_ipv4() { 0x0800 } else { 0x86dd };
    buf[0..6].copy_from_slice(&[0x00, 0x22, 0x33, 0x44, 0x55, 0x66]);
    buf[6..12].copy_from_slice(&[0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
    // Round trip through our own decapsulation as well.
    let d = decapsulate(&buf[14..]).unwrap();
    assert_eq!(d.inner(&buf[14..]), inner);
    assert_eq!(d.header, header);
    buf
}

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    /// (tshark field, expected value) pairs.
    fields: Vec<(&'static str, String)>,
    protocols: &'static str,
}

fn cases() -> Vec<Case> {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
    let iid = |v| Some(Iid::new(v).unwrap());
    vec![
        Case {
            name: "IPv4 underlay, N+L+I (the §2.2 worked header), inner IPv4",
            frame: frame(
                &inner_icmp_v4(),
                v4(10, 2, 2, 2),
                v4(10, 3, 3, 3),
                LispDataRepr {
                    nonce: NonceField::Nonce {
                        nonce: 0x5a3c91,
                        echo_request: false,
                    },
                    instance_id: iid(101),
                    lsb: Some(1),
                    ..Default::default()
                },
            ),
            fields: vec![
                ("lisp-data.flags", "0xc8".into()),
                ("lisp-data.flags.nonce", "1".into()),
                ("lisp-data.flags.lsb", "1".into()),
                ("lisp-data.flags.iid", "1".into()),
                ("lisp-data.nonce", "5913745".into()),
                ("lisp-data.iid", "101".into()),
                ("lisp-data.lsb8", "0x01".into()),
                ("udp.dstport", "4341".into()),
                ("ip.ttl", "63,63".into()),
            ],
            protocols: "eth:ethertype:ip:udp:lisp-data:ip:icmp",
        },
        Case {
            name: "IPv4 underlay, no instance-ID, N + 32-bit LSBs, inner IPv4",
            frame: frame(
                &inner_icmp_v4(),
                v4(10, 2, 2, 2),
                v4(10, 3, 3, 3),
                LispDataRepr {
                    nonce: NonceField::Nonce {
                        nonce: 0x000001,
                        echo_request: false,
                    },
                    lsb: Some(3),
                    ..Default::default()
                },
            ),
            fields: vec![
                ("lisp-data.flags", "0xc0".into()),
                ("lisp-data.flags.iid", "0".into()),
                ("lisp-data.nonce", "1".into()),
                ("lisp-data.lsb", "0x00000003".into()),
            ],
            protocols: "eth:ethertype:ip:udp:lisp-data:ip:icmp",
        },
        Case {
            name: "IPv4 underlay, echo-nonce request, inner IPv6",
            frame: frame(
                &inner_udp_v6(),
                v4(10, 2, 2, 2),
                v4(10, 3, 3, 3),
                LispDataRepr {
                    nonce: NonceField::Nonce {
                        nonce: 0xabcdef,
                        echo_request: true,
                    },
                    ..Default::default()
                },
            ),
            fields: vec![
                ("lisp-data.flags", "0xa0".into()),
                ("lisp-data.flags.enr", "1".into()),
                ("lisp-data.nonce", "11259375".into()),
            ],
            protocols: "eth:ethertype:ip:udp:lisp-data:ipv6:udp:data",
        },
        Case {
            name: "IPv6 underlay, instance-ID 200, inner IPv6",
            frame: frame(
                &inner_udp_v6(),
                v6("2001:db8:1::1"),
                v6("2001:db8:2::2"),
                LispDataRepr {
                    nonce: NonceField::Nonce {
                        nonce: 0x010203,
                        echo_request: false,
                    },
                    instance_id: iid(200),
                    ..Default::default()
                },
            ),
            fields: vec![
                ("lisp-data.flags", "0x88".into()),
                ("lisp-data.flags.iid", "1".into()),
                ("lisp-data.iid", "200".into()),
                ("ipv6.hlim", "62,62".into()),
            ],
            protocols: "eth:ethertype:ipv6:udp:lisp-data:ipv6:udp:data",
        },
        Case {
            name: "IPv6 underlay, no instance-ID, map-versions, inner IPv4",
            frame: frame(
                &inner_icmp_v4(),
                v6("2001:db8:1::1"),
                v6("2001:db8:2::2"),
                LispDataRepr {
                    nonce: NonceField::MapVersion {
                        source: 0x123,
                        dest: 0x456,
                    },
                    ..Default::default()
                },
            ),
            fields: vec![
                ("lisp-data.flags", "0x10".into()),
                ("lisp-data.flags.mv", "1".into()),
                ("lisp-data.srcmapver", "291".into()),
                ("lisp-data.dstmapver", "1110".into()),
            ],
            protocols: "eth:ethertype:ipv6:udp:lisp-data:ip:icmp",
        },
    ]
}

#[test]
fn tshark_decodes_every_lisp_data_kind_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lisp_data.pcap");
    let cases = cases();
    write_frames(&path, cases.iter().map(|c| c.frame.as_slice())).unwrap();
    let p = path.to_str().unwrap();
    let checks = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ];

    // No malformed packet, no expert info of any severity.
    let mut args = vec!["-r", p];
    args.extend_from_slice(&checks);
    args.extend_from_slice(&[
        "-Y",
        "_ws.malformed || _ws.expert",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
    ]);
    let bad = tshark(&args);
    assert!(bad.trim().is_empty(), "malformed / expert info:\n{bad}");
    assert_expert_summary_without(p, &checks, &["Errors", "Warns", "Notes", "Chats"]);

    // Every frame: the protocol stack and the key fields.
    for (i, c) in cases.iter().enumerate() {
        assert_frame(p, i + 1, &checks, c.name, c.protocols, &c.fields);
    }

    // The display filter from protocols.md §11.1 finds exactly the IID 101 packet.
    let out = tshark(&[
        "-r",
        p,
        "-Y",
        "lisp-data.flags.iid == 1 && lisp-data.iid == 101",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    assert_eq!(out.trim(), "1");
}
