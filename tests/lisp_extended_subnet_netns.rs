//! Extended-subnet mode (seed 001, "VM Mobility with VLAN Extensions"): two xTRs of one site
//! share VLAN 10 over a LAN extension. A host that moves from one to the other is detected by
//! the new xTR, which registers it and announces it with a site-based Map-Notify to the
//! map-notify-group (IP TTL 1, flooded on the extended VLAN); the other xTR stops claiming it
//! and lists it with `*`. Both agree, and so does the map-server.
//!
//! The ports are AF_PACKET (`io af-packet`): this test captures on the switch's own port
//! devices or relies on vnet-hdr large segments, which AF_XDP ports do not give
//! (tests/afxdp_netns.rs runs these paths over AF_XDP).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::lisp_config as lisp;
use common::{Daemon, wait_for};
use roamer_test_support::{self as support, Capture, Netns, Veth};

fn ms_config(p: &str) -> String {
    lisp::af_packet(lisp::ms(
        p,
        &[("dc1", &["10.9.0.0/25 accept-more-specifics"])],
    ))
}

fn xtr_config(p: &str, n: u8) -> String {
    let underlay = format!("ip address 192.0.2.{n}/24");
    let head = lisp::af_packet(lisp::node(
        &format!("xtr{n}"),
        &[&format!("{p}h{n}"), &format!("{p}l{n}")],
        &format!("{p}u{n}"),
        &[&underlay],
    ));
    format!(
        "{head}interface Vlan10\n  ip address 10.9.0.{}/24\n  lisp mobility dc1-hosts\n  lisp extended-subnet-mode\n\
         ip lisp itr-etr\n{}\
         lisp dynamic-eid dc1-hosts\n  database-mapping 10.9.0.0/25 192.0.2.{n} priority 1 weight 100\n  \
         map-notify-group 239.1.1.1\n",
        n + 1,
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// The summary row of `eid`, flag column included (`*` = learned by site-based Map-Notify).
fn row<'a>(summary: &'a str, eid: &str) -> Option<&'a str> {
    summary.lines().find(|l| l.contains(eid))
}

#[test]
fn a_host_move_inside_the_site_is_announced_on_the_map_notify_group_and_both_xtrs_agree() {
    let p = support::unique_prefix();
    let [core, ms_ns, x1_ns, x2_ns, h] = common::namespaces(&p, ["k", "m", "1", "2", "h"]);
    let mut links =
        common::bridged_underlay(&core, &p, &[("m", &ms_ns), ("1", &x1_ns), ("2", &x2_ns)]);
    let mut link = |a: &str, a_ns: &Netns, b: &str, b_ns: &Netns| {
        let v = Veth::new(a, b).expect("veth");
        v.move_to(a, a_ns).expect("move");
        v.move_to(b, b_ns).expect("move");
        a_ns.ip(&["link", "set", a, "up"]).expect("up");
        b_ns.ip(&["link", "set", b, "up"]).expect("up");
        links.push(v);
    };
    // The LAN extension between the two xTRs, and the host's two possible attachments.
    link(&format!("{p}l1"), &x1_ns, &format!("{p}l2"), &x2_ns);
    link(&format!("{p}h1"), &x1_ns, &format!("{p}e1"), &h);
    link(&format!("{p}h2"), &x2_ns, &format!("{p}e2"), &h);
    let (e1, e2) = (format!("{p}e1"), format!("{p}e2"));
    h.ip(&["link", "set", &e2, "down"]).expect("down");
    h.addr(&e1, "10.9.0.5/24").expect("addr");

    let ms = Daemon::start_in_netns(&ms_config(&p), ms_ns.name());
    let x1 = Daemon::start_in_netns(&xtr_config(&p, 1), x1_ns.name());
    let x2 = Daemon::start_in_netns(&xtr_config(&p, 2), x2_ns.name());
    let capture = Capture::start(
        &x2_ns,
        &format!("{p}l2"),
        "udp port 4342 and dst host 239.1.1.1",
        2,
        &[
            "ip.src",
            "ip.dst",
            "ip.ttl",
            "lisp.type",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        Duration::from_secs(40),
    )
    .expect("tshark on the LAN extension");

    // H at xTR-1: it asks for and pings its gateway there.
    wait_for("H at xTR-1", Duration::from_secs(20), || {
        support::ping(&h, Ipv4Addr::new(10, 9, 0, 2), Duration::from_secs(1))
            .unwrap()
            .then(String::new)
    });
    let (s1, s2) = wait_for(
        "xTR-2 learns H from the site Map-Notify",
        Duration::from_secs(10),
        || {
            let s1 = x1.exec("show lisp dynamic-eid summary").stdout;
            let s2 = x2.exec("show lisp dynamic-eid summary").stdout;
            row(&s2, "10.9.0.5")
                .is_some_and(|r| r.contains("*10.9.0.5"))
                .then(|| format!("{s1}\u{0}{s2}"))
        },
    )
    .split_once('\u{0}')
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .unwrap();
    let r1 = row(&s1, "10.9.0.5").unwrap_or_default();
    assert!(
        r1.contains(" 10.9.0.5") && !r1.contains('*'),
        "xTR-1 holds H itself:\n{s1}"
    );
    assert!(row(&s2, "10.9.0.5").unwrap().contains("*10.9.0.5"), "{s2}");
    // The map-server's `show lisp site`, once it has H from the RLOC `rloc`.
    let h_registered_by = |rloc: &str, what: &str| {
        wait_for(what, Duration::from_secs(10), || {
            let site = ms.exec("show lisp site").stdout;
            site.lines()
                .any(|l| l.contains("10.9.0.5/32") && l.contains(rloc))
                .then_some(site)
        })
    };
    let site = h_registered_by("192.0.2.1", "the map-server has H from xTR-1");
    assert!(site.contains("yes"), "{site}");

    // H moves to xTR-2 (link re-attached) and talks to its gateway there.
    h.ip(&["addr", "flush", "dev", &e1]).expect("flush");
    h.ip(&["link", "set", &e1, "down"]).expect("down");
    h.ip(&["link", "set", &e2, "up"]).expect("up");
    h.addr(&e2, "10.9.0.5/24").expect("addr");
    wait_for("H at xTR-2", Duration::from_secs(20), || {
        support::ping(&h, Ipv4Addr::new(10, 9, 0, 3), Duration::from_secs(1))
            .unwrap()
            .then(String::new)
    });
    wait_for(
        "both xTRs agree H is at xTR-2",
        Duration::from_secs(10),
        || {
            let s1 = x1.exec("show lisp dynamic-eid summary").stdout;
            let s2 = x2.exec("show lisp dynamic-eid summary").stdout;
            let at_2 =
                row(&s2, "10.9.0.5").is_some_and(|r| r.contains(" 10.9.0.5") && !r.contains('*'));
            let seen_by_1 = row(&s1, "10.9.0.5").is_some_and(|r| r.contains("*10.9.0.5"));
            (at_2 && seen_by_1).then_some(s1)
        },
    );
    h_registered_by("192.0.2.2", "the map-server has H from xTR-2");
    // xTR-1 keeps no away entry: H is still in its site.
    let away = x1.exec("show ip lisp away").stdout;
    assert!(away.contains("Entries: 0"), "{away}");

    // On the LAN extension: the announcements (tshark may start a moment after the first
    // one; xTR-2's, after the move, is always there), TTL 1, decoded without error.
    let wire = capture.wire_until_quiet(Duration::from_secs(3));
    wire.assert_starts(
        "no site-based Map-Notify from xTR-2 on the extended VLAN",
        "10.9.0.3\t239.1.1.1\t1\t4\t",
    );
    assert!(
        wire.lines.iter().all(|l| l.ends_with("\t\t")),
        "malformed or expert-flagged:\n{}",
        wire.text()
    );
    drop((ms, x1, x2));
    drop(links);
}
