//! `roamer lab up` returns when the lab works, and `roamer lab move` is a move the network
//! sees: the moved host announces itself (RARP and gratuitous ARP, as after a live
//! migration), and with only the remote host sending, the remote ITR follows within a second.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

mod lab_common;
use lab_common::*;

/// Each scenario: `lab up` returns converged (every roamer node's status line `ready`), and
/// traffic between two sites flows right after it. The first `ping -c 3` is reported, not
/// asserted: the first packets between two sites are still lost to the map-cache miss and
/// the ARP glean (packet holding is another change).
#[test]
fn lab_up_returns_when_every_scenario_has_converged_and_the_sites_then_talk() {
    for (scenario, tag, from, to) in [
        ("across-subnet", "ua", "remote", "10.1.1.5"),
        ("extended-subnet", "ub", "host", "10.3.3.10"),
        ("gsmr-no-route", "uc", "host-b", "172.16.0.12"),
        ("reliable-registration", "ud", "host-a", "192.168.0.22"),
    ] {
        let started = Instant::now();
        let lab = Lab::up(scenario, tag);
        let took = started.elapsed();
        let out = lab.up_output();
        let status: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(" ready") || l.contains("WAITING"))
            .collect();
        assert!(!status.is_empty(), "{scenario}: no status lines:\n{out}");
        assert!(
            status.iter().all(|l| !l.contains("WAITING")),
            "{scenario}:\n{out}"
        );
        // What `lab up` waited for is there when it returns.
        match scenario {
            "across-subnet" => {
                assert!(hsrp_active(&lab.show("xtr-a", "show hsrp brief")));
                assert!(hsrp_active(&lab.show("xtr-b", "show hsrp brief")));
                let site = lab.show("ms", "show lisp site");
                assert!(registered(&site, "10.1.1.0/24", "192.0.2.1"), "{site}");
                assert!(registered(&site, "10.3.3.0/24", "192.0.2.3"), "{site}");
            }
            "extended-subnet" => {
                assert!(hsrp_active(&lab.show("dc1", "show hsrp brief")));
                assert!(hsrp_active(&lab.show("dc2", "show hsrp brief")));
            }
            "reliable-registration" => {
                let s = lab.show("xtr1", "show lisp session");
                assert!(
                    s.lines()
                        .any(|l| l.contains("209.165.201.31") && l.contains("Up")),
                    "{s}"
                );
            }
            _ => {}
        }
        let first = lab.ping_count(from, to, 3, "1");
        eprintln!(
            "{scenario}: lab up {took:?}; first ping -c 3 {from} -> {to}: {}",
            first
                .lines()
                .find(|l| l.contains("transmitted"))
                .unwrap_or("no summary")
        );
        // Nothing lost on first contact: the packets that wait for the map-cache or for a
        // neighbour are held, not dropped.
        assert!(
            first.contains("3 packets transmitted, 3 received"),
            "{scenario}: the first ping -c 3 {from} -> {to} right after lab up:\n{first}"
        );
    }
}

/// Polls `show ip lisp map-cache EID` on `node` until it names `locator`; how long it took.
fn cache_follows(lab: &Lab, node: &str, eid: &str, locator: &str, since: Instant) -> Duration {
    let needle = format!("{locator} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cache = lab.show(node, &format!("show ip lisp map-cache {eid}"));
        if cache.contains(&needle) {
            return since.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{node} never cached {eid} at {locator}:\n{cache}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Once the remote host reaches the host (10.1.1.5) at 192.0.2.1 (`converged` names that
/// wait), moves the host to `to` while the remote host pings it: xtr-c must cache it at
/// 192.0.2.2 within a second of the host's arrival there. The pings, for the caller's checks; the
/// figures are printed under `what`.
fn remote_follows_the_move(lab: &Lab, converged: &str, to: &str, what: &str) -> Pings {
    wait_for(converged, Duration::from_secs(20), || {
        let ok = lab.ping("remote", "10.1.1.5");
        let cache = lab.show("xtr-c", "show ip lisp map-cache 10.1.1.5");
        (ok && cache.contains("192.0.2.1 ")).then_some(cache)
    });
    let mut moved = None;
    let pings = lab.ping_across("remote", "10.1.1.5", || {
        let began = Instant::now();
        lab.move_host("host", to);
        // The clock starts when the host is in its new place: how long `lab move` itself takes
        // (namespace and veth work, slower on a loaded machine) is not the network's time.
        let arrived = Instant::now();
        let took = cache_follows(lab, "xtr-c", "10.1.1.5", "192.0.2.2", arrived);
        moved = Some((arrived - began, took));
    });
    let (moving, took) = moved.unwrap();
    eprintln!(
        "{what}: the move took {moving:?}; xtr-c followed {took:?} after the host arrived; {} replies after it, longest outage {:?}",
        pings.after(),
        pings.outage()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    pings
}

/// Across subnets: after `lab move`, only the remote host pings; xtr-b detects the host from
/// its gratuitous ARP and registers it, the map-server notifies xtr-a, whose away entry makes
/// it SMR xtr-c on the remote host's next packet: xtr-c caches the new locator within a
/// second.
#[test]
fn after_lab_move_the_remote_itr_follows_within_a_second_across_subnets() {
    let lab = Lab::up("across-subnet", "ma");
    let pings = remote_follows_the_move(&lab, "remote -> host", "xtr-b:eth2", "across subnets");
    let (row, dynamic) = lab.dynamic_eid("xtr-b", " 10.1.1.5 ");
    assert!(row.contains("Vlan20"), "{dynamic}");
    assert!(pings.after() >= 40, "{}", pings.text);
}

/// Extended subnet: after `lab move`, only the remote host pings; dc2 detects the host from
/// its gratuitous ARP (dc1 hears it only over the LAN extension, which detects nothing),
/// registers it and tells dc1 on the map-notify-group: xtr-c caches dc2 within a second, and
/// the `*` (learned by Map-Notify) is on dc1, not on dc2.
#[test]
fn after_lab_move_the_remote_itr_follows_within_a_second_in_an_extended_subnet() {
    let lab = Lab::up("extended-subnet", "mb");
    wait_for("host -> remote", Duration::from_secs(20), || {
        lab.ping("host", "10.3.3.10").then(String::new)
    });
    let pings =
        remote_follows_the_move(&lab, "remote -> host at dc1", "dc2:eth2", "extended subnet");
    lab.assert_dc2_holds_the_host();
    assert!(pings.after() >= 40, "{}", pings.text);
}
