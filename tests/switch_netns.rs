//! The software switch between real Linux hosts in network namespaces: VLANs and SVIs, trunks
//! between two roamers (with 802.1Q on the wire), proxy-ARP.
//!
//! The ports are AF_PACKET (`io af-packet`): this test captures on the switch's own port
//! devices or relies on vnet-hdr large segments, which AF_XDP ports do not give
//! (tests/afxdp_netns.rs runs these paths over AF_XDP).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Daemon, access_port as port};
use roamer_test_support::{self as support, Capture, Netns, Veth};

/// A host's addresses and gateways.
#[derive(Clone, Copy)]
struct Addrs<'a> {
    v4: &'a str,
    gw4: &'a str,
    v6: &'a str,
    gw6: &'a str,
}

fn addrs<'a>(v4: &'a str, gw4: &'a str, v6: &'a str, gw6: &'a str) -> Addrs<'a> {
    Addrs { v4, gw4, v6, gw6 }
}

/// A host namespace with one interface `dev` (moved in from a veth pair), addressed.
struct Host {
    ns: Netns,
}

impl Host {
    fn new(prefix: &str, name: &str, veth: &Veth, dev: &str, a: Addrs<'_>) -> Host {
        let Addrs { v4, gw4, v6, gw6 } = a;
        let ns = Netns::new(&format!("{prefix}{name}")).expect("netns");
        veth.move_to(dev, &ns).expect("move");
        ns.ip(&["link", "set", dev, "up"]).expect("up");
        ns.addr(dev, v4).expect("v4");
        ns.ip(&["route", "add", "default", "via", gw4])
            .expect("gw4");
        ns.ip(&["-6", "addr", "add", v6, "dev", dev, "nodad"])
            .expect("v6");
        ns.ip(&["-6", "route", "add", "default", "via", gw6])
            .expect("gw6");
        Host { ns }
    }

    fn ping(&self, dst: &str) -> bool {
        // The first packet may be spent resolving the next hop (glean), as on any router.
        let v6 = dst.contains(':');
        let args = if v6 {
            vec!["ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", dst]
        } else {
            vec!["ping", "-c", "3", "-i", "0.2", "-W", "1", dst]
        };
        match self.ns.exec(&args) {
            Ok(out) => !out.contains(" 0 received"),
            Err(_) => false,
        }
    }
}

fn switch_ns(prefix: &str, name: &str) -> Netns {
    let ns = Netns::new(&format!("{prefix}{name}")).expect("switch netns");
    ns.ip(&["link", "set", "lo", "up"]).expect("lo");
    ns
}

fn two_vlan_config(prefix: &str, extra: &str) -> String {
    format!(
        "hostname sw1\nroamer platform port Ethernet1/1 {prefix}p1 io af-packet\nroamer platform port Ethernet1/2 {prefix}p2 io af-packet\nfeature interface-vlan\nvlan 10,20\ninterface Ethernet1/1\n  switchport\n  switchport access vlan 10\ninterface Ethernet1/2\n  switchport\n  switchport access vlan 20\ninterface Vlan10\n  ip address 10.10.0.1/24\n  ipv6 address 2001:db8:a::1/64\n{extra}interface Vlan20\n  ip address 10.20.0.1/24\n  ipv6 address 2001:db8:14::1/64\n"
    )
}

/// The switch namespace `{prefix}s` of [`two_vlan_config`], its access ports `{prefix}p1` and
/// `{prefix}p2`, and a host on each: `{prefix}a` (10.10.0.5, 2001:db8:a::5) in VLAN 10 and
/// `{prefix}b` (10.20.0.6, 2001:db8:14::6) in VLAN 20, their gateways the SVIs.
struct TwoVlans {
    sw: Netns,
    h1: Host,
    h2: Host,
    _ports: [Veth; 2],
}

/// The hosts of [`two_vlans`]: name, then IPv4 address and gateway, IPv6 address and gateway.
const TWO_VLAN_HOSTS: [(&str, [&str; 4]); 2] = [
    (
        "a",
        [
            "10.10.0.5/24",
            "10.10.0.1",
            "2001:db8:a::5/64",
            "2001:db8:a::1",
        ],
    ),
    (
        "b",
        [
            "10.20.0.6/24",
            "10.20.0.1",
            "2001:db8:14::6/64",
            "2001:db8:14::1",
        ],
    ),
];

fn two_vlans(prefix: &str) -> TwoVlans {
    let sw = switch_ns(prefix, "s");
    let ports = [port(prefix, &sw, "p1"), port(prefix, &sw, "p2")];
    let [h1, h2] = [1, 2].map(|n| {
        let (name, [v4, gw4, v6, gw6]) = TWO_VLAN_HOSTS[n - 1];
        let dev = format!("{prefix}p{n}h");
        Host::new(prefix, name, &ports[n - 1], &dev, addrs(v4, gw4, v6, gw6))
    });
    TwoVlans {
        sw,
        h1,
        h2,
        _ports: ports,
    }
}

#[test]
fn hosts_on_two_vlans_ping_each_other_through_the_svis() {
    let prefix = support::unique_prefix();
    let t = two_vlans(&prefix);
    let (h1, h2) = (&t.h1, &t.h2);
    let d = Daemon::start_in_netns(&two_vlan_config(&prefix, ""), t.sw.name());

    assert!(h1.ping("10.20.0.6"), "IPv4 across the SVIs");
    assert!(h2.ping("10.10.0.5"), "IPv4 back");
    assert!(h1.ping("2001:db8:14::6"), "IPv6 across the SVIs");
    assert!(h1.ping("10.10.0.1"), "the SVI address answers");

    let mac = |h: &Host, dev: &str| support::sysfs(&h.ns, dev, "address").expect("mac");
    let m1 = mac(h1, &format!("{prefix}p1h"));
    let m2 = mac(h2, &format!("{prefix}p2h"));
    let nx = |m: &str| {
        let hex: String = m.trim().split(':').collect();
        format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12])
    };
    let (nx1, nx2) = (nx(&m1), nx(&m2));
    d.assert_shows("show mac address-table", &[&nx1, &nx2, "Eth1/1", "Eth1/2"]);
    d.assert_shows("show ip arp", &["10.10.0.5", "10.20.0.6", &nx1]);
    let json = d.exec("show ip arp | json").stdout;
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "{json}"
    );
    let counters = d.exec("show forwarding counters").stdout;
    assert!(counters.contains("routed"), "{counters}");
    let route = d.exec("show ip route").stdout;
    assert!(
        route.contains("10.20.0.0/24, ubest/mbest: 1/0, attached"),
        "{route}"
    );
}

#[test]
fn proxy_arp_answers_for_reachable_off_subnet_addresses_only_when_enabled() {
    for enabled in [false, true] {
        let prefix = support::unique_prefix();
        let t = two_vlans(&prefix);
        let (h1, dev1) = (&t.h1, format!("{prefix}p1h"));
        let extra = if enabled { "  ip proxy-arp\n" } else { "" };
        let d = Daemon::start_in_netns(&two_vlan_config(&prefix, extra), t.sw.name());
        // A host that believes 10.20.0.0/24 is on its own link (a moved VM keeps such routes).
        h1.ns
            .ip(&["route", "add", "10.20.0.0/24", "dev", &dev1])
            .expect("on-link route");
        let _ = h1
            .ns
            .exec(&["ping", "-c", "2", "-i", "0.3", "-W", "1", "10.20.0.6"]);
        let neigh = h1
            .ns
            .ip(&["neigh", "show", "10.20.0.6"])
            .unwrap_or_default();
        let sw_mac = d.exec("show mac address-table").stdout;
        if enabled {
            let lladdr = neigh
                .split_whitespace()
                .skip_while(|w| *w != "lladdr")
                .nth(1)
                .unwrap_or("")
                .to_string();
            let hex: String = lladdr.split(':').collect();
            assert_eq!(hex.len(), 12, "no proxy-ARP answer: {neigh}");
            let nx = format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12]);
            assert!(
                sw_mac.contains(&format!(
                    "{nx}   static   -         F      F    sup-eth1(R)"
                )),
                "answered with {nx}, not the SVI MAC:\n{sw_mac}"
            );
        } else {
            assert!(
                !neigh.contains("lladdr"),
                "answered without ip proxy-arp: {neigh}"
            );
        }
    }
}

#[test]
fn a_trunk_between_two_roamers_carries_both_vlans_tagged() {
    let prefix = support::unique_prefix();
    // The trunk: one veth pair, an end in each switch.
    let trunked = common::trunked_switches(&prefix);
    let sw1 = &trunked.sw1;
    let [a10, a20, b10, b20] = &trunked.ports;
    // Layer 2 only: gateways are unused addresses of each host's own subnet.
    let host = |name: &str, veth: &Veth, dev: &str, addr: &str, gw: &str, v6: &str| {
        Host::new(
            &prefix,
            name,
            veth,
            dev,
            addrs(addr, gw, v6, "2001:db8:ff::99"),
        )
    };
    let h1 = host(
        "a",
        a10,
        &format!("{prefix}p1h"),
        "10.10.0.1/24",
        "10.10.0.254",
        "2001:db8:ff::1/64",
    );
    let h2 = host(
        "b",
        a20,
        &format!("{prefix}p2h"),
        "10.20.0.1/24",
        "10.20.0.254",
        "2001:db8:ff::2/64",
    );
    let _h3 = host(
        "c",
        b10,
        &format!("{prefix}p3h"),
        "10.10.0.2/24",
        "10.10.0.254",
        "2001:db8:ff::3/64",
    );
    let _h4 = host(
        "d",
        b20,
        &format!("{prefix}p4h"),
        "10.20.0.2/24",
        "10.20.0.254",
        "2001:db8:ff::4/64",
    );
    let _daemons = trunked.start(&prefix, [["af-packet"; 2]; 2]);

    // "vlan and icmp" misses frames whose tag the kernel carries as metadata; tshark still
    // reports the tag of every frame in vlan.id.
    let capture = Capture::start(
        sw1,
        &format!("{prefix}k1"),
        "icmp or vlan",
        // The hosts' own IPv6 chatter (DAD, router solicitations) is tagged too; the test
        // reads until it has seen both VLANs, not the first few frames.
        200,
        &["vlan.id", "ip.src", "ip.dst"],
        Duration::from_secs(20),
    )
    .expect("tshark on the trunk");
    assert!(
        support::ping(&h1.ns, Ipv4Addr::new(10, 10, 0, 2), Duration::from_secs(5)).expect("ping"),
        "VLAN 10 across the trunk"
    );
    assert!(
        support::ping(&h2.ns, Ipv4Addr::new(10, 20, 0, 2), Duration::from_secs(5)).expect("ping"),
        "VLAN 20 across the trunk"
    );
    let mut seen = Vec::new();
    let tagged = |seen: &[String], vlan: &str| seen.iter().any(|l| l.starts_with(vlan));
    while let Some(line) = capture.next_line(Duration::from_secs(5)) {
        seen.push(line);
        if tagged(&seen, "10\t") && tagged(&seen, "20\t") {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(
        text.lines().any(|l| l.starts_with("10\t")),
        "no VLAN 10 tag on the trunk:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("20\t")),
        "no VLAN 20 tag on the trunk:\n{text}"
    );
}

#[test]
fn a_host_on_a_tap_port_reaches_a_host_on_an_afpacket_port() {
    let prefix = support::unique_prefix();
    let sw = switch_ns(&prefix, "s");
    let v2 = port(&prefix, &sw, "p2");
    let tap = format!("{prefix}t1");
    let config = format!(
        "hostname sw1\nroamer platform port Ethernet1/1 tap:{tap}\nroamer platform port Ethernet1/2 {prefix}p2 io af-packet\nvlan 10\ninterface Ethernet1/1\n  switchport\n  switchport access vlan 10\ninterface Ethernet1/2\n  switchport\n  switchport access vlan 10\n"
    );
    let _d = Daemon::start_in_netns(&config, sw.name());
    // roamer holds the TAP's file descriptor; the device itself moves to the host.
    let h1 = Netns::new(&format!("{prefix}a")).expect("netns");
    sw.ip(&["link", "set", &tap, "netns", h1.name()])
        .expect("move tap");
    h1.ip(&["link", "set", &tap, "up"]).expect("up");
    h1.addr(&tap, "10.10.0.5/24").expect("addr");
    let h2 = Host::new(
        &prefix,
        "b",
        &v2,
        &format!("{prefix}p2h"),
        addrs(
            "10.10.0.6/24",
            "10.10.0.1",
            "2001:db8:a::6/64",
            "2001:db8:a::1",
        ),
    );
    assert!(
        support::ping(&h1, Ipv4Addr::new(10, 10, 0, 6), Duration::from_secs(5)).expect("ping"),
        "TAP to AF_PACKET in one VLAN"
    );
    drop(h2);
}

/// `mac address-table static`: frames to the static MAC go out of its interface only (never
/// flooded to the other ports of the VLAN), and a frame from that MAC on another port does not
/// move it; `show mac address-table` lists it as static.
#[test]
fn a_static_mac_takes_frames_to_its_port_only_and_never_moves() {
    let prefix = support::unique_prefix();
    let sw = switch_ns(&prefix, "s");
    let ports = ["p1", "p2", "p3"].map(|p| port(&prefix, &sw, p));
    let hosts: Vec<Host> = [("a", "5"), ("b", "6"), ("c", "7")]
        .iter()
        .enumerate()
        .map(|(i, (name, host))| {
            Host::new(
                &prefix,
                name,
                &ports[i],
                &format!("{prefix}p{}h", i + 1),
                addrs(
                    &format!("10.10.0.{host}/24"),
                    "10.10.0.1",
                    &format!("2001:db8:a::{host}/64"),
                    "2001:db8:a::1",
                ),
            )
        })
        .collect();
    let mut config = String::from("hostname sw1\nfeature interface-vlan\nvlan 10\n");
    for n in 1..=3 {
        config.push_str(&format!(
            "roamer platform port Ethernet1/{n} {prefix}p{n} io af-packet\n\
             interface Ethernet1/{n}\n  switchport\n  switchport access vlan 10\n"
        ));
    }
    config.push_str(
        "interface Vlan10\n  ip address 10.10.0.1/24\n  ipv6 address 2001:db8:a::1/64\n\
         mac address-table static 0200.0000.00aa vlan 10 interface Ethernet1/2\n",
    );
    let d = Daemon::start_in_netns(&config, sw.name());
    assert!(hosts[0].ping("10.10.0.7"), "host a reaches host c");
    d.assert_shows("show mac address-table", &["0200.0000.00aa", "static"]);

    // Host a sends to the static MAC (10.10.0.99 pinned to it): only host b's link has it.
    let (a, b, c) = (&hosts[0], &hosts[1], &hosts[2]);
    a.ns.ip(&[
        "neigh",
        "replace",
        "10.10.0.99",
        "lladdr",
        "02:00:00:00:00:aa",
        "dev",
        &format!("{prefix}p1h"),
        "nud",
        "permanent",
    ])
    .expect("a permanent neighbour");
    let fields = ["eth.dst", "ip.dst", "_ws.malformed"];
    let on_b = Capture::start(
        &b.ns,
        &format!("{prefix}p2h"),
        "icmp",
        50,
        &fields,
        Duration::from_secs(30),
    )
    .expect("tshark on host b");
    let on_c = Capture::start(
        &c.ns,
        &format!("{prefix}p3h"),
        "icmp",
        50,
        &fields,
        Duration::from_secs(30),
    )
    .expect("tshark on host c");
    let to_static = |cap: &Capture| {
        cap.lines_while(3, Duration::from_secs(10), || {
            let _ =
                a.ns.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.10.0.99"]);
            let _ = a.ns.exec(&["ping", "-c", "1", "-W", "1", "10.10.0.7"]);
        })
    };
    let seen_b = to_static(&on_b);
    assert!(
        seen_b.iter().any(|l| l.starts_with("02:00:00:00:00:aa\t")),
        "frames to the static MAC reach its port: {seen_b:?}"
    );
    let seen_c = on_c.lines_until_quiet(Duration::from_secs(1));
    assert!(
        seen_c.iter().any(|l| l.contains("\t10.10.0.7")),
        "host c's capture saw its own pings: {seen_c:?}"
    );
    assert!(
        !seen_c.iter().any(|l| l.starts_with("02:00:00:00:00:aa\t")),
        "a frame to the static MAC was flooded to host c: {seen_c:?}"
    );

    // Host c takes the static MAC as its own and speaks: the entry stays on Ethernet1/2.
    let c_dev = format!("{prefix}p3h");
    c.ns.ip(&["link", "set", &c_dev, "address", "02:00:00:00:00:aa"])
        .expect("set MAC");
    let _ =
        c.ns.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.10.0.1"]);
    let table = d.exec("show mac address-table").stdout;
    let row = table
        .lines()
        .find(|l| l.contains("0200.0000.00aa"))
        .unwrap_or_else(|| panic!("the static MAC went:\n{table}"));
    assert!(
        row.contains("static") && row.contains("Eth1/2") && !row.contains("Eth1/3"),
        "{row}"
    );
}
