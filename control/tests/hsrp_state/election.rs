//! Election: priority, the address as tie-break, one Active, one Standby, the rest Listen.

use super::*;

#[test]
fn election_higher_priority_becomes_active() {
    let lan = converged_pair(1, 110, 100);
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    let r1 = lan.routers[0].group.status();
    assert_eq!(r1.active, Some(ip(2)));
    assert_eq!(r1.standby, Some(ip(3)));
    assert_eq!(r1.standby_priority, Some(100));
    let r2 = lan.routers[1].group.status();
    assert_eq!(r2.active, Some(ip(2)));
    assert_eq!(r2.active_priority, Some(110));
    assert_eq!(r2.standby, Some(ip(3)));
    // Exactly one add of each entry, no removes.
    assert_eq!(lan.routers[0].adds, 2);
    assert_eq!(lan.routers[0].removes, 0);
    assert_eq!(lan.routers[1].adds, 0);
    let vmac = default_virtual_mac(1, 10).unwrap();
    let iface = L3Interface::Vlan(vlan(10));
    assert_eq!(
        lan.routers[0].tables.values().cloned().collect::<Vec<_>>(),
        vec![
            TableEntry::RouterMac {
                iface,
                mac: vmac,
                virtual_mac: true
            },
            TableEntry::InterfaceAddress {
                iface,
                addr: IpAddr::V4(VIP),
                prefix_len: 32,
                virtual_mac: Some(vmac)
            },
        ]
    );
    golden("election_v1.trace", &lan.trace);
}

#[test]
fn election_tie_goes_to_the_higher_address() {
    let lan = converged_pair(1, 100, 100);
    assert_eq!(lan.state_of(0), State::Standby);
    assert_eq!(lan.state_of(1), State::Active, "10.1.10.3 beats 10.1.10.2");
    // Started the other way round, same result.
    let mut lan = Lan::new();
    lan.add("R2", cfg(1, 3, 100));
    lan.run_until(5_000);
    lan.add("R1", cfg(1, 2, 100));
    lan.run_until(60_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
}

#[test]
fn three_routers_one_active_one_standby_one_listen() {
    let mut lan = Lan::new();
    lan.add("R1", cfg(2, 2, 120));
    lan.add("R2", cfg(2, 3, 110));
    lan.add("R3", cfg(2, 4, 100));
    lan.run_until(90_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    assert_eq!(lan.state_of(2), State::Listen);
    let r3 = lan.routers[2].group.status();
    assert_eq!((r3.active, r3.standby), (Some(ip(2)), Some(ip(3))));
    // The Listen router sends nothing once the roles are settled.
    let quiet_since = 60_000;
    assert!(lan.routers[2].sent.iter().all(|(t, _)| *t < quiet_since));
}
