//! Ports attached and detached while the switch runs, through the HAL (`DataPlane::attach_port`
//! / `detach_port`): a `roamer platform port` and its interface configured at run time forward
//! at once, without a restart, on the I/O chosen as at start (AF_XDP on a veth) or forced with
//! `io af-packet` at run time (the port is taken again); removed again, the port is gone from `show interface brief` and
//! nothing is forwarded through it any more.

mod common;

use std::time::Duration;

use common::{Daemon, host, wait_for};
use roamer_test_support::{self as support, Netns, Veth};

/// `ping -c 3` from `from`; its output whether or not replies came.
fn ping(from: &Netns, to: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", from.name()])
        .args(support::PING_THREE)
        .args(["-w", "4", to])
        .output()
        .expect("running ping");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Eth1/2's row in the "Port I/O" part of `show interface brief`.
fn eth1_2_io(d: &Daemon) -> String {
    let brief = d.exec("show interface brief").stdout;
    brief
        .lines()
        .skip_while(|l| !l.starts_with("Port I/O"))
        .find(|l| l.starts_with("Eth1/2"))
        .unwrap_or_else(|| panic!("no Port I/O row for Eth1/2:\n{brief}"))
        .to_string()
}

#[test]
fn a_port_configured_at_run_time_forwards_and_a_removed_one_is_gone() {
    support::require_root("network namespaces and AF_PACKET ports");
    let p = support::unique_prefix();
    let sw = Netns::new(&format!("{p}s")).expect("switch netns");
    let mut hosts = Vec::new();
    for (n, vlan) in [(1, 10), (2, 20)] {
        let v = Veth::new(&format!("{p}p{n}"), &format!("{p}p{n}h")).expect("veth");
        v.move_to(&format!("{p}p{n}"), &sw).expect("move");
        sw.ip(&["link", "set", &format!("{p}p{n}"), "up"])
            .expect("up");
        hosts.push(host(
            &p,
            &format!("h{n}"),
            &v,
            &format!("{p}p{n}h"),
            &format!("10.{vlan}.0.5/24"),
            &format!("10.{vlan}.0.1"),
        ));
    }
    let config = format!(
        "hostname sw1\nroamer platform backend software\nroamer platform port Ethernet1/1 {p}p1\n\
         feature interface-vlan\nvlan 10,20\ninterface Ethernet1/1\n  switchport\n  \
         switchport access vlan 10\ninterface Vlan10\n  ip address 10.10.0.1/24\n\
         interface Vlan20\n  ip address 10.20.0.1/24\n"
    );
    let d = Daemon::start_in_netns(&config, sw.name());
    let brief = d.exec("show interface brief").stdout;
    assert!(!brief.contains("Eth1/2"), "no Ethernet1/2 yet:\n{brief}");

    // Attach: the port and its interface, in one change, while running.
    let out = d.exec(&format!(
        "configure terminal ; roamer platform port Ethernet1/2 {p}p2 ; interface Ethernet1/2 ; \
         switchport ; switchport access vlan 20 ; end"
    ));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_for("Eth1/2 up", Duration::from_secs(5), || {
        let brief = d.exec("show interface brief").stdout;
        brief
            .lines()
            .any(|l| l.starts_with("Eth1/2") && l.contains(" up "))
            .then_some(())
    });
    let out = ping(&hosts[1], "10.10.0.5");
    assert!(
        out.contains(" received") && !out.contains(" 0 received"),
        "routed through the port attached at run time:\n{out}"
    );
    // Chosen as at start: AF_XDP on a veth.
    let row = eth1_2_io(&d);
    assert!(row.contains("af-xdp"), "{row}");

    // The I/O forced at run time: the port is taken again over AF_PACKET and still forwards.
    let out = d.exec(&format!(
        "configure terminal ; roamer platform port Ethernet1/2 {p}p2 io af-packet ; end"
    ));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let row = eth1_2_io(&d);
    assert!(
        row.contains("af-packet") && !row.contains("af-xdp"),
        "{row}"
    );
    let out = ping(&hosts[1], "10.10.0.5");
    assert!(
        out.contains(" received") && !out.contains(" 0 received"),
        "routed through the port re-attached over AF_PACKET:\n{out}"
    );

    // Detach: the interface and its port go; the host behind it is cut off.
    let out = d.exec(&format!(
        "configure terminal ; no interface Ethernet1/2 ; no roamer platform port Ethernet1/2 {p}p2 ; end"
    ));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let brief = d.exec("show interface brief").stdout;
    assert!(
        !brief.lines().any(|l| l.starts_with("Eth1/2")),
        "Ethernet1/2 gone:\n{brief}"
    );
    // The other port still forwards (the detach left the data path running)...
    let out = ping(&hosts[0], "10.10.0.1");
    assert!(
        !out.contains(" 0 received"),
        "port 1 still forwards:\n{out}"
    );
    // ...and nothing reaches the detached one's host any more.
    let out = ping(&hosts[1], "10.10.0.5");
    assert!(
        out.contains(" 0 received"),
        "the detached port no longer forwards:\n{out}"
    );
    let log = d.drain_log().join("\n");
    assert!(
        log.contains("port attached at run time") && log.contains("port detached at run time"),
        "{log}"
    );
}
