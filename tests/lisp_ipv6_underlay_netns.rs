//! Issue 20, IPv6 underlay and IPv6 mobility: seed 001's across-subnet move (the scenario of
//! `images/containerlab/across-subnet`, without HSRP) over an IPv6-only underlay
//! (2001:db8:ff::/64), once with IPv4 EIDs and once with IPv6 EIDs. A map-server/map-resolver
//! and three xTRs (roamer each, in their own namespaces on one bridged underlay segment): H
//! lives at its home site behind xTR-A, R behind xTR-C pings it; H moves to xTR-B's subnet
//! keeping its address and gateway. xTR-B answers its ARP (or neighbour solicitation) for the
//! old gateway (proxy), detects it as a dynamic EID (a /32 or a /128) and registers it; the
//! map-server notifies xTR-A, which SMRs xTR-C on its next packet for H; xTR-C's SMR-invoked
//! Encapsulated Map-Request is answered by xTR-B and R's pings continue. Every control message
//! goes over IPv6 and is decoded by tshark without malformed packets or expert warnings; the
//! reliable registration sessions (TCP 4342) come up over IPv6 too.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::lisp_config as lisp;
use common::{Daemon, wait_for};
use roamer_test_support::pcap::CHECK_CHECKSUMS;
use roamer_test_support::{self as support, Capture, Netns};

const MS: &str = "2001:db8:ff::100";

/// The addresses of one run: IPv4 or IPv6 EIDs.
struct Eids {
    af: &'static str,
    /// Home subnet (xTR-A), its gateway, the dynamic range, xTR-B's subnet and gateway, the
    /// remote subnet and gateway.
    home: &'static str,
    home_gw: &'static str,
    dynamic: &'static str,
    other: &'static str,
    other_gw: &'static str,
    remote: &'static str,
    remote_gw: &'static str,
    h: &'static str,
    r: &'static str,
    host_len: u8,
}

const V4: Eids = Eids {
    af: "ip",
    home: "10.1.1.0/24",
    home_gw: "10.1.1.2",
    dynamic: "10.1.1.0/25",
    other: "10.2.2.0/24",
    other_gw: "10.2.2.2",
    remote: "10.3.3.0/24",
    remote_gw: "10.3.3.1",
    h: "10.1.1.5",
    r: "10.3.3.10",
    host_len: 32,
};

const V6: Eids = Eids {
    af: "ipv6",
    home: "2001:db8:a::/64",
    home_gw: "2001:db8:a::2",
    dynamic: "2001:db8:a::/65",
    other: "2001:db8:b::/64",
    other_gw: "2001:db8:b::2",
    remote: "2001:db8:c::/64",
    remote_gw: "2001:db8:c::1",
    h: "2001:db8:a::5",
    r: "2001:db8:c::10",
    host_len: 128,
};

fn len(prefix: &str) -> &str {
    prefix.split('/').nth(1).unwrap()
}

fn ms_config(p: &str, e: &Eids) -> String {
    let dc = [
        format!("{} accept-more-specifics", e.home),
        format!("{} accept-more-specifics", e.other),
    ];
    lisp::map_server(
        "ms",
        &format!("{p}um"),
        &[&format!("ipv6 address {MS}/64")],
        e.af,
    ) + &lisp::sites(&[("dc", &[&dc[0], &dc[1]]), ("remote", &[e.remote])])
}

/// xTR-A (n 1, home of H) or xTR-B (n 2): its own subnet, proxy for moved hosts, H's home range
/// detected as dynamic EIDs.
fn mobile_xtr_config(p: &str, e: &Eids, n: u8) -> String {
    let name = if n == 1 { "a" } else { "b" };
    let af = e.af;
    let (subnet, gw) = if n == 1 {
        (e.home, e.home_gw)
    } else {
        (e.other, e.other_gw)
    };
    let underlay = format!("ipv6 address 2001:db8:ff::{n}/64");
    format!(
        "{}interface Vlan10\n  {af} address {gw}/{}\n  ip proxy-arp\n  lisp mobility roam\n\
         {af} lisp itr-etr\n{}\
         {af} lisp database-mapping {subnet} 2001:db8:ff::{n} priority 1 weight 100\n\
         lisp dynamic-eid roam\n  database-mapping {} 2001:db8:ff::{n} priority 1 weight 100\n",
        lisp::xtr_node(p, name, 'h', &[&underlay]),
        len(subnet),
        lisp::mapping_system(af, MS),
        e.dynamic
    )
}

fn remote_xtr_config(p: &str, e: &Eids) -> String {
    let af = e.af;
    format!(
        "{}interface Vlan10\n  {af} address {}/{}\n\
         {af} lisp itr-etr\n{}\
         {af} lisp database-mapping {} 2001:db8:ff::3 priority 1 weight 100\n",
        lisp::xtr_node(p, "c", 'h', &["ipv6 address 2001:db8:ff::3/64"]),
        e.remote_gw,
        len(e.remote),
        lisp::mapping_system(af, MS),
        e.remote
    )
}

/// One ping from `ns` to `to` (the `ping` binary: IPv4 or IPv6 as `to` is), waiting `wait_s`.
fn ping_once(ns: &Netns, to: &str, wait_s: u32) -> bool {
    let wait = wait_s.to_string();
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            &wait,
            to,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn across_subnets_over_an_ipv6_underlay(e: &Eids) {
    support::require_root("network namespaces");
    support::require_tool("tshark", "tshark");
    support::require_tool("ping", "iputils-ping");
    let p = support::unique_prefix();
    let ([core, ms_ns, a_ns, b_ns, c_ns, h, r], links) = common::three_xtrs(&p);
    let (ea, eb, er) = (format!("{p}ea"), format!("{p}eb"), format!("{p}er"));
    let fam = if e.af == "ipv6" { "-6" } else { "-4" };
    let host_addr = |ns: &Netns, dev: &str, addr: &str, subnet: &str, gw: &str| {
        let cidr = format!("{addr}/{}", len(subnet));
        let mut args = vec![fam, "addr", "add", &cidr, "dev", dev];
        if e.af == "ipv6" {
            args.push("nodad");
        }
        ns.ip(&args).expect("addr");
        ns.ip(&["link", "set", dev, "up"]).expect("up");
        ns.ip(&[fam, "route", "replace", "default", "via", gw, "dev", dev])
            .expect("gw");
    };
    host_addr(&h, &ea, e.h, e.home, e.home_gw);
    host_addr(&r, &er, e.r, e.remote, e.remote_gw);

    // Control messages on the underlay, seen from the bridge port of xTR-C
    // from before the first registration on.
    let capture = Capture::start_with(
        &core,
        &format!("{p}kc"),
        "udp port 4342",
        400,
        &[
            "ipv6.src",
            "ipv6.dst",
            "lisp.type",
            "lisp.mreq.flags.smr",
            "lisp.mreq.flags.smri",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        // UDP checksums verified (mandatory over IPv6): a wrong one is an expert warning.
        &CHECK_CHECKSUMS[..],
        Duration::from_secs(60),
    )
    .expect("tshark on the underlay");
    let ms = Daemon::start_in_netns(&ms_config(&p, e), ms_ns.name());
    let xa = Daemon::start_in_netns(&mobile_xtr_config(&p, e, 1), a_ns.name());
    let xb = Daemon::start_in_netns(&mobile_xtr_config(&p, e, 2), b_ns.name());
    let xc = Daemon::start_in_netns(&remote_xtr_config(&p, e), c_ns.name());

    // Every site registers over IPv6.
    wait_for("the sites registered", Duration::from_secs(30), || {
        let site = ms.exec("show lisp site").stdout;
        [e.home, e.other, e.remote]
            .iter()
            .all(|prefix| {
                site.lines()
                    .any(|l| l.contains(prefix) && l.contains(" yes"))
            })
            .then_some(site)
    });
    let site = ms.exec("show lisp site").stdout;
    assert!(site.contains("2001:db8:ff::3"), "{site}");
    // Reliable registration (TCP 4342) over IPv6 after the first acknowledged Map-Register.
    wait_for(
        "xTR-C's reliable registration session up over IPv6",
        Duration::from_secs(20),
        || {
            let s = xc.exec("show lisp session").stdout;
            s.lines()
                .any(|l| l.starts_with(MS) && l.contains(" Up "))
                .then_some(s)
        },
    );
    let sessions = ms.exec("show lisp session").stdout;
    assert!(
        sessions
            .lines()
            .any(|l| l.starts_with("2001:db8:ff::3 ") && l.contains(" Up ")),
        "{sessions}"
    );

    // R reaches H at home: xTR-C resolves the home subnet through the map-resolver.
    wait_for("R reaches H at home", Duration::from_secs(30), || {
        ping_once(&r, e.h, 1).then_some(())
    });
    let cache = xc.exec(&format!("show {} lisp map-cache", e.af)).stdout;
    assert!(
        cache.contains(e.home) && cache.contains("2001:db8:ff::1"),
        "{cache}"
    );

    // H moves to xTR-B's subnet, keeping its address and gateway; R pings it every 100 ms.
    let move_thread = {
        let (h_name, ea, eb) = (h.name().to_string(), ea.clone(), eb.clone());
        let (addr, gw, r_addr) = (
            format!("{}/{}", e.h, len(e.home)),
            e.home_gw.to_string(),
            e.r.to_string(),
        );
        let v6 = e.af == "ipv6";
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            let fam = if v6 { "-6" } else { "-4" };
            let hx = |args: &[&str]| {
                let mut full = vec!["netns", "exec", &h_name, "ip", fam];
                full.extend_from_slice(args);
                support::run("ip", &full).unwrap();
            };
            hx(&["addr", "flush", "dev", &ea]);
            support::run(
                "ip",
                &["netns", "exec", &h_name, "ip", "link", "set", &ea, "down"],
            )
            .unwrap();
            if v6 {
                hx(&["addr", "add", &addr, "dev", &eb, "nodad"]);
            } else {
                hx(&["addr", "add", &addr, "dev", &eb]);
            }
            hx(&["route", "replace", "default", "via", &gw, "dev", &eb]);
            // The host's first packet at its new site (a VM sends one when it wakes up).
            let _ = support::run(
                "ip",
                &[
                    "netns", "exec", &h_name, "ping", "-n", "-c", "1", "-W", "1", &r_addr,
                ],
            );
        })
    };
    let text = common::iputils_ping(&r, &["-n", "-i", "0.1", "-W", "1", "-c", "150", e.h]);
    move_thread.join().unwrap();
    let replies: Vec<u32> = text
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    // The move comes after about 30 pings; the last ones must be answered from xTR-B's site.
    assert!(
        replies.iter().filter(|s| **s > 60).count() >= 80,
        "pings did not continue after the move:\n{text}\n{}",
        xb.exec("show lisp dynamic-eid summary").stdout
    );

    // The mapping system and every xTR agree on where H is now.
    let host = format!("{}/{}", e.h, e.host_len);
    let site = ms.exec("show lisp site").stdout;
    assert!(
        site.contains(&host) && site.contains("2001:db8:ff::2"),
        "{site}"
    );
    let dyn_b = xb.exec("show lisp dynamic-eid summary").stdout;
    assert!(dyn_b.contains(e.h), "{dyn_b}");
    let cache = xc
        .exec(&format!("show {} lisp map-cache {}", e.af, e.h))
        .stdout;
    assert!(
        cache.contains(&host) && cache.contains("2001:db8:ff::2"),
        "{cache}"
    );
    let away = xa.exec(&format!("show {} lisp away", e.af)).stdout;
    assert!(away.contains(&host), "{away}");

    // On the wire, all over IPv6: xTR-A's SMR to xTR-C, xTR-C's SMR-invoked ECM to the MR.
    let wire = capture.wire_until_quiet(Duration::from_secs(2));
    wire.assert_starts(
        "no SMR from xTR-A to xTR-C",
        "2001:db8:ff::1\t2001:db8:ff::3\t1\t1\t0\t",
    );
    wire.assert_any("no SMR-invoked Encapsulated Map-Request from xTR-C", |l| {
        let f: Vec<&str> = l.split('\t').collect();
        f.first().is_some_and(|s| s.starts_with("2001:db8:ff::3"))
            && f.get(1).is_some_and(|d| d.starts_with(MS))
            && f.get(2) == Some(&"8,1")
            && f.get(4) == Some(&"1")
    });
    for kind in ["\t2\t", "\t3\t", "\t4\t"] {
        wire.assert_any(
            "no message of type {kind} (Map-Reply, Map-Register, Map-Notify) from or to xTR-C",
            |l| l.contains(kind),
        );
    }
    wire.assert_clean(&[5, 6]);
    drop((ms, xa, xb, xc));
    drop(links);
    drop((h, r, core, ms_ns, a_ns, b_ns, c_ns));
}

#[test]
fn ipv4_eids_move_across_subnets_over_an_ipv6_only_underlay() {
    across_subnets_over_an_ipv6_underlay(&V4);
}

#[test]
fn ipv6_eids_move_across_subnets_over_an_ipv6_only_underlay() {
    across_subnets_over_an_ipv6_underlay(&V6);
}
