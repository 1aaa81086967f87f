//! The contract test-kit: generic checks every backend must pass.
//!
//! Each check panics with a message naming the backend and the broken rule, so a backend's test
//! file turns them into `#[test]`s with [`crate::backend_contract_tests!`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::HalError;
use crate::backend::Backend;
use crate::capacity::{Accounted, CapacityScope};
use crate::dataplane::{DataPlane, LearnedMac};
use crate::table::{L3Interface, Locator, NegativeAction, NextHop, TableEntry, TableKind, TableOp};
use crate::types::{Iid, Mac, PortId, Prefix, VlanId};

/// A distinct, valid entry number `n` of table `kind` (n < 4000).
pub fn sample_entry(kind: TableKind, n: u32) -> TableEntry {
    let n16 = u16::try_from(n % 4000).unwrap_or(0);
    let vlan = VlanId::new(1 + n16).unwrap_or_else(|_| unreachable_vlan());
    let mac = Mac([0x02, 0, 0, 0, (n >> 8) as u8, n as u8]);
    let v4 = IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8));
    let v6 = IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        0,
        0,
        0,
        (n >> 16) as u16,
        n as u16,
    ));
    let iface = L3Interface::Vlan(vlan);
    let loc = Locator {
        rloc: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        priority: 1,
        weight: 100,
    };
    match kind {
        TableKind::Vlan => TableEntry::Vlan { vlan },
        TableKind::VlanMember => TableEntry::VlanMember {
            vlan,
            port: PortId(1),
            tagged: true,
        },
        TableKind::Fdb => TableEntry::Fdb {
            vlan: VlanId::new(10).unwrap_or_else(|_| unreachable_vlan()),
            mac,
            port: PortId(1),
            is_static: false,
        },
        TableKind::RouterMac => TableEntry::RouterMac {
            iface,
            mac,
            virtual_mac: false,
        },
        TableKind::InterfaceAddress => TableEntry::InterfaceAddress {
            iface,
            addr: v4,
            prefix_len: 24,
            virtual_mac: None,
        },
        TableKind::Neighbor => TableEntry::Neighbor { iface, ip: v4, mac },
        TableKind::Ipv4Route => TableEntry::Route {
            prefix: Prefix::host(v4),
            next_hop: NextHop::Discard,
        },
        TableKind::Ipv6Route => TableEntry::Route {
            prefix: Prefix::host(v6),
            next_hop: NextHop::Discard,
        },
        TableKind::ProxyArp => TableEntry::ProxyArp { iface },
        TableKind::LispDatabase => TableEntry::LispDatabase {
            iid: Iid::default(),
            eid: Prefix::host(v4),
            locators: vec![loc],
        },
        TableKind::LispMapCache => TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: Prefix::host(v4),
            locators: vec![loc],
            negative: NegativeAction::NoAction,
        },
        TableKind::DynamicEidRange => TableEntry::DynamicEidRange {
            iface,
            map: "Roamer-1".into(),
            eid: Prefix::host(v4),
            extended_subnet: false,
            notify_group: Some(std::net::Ipv4Addr::new(239, 1, 1, 1)),
        },
        TableKind::HelloFilter => TableEntry::HelloFilter {
            port: PortId(n + 1),
        },
        TableKind::AwayEntry => TableEntry::AwayEntry {
            iid: Iid::default(),
            eid: Prefix::host(v4),
        },
    }
}

fn unreachable_vlan() -> VlanId {
    // 1 + (n % 4000) is always within 1..=4094.
    VlanId::new(1).unwrap_or_else(|e| panic!("{e}"))
}

/// The same key as `sample_entry(kind, n)` with a different value, for updates.
pub fn changed_value(entry: &TableEntry) -> TableEntry {
    let mut e = entry.clone();
    match &mut e {
        TableEntry::VlanMember { tagged, .. } => *tagged = !*tagged,
        TableEntry::Fdb { port, .. } => *port = PortId(port.0 + 1),
        TableEntry::InterfaceAddress { prefix_len, .. } => *prefix_len = 16,
        TableEntry::RouterMac { virtual_mac, .. } => *virtual_mac = !*virtual_mac,
        TableEntry::Neighbor { mac, .. } => mac.0[0] ^= 0x04,
        TableEntry::Route { next_hop, .. } => *next_hop = NextHop::Lisp,
        TableEntry::LispDatabase { locators, .. } | TableEntry::LispMapCache { locators, .. } => {
            locators.iter_mut().for_each(|l| l.weight = 50)
        }
        TableEntry::DynamicEidRange {
            extended_subnet, ..
        } => *extended_subnet = !*extended_subnet,
        // Key-only tables: an update rewrites the same row.
        TableEntry::Vlan { .. }
        | TableEntry::ProxyArp { .. }
        | TableEntry::AwayEntry { .. }
        | TableEntry::HelloFilter { .. } => {}
    }
    e
}

/// The rows of `kind`; a backend that cannot list them breaks the contract.
fn listed<B: Backend>(b: &B, kind: TableKind) -> Vec<TableEntry> {
    b.entries(kind)
        .unwrap_or_else(|e| panic!("[{}] listing {kind}: {e}", b.name()))
}

fn supported<B: Backend>(b: &B) -> Vec<TableKind> {
    b.capabilities().supported.into_iter().collect()
}

fn expect_ok(backend: &str, what: &str, r: &Result<(), HalError>) {
    if let Err(e) = r {
        panic!("[{backend}] {what}: expected Ok, got {e}");
    }
}

/// Adding, reading back, updating and removing works for every supported table.
pub fn add_update_remove<B: Backend>(mut b: B) {
    let name = b.name().to_string();
    for kind in supported(&b) {
        let e = sample_entry(kind, 7);
        let r = b.apply(&[TableOp::add(e.clone())]);
        expect_ok(&name, &format!("add {kind}"), &r[0]);
        assert!(
            listed(&b, kind).contains(&e),
            "[{name}] {kind}: added entry not listed"
        );
        let changed = changed_value(&e);
        let r = b.apply(&[TableOp::update(changed.clone())]);
        expect_ok(&name, &format!("update {kind}"), &r[0]);
        let rows = listed(&b, kind);
        assert!(
            rows.contains(&changed) && rows.len() == 1,
            "[{name}] {kind}: update not visible: {rows:?}"
        );
        let r = b.apply(&[TableOp::remove(e.clone())]);
        expect_ok(&name, &format!("remove {kind}"), &r[0]);
        assert!(
            listed(&b, kind).is_empty(),
            "[{name}] {kind}: removed entry still listed"
        );
    }
}

/// A second add of the same key is `Exists` and leaves the first value in place.
pub fn duplicates_are_refused<B: Backend>(mut b: B) {
    let name = b.name().to_string();
    for kind in supported(&b) {
        let e = sample_entry(kind, 3);
        expect_ok(&name, "first add", &b.apply(&[TableOp::add(e.clone())])[0]);
        let r = b.apply(&[TableOp::add(changed_value(&e))]);
        assert!(
            matches!(&r[0], Err(HalError::Exists { table, .. }) if *table == kind),
            "[{name}] {kind}: duplicate add gave {:?}",
            r[0]
        );
        assert_eq!(
            listed(&b, kind),
            vec![e],
            "[{name}] {kind}: duplicate changed the row"
        );
    }
}

/// Removing or updating a row that is not there is `NotFound`.
pub fn missing_entries_are_not_found<B: Backend>(mut b: B) {
    let name = b.name().to_string();
    for kind in supported(&b) {
        let e = sample_entry(kind, 11);
        for op in [TableOp::remove(e.clone()), TableOp::update(e.clone())] {
            let r = b.apply(std::slice::from_ref(&op));
            assert!(
                matches!(&r[0], Err(HalError::NotFound { table, .. }) if *table == kind),
                "[{name}] {op}: expected NotFound, got {:?}",
                r[0]
            );
        }
        assert!(listed(&b, kind).is_empty());
    }
}

/// A batch yields one result per op, in order; a failure does not stop the rest.
pub fn batch_results_in_order<B: Backend>(mut b: B) {
    let name = b.name().to_string();
    let Some(kind) = supported(&b).first().copied() else {
        panic!("[{name}] supports no table at all");
    };
    let a = sample_entry(kind, 1);
    let c = sample_entry(kind, 2);
    let batch = [
        TableOp::add(a.clone()),
        TableOp::add(a.clone()),
        TableOp::remove(sample_entry(kind, 99)),
        TableOp::add(c.clone()),
        TableOp::remove(a.clone()),
    ];
    let r = b.apply(&batch);
    assert_eq!(r.len(), batch.len(), "[{name}] one result per op");
    assert!(r[0].is_ok(), "[{name}] op 0: {:?}", r[0]);
    assert!(
        matches!(r[1], Err(HalError::Exists { .. })),
        "[{name}] op 1: {:?}",
        r[1]
    );
    assert!(
        matches!(r[2], Err(HalError::NotFound { .. })),
        "[{name}] op 2: {:?}",
        r[2]
    );
    assert!(r[3].is_ok(), "[{name}] op 3: {:?}", r[3]);
    assert!(r[4].is_ok(), "[{name}] op 4: {:?}", r[4]);
    assert_eq!(listed(&b, kind), vec![c], "[{name}] final table");
    assert!(b.apply(&[]).is_empty(), "[{name}] empty batch");
}

/// Every table outside `capabilities().supported` answers `Unsupported`, never `Ok`.
pub fn unsupported_ops_are_refused<B: Backend>(mut b: B) {
    let name = b.name().to_string();
    let caps = b.capabilities();
    for kind in TableKind::ALL
        .into_iter()
        .filter(|k| !caps.supported.contains(k))
    {
        let e = sample_entry(kind, 5);
        for op in [
            TableOp::add(e.clone()),
            TableOp::update(e.clone()),
            TableOp::remove(e.clone()),
        ] {
            let r = b.apply(std::slice::from_ref(&op));
            assert!(
                matches!(&r[0], Err(HalError::Unsupported { table, .. }) if *table == kind),
                "[{name}] {op}: expected Unsupported, got {:?}",
                r[0]
            );
        }
        assert!(listed(&b, kind).is_empty(), "[{name}] {kind} has rows");
    }
}

/// Through the capacity wrapper, an add past the limit is `TableFull` with the limit; a
/// remove makes room again; duplicates and failures do not leak capacity.
pub fn capacity_is_enforced<B: Backend>(b: B) {
    const LIMIT: u32 = 4;
    let name = b.name().to_string();
    let kinds = supported(&b);
    let scope = CapacityScope {
        name: "slot 9 (TEST-CARD)".into(),
        limits: kinds
            .iter()
            .map(|k| (*k, LIMIT))
            .collect::<BTreeMap<_, _>>(),
    };
    let mut acc = Accounted::new(b, vec![scope]);
    for kind in kinds {
        // Fill in one batch with a duplicate inside: the duplicate must not consume room.
        let mut batch: Vec<TableOp> = (0..LIMIT)
            .map(|n| TableOp::add(sample_entry(kind, n)))
            .collect();
        batch.insert(1, TableOp::add(sample_entry(kind, 0)));
        let r = acc.apply(&batch);
        assert!(
            matches!(
                r[1],
                Err(HalError::Exists { .. }) | Err(HalError::TableFull { .. })
            ),
            "[{name}] {kind}"
        );
        // The duplicate reserved room in the batch; whatever it cost, top up to the limit.
        for n in 0..LIMIT {
            let _ = acc.apply(&[TableOp::add(sample_entry(kind, n))]);
        }
        assert_eq!(acc.used(kind), LIMIT, "[{name}] {kind}: accounting");
        assert_eq!(
            listed(&acc, kind).len() as u32,
            LIMIT,
            "[{name}] {kind}: rows"
        );
        let r = acc.apply(&[TableOp::add(sample_entry(kind, LIMIT))]);
        match &r[0] {
            Err(HalError::TableFull {
                table,
                scope,
                capacity,
            }) => {
                assert_eq!(*table, kind);
                assert_eq!(*capacity, LIMIT);
                assert_eq!(scope, "slot 9 (TEST-CARD)");
            }
            other => panic!("[{name}] {kind}: expected TableFull, got {other:?}"),
        }
        let r = acc.apply(&[TableOp::remove(sample_entry(kind, 0))]);
        expect_ok(&name, "remove", &r[0]);
        let r = acc.apply(&[TableOp::add(sample_entry(kind, LIMIT))]);
        expect_ok(&name, "add after remove", &r[0]);
        // A failed remove must not free room.
        let _ = acc.apply(&[TableOp::remove(sample_entry(kind, 3000))]);
        let r = acc.apply(&[TableOp::add(sample_entry(kind, LIMIT + 1))]);
        assert!(
            matches!(r[0], Err(HalError::TableFull { .. })),
            "[{name}] {kind}: leak"
        );
    }
}

/// `learned` answers, lists the static MAC addresses and the neighbours the tables hold (with
/// an age), forgets them once removed, and lists every port at most once.
pub fn learned_reflects_the_tables<D: DataPlane>(mut d: D) {
    let name = d.name().to_string();
    let kinds = supported(&d);
    let learned = d
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] learned on an idle backend: {e}"));
    assert!(
        learned.macs.is_empty() && learned.neighbors.is_empty(),
        "[{name}] a fresh backend learned something: {learned:?}"
    );
    let mut ports: Vec<_> = learned.links.iter().map(|l| l.port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(
        ports.len(),
        learned.links.len(),
        "[{name}] a port listed twice"
    );

    let vlan = VlanId::new(10).unwrap_or_else(|_| unreachable_vlan());
    let mac = Mac([0x02, 0, 0, 0, 0x12, 0x34]);
    let fdb = TableEntry::Fdb {
        vlan,
        mac,
        port: PortId(1),
        is_static: true,
    };
    let neighbor = sample_entry(TableKind::Neighbor, 21);
    let mut added = Vec::new();
    for (kind, e) in [(TableKind::Fdb, &fdb), (TableKind::Neighbor, &neighbor)] {
        if kinds.contains(&kind) {
            expect_ok(
                &name,
                &format!("add {kind}"),
                &d.apply(&[TableOp::add(e.clone())])[0],
            );
            added.push(e.clone());
        }
    }
    let learned = d
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] learned: {e}"));
    if kinds.contains(&TableKind::Fdb) {
        let want = LearnedMac {
            vlan,
            mac,
            port: PortId(1),
            is_static: true,
            age_ms: 0,
        };
        assert!(
            learned.macs.iter().any(|m| LearnedMac {
                age_ms: 0,
                ..m.clone()
            } == want),
            "[{name}] static MAC not in learned: {:?}",
            learned.macs
        );
    }
    if let TableEntry::Neighbor { iface, ip, mac } = &neighbor
        && kinds.contains(&TableKind::Neighbor)
    {
        let n = learned
            .neighbors
            .iter()
            .find(|n| n.ip == *ip)
            .unwrap_or_else(|| panic!("[{name}] neighbour {ip} not in learned: {learned:?}"));
        assert_eq!((&n.iface, &n.mac), (iface, mac), "[{name}] neighbour {ip}");
        assert!(n.age_ms < 60_000, "[{name}] neighbour age {} ms", n.age_ms);
    }
    for e in added {
        expect_ok(&name, "remove", &d.apply(&[TableOp::remove(e)])[0]);
    }
    let learned = d
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] learned after removal: {e}"));
    assert!(
        learned.macs.is_empty() && learned.neighbors.is_empty(),
        "[{name}] removed entries still learned: {learned:?}"
    );
}

/// A trace either walks a pipeline (at least one step and a verdict) or is refused with
/// `NotSupported`; never an empty answer.
pub fn trace_answers_or_is_refused<D: DataPlane>(d: D) {
    let name = d.name().to_string();
    // A broadcast ARP request on port 1.
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
    frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    match d.trace(PortId(1), None, frame) {
        Ok(t) => {
            assert!(!t.steps.is_empty(), "[{name}] trace without steps");
            assert!(!t.verdict.is_empty(), "[{name}] trace without verdict");
        }
        Err(HalError::NotSupported { operation, .. }) => {
            assert_eq!(operation, "forwarding trace", "[{name}]");
        }
        Err(e) => panic!("[{name}] trace: expected a trace or NotSupported, got {e}"),
    }
}

/// Setting a wake-up notifier is accepted (whether or not the backend needs it), and a
/// backend that takes it still answers afterwards.
pub fn notifier_is_accepted<D: DataPlane>(mut d: D) {
    let name = d.name().to_string();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = calls.clone();
    let notify: crate::dataplane::Notifier = std::sync::Arc::new(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    if let Err(e) = d.set_notifier(notify) {
        panic!("[{name}] set_notifier: {e}");
    }
    if let Err(e) = d.learned() {
        panic!("[{name}] learned after set_notifier: {e}");
    }
}

/// A port attached at run time is listed in `learned` (a device that is not there is a port
/// that is down, not an error), cannot be attached twice, and is gone once detached; a
/// backend that takes ports only at start refuses both calls with `NotSupported`.
pub fn ports_attach_and_detach<D: DataPlane>(mut d: D) {
    let name = d.name().to_string();
    let port = PortId(0x00fe_0001);
    // No such device: attaching must still work (the port is simply down).
    let spec = crate::dataplane::PortAttach {
        port,
        name: "Ethernet254/1".into(),
        device: "rmr-contract-absent".into(),
        io: None,
    };
    match d.attach_port(&spec) {
        Ok(info) => assert!(!info.io.is_empty(), "[{name}] attach_port names no I/O"),
        Err(HalError::NotSupported { operation, .. }) => {
            assert_eq!(operation, crate::dataplane::PORT_AT_RUN_TIME, "[{name}]");
            assert!(
                matches!(d.detach_port(port), Err(HalError::NotSupported { .. })),
                "[{name}] attach refused but detach not"
            );
            return;
        }
        Err(e) => panic!("[{name}] attach_port: {e}"),
    }
    let learned = d
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] learned after attach: {e}"));
    let link = learned
        .link(port)
        .unwrap_or_else(|| panic!("[{name}] attached port not in learned: {learned:?}"));
    assert!(!link.is_up(), "[{name}] a port without a device is up");
    assert!(
        matches!(d.attach_port(&spec), Err(HalError::PortExists { .. })),
        "[{name}] attaching a port twice"
    );
    if let Err(e) = d.detach_port(port) {
        panic!("[{name}] detach_port: {e}");
    }
    let learned = d
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] learned after detach: {e}"));
    assert!(
        learned.link(port).is_none(),
        "[{name}] detached port still listed"
    );
    assert!(
        matches!(d.detach_port(port), Err(HalError::NoSuchPort { .. })),
        "[{name}] detaching a port that is not there"
    );
}

/// The reader `show` uses answers what the data plane answers, also for what changed after the
/// reader was made (unless it is a copy) — at least for what it held when made.
pub fn reader_agrees_with_the_data_plane<D: DataPlane>(mut d: D) {
    let name = d.name().to_string();
    for kind in supported(&d) {
        let entry = sample_entry(kind, 31);
        expect_ok(&name, "add", &d.apply(&[TableOp::add(entry.clone())])[0]);
        let reader = d.reader();
        let rows = reader
            .entries(kind)
            .unwrap_or_else(|e| panic!("[{name}] reader entries {kind}: {e}"));
        assert!(
            rows.contains(&entry),
            "[{name}] reader misses {kind} {entry:?}"
        );
        expect_ok(&name, "remove", &d.apply(&[TableOp::remove(entry)])[0]);
    }
    let reader = d.reader();
    let via_reader = reader
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] reader learned: {e}"));
    let direct = d
        .learned()
        .unwrap_or_else(|e| panic!("[{name}] learned: {e}"));
    assert_eq!(via_reader.macs, direct.macs, "[{name}] reader MACs");
    assert_eq!(via_reader.links, direct.links, "[{name}] reader links");
}

/// Generates one `#[test]` per contract check for a data-plane factory expression.
#[macro_export]
macro_rules! backend_contract_tests {
    ($factory:expr) => {
        #[test]
        fn contract_add_update_remove() {
            $crate::contract::add_update_remove($factory);
        }
        #[test]
        fn contract_duplicates_are_refused() {
            $crate::contract::duplicates_are_refused($factory);
        }
        #[test]
        fn contract_missing_entries_are_not_found() {
            $crate::contract::missing_entries_are_not_found($factory);
        }
        #[test]
        fn contract_batch_results_in_order() {
            $crate::contract::batch_results_in_order($factory);
        }
        #[test]
        fn contract_unsupported_ops_are_refused() {
            $crate::contract::unsupported_ops_are_refused($factory);
        }
        #[test]
        fn contract_capacity_is_enforced() {
            $crate::contract::capacity_is_enforced($factory);
        }
        #[test]
        fn contract_learned_reflects_the_tables() {
            $crate::contract::learned_reflects_the_tables($factory);
        }
        #[test]
        fn contract_trace_answers_or_is_refused() {
            $crate::contract::trace_answers_or_is_refused($factory);
        }
        #[test]
        fn contract_notifier_is_accepted() {
            $crate::contract::notifier_is_accepted($factory);
        }
        #[test]
        fn contract_reader_agrees_with_the_data_plane() {
            $crate::contract::reader_agrees_with_the_data_plane($factory);
        }
        #[test]
        fn contract_ports_attach_and_detach() {
            $crate::contract::ports_attach_and_detach($factory);
        }
        #[test]
        fn contract_boxed_and_accounted() {
            // The daemon's shape: a boxed data plane behind the capacity wrapper.
            let boxed: Box<dyn $crate::DataPlane> = Box::new($factory);
            $crate::contract::add_update_remove($crate::Accounted::new(boxed, Vec::new()));
        }
    };
}
