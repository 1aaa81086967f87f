//! A real reliable-registration session between roamer's ETR and Map-Server stacks (handshake,
//! Refresh, two Registrations, two ACKs, keep-alives, close) captured to a pcap and decoded by
//! tshark with IP and TCP checksum verification on: every message decodes as lisp-tcp, no
//! checksum is bad, nothing is malformed, no expert info of warning or error severity.
//!
//! tshark is required: this test fails (it does not skip) when tshark is missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::IpAddr;

use roamer_control::lisp::reliable::{EtrEvent, EtrSessions, MsEvent, MsSessions, TcpEndpoint};
use roamer_control::wire::lisp::{
    AuthKey, EidPrefix, EidRecord, KeyId, LocatorRecord, MapRegister,
};
use roamer_hal::Prefix;
use roamer_test_support::pcap::{PcapWriter, tshark_ok as tshark};

const CHECKSUMS: [&str; 4] = [
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
];

const MAC_A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_B: [u8; 6] = [0x00, 0x22, 0x33, 0x44, 0x55, 0x66];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn register(p: &str) -> Vec<u8> {
    let record = EidRecord::authoritative(
        EidPrefix::from_prefix(p.parse().unwrap()),
        1440,
        vec![LocatorRecord::local(ip("10.1.1.1"), 1, 100)],
    );
    MapRegister::new(vec![record])
        .to_signed_vec(&AuthKey::new(KeyId::HmacSha1, b"cisco").unwrap())
        .unwrap()
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(ip);
    f
}

#[test]
fn tshark_decodes_a_live_session_cleanly() {
    let (etr_ip, ms_ip) = (ip("10.1.1.1"), ip("10.9.9.9"));
    let mut a = TcpEndpoint::new(0x1234_5678, 0);
    a.set_addresses(&[etr_ip]);
    let mut b = TcpEndpoint::new(0x8765_4321, 0);
    b.set_addresses(&[ms_ip]);
    let mut etr = EtrSessions::new();
    let mut ms = MsSessions::new();
    ms.allow(etr_ip, 0);
    etr.open(ms_ip, etr_ip, 0);

    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut now = 0u64;
    let mut sent = false;
    let mut acked = Vec::new();
    // 70 s: the session comes up, carries the messages and exchanges keep-alives.
    while now < 70_000 {
        now += 10;
        let mut ev = Vec::new();
        etr.poll(&mut a, now, &mut ev);
        for e in ev {
            match e {
                EtrEvent::RefreshRequested(m) if !sent => {
                    assert!(etr.send_registration(m, &register("172.16.1.0/24")));
                    assert!(etr.send_registration(m, &register("172.16.2.0/24")));
                    sent = true;
                }
                EtrEvent::Acked(_, p) => acked.push(p),
                _ => {}
            }
        }
        let mut mev = Vec::new();
        ms.poll(&mut b, now, &mut mev);
        for e in mev {
            if let MsEvent::Registration {
                peer,
                message_id,
                map_register,
            } = e
            {
                let reg = MapRegister::parse(&map_register).unwrap();
                let p = reg.records[0].prefix.prefix().unwrap();
                assert!(ms.ack(peer, message_id, p));
            }
        }
        if now == 69_000 {
            // The map-server goes away gracefully.
            ms.set_enabled(false);
        }
        let mut out = Vec::new();
        a.drain_ip(&mut out);
        for p in out {
            b.receive_ip(&p);
            frames.push((now, ethernet(MAC_B, MAC_A, &p)));
        }
        let mut out = Vec::new();
        b.drain_ip(&mut out);
        for p in out {
            a.receive_ip(&p);
            frames.push((now, ethernet(MAC_A, MAC_B, &p)));
        }
    }
    let want: Vec<Prefix> = vec![
        "172.16.1.0/24".parse().unwrap(),
        "172.16.2.0/24".parse().unwrap(),
    ];
    assert_eq!(acked, want);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reliable_session.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (t, f) in &frames {
        w.write_frame(
            1_700_000_000 + (t / 1000) as u32,
            (t % 1000 * 1000) as u32,
            f,
        )
        .unwrap();
    }
    drop(w);
    if let Some(keep) = std::env::var_os("ROAMER_KEEP_PCAP") {
        std::fs::copy(&path, keep).unwrap();
    }
    let p = path.to_str().unwrap();
    let count = |filter: &str| {
        tshark(&[&CHECKSUMS[..], &["-r", p, "-Y", filter]].concat())
            .lines()
            .count()
    };

    let summary = tshark(&[&CHECKSUMS[..], &["-r", p]].concat());
    eprintln!("{summary}");
    assert_eq!(summary.lines().count(), frames.len());
    assert_eq!(count("tcp"), frames.len());
    assert_eq!(count("tcp.flags.syn == 1 && tcp.flags.ack == 0"), 1);
    assert_eq!(count("tcp.flags.syn == 1 && tcp.flags.ack == 1"), 1);
    assert!(
        count("tcp.flags.fin == 1") >= 2,
        "closed with FIN both ways"
    );
    assert_eq!(count("tcp.flags.reset == 1"), 0);
    assert_eq!(
        count("ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\""),
        0
    );
    assert_eq!(count("ip.checksum.status == \"Good\""), frames.len());
    assert_eq!(count("tcp.checksum.status == \"Good\""), frames.len());
    assert_eq!(count("ip.ttl == 64"), frames.len());

    // The messages (several may share a segment), each decoded with its end marker.
    let fields = |field: &str| -> Vec<String> {
        tshark(
            &[
                &CHECKSUMS[..],
                &["-r", p, "-Y", "lisp-tcp", "-T", "fields", "-e", field],
            ]
            .concat(),
        )
        .lines()
        .flat_map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect()
    };
    assert_eq!(
        fields("lisp-tcp.message.type"),
        ["20", "17", "17", "18", "18"]
    );
    assert_eq!(fields("lisp-tcp.message.id"), ["1", "1", "2", "1", "2"]);
    assert_eq!(fields("lisp-tcp.message.registration_refresh.scope"), ["0"]);
    assert_eq!(
        fields("lisp-tcp.message.eid.ipv4"),
        ["172.16.1.0", "172.16.2.0"]
    );
    assert_eq!(fields("lisp-tcp.message.end_marker").len(), 5);
    let info = tshark(
        &[
            &CHECKSUMS[..],
            &[
                "-r",
                p,
                "-Y",
                "lisp-tcp",
                "-T",
                "fields",
                "-e",
                "_ws.col.Info",
            ],
        ]
        .concat(),
    );
    assert!(
        info.contains("Registration for 172.16.1.0/24; Msg: 2, Registration for 172.16.2.0/24"),
        "{info}"
    );
    // Keep-alives were exchanged while idle.
    assert!(count("tcp.analysis.keep_alive") >= 2);

    assert_eq!(count("_ws.malformed"), 0);
    let expert = tshark(
        &[
            &CHECKSUMS[..],
            &[
                "-r",
                p,
                "-Y",
                "_ws.expert.severity >= 0x600000",
                "-T",
                "fields",
                "-e",
                "_ws.expert.message",
            ],
        ]
        .concat(),
    );
    assert!(expert.trim().is_empty(), "expert info: {expert}");
}
