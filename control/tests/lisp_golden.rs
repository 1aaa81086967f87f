//! LISP conformance traces: scripted scenarios drive two xTRs (`lisp::xtr::Xtr`) and a
//! Map-Server/Map-Resolver (`lisp::map_server::MapServer`) through their sans-IO entry points;
//! every input and every output (each sent message decoded with the wire parsers, each table
//! operation with its Display) is rendered as one text line and compared with
//! `tests/golden/lisp/<scenario>.trace` (regenerate with `UPDATE_GOLDEN=1`, as the HSRP traces).
//!
//! Nonces are random per process, so they are rendered as N1, N2, … in order of first
//! appearance. Messages between the instances are delivered by a small in-memory network; a
//! destination can be made unreachable to show retransmissions.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::ip;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use roamer_control::config::{self, Syntax};
use roamer_control::lisp::map_server::{MapServer, Resolution, render_sites};
use roamer_control::lisp::xtr::{Output, Xtr};
use roamer_control::wire::lisp::{
    AuthKey, EidPrefix, EidRecord, KeyId, LispMessage, LocatorRecord, MapRegister, parse_message,
};
use roamer_hal::{L3Interface, VlanId};

const MS: &str = "192.0.2.100";
const A_RLOC: &str = "192.0.2.1";
const B_RLOC: &str = "192.0.2.2";
const C_RLOC: &str = "192.0.2.3";
const PORT: u16 = 4342;

fn sock(s: &str) -> SocketAddr {
    SocketAddr::new(ip(s), PORT)
}

/// An xTR's configuration: its own /24 database mapping and the shared `roam` dynamic-EID map
/// on Vlan10.
fn xtr_config(rloc: &str, eid_net: &str, svi: &str) -> String {
    format!(
        "feature lisp\nfeature interface-vlan\nvlan 10\n\
         interface Vlan10\n  ip address {svi}/24\n  lisp mobility roam\n  lisp extended-subnet-mode\n\
         ip lisp itr-etr\n\
         ip lisp itr map-resolver {MS}\n\
         ip lisp etr map-server {MS} key cisco\n\
         ip lisp database-mapping {eid_net} {rloc} priority 1 weight 100\n\
         lisp dynamic-eid roam\n  database-mapping 10.9.0.0/25 {rloc} priority 1 weight 100\n  \
         map-notify-group 239.1.1.1\n"
    )
}

const MS_CONFIG: &str = "feature lisp\nip lisp map-server\nip lisp map-resolver\n\
lisp site s\n  eid-prefix 10.0.0.0/8 accept-more-specifics\n  authentication-key cisco\n";

fn xtr(rloc: &str, eid_net: &str, svi: &str) -> Xtr {
    let text = xtr_config(rloc, eid_net, svi);
    Xtr::new(&config::parse(&text, Syntax::Cli).unwrap().0, 0)
}

/// A packet in flight.
enum Pkt {
    Udp {
        from: SocketAddr,
        to: SocketAddr,
        payload: Vec<u8>,
    },
    Reliable {
        from: IpAddr,
        payload: Vec<u8>,
    },
}

struct World {
    now: u64,
    xtrs: Vec<(&'static str, IpAddr, Xtr)>,
    ms: MapServer,
    /// Destinations whose packets are lost.
    unreachable: BTreeSet<IpAddr>,
    nonces: HashMap<u64, usize>,
    trace: String,
}

impl World {
    fn new(header: &str) -> World {
        let mut trace = String::new();
        for l in header.lines() {
            writeln!(trace, "# {l}").unwrap();
        }
        let ms = MapServer::new(&config::parse(MS_CONFIG, Syntax::Cli).unwrap().0);
        World {
            now: 0,
            xtrs: vec![
                ("A", ip(A_RLOC), xtr(A_RLOC, "10.1.0.0/24", "10.9.0.1")),
                ("B", ip(B_RLOC), xtr(B_RLOC, "10.2.0.0/24", "10.9.0.2")),
            ],
            ms,
            unreachable: BTreeSet::new(),
            nonces: HashMap::new(),
            trace,
        }
    }

    fn line(&mut self, s: String) {
        writeln!(self.trace, "{:>7} {s}", self.now).unwrap();
    }

    fn step(&mut self, s: &str) {
        self.line(format!("== {s}"));
    }

    fn name_of(&self, a: IpAddr) -> String {
        if a == ip(MS) {
            return "MS".into();
        }
        match self.xtrs.iter().find(|(_, r, _)| *r == a) {
            Some((n, _, _)) => (*n).into(),
            None => a.to_string(),
        }
    }

    fn nonce(&mut self, n: u64) -> String {
        let next = self.nonces.len() + 1;
        format!("N{}", self.nonces.entry(n).or_insert(next))
    }

    fn xi(&self, name: &str) -> usize {
        self.xtrs.iter().position(|(n, _, _)| *n == name).unwrap()
    }

    /// Runs `f` on xTR `name` and delivers what it sends until the network is quiet.
    fn on(&mut self, name: &str, f: impl FnOnce(&mut Xtr, u64, &mut Vec<Output>)) {
        let i = self.xi(name);
        let mut out = Vec::new();
        let now = self.now;
        f(&mut self.xtrs[i].2, now, &mut out);
        let mut q = VecDeque::new();
        self.xtr_outputs(i, out, &mut q);
        self.run(q);
    }

    /// A map-cache miss at xTR `name`: `src` sends to `dst`.
    fn miss(&mut self, name: &str, dst: &str, src: &str) {
        self.on(name, |x, now, out| {
            x.map_cache_miss(ip(dst), ip(src), now, out)
        });
    }

    /// Ticks every instance each second for the next `ms` milliseconds.
    fn tick_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.tick_all(until, 1_000);
    }

    /// A trace line: xTR `name`'s away table, sorted.
    fn away_line(&mut self, name: &str) {
        let i = self.xi(name);
        let mut away: Vec<String> = self.xtrs[i]
            .2
            .away()
            .map(|(p, a)| format!("{p} ({})", a.producer.name()))
            .collect();
        away.sort();
        self.line(format!("{name} away table: {}", away.join(", ")));
    }

    /// A trace line: xTR `name`'s map-cache, sorted.
    fn map_cache_line(&mut self, name: &str) {
        let i = self.xi(name);
        let mut cache: Vec<String> = self.xtrs[i]
            .2
            .map_cache()
            .map(|c| format!("{} ({})", c.prefix, c.source.name()))
            .collect();
        cache.sort();
        self.line(format!("{name} map-cache: {}", cache.join(", ")));
    }

    fn tick_all(&mut self, until: u64, step: u64) {
        while self.now < until {
            self.now = (self.now + step).min(until);
            for n in ["A", "B"] {
                self.on(n, |x, now, out| x.tick(now, out));
            }
            let resent = self.ms.resend_notifies(self.now);
            let mut q = VecDeque::new();
            for (to, payload) in resent {
                q.push_back(Pkt::Udp {
                    from: sock(MS),
                    to: SocketAddr::new(to, PORT),
                    payload,
                });
            }
            self.run(q);
            let expired = self.ms.expire(self.now);
            if !expired.is_empty() {
                let l = format!("MS expired {}", join(&expired));
                self.line(l);
            }
        }
    }

    fn xtr_outputs(&mut self, i: usize, out: Vec<Output>, q: &mut VecDeque<Pkt>) {
        let (name, rloc) = (self.xtrs[i].0, self.xtrs[i].1);
        for o in out {
            match o {
                Output::Send {
                    to,
                    from_port,
                    payload,
                } => q.push_back(Pkt::Udp {
                    from: SocketAddr::new(rloc, from_port),
                    to,
                    payload,
                }),
                Output::SendReliable {
                    map_server,
                    payload,
                } => {
                    let d = self.decode(&payload);
                    let l = format!("{name} -> {} (TCP) {d}", self.name_of(map_server));
                    self.line(l);
                    q.push_back(Pkt::Reliable {
                        from: rloc,
                        payload,
                    });
                }
                Output::OpenSession { map_server, local } => {
                    let l = format!(
                        "{name} opens reliable session {local} -> {}",
                        self.name_of(map_server)
                    );
                    self.line(l);
                }
                Output::Table(op) => self.line(format!("{name} table {op}")),
                Output::SiteNotify {
                    vlan,
                    source,
                    group,
                    payload,
                } => {
                    let d = self.decode(&payload);
                    self.line(format!(
                        "{name} site-notify vlan {vlan} {source} -> {group} (ttl 1) {d}"
                    ));
                }
            }
        }
    }

    /// Delivers packets (breadth first) until none is left.
    fn run(&mut self, mut q: VecDeque<Pkt>) {
        let mut budget = 1000;
        while let Some(p) = q.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message loop");
            match p {
                Pkt::Udp { from, to, payload } => {
                    let d = self.decode(&payload);
                    let lost = self.unreachable.contains(&to.ip());
                    let l = format!(
                        "{} -> {} {d}{}",
                        self.name_of(from.ip()),
                        self.name_of(to.ip()),
                        if lost { "  [lost]" } else { "" }
                    );
                    self.line(l);
                    if lost {
                        continue;
                    }
                    if to.ip() == ip(MS) {
                        self.ms_udp(from, &payload, &mut q);
                    } else if let Some(i) = self.xtrs.iter().position(|(_, r, _)| *r == to.ip()) {
                        let mut out = Vec::new();
                        let now = self.now;
                        self.xtrs[i].2.receive(&payload, from, now, &mut out);
                        self.xtr_outputs(i, out, &mut q);
                    }
                }
                Pkt::Reliable { from, payload } => {
                    let r = self
                        .ms
                        .register(&payload, SocketAddr::new(from, PORT), true, self.now);
                    match r {
                        Ok(a) => {
                            let l = format!(
                                "MS accepted (TCP) site {} {}{}{}",
                                a.site,
                                join(&a.prefixes),
                                if a.proxy_reply { " proxy-reply" } else { "" },
                                if a.notify.is_some() {
                                    " (Map-Notify back over the session, not modelled)"
                                } else {
                                    ""
                                }
                            );
                            self.line(l);
                        }
                        Err(e) => self.line(format!("MS refused (TCP) {e:?}")),
                    }
                }
            }
        }
    }

    fn ms_udp(&mut self, from: SocketAddr, payload: &[u8], q: &mut VecDeque<Pkt>) {
        let now = self.now;
        match parse_message(payload) {
            Ok(LispMessage::MapRegister(_)) => match self.ms.register(payload, from, false, now) {
                Ok(a) => {
                    self.line(format!(
                        "MS accepted site {} {}{}",
                        a.site,
                        join(&a.prefixes),
                        if a.proxy_reply { " proxy-reply" } else { "" }
                    ));
                    if let Some(n) = a.notify {
                        q.push_back(Pkt::Udp {
                            from: sock(MS),
                            to: from,
                            payload: n,
                        });
                    }
                    for (to, n) in a.moved.into_iter().chain(a.published) {
                        q.push_back(Pkt::Udp {
                            from: sock(MS),
                            to: SocketAddr::new(to, PORT),
                            payload: n,
                        });
                    }
                }
                Err(e) => self.line(format!("MS refused {e:?}")),
            },
            Ok(LispMessage::Ecm(_)) => match self.ms.resolve(payload, now) {
                Ok(Resolution::Reply { to, map_reply }) => {
                    self.line(format!("MS replies itself (to {to})"));
                    q.push_back(Pkt::Udp {
                        from: sock(MS),
                        to,
                        payload: map_reply,
                    });
                }
                Ok(Resolution::Forward { etr, ecm }) => {
                    let l = format!("MS forwards the request to ETR {}", self.name_of(etr));
                    self.line(l);
                    q.push_back(Pkt::Udp {
                        from: sock(MS),
                        to: SocketAddr::new(etr, PORT),
                        payload: ecm,
                    });
                }
                Err(e) => self.line(format!("MS refused request {e:?}")),
            },
            Ok(LispMessage::MapNotify(n)) if n.ack => {
                let before = self.ms.counters.notify_acks;
                self.ms.notify_ack(payload, from.ip());
                let ok = self.ms.counters.notify_acks > before;
                self.line(format!(
                    "MS notify-ack {}",
                    if ok { "matched" } else { "refused" }
                ));
            }
            _ => self.line("MS ignores it".into()),
        }
    }

    fn decode(&mut self, payload: &[u8]) -> String {
        match parse_message(payload) {
            Ok(m) => self.message(&m),
            Err(e) => format!("undecodable ({e:?})"),
        }
    }

    fn message(&mut self, m: &LispMessage) -> String {
        match m {
            LispMessage::MapRequest(r) => {
                let bits = flags(&[
                    (r.authoritative, "A"),
                    (r.probe, "P"),
                    (r.smr, "S"),
                    (r.pitr, "p"),
                    (r.smr_invoked, "s"),
                    (r.local_xtr, "L"),
                    (r.dont_map_reply, "D"),
                    (r.subscribe.is_some(), "I"),
                ]);
                let itr: Vec<String> = r.itr_rlocs.iter().map(|a| a.to_string()).collect();
                let eids: Vec<String> = r.records.iter().map(|e| e.to_string()).collect();
                format!(
                    "Map-Request nonce {} bits [{bits}] source-eid {} itr-rlocs [{}] eids [{}]{}",
                    self.nonce(r.nonce),
                    r.source_eid,
                    itr.join(", "),
                    eids.join(", "),
                    r.map_reply_record
                        .as_ref()
                        .map(|rec| format!(" map-reply-record {}", record(rec)))
                        .unwrap_or_default()
                )
            }
            LispMessage::MapReply(r) => format!(
                "Map-Reply nonce {} bits [{}] {}",
                self.nonce(r.nonce),
                flags(&[
                    (r.probe, "P"),
                    (r.echo_nonce_capable, "E"),
                    (r.lisp_sec, "S")
                ]),
                records(&r.records)
            ),
            LispMessage::MapRegister(r) => format!(
                "Map-Register nonce {} bits [{}] {}",
                self.nonce(r.nonce),
                flags(&[
                    (r.proxy_reply, "P"),
                    (r.lisp_sec, "S"),
                    (r.reliable_transport, "R"),
                    (r.eid_notify, "E"),
                    (r.ttl_timeout, "T"),
                    (r.merge, "a"),
                    (r.want_map_notify, "M"),
                    (r.xtr.is_some(), "I"),
                ]),
                records(&r.records)
            ),
            LispMessage::MapNotify(n) => format!(
                "{} nonce {} {}",
                if n.ack {
                    "Map-Notify-Ack"
                } else {
                    "Map-Notify"
                },
                self.nonce(n.nonce),
                records(&n.records)
            ),
            LispMessage::Ecm(e) => {
                let inner = self.message(&e.message);
                format!(
                    "ECM{} inner {}:{} -> {}:{} {{ {inner} }}",
                    if e.ddt { " ddt" } else { "" },
                    e.inner_src,
                    e.inner_src_port,
                    e.inner_dst,
                    e.inner_dst_port
                )
            }
        }
    }
}

fn flags(f: &[(bool, &str)]) -> String {
    f.iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn record(r: &EidRecord) -> String {
    let locs: Vec<String> = r
        .locators
        .iter()
        .map(|l| {
            let f = flags(&[(l.local, "L"), (l.probed, "p"), (l.reachable, "R")]);
            format!("{} {}/{} [{f}]", l.rloc, l.priority, l.weight)
        })
        .collect();
    format!(
        "{} ttl {} act {:?}{} v{} locators ({})",
        r.prefix,
        r.ttl,
        r.action,
        if r.authoritative { " A" } else { "" },
        r.map_version,
        locs.join(", ")
    )
}

fn records(rs: &[EidRecord]) -> String {
    let v: Vec<String> = rs.iter().map(record).collect();
    format!("records [{}]", v.join("; "))
}

fn join<T: std::fmt::Display>(xs: &[T]) -> String {
    xs.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/lisp")
        .join(format!("{name}.trace"));
    roamer_test_support::assert_golden(&path, actual);
}

/// The map-server's Map-Notify counters.
fn notify_counters(w: &mut World) {
    let m = w.ms.counters;
    w.line(format!(
        "MS counters: notifies_resent {} notify_acks {} notify_acks_refused {} notifies_given_up {}",
        m.notifies_resent, m.notify_acks, m.notify_acks_refused, m.notifies_given_up
    ));
}

/// `show lisp site` of the map-server, one trace line per output line.
fn show_sites(w: &mut World) {
    let text = render_sites(&w.ms.rows(w.now, 0), true);
    w.line("MS show lisp site:".into());
    for l in text.lines() {
        writeln!(
            w.trace,
            "        |{}{l}",
            if l.is_empty() { "" } else { " " }
        )
        .unwrap();
    }
}

/// A signed Map-Register from a third ETR (C) asking the Map-Server to answer for it.
fn proxy_register(eid: &str) -> Vec<u8> {
    let mut r = MapRegister::new(vec![EidRecord::authoritative(
        EidPrefix::from_prefix(eid.parse().unwrap()),
        1440,
        vec![LocatorRecord::local(ip(C_RLOC), 1, 100)],
    )]);
    r.proxy_reply = true;
    r.to_signed_vec(&AuthKey::new(KeyId::HmacSha1, b"cisco").unwrap())
        .unwrap()
}

fn vlan10() -> L3Interface {
    L3Interface::Vlan(VlanId::new(10).unwrap())
}

/// Both xTRs register (first tick) and the network settles.
fn registered(w: &mut World) {
    w.step("both xTRs register with the map-server");
    w.tick_all(1_000, 1_000);
}

#[test]
fn registration() {
    let mut w = World::new(
        "Registration: xTR-A's UDP Map-Registers are lost until the map-server is reachable,\n\
         are retried until a Map-Notify acknowledges one, then refreshed every minute; the\n\
         acknowledged register opens the reliable (TCP 4342) session, refreshes go over it\n\
         while it is up, and when it goes down UDP registration resumes at once.",
    );
    w.unreachable.insert(ip(MS));
    w.step("map-server unreachable: registers are lost and retried");
    w.tick_all(10_000, 1_000);
    w.unreachable.clear();
    w.step("map-server reachable again");
    w.tick_all(75_000, 1_000);
    w.step("reliable session to the map-server up");
    w.on("A", |x, _, _| x.session_up(ip(MS)));
    w.ms.session_up(SocketAddr::new(ip(A_RLOC), PORT));
    w.tick_all(140_000, 1_000);
    w.step("reliable session down");
    w.ms.session_down(SocketAddr::new(ip(A_RLOC), PORT), w.now);
    w.on("A", |x, now, out| {
        x.session_down(ip(MS), true, now);
        x.tick(now, out);
    });
    w.tick_all(142_000, 1_000);
    let c = w.xtrs[0].2.counters;
    w.line(format!(
        "A counters: registers_sent {} map_notifies_accepted {} map_notifies_refused {}",
        c.registers_sent, c.map_notifies_accepted, c.map_notifies_refused
    ));
    let m = w.ms.counters;
    w.line(format!(
        "MS counters: registers_accepted {} refused_authentication {}",
        m.registers_accepted, m.refused_authentication
    ));
    show_sites(&mut w);
    golden("registration", &w.trace);
}

#[test]
fn resolution() {
    let mut w = World::new(
        "Resolution: map-cache misses at xTR-A become ECM Map-Requests to the map-resolver,\n\
         which forwards one to the registered ETR (xTR-B answers), answers another itself for\n\
         an ETR that registered with proxy-reply (C), and answers negatively for an EID\n\
         nobody registered; each Map-Reply programs the map-cache.",
    );
    registered(&mut w);
    w.step("ETR C registers 10.3.0.0/24 with proxy-reply (P bit)");
    let reg = proxy_register("10.3.0.0/24");
    let d = w.decode(&reg);
    w.line(format!("C -> MS {d}"));
    let mut q = VecDeque::new();
    w.ms_udp(sock(C_RLOC), &reg, &mut q);
    w.run(q);
    w.step("miss at A: 10.1.0.5 -> 10.2.0.7 (registered by B: forwarded)");
    w.miss("A", "10.2.0.7", "10.1.0.5");
    w.step("miss at A: 10.1.0.5 -> 10.3.0.9 (proxy reply)");
    w.miss("A", "10.3.0.9", "10.1.0.5");
    w.step("miss at A: 10.1.0.5 -> 10.77.0.1 (in the site, unregistered: negative)");
    w.miss("A", "10.77.0.1", "10.1.0.5");
    w.step("miss at A: 10.1.0.5 -> 172.16.0.1 (not an EID: negative)");
    w.miss("A", "172.16.0.1", "10.1.0.5");
    w.step("map-resolver unreachable: miss for 10.4.0.9 is retried, a second miss waits");
    w.unreachable.insert(ip(MS));
    w.miss("A", "10.4.0.9", "10.1.0.5");
    w.miss("A", "10.4.0.9", "10.1.0.6");
    w.tick_all(6_000, 1_000);
    w.unreachable.clear();
    w.map_cache_line("A");
    show_sites(&mut w);
    golden("resolution", &w.trace);
}

/// Mobility set-up shared by the SMR scenarios: 10.9.0.50 is first at A, A caches it from B's
/// point of view, then the host moves to B.
fn moved(w: &mut World, lose_first_notify: bool) {
    registered(w);
    w.step("dynamic EID 10.9.0.50 detected at A on Vlan10");
    w.on("A", |x, now, out| {
        x.dynamic_eid_seen(vlan10(), ip("10.9.0.50"), "roam", now, out)
    });
    w.tick_for(1_000);
    w.step("B resolves 10.9.0.50 (B's host 10.2.0.7 talks to it)");
    w.miss("B", "10.9.0.50", "10.2.0.7");
    w.now += 5_000;
    w.step("the host moves: dynamic EID 10.9.0.50 detected at B on Vlan10");
    w.on("B", |x, now, out| {
        x.dynamic_eid_seen(vlan10(), ip("10.9.0.50"), "roam", now, out)
    });
    if lose_first_notify {
        w.step("A unreachable for a moment: the first unsolicited Map-Notify is lost");
        w.unreachable.insert(ip(A_RLOC));
        w.tick_for(1_000);
        w.unreachable.clear();
        w.step("A reachable again: the map-server resends until acknowledged");
        w.tick_for(3_000);
    } else {
        w.tick_for(1_000);
    }
}

#[test]
fn mobility() {
    let mut w = World::new(
        "Mobility: a dynamic EID first detected at xTR-A moves to xTR-B. B registers it, the\n\
         map-server sends A an unsolicited Map-Notify (the first is lost and resent, then\n\
         acknowledged), and A withdraws the host:\n\
         away table entry, host route removed and the new locators cached.",
    );
    moved(&mut w, true);
    w.away_line("A");
    w.map_cache_line("A");
    notify_counters(&mut w);
    golden("mobility", &w.trace);
}

#[test]
fn smr() {
    let mut w = World::new(
        "SMR: after 10.9.0.50 moved from A to B, B's stale cache still sends to A. A packet\n\
         decapsulated at A for the away EID makes A send an SMR to B; B answers with an\n\
         SMR-invoked Map-Request through the map-resolver and re-caches the new locator.",
    );
    moved(&mut w, false);
    w.now += 1_000;
    w.step("A decapsulates a packet from B (inner 10.2.0.7) for away EID 10.9.0.50");
    w.on("A", |x, now, out| {
        x.eid_not_here(ip("10.9.0.50"), ip(B_RLOC), ip("10.2.0.7"), now, out)
    });
    w.step("a second packet within 3 s: no second SMR");
    w.on("A", |x, now, out| {
        x.eid_not_here(ip("10.9.0.50"), ip(B_RLOC), ip("10.2.0.7"), now, out)
    });
    let c = w.xtrs[0].2.counters;
    w.line(format!("A counters: smrs_sent {}", c.smrs_sent));
    let c = w.xtrs[1].2.counters;
    w.line(format!(
        "B counters: smrs_received {} smr_invoked_sent {}",
        c.smrs_received, c.smr_invoked_sent
    ));
    golden("smr", &w.trace);
}

#[test]
fn generalized_smr() {
    let mut w = World::new(
        "Generalized SMR: B has cached A's 10.1.0.0/24. A decapsulates a packet for 10.1.0.9,\n\
         a local EID without a route: the prefix enters A's away table (producer local EID),\n\
         is withdrawn from the map-server, and B is solicited with an SMR. Then B's\n\
         configuration drops its database mapping: withdrawn and away (de-configured).",
    );
    registered(&mut w);
    w.step("B resolves 10.1.0.9");
    w.miss("B", "10.1.0.9", "10.2.0.7");
    w.now += 1_000;
    w.step("A decapsulates a packet from B (inner 10.2.0.7) for 10.1.0.9: no route");
    w.on("A", |x, now, out| {
        x.local_eid_no_route(ip("10.1.0.9"), ip(B_RLOC), ip("10.2.0.7"), now, out)
    });
    w.away_line("A");
    w.now += 1_000;
    w.step("B's configuration drops database-mapping 10.2.0.0/24 (de-configured local EID)");
    let text = xtr_config(B_RLOC, "10.2.0.0/24", "10.9.0.2").replace(
        "ip lisp database-mapping 10.2.0.0/24 192.0.2.2 priority 1 weight 100\n",
        "",
    );
    let cfg = config::parse(&text, Syntax::Cli).unwrap().0;
    w.on("B", |x, now, out| {
        x.release_remapped(&cfg, out);
        x.reconfigure(&cfg, now, out);
    });
    w.tick_for(1_000);
    w.away_line("B");
    notify_counters(&mut w);
    show_sites(&mut w);
    golden("generalized_smr", &w.trace);
}
