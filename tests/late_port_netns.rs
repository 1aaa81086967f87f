//! A port whose device does not exist when the switch starts (containerlab attaching a link
//! late, a host moved to a spare port, a NIC hot-plugged): the switch starts at once, the port
//! is down with `Link not present`, and it comes up and forwards within about a second of the
//! device appearing.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, access_port, two_vlan_host, wait_for};
use roamer_test_support::{self as support, Netns};

/// Ethernet1/2's row of `show interface brief`.
fn row(d: &Daemon) -> String {
    let out = d.exec("show interface brief");
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .lines()
        .find(|l| l.starts_with("Eth1/2"))
        .unwrap_or_else(|| panic!("no Eth1/2 row:\n{}", out.stdout))
        .to_string()
}

#[test]
fn a_port_whose_device_appears_five_seconds_after_start_comes_up_and_forwards() {
    support::require_root("network namespaces and AF_PACKET ports");
    let p = support::unique_prefix();
    let sw = Netns::new(&format!("{p}s")).expect("switch netns");
    let v1 = access_port(&p, &sw, "p1");
    let _h1 = two_vlan_host(&p, 1, &v1);
    let config = common::two_vlan_switch(&p, "");
    let started = Instant::now();
    let d = Daemon::start_in_netns(&config, sw.name());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the switch started at once ({:?}), not waiting for {p}p2",
        started.elapsed()
    );
    let r = row(&d);
    assert!(
        r.contains("down") && r.contains("Link not present"),
        "the port without its device is down: {r}"
    );

    // The device appears 5 s after the start (the delay is the scenario, not a synchronisation).
    std::thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));
    let v2 = access_port(&p, &sw, "p2");
    let appeared = Instant::now();
    let h2 = two_vlan_host(&p, 2, &v2);
    let r = wait_for("Eth1/2 up", Duration::from_secs(3), || {
        let r = row(&d);
        r.contains(" up ").then_some(r)
    });
    let took = appeared.elapsed();
    assert!(
        took < Duration::from_millis(2000),
        "up {took:?} after the device appeared: {r}"
    );
    // Traffic through it, both ways (the first echo may be spent on ARP).
    let out = h2
        .exec(&[&support::PING_THREE[..], &["-w", "5", "10.10.0.5"]].concat())
        .unwrap_or_else(|e| panic!("ping through the late port: {e}"));
    assert!(!out.contains(" 0 received"), "{out}");
}
