//! LISP table operations of the eBPF data-path tests (lisp_ebpf_netns.rs and
//! lisp_ebpf_lifecycle_netns.rs): prefixes from text, one-locator map-cache and database entries,
//! and whether a program is still linked.
#![allow(dead_code)]

use roamer_hal::{Iid, L3Interface, Locator, NegativeAction, PortId, Prefix, TableEntry, TableOp};

/// The EID-facing interface the tests attach the ITR to.
pub const EID_IFACE: L3Interface = L3Interface::Port(PortId(1));

/// A prefix from `address/length`.
pub fn prefix(s: &str) -> Prefix {
    let (addr, len) = s.split_once('/').expect("a/len");
    Prefix::new(addr.parse().expect("address"), len.parse().expect("length")).expect("prefix")
}

/// The one locator `rloc` (priority 1, weight 100).
pub fn locator(rloc: &str) -> Vec<Locator> {
    vec![Locator {
        rloc: rloc.parse().expect("rloc"),
        priority: 1,
        weight: 100,
    }]
}

/// Adds a map-cache entry: `eid` reached at `rloc`.
pub fn map_cache(eid: &str, rloc: &str) -> TableOp {
    TableOp::add(TableEntry::LispMapCache {
        iid: Iid::default(),
        eid: prefix(eid),
        locators: locator(rloc),
        negative: NegativeAction::NoAction,
    })
}

/// Adds a database entry: the local `eid` with the locator `rloc`.
pub fn database(eid: &str, rloc: &str) -> TableOp {
    TableOp::add(TableEntry::LispDatabase {
        iid: Iid::default(),
        eid: prefix(eid),
        locators: locator(rloc),
    })
}

/// Whether a TCX link holds program `id` (bpftool 7.1 lists TCX links as "type 11 ... prog ID";
/// neither `bpftool net` nor `tc filter` shows them).
pub fn linked(id: &str) -> bool {
    let links = roamer_test_support::run("bpftool", &["link", "show"]).expect("bpftool link show");
    links.lines().any(|l| {
        l.split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["prog", id])
    })
}
