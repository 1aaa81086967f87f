//! Seed 004's mobility scenario with `roamer platform backend kernel` on every node (issue 17):
//! xTR-A and xTR-B (the mobile site), xTR-C (the remote site, host R) and the map-server run
//! the kernel backend, LISP data in the TC-eBPF programs, control traffic through the control
//! tap and raw sockets. The host ports are routed ports with the same gateway address on xTR-A
//! and xTR-B (`lisp mobility` on a routed port): this host's kernel has neither bridge VLAN
//! filtering nor 802.1Q devices, so no SVI.
//!
//! H is detected as a dynamic EID by xTR-A's ITR program and registered; R and H ping each
//! other over LISP (tshark decodes the data packets on the underlay, checksums checked); H
//! moves to xTR-B, which detects and registers it; the map-server notifies xTR-A, whose ETR
//! program reports the next packet for H as an EID not here (and relays it to xTR-B):
//! xTR-A's SMR reaches xTR-C, whose SMR-invoked Map-Request moves its map-cache to xTR-B's
//! RLOC, and the pings continue (the scenario of `tests/common/mobility.rs`, which
//! `lisp_mobility_netns` runs on the software backend). Once with the same subnet at both
//! mobile xTRs (extended-subnet mode, as `lisp_mobility_netns`), once with xTR-B in another
//! subnet (across subnets: a host route for H there).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Daemon;
use common::mobility::{Lab, Xtrs};
use roamer_test_support::pcap::CHECK_CHECKSUMS;
use roamer_test_support::{Capture, require_root, require_tool};

/// A LISP offload counter of `show forwarding counters` (0 when not listed).
fn counter(d: &Daemon, name: &str) -> u64 {
    let counters = d.exec("show forwarding counters").stdout;
    counters
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_host_moves_between_kernel_backend_xtrs_and_the_remote_itr_follows_it_after_an_smr() {
    require_root("network namespaces");
    require_tool("tshark", "tshark");
    let lab = Lab::wired(Xtrs::Kernel);
    // The kernel backend put the ports' addresses on the devices themselves (the software
    // backend keeps them to itself).
    for (ns, dev, addr) in [
        (0, "um", "192.0.2.100/24"),
        (1, "ha", "10.9.0.1/24"),
        (2, "hb", "10.9.0.1/24"),
        (3, "hc", "10.3.0.1/24"),
    ] {
        let dev = format!("{}{dev}", lab.p);
        let shown = lab.nodes[ns]
            .ip(&["addr", "show", "dev", &dev])
            .expect("ip addr");
        assert!(
            shown.contains(addr),
            "{dev} is not on the kernel backend: {shown}"
        );
    }
    // LISP data on xTR-C's bridge port of the underlay, from before H's first packet.
    let data = Capture::start_with(
        &lab.core,
        &format!("{}kc", lab.p),
        "udp port 4341",
        6,
        &[
            "ip.src",
            "ip.dst",
            "udp.dstport",
            "frame.protocols",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        &CHECK_CHECKSUMS[..],
        Duration::from_secs(60),
    )
    .expect("tshark on the underlay");
    lab.warm();
    let wire = data.wire_until_quiet(Duration::from_secs(2));
    // Outer then inner addresses: xTR-A's ITR program to xTR-C and xTR-C's back.
    for (from, to) in [
        ("192.0.2.1,10.9.0.5", "192.0.2.3,10.3.0.10"),
        ("192.0.2.3,10.3.0.10", "192.0.2.1,10.9.0.5"),
    ] {
        wire.assert_any(&format!("no LISP data {from} -> {to}"), |l| {
            l.starts_with(&format!("{from}\t{to}\t4341\t")) && l.contains("udp:lisp-data:ip:icmp")
        });
    }
    wire.assert_clean(&[4, 5]);
    // The eBPF programs carried it, not a software data path.
    for (name, d) in [("A", &lab.xa), ("C", &lab.xc)] {
        for c in ["lisp-encapsulated", "lisp-decapsulated"] {
            assert!(counter(d, c) > 0, "xTR-{name}: no {c} in the eBPF counters");
        }
    }
    assert_eq!(counter(&lab.xb, "lisp-encapsulated"), 0, "xTR-B before H");

    lab.host_moves_and_the_remote_itr_follows();
    eprintln!(
        "xTR-A relayed {} packets for H to xTR-B until xTR-C followed",
        counter(&lab.xa, "lisp-relayed-away")
    );
    // xTR-B's programs now carry H's traffic both ways.
    for c in ["lisp-encapsulated", "lisp-decapsulated"] {
        assert!(counter(&lab.xb, c) > 0, "xTR-B: no {c} after the move");
    }
}

/// Across subnets (seed 001): xTR-B's host port is in another subnet, so H, moved there, is a
/// dynamic EID outside it: xTR-B routes it with a host route on the port (in the kernel:
/// `10.9.0.5 dev … scope link proto 194`), and the rest of the scenario is the same.
#[test]
fn across_subnets_the_new_xtr_routes_the_host_and_the_remote_itr_follows_it() {
    require_root("network namespaces");
    require_tool("tshark", "tshark");
    let lab = Lab::up(Xtrs::KernelAcross);
    let b = &lab.nodes[2];
    let routes = b.ip(&["route", "show", "proto", "194"]).expect("routes");
    assert!(!routes.contains("10.9.0.5"), "before the move: {routes}");
    lab.host_moves_and_the_remote_itr_follows();
    let routes = b.ip(&["route", "show", "proto", "194"]).expect("routes");
    assert!(
        routes.contains(&format!("10.9.0.5 dev {}hb scope link", lab.p)),
        "xTR-B's host route for H: {routes}"
    );
}
