//! Simulated-time soak of registration: 24 hours of simulated time for three xTRs (two over the
//! reliable transport, one UDP-only) and a Map-Server, on the sans-IO cores wired as the daemon
//! wires them, with the userspace TCP endpoints exchanging real segments in memory.
//!
//! Over the day hosts move between the xTRs, the Map-Server is restarted (state lost), links
//! are cut (short cuts the TCP session survives, long ones it does not), and at every simulated
//! second the test checks that every mapping an ETR announces is registered and nothing else is:
//! - announced for longer than the grace of its situation (5 s after an ETR announces it or a
//!   reliable ETR's Map-Server restarted; a UDP ETR's refresh period after a restart; the UDP
//!   back-off after a cut) → registered at the Map-Server with that ETR's locator;
//! - registered → announced by its registrar now, or stopped less than a registration
//!   lifetime (plus the time a dead session takes to be noticed) ago.
//!
//! A registration that expires while its reliable session is up (the 3-minute bug) fails the
//! first check three minutes into the run.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use roamer_control::config::{self, Config, Syntax};
use roamer_control::lisp::map_server::{
    Lookup, MapServer, REGISTRATION_LIFETIME_MS, Refusal, Resolution,
};
use roamer_control::lisp::reliable::{
    DownReason, EtrEvent, EtrSessions, IDLE_TIMEOUT_MS, MsEvent, MsSessions, SessionState,
    TcpEndpoint,
};
use roamer_control::lisp::xtr::{self, REGISTER_INTERVAL_MS, Xtr};
use roamer_control::wire::lisp::{LISP_CONTROL_PORT, MapRegister, MessageType};
use roamer_control::wire::reliable::RejectReason;
use roamer_hal::{L3Interface, Prefix, VlanId};

const TICK_MS: u64 = 250;
const DAY_MS: u64 = 24 * 3_600_000;
const MS_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// How long after its cause a registration may still be missing, by cause.
const GRACE_MS: u64 = 5_000;
/// A UDP ETR's back-off after failed registers tops out at its refresh period.
const UDP_GRACE_MS: u64 = REGISTER_INTERVAL_MS + GRACE_MS;

fn rloc(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 1 + k as u8)
}

fn map_server_config() -> Config {
    let text = format!(
        "feature lisp\nip lisp map-server\nip lisp map-resolver\n\
         lisp site DC\n eid-prefix 10.1.0.0/24\n eid-prefix 10.1.1.0/24\n eid-prefix 10.1.2.0/24\n eid-prefix 10.9.0.0/24 accept-more-specifics\n \
         authentication-key 0 soak-key\n  \
         roamer max-registrations 64\n\
         interface Ethernet1/1\n no switchport\n ip address {MS_ADDR}/24\n"
    );
    config::parse(&text, Syntax::Cli).unwrap().0
}

fn xtr_config(k: usize) -> Config {
    let r = rloc(k);
    let text = format!(
        "feature lisp\nfeature interface-vlan\nvlan 10\n\
         interface Vlan10\n  ip address 10.9.0.{}/24\n  lisp mobility roam\n\
         ip lisp itr-etr\n\
         ip lisp itr map-resolver {MS_ADDR}\n\
         ip lisp etr map-server {MS_ADDR} key soak-key\n\
         ip lisp database-mapping 10.1.{k}.0/24 {r} priority 1 weight 100\n\
         lisp dynamic-eid roam\n  database-mapping 10.9.0.0/24 {r} priority 1 weight 100\n",
        250 - k
    );
    config::parse(&text, Syntax::Cli).unwrap().0
}

fn vlan10() -> L3Interface {
    L3Interface::Vlan(VlanId::new(10).unwrap())
}

/// An xTR as the daemon runs it: the xTR core, its reliable sessions and its TCP endpoint.
struct XtrNode {
    rloc: Ipv4Addr,
    xtr: Xtr,
    sessions: EtrSessions,
    tcp: TcpEndpoint,
    /// This ETR has no reliable transport: it ignores the request to open a session.
    udp_only: bool,
    /// Reliable session up/down transitions seen.
    session_ups: u64,
}

/// The Map-Server node; replaced whole on a restart.
struct MsNode {
    ms: MapServer,
    sessions: MsSessions,
    tcp: TcpEndpoint,
    started_ms: u64,
}

impl MsNode {
    fn start(now: u64, seed: u64) -> Self {
        let mut ms = MapServer::new(&map_server_config());
        ms.started(now);
        let mut sessions = MsSessions::new();
        sessions.set_enabled(true);
        let mut tcp = TcpEndpoint::new(seed, now);
        tcp.set_addresses(&[IpAddr::V4(MS_ADDR)]);
        MsNode {
            ms,
            sessions,
            tcp,
            started_ms: now,
        }
    }
}

/// A UDP datagram or an IPv4 packet (a TCP segment) in flight.
enum Packet {
    Udp {
        from: SocketAddr,
        to: SocketAddr,
        payload: Vec<u8>,
    },
    Ip(Vec<u8>),
}

struct Sim {
    now: u64,
    xtrs: Vec<XtrNode>,
    ms: MsNode,
    restarts: u64,
    /// Links to the Map-Server that are cut, by xTR index, until the given time.
    cut_until: BTreeMap<usize, u64>,
    /// When each xTR's link last came back (or the start).
    link_since: Vec<u64>,
    /// Hosts: which xTR each is at.
    hosts: BTreeMap<Ipv4Addr, usize>,
    /// (xTR, prefix) → (first announced, last announced) in the current announcement.
    announced: BTreeMap<(usize, Prefix), (u64, u64)>,
    in_flight: Vec<Packet>,
    checks: u64,
    registrations_seen: u64,
    moves: u64,
}

impl Sim {
    fn new() -> Self {
        let xtrs = (0..3)
            .map(|k| {
                let mut tcp = TcpEndpoint::new(100 + k as u64, 0);
                tcp.set_addresses(&[IpAddr::V4(rloc(k))]);
                XtrNode {
                    rloc: rloc(k),
                    xtr: Xtr::new(&xtr_config(k), 0),
                    sessions: EtrSessions::new(),
                    tcp,
                    udp_only: k == 2,
                    session_ups: 0,
                }
            })
            .collect();
        let hosts = (0..4)
            .map(|h| (Ipv4Addr::new(10, 9, 0, 10 + h as u8), h % 3))
            .collect();
        Sim {
            now: 0,
            xtrs,
            ms: MsNode::start(0, 1),
            restarts: 0,
            cut_until: BTreeMap::new(),
            link_since: vec![0; 3],
            hosts,
            announced: BTreeMap::new(),
            in_flight: Vec::new(),
            checks: 0,
            registrations_seen: 0,
            moves: 0,
        }
    }

    fn cut(&self, k: usize) -> bool {
        self.cut_until.get(&k).is_some_and(|&t| self.now < t)
    }

    fn xtr_at(&self, ip: IpAddr) -> Option<usize> {
        self.xtrs.iter().position(|x| IpAddr::V4(x.rloc) == ip)
    }

    /// Carries out what xTR `k` asked for, as the daemon's glue does.
    fn carry_out(&mut self, k: usize, out: Vec<xtr::Output>) {
        let now = self.now;
        let node = &mut self.xtrs[k];
        for o in out {
            match o {
                xtr::Output::Send {
                    to,
                    from_port,
                    payload,
                } => self.in_flight.push(Packet::Udp {
                    from: SocketAddr::new(IpAddr::V4(node.rloc), from_port),
                    to,
                    payload,
                }),
                xtr::Output::OpenSession { map_server, local } => {
                    if !node.udp_only
                        && !matches!(
                            node.sessions.state(map_server),
                            Some(SessionState::Up | SessionState::Connecting)
                        )
                    {
                        node.sessions.open(map_server, local, now);
                    }
                }
                xtr::Output::SendReliable {
                    map_server,
                    payload,
                } => {
                    if !node.sessions.send_registration(map_server, &payload) {
                        self.in_flight.push(Packet::Udp {
                            from: SocketAddr::new(IpAddr::V4(node.rloc), LISP_CONTROL_PORT),
                            to: SocketAddr::new(map_server, LISP_CONTROL_PORT),
                            payload,
                        });
                    }
                }
                xtr::Output::Table(_) | xtr::Output::SiteNotify { .. } => {}
            }
        }
    }

    /// The Map-Server's part of the daemon's glue for one UDP datagram.
    fn ms_receive(&mut self, from: SocketAddr, payload: &[u8]) {
        let now = self.now;
        let ms = &mut self.ms;
        match payload.first().map(|b| b >> 4) {
            Some(t) if t == MessageType::MapRegister as u8 => {
                if let Ok(accepted) = ms.ms.register(payload, from, false, now) {
                    self.registrations_seen += 1;
                    ms.sessions.allow(from.ip(), now);
                    if let Some(notify) = accepted.notify {
                        self.in_flight.push(Packet::Udp {
                            from: SocketAddr::new(IpAddr::V4(MS_ADDR), LISP_CONTROL_PORT),
                            to: from,
                            payload: notify,
                        });
                    }
                    for (previous, notify) in accepted.moved {
                        self.in_flight.push(Packet::Udp {
                            from: SocketAddr::new(IpAddr::V4(MS_ADDR), LISP_CONTROL_PORT),
                            to: SocketAddr::new(previous, LISP_CONTROL_PORT),
                            payload: notify,
                        });
                    }
                }
            }
            Some(t) if t == MessageType::MapNotifyAck as u8 => ms.ms.notify_ack(payload, from.ip()),
            Some(t) if t == MessageType::Ecm as u8 => {
                if let Ok(Resolution::Reply { to, map_reply }) = ms.ms.resolve(payload, now) {
                    self.in_flight.push(Packet::Udp {
                        from: SocketAddr::new(IpAddr::V4(MS_ADDR), LISP_CONTROL_PORT),
                        to,
                        payload: map_reply,
                    });
                }
            }
            _ => {}
        }
    }

    /// Delivers what is in flight (dropped on cut links) until nothing is left.
    fn deliver(&mut self) {
        for _ in 0..8 {
            if self.in_flight.is_empty() {
                return;
            }
            for p in std::mem::take(&mut self.in_flight) {
                let (src, dst) = match &p {
                    Packet::Udp { from, to, .. } => (from.ip(), to.ip()),
                    Packet::Ip(bytes) => (
                        IpAddr::V4(Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15])),
                        IpAddr::V4(Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19])),
                    ),
                };
                let xtr = self.xtr_at(src).or(self.xtr_at(dst));
                if xtr.is_some_and(|k| self.cut(k)) {
                    continue;
                }
                match p {
                    Packet::Udp { from, to, payload } if to.ip() == IpAddr::V4(MS_ADDR) => {
                        self.ms_receive(from, &payload)
                    }
                    Packet::Udp { from, to, payload } => {
                        if let Some(k) = self.xtr_at(to.ip()) {
                            let mut out = Vec::new();
                            self.xtrs[k].xtr.receive(&payload, from, self.now, &mut out);
                            self.carry_out(k, out);
                        }
                    }
                    Packet::Ip(bytes) if dst == IpAddr::V4(MS_ADDR) => {
                        self.ms.tcp.receive_ip(&bytes);
                    }
                    Packet::Ip(bytes) => {
                        if let Some(k) = self.xtr_at(dst) {
                            self.xtrs[k].tcp.receive_ip(&bytes);
                        }
                    }
                }
            }
            self.poll_tcp();
        }
    }

    /// TCP timers and segments on every node, and what their sessions report.
    fn poll_tcp(&mut self) {
        let now = self.now;
        for k in 0..self.xtrs.len() {
            let mut events = Vec::new();
            let node = &mut self.xtrs[k];
            node.sessions.poll(&mut node.tcp, now, &mut events);
            let mut out = Vec::new();
            for e in events {
                match e {
                    EtrEvent::Up(ms) => {
                        node.session_ups += 1;
                        node.xtr.session_up(ms);
                    }
                    EtrEvent::Down(ms, why) => {
                        let was_up = !matches!(
                            why,
                            DownReason::Refused
                                | DownReason::ConnectTimeout
                                | DownReason::Unsupported
                                | DownReason::NoLocalAddress
                        );
                        node.xtr.session_down(ms, was_up, now);
                    }
                    EtrEvent::RefreshRequested(ms) => node.xtr.refresh_requested(ms, now),
                    EtrEvent::Rejected(_, prefix, reason) => {
                        panic!("registration of {prefix} rejected over TCP: {reason:?}")
                    }
                    EtrEvent::Acked(..) | EtrEvent::Notified(..) => {}
                }
            }
            node.xtr.tick(now, &mut out);
            node.sessions.poll(&mut node.tcp, now, &mut Vec::new());
            self.carry_out(k, out);
            let mut packets = Vec::new();
            self.xtrs[k].tcp.drain_ip(&mut packets);
            self.in_flight.extend(packets.into_iter().map(Packet::Ip));
        }
        let mut events = Vec::new();
        let m = &mut self.ms;
        m.sessions.poll(&mut m.tcp, now, &mut events);
        for e in events {
            match e {
                MsEvent::Up(peer) => m.ms.session_up(peer),
                MsEvent::Down(peer, _) => m.ms.session_down(peer, now),
                MsEvent::Registration {
                    peer,
                    message_id,
                    map_register,
                } => match m.ms.register(&map_register, peer, true, now) {
                    Ok(accepted) => {
                        self.registrations_seen += 1;
                        for p in accepted.prefixes {
                            m.sessions.ack(peer, message_id, p);
                        }
                        for (previous, notify) in accepted.moved {
                            self.in_flight.push(Packet::Udp {
                                from: SocketAddr::new(IpAddr::V4(MS_ADDR), LISP_CONTROL_PORT),
                                to: SocketAddr::new(previous, LISP_CONTROL_PORT),
                                payload: notify,
                            });
                        }
                    }
                    Err(refusal) => {
                        let reason = match refusal {
                            Refusal::Authentication { .. } => RejectReason::AuthenticationFailure,
                            _ => RejectReason::NotDefined,
                        };
                        for r in MapRegister::parse(&map_register).unwrap().records {
                            m.sessions
                                .nack(peer, message_id, r.prefix.prefix().unwrap(), reason);
                        }
                    }
                },
            }
        }
        m.sessions.poll(&mut m.tcp, now, &mut Vec::new());
        if now.is_multiple_of(1_000) {
            m.ms.expire(now);
            for (etr, notify) in m.ms.resend_notifies(now) {
                self.in_flight.push(Packet::Udp {
                    from: SocketAddr::new(IpAddr::V4(MS_ADDR), LISP_CONTROL_PORT),
                    to: SocketAddr::new(etr, LISP_CONTROL_PORT),
                    payload: notify,
                });
            }
        }
        let mut packets = Vec::new();
        self.ms.tcp.drain_ip(&mut packets);
        self.in_flight.extend(packets.into_iter().map(Packet::Ip));
    }

    /// Hosts send traffic: their xTR sees them every 20 s.
    fn hosts_talk(&mut self) {
        if !self.now.is_multiple_of(20_000) {
            return;
        }
        let hosts: Vec<(Ipv4Addr, usize)> = self.hosts.iter().map(|(h, k)| (*h, *k)).collect();
        for (host, k) in hosts {
            let mut out = Vec::new();
            self.xtrs[k].xtr.dynamic_eid_seen(
                vlan10(),
                IpAddr::V4(host),
                "roam",
                self.now,
                &mut out,
            );
            self.carry_out(k, out);
        }
    }

    fn move_host(&mut self, host: Ipv4Addr, to: usize) {
        self.hosts.insert(host, to);
        self.moves += 1;
        let mut out = Vec::new();
        self.xtrs[to]
            .xtr
            .dynamic_eid_seen(vlan10(), IpAddr::V4(host), "roam", self.now, &mut out);
        self.carry_out(to, out);
    }

    fn restart_map_server(&mut self) {
        self.restarts += 1;
        self.ms = MsNode::start(self.now, 1 + self.restarts);
    }

    fn cut_link(&mut self, k: usize, for_ms: u64) {
        self.cut_until.insert(k, self.now + for_ms);
        self.link_since[k] = self.now + for_ms;
    }

    fn step(&mut self) {
        self.now += TICK_MS;
        self.hosts_talk();
        self.poll_tcp();
        self.deliver();
        if self.now.is_multiple_of(1_000) {
            self.check();
        }
    }

    /// What each xTR announces now: its database prefix and the dynamic EIDs it detected.
    fn announcements(&self) -> BTreeSet<(usize, Prefix)> {
        let mut set = BTreeSet::new();
        for (k, node) in self.xtrs.iter().enumerate() {
            set.insert((k, format!("10.1.{k}.0/24").parse().unwrap()));
            for (eid, d) in node.xtr.dynamic_eids() {
                if !d.via_map_notify {
                    set.insert((k, Prefix::host(*eid)));
                }
            }
        }
        set
    }

    /// The invariant, at every simulated second.
    fn check(&mut self) {
        self.checks += 1;
        let now = self.now;
        let current = self.announcements();
        for key in &current {
            let e = self.announced.entry(*key).or_insert((now, now));
            if e.0 == u64::MAX {
                e.0 = now;
            }
            e.1 = now;
        }
        // Every announced mapping is registered, once its grace is over.
        for &(k, prefix) in &current {
            let (first, _) = self.announced[&(k, prefix)];
            let node = &self.xtrs[k];
            let restart_grace = if node.udp_only {
                UDP_GRACE_MS
            } else {
                GRACE_MS
            };
            // A cut link: the UDP back-off doubles up to the refresh period.
            let cause = [
                first + GRACE_MS,
                self.ms.started_ms + restart_grace,
                self.link_since[k] + UDP_GRACE_MS,
            ];
            if cause.iter().any(|&t| now < t) || self.cut(k) {
                continue;
            }
            let registered = match self.ms.ms.lookup(prefix.addr()) {
                Lookup::Registered(p, regs) => {
                    p == prefix
                        && regs.iter().any(|r| {
                            r.registrar.ip() == IpAddr::V4(node.rloc)
                                && r.locators.iter().any(|l| l.rloc == IpAddr::V4(node.rloc))
                        })
                }
                _ => false,
            };
            assert!(
                registered,
                "t={}s: {prefix} announced by xTR {k} since t={}s (reliable: {}) is not registered; \
                 map-server started t={}s; map-server knows {:?}",
                now / 1000,
                first / 1000,
                !node.udp_only,
                self.ms.started_ms / 1000,
                self.ms.ms.lookup(prefix.addr())
            );
        }
        // Nothing else is registered: whatever the Map-Server holds, its registrar announces,
        // or stopped announcing less than a lifetime ago (expiry's bound).
        let slack = REGISTRATION_LIFETIME_MS + IDLE_TIMEOUT_MS + GRACE_MS;
        for row in self.ms.ms.rows(now, 0) {
            if !row.registered {
                continue;
            }
            let Lookup::Registered(p, regs) = self.ms.ms.lookup(row.prefix.addr()) else {
                continue;
            };
            if p != row.prefix {
                continue;
            }
            for r in regs {
                let k = self
                    .xtr_at(r.registrar.ip())
                    .expect("registered by one of our xTRs");
                let last = self.announced.get(&(k, p)).map(|e| e.1);
                let ok = current.contains(&(k, p))
                    || last.is_some_and(|l| now.saturating_sub(l) < slack);
                assert!(
                    ok,
                    "t={}s: {p} is registered by xTR {k}, which stopped announcing it at {:?} s",
                    now / 1000,
                    last.map(|l| l / 1000)
                );
            }
        }
        // Forget announcements that ended long ago (bounded state).
        self.announced
            .retain(|key, (_, last)| current.contains(key) || now.saturating_sub(*last) < slack);
        // An announcement that ended starts afresh when it comes back.
        for (key, e) in self.announced.iter_mut() {
            if !current.contains(key) && e.1 < now {
                e.0 = u64::MAX;
            }
        }
    }
}

/// Deterministic pseudo-random numbers (xorshift), seeded: the same day every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn a_day_of_registration_with_moves_restarts_and_cut_links_keeps_the_map_server_exact() {
    let mut sim = Sim::new();
    let mut rng = Rng(0x005e_ed0f_da7a);
    // Ending announcements are picked up by the check only when the host idles out or moves:
    // an announcement that starts is tracked from its first check.
    let mut next_move = 600_000;
    let mut next_restart = 2 * 3_600_000;
    let mut next_cut = 1_800_000;
    while sim.now < DAY_MS {
        sim.step();
        if sim.now == next_move {
            let hosts: Vec<Ipv4Addr> = sim.hosts.keys().copied().collect();
            let host = hosts[rng.next(hosts.len() as u64) as usize];
            let from = sim.hosts[&host];
            let to = (from + 1 + rng.next(2) as usize) % 3;
            sim.move_host(host, to);
            next_move += 600_000 + rng.next(1_200) * 1_000;
        }
        if sim.now == next_restart {
            sim.restart_map_server();
            next_restart += 3 * 3_600_000 + rng.next(3_600) * 1_000;
        }
        if sim.now == next_cut {
            let k = rng.next(3) as usize;
            // Short cuts the TCP session rides out; long ones take it down (UDP fallback).
            let length = if rng.next(2) == 0 {
                3_000
            } else {
                IDLE_TIMEOUT_MS + 20_000
            };
            sim.cut_link(k, length);
            next_cut += 1_200_000 + rng.next(2_400) * 1_000;
        }
    }
    assert_eq!(sim.checks, DAY_MS / 1_000, "checked every simulated second");
    assert!(sim.moves >= 24, "hosts moved: {}", sim.moves);
    assert!(sim.restarts >= 5, "map-server restarts: {}", sim.restarts);
    for (k, node) in sim.xtrs.iter().enumerate() {
        if node.udp_only {
            assert_eq!(node.session_ups, 0, "xTR {k} stays on UDP");
        } else {
            assert!(
                node.session_ups > sim.restarts,
                "xTR {k} re-established its session after every restart and long cut: {} ups",
                node.session_ups
            );
        }
    }
    // Reliable ETRs do not refresh periodically: far fewer registrations than UDP refreshes.
    assert!(sim.registrations_seen > 0);
}

/// The 3-minute bug alone: one reliable ETR left alone for two registration lifetimes stays
/// registered, and its registrations are sent once, not refreshed every minute.
#[test]
fn registrations_over_a_live_session_outlive_two_lifetimes_without_refreshes() {
    let mut sim = Sim::new();
    sim.hosts.clear();
    while sim.now < 10_000 {
        sim.step();
    }
    assert!(sim.xtrs[0].session_ups == 1 && sim.xtrs[1].session_ups == 1);
    let before = sim.registrations_seen;
    while sim.now < 2 * REGISTRATION_LIFETIME_MS + 60_000 {
        sim.step();
    }
    for k in 0..2 {
        let prefix: Prefix = format!("10.1.{k}.0/24").parse().unwrap();
        assert!(
            matches!(sim.ms.ms.lookup(prefix.addr()), Lookup::Registered(p, _) if p == prefix),
            "{prefix} still registered after {} s",
            sim.now / 1000
        );
    }
    assert_eq!(sim.ms.ms.counters.expired, 0, "nothing expired");
    // Only the UDP-only xTR refreshed: one register a minute.
    let refreshes = sim.registrations_seen - before;
    assert!(
        refreshes <= (sim.now / REGISTER_INTERVAL_MS) + 1,
        "{refreshes} registrations in {} s: the reliable ETRs do not refresh",
        sim.now / 1000
    );
}

/// A restarted Map-Server is refilled by the reliable ETRs within seconds: the keep-alive meets
/// the new TCP stack, which resets it, and the ETR registers over UDP at once.
#[test]
fn a_restarted_map_server_is_refilled_by_reliable_etrs_within_five_seconds() {
    let mut sim = Sim::new();
    while sim.now < 47_000 {
        sim.step();
    }
    sim.restart_map_server();
    let restarted = sim.now;
    let registered = |sim: &Sim, k: usize| {
        let prefix: Prefix = format!("10.1.{k}.0/24").parse().unwrap();
        matches!(sim.ms.ms.lookup(prefix.addr()), Lookup::Registered(p, _) if p == prefix)
    };
    while !(registered(&sim, 0) && registered(&sim, 1)) && sim.now < restarted + 60_000 {
        sim.step();
    }
    let took = sim.now - restarted;
    assert!(
        took <= 5_000,
        "reliable ETRs re-registered {took} ms after the restart"
    );
}
