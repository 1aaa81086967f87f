//! HSRP group instances driven against each other on a simulated LAN with a simulated clock:
//! every frame one group sends reaches the others 1 ms later, timers fire at `next_deadline`,
//! table operations are applied to a per-router table that refuses a duplicate add or a remove
//! of a missing row. Recorded scenarios are compared with golden traces in
//! `tests/golden/hsrp/` (regenerate with `UPDATE_GOLDEN=1`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use roamer_control::hsrp::show;
use roamer_control::hsrp::{
    Action, AuthSummary, Group, GroupAuth, GroupConfig, GroupStatus, State, default_virtual_mac,
    gratuitous_arp,
};
use roamer_control::wire::hsrp::{
    AuthText, HsrpAuth, HsrpOpCode, HsrpPacket, HsrpV1Repr, HsrpV2GroupState, HsrpV2Repr,
    build_hsrp_frame, parse_hsrp_frame,
};
use roamer_hal::{L3Interface, Mac, OpAction, TableEntry, TableKey, TableOp, VlanId};
use roamer_test_support::hex;

const LATENCY_MS: u64 = 1;

fn vlan(v: u16) -> VlanId {
    VlanId::new(v).unwrap()
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 10, last)
}

const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 10, 1);

fn iface_mac(last: u8) -> Mac {
    Mac([0x02, 0x00, 0x00, 0x00, 0x10, last])
}

/// Group 10 on Vlan10, VIP 10.1.10.1, router address 10.1.10.`last`.
fn cfg(version: u8, last: u8, priority: u8) -> GroupConfig {
    let mut c = GroupConfig::new(vlan(10), 10, version, ip(last), iface_mac(last));
    c.virtual_ip = Some(VIP);
    c.priority = priority;
    c
}

/// What a router has in its tables from HSRP.
type Tables = BTreeMap<TableKey, TableEntry>;

fn apply(tables: &mut Tables, op: &TableOp) {
    let key = op.entry.key();
    match op.action {
        OpAction::Add => {
            assert!(
                tables.insert(key.clone(), op.entry.clone()).is_none(),
                "duplicate add {key}"
            );
        }
        OpAction::Remove => {
            assert!(tables.remove(&key).is_some(), "remove of missing {key}");
        }
        OpAction::Update => panic!("unexpected update {key}"),
    }
}

/// A one-line description of a frame a group sent.
fn describe(frame: &[u8]) -> String {
    if frame.get(12..14) == Some(&[0x08, 0x06]) {
        let vip = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
        return format!("garp {vip} is-at {}", Mac(frame[6..12].try_into().unwrap()));
    }
    let f = parse_hsrp_frame(frame).unwrap();
    let (op, state, prio) = match f.packet {
        HsrpPacket::V1(r) => (r.op_code, r.state, u32::from(r.priority)),
        HsrpPacket::V2(r) => (
            r.group_state.op_code,
            r.group_state.state,
            r.group_state.priority,
        ),
        other => panic!("unexpected packet {other:?}"),
    };
    format!(
        "{op:?} {state:?} prio {prio} from {} mac {}",
        f.src_ip, f.src_mac
    )
}

struct Router {
    name: &'static str,
    group: Group,
    tables: Tables,
    /// Connected to the LAN (a silent router neither sends nor receives nor ticks).
    up: bool,
    sent: Vec<(u64, Vec<u8>)>,
    adds: usize,
    removes: usize,
}

struct Lan {
    now: u64,
    routers: Vec<Router>,
    /// (delivery time, sequence, from, frame)
    queue: Vec<(u64, u64, usize, Vec<u8>)>,
    seq: u64,
    trace: String,
}

impl Lan {
    fn new() -> Self {
        Lan {
            now: 0,
            routers: Vec::new(),
            queue: Vec::new(),
            seq: 0,
            trace: String::new(),
        }
    }

    fn add(&mut self, name: &'static str, cfg: GroupConfig) -> usize {
        let (group, actions) = Group::new(cfg, self.now);
        let i = self.routers.len();
        self.routers.push(Router {
            name,
            group,
            tables: Tables::new(),
            up: true,
            sent: Vec::new(),
            adds: 0,
            removes: 0,
        });
        let _ = writeln!(
            self.trace,
            "{:>7} {name} enabled, {:?}",
            self.now,
            self.routers[i].group.state()
        );
        self.handle(i, actions);
        i
    }

    fn handle(&mut self, i: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(frame) => {
                    let r = &mut self.routers[i];
                    let _ = writeln!(
                        self.trace,
                        "{:>7} {} sends {}",
                        self.now,
                        r.name,
                        describe(&frame)
                    );
                    r.sent.push((self.now, frame.clone()));
                    if r.up {
                        self.seq += 1;
                        self.queue.push((self.now + LATENCY_MS, self.seq, i, frame));
                    }
                }
                Action::Table(op) => {
                    let r = &mut self.routers[i];
                    let _ = writeln!(
                        self.trace,
                        "{:>7} {} table {} {}",
                        self.now,
                        r.name,
                        op.action,
                        op.entry.key()
                    );
                    apply(&mut r.tables, &op);
                    match op.action {
                        OpAction::Add => r.adds += 1,
                        _ => r.removes += 1,
                    }
                }
            }
        }
    }

    fn state_of(&self, i: usize) -> State {
        self.routers[i].group.state()
    }

    /// Runs the LAN until `until` (inclusive), logging state changes.
    fn run_until(&mut self, until: u64) {
        loop {
            let next_frame = self.queue.iter().map(|q| (q.0, q.1)).min();
            let next_timer = self
                .routers
                .iter()
                .filter(|r| r.up)
                .map(|r| r.group.next_deadline())
                .min()
                .unwrap_or(u64::MAX);
            let t = next_frame.map_or(u64::MAX, |f| f.0).min(next_timer);
            if t > until {
                self.now = until;
                return;
            }
            self.now = t.max(self.now);
            if next_frame.is_some_and(|f| f.0 == t) {
                let pos = self
                    .queue
                    .iter()
                    .position(|q| Some((q.0, q.1)) == next_frame)
                    .unwrap();
                let (_, _, from, frame) = self.queue.remove(pos);
                // HSRP frames are punted to the groups; gratuitous ARPs are not.
                if frame.get(12..14) != Some(&[0x08, 0x00]) {
                    continue;
                }
                for i in 0..self.routers.len() {
                    if i == from || !self.routers[i].up {
                        continue;
                    }
                    let before = self.routers[i].group.state();
                    let out = self.routers[i].group.receive(&frame, self.now);
                    self.log_change(i, before);
                    self.handle(i, out);
                }
            } else {
                for i in 0..self.routers.len() {
                    if self.routers[i].up && self.routers[i].group.next_deadline() <= self.now {
                        let before = self.routers[i].group.state();
                        let out = self.routers[i].group.tick(self.now);
                        self.log_change(i, before);
                        self.handle(i, out);
                    }
                }
            }
        }
    }

    fn log_change(&mut self, i: usize, before: State) {
        let after = self.routers[i].group.state();
        if after != before {
            let cause = self.routers[i]
                .group
                .last_change()
                .map(|c| format!(" ({})", c.cause))
                .unwrap_or_default();
            let _ = writeln!(
                self.trace,
                "{:>7} {} {before:?} -> {after:?}{cause}",
                self.now, self.routers[i].name
            );
        }
    }

    /// The router goes silent (crash, cable pulled): it neither sends, receives nor ticks
    /// (frames already on the wire still arrive).
    fn silence(&mut self, i: usize) {
        self.routers[i].up = false;
        let _ = writeln!(
            self.trace,
            "{:>7} {} goes silent",
            self.now, self.routers[i].name
        );
    }

    fn shutdown(&mut self, i: usize) {
        let out = self.routers[i].group.shutdown(self.now);
        let _ = writeln!(
            self.trace,
            "{:>7} {} shutdown",
            self.now, self.routers[i].name
        );
        self.handle(i, out);
    }

    fn reconfigure(&mut self, i: usize, cfg: GroupConfig) {
        let before = self.routers[i].group.state();
        let _ = writeln!(
            self.trace,
            "{:>7} {} reconfigured",
            self.now, self.routers[i].name
        );
        let out = self.routers[i].group.reconfigure(cfg, self.now);
        self.log_change(i, before);
        self.handle(i, out);
    }

    /// Only the Active router has the virtual MAC and IP in its tables.
    fn check_ownership(&self) {
        for r in &self.routers {
            let owns = !r.tables.is_empty();
            assert_eq!(
                owns,
                r.group.state() == State::Active,
                "{} in {:?} with tables {:?}",
                r.name,
                r.group.state(),
                r.tables.keys().collect::<Vec<_>>()
            );
        }
    }

    /// Time of the first transition of router `name` into `state` in the trace, if any.
    fn first_time(&self, name: &str, to: State) -> Option<u64> {
        let suffix = format!(" {name} ");
        let arrow = format!("-> {to:?}");
        self.trace.lines().find_map(|l| {
            (l.contains(&suffix) && (l.ends_with(&arrow) || l.contains(&format!("{arrow} ("))))
                .then(|| l.split_whitespace().next().unwrap().parse().unwrap())
        })
    }
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/hsrp")
        .join(name);
    roamer_test_support::assert_golden(&path, actual);
}

/// Two routers started together and left to converge.
fn converged_pair(version: u8, p1: u8, p2: u8) -> Lan {
    let mut lan = Lan::new();
    lan.add("R1", cfg(version, 2, p1));
    lan.add("R2", cfg(version, 3, p2));
    lan.run_until(60_000);
    lan.check_ownership();
    lan
}

// ----- election ---------------------------------------------------------------------------

#[test]
fn election_higher_priority_becomes_active() {
    let lan = converged_pair(1, 110, 100);
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    let r1 = lan.routers[0].group.status();
    assert_eq!(r1.active, Some(ip(2)));
    assert_eq!(r1.standby, Some(ip(3)));
    assert_eq!(r1.standby_priority, Some(100));
    let r2 = lan.routers[1].group.status();
    assert_eq!(r2.active, Some(ip(2)));
    assert_eq!(r2.active_priority, Some(110));
    assert_eq!(r2.standby, Some(ip(3)));
    // Exactly one add of each entry, no removes.
    assert_eq!(lan.routers[0].adds, 2);
    assert_eq!(lan.routers[0].removes, 0);
    assert_eq!(lan.routers[1].adds, 0);
    let vmac = default_virtual_mac(1, 10).unwrap();
    let iface = L3Interface::Vlan(vlan(10));
    assert_eq!(
        lan.routers[0].tables.values().cloned().collect::<Vec<_>>(),
        vec![
            TableEntry::RouterMac {
                iface,
                mac: vmac,
                virtual_mac: true
            },
            TableEntry::InterfaceAddress {
                iface,
                addr: IpAddr::V4(VIP),
                prefix_len: 32,
                virtual_mac: Some(vmac)
            },
        ]
    );
    golden("election_v1.trace", &lan.trace);
}

#[test]
fn election_tie_goes_to_the_higher_address() {
    let lan = converged_pair(1, 100, 100);
    assert_eq!(lan.state_of(0), State::Standby);
    assert_eq!(lan.state_of(1), State::Active, "10.1.10.3 beats 10.1.10.2");
    // Started the other way round, same result.
    let mut lan = Lan::new();
    lan.add("R2", cfg(1, 3, 100));
    lan.run_until(5_000);
    lan.add("R1", cfg(1, 2, 100));
    lan.run_until(60_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
}

#[test]
fn three_routers_one_active_one_standby_one_listen() {
    let mut lan = Lan::new();
    lan.add("R1", cfg(2, 2, 120));
    lan.add("R2", cfg(2, 3, 110));
    lan.add("R3", cfg(2, 4, 100));
    lan.run_until(90_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    assert_eq!(lan.state_of(2), State::Listen);
    let r3 = lan.routers[2].group.status();
    assert_eq!((r3.active, r3.standby), (Some(ip(2)), Some(ip(3))));
    // The Listen router sends nothing once the roles are settled.
    let quiet_since = 60_000;
    assert!(lan.routers[2].sent.iter().all(|(t, _)| *t < quiet_since));
}

// ----- failover ---------------------------------------------------------------------------

#[test]
fn standby_takes_over_after_the_hold_time() {
    let mut lan = converged_pair(1, 110, 100);
    let last_hello = lan.routers[0].sent.last().unwrap().0;
    lan.silence(0);
    lan.run_until(last_hello + 9_000);
    assert_eq!(lan.state_of(1), State::Standby, "not before the hold time");
    lan.run_until(last_hello + 12_000);
    assert_eq!(lan.state_of(1), State::Active);
    let took_over = lan.first_time("R2", State::Active).unwrap();
    // The last hello reached R2 1 ms after it was sent; hold time 10 s from then.
    assert_eq!(took_over, last_hello + LATENCY_MS + 10_000);
    // R2 programmed the vMAC and VIP once, and announced them with a gratuitous ARP.
    let r2 = &lan.routers[1];
    assert_eq!((r2.adds, r2.removes), (2, 0));
    let vmac = default_virtual_mac(1, 10).unwrap();
    assert!(
        r2.sent
            .iter()
            .any(|(t, f)| *t == took_over && *f == gratuitous_arp(vmac, VIP))
    );
    let r1 = &lan.routers[0];
    assert_eq!(
        r1.group.state(),
        State::Active,
        "R1 has not noticed anything"
    );
    golden("failover_v1.trace", &lan.trace);
}

#[test]
fn v2_millisecond_timers_fail_over_within_the_hold_time() {
    let mut lan = Lan::new();
    let mut c1 = cfg(2, 2, 110);
    let mut c2 = cfg(2, 3, 100);
    for c in [&mut c1, &mut c2] {
        c.hello_ms = 250;
        c.hold_ms = 750;
    }
    lan.add("R1", c1);
    lan.add("R2", c2);
    lan.run_until(5_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    // Hellos every 250 ms while Active.
    let r1_times: Vec<u64> = lan.routers[0]
        .sent
        .iter()
        .filter(|(t, _)| *t > 3_000)
        .map(|(t, _)| *t)
        .collect();
    assert!(
        r1_times.windows(2).all(|w| w[1] - w[0] == 250),
        "{r1_times:?}"
    );
    // On the wire: v2, hello 250 ms, hold 750 ms, Active = 6, from the vMAC to 224.0.0.102.
    let (_, last) = lan.routers[0].sent.last().unwrap();
    let f = parse_hsrp_frame(last).unwrap();
    let HsrpPacket::V2(r) = &f.packet else {
        panic!("not v2")
    };
    assert_eq!(r.group_state.hellotime_ms, 250);
    assert_eq!(r.group_state.holdtime_ms, 750);
    assert_eq!(r.group_state.identifier, iface_mac(2));
    assert_eq!(f.src_mac, default_virtual_mac(2, 10).unwrap());
    assert_eq!(f.dst_ip, IpAddr::V4(Ipv4Addr::new(224, 0, 0, 102)));
    let payload = f.payload(last);
    assert_eq!(payload[..5], [0x01, 0x28, 0x02, 0x00, 0x06]);

    let last_hello = lan.routers[0].sent.last().unwrap().0;
    lan.silence(0);
    lan.run_until(last_hello + 2_000);
    assert_eq!(lan.state_of(1), State::Active);
    assert_eq!(
        lan.first_time("R2", State::Active).unwrap(),
        last_hello + LATENCY_MS + 750
    );
    lan.check_ownership();
}

#[test]
fn shutdown_resigns_and_the_standby_takes_over_at_once() {
    let mut lan = converged_pair(2, 110, 100);
    lan.shutdown(0);
    let vmac = default_virtual_mac(2, 10).unwrap();
    // The resign is sent from the vMAC, then the entries are withdrawn.
    let (t, resign) = lan.routers[0].sent.last().unwrap();
    assert_eq!(*t, 60_000);
    let f = parse_hsrp_frame(resign).unwrap();
    let HsrpPacket::V2(r) = f.packet else {
        panic!("not v2")
    };
    assert_eq!(r.group_state.op_code, HsrpOpCode::Resign);
    assert_eq!(r.group_state.state, State::Active);
    assert_eq!(f.src_mac, vmac);
    assert_eq!((lan.routers[0].adds, lan.routers[0].removes), (2, 2));
    assert!(lan.routers[0].tables.is_empty());
    assert_eq!(lan.state_of(0), State::Initial);
    assert_eq!(lan.routers[0].group.next_deadline(), u64::MAX);
    lan.run_until(60_000 + LATENCY_MS);
    assert_eq!(lan.state_of(1), State::Active, "resign → Active at once");
    lan.check_ownership();
    // Re-enabled, R1 (higher priority, no preempt) comes back as Standby.
    let out = lan.routers[0].group.enable(lan.now);
    lan.handle(0, out);
    lan.run_until(120_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Standby);
    assert_eq!(lan.state_of(1), State::Active);
}

// ----- preemption -------------------------------------------------------------------------

/// R1 (100) Active, R2 (90) Standby; R3 (`p3`, preempt `preempt`) joins at 60 s.
fn late_higher_router(preempt: Option<u32>) -> Lan {
    let mut lan = converged_pair(1, 100, 90);
    let mut c3 = cfg(1, 4, 120);
    c3.preempt = preempt;
    lan.add("R3", c3);
    lan
}

#[test]
fn without_preempt_a_higher_priority_router_waits() {
    let mut lan = late_higher_router(None);
    lan.run_until(180_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(
        lan.state_of(2),
        State::Standby,
        "R3 takes the standby role only"
    );
    assert_eq!(lan.state_of(1), State::Listen);
    assert_eq!(lan.routers[0].removes, 0);
}

#[test]
fn preempt_coups_at_the_first_hello_of_the_lower_active() {
    let mut lan = late_higher_router(Some(0));
    lan.run_until(63_100);
    lan.check_ownership();
    assert_eq!(lan.state_of(2), State::Active);
    let took = lan.first_time("R3", State::Active).unwrap();
    assert!(
        took <= 60_000 + 3_000 + LATENCY_MS,
        "at R1's next hello: {took}"
    );
    // R3 sent a coup before its first Active hello; R1 resigned and withdrew.
    let r3: Vec<String> = lan.routers[2]
        .sent
        .iter()
        .map(|(_, f)| describe(f))
        .collect();
    let coup = r3
        .iter()
        .position(|d| d.starts_with("Coup Speak prio 120"))
        .unwrap();
    assert!(r3[coup + 1].starts_with("Hello Active prio 120"));
    assert!(r3[coup + 2].starts_with("garp 10.1.10.1"));
    let r1: Vec<String> = lan.routers[0]
        .sent
        .iter()
        .map(|(_, f)| describe(f))
        .collect();
    assert!(
        r1.iter()
            .any(|d| d.starts_with("Resign Active prio 100 from 10.1.10.2 mac 0000.0c07.ac0a"))
    );
    assert_eq!((lan.routers[0].adds, lan.routers[0].removes), (2, 2));
    lan.run_until(120_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Standby);
    assert_eq!(lan.state_of(1), State::Listen);
    golden("preempt_v1.trace", &lan.trace);
}

/// Log lines written on this thread while `f` runs, as the daemon's fmt subscriber would print
/// them. The subscriber is the process-wide default, installed once: a scoped one (and the
/// callsite interest cache it needs rebuilt) raced with the other tests' threads, which could
/// cache "never" for a callsite and lose a line. Lines from other threads are discarded.
fn logged(f: impl FnOnce()) -> String {
    use std::cell::RefCell;
    use std::sync::Once;
    thread_local! {
        static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }
    struct ThreadSink;
    impl std::io::Write for ThreadSink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(buf) = c.borrow_mut().as_mut() {
                    buf.extend_from_slice(b);
                }
            });
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadSink)
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    String::from_utf8(bytes).unwrap()
}

/// Every state change is logged with its cause; losing Active to another router's coup is a
/// WARN naming that router; the last change and its cause show in `show hsrp` and its JSON.
#[test]
fn state_changes_are_logged_with_their_cause_and_shown() {
    let mut lan = None;
    let log = logged(|| {
        let mut l = late_higher_router(Some(0));
        l.run_until(63_100);
        lan = Some(l);
    });
    let lan = lan.unwrap();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
            .to_string()
    };
    let takeover = line("Vlan10 Grp 10 state Active -> Speak");
    assert!(takeover.contains("WARN"), "{takeover}");
    assert!(
        takeover.contains("coup from 10.1.10.4, priority 120")
            && takeover.contains("peer=10.1.10.4"),
        "{takeover}"
    );
    let preempt = line("state Speak -> Active (preempted lower-priority Active 10.1.10.2)");
    assert!(
        preempt.contains("INFO") && preempt.contains("notice=true"),
        "{preempt}"
    );
    let expiry = line("Active (no Standby router heard within the hold time)");
    assert!(
        expiry.contains("INFO") && expiry.contains("cause=\"hold-expired\""),
        "{expiry}"
    );
    let changes = log
        .lines()
        .filter(|l| l.contains(" state ") && l.contains(" -> "))
        .count();
    let traced = lan.trace.lines().filter(|l| l.contains(" -> ")).count();
    assert!(
        changes >= traced,
        "every change is logged: {changes} < {traced}\n{log}"
    );

    let r1 = lan.routers[0].group.status_at(62_002 + 1_000);
    let c = r1.last_change.unwrap();
    assert_eq!((c.from, c.to), (State::Active, State::Speak));
    assert!(c.is_takeover());
    let d = show::detail(&[r1]);
    assert!(
        d.text
            .contains("    Last state change Active -> Speak: coup from 10.1.10.4, priority 120\n"),
        "{}",
        d.text
    );
    assert!(
        d.text.contains(
            "  5 state changes, last state change 00:00:01\n    Last state change Active"
        ),
        "{}",
        d.text
    );
    let row = &d.json["TABLE_grp_detail"]["ROW_grp_detail"][0];
    assert_eq!(row["sh_last_state_change_reason"], "coup");
    assert_eq!(row["sh_last_state_change_peer"], "10.1.10.4");
    assert_eq!(row["sh_last_state_change_from"], "Active");
    assert_eq!(row["sh_last_state_change"], "1");
}

#[test]
fn preempt_waits_for_the_delay() {
    let mut lan = late_higher_router(Some(30));
    lan.run_until(60_000 + 3_000 + 30_000 - 1_000);
    assert_ne!(lan.state_of(2), State::Active, "not before the delay");
    lan.run_until(100_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(2), State::Active);
    let took = lan.first_time("R3", State::Active).unwrap();
    // The delay starts at the first hello R3 hears from R1 (within 3 s of joining).
    assert!((90_000..=93_100).contains(&took), "took over at {took}");
}

#[test]
fn lowering_the_active_priority_lets_a_preempting_standby_take_over() {
    let mut lan = Lan::new();
    lan.add("R1", cfg(1, 2, 110));
    let mut c2 = cfg(1, 3, 100);
    c2.preempt = Some(0);
    lan.add("R2", c2);
    lan.run_until(60_000);
    assert_eq!(lan.state_of(0), State::Active);
    lan.reconfigure(0, cfg(1, 2, 90));
    lan.run_until(60_010);
    lan.check_ownership();
    assert_eq!(
        lan.state_of(1),
        State::Active,
        "the new priority is advertised at once"
    );
    lan.run_until(90_000);
    assert_eq!(lan.state_of(0), State::Standby);
}

#[test]
fn a_coup_from_a_higher_priority_router_makes_the_active_resign() {
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    let mut t = 0;
    while g.state() != State::Active {
        t = g.next_deadline();
        let _ = g.tick(t);
    }
    assert!(t <= 20_000);
    // A coup from 10.1.10.9, priority 200, built with the wire code.
    let coup = HsrpPacket::V1(common::hsrp_v1(
        HsrpOpCode::Coup,
        State::Speak,
        200,
        10,
        HsrpAuth::Text(AuthText::cisco()),
        VIP,
    ));
    let frame = build_hsrp_frame(&coup, iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    let out = g.receive(&frame, t + 5);
    assert_eq!(g.state(), State::Speak);
    let vmac = default_virtual_mac(1, 10).unwrap();
    let sends: Vec<String> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send(f) => Some(describe(f)),
            Action::Table(_) => None,
        })
        .collect();
    assert_eq!(
        sends,
        vec![
            format!("Resign Active prio 100 from 10.1.10.2 mac {vmac}"),
            format!("Hello Speak prio 100 from 10.1.10.2 mac {}", iface_mac(2)),
        ]
    );
    let removes: Vec<&TableOp> = out
        .iter()
        .filter_map(|a| match a {
            Action::Table(op) => Some(op),
            Action::Send(_) => None,
        })
        .collect();
    assert_eq!(removes.len(), 2);
    assert!(removes.iter().all(|op| op.action == OpAction::Remove));
    assert_eq!(g.status().active, Some(ip(9)));

    // A coup from a lower-priority router is ignored by an Active router.
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    while g.state() != State::Active {
        let d = g.next_deadline();
        let _ = g.tick(d);
    }
    let low = HsrpPacket::V1(HsrpV1Repr {
        priority: 50,
        ..match coup {
            HsrpPacket::V1(r) => r,
            _ => unreachable!(),
        }
    });
    let frame = build_hsrp_frame(&low, iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    assert!(g.receive(&frame, 30_000).is_empty());
    assert_eq!(g.state(), State::Active);
}

#[test]
fn an_active_router_hearing_a_lower_active_sends_a_coup() {
    // Split brain healed: both Active when the link comes back.
    let (mut g, _) = Group::new(cfg(2, 2, 100), 0);
    while g.state() != State::Active {
        let d = g.next_deadline();
        let _ = g.tick(d);
    }
    let hello = HsrpPacket::V2(HsrpV2Repr {
        group_state: HsrpV2GroupState {
            op_code: HsrpOpCode::Hello,
            state: State::Active,
            group: 10,
            identifier: iface_mac(1),
            priority: 100,
            hellotime_ms: 3000,
            holdtime_ms: 10000,
            virtual_ip: IpAddr::V4(VIP),
        },
        interface_state: None,
        auth: HsrpAuth::Text(AuthText::cisco()),
    });
    let vmac = default_virtual_mac(2, 10).unwrap();
    let frame = build_hsrp_frame(&hello, vmac, IpAddr::V4(ip(1)), None).unwrap();
    let out = g.receive(&frame, 40_000);
    assert_eq!(g.state(), State::Active);
    let [Action::Send(coup)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        describe(coup),
        format!("Coup Active prio 100 from 10.1.10.2 mac {vmac}")
    );
}

// ----- authentication and bad input ----------------------------------------------------

#[test]
fn wrong_text_authentication_is_ignored_and_counted() {
    let mut lan = Lan::new();
    let mut c1 = cfg(1, 2, 110);
    c1.auth = GroupAuth::Text(b"secret".to_vec());
    lan.add("R1", c1);
    lan.add("R2", cfg(1, 3, 100));
    lan.run_until(60_000);
    // Neither hears the other: both Active (and both count the other's hellos).
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Active);
    let s1 = lan.routers[0].group.status();
    let s2 = lan.routers[1].group.status();
    assert!(s1.auth_failures > 10, "{}", s1.auth_failures);
    assert!(s2.auth_failures > 10, "{}", s2.auth_failures);
    assert_eq!((s1.malformed, s2.malformed), (0, 0));
    assert_eq!(s1.standby, None);
    assert_eq!(s1.auth, AuthSummary::Text { default: false });
    assert_eq!(s2.auth, AuthSummary::Text { default: true });
    // Debug output never shows the key.
    let dbg = format!("{:?}", lan.routers[0].group);
    assert!(
        !dbg.contains("secret") && !dbg.contains("115, 101, 99"),
        "{dbg}"
    );
}

#[test]
fn md5_authentication_converges_and_a_wrong_key_is_ignored_and_counted() {
    let mut lan = Lan::new();
    for (name, last, prio) in [("R1", 2, 110), ("R2", 3, 100)] {
        let mut c = cfg(2, last, prio);
        c.auth = GroupAuth::Md5(b"k3y-string".to_vec());
        lan.add(name, c);
    }
    let mut c3 = cfg(2, 4, 200);
    c3.auth = GroupAuth::Md5(b"wrong".to_vec());
    lan.add("R3", c3);
    lan.run_until(90_000);
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    assert_eq!(lan.state_of(2), State::Active, "R3 hears nobody");
    for i in 0..2 {
        let s = lan.routers[i].group.status();
        assert!(s.auth_failures > 10);
        assert_eq!(s.active, Some(ip(2)), "R3's hellos never counted as Active");
        assert_eq!(s.auth, AuthSummary::Md5);
    }
    // The v1 MD5 path too.
    let mut lan = Lan::new();
    for (name, last, prio) in [("R1", 2, 110), ("R2", 3, 100)] {
        let mut c = cfg(1, last, prio);
        c.auth = GroupAuth::Md5(b"k3y".to_vec());
        lan.add(name, c);
    }
    lan.run_until(60_000);
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    assert_eq!(lan.routers[0].group.status().auth_failures, 0);
    let dbg = format!("{:?}", lan.routers[0].group);
    assert!(!dbg.contains("k3y"), "{dbg}");
}

/// Everything of a status except the counters and the time-relative fields.
fn stable(s: &GroupStatus) -> GroupStatus {
    GroupStatus {
        auth_failures: 0,
        malformed: 0,
        now_ms: 0,
        active_expires_ms: None,
        standby_expires_ms: None,
        next_hello_ms: None,
        ..s.clone()
    }
}

#[test]
fn malformed_frames_are_counted_and_change_nothing() {
    let mut lan = converged_pair(1, 110, 100);
    let (_, hello) = lan.routers[0].sent.last().unwrap().clone();
    let g = &mut lan.routers[1].group;
    let before = g.status();
    let deadline = g.next_deadline();
    let mut bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 3],
        hello[..hello.len() - 1].to_vec(),
        hello[..30].to_vec(),
    ];
    // Corrupt UDP checksum, IPv4 checksum, HSRP state code, and the version octet.
    for (at, xor) in [(hello.len() - 1, 0x01), (24, 0x10), (44, 0x40), (42, 0x07)] {
        let mut f = hello.clone();
        f[at] ^= xor;
        bad.push(f);
    }
    // Every file of the fuzz corpus that is not a well-formed frame of another group (one is
    // the reference's worked v1 hello for group 10, which this group would rightly act on).
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/hsrp");
    let mut files = 0;
    for e in std::fs::read_dir(corpus).unwrap().flatten() {
        if !e.path().is_file() {
            continue;
        }
        let bytes = std::fs::read(e.path()).unwrap();
        let ours = matches!(parse_hsrp_frame(&bytes), Ok(f)
            if matches!(f.packet, HsrpPacket::V1(r) if r.group == 10));
        if !ours {
            bad.push(bytes);
            files += 1;
        }
    }
    assert!(files > 0, "the fuzz corpus is there");
    let mut malformed = 0;
    for f in &bad {
        let out = g.receive(f, 60_500);
        assert!(out.is_empty());
        if parse_hsrp_frame(f).is_err() {
            malformed += 1;
        }
    }
    assert!(malformed >= 8);
    let after = g.status();
    assert_eq!(after.malformed, before.malformed + malformed);
    assert_eq!(stable(&after), stable(&before));
    assert_eq!(g.next_deadline(), deadline, "no timer moved");
}

#[test]
fn other_groups_versions_and_vlans_are_ignored_silently() {
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    let base = common::hsrp_v1(
        HsrpOpCode::Hello,
        State::Active,
        255,
        11,
        HsrpAuth::Text(AuthText::cisco()),
        VIP,
    );
    let other_group =
        build_hsrp_frame(&HsrpPacket::V1(base), iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    assert!(g.receive(&other_group, 100).is_empty());
    // A v2 hello for group 10 reaches a v1 group 10: ignored.
    let v2 = HsrpPacket::V2(HsrpV2Repr {
        group_state: HsrpV2GroupState {
            op_code: HsrpOpCode::Hello,
            state: State::Active,
            group: 10,
            identifier: iface_mac(9),
            priority: 255,
            hellotime_ms: 3000,
            holdtime_ms: 10000,
            virtual_ip: IpAddr::V4(VIP),
        },
        interface_state: None,
        auth: HsrpAuth::Text(AuthText::cisco()),
    });
    let v2 = build_hsrp_frame(&v2, iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    assert!(g.receive(&v2, 200).is_empty());
    // Right group, but tagged for VLAN 20.
    let mut ours = base;
    ours.group = 10;
    let f = build_hsrp_frame(&HsrpPacket::V1(ours), iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    let mut tagged = f[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 20]);
    tagged.extend_from_slice(&f[12..]);
    assert!(g.receive(&tagged, 300).is_empty());
    let s = g.status();
    assert_eq!((s.active, s.auth_failures, s.malformed), (None, 0, 0));
    // Tagged for VLAN 10 it counts: a higher-priority Active is learnt.
    tagged[15] = 10;
    let _ = g.receive(&tagged, 400);
    assert_eq!(g.status().active, Some(ip(9)));
    assert_eq!(g.state(), State::Listen);
}

// ----- learning, virtual MAC, reconfiguration ------------------------------------------

#[test]
fn a_group_without_a_virtual_ip_learns_it_from_the_active_router() {
    let mut lan = converged_pair(1, 110, 100);
    let mut c3 = cfg(1, 4, 90);
    c3.virtual_ip = None;
    let i = lan.add("R3", c3);
    assert_eq!(lan.state_of(i), State::Learn);
    assert_eq!(lan.routers[i].group.next_deadline(), 60_000 + 10_000);
    lan.run_until(64_000);
    assert_eq!(lan.state_of(i), State::Listen);
    let s = lan.routers[i].group.status();
    assert_eq!((s.vip, s.vip_learnt), (Some(VIP), true));
    lan.run_until(120_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(i), State::Listen);
}

#[test]
fn configuring_the_virtual_ip_moves_a_learning_group_to_listen() {
    let mut c = cfg(2, 2, 100);
    c.virtual_ip = None;
    let (mut g, _) = Group::new(c.clone(), 0);
    assert_eq!(g.state(), State::Learn);
    // Alone and without a VIP it never speaks.
    for _ in 0..5 {
        let out = g.tick(g.next_deadline().min(50_000));
        assert!(out.is_empty());
    }
    assert_eq!(g.state(), State::Learn);
    c.virtual_ip = Some(VIP);
    let out = g.reconfigure(c.clone(), 50_000);
    assert!(out.is_empty());
    assert_eq!(g.state(), State::Listen);
    let sent = drive_alone(&mut g, State::Active);
    assert_eq!(sent.len(), 2, "hello and gratuitous ARP");
    // Removing the VIP again restarts the group: resign, withdraw, Learn.
    c.virtual_ip = None;
    let out = g.reconfigure(c, 90_000);
    assert_eq!(g.state(), State::Learn);
    let removes = out
        .iter()
        .filter(|a| matches!(a, Action::Table(op) if op.action == OpAction::Remove))
        .count();
    assert_eq!(removes, 2);
    assert!(matches!(&out[0], Action::Send(f) if describe(f).starts_with("Resign Active")));
}

#[test]
fn virtual_mac_defaults_and_override() {
    assert_eq!(
        default_virtual_mac(1, 100).unwrap().to_string(),
        "0000.0c07.ac64"
    );
    assert_eq!(
        default_virtual_mac(2, 100).unwrap().to_string(),
        "0000.0c9f.f064"
    );
    assert_eq!(
        default_virtual_mac(2, 4095).unwrap().to_string(),
        "0000.0c9f.ffff"
    );
    assert_eq!(default_virtual_mac(1, 256), None);
    assert_eq!(default_virtual_mac(2, 4096), None);
    let c = GroupConfig::new(vlan(10), 100, 1, ip(2), iface_mac(2));
    assert_eq!(c.virtual_mac.to_string(), "0000.0c07.ac64");
    let c = GroupConfig::new(vlan(10), 100, 2, ip(2), iface_mac(2));
    assert_eq!(c.virtual_mac.to_string(), "0000.0c9f.f064");

    // mac-address 0000.0e1d.010c (LISP across-subnet mobility): used in tables, hellos, ARP.
    let custom = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
    let mut c = cfg(2, 2, 100);
    c.virtual_mac = custom;
    let (mut g, _) = Group::new(c, 0);
    let mut out = Vec::new();
    while g.state() != State::Active {
        let d = g.next_deadline();
        out = g.tick(d);
    }
    let s = g.status();
    assert_eq!((s.vmac, s.vmac_default), (custom, false));
    let adds: Vec<&TableEntry> = out
        .iter()
        .filter_map(|a| match a {
            Action::Table(op) if op.action == OpAction::Add => Some(&op.entry),
            _ => None,
        })
        .collect();
    assert_eq!(adds.len(), 2);
    assert!(
        matches!(adds[0], TableEntry::RouterMac { mac, virtual_mac: true, .. } if *mac == custom)
    );
    assert!(
        matches!(adds[1], TableEntry::InterfaceAddress { virtual_mac: Some(m), prefix_len: 32, .. } if *m == custom)
    );
    assert!(out.contains(&Action::Send(gratuitous_arp(custom, VIP))));
    let hello = out
        .iter()
        .find_map(|a| match a {
            Action::Send(f) if f[12..14] == [0x08, 0x00] => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(parse_hsrp_frame(hello).unwrap().src_mac, custom);
}

#[test]
fn gratuitous_arp_bytes() {
    let vmac = default_virtual_mac(1, 10).unwrap();
    let garp = gratuitous_arp(vmac, Ipv4Addr::new(10, 10, 10, 1));
    let expected: Vec<u8> = [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // dst broadcast
        &[0x00, 0x00, 0x0c, 0x07, 0xac, 0x0a],     // src vMAC
        &[0x08, 0x06],                             // ARP
        &[0x00, 0x01, 0x08, 0x00, 0x06, 0x04],     // Ethernet / IPv4
        &[0x00, 0x02],                             // op 2 (reply)
        &[0x00, 0x00, 0x0c, 0x07, 0xac, 0x0a],     // sender HW = vMAC
        &[10, 10, 10, 1],                          // sender IP = VIP
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],     // target HW broadcast
        &[10, 10, 10, 1],                          // target IP = VIP
    ]
    .concat();
    assert_eq!(garp, expected);
    assert_eq!(garp.len(), 42);
}

#[test]
fn exactly_one_add_on_becoming_active_and_removes_on_leaving() {
    // Preempt back and forth by changing priorities; count every op on R1.
    let mut lan = Lan::new();
    let mut c1 = cfg(1, 2, 110);
    c1.preempt = Some(0);
    let mut c2 = cfg(1, 3, 100);
    c2.preempt = Some(0);
    lan.add("R1", c1.clone());
    lan.add("R2", c2);
    lan.run_until(60_000);
    for (k, prio) in [90u8, 110, 90, 110].into_iter().enumerate() {
        c1.priority = prio;
        lan.reconfigure(0, c1.clone());
        lan.run_until(60_000 + (k as u64 + 1) * 20_000);
        lan.check_ownership();
    }
    let r1 = &lan.routers[0];
    assert_eq!(r1.group.state(), State::Active);
    // Active three times (start, and twice regained), left twice.
    assert_eq!((r1.adds, r1.removes), (6, 4));
    let r2 = &lan.routers[1];
    assert_eq!((r2.adds, r2.removes), (4, 4));
    // A gratuitous ARP for every entry into Active.
    let garps = r1
        .sent
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x06])
        .count();
    assert_eq!(garps, 3);
}

#[test]
fn changing_the_vip_or_mac_while_active_reprograms_and_announces() {
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    while g.state() != State::Active {
        let d = g.next_deadline();
        let _ = g.tick(d);
    }
    let mut tables = Tables::new();
    let vmac = default_virtual_mac(1, 10).unwrap();
    for e in [
        TableEntry::RouterMac {
            iface: L3Interface::Vlan(vlan(10)),
            mac: vmac,
            virtual_mac: true,
        },
        TableEntry::InterfaceAddress {
            iface: L3Interface::Vlan(vlan(10)),
            addr: IpAddr::V4(VIP),
            prefix_len: 32,
            virtual_mac: Some(vmac),
        },
    ] {
        apply(&mut tables, &TableOp::add(e));
    }
    let new_vip = Ipv4Addr::new(10, 1, 10, 254);
    let custom = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
    let mut c = cfg(1, 2, 100);
    c.virtual_ip = Some(new_vip);
    c.virtual_mac = custom;
    let out = g.reconfigure(c, 25_000);
    for a in &out {
        if let Action::Table(op) = a {
            apply(&mut tables, op);
        }
    }
    assert_eq!(g.state(), State::Active);
    assert_eq!(tables.len(), 2);
    assert!(tables.contains_key(&TableKey::RouterMac(L3Interface::Vlan(vlan(10)), custom)));
    assert!(tables.contains_key(&TableKey::InterfaceAddress(
        L3Interface::Vlan(vlan(10)),
        IpAddr::V4(new_vip)
    )));
    assert!(out.contains(&Action::Send(gratuitous_arp(custom, new_vip))));
    // The hello announcing the change comes from the new vMAC.
    assert!(out.iter().any(|a| matches!(a, Action::Send(f)
        if f[12..14] == [0x08, 0x00] && parse_hsrp_frame(f).unwrap().src_mac == custom)));
}

#[test]
fn invalid_configurations_leave_the_group_disabled() {
    let mut c = cfg(1, 2, 100);
    c.group = 300;
    assert!(c.validate().is_err());
    let (g, out) = Group::new(c, 0);
    assert!(out.is_empty());
    assert_eq!(g.state(), State::Disabled);
    assert_eq!(g.next_deadline(), u64::MAX);
    let mut c = cfg(1, 2, 100);
    c.auth = GroupAuth::Text(b"longer-than-8".to_vec());
    assert!(c.validate().is_err());
    let (mut g, _) = Group::new(c.clone(), 0);
    assert_eq!(g.state(), State::Disabled);
    assert!(g.status().disabled_reason.is_some());
    // Fixed by reconfiguration: the group starts.
    c.auth = GroupAuth::default();
    let _ = g.reconfigure(c, 1_000);
    assert_eq!(g.state(), State::Listen);
    assert!(cfg(2, 2, 100).validate().is_ok());
}

// ----- show ---------------------------------------------------------------------------

fn show_groups() -> Vec<GroupStatus> {
    let mut lan = Lan::new();
    let mut c1 = cfg(1, 2, 110);
    c1.preempt = Some(0);
    lan.add("R1", c1);
    lan.add("R2", cfg(1, 3, 90));
    let mut v2 = GroupConfig::new(vlan(20), 20, 2, Ipv4Addr::new(10, 1, 20, 2), iface_mac(2));
    v2.virtual_ip = Some(Ipv4Addr::new(10, 1, 20, 1));
    v2.priority = 90;
    v2.virtual_mac = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
    v2.hello_ms = 250;
    v2.hold_ms = 750;
    v2.preempt = Some(300);
    v2.auth = GroupAuth::Md5(b"hidden-key".to_vec());
    let mut peer = GroupConfig::new(vlan(20), 20, 2, Ipv4Addr::new(10, 1, 20, 3), iface_mac(3));
    peer.virtual_ip = v2.virtual_ip;
    peer.virtual_mac = v2.virtual_mac;
    peer.hello_ms = 250;
    peer.hold_ms = 750;
    peer.auth = v2.auth.clone();
    lan.add("R1v20", v2);
    lan.add("R2v20", peer);
    lan.run_until(61_234);
    let mut out = vec![lan.routers[2].group.status(), lan.routers[0].group.status()];
    // A group that has learnt nothing yet.
    let mut learn = GroupConfig::new(vlan(30), 30, 1, Ipv4Addr::new(10, 1, 30, 2), iface_mac(2));
    learn.auth = GroupAuth::None;
    let (g, _) = Group::new(learn, 61_000);
    out.push(g.status_at(61_234));
    out
}

#[test]
fn show_hsrp_brief_golden() {
    let groups = show_groups();
    let b = show::brief(&groups);
    golden("show_hsrp_brief.txt", &b.text);
    let rows = b.json["TABLE_grp_detail"]["ROW_grp_detail"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["sh_if_index"], "Vlan10");
    assert_eq!(rows[0]["sh_group_state"], "Active");
    assert_eq!(rows[0]["sh_standby_router_addr"], "10.1.10.3");
    assert_eq!(rows[1]["sh_group_version"], "v2");
    assert_eq!(rows[2]["sh_vip"], "0.0.0.0");
    // Column layout of the reference template.
    let header = b.text.lines().nth(3).unwrap();
    assert_eq!(
        header,
        " Interface   Grp  Prio P State    Active addr      Standby addr     Group addr"
    );
    let row = b.text.lines().nth(4).unwrap();
    assert_eq!(
        row,
        "  Vlan10     10   110  P Active   local            10.1.10.3        10.1.10.1       (conf)"
    );
}

#[test]
fn show_hsrp_detail_golden() {
    let groups = show_groups();
    let d = show::detail(&groups);
    golden("show_hsrp.txt", &d.text);
    assert!(!d.text.contains("hidden-key"));
    assert!(!d.json.to_string().contains("hidden-key"));
    let rows = d.json["TABLE_grp_detail"]["ROW_grp_detail"]
        .as_array()
        .unwrap();
    assert_eq!(rows[0]["sh_authentication_type"], "text");
    assert_eq!(rows[0]["sh_authentication_data"], "cisco");
    assert_eq!(rows[0]["sh_vmac"], "0000.0c07.ac0a");
    assert_eq!(rows[0]["sh_vmac_attr"], "(Default MAC)");
    assert_eq!(rows[1]["sh_authentication_type"], "md5");
    assert_eq!(rows[1]["sh_keystring_attr"], "hidden");
    assert_eq!(rows[1]["sh_cur_hello"], "250");
    assert_eq!(rows[1]["sh_cur_hello_attr"], "msec");
    assert_eq!(rows[1]["sh_ip_redund_name"], "hsrp-Vlan20-20");
    assert_eq!(rows[0]["sh_auth_failures"], "0");
}

// ----- bytes on the wire ----------------------------------------------------------------

/// Ticks a lone group until it reaches `state`; returns the frames sent on that transition.
fn drive_alone(g: &mut Group, state: State) -> Vec<Vec<u8>> {
    for _ in 0..10 {
        let out = g.tick(g.next_deadline());
        if g.state() == state {
            return out
                .into_iter()
                .filter_map(|a| match a {
                    Action::Send(f) => Some(f),
                    Action::Table(_) => None,
                })
                .collect();
        }
    }
    panic!("never reached {state:?}");
}

#[test]
fn active_hellos_match_the_reference_frames_byte_for_byte() {
    // protocols.md §7.2 / §7.4 worked hellos (Active, prio 110, group 10, VIP 10.10.10.1,
    // from 10.10.10.2), as full frames (the same bytes as tests/hsrp_wire_vectors.rs).
    let v1_frame = hex(
        "01005e00000200000c07ac0a080045c00030000000000111c4ef0a0a0a02e0000002\
         07c107c1001c7ddc000010030a6e0a00636973636f0000000a0a0a01",
    );
    let v2_frame = hex(
        "01005e00006600000c9ff00a080045c00050000000000111c46b0a0a0a02e0000066\
         07c107c1003cfb9b012802000604000a0011223344550000006e00000bb800002710\
         0a0a0a010000000000000000000000000308636973636f000000",
    );
    for (version, expected) in [(1, v1_frame), (2, v2_frame)] {
        let mut c = GroupConfig::new(
            vlan(10),
            10,
            version,
            Ipv4Addr::new(10, 10, 10, 2),
            Mac([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
        );
        c.virtual_ip = Some(Ipv4Addr::new(10, 10, 10, 1));
        c.priority = 110;
        let (mut g, _) = Group::new(c, 0);
        let sent = drive_alone(&mut g, State::Active);
        assert_eq!(sent[0], expected, "v{version}");
    }
}

#[test]
fn md5_hello_matches_a_cisco_capture() {
    // John the Ripper's first `hsrp` vector (Cisco IOS): v1 Speak, prio 100, group 1,
    // VIP 10.0.0.100, from 10.0.0.20, key id 0, key "password12345".
    let mut c = GroupConfig::new(vlan(1), 1, 1, Ipv4Addr::new(10, 0, 0, 20), iface_mac(20));
    c.virtual_ip = Some(Ipv4Addr::new(10, 0, 0, 100));
    c.auth = GroupAuth::Md5(b"password12345".to_vec());
    let (mut g, _) = Group::new(c, 0);
    let sent = drive_alone(&mut g, State::Speak);
    let f = parse_hsrp_frame(&sent[0]).unwrap();
    let mut expected = hex(
        "000004030a64010000000000000000000a000064041c010000000a000014000000000000000000000000\
         0000000000000000",
    );
    expected[34..50].copy_from_slice(&hex("52e1db09d18d695b8fefb3730ff8d9d6"));
    assert_eq!(f.payload(&sent[0]), expected.as_slice());
}

// ----- invariants under random input --------------------------------------------------

mod random {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Input {
        /// Advance the clock and run due timers.
        Advance(u64),
        /// A packet from peer 10.1.10.(5 + peer).
        Packet {
            peer: u8,
            op: u8,
            state: u8,
            priority: u8,
            good_auth: bool,
        },
        Garbage(Vec<u8>),
        Reconfigure {
            priority: u8,
            preempt: Option<u32>,
            vip_last: u8,
        },
        Shutdown,
        Enable,
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            4 => (1u64..12_000).prop_map(Input::Advance),
            4 => (0u8..3, 0u8..3, 0u8..7, any::<u8>(), proptest::bool::weighted(0.9)).prop_map(
                |(peer, op, state, priority, good_auth)| Input::Packet {
                    peer,
                    op,
                    state,
                    priority,
                    good_auth
                }
            ),
            1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Input::Garbage),
            1 => (any::<u8>(), proptest::option::of(0u32..5), 1u8..3).prop_map(
                |(priority, preempt, vip_last)| Input::Reconfigure {
                    priority,
                    preempt,
                    vip_last
                }
            ),
            1 => Just(Input::Shutdown),
            1 => Just(Input::Enable),
        ]
    }

    fn packet(version: u8, peer: u8, op: u8, state: u8, priority: u8, good: bool) -> Vec<u8> {
        let op = HsrpOpCode::from_code(op).unwrap();
        let state = [
            State::Initial,
            State::Learn,
            State::Listen,
            State::Speak,
            State::Standby,
            State::Active,
            State::Active,
        ][usize::from(state)];
        let auth = HsrpAuth::Text(if good {
            AuthText::cisco()
        } else {
            AuthText::new(b"bad").unwrap()
        });
        let src = ip(5 + peer);
        let p = if version == 1 {
            HsrpPacket::V1(common::hsrp_v1(op, state, priority, 10, auth, VIP))
        } else {
            HsrpPacket::V2(HsrpV2Repr {
                group_state: HsrpV2GroupState {
                    op_code: op,
                    state,
                    group: 10,
                    identifier: iface_mac(5 + peer),
                    priority: u32::from(priority),
                    hellotime_ms: 3000,
                    holdtime_ms: 10000,
                    virtual_ip: IpAddr::V4(VIP),
                },
                interface_state: None,
                auth,
            })
        };
        build_hsrp_frame(&p, iface_mac(5 + peer), IpAddr::V4(src), None).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever arrives: only an Active group owns table entries (added once, removed
        /// once), a gratuitous ARP goes with every entry into Active, hellos come from the vMAC
        /// exactly when they say Active, timers always lie in the future after `tick`, and a
        /// frame that does not parse or does not authenticate changes nothing but a counter.
        #[test]
        fn invariants_hold(version in 1u8..3, inputs in proptest::collection::vec(input(), 1..60)) {
            let mut c = cfg(version, 2, 100);
            let vmac = c.virtual_mac;
            let (mut g, first) = Group::new(c.clone(), 0);
            prop_assert!(first.is_empty());
            let mut now = 0u64;
            let mut tables = Tables::new();
            for inp in inputs {
                let before = g.status_at(now);
                let deadline = g.next_deadline();
                let (out, unchanged) = match inp {
                    Input::Advance(d) => {
                        now += d;
                        let out = g.tick(now);
                        let next = g.next_deadline();
                        prop_assert!(next > now, "deadline {next} not after {now}");
                        (out, false)
                    }
                    Input::Packet { peer, op, state, priority, good_auth } => {
                        let f = packet(version, peer, op, state, priority, good_auth);
                        (g.receive(&f, now), !good_auth)
                    }
                    Input::Garbage(bytes) => {
                        let bad = parse_hsrp_frame(&bytes).is_err();
                        (g.receive(&bytes, now), bad)
                    }
                    Input::Reconfigure { priority, preempt, vip_last } => {
                        c.priority = priority;
                        c.preempt = preempt;
                        c.virtual_ip = Some(Ipv4Addr::new(10, 1, 10, vip_last));
                        (g.reconfigure(c.clone(), now), false)
                    }
                    Input::Shutdown => (g.shutdown(now), false),
                    Input::Enable => (g.enable(now), false),
                };
                if unchanged {
                    prop_assert!(out.is_empty());
                    prop_assert_eq!(stable(&g.status_at(now)), stable(&before));
                    prop_assert_eq!(g.next_deadline(), deadline);
                }
                let mut garps = 0;
                for a in &out {
                    match a {
                        Action::Table(op) => apply(&mut tables, op),
                        Action::Send(f) if f[12..14] == [0x08, 0x06] => garps += 1,
                        Action::Send(f) => {
                            let p = parse_hsrp_frame(f).unwrap();
                            let said_active = match p.packet {
                                HsrpPacket::V1(r) => r.state == State::Active,
                                HsrpPacket::V2(r) => r.group_state.state == State::Active,
                                _ => false,
                            };
                            prop_assert_eq!(p.src_mac == vmac, said_active);
                        }
                    }
                }
                let active = g.state() == State::Active;
                prop_assert_eq!(!tables.is_empty(), active);
                if active {
                    prop_assert_eq!(tables.len(), 2);
                }
                let entered = active && before.state != State::Active;
                if entered {
                    prop_assert_eq!(garps, 1);
                }
            }
        }
    }
}
