//! Reliable registration (TCP 4342) end to end in memory: ETR and Map-Server sessions on two
//! userspace TCP endpoints wired back to back, with time advancing (protocols.md §5, seed 003).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::ip;

use std::net::SocketAddr;

use roamer_control::config::{self, Syntax};
use roamer_control::lisp::map_server::{MapServer, Refusal};
use roamer_control::lisp::reliable::{
    CONNECT_TIMEOUT_MS, DownReason, EtrEvent, EtrSessions, MsEvent, MsSessions,
    RETRY_BACKOFF_MAX_MS, SessionRow, SessionState, TcpEndpoint, render_sessions, retry_backoff_ms,
};
use roamer_control::wire::lisp::{
    AuthKey, EidPrefix, EidRecord, KeyId, LocatorRecord, MapRegister,
};
use roamer_control::wire::reliable::{RejectReason, ReliableFrame, ReliableMessage};
use roamer_hal::Prefix;

const ETR: &str = "203.0.113.11";
const MS: &str = "209.165.201.31";
const TICK_MS: u64 = 10;

fn prefix(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn register(p: &str, key: &[u8]) -> Vec<u8> {
    let record = EidRecord::authoritative(
        EidPrefix::from_prefix(prefix(p)),
        1440,
        vec![LocatorRecord::local(ip(ETR), 1, 100)],
    );
    MapRegister::new(vec![record])
        .to_signed_vec(&AuthKey::new(KeyId::HmacSha1, key).unwrap())
        .unwrap()
}

fn map_server() -> MapServer {
    let (cfg, _) = config::parse(
        "feature lisp\nip lisp map-server\nlisp site A\n eid-prefix 10.10.10.0/24\n eid-prefix 10.20.20.0/24\n authentication-key 0 cisco\n",
        Syntax::Cli,
    )
    .unwrap();
    MapServer::new(&cfg)
}

/// An ETR node and a Map-Server node; packets cross between them every tick unless cut.
struct Net {
    now: u64,
    etr_ep: TcpEndpoint,
    ms_ep: TcpEndpoint,
    etr: EtrSessions,
    ms: MsSessions,
    etr_events: Vec<EtrEvent>,
    ms_events: Vec<MsEvent>,
    /// Every packet the ETR sent.
    etr_sent: Vec<Vec<u8>>,
    cut: bool,
    /// Answer Registrations through a real Map-Server.
    server: Option<MapServer>,
}

impl Net {
    fn new() -> Self {
        let mut etr_ep = TcpEndpoint::new(7, 0);
        etr_ep.set_addresses(&[ip(ETR)]);
        let mut ms_ep = TcpEndpoint::new(11, 0);
        ms_ep.set_addresses(&[ip(MS)]);
        Self {
            now: 0,
            etr_ep,
            ms_ep,
            etr: EtrSessions::new(),
            ms: MsSessions::new(),
            etr_events: Vec::new(),
            ms_events: Vec::new(),
            etr_sent: Vec::new(),
            cut: false,
            server: Some(map_server()),
        }
    }

    fn tick(&mut self) {
        self.now += TICK_MS;
        let mut ev = Vec::new();
        self.etr.poll(&mut self.etr_ep, self.now, &mut ev);
        self.etr_events.extend(ev);
        let mut ev = Vec::new();
        self.ms.poll(&mut self.ms_ep, self.now, &mut ev);
        for e in &ev {
            if let (
                MsEvent::Registration {
                    peer,
                    message_id,
                    map_register,
                },
                Some(server),
            ) = (e, self.server.as_mut())
            {
                answer(
                    &mut self.ms,
                    server,
                    *peer,
                    *message_id,
                    map_register,
                    self.now,
                );
            }
        }
        self.ms_events.extend(ev);
        let mut out = Vec::new();
        self.etr_ep.drain_ip(&mut out);
        self.etr_sent.extend(out.iter().cloned());
        if !self.cut {
            for p in &out {
                self.ms_ep.receive_ip(p);
            }
        }
        let mut out = Vec::new();
        self.ms_ep.drain_ip(&mut out);
        if !self.cut {
            for p in &out {
                self.etr_ep.receive_ip(p);
            }
        }
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms / TICK_MS {
            self.tick();
        }
    }

    fn ms_peer(&self) -> SocketAddr {
        let peers = self.ms.peers();
        assert_eq!(peers.len(), 1, "{peers:?}");
        peers[0]
    }

    fn etr_up(&mut self) {
        self.ms.allow(ip(ETR), self.now);
        self.etr.open(ip(MS), ip(ETR), self.now);
        self.run(200);
        assert!(self.etr.is_up(ip(MS)), "{:?}", self.etr_events);
    }
}

/// The daemon's part: MapServer::register over the reliable transport, then ACK or NACK.
fn answer(
    ms: &mut MsSessions,
    server: &mut MapServer,
    peer: SocketAddr,
    message_id: u32,
    bytes: &[u8],
    now: u64,
) {
    match server.register(bytes, peer, true, now) {
        Ok(accepted) => {
            for p in accepted.prefixes {
                assert!(ms.ack(peer, message_id, p));
            }
        }
        Err(refusal) => {
            let reason = match refusal {
                Refusal::Authentication { .. } => RejectReason::AuthenticationFailure,
                Refusal::UnknownSite(_) | Refusal::OutsideSite { .. } => {
                    RejectReason::NotValidSitePrefix
                }
                _ => RejectReason::NotDefined,
            };
            let reg = MapRegister::parse(bytes).unwrap();
            for r in reg.records {
                assert!(ms.nack(peer, message_id, r.prefix.prefix().unwrap(), reason));
            }
        }
    }
}

#[test]
fn session_up_refresh_registrations_acked() {
    let mut net = Net::new();
    net.ms.allow(ip(ETR), 0);
    net.etr.open(ip(MS), ip(ETR), 0);
    assert_eq!(net.etr.state(ip(MS)), Some(SessionState::Connecting));
    net.run(200);

    assert!(
        net.etr_events.contains(&EtrEvent::Up(ip(MS))),
        "{:?}",
        net.etr_events
    );
    assert!(net.etr_events.contains(&EtrEvent::RefreshRequested(ip(MS))));
    let peer = net.ms_peer();
    assert_eq!(peer.ip(), ip(ETR));
    assert_ne!(peer.port(), 4342);
    assert_eq!(net.ms_events, vec![MsEvent::Up(peer)]);

    // The xTR answers the refresh with one register per record.
    let r1 = register("10.10.10.0/24", b"cisco");
    let r2 = register("10.20.20.0/24", b"cisco");
    assert!(net.etr.send_registration(ip(MS), &r1));
    assert!(net.etr.send_registration(ip(MS), &r2));
    net.run(200);

    let regs: Vec<&Vec<u8>> = net
        .ms_events
        .iter()
        .filter_map(|e| match e {
            MsEvent::Registration {
                peer: p,
                map_register,
                ..
            } if *p == peer => Some(map_register),
            _ => None,
        })
        .collect();
    assert_eq!(regs, vec![&r1, &r2], "exact Map-Register octets");
    let acked: Vec<&EtrEvent> = net
        .etr_events
        .iter()
        .filter(|e| matches!(e, EtrEvent::Acked(..)))
        .collect();
    assert_eq!(
        acked,
        vec![
            &EtrEvent::Acked(ip(MS), prefix("10.10.10.0/24")),
            &EtrEvent::Acked(ip(MS), prefix("10.20.20.0/24"))
        ]
    );
    // The registrations are in the Map-Server's table, marked reliable.
    let server = net.server.as_ref().unwrap();
    let rows = server.rows(net.now, 0);
    assert!(rows.iter().filter(|r| r.registered && r.reliable).count() == 2);

    // show lisp session on both sides.
    let etr_rows = net.etr.rows(net.now);
    assert_eq!(etr_rows.len(), 1);
    let r = &etr_rows[0];
    assert_eq!(r.peer, SocketAddr::new(ip(MS), 4342));
    assert_eq!(r.state, SessionState::Up);
    assert_eq!((r.messages_in, r.messages_out, r.users), (3, 2, 2));
    let ms_rows = net.ms.rows(net.now);
    assert_eq!(ms_rows.len(), 1);
    assert_eq!(
        (
            ms_rows[0].messages_in,
            ms_rows[0].messages_out,
            ms_rows[0].users
        ),
        (2, 3, 2)
    );
    let text = render_sessions(&etr_rows, net.now + 3_600_000);
    assert_eq!(
        text,
        "Sessions for VRF default, total: 1, established: 1\n\
         Peer                State    Up/Down    In/Out    Users\n\
         209.165.201.31     Up       01:00:00   3/2       2\n"
    );

    // A register the Map-Server refuses comes back as a Reject with its reason.
    let bad = register("10.20.20.0/24", b"wrong");
    assert!(net.etr.send_registration(ip(MS), &bad));
    net.run(100);
    assert_eq!(
        net.etr_events.last(),
        Some(&EtrEvent::Rejected(
            ip(MS),
            prefix("10.20.20.0/24"),
            RejectReason::AuthenticationFailure
        ))
    );
    assert_eq!(net.etr.rows(net.now)[0].users, 1);

    // Idle for longer than the keep-alive timeout: the session stays up.
    net.run(180_000);
    assert!(net.etr.is_up(ip(MS)));
    assert!(net.ms.is_up(peer));
    assert!(
        !net.etr_events
            .iter()
            .any(|e| matches!(e, EtrEvent::Down(..)))
    );
}

#[test]
fn mapping_notification_reaches_the_etr() {
    let mut net = Net::new();
    net.etr_up();
    let peer = net.ms_peer();
    let record = EidRecord::authoritative(
        EidPrefix::from_prefix(prefix("10.10.10.5/32")),
        1440,
        vec![LocatorRecord::local(ip("198.51.100.21"), 1, 100)],
    );
    assert!(net.ms.notify(peer, [0; 16], 0, record.clone()));
    net.run(100);
    assert_eq!(
        net.etr_events.last(),
        Some(&EtrEvent::Notified(ip(MS), record))
    );
}

#[test]
fn disabled_map_server_leaves_the_etr_down_never_established() {
    let mut net = Net::new();
    net.ms.set_enabled(false);
    net.ms.allow(ip(ETR), 0);
    net.etr.open(ip(MS), ip(ETR), 0);
    net.run(CONNECT_TIMEOUT_MS + 100);
    assert_eq!(
        net.etr_events,
        vec![EtrEvent::Down(ip(MS), DownReason::Refused)]
    );
    assert!(net.ms_events.is_empty());
    let rows = net.etr.rows(net.now);
    assert_eq!(rows[0].state, SessionState::Down);
    assert_eq!(rows[0].since_ms, None);
    assert!(
        render_sessions(&rows, net.now).ends_with(
            "209.165.201.31     Down     never      0/0       1\n  \
             209.165.201.31: refused once, next try at the next acknowledged registration\n"
        ),
        "{}",
        render_sessions(&rows, net.now)
    );
    // Registrations are refused while the session is down.
    assert!(
        !net.etr
            .send_registration(ip(MS), &register("10.10.10.0/24", b"cisco"))
    );
    // The next acknowledged UDP register tries again; still refused.
    net.etr.open(ip(MS), ip(ETR), net.now);
    net.run(100);
    assert_eq!(net.etr.state(ip(MS)), Some(SessionState::Down));
    assert_eq!(net.etr.counters().connects, 2);
}

#[test]
fn a_map_server_that_keeps_refusing_is_tried_with_a_doubling_back_off_up_to_an_hour() {
    assert_eq!(
        (1..=9).map(retry_backoff_ms).collect::<Vec<_>>(),
        vec![
            0, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000
        ]
    );
    assert_eq!(retry_backoff_ms(u32::MAX), RETRY_BACKOFF_MAX_MS);
    let mut net = Net::new();
    net.ms.set_enabled(false);
    // Every acknowledged UDP registration (once a minute) asks for the session.
    let mut attempts = Vec::new();
    for minute in 0..=240u64 {
        // Nothing happens between the attempts: time jumps.
        net.now = minute * 60_000;
        let before = net.etr.counters().connects;
        net.etr.open(ip(MS), ip(ETR), net.now);
        net.run(1_000);
        if net.etr.counters().connects > before {
            attempts.push(minute);
        }
    }
    // Minutes 0 and 1 (the first refusal is retried at the next registration), then at the
    // first registration at least 2, 4, 8, 16, 32 minutes after each refusal, then hourly.
    assert_eq!(
        attempts,
        vec![0, 1, 4, 9, 18, 35, 68, 129, 190],
        "{attempts:?}"
    );
    assert_eq!(
        net.etr.counters().connects_deferred,
        241 - attempts.len() as u64
    );
    let rows = net.etr.rows(net.now);
    assert_eq!(rows[0].last_down, Some(DownReason::Refused));
    assert_eq!(rows[0].failures, 9);
    let retry = rows[0].retry_in_ms.expect("backing off");
    assert!(retry > 0 && retry <= RETRY_BACKOFF_MAX_MS, "{retry}");
    let text = render_sessions(&rows, net.now);
    assert!(
        text.contains("  209.165.201.31: refused 9 times in a row, next try in 00:"),
        "{text}"
    );
    // Accepted at last: the back-off is forgotten.
    net.ms.set_enabled(true);
    net.ms.allow(ip(ETR), net.now);
    net.now += RETRY_BACKOFF_MAX_MS;
    net.ms.allow(ip(ETR), net.now);
    net.etr.open(ip(MS), ip(ETR), net.now);
    net.run(500);
    assert!(net.etr.is_up(ip(MS)));
    let rows = net.etr.rows(net.now);
    assert_eq!((rows[0].failures, rows[0].retry_in_ms), (0, None));
    assert!(!render_sessions(&rows, net.now).contains("refused"));
}

#[test]
fn silent_map_server_times_out_after_the_connect_timeout() {
    let mut net = Net::new();
    net.cut = true;
    net.etr.open(ip(MS), ip(ETR), 0);
    net.run(CONNECT_TIMEOUT_MS - 100);
    assert_eq!(net.etr.state(ip(MS)), Some(SessionState::Connecting));
    assert!(net.etr_events.is_empty());
    net.run(200);
    assert_eq!(
        net.etr_events,
        vec![EtrEvent::Down(ip(MS), DownReason::ConnectTimeout)]
    );
    let rows = net.etr.rows(net.now);
    assert_eq!(
        (rows[0].state, rows[0].since_ms),
        (SessionState::Down, None)
    );
    // SYNs were sent (and retransmitted) in the meantime.
    assert!(net.etr_sent.len() >= 2);
}

#[test]
fn map_server_without_allow_resets_the_connection() {
    let mut net = Net::new();
    net.etr.open(ip(MS), ip(ETR), 0);
    net.run(500);
    assert_eq!(
        net.etr_events,
        vec![EtrEvent::Down(ip(MS), DownReason::Refused)]
    );
    assert!(net.ms_events.is_empty());
    assert_eq!(net.ms.counters().refused_not_allowed, 1);
    assert!(net.ms.rows(net.now).is_empty());

    // After the UDP registration was acknowledged, the next attempt is accepted.
    net.ms.allow(ip(ETR), net.now);
    net.etr.open(ip(MS), ip(ETR), net.now);
    net.run(200);
    assert!(net.etr.is_up(ip(MS)));
    assert_eq!(net.ms.counters().sessions_accepted, 1);

    // An allowance expires with the UDP registration it came from.
    let mut late = Net::new();
    late.ms.allow(ip(ETR), 0);
    late.run(200_000);
    late.etr.open(ip(MS), ip(ETR), late.now);
    late.run(500);
    assert_eq!(late.etr.state(ip(MS)), Some(SessionState::Down));
    assert_eq!(late.ms.counters().refused_not_allowed, 1);
}

#[test]
fn map_server_reset_takes_the_etr_down() {
    let mut net = Net::new();
    net.etr_up();
    let up_at = net.now;
    // The Map-Server restarts: a new stack with the same address and no sessions.
    let mut fresh = TcpEndpoint::new(99, net.now);
    fresh.set_addresses(&[ip(MS)]);
    net.ms_ep = fresh;
    net.ms = MsSessions::new();
    net.ms_events.clear();
    assert!(
        net.etr
            .send_registration(ip(MS), &register("10.10.10.0/24", b"cisco"))
    );
    net.run(200);
    assert_eq!(
        net.etr_events.last(),
        Some(&EtrEvent::Down(ip(MS), DownReason::Reset))
    );
    let rows = net.etr.rows(net.now);
    assert_eq!(rows[0].state, SessionState::Down);
    assert!(rows[0].since_ms.unwrap() > up_at);
    assert_eq!(net.etr.counters().resets, 1);
    // The new Map-Server, once it acknowledged a UDP register, accepts the next session.
    net.ms.allow(ip(ETR), net.now);
    net.etr.open(ip(MS), ip(ETR), net.now);
    net.run(200);
    assert!(net.etr.is_up(ip(MS)));
}

#[test]
fn map_server_disabled_while_up_closes_the_session() {
    let mut net = Net::new();
    net.etr_up();
    let peer = net.ms_peer();
    net.ms.set_enabled(false);
    net.run(200);
    assert_eq!(
        net.ms_events.last(),
        Some(&MsEvent::Down(peer, DownReason::Closed))
    );
    assert_eq!(
        net.etr_events.last(),
        Some(&EtrEvent::Down(ip(MS), DownReason::PeerClosed))
    );
    // Both stacks release the closed sockets.
    net.run(70_000);
    assert_eq!(net.ms_ep.socket_count(), 0);
    assert_eq!(net.etr_ep.socket_count(), 0);
}

#[test]
fn lost_map_server_times_out() {
    let mut net = Net::new();
    net.etr_up();
    net.cut = true;
    net.run(130_000);
    assert!(
        net.etr_events
            .contains(&EtrEvent::Down(ip(MS), DownReason::Reset)),
        "{:?}",
        net.etr_events
    );
}

#[test]
fn registration_segment_has_valid_checksums() {
    let mut net = Net::new();
    net.etr_up();
    let reg = register("10.10.10.0/24", b"cisco");
    net.etr_sent.clear();
    assert!(net.etr.send_registration(ip(MS), &reg));
    net.tick();
    let expected = ReliableFrame {
        msg_id: 1,
        message: ReliableMessage::Registration {
            map_register: reg.clone(),
        },
    }
    .to_vec()
    .unwrap();
    let segment = net
        .etr_sent
        .iter()
        .find(|p| {
            let (_, rest) = etherparse::Ipv4Header::from_slice(p).unwrap();
            let (_, payload) = etherparse::TcpHeader::from_slice(rest).unwrap();
            !payload.is_empty()
        })
        .expect("a data segment");
    let (ip4, rest) = etherparse::Ipv4Header::from_slice(segment).unwrap();
    assert_eq!(ip4.source, [203, 0, 113, 11]);
    assert_eq!(ip4.destination, [209, 165, 201, 31]);
    assert_eq!(ip4.protocol, etherparse::IpNumber::TCP);
    assert_eq!(ip4.calc_header_checksum(), ip4.header_checksum);
    assert_eq!(usize::from(ip4.total_len), segment.len());
    let (tcp, payload) = etherparse::TcpHeader::from_slice(rest).unwrap();
    assert_eq!(tcp.destination_port, 4342);
    assert!(tcp.source_port >= 49152);
    assert!(tcp.psh || tcp.ack);
    assert_eq!(tcp.calc_checksum_ipv4(&ip4, payload).unwrap(), tcp.checksum);
    assert_eq!(payload, &expected[..], "one Registration message, id 1");
    assert_eq!(&payload[..2], &[0x00, 0x11]);
    assert_eq!(&payload[payload.len() - 4..], &[0x9f, 0xac, 0xad, 0xe9]);
}

#[test]
fn map_server_session_limit_refuses_more() {
    // Two ETRs on their own stacks towards one Map-Server limited to one session.
    let etr2 = ip("198.51.100.21");
    let mut net = Net::new();
    net.ms.set_max_sessions(1);
    net.etr_up();
    let mut ep2 = TcpEndpoint::new(3, net.now);
    ep2.set_addresses(&[etr2]);
    let mut etr_b = EtrSessions::new();
    net.ms.allow(etr2, net.now);
    etr_b.open(ip(MS), etr2, net.now);
    let mut ev_b = Vec::new();
    for _ in 0..50 {
        net.tick();
        etr_b.poll(&mut ep2, net.now, &mut ev_b);
        let mut out = Vec::new();
        ep2.drain_ip(&mut out);
        for p in &out {
            net.ms_ep.receive_ip(p);
        }
        let mut ms_ev = Vec::new();
        net.ms.poll(&mut net.ms_ep, net.now, &mut ms_ev);
        let mut out = Vec::new();
        net.ms_ep.drain_ip(&mut out);
        for p in &out {
            // Route by destination.
            if p[16..20] == [198, 51, 100, 21] {
                ep2.receive_ip(p);
            } else {
                net.etr_ep.receive_ip(p);
            }
        }
    }
    assert_eq!(ev_b, vec![EtrEvent::Down(ip(MS), DownReason::Refused)]);
    assert_eq!(net.ms.counters().refused_full, 1);
    assert!(net.etr.is_up(ip(MS)));
}

#[test]
fn renderer_matches_seed_003() {
    let now = 10 * 3_600_000;
    let rows = vec![
        SessionRow {
            peer: "209.165.201.31:4342".parse().unwrap(),
            state: SessionState::Up,
            since_ms: Some(now - (5 * 3600 + 5 * 60 + 40) * 1000),
            age_ms: None,
            messages_in: 6,
            messages_out: 3,
            users: 2,
            last_down: None,
            failures: 0,
            retry_in_ms: None,
        },
        SessionRow {
            peer: "209.165.201.41:4342".parse().unwrap(),
            state: SessionState::Down,
            since_ms: None,
            age_ms: None,
            messages_in: 0,
            messages_out: 0,
            users: 1,
            last_down: None,
            failures: 0,
            retry_in_ms: None,
        },
    ];
    let seed = "Sessions for VRF default, total: 2, established: 1\n\
                Peer                State    Up/Down    In/Out    Users\n\
                209.165.201.31     Up       05:05:40   6/3       2\n\
                209.165.201.41     Down     never      0/0       1\n";
    assert_eq!(render_sessions(&rows, now), seed);
}
