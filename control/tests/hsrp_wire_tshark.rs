//! Every HSRP packet kind roamer emits, as full frames in a pcap, decoded by tshark: each frame
//! must decode as HSRP / HSRPv2 with the expected fields, IP and UDP checksums verified, no
//! malformed packet and no expert info — with one documented exception: tshark 4.0 adds the IPv4
//! Note "Time To Live != 255 for a packet sent to the Local Network Control Block"
//! (`ip.ttl.lncb`) to packets for 224.0.0.102, which HSRPv2 sends with TTL 1 as Cisco does
//! (protocols.md §1.1, §11.1 calls this note harmless). That note, on exactly those frames, is
//! the only expert info allowed.
//!
//! tshark is required: this test fails (it does not skip) when tshark is missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_control::wire::hsrp::{
    AuthText, HsrpAuth, HsrpInterfaceState, HsrpMd5Auth, HsrpMd5Key, HsrpOpCode, HsrpPacket,
    HsrpState, HsrpV2GroupState, HsrpV2Repr, build_hsrp_frame, hello_source_mac, md5_digest,
    virtual_link_local_ipv6, virtual_mac_ipv6, virtual_mac_v1, virtual_mac_v2,
};
use roamer_hal::Mac;
use roamer_test_support::pcap::{
    assert_expert_summary_without, assert_frame, tshark_ok as tshark, write_frames,
};

const LNCB_NOTE: &str =
    "\"Time To Live\" != 255 for a packet sent to the Local Network Control Block (see RFC 3171)";

const IF_MAC: Mac = Mac([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v1(op: HsrpOpCode, state: HsrpState, priority: u8, auth: HsrpAuth) -> HsrpPacket {
    HsrpPacket::V1(common::hsrp_v1(
        op,
        state,
        priority,
        10,
        auth,
        Ipv4Addr::new(10, 10, 10, 1),
    ))
}

fn v2(
    op: HsrpOpCode,
    state: HsrpState,
    group: u16,
    vip: IpAddr,
    auth: HsrpAuth,
    ifs: Option<HsrpInterfaceState>,
) -> HsrpPacket {
    HsrpPacket::V2(HsrpV2Repr {
        group_state: HsrpV2GroupState {
            op_code: op,
            state,
            group,
            identifier: IF_MAC,
            priority: 110,
            hellotime_ms: 3000,
            holdtime_ms: 10000,
            virtual_ip: vip,
        },
        interface_state: ifs,
        auth,
    })
}

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    protocols: &'static str,
    /// The IPv4 TTL note is expected (HSRPv2 to 224.0.0.102).
    lncb_note: bool,
    fields: Vec<(&'static str, String)>,
}

fn cases() -> Vec<Case> {
    let src = v4(10, 10, 10, 2);
    let text = HsrpAuth::Text(AuthText::cisco());
    let key = HsrpMd5Key::new(b"s3cret").unwrap();
    let md5 = HsrpAuth::Md5(HsrpMd5Auth::unsigned(Ipv4Addr::new(10, 10, 10, 2), 0));
    let frame =
        |p: &HsrpPacket, state: HsrpState, vmac: Mac, src: IpAddr, k: Option<&HsrpMd5Key>| {
            build_hsrp_frame(p, hello_source_mac(state, vmac, IF_MAC), src, k).unwrap()
        };
    let vmac1 = virtual_mac_v1(10);
    let vmac2 = virtual_mac_v2(10).unwrap();
    let v1_md5 = v1(HsrpOpCode::Hello, HsrpState::Standby, 100, md5);
    let v1_md5_frame = frame(&v1_md5, HsrpState::Standby, vmac1, src, Some(&key));
    let v1_digest = md5_digest(&v1_md5_frame[42..], &key).unwrap();
    let v2_md5 = v2(
        HsrpOpCode::Hello,
        HsrpState::Active,
        4095,
        v4(10, 10, 10, 1),
        HsrpAuth::Md5(HsrpMd5Auth::unsigned(Ipv4Addr::new(10, 10, 10, 2), 7)),
        None,
    );
    let v2_md5_frame = frame(
        &v2_md5,
        HsrpState::Active,
        virtual_mac_v2(4095).unwrap(),
        src,
        Some(&key),
    );
    let v2_digest = md5_digest(&v2_md5_frame[42..], &key).unwrap();
    let hexs = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let ll: Ipv6Addr = "fe80::211:22ff:fe33:4455".parse().unwrap();
    let vll = virtual_link_local_ipv6(10).unwrap();
    vec![
        Case {
            name: "v1 Hello (Active, worked example §7.2)",
            frame: frame(
                &v1(HsrpOpCode::Hello, HsrpState::Active, 110, text),
                HsrpState::Active,
                vmac1,
                src,
                None,
            ),
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: false,
            fields: vec![
                ("eth.src", "00:00:0c:07:ac:0a".into()),
                ("eth.dst", "01:00:5e:00:00:02".into()),
                ("ip.dst", "224.0.0.2".into()),
                ("ip.ttl", "1".into()),
                ("hsrp.version", "0".into()),
                ("hsrp.opcode", "0".into()),
                ("hsrp.state", "16".into()),
                ("hsrp.hellotime", "3".into()),
                ("hsrp.holdtime", "10".into()),
                ("hsrp.priority", "110".into()),
                ("hsrp.group", "10".into()),
                ("hsrp.auth_data", "cisco".into()),
                ("hsrp.virt_ip", "10.10.10.1".into()),
            ],
        },
        Case {
            name: "v1 Coup (Speak, preempting)",
            frame: frame(
                &v1(HsrpOpCode::Coup, HsrpState::Speak, 120, text),
                HsrpState::Speak,
                vmac1,
                src,
                None,
            ),
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: false,
            fields: vec![
                ("eth.src", "00:11:22:33:44:55".into()),
                ("hsrp.opcode", "1".into()),
                ("hsrp.state", "4".into()),
                ("hsrp.priority", "120".into()),
            ],
        },
        Case {
            name: "v1 Resign (Active)",
            frame: frame(
                &v1(HsrpOpCode::Resign, HsrpState::Active, 110, text),
                HsrpState::Active,
                vmac1,
                src,
                None,
            ),
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: false,
            fields: vec![("hsrp.opcode", "2".into()), ("hsrp.state", "16".into())],
        },
        Case {
            name: "v1 Hello with MD5 authentication (50 octets)",
            frame: v1_md5_frame,
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: false,
            fields: vec![
                ("udp.length", "58".into()),
                ("hsrp.state", "8".into()),
                ("hsrp2.md5_algorithm", "1".into()),
                ("hsrp.md5_ip_address", "10.10.10.2".into()),
                ("hsrp2.md5_key_id", "0".into()),
                ("hsrp2.md5_auth_data", hexs(v1_digest)),
            ],
        },
        Case {
            name: "v2 Hello with text authentication (worked example §7.4)",
            frame: frame(
                &v2(
                    HsrpOpCode::Hello,
                    HsrpState::Active,
                    10,
                    v4(10, 10, 10, 1),
                    text,
                    None,
                ),
                HsrpState::Active,
                vmac2,
                src,
                None,
            ),
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: true,
            fields: vec![
                ("eth.src", "00:00:0c:9f:f0:0a".into()),
                ("eth.dst", "01:00:5e:00:00:66".into()),
                ("ip.dst", "224.0.0.102".into()),
                ("ip.ttl", "1".into()),
                ("hsrp2.version", "2".into()),
                ("hsrp2.opcode", "0".into()),
                ("hsrp2.state", "6".into()),
                ("hsrp2.ipversion", "4".into()),
                ("hsrp2.group", "10".into()),
                ("hsrp2.identifier", "00:11:22:33:44:55".into()),
                ("hsrp2.priority", "110".into()),
                ("hsrp2.hellotime", "3000".into()),
                ("hsrp2.holdtime", "10000".into()),
                ("hsrp2.virt_ip", "10.10.10.1".into()),
                ("hsrp2.auth_data", "cisco".into()),
            ],
        },
        Case {
            name: "v2 Hello with MD5 authentication, group 4095",
            frame: v2_md5_frame,
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: true,
            fields: vec![
                ("eth.src", "00:00:0c:9f:ff:ff".into()),
                ("hsrp2.group", "4095".into()),
                ("hsrp2.state", "6".into()),
                ("hsrp2.md5_algorithm", "1".into()),
                ("hsrp.md5_ip_address", "10.10.10.2".into()),
                ("hsrp2.md5_key_id", "7".into()),
                ("hsrp2.md5_auth_data", hexs(v2_digest)),
            ],
        },
        Case {
            name: "v2 Resign (Standby) with an Interface State TLV",
            frame: frame(
                &v2(
                    HsrpOpCode::Resign,
                    HsrpState::Standby,
                    10,
                    v4(10, 10, 10, 1),
                    text,
                    Some(HsrpInterfaceState {
                        active_groups: 2,
                        passive_groups: 1,
                    }),
                ),
                HsrpState::Standby,
                vmac2,
                src,
                None,
            ),
            protocols: "eth:ethertype:ip:udp:hsrp",
            lncb_note: true,
            fields: vec![
                ("hsrp2.opcode", "2".into()),
                ("hsrp2.state", "5".into()),
                ("hsrp2.active_groups", "2".into()),
                ("hsrp2.passive_groups", "1".into()),
                ("hsrp2.auth_data", "cisco".into()),
            ],
        },
        Case {
            name: "HSRP for IPv6 Hello (v2 format, UDP 2029, ff02::66)",
            frame: frame(
                &v2(
                    HsrpOpCode::Hello,
                    HsrpState::Active,
                    10,
                    IpAddr::V6(vll),
                    text,
                    None,
                ),
                HsrpState::Active,
                virtual_mac_ipv6(10).unwrap(),
                IpAddr::V6(ll),
                None,
            ),
            protocols: "eth:ethertype:ipv6:udp:hsrp",
            lncb_note: false,
            fields: vec![
                ("eth.src", "00:05:73:a0:00:0a".into()),
                ("eth.dst", "33:33:00:00:00:66".into()),
                ("ipv6.src", "fe80::211:22ff:fe33:4455".into()),
                ("ipv6.dst", "ff02::66".into()),
                ("ipv6.hlim", "255".into()),
                ("udp.dstport", "2029".into()),
                ("hsrp2.ipversion", "6".into()),
                ("hsrp2.state", "6".into()),
                ("hsrp2.group", "10".into()),
                ("hsrp2.virt_ip_v6", "fe80::5:73ff:fea0:a".into()),
            ],
        },
    ]
}

#[test]
fn tshark_decodes_every_hsrp_kind_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hsrp.pcap");
    let cases = cases();
    write_frames(&path, cases.iter().map(|c| c.frame.as_slice())).unwrap();
    let p = path.to_str().unwrap();
    let checks = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ];

    // No malformed packet at all.
    let mut args = vec![
        "-r",
        p,
        "-Y",
        "_ws.malformed",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ];
    args.extend_from_slice(&checks);
    let malformed = tshark(&args);
    assert!(malformed.trim().is_empty(), "malformed frames: {malformed}");

    // Expert info: only the IPv4 TTL note, only on the HSRPv2-over-IPv4 frames.
    let mut args = vec![
        "-r",
        p,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
        "-e",
        "_ws.expert.severity",
    ];
    args.extend_from_slice(&checks);
    let experts = tshark(&args);
    let lines: Vec<&str> = experts.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{experts}");
    for (c, line) in cases.iter().zip(&lines) {
        let cols: Vec<&str> = line.split('|').collect();
        let msg = cols.get(1).copied().unwrap_or_default();
        if c.lncb_note {
            assert_eq!(msg, LNCB_NOTE, "{}: {line}", c.name);
            // Severity "Note" (PI_NOTE = 0x00400000).
            assert_eq!(cols.get(2).copied(), Some("4194304"), "{}: {line}", c.name);
        } else {
            assert_eq!(msg, "", "{}: unexpected expert info: {line}", c.name);
        }
    }
    assert_expert_summary_without(p, &checks, &["Errors", "Warns", "Chats"]);

    // Every frame: protocol stack and key fields.
    for (i, c) in cases.iter().enumerate() {
        assert_frame(p, i + 1, &checks, c.name, c.protocols, &c.fields);
    }

    // The display filters from protocols.md §11.1.
    let count = |filter: &str| {
        tshark(&["-r", p, "-Y", filter, "-T", "fields", "-e", "frame.number"])
            .lines()
            .count()
    };
    assert_eq!(
        count("hsrp.opcode == 0 && hsrp.state == 16 && hsrp.group == 10"),
        1
    );
    assert_eq!(count("hsrp2.state == 6"), 3);
    assert_eq!(count("hsrp.opcode == 1 || hsrp2.opcode == 1"), 1);
    assert_eq!(count("hsrp.opcode == 2 || hsrp2.opcode == 2"), 2);
    assert_eq!(count("hsrp.auth_data != \"cisco\""), 1); // the v1 MD5 frame (zero text)
}
