//! Every kind of LISP control message roamer emits, in Ethernet/IP/UDP 4342 frames (and the
//! reliable-transport messages in a TCP 4342 session), written to a pcap and decoded by tshark:
//! each frame must decode as the expected message with the expected key fields, with IP, UDP and
//! TCP checksum verification on, and there must be no malformed packet and no expert info at all.
//!
//! tshark is required: this test fails (it does not skip) when tshark is missing.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_control::wire::lisp::{
    Address, AuthKey, Authentication, Ecm, EidPrefix, EidRecord, KeyId, LispMessage, LocatorRecord,
    MapNotify, MapRegister, MapReply, MapRequest, XtrSiteId, verify,
};
use roamer_control::wire::reliable::{RefreshScope, RejectReason, ReliableFrame, ReliableMessage};
use roamer_test_support::pcap::{CHECK_CHECKSUMS as CHECKSUMS, PcapWriter, tshark_ok as tshark};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("ipv6"))
}

const MAC_A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_B: [u8; 6] = [0x00, 0x22, 0x33, 0x44, 0x55, 0x66];

fn udp_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let dst_mac = match dst {
        IpAddr::V4(a) if a.is_multicast() => {
            let o = a.octets();
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
        }
        _ => MAC_B,
    };
    let eth = etherparse::PacketBuilder::ethernet2(MAC_A, dst_mac);
    let builder = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), ttl),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), ttl),
        _ => panic!("mixed families"),
    }
    .udp(sport, dport);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).expect("build frame");
    out
}

/// A TCP segment with PSH+ACK between ETR and MS.
fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, dst, 64)
        .tcp(ports.0, ports.1, seq, 64240)
        .psh()
        .ack(ack);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build segment");
    out
}

fn record(eid: Address, mask_len: u8, rloc: IpAddr) -> EidRecord {
    EidRecord::authoritative(
        EidPrefix { eid, mask_len },
        1440,
        vec![LocatorRecord::local(rloc, 1, 100)],
    )
}

struct Expect {
    /// `lisp.type` or `lisp-tcp.message.type` value.
    kind: &'static str,
    /// Display-filter clauses that must all hold for this frame.
    filters: Vec<String>,
}

fn build() -> (Vec<Vec<u8>>, Vec<Expect>) {
    let sha1 = AuthKey::new(KeyId::HmacSha1, b"cisco").expect("key");
    let sha256 = AuthKey::new(KeyId::HmacSha256, b"cisco").expect("key");
    let etr = v4(10, 1, 1, 1);
    let ms = v4(10, 9, 9, 9);
    let itr = v4(10, 2, 2, 2);
    let xtr_b = v4(10, 3, 3, 3);
    let mut frames = Vec::new();
    let mut expect = Vec::new();
    let mut push = |f: Vec<u8>, kind: &'static str, filters: Vec<String>| {
        frames.push(f);
        expect.push(Expect { kind, filters });
    };

    // 1. Map-Register, §3.11 worked example (SHA-1).
    let reg = MapRegister::new(vec![record(Address::Ip(v4(172, 16, 1, 0)), 24, etr)]);
    let b = reg.to_signed_vec(&sha1).expect("sign");
    verify(&b, &sha1).expect("verify");
    push(
        udp_frame(etr, ms, 61000, 4342, 255, &b),
        "3",
        vec![
            "lisp.mreg.flags.wmn == 1".into(),
            "lisp.mreg.flags.pmr == 0".into(),
            "lisp.nonce == 0".into(),
            "lisp.keyid == 1".into(),
            "lisp.authlen == 20".into(),
            "lisp.auth == 2d:e2:47:31:50:d1:b1:67:e7:e4:24:0b:97:a8:26:07:45:62:dd:71".into(),
            "lisp.records == 1".into(),
            "lisp.mapping.ttl == 1440".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.0".into(),
            "lisp.mapping.eid.masklen == 24".into(),
            "lisp.mapping.auth == 1".into(),
            "lisp.loc.priority == 1 && lisp.loc.weight == 100".into(),
            "lisp.loc.flags.local == 1 && lisp.loc.flags.reach == 1".into(),
            "lisp.loc.locator == \"10.1.1.1\"".into(),
        ],
    );

    // 2. Map-Register, SHA-256, proxy-reply, nonce.
    let mut reg2 = reg.clone();
    reg2.proxy_reply = true;
    reg2.nonce = 0x1122_3344_5566_7788;
    let b = reg2.to_signed_vec(&sha256).expect("sign");
    push(
        udp_frame(etr, ms, 61000, 4342, 255, &b),
        "3",
        vec![
            "lisp.mreg.flags.pmr == 1".into(),
            "lisp.nonce == 0x1122334455667788".into(),
            "lisp.keyid == 2".into(),
            "lisp.authlen == 32".into(),
        ],
    );

    // 3. Map-Register, EID in IID 101 (LCAF), with the xTR-ID/Site-ID trailer.
    let mut reg3 = MapRegister::new(vec![record(
        Address::InstanceId {
            iid: 101,
            mask_len: 0,
            addr: Some(v4(172, 16, 1, 0)),
        },
        24,
        etr,
    )]);
    let mut xtr_id = [0u8; 16];
    for (i, x) in xtr_id.iter_mut().enumerate() {
        *x = i as u8;
    }
    reg3.xtr = Some(XtrSiteId { xtr_id, site_id: 1 });
    let b = reg3.to_signed_vec(&sha1).expect("sign");
    push(
        udp_frame(etr, ms, 61000, 4342, 255, &b),
        "3",
        vec![
            "lisp.mreg.flags.xtrid == 1".into(),
            "lisp.lcaf.type == 2".into(),
            "lisp.lcaf.iid == 101".into(),
            "lisp.lcaf.iid.ipv4 == 172.16.1.0".into(),
            "lisp.xtrid == 00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f".into(),
            "lisp.siteid == 00:00:00:00:00:00:00:01".into(),
        ],
    );

    // 4. Map-Notify acknowledging the register (MS → ETR, 4342 → 4342).
    let notify = MapNotify::acknowledging(&reg);
    let b = notify.to_signed_vec(&sha1).expect("sign");
    push(
        udp_frame(ms, etr, 4342, 4342, 255, &b),
        "4",
        vec![
            "lisp.nonce == 0".into(),
            "lisp.keyid == 1".into(),
            "lisp.authlen == 20".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.0".into(),
            "lisp.loc.locator == \"10.1.1.1\"".into(),
        ],
    );

    // 5. Site-based multicast Map-Notify (§6): a dynamic-EID /32 to 239.1.1.254, TTL 1.
    let site = MapNotify {
        ack: false,
        nonce: 0x0102_0304_0506_0708,
        auth: Default::default(),
        records: vec![record(Address::Ip(v4(172, 16, 1, 10)), 32, etr)],
        xtr: None,
    };
    let b = site.to_signed_vec(&sha1).expect("sign");
    push(
        udp_frame(etr, v4(239, 1, 1, 254), 4342, 4342, 1, &b),
        "4",
        vec![
            "ip.dst == 239.1.1.254 && ip.ttl == 1".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.10".into(),
            "lisp.mapping.eid.masklen == 32".into(),
        ],
    );

    // 6. Map-Notify-Ack (type 5; Wireshark 4.0 labels it unknown but must not complain).
    let ack = MapNotify::ack_of(&notify);
    let b = ack.to_signed_vec(&sha1).expect("sign");
    push(udp_frame(etr, ms, 4342, 4342, 255, &b), "5", vec![]);

    // 7. SMR, §4.7 (S+P+D like Cisco), xTR-A → ITR-R.
    let smr = common::smr_struct();
    assert_eq!(smr.itr_rlocs, [etr]);
    push(
        udp_frame(etr, itr, 4342, 4342, 255, &smr.to_vec().expect("emit")),
        "1",
        vec![
            "lisp.mreq.flags.smr == 1".into(),
            "lisp.mreq.flags.probe == 1".into(),
            "lisp.mreq.flags.smri == 0".into(),
            "lisp.mreq.res == 0x001".into(),
            "lisp.nonce == 0x68e45971e3df4931".into(),
            "lisp.irc == 0".into(),
            "lisp.mreq.srceid.ipv4 == 172.16.1.10".into(),
            "lisp.mreq.itr_rloc_ipv4 == 10.1.1.1".into(),
            "lisp.mreq.record.prefix.ipv4 == 192.168.0.22".into(),
            "lisp.mreq.record.prefix.length == 32".into(),
        ],
    );

    // 8. SMR-invoked Map-Request in an ECM, §4.7 (ITR-R → MR).
    let smri = common::smr_invoked_struct();
    assert_eq!(smri.itr_rlocs, [itr]);
    let ecm = Ecm {
        ddt: false,
        inner_src: itr,
        inner_dst: v4(172, 16, 1, 10),
        inner_ttl: 64,
        inner_src_port: 4342,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(smri.clone())),
    };
    push(
        udp_frame(itr, ms, 61001, 4342, 255, &ecm.to_vec().expect("emit")),
        "8",
        vec![
            "lisp.ecm.flags.sec == 0".into(),
            "ip.dst == 172.16.1.10".into(),
            "lisp.type == 1".into(),
            "lisp.mreq.flags.smri == 1".into(),
            "lisp.nonce == 0x4d04ab2f99ff6ff5".into(),
            "lisp.mreq.record.prefix.ipv4 == 172.16.1.10".into(),
        ],
    );

    // 9. Map-Reply from xTR-B, §4.7.
    let reply = MapReply {
        probe: false,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce: 0x4D04_AB2F_99FF_6FF5,
        records: vec![record(Address::Ip(v4(172, 16, 1, 10)), 32, xtr_b)],
    };
    push(
        udp_frame(xtr_b, itr, 4342, 4342, 255, &reply.to_vec().expect("emit")),
        "2",
        vec![
            "lisp.nonce == 0x4d04ab2f99ff6ff5".into(),
            "lisp.mrep.flags.probe == 0".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.10".into(),
            "lisp.mapping.loccnt == 1".into(),
            "lisp.loc.locator == \"10.3.3.3\"".into(),
        ],
    );

    // 10. Negative Map-Reply, natively-forward, TTL 15, 10.0.0.0/8 (MS → ITR's source port).
    let neg = common::neg_map_reply_struct();
    push(
        udp_frame(ms, itr, 4342, 61001, 255, &neg.to_vec().expect("emit")),
        "2",
        vec![
            "lisp.mapping.loccnt == 0 && lisp.mapping.act == 1".into(),
            "lisp.mapping.ttl == 15".into(),
            "lisp.mapping.eid.ipv4 == 10.0.0.0 && lisp.mapping.eid.masklen == 8".into(),
        ],
    );

    // 11. RLOC-probe Map-Request over IPv6 with IPv6 EIDs and an own-mapping (M) record.
    let probe = MapRequest {
        probe: true,
        map_reply_record: Some(record(
            Address::Ip(v6("2001:db8:200::")),
            48,
            v6("2001:db8::1"),
        )),
        ..MapRequest::query(
            0xABCD,
            Address::None,
            vec![v6("2001:db8::1")],
            vec![EidPrefix {
                eid: Address::Ip(v6("2001:db8:100::")),
                mask_len: 48,
            }],
        )
    };
    push(
        udp_frame(
            v6("2001:db8::1"),
            v6("2001:db8::3"),
            4342,
            4342,
            64,
            &probe.to_vec().expect("emit"),
        ),
        "1",
        vec![
            "lisp.mreq.flags.probe == 1 && lisp.mreq.flags.mrp == 1".into(),
            "lisp.mreq.srceid.afi == 0".into(),
            "lisp.mreq.itr_rloc_ipv6 == 2001:db8::1".into(),
            "lisp.mreq.record.prefix.ipv6 == 2001:db8:100::".into(),
            "lisp.mapping.eid.ipv6 == 2001:db8:200::".into(),
        ],
    );

    // 12. RLOC-probe reply (P, A=1, probed locator p=1) over IPv6.
    let mut probed = record(Address::Ip(v6("2001:db8:100::")), 48, v6("2001:db8::3"));
    probed.locators[0].probed = true;
    let preply = MapReply {
        probe: true,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce: 0xABCD,
        records: vec![probed],
    };
    push(
        udp_frame(
            v6("2001:db8::3"),
            v6("2001:db8::1"),
            4342,
            4342,
            64,
            &preply.to_vec().expect("emit"),
        ),
        "2",
        vec![
            "lisp.mrep.flags.probe == 1".into(),
            "lisp.loc.flags.probe == 1".into(),
            "lisp.mapping.eid.ipv6 == 2001:db8:100::".into(),
        ],
    );

    // 13. ECM with an IPv6 inner header carrying a Map-Request in IID 7.
    let mut req6 = smri;
    req6.source_eid = Address::InstanceId {
        iid: 7,
        mask_len: 0,
        addr: Some(v6("2001:db8:5::1")),
    };
    req6.itr_rlocs = vec![v6("2001:db8::2")];
    req6.records = vec![EidPrefix {
        eid: Address::InstanceId {
            iid: 7,
            mask_len: 0,
            addr: Some(v6("2001:db8:6::a")),
        },
        mask_len: 128,
    }];
    req6.smr_invoked = false;
    let ecm6 = Ecm {
        ddt: false,
        inner_src: v6("2001:db8::2"),
        inner_dst: v6("2001:db8:6::a"),
        inner_ttl: 64,
        inner_src_port: 61002,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(req6)),
    };
    push(
        udp_frame(
            v6("2001:db8::2"),
            v6("2001:db8::9"),
            61002,
            4342,
            64,
            &ecm6.to_vec().expect("emit"),
        ),
        "8",
        vec![
            "ipv6.dst == 2001:db8:6::a".into(),
            "lisp.lcaf.iid == 7".into(),
            "lisp.mreq.itr_rloc_ipv6 == 2001:db8::2".into(),
        ],
    );

    // 13a. RFC 9437: a subscribing Map-Request (I and N bits, xTR-ID and Site-ID appended)
    // in an ECM, ITR → MR, as roamer's ITR sends it with `ip lisp itr subscribe`.
    let sub_id = XtrSiteId {
        xtr_id: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 2, 2, 2],
        site_id: 0,
    };
    let subscribing = MapRequest {
        subscribe: Some(sub_id),
        ..MapRequest::query(
            0x1111_2222_3333_4444,
            Address::None,
            vec![itr],
            vec![EidPrefix {
                eid: Address::Ip(v4(172, 16, 1, 10)),
                mask_len: 32,
            }],
        )
    };
    let ecm_sub = Ecm {
        ddt: false,
        inner_src: itr,
        inner_dst: v4(172, 16, 1, 10),
        inner_ttl: 64,
        inner_src_port: 4342,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(subscribing)),
    };
    push(
        udp_frame(itr, ms, 4342, 4342, 64, &ecm_sub.to_vec().expect("emit")),
        "8",
        vec![
            "lisp.nonce == 0x1111222233334444".into(),
            "lisp.mreq.record.prefix.ipv4 == 172.16.1.10".into(),
        ],
    );

    // 13b. The publication after a move: Map-Notify with the subscriber's xTR-ID, MS → ITR.
    let publication = MapNotify {
        ack: false,
        nonce: 0x5555_6666_7777_8888,
        auth: Authentication::none(),
        records: vec![record(Address::Ip(v4(172, 16, 1, 10)), 32, xtr_b)],
        xtr: Some(sub_id),
    };
    let b = publication.to_signed_vec(&sha1).expect("sign");
    push(
        udp_frame(ms, itr, 4342, 4342, 64, &b),
        "4",
        vec![
            "lisp.nonce == 0x5555666677778888".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.10".into(),
            "lisp.xtrid == 00:00:00:00:00:00:00:00:00:00:ff:ff:0a:02:02:02".into(),
        ],
    );

    // 13c. RLOC-probe as roamer's ITR sends it: plain, IPv4, Source-EID AFI 0, cached prefix.
    let probe4 = MapRequest {
        probe: true,
        ..MapRequest::query(
            0x9999_aaaa_bbbb_cccc,
            Address::None,
            vec![itr],
            vec![EidPrefix {
                eid: Address::Ip(v4(172, 16, 1, 0)),
                mask_len: 24,
            }],
        )
    };
    push(
        udp_frame(itr, etr, 4342, 4342, 64, &probe4.to_vec().expect("emit")),
        "1",
        vec![
            "lisp.mreq.flags.probe == 1".into(),
            "lisp.mreq.flags.smr == 0".into(),
            "lisp.mreq.record.prefix.length == 24".into(),
        ],
    );

    // 13d. The ETR's answer for an EID it no longer has: P bit, no record.
    let empty = MapReply {
        probe: true,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce: 0x9999_aaaa_bbbb_cccc,
        records: Vec::new(),
    };
    push(
        udp_frame(etr, itr, 4342, 4342, 64, &empty.to_vec().expect("emit")),
        "2",
        vec!["lisp.mrep.flags.probe == 1".into()],
    );

    // 14–. Reliable transport session over TCP 4342 (ETR 10.1.1.1:40000 is the client).
    let (c, s) = ([10, 1, 1, 1], [10, 9, 9, 9]);
    let (cp, sp) = (40000u16, 4342u16);
    // No handshake in the capture: Wireshark reports a SYN as expert info (Chat), and lisp-tcp
    // decodes mid-session segments without one.
    let (mut cseq, mut sseq) = (1001u32, 5001u32);
    let mut msgs: Vec<(bool, ReliableFrame, &'static str, Vec<String>)> = Vec::new();
    let pfx = |c3: u8| EidPrefix {
        eid: Address::Ip(v4(172, 16, c3, 0)),
        mask_len: 24,
    };
    msgs.push((
        false,
        ReliableFrame {
            msg_id: 1,
            message: ReliableMessage::RegistrationRefresh {
                scope: RefreshScope::All,
                rejected_only: false,
                eid: None,
            },
        },
        "20",
        vec![
            "lisp-tcp.message.id == 1".into(),
            "lisp-tcp.message.registration_refresh.scope == 0".into(),
        ],
    ));
    msgs.push((
        true,
        ReliableFrame {
            msg_id: 2,
            message: ReliableMessage::Registration {
                map_register: reg.to_signed_vec(&sha1).expect("sign"),
            },
        },
        "17",
        vec![
            "lisp-tcp.message.id == 2".into(),
            "lisp-tcp.message.length == 76".into(),
            "lisp.keyid == 1".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.0".into(),
        ],
    ));
    msgs.push((
        false,
        ReliableFrame {
            msg_id: 3,
            message: ReliableMessage::RegistrationAck { eid: pfx(1) },
        },
        "18",
        vec![
            "lisp-tcp.message.eid.ipv4 == 172.16.1.0".into(),
            "lisp-tcp.message.eid.prefix.length == 24".into(),
        ],
    ));
    msgs.push((
        false,
        ReliableFrame {
            msg_id: 4,
            message: ReliableMessage::RegistrationNack {
                reason: RejectReason::AuthenticationFailure,
                eid: pfx(9),
            },
        },
        "19",
        vec![
            "lisp-tcp.message.registration_reject.reason == 2".into(),
            "lisp-tcp.message.eid.ipv4 == 172.16.9.0".into(),
        ],
    ));
    msgs.push((
        false,
        ReliableFrame {
            msg_id: 5,
            message: common::refresh_iid101(),
        },
        "20",
        vec![
            "lisp-tcp.message.registration_refresh.scope == 4".into(),
            "lisp-tcp.message.registration_refresh.flags.rejected == 1".into(),
            "lisp.lcaf.iid == 101".into(),
        ],
    ));
    msgs.push((
        false,
        ReliableFrame {
            msg_id: 6,
            message: ReliableMessage::MappingNotification {
                xtr_id: [0xAB; 16],
                site_id: 7,
                record: record(Address::Ip(v4(172, 16, 1, 10)), 32, xtr_b),
            },
        },
        "21",
        vec![
            "lisp-tcp.message.xtrid == ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab".into(),
            "lisp.mapping.eid.ipv4 == 172.16.1.10".into(),
        ],
    ));
    msgs.push((
        true,
        ReliableFrame {
            msg_id: 7,
            message: ReliableMessage::ErrorNotification {
                code: 1,
                offending_type: 21,
                offending_length: 64,
                offending_id: 6,
                offending_data: vec![],
            },
        },
        "16",
        vec![
            "lisp-tcp.message.err.code == 1".into(),
            "lisp-tcp.message.err.offending_msg.id == 6".into(),
        ],
    ));
    for (from_client, msg, kind, mut filters) in msgs {
        let bytes = msg.to_vec().expect("emit");
        filters.push("lisp-tcp.message.end_marker == 0x9facade9".into());
        let f = if from_client {
            let f = tcp_frame(c, s, (cp, sp), cseq, sseq, &bytes);
            cseq += bytes.len() as u32;
            f
        } else {
            let f = tcp_frame(s, c, (sp, cp), sseq, cseq, &bytes);
            sseq += bytes.len() as u32;
            f
        };
        push(f, kind, filters);
    }
    (frames, expect)
}

#[test]
fn tshark_decodes_every_control_message_cleanly() {
    let (frames, expect) = build();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lisp_control.pcap");
    let file = std::fs::File::create(&path).expect("pcap file");
    let mut w = PcapWriter::new(file).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        w.write_frame(1_700_000_000 + i as u32, 0, f)
            .expect("pcap frame");
    }
    drop(w);
    if let Some(keep) = std::env::var_os("ROAMER_KEEP_PCAP") {
        std::fs::copy(&path, keep).expect("copy pcap");
    }
    let p = path.to_str().expect("utf-8 path");

    // One summary line per frame.
    let summary = tshark(&[&CHECKSUMS[..], &["-r", p]].concat());
    eprintln!("{summary}");
    assert_eq!(summary.lines().count(), frames.len());

    // Message type per frame.
    let fields = tshark(
        &[
            &CHECKSUMS[..],
            &[
                "-r",
                p,
                "-T",
                "fields",
                "-E",
                "occurrence=f",
                "-e",
                "frame.number",
                "-e",
                "lisp.type",
                "-e",
                "lisp-tcp.message.type",
                "-e",
                "_ws.col.Protocol",
            ],
        ]
        .concat(),
    );
    let rows: BTreeMap<usize, Vec<String>> = fields
        .lines()
        .map(|l| {
            let cols: Vec<String> = l.split('\t').map(str::to_owned).collect();
            (cols[0].parse().expect("frame number"), cols)
        })
        .collect();
    for (i, e) in expect.iter().enumerate() {
        let row = &rows[&(i + 1)];
        match e.kind {
            "tcp" => assert_eq!(row[3], "TCP", "frame {}: {row:?}", i + 1),
            k if k.parse::<u16>().expect("kind") >= 16 => {
                assert_eq!(row[2], k, "frame {}: {row:?}", i + 1)
            }
            k => {
                // lisp.type is a 24-bit field; its value is the message type (the ECM's first
                // occurrence is the outer type 8).
                let t: u32 = parse_num(&row[1]);
                assert_eq!(t.to_string(), k, "frame {}: {row:?}", i + 1);
            }
        }
    }

    // Key fields per frame: each frame must match the conjunction of its clauses.
    for (i, e) in expect.iter().enumerate() {
        if e.filters.is_empty() {
            continue;
        }
        let n = i + 1;
        let filter = format!(
            "frame.number == {n} && {}",
            e.filters
                .iter()
                .map(|f| format!("({f})"))
                .collect::<Vec<_>>()
                .join(" && ")
        );
        let out = tshark(&[&CHECKSUMS[..], &["-r", p, "-Y", &filter]].concat());
        if out.lines().count() != 1 {
            // Report the first failing clause.
            for f in &e.filters {
                let single = format!("frame.number == {n} && ({f})");
                let o = tshark(&[&CHECKSUMS[..], &["-r", p, "-Y", &single]].concat());
                assert_eq!(o.lines().count(), 1, "frame {n}: `{f}` does not hold");
            }
            panic!("frame {n}: {filter}");
        }
    }

    // Every UDP frame is LISP control, every TCP segment lisp-tcp.
    let lisp = tshark(&[&CHECKSUMS[..], &["-r", p, "-Y", "lisp || lisp-tcp"]].concat());
    assert_eq!(lisp.lines().count(), frames.len(), "{lisp}");

    // No malformed packet, no expert info of any severity.
    let bad = tshark(
        &[
            &CHECKSUMS[..],
            &["-r", p, "-Y", "_ws.malformed || _ws.expert"],
        ]
        .concat(),
    );
    assert!(bad.trim().is_empty(), "malformed or expert frames:\n{bad}");
    let expert = tshark(&[&CHECKSUMS[..], &["-r", p, "-q", "-z", "expert"]].concat());
    assert!(
        !expert.contains("Errors")
            && !expert.contains("Warns")
            && !expert.contains("Notes")
            && !expert.contains("Chats"),
        "expert info:\n{expert}"
    );
    let verbose = tshark(&[&CHECKSUMS[..], &["-r", p, "-V"]].concat());
    assert!(!verbose.contains("Malformed"), "{verbose}");
    assert!(!verbose.contains("[Expert Info"), "{verbose}");
    assert!(verbose.contains("Message End Marker: 0x9facade9 (correct)"));
    for line in [
        "Map-Register for 172.16.1.0/24",
        "Map-Register for [101] 172.16.1.0/24",
        "Map-Notify for 172.16.1.0/24",
        "Map-Notify for 172.16.1.10/32",
        "Map-Request (SMR) (RLOC-probe) for 192.168.0.22/32",
        "Encapsulated Map-Request (SMR-invoked) for 172.16.1.10/32",
        "Map-Reply for 10.0.0.0/8",
        "Map-Reply (RLOC-probe reply) for 2001:db8:100::/48",
        "Encapsulated Map-Request for [7] 2001:db8:6::a/128",
        "Msg: 1, Registration Refresh, Scope: 0",
        "Msg: 2, Registration for 172.16.1.0/24",
        "Msg: 5, Registration Refresh, Scope: 4 (rejected only)",
    ] {
        assert!(summary.contains(line), "summary lacks `{line}`:\n{summary}");
    }
}

fn parse_num(s: &str) -> u32 {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        u32::from_str_radix(h, 16).unwrap_or(u32::MAX)
    } else {
        s.parse().unwrap_or(u32::MAX)
    }
}
