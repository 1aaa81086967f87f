//! Issue 20, mixed sites: an IPv4-underlay site (xTR-A: 192.0.2.1 only, map-server and
//! map-resolver at 192.0.2.100) and a dual-stack site (xTR-C: 192.0.2.3 and 2001:db8:ff::3, its
//! map-server and map-resolver at 2001:db8:ff::100) registering to the same dual-stack
//! map-server. Their hosts talk both ways, with IPv4 EIDs and with IPv6 EIDs: xTR-A resolves xTR-C's EIDs over IPv4; xTR-C asks
//! over IPv6 with both its RLOCs in the ITR-RLOC list, and xTR-A (IPv4 only) answers at the IPv4
//! one. Every control message on xTR-C's link is decoded by tshark without malformed packets or
//! expert warnings.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::lisp_config as lisp;
use common::{Daemon, wait_for};
use roamer_test_support::pcap::CHECK_CHECKSUMS;
use roamer_test_support::{self as support, Capture, Netns};

fn ms_config(p: &str) -> String {
    let underlay = [
        "ip address 192.0.2.100/24",
        "ipv6 address 2001:db8:ff::100/64",
    ];
    lisp::map_server("ms", &format!("{p}um"), &underlay, "ip")
        + &lisp::sites(&[
            ("a", &["10.1.1.0/24", "2001:db8:a::/64"]),
            ("c", &["10.3.3.0/24", "2001:db8:c::/64"]),
        ])
}

/// xTR-A: IPv4 underlay only.
fn xtr_a_config(p: &str) -> String {
    format!(
        "{}interface Vlan10\n  ip address 10.1.1.1/24\n  ipv6 address 2001:db8:a::1/64\n\
         ip lisp itr-etr\nipv6 lisp itr-etr\n{}\
         ip lisp database-mapping 10.1.1.0/24 192.0.2.1 priority 1 weight 100\n\
         ipv6 lisp database-mapping 2001:db8:a::/64 192.0.2.1 priority 1 weight 100\n",
        lisp::xtr_node(p, "a", 'h', &["ip address 192.0.2.1/24"]),
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// xTR-C: dual-stack underlay, its IPv4 locator preferred, map-server and resolver over IPv6.
fn xtr_c_config(p: &str) -> String {
    let underlay = ["ip address 192.0.2.3/24", "ipv6 address 2001:db8:ff::3/64"];
    format!(
        "{}interface Vlan10\n  ip address 10.3.3.1/24\n  ipv6 address 2001:db8:c::1/64\n\
         ip lisp itr-etr\nipv6 lisp itr-etr\n{}\
         ip lisp database-mapping 10.3.3.0/24 192.0.2.3 priority 1 weight 100\n\
         ip lisp database-mapping 10.3.3.0/24 2001:db8:ff::3 priority 2 weight 100\n\
         ipv6 lisp database-mapping 2001:db8:c::/64 192.0.2.3 priority 1 weight 100\n\
         ipv6 lisp database-mapping 2001:db8:c::/64 2001:db8:ff::3 priority 2 weight 100\n",
        lisp::xtr_node(p, "c", 'h', &underlay),
        lisp::mapping_system("ip", "2001:db8:ff::100"),
    )
}

fn ping6(ns: &Netns, to: &str) -> bool {
    std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-6",
            "-n",
            "-c",
            "1",
            "-W",
            "1",
            to,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn an_ipv4_underlay_site_and_a_dual_stack_site_share_a_map_server() {
    support::require_root("network namespaces");
    support::require_tool("tshark", "tshark");
    support::require_tool("ping", "iputils-ping");
    let p = support::unique_prefix();
    let [core, ms_ns, a_ns, c_ns, ha, rc] = common::namespaces(&p, ["k", "m", "a", "c", "h", "r"]);
    let mut links =
        common::bridged_underlay(&core, &p, &[("m", &ms_ns), ("a", &a_ns), ("c", &c_ns)]);
    common::host_links(
        &p,
        &mut links,
        &[("a", &a_ns, &ha, "ea"), ("c", &c_ns, &rc, "er")],
    );
    ha.addr(&format!("{p}ea"), "10.1.1.5/24").expect("addr");
    ha.ip(&["route", "add", "default", "via", "10.1.1.1"])
        .expect("gw");
    rc.addr(&format!("{p}er"), "10.3.3.10/24").expect("addr");
    rc.ip(&["route", "add", "default", "via", "10.3.3.1"])
        .expect("gw");
    for (host, dev, addr, gw) in [
        (&ha, "ea", "2001:db8:a::5/64", "2001:db8:a::1"),
        (&rc, "er", "2001:db8:c::10/64", "2001:db8:c::1"),
    ] {
        let dev = format!("{p}{dev}");
        host.ip(&["-6", "addr", "add", addr, "dev", &dev, "nodad"])
            .expect("addr");
        host.ip(&["-6", "route", "add", "default", "via", gw, "dev", &dev])
            .expect("gw");
    }

    let capture = Capture::start_with(
        &core,
        &format!("{p}kc"),
        "udp port 4342",
        200,
        &[
            "ip.src",
            "ipv6.src",
            "ipv6.dst",
            "lisp.type",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        // UDP checksums verified (mandatory over IPv6): a wrong one is an expert warning.
        &CHECK_CHECKSUMS[..],
        Duration::from_secs(45),
    )
    .expect("tshark on the underlay");
    let ms = Daemon::start_in_netns(&ms_config(&p), ms_ns.name());
    let xa = Daemon::start_in_netns(&xtr_a_config(&p), a_ns.name());
    let xc = Daemon::start_in_netns(&xtr_c_config(&p), c_ns.name());

    let site = wait_for("both sites registered", Duration::from_secs(30), || {
        let site = ms.exec("show lisp site").stdout;
        ["10.1.1.0/24", "10.3.3.0/24"]
            .iter()
            .all(|prefix| {
                site.lines()
                    .any(|l| l.contains(prefix) && l.contains(" yes"))
            })
            .then_some(site)
    });
    assert!(
        site.contains("192.0.2.1") && site.contains("2001:db8:ff::3"),
        "xTR-A registers over IPv4, xTR-C over IPv6:\n{site}"
    );

    // The IPv4-only site reaches the dual-stack one, and the reverse.
    wait_for("A's host reaches C's host", Duration::from_secs(30), || {
        support::ping(&ha, Ipv4Addr::new(10, 3, 3, 10), Duration::from_secs(1))
            .unwrap()
            .then_some(())
    });
    wait_for("C's host reaches A's host", Duration::from_secs(30), || {
        support::ping(&rc, Ipv4Addr::new(10, 1, 1, 5), Duration::from_secs(1))
            .unwrap()
            .then_some(())
    });
    // IPv6 EIDs too: across xTR-A's IPv4 underlay (ECMs with an IPv6 inner header in IPv4).
    for (from, to) in [(&ha, "2001:db8:c::10"), (&rc, "2001:db8:a::5")] {
        wait_for(
            &format!("{to} reached over IPv6"),
            Duration::from_secs(30),
            || ping6(from, to).then_some(()),
        );
    }
    xa.assert_shows(
        "show ipv6 lisp map-cache",
        &["2001:db8:c::/64", "192.0.2.3"],
    );
    xc.assert_shows(
        "show ipv6 lisp map-cache",
        &["2001:db8:a::/64", "192.0.2.1"],
    );
    // Both of C's locators, IPv4 preferred.
    let c_locators = ["10.3.3.0/24", "192.0.2.3", "2001:db8:ff::3"];
    xa.assert_shows("show ip lisp map-cache 10.3.3.10", &c_locators);
    xc.assert_shows(
        "show ip lisp map-cache 10.1.1.5",
        &["10.1.1.0/24", "192.0.2.1"],
    );

    let wire = capture.wire_until_quiet(Duration::from_secs(2));
    // xTR-C's Encapsulated Map-Request goes over IPv6 to the map-resolver; xTR-A's Map-Reply
    // comes back to C's IPv4 RLOC.
    wire.assert_any("no ECM from xTR-C over IPv6", |l| {
        l.contains("\t2001:db8:ff::3\t2001:db8:ff::100\t8,1\t")
    });
    wire.assert_starts("no Map-Reply from xTR-A over IPv4", "192.0.2.1\t\t\t2\t");
    wire.assert_clean(&[4, 5]);
    drop((ms, xa, xc));
    drop(links);
    drop((ha, rc, core, ms_ns, a_ns, c_ns));
}
