//! HSRP group instances driven against each other on a simulated LAN with a simulated clock:
//! every frame one group sends reaches the others 1 ms later, timers fire at `next_deadline`,
//! table operations are applied to a per-router table that refuses a duplicate add or a remove
//! of a missing row. Recorded scenarios are compared with golden traces in
//! `tests/golden/hsrp/` (regenerate with `UPDATE_GOLDEN=1`).
//!
//! One test binary: this file holds the simulated LAN and the helpers the modules share; the
//! tests are in one module per area.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod election;
mod failover;
mod preemption;
mod random;
mod reconfiguration;
mod show_hsrp;
mod wire;

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
