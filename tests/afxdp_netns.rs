//! The software switch with AF_XDP ports (`roamer platform port … io af-xdp`): the L2/L3/LISP
//! forwarding of switch_netns.rs and lisp_xtr_netns.rs over AF_XDP, the same frames and
//! verdicts, nothing lost at a low rate; and the fallback to AF_PACKET, with its reason in
//! `show interface brief`, on a device AF_XDP cannot take (MTU above one page).
//!
//! A capture on a device an AF_XDP port owns sees nothing the port receives or sends (the XDP
//! program takes frames before any skb exists, and AF_XDP transmits past the taps): these tests
//! capture on the far end of a link (a host, or a port left on AF_PACKET).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Daemon, access_port as port, static_xtr_config};
use roamer_test_support::{self as support, Capture, Netns, Veth};

fn ns(prefix: &str, name: &str) -> Netns {
    let ns = Netns::new(&format!("{prefix}{name}")).expect("netns");
    ns.ip(&["link", "set", "lo", "up"]).expect("lo");
    ns
}

/// A host namespace on the far end of `veth` (its end `dev`), addressed, default route `gw`.
fn host(prefix: &str, name: &str, veth: &Veth, dev: &str, v4: &str, gw: &str) -> Netns {
    let h = ns(prefix, name);
    veth.move_to(dev, &h).expect("move");
    h.ip(&["link", "set", dev, "up"]).expect("up");
    h.addr(dev, v4).expect("v4");
    h.ip(&["route", "add", "default", "via", gw]).expect("gw");
    h
}

/// A switch namespace `{prefix}s` with the access ports `{prefix}p1` and `{prefix}p2`.
fn switch_with_two_ports(prefix: &str) -> (Netns, Veth, Veth) {
    let sw = ns(prefix, "s");
    let (v1, v2) = (port(prefix, &sw, "p1"), port(prefix, &sw, "p2"));
    (sw, v1, v2)
}

/// `show interface brief` of `d`, and the row of `port` under `Port I/O` (empty when there is
/// none).
fn io_row(d: &Daemon, port: &str) -> (String, String) {
    let brief = d.exec("show interface brief").stdout;
    let io = brief.split("Port I/O").nth(1).unwrap_or_default();
    let row = io.lines().find(|l| l.starts_with(port)).unwrap_or_default();
    (row.to_string(), brief)
}

/// `count` pings at 20 per second; true when every one came back.
fn no_loss(h: &Netns, dst: &str, count: u32) -> bool {
    let count = count.to_string();
    let out = h
        .exec(&["ping", "-c", &count, "-i", "0.05", "-W", "2", dst])
        .unwrap_or_default();
    out.contains(" 0% packet loss")
}

fn require() {
    support::require_root("AF_XDP netns tests create namespaces and attach XDP programs");
    support::require_tool("tshark", "tshark");
    if let Err(why) = roamer_platforms::bpf_objects::XDP_REDIRECT {
        panic!("this build has no XDP program ({why}); install clang and rebuild");
    }
}

#[test]
fn hosts_on_two_vlans_route_through_the_svis_over_af_xdp_ports() {
    require();
    let p = support::unique_prefix();
    let (sw, v1, v2) = switch_with_two_ports(&p);
    let (h1, h2) = (
        common::two_vlan_host(&p, 1, &v1),
        common::two_vlan_host(&p, 2, &v2),
    );
    let config = common::two_vlan_switch(&p, " io af-xdp");
    let d = Daemon::start_in_netns(&config, sw.name());

    for port in ["Eth1/1", "Eth1/2"] {
        let (row, brief) = io_row(&d, port);
        assert!(
            row.contains("af-xdp (generic XDP, copy; large segments af-packet)"),
            "{port} not on AF_XDP:\n{brief}"
        );
    }
    let json = d.exec("show interface brief | json").stdout;
    assert!(
        json.contains("af-xdp (generic XDP, copy; large segments af-packet)"),
        "{json}"
    );

    // The far host captures what the switch routed to it (its own receive path has taps).
    let capture = Capture::start(
        &h2,
        &format!("{p}p2h"),
        "icmp",
        4,
        &["ip.src", "ip.dst", "ip.ttl", "_ws.expert"],
        Duration::from_secs(20),
    )
    .expect("tshark on the far host");
    // tshark says it captures a little before it does: pings until it has seen some.
    let to_h2 = Ipv4Addr::new(10, 20, 0, 6);
    let text =
        common::lines_while_pinging(&capture, 2, &h1, to_h2, "IPv4 across the SVIs over AF_XDP");
    // Routed: the TTL is one less than the sender's 64; no expert info (malformed, checksum).
    assert!(
        text.lines()
            .any(|l| l.starts_with("10.10.0.5\t10.20.0.6\t63") && !l.contains("Malformed")),
        "no routed echo request decoded on the far host:\n{text}"
    );
    assert!(!text.contains("Malformed"), "{text}");

    // Nothing lost at a low rate, both ways, and the SVI answers.
    assert!(no_loss(&h1, "10.20.0.6", 40), "loss across the SVIs");
    assert!(no_loss(&h2, "10.10.0.5", 40), "loss back");
    assert!(no_loss(&h1, "10.10.0.1", 10), "the SVI address answers");

    // A TCP stream: the hosts' stack cuts segments to the MTU (AF_XDP takes no large
    // segments: attaching XDP to the port's veth takes GSO away from its peer) and completes
    // checksums the device would otherwise have left partial.
    tcp_crosses_intact(
        &h1,
        &h2,
        Ipv4Addr::new(10, 20, 0, 6),
        "TCP over AF_XDP ports",
    );
    assert_counter_moved(&d, "routed");
}

#[test]
fn a_trunk_from_an_af_xdp_port_carries_both_vlans_tagged() {
    require();
    let p = support::unique_prefix();
    let trunked = common::trunked_switches(&p);
    let sw2 = &trunked.sw2;
    let [a10, a20, b10, b20] = &trunked.ports;
    let h1 = host(
        &p,
        "a",
        a10,
        &format!("{p}p1h"),
        "10.10.0.1/24",
        "10.10.0.254",
    );
    let h2 = host(
        &p,
        "b",
        a20,
        &format!("{p}p2h"),
        "10.20.0.1/24",
        "10.20.0.254",
    );
    let _h3 = host(
        &p,
        "c",
        b10,
        &format!("{p}p3h"),
        "10.10.0.2/24",
        "10.10.0.254",
    );
    let _h4 = host(
        &p,
        "d",
        b20,
        &format!("{p}p4h"),
        "10.20.0.2/24",
        "10.20.0.254",
    );
    // sw1 all AF_XDP; sw2's trunk port on AF_PACKET, where the capture sees the trunk.
    let [d1, d2] = trunked.start(&p, [["af-xdp", "af-xdp"], ["af-xdp", "af-packet"]]);
    let ((trunk1, brief1), (trunk2, brief2)) = (io_row(&d1, "Eth1/48"), io_row(&d2, "Eth1/48"));
    assert!(trunk1.contains("af-xdp"), "{brief1}");
    assert!(
        trunk2.ends_with("af-packet"),
        "the forced AF_PACKET port reports no fallback:\n{brief2}"
    );

    let capture = Capture::start(
        sw2,
        &format!("{p}k2"),
        "icmp or vlan",
        200,
        &["vlan.id", "ip.src", "ip.dst", "_ws.expert"],
        Duration::from_secs(20),
    )
    .expect("tshark on the trunk");
    assert!(no_loss(&h1, "10.10.0.2", 20), "VLAN 10 across the trunk");
    assert!(no_loss(&h2, "10.20.0.2", 20), "VLAN 20 across the trunk");
    let mut seen = Vec::new();
    let has = |seen: &[String], vlan: &str, src: &str| {
        seen.iter()
            .any(|l| l.starts_with(&format!("{vlan}\t{src}\t")))
    };
    while let Some(line) = capture.next_line(Duration::from_secs(5)) {
        seen.push(line);
        if has(&seen, "10", "10.10.0.1") && has(&seen, "20", "10.20.0.1") {
            break;
        }
    }
    let text = seen.join("\n");
    // Frames sw1 sent out of its AF_XDP trunk port carry the tag it wrote into them.
    assert!(
        has(&seen, "10", "10.10.0.1"),
        "no VLAN 10 frame from the AF_XDP side:\n{text}"
    );
    assert!(
        has(&seen, "20", "10.20.0.1"),
        "no VLAN 20 frame from the AF_XDP side:\n{text}"
    );
    assert!(!text.contains("Malformed"), "{text}");
    drop(trunked);
}

#[test]
fn two_xtrs_on_af_xdp_ports_carry_host_traffic_encapsulated() {
    require();
    let p = support::unique_prefix();
    let sites = common::two_xtrs(&p);
    let (x1, x2, h1, h2) = (&sites.x1, &sites.x2, &sites.h1, &sites.h2);
    // xtr1 entirely on AF_XDP; xtr2's underlay port on AF_PACKET, where the capture is.
    let xtr1 = static_xtr_config(&p, 1, 2, ["af-xdp", "af-xdp"], "");
    let d1 = Daemon::start_in_netns(&xtr1, x1.name());
    let xtr2 = static_xtr_config(&p, 2, 1, ["af-xdp", "af-packet"], "");
    let d2 = Daemon::start_in_netns(&xtr2, x2.name());

    let capture = common::lisp_data_capture(x2, &format!("{p}u2"));
    // From the AF_XDP xTR.
    let text = sites.lisp_icmp_seen(&capture, 2);
    assert!(!text.contains("Malformed"), "{text}");
    assert!(no_loss(h1, "10.20.0.5", 40), "loss across LISP");

    // A TCP stream across both xTRs (encapsulated by the AF_XDP one, decapsulated by the
    // other, and back).
    tcp_crosses_intact(
        h1,
        h2,
        Ipv4Addr::new(10, 20, 0, 5),
        "TCP over LISP, AF_XDP ports",
    );
    assert_counter_moved(&d1, "lisp-encapsulated");
    assert_counter_moved(&d2, "lisp-decapsulated");
    drop(sites);
}

#[test]
fn a_port_af_xdp_cannot_take_falls_back_to_af_packet_and_says_why() {
    require();
    let p = support::unique_prefix();
    let (sw, v1, v2) = switch_with_two_ports(&p);
    // Both hosts in VLAN 10.
    let [h1, h2] = [("a", &v1, "10.10.0.5/24"), ("b", &v2, "10.10.0.6/24")]
        .map(|(name, v, cidr)| host(&p, name, v, &v.b, cidr, "10.10.0.1"));
    // A 9000-byte MTU is more than a page: AF_XDP refuses it, whether asked for or not.
    sw.ip(&["link", "set", &format!("{p}p1"), "mtu", "9000"])
        .expect("mtu");
    h1.ip(&["link", "set", &format!("{p}p1h"), "mtu", "9000"])
        .expect("mtu");
    let config = format!(
        "hostname sw1\nroamer platform port Ethernet1/1 {p}p1 io af-xdp\nroamer platform port Ethernet1/2 {p}p2\nvlan 10\ninterface Ethernet1/1\n  switchport\n  switchport access vlan 10\ninterface Ethernet1/2\n  switchport\n  switchport access vlan 10\n"
    );
    let d = Daemon::start_in_netns(&config, sw.name());
    let (row, brief) = io_row(&d, "Eth1/1");
    assert!(
        row.contains("af-packet (AF_XDP not used: MTU 9000 is above 3498"),
        "the fallback and its reason:\n{brief}"
    );
    // The other port chose AF_XDP by itself.
    let (row, brief) = io_row(&d, "Eth1/2");
    assert!(row.contains("af-xdp (generic XDP"), "{brief}");
    // Bridged between an AF_PACKET and an AF_XDP port, nothing lost.
    assert!(no_loss(&h1, "10.10.0.6", 40), "AF_PACKET to AF_XDP");
    assert!(no_loss(&h2, "10.10.0.5", 40), "AF_XDP to AF_PACKET");
}

/// 4 MiB of TCP from `from` to `to`:5001 arrives intact (the rate is printed, for information).
fn tcp_crosses_intact(from: &Netns, at: &Netns, to: Ipv4Addr, what: &str) {
    const TOTAL: usize = 4 << 20;
    let (good, took) = support::tcp_stream(from, at, to, 5001, TOTAL).expect("tcp stream");
    assert_eq!(good, TOTAL, "{what}: the TCP stream crosses intact");
    eprintln!(
        "{what}: {TOTAL} B in {took:?} ({:.0} Mbit/s, debug build)",
        TOTAL as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}

/// `show forwarding counters` of `d` has counted `name` at least once.
fn assert_counter_moved(d: &Daemon, name: &str) {
    let counters = d.exec("show forwarding counters").stdout;
    assert!(
        common::counter(d, name) > 0,
        "{name} did not move:\n{counters}"
    );
}
