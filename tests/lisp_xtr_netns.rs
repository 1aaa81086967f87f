//! Two roamer xTRs with static map-cache entries carry host traffic LISP-encapsulated over a
//! routed underlay link; tshark decodes the LISP data packets; a packet for an EID the ETR does
//! not have raises the EID-not-here event (the SMR trigger).
//!
//! The ports are AF_PACKET (`io af-packet`): this test captures on the switch's own port
//! devices or relies on vnet-hdr large segments, which AF_XDP ports do not give
//! (tests/afxdp_netns.rs runs these paths over AF_XDP).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Daemon, static_xtr_config};
use roamer_test_support::{self as support, Capture};

#[test]
fn two_xtrs_carry_host_traffic_encapsulated_and_report_eids_not_here() {
    let prefix = support::unique_prefix();
    let sites = common::two_xtrs(&prefix);
    let (x1, x2, h1, h2) = (&sites.x1, &sites.x2, &sites.h1, &sites.h2);
    let io = ["af-packet", "af-packet"];
    // A stale mapping at xtr1: 10.30.0.0/24 "is" behind xtr2, which has no such EID.
    let stale = "ip lisp map-cache 10.30.0.0/24 192.0.2.2 priority 1 weight 100\n";
    let d1 = Daemon::start_in_netns(&static_xtr_config(&prefix, 1, 2, io, stale), x1.name());
    let d2 = Daemon::start_in_netns(&static_xtr_config(&prefix, 2, 1, io, ""), x2.name());

    let capture = Capture::start(
        x1,
        &format!("{prefix}u1"),
        "udp port 4341",
        6,
        &[
            "ip.src",
            "ip.dst",
            "udp.dstport",
            "frame.protocols",
            "lisp-data.flags.nonce",
        ],
        Duration::from_secs(20),
    )
    .expect("tshark on the underlay");
    // Exchanges until the capture has seen six LISP packets: tshark says it captures a little
    // before it does, and the first packets no longer wait for the ETR's ARP resolution (they
    // are held, not lost), so a single early exchange may go unseen.
    let text = sites.lisp_icmp_seen(&capture, 6);
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.0.2.2,10.20.0.5\t192.0.2.1,10.10.0.5\t4341\t")),
        "no encapsulated reply:\n{text}"
    );

    let counters = d2.exec("show forwarding counters").stdout;
    assert!(counters.contains("lisp-decapsulated"), "{counters}");
    assert!(
        !counters.contains("lisp-decapsulated            0\n"),
        "{counters}"
    );

    // Before any path-MTU discovery: pings of 2000 octets without DF: the hosts fragment at 1500, the ITRs fragment again to
    // fit the tunnel (RFC 9300 §7.1), the far host reassembles.
    let big = support::ping_fragmented(h1, "10.20.0.5").unwrap_or_default();
    assert!(big.contains(" 0% packet loss"), "{big}");
    let counters = d1.exec("show forwarding counters").stdout;
    assert!(common::counter(&d1, "fragmented") >= 3, "{counters}");

    // A TCP stream: veth hands the xTR large segments (GSO), which must be cut before they
    // can be encapsulated, and arrive intact.
    const TOTAL: usize = 4 << 20;
    let (good, took) =
        support::tcp_stream(h1, h2, Ipv4Addr::new(10, 20, 0, 5), 5001, TOTAL).expect("tcp stream");
    assert_eq!(good, TOTAL, "the TCP stream crosses LISP intact");
    eprintln!(
        "TCP over LISP: {TOTAL} B in {took:?} ({:.0} Mbit/s, debug build)",
        TOTAL as f64 * 8.0 / took.as_secs_f64() / 1e6
    );

    // A packet for an EID that is not at xtr2: decapsulated there, then the SMR trigger.
    let _ = h1.exec(&["ping", "-c", "2", "-i", "0.3", "-W", "1", "10.30.0.9"]);
    let line = d2.wait_for_line("EidNotHere");
    assert!(
        line.contains("10.30.0.9") && line.contains("192.0.2.1"),
        "{line}"
    );

    // The same path, explained by the pipeline without sending anything.
    let router_mac = roamer_control::reconcile::system_mac("xtr1");
    let trace = d1.exec(&format!(
        "show forwarding trace interface Ethernet1/1 vlan 10 src-mac 0200.0000.0a05 dst-mac {router_mac} src-ip 10.10.0.5 dst-ip 10.20.0.5"
    ));
    assert_eq!(trace.code, 0, "{}", trace.stderr);
    for step in [
        "route 0.0.0.0/0 -> Lisp",
        "map-cache 10.20.0.0/24 (IID 0): 1 locator(s)",
        "LISP encapsulate to RLOC 192.0.2.2",
        "verdict: Forward",
    ] {
        assert!(
            trace.stdout.contains(step),
            "missing {step:?} in:\n{}",
            trace.stdout
        );
    }
    drop(d1);
    drop(sites);
}
