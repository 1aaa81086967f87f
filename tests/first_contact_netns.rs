//! First contact (issue 19): two LISP sites that never talked, a map-server/map-resolver
//! between them. The first `ping -c 3` gets its three replies: the echo request waits at the
//! ITR for the Map-Reply and at the ETR for the host's ARP answer, the echo reply at the other
//! ITR for its Map-Reply — held, then sent, not dropped. And a flood towards EIDs that never
//! resolve stays in the held-packet slots: memory stays flat, every packet is counted.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::lisp_config as lisp;
use common::{Daemon, counter, wait_for};
use roamer_test_support::{self as support, Netns, Veth};

fn ms_config(p: &str) -> String {
    lisp::ms(p, &[("one", &["10.1.0.0/24"]), ("two", &["10.2.0.0/24"])])
}

/// xTR `n`: site 10.n.0.0/24 behind VLAN 10, the mapping system at `resolver`.
fn xtr_config(p: &str, n: u8, resolver: &str) -> String {
    let underlay = format!("ip address 192.0.2.{n}/24");
    format!(
        "{}interface Vlan10\n  ip address 10.{n}.0.1/24\n\
         ip lisp itr-etr\n{}\
         ip lisp database-mapping 10.{n}.0.0/24 192.0.2.{n} priority 1 weight 100\n",
        lisp::xtr_node(p, &n.to_string(), 'h', &[&underlay]),
        lisp::mapping_system("ip", resolver),
    )
}

fn netns(p: &str, n: &str) -> Netns {
    let ns = Netns::new(&format!("{p}{n}")).expect("netns");
    ns.ip(&["link", "set", "lo", "up"]).expect("lo");
    ns
}

/// Host `n` (in `host`) on xTR `n`'s port: 10.n.0.5/24, gateway 10.n.0.1.
fn attach_host(p: &str, n: u8, xtr: &Netns, host: &Netns) -> Veth {
    let (port, end) = (format!("{p}h{n}"), format!("{p}e{n}"));
    let v = Veth::between(&port, xtr, &end, host).expect("veth");
    host.addr(&end, &format!("10.{n}.0.5/24")).expect("addr");
    host.ip(&["route", "add", "default", "via", &format!("10.{n}.0.1")])
        .expect("gw");
    v
}

#[test]
fn the_first_ping_between_two_sites_that_never_talked_gets_every_reply() {
    let p = support::unique_prefix();
    let (core, ms_ns, x1_ns, x2_ns, a, b) = (
        netns(&p, "k"),
        netns(&p, "m"),
        netns(&p, "x1"),
        netns(&p, "x2"),
        netns(&p, "a"),
        netns(&p, "b"),
    );
    let mut links =
        common::bridged_underlay(&core, &p, &[("m", &ms_ns), ("1", &x1_ns), ("2", &x2_ns)]);
    links.push(attach_host(&p, 1, &x1_ns, &a));
    links.push(attach_host(&p, 2, &x2_ns, &b));
    let ms = Daemon::start_in_netns(&ms_config(&p), ms_ns.name());
    let x1 = Daemon::start_in_netns(&xtr_config(&p, 1, "192.0.2.100"), x1_ns.name());
    let x2 = Daemon::start_in_netns(&xtr_config(&p, 2, "192.0.2.100"), x2_ns.name());
    // Both sites registered (asked earlier, the map-resolver would rightly answer "not
    // registered"); the hosts have not sent anything yet.
    wait_for("both sites registered", Duration::from_secs(30), || {
        let site = ms.exec("show lisp site").stdout;
        (site.lines().filter(|l| l.contains(" yes")).count() == 2).then_some(site)
    });
    assert_eq!(
        counter(&x1, "lisp-encapsulated"),
        0,
        "the sites talked before"
    );

    let text = common::iputils_ping(&a, &["-n", "-c", "3", "-i", "0.2", "-w", "6", "10.2.0.5"]);
    assert!(
        text.contains("3 packets transmitted, 3 received"),
        "the first ping between the sites lost packets:\n{text}"
    );

    // What happened on the way: held at both ITRs (and for ARP at the ETR), released, never
    // dropped for a miss or a glean.
    for (name, d) in [("xtr1", &x1), ("xtr2", &x2)] {
        let counters = d.exec("show forwarding counters").stdout;
        assert!(counter(d, "held") >= 1, "{name}:\n{counters}");
        assert_eq!(
            counter(d, "held"),
            counter(d, "held-released"),
            "{name}:\n{counters}"
        );
        // (A glean of the switch's own packets — its first Map-Register — is still counted:
        // the control plane sends those again itself.)
        for drop in [
            "map-cache-miss",
            "hold-timeout",
            "hold-overflow",
            "ttl-expired",
        ] {
            assert_eq!(
                counter(d, &format!("drop {drop}")),
                0,
                "{name}:\n{counters}"
            );
        }
    }
    drop((ms, x1, x2));
    drop(links);
}

#[test]
fn a_flood_towards_eids_that_never_resolve_keeps_memory_flat_and_counts_the_drops() {
    let p = support::unique_prefix();
    let (core, x1_ns, a) = (netns(&p, "k"), netns(&p, "x1"), netns(&p, "a"));
    let mut links = common::bridged_underlay(&core, &p, &[("1", &x1_ns)]);
    links.push(attach_host(&p, 1, &x1_ns, &a));
    // A map-resolver that is not there: no Map-Reply ever comes.
    let x1 = Daemon::start_in_netns(&xtr_config(&p, 1, "192.0.2.200"), x1_ns.name());
    // The host resolves its gateway first (the flood is routed traffic from then on).
    let _ = support::ping(&a, "10.1.0.1".parse().unwrap(), Duration::from_secs(5));
    let rss_before = x1.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        a.spawn(move || {
            let sock = UdpSocket::bind("10.1.0.5:0").unwrap();
            let payload = [0x5au8; 200];
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // 4096 EIDs behind LISP that no one maps.
                let dst = format!("10.77.{}.{}:9", (i >> 8) & 0x0f, i & 0xff);
                let _ = sock.send_to(&payload, dst.as_str());
                i = i.wrapping_add(1);
                if i.is_multiple_of(64) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            sent.store(u64::from(i), Ordering::Relaxed);
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent > 10_000, "the flood was not a flood: {sent}");
    // Three seconds after the last one, every held packet has timed out.
    let counters = wait_for(
        "every held packet dropped after the timeout",
        Duration::from_secs(10),
        || {
            let held = counter(&x1, "held");
            let gone = counter(&x1, "drop hold-timeout") + counter(&x1, "drop hold-overflow");
            let text = x1.exec("show forwarding counters").stdout;
            (held > 0 && gone >= held).then_some(text)
        },
    );
    let rss_after = x1.rss_kib();
    eprintln!("flood: {sent} packets; RSS {rss_before} -> {rss_after} KiB\n{counters}");
    assert!(counter(&x1, "drop hold-timeout") > 0, "{counters}");
    assert!(counter(&x1, "drop hold-overflow") > 0, "{counters}");
    assert_eq!(counter(&x1, "held-released"), 0, "{counters}");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory grew under the flood: {rss_before} -> {rss_after} KiB"
    );
    drop(x1);
    drop(links);
}
