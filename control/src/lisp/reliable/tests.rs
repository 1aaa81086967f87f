use super::*;

const ETR: &str = "203.0.113.11";
const MS: &str = "209.165.201.31";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Pair {
    now: u64,
    a: TcpEndpoint,
    b: TcpEndpoint,
    etr: EtrSessions,
    ms: MsSessions,
    etr_events: Vec<EtrEvent>,
    ms_events: Vec<MsEvent>,
}

impl Pair {
    fn new() -> Self {
        let mut a = TcpEndpoint::new(1, 0);
        a.set_addresses(&[ip(ETR)]);
        let mut b = TcpEndpoint::new(2, 0);
        b.set_addresses(&[ip(MS)]);
        Self {
            now: 0,
            a,
            b,
            etr: EtrSessions::new(),
            ms: MsSessions::new(),
            etr_events: Vec::new(),
            ms_events: Vec::new(),
        }
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now += 10;
            self.etr.poll(&mut self.a, self.now, &mut self.etr_events);
            self.ms.poll(&mut self.b, self.now, &mut self.ms_events);
            let mut out = Vec::new();
            self.a.drain_ip(&mut out);
            for p in &out {
                self.b.receive_ip(p);
            }
            out.clear();
            self.b.drain_ip(&mut out);
            for p in &out {
                self.a.receive_ip(p);
            }
        }
    }

    fn up() -> (Self, SocketAddr) {
        let mut p = Self::new();
        p.ms.allow(ip(ETR), 0);
        p.etr.open(ip(MS), ip(ETR), 0);
        p.run(200);
        assert!(p.etr.is_up(ip(MS)));
        let peers = p.ms.peers();
        assert_eq!(peers.len(), 1);
        (p, peers[0])
    }
}

/// Type 17, Length 8, then not the end marker.
const GARBAGE: [u8; 8] = [0x00, 0x11, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef];

#[test]
fn garbage_from_the_map_server_resets_the_session() {
    let (mut p, peer) = Pair::up();
    let s = p.ms.sessions.get_mut(&peer).unwrap();
    assert!(s.stream.queue_raw(&GARBAGE));
    p.run(100);
    assert_eq!(
        p.etr_events.last(),
        Some(&EtrEvent::Down(ip(MS), DownReason::FramingError))
    );
    assert_eq!(p.etr.counters().framing_errors, 1);
    assert_eq!(
        p.ms_events.last(),
        Some(&MsEvent::Down(peer, DownReason::Reset))
    );
    assert!(p.ms.rows(p.now).is_empty());
    // Next acknowledged UDP register: a new session with a fresh decoder.
    p.ms.allow(ip(ETR), p.now);
    p.etr.open(ip(MS), ip(ETR), p.now);
    p.run(200);
    assert!(p.etr.is_up(ip(MS)));
}

#[test]
fn garbage_from_the_etr_resets_the_session() {
    let (mut p, peer) = Pair::up();
    let s = p.etr.sessions.get_mut(&ip(MS)).unwrap();
    assert!(s.stream.queue_raw(&GARBAGE));
    p.run(100);
    assert_eq!(
        p.ms_events.last(),
        Some(&MsEvent::Down(peer, DownReason::FramingError))
    );
    assert_eq!(p.ms.counters().framing_errors, 1);
    assert_eq!(
        p.etr_events.last(),
        Some(&EtrEvent::Down(ip(MS), DownReason::Reset))
    );
}

#[test]
fn etr_close_is_seen_by_the_map_server() {
    let (mut p, peer) = Pair::up();
    p.etr.close(&mut p.a, ip(MS));
    assert_eq!(p.etr.state(ip(MS)), None);
    p.run(100);
    assert_eq!(
        p.ms_events.last(),
        Some(&MsEvent::Down(peer, DownReason::PeerClosed))
    );
    assert!(
        p.etr_events
            .iter()
            .all(|e| !matches!(e, EtrEvent::Down(..)))
    );
}

#[test]
fn a_new_session_from_the_same_etr_replaces_the_old_one() {
    let (mut p, old) = Pair::up();
    // The ETR restarts: new stack, same address; the old session lingers on the MS.
    let mut a = TcpEndpoint::new(5, p.now);
    a.set_addresses(&[ip(ETR)]);
    p.a = a;
    p.etr = EtrSessions::new();
    p.ms.allow(ip(ETR), p.now);
    p.etr.open(ip(MS), ip(ETR), p.now);
    p.run(200);
    assert!(p.etr.is_up(ip(MS)));
    let peers = p.ms.peers();
    assert_eq!(peers.len(), 1);
    assert_ne!(peers[0], old);
    assert!(
        p.ms_events
            .contains(&MsEvent::Down(old, DownReason::Replaced))
    );
}

#[test]
fn local_address_removed_takes_the_session_down() {
    let (mut p, _) = Pair::up();
    p.a.set_addresses(&[]);
    p.run(20);
    assert_eq!(
        p.etr_events.last(),
        Some(&EtrEvent::Down(ip(MS), DownReason::NoLocalAddress))
    );
    // Opening from an address that is not ours fails at once.
    p.etr.open(ip(MS), ip(ETR), p.now);
    p.run(20);
    assert_eq!(
        p.etr_events.last(),
        Some(&EtrEvent::Down(ip(MS), DownReason::NoLocalAddress))
    );
}

#[test]
fn xtr_and_map_server_on_one_switch_talk_over_loopback() {
    let mut ep = TcpEndpoint::new(4, 0);
    ep.set_addresses(&[ip(ETR), ip(MS)]);
    let (mut etr, mut ms) = (EtrSessions::new(), MsSessions::new());
    let (mut ev, mut mev) = (Vec::new(), Vec::new());
    // The Map-Server listens before the xTR's first UDP register is acknowledged.
    ms.poll(&mut ep, 0, &mut mev);
    ms.allow(ip(ETR), 0);
    etr.open(ip(MS), ip(ETR), 0);
    let mut out = Vec::new();
    for now in 1..=20 {
        etr.poll(&mut ep, now * 10, &mut ev);
        ms.poll(&mut ep, now * 10, &mut mev);
        ep.drain_ip(&mut out);
    }
    assert!(out.is_empty());
    assert!(etr.is_up(ip(MS)), "{ev:?} {mev:?} {:?}", ms.counters());
    assert!(ev.contains(&EtrEvent::RefreshRequested(ip(MS))));
    assert_eq!(ms.peers().len(), 1);
    assert!(ep.counters().looped_back >= 4);
}

#[test]
fn a_session_over_ipv6_comes_up_and_carries_registrations() {
    let (etr, ms) = (ip("2001:db8::2"), ip("2001:db8::1"));
    let mut p = Pair::new();
    p.a.set_addresses(&[ip(ETR), etr]);
    p.b.set_addresses(&[ip(MS), ms]);
    p.ms.allow(etr, 0);
    p.etr.open(ms, etr, 0);
    p.run(200);
    assert!(p.etr.is_up(ms), "{:?}", p.etr_events);
    let peers = p.ms.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].ip(), etr);
    // Bytes flow both ways: the map-server acknowledges a registration.
    p.ms.ack(peers[0], 1, "10.1.0.0/24".parse().unwrap());
    p.run(100);
    assert!(
        p.etr_events
            .iter()
            .any(|e| matches!(e, EtrEvent::Acked(m, _) if *m == ms)),
        "{:?}",
        p.etr_events
    );
}

#[test]
fn a_session_across_address_families_is_unsupported() {
    let mut p = Pair::new();
    p.etr.open(ip("2001:db8::1"), ip(ETR), 0);
    p.run(20);
    assert_eq!(
        p.etr_events,
        vec![EtrEvent::Down(ip("2001:db8::1"), DownReason::Unsupported)]
    );
}

#[test]
fn another_endpoint_invalidates_the_sockets() {
    let (mut p, _) = Pair::up();
    let mut other = TcpEndpoint::new(9, p.now);
    other.set_addresses(&[ip(ETR)]);
    let mut ev = Vec::new();
    p.etr.poll(&mut other, p.now, &mut ev);
    assert_eq!(
        ev,
        vec![EtrEvent::Down(ip(MS), DownReason::EndpointChanged)]
    );
    let mut mev = Vec::new();
    p.ms.poll(&mut other, p.now, &mut mev);
    assert!(matches!(
        mev.as_slice(),
        [MsEvent::Down(_, DownReason::EndpointChanged)]
    ));
}

#[test]
fn endpoint_takes_only_tcp_to_its_addresses() {
    let mut ep = TcpEndpoint::new(0, 0);
    ep.set_addresses(&[ip(MS), ip("2001:db8::1")]);
    assert_eq!(ep.addresses(), vec![ip(MS), ip("2001:db8::1")]);
    let mut pkt = vec![0u8; 40];
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&40u16.to_be_bytes());
    pkt[9] = 6;
    pkt[16..20].copy_from_slice(&[209, 165, 201, 31]);
    // `p` with octet `at` set to `v`.
    let with = |p: &[u8], at: usize, v: u8| {
        let mut p = p.to_vec();
        p[at] = v;
        p
    };
    assert!(ep.accepts(&pkt));
    let udp = with(&pkt, 9, 17);
    assert!(!ep.accepts(&udp));
    assert!(!ep.accepts(&with(&pkt, 19, 32)), "another address");
    assert!(!ep.accepts(&pkt[..30]));
    assert!(!ep.accepts(&[0x60; 40]));
    // IPv6: TCP to our IPv6 address, without extension headers.
    let mut v6 = vec![0u8; 60];
    v6[0] = 0x60;
    v6[4..6].copy_from_slice(&20u16.to_be_bytes());
    v6[6] = 6;
    v6[24..40].copy_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    assert!(ep.accepts(&v6));
    assert!(!ep.accepts(&with(&v6, 39, 2)), "another address");
    assert!(!ep.accepts(&with(&v6, 6, 0)), "a hop-by-hop options header");
    assert!(!ep.accepts(&v6[..50]));
    for _ in 0..PACKET_QUEUE_LIMIT {
        assert!(ep.receive_ip(&pkt));
    }
    assert!(!ep.receive_ip(&pkt));
    assert!(!ep.receive_ip(&udp));
    let c = ep.counters();
    assert_eq!(
        (c.rx_packets, c.rx_dropped_full, c.rx_dropped_not_ours),
        (PACKET_QUEUE_LIMIT as u64, 1, 1)
    );
}

#[test]
fn allow_list_is_bounded() {
    let mut ms = MsSessions::new();
    for i in 0..=MAX_ALLOWED as u32 {
        ms.allow(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), u64::from(i));
    }
    assert_eq!(ms.allowed.len(), MAX_ALLOWED);
    assert!(!ms.is_allowed(ip("10.0.0.0"), MAX_ALLOWED as u64));
    assert!(ms.is_allowed(ip("10.0.0.1"), MAX_ALLOWED as u64));
    assert!(!ms.is_allowed(ip("10.0.0.1"), 1 + ALLOW_LIFETIME_MS));
}

#[test]
fn render_pads_long_fields_with_one_space() {
    let row = SessionRow {
        peer: "[2001:db8:1234:5678::1]:4342".parse().unwrap(),
        state: SessionState::Connecting,
        since_ms: Some(0),
        age_ms: None,
        messages_in: 1_234_567,
        messages_out: 7_654_321,
        users: 1,
        last_down: None,
        failures: 0,
        retry_in_ms: None,
    };
    assert_eq!(
        render_sessions(&[row], 2 * 86_400_000),
        "Sessions for VRF default, total: 1, established: 0\n\
             Peer                State    Up/Down    In/Out    Users\n\
             2001:db8:1234:5678::1 Connecting 2d00h      1234567/7654321 1\n"
    );
}
