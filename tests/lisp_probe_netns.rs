//! RLOC probing end to end (RFC 9301 §7.1, issue 20): a multihomed site 10.1.0.0/24 behind
//! xTR-A (locator 192.0.2.1, priority 1) and xTR-B (192.0.2.2, priority 2) on one LAN with host
//! H; R behind xTR-C pings H. xTR-C probes both locators every second. When xTR-A's underlay
//! link goes down, xTR-C marks 192.0.2.1 down within three probe intervals and the pings reach H
//! through xTR-B; when the link comes back, 192.0.2.1 is up again and carries the traffic.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::lisp_config as lisp;
use common::{Daemon, wait_for};
use roamer_test_support::{self as support, Capture, Veth};

fn ms_config(p: &str) -> String {
    lisp::ms(
        p,
        &[("multi", &["10.1.0.0/24"]), ("remote", &["10.3.0.0/24"])],
    )
}

/// xTR-A (`n` = 1) or xTR-B (`n` = 2) of the multihomed site: both locators in its mapping.
fn site_xtr_config(p: &str, n: u8, name: char) -> String {
    let underlay = format!("ip address 192.0.2.{n}/24");
    format!(
        "{}interface Vlan10\n  ip address 10.1.0.{n}/24\n\
         ip lisp itr-etr\n{}\
         ip lisp database-mapping 10.1.0.0/24 192.0.2.1 priority 1 weight 100\n\
         ip lisp database-mapping 10.1.0.0/24 192.0.2.2 priority 2 weight 100\n",
        lisp::xtr_node(p, &name.to_string(), 'l', &[&underlay]),
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// xTR-C: the remote site, probing every second.
fn remote_xtr_config(p: &str) -> String {
    format!(
        "{}interface Vlan10\n  ip address 10.3.0.1/24\n\
         ip lisp itr-etr\n{}\
         ip lisp database-mapping 10.3.0.0/24 192.0.2.3 priority 1 weight 100\n\
         lisp loc-reach-algorithm rloc-probing\n\
         roamer lisp rloc-probe interval 1\n",
        lisp::xtr_node(p, "c", 'l', &["ip address 192.0.2.3/24"]),
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// The locator line of `rloc` in a map-cache listing.
fn locator_line(cache: &str, rloc: &str) -> String {
    cache
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{rloc} ")))
        .unwrap_or_default()
        .to_string()
}

/// Packets xTR-A decapsulated so far.
fn decapsulated(x: &Daemon) -> u64 {
    x.exec("show forwarding counters")
        .stdout
        .lines()
        .find(|l| l.contains("lisp-decapsulated"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn traffic_moves_to_the_second_locator_when_the_first_stops_answering_probes_and_back() {
    for tool in ["ip", "ping", "tshark"] {
        assert!(support::have(tool), "this test needs `{tool}`");
    }
    assert!(support::privileged(), "this test needs root (netns)");
    let p = support::unique_prefix();
    let [core, ms_ns, a_ns, b_ns, c_ns, h, r] =
        common::namespaces(&p, ["k", "m", "a", "b", "c", "h", "r"]);
    let mut links = common::bridged_underlay(
        &core,
        &p,
        &[("m", &ms_ns), ("a", &a_ns), ("b", &b_ns), ("c", &c_ns)],
    );
    // H's LAN: a bridge in H's namespace with xTR-A and xTR-B attached; R behind xTR-C.
    let lan = format!("{p}lan");
    h.ip(&["link", "add", &lan, "type", "bridge"])
        .expect("bridge");
    h.ip(&["link", "set", &lan, "up"]).expect("up");
    for (tag, node) in [('a', &a_ns), ('b', &b_ns), ('c', &c_ns)] {
        let (port, end) = (format!("{p}l{tag}"), format!("{p}e{tag}"));
        let v = Veth::new(&port, &end).expect("veth");
        v.move_to(&port, node).expect("move");
        node.ip(&["link", "set", &port, "up"]).expect("up");
        let host = if tag == 'c' { &r } else { &h };
        v.move_to(&end, host).expect("move");
        if tag != 'c' {
            h.ip(&["link", "set", &end, "master", &lan])
                .expect("enslave");
        }
        host.ip(&["link", "set", &end, "up"]).expect("up");
        links.push(v);
    }
    h.addr(&lan, "10.1.0.10/24").expect("addr");
    // H answers through xTR-B, whose underlay stays up.
    h.ip(&["route", "add", "default", "via", "10.1.0.2"])
        .expect("gw");
    let er = format!("{p}ec");
    r.addr(&er, "10.3.0.10/24").expect("addr");
    r.ip(&["route", "add", "default", "via", "10.3.0.1"])
        .expect("gw");

    let ms = Daemon::start_in_netns(&ms_config(&p), ms_ns.name());
    let xa = Daemon::start_in_netns(&site_xtr_config(&p, 1, 'a'), a_ns.name());
    let xb = Daemon::start_in_netns(&site_xtr_config(&p, 2, 'b'), b_ns.name());
    let xc = Daemon::start_in_netns(&remote_xtr_config(&p), c_ns.name());
    wait_for("both sites registered", Duration::from_secs(20), || {
        let site = ms.exec("show lisp site").stdout;
        (site.contains("10.1.0.0/24") && site.contains("10.3.0.0/24") && !site.contains(" no "))
            .then_some(site)
    });
    let ten_one = Ipv4Addr::new(10, 1, 0, 10);
    wait_for("R reaches H", Duration::from_secs(30), || {
        support::ping(&r, ten_one, Duration::from_secs(1))
            .unwrap()
            .then_some(())
    });
    // The probes and their answers on the wire, seen from xTR-C's bridge port.
    let capture = Capture::start(
        &core,
        &format!("{p}kc"),
        "udp port 4342",
        40,
        &[
            "ip.src",
            "ip.dst",
            "lisp.type",
            "lisp.mreq.flags.probe",
            "lisp.mrep.flags.probe",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        // Probes go every second: several rounds even if tshark starts late.
        Duration::from_secs(8),
    )
    .expect("tshark on the underlay");
    let cache = wait_for(
        "xTR-C probed both locators",
        Duration::from_secs(10),
        || {
            let cache = xc.exec("show ip lisp map-cache 10.1.0.10").stdout;
            (cache.contains("Last RLOC-probe sent:            00:00:0")
                && !cache.contains("Last RLOC-probe sent:            never"))
            .then_some(cache)
        },
    );
    assert!(
        locator_line(&cache, "192.0.2.1").contains(" up ")
            && locator_line(&cache, "192.0.2.2").contains(" up "),
        "{cache}"
    );
    let before = decapsulated(&xa);
    assert!(support::ping(&r, ten_one, Duration::from_secs(1)).unwrap());
    assert!(decapsulated(&xa) > before, "priority 1: through xTR-A");
    let wire = capture.wire_until_quiet(Duration::from_secs(5));
    for etr in ["192.0.2.1", "192.0.2.2"] {
        wire.assert_starts(
            &format!("no RLOC-probe to {etr}"),
            &format!("192.0.2.3\t{etr}\t1\t1\t"),
        );
        wire.assert_starts(
            &format!("no probe answer from {etr}"),
            &format!("{etr}\t192.0.2.3\t2\t\t1\t"),
        );
    }
    wire.assert_clean(&[5, 6]);

    // xTR-A's underlay link goes down (on the bridge side: xTR-A sees its carrier go).
    let ka = format!("{p}ka");
    core.ip(&["link", "set", &ka, "down"]).expect("down");
    let cut = Instant::now();
    let cache = wait_for("192.0.2.1 down at xTR-C", Duration::from_secs(6), || {
        let cache = xc.exec("show ip lisp map-cache 10.1.0.10").stdout;
        locator_line(&cache, "192.0.2.1")
            .contains(" down ")
            .then_some(cache)
    });
    let detected = cut.elapsed();
    eprintln!("192.0.2.1 down after {detected:?} (probe interval 1 s)");
    // Three intervals, and the 200 ms the show polling may add.
    assert!(
        detected <= Duration::from_millis(3_400),
        "{detected:?}\n{cache}"
    );
    assert!(cache.contains("state change count: 2"), "{cache}");
    assert!(
        locator_line(&cache, "192.0.2.2").contains(" up "),
        "{cache}"
    );
    wait_for("R reaches H through xTR-B", Duration::from_secs(5), || {
        support::ping(&r, ten_one, Duration::from_millis(500))
            .unwrap()
            .then_some(())
    });

    // The link returns: the locator answers again and carries the traffic.
    core.ip(&["link", "set", &ka, "up"]).expect("up");
    let back = Instant::now();
    wait_for(
        "192.0.2.1 up again at xTR-C",
        Duration::from_secs(6),
        || {
            let cache = xc.exec("show ip lisp map-cache 10.1.0.10").stdout;
            locator_line(&cache, "192.0.2.1")
                .contains(" up ")
                .then_some(cache)
        },
    );
    eprintln!("192.0.2.1 up after {:?}", back.elapsed());
    let before = decapsulated(&xa);
    wait_for(
        "R reaches H through xTR-A again",
        Duration::from_secs(5),
        || {
            (support::ping(&r, ten_one, Duration::from_millis(500)).unwrap()
                && decapsulated(&xa) > before)
                .then_some(())
        },
    );
    let stats = xc.exec("show lisp statistics").stdout;
    assert!(
        stats.contains("Locators down") || stats.contains("locators down"),
        "{stats}"
    );

    drop((ms, xa, xb, xc));
    drop(links);
    drop((core, ms_ns, a_ns, b_ns, c_ns, h, r));
}
