//! Dynamic EIDs: hosts detected across subnets, moves, RARP, and hosts back from away.

use super::*;

#[test]
fn a_moved_host_that_never_asks_is_asked_for_from_the_svi_address() {
    let mut p = switch();
    let svi = roamer_1_across_subnets(&mut p);
    // A live-migrated VM keeps its ARP cache: the control plane routes it here, the first
    // packet for it must find it.
    add(
        &mut p,
        TableEntry::Route {
            prefix: "172.16.1.20/32".parse().unwrap(),
            next_hop: NextHop::Connected(svi),
        },
    );
    let to_vm = udp(HOST_B, ROUTER_MAC, [10, 20, 0, 6], [172, 16, 1, 20], 64);
    let (out, _) = run(&mut p, B, &to_vm, 0);
    assert_eq!(out.verdict, Verdict::Held, "held until the VM answers");
    let r = p.reply();
    assert_eq!(&r[12..14], &[0x08, 0x06], "an ARP request");
    assert_eq!(&r[28..32], &[10, 10, 0, 1], "from the SVI's own address");
    assert_eq!(&r[38..42], &[172, 16, 1, 20]);
}

/// Dynamic-EID range 172.16.1.0/24 ("Roamer-1", across subnets) on Vlan10; returns the SVI.
fn roamer_1_across_subnets(p: &mut Pipeline) -> L3Interface {
    let svi = L3Interface::Vlan(v(10));
    add(
        p,
        TableEntry::DynamicEidRange {
            iface: svi,
            map: "Roamer-1".into(),
            eid: "172.16.1.0/24".parse().unwrap(),
            extended_subnet: false,
            notify_group: None,
        },
    );
    svi
}

#[test]
fn dynamic_eids_are_detected_across_subnets_once_per_refresh() {
    let mut p = switch();
    let svi = roamer_1_across_subnets(&mut p);
    let from_moved = udp(HOST_A, ROUTER_MAC, [172, 16, 1, 10], [10, 20, 0, 6], 64);
    let from_local = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 20, 0, 6], 64);
    run(&mut p, A, &from_moved, 0);
    run(&mut p, A, &from_moved, 100);
    run(&mut p, A, &from_local, 100);
    run(&mut p, A, &from_moved, 20_000);
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    let seen = HalEvent::DynamicEidSeen {
        iface: svi,
        eid: ip("172.16.1.10"),
        map: "Roamer-1".into(),
    };
    assert_eq!(ev, vec![seen.clone(), seen]);
}

#[test]
fn a_moved_host_is_detected_by_its_gratuitous_arp_or_reply_and_its_arp_for_the_gateway_but_not_over_the_lan_extension()
 {
    let mut p = switch();
    let svi = roamer_1_across_subnets(&mut p);
    let seen = |eid: &str| HalEvent::DynamicEidSeen {
        iface: svi,
        eid: ip(eid),
        map: "Roamer-1".into(),
    };
    // The gratuitous ARP a host (or its hypervisor) sends on arrival is a report; its ARP for
    // the gateway right after is the same detection (rate-limited); a local host's ARP is not
    // one.
    let garp = arp_request(HOST_A, [172, 16, 1, 10], [172, 16, 1, 10]);
    let local = arp_request(HOST_A, [10, 10, 0, 5], [10, 10, 0, 1]);
    let to_gateway = arp_request(HOST_A, [172, 16, 1, 10], [10, 10, 0, 1]);
    run(&mut p, A, &garp, 0);
    run(&mut p, A, &local, 0);
    run(&mut p, A, &to_gateway, 0);
    // An ARP reply too (answering the switch's own request).
    let mut reply = arp_request(HOST_A, [172, 16, 1, 11], [10, 10, 0, 1]);
    reply[21] = 2;
    run(&mut p, A, &reply, 0);
    // A request we do not answer (for another host, flooded on an extended LAN) is not one.
    run(
        &mut p,
        A,
        &arp_request(HOST_A, [172, 16, 1, 13], [172, 16, 1, 14]),
        0,
    );
    // A host asking for its gateway is.
    run(
        &mut p,
        A,
        &arp_request(HOST_A, [172, 16, 1, 15], [10, 10, 0, 1]),
        0,
    );
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert_eq!(
        ev,
        vec![
            seen("172.16.1.10"),
            seen("172.16.1.11"),
            seen("172.16.1.15")
        ]
    );
    // Flooded over the LAN extension (the hello-filter port), a host's ARP comes from the
    // other data centre: not ours to detect.
    add(&mut p, TableEntry::HelloFilter { port: A });
    run(
        &mut p,
        A,
        &arp_request(HOST_A, [172, 16, 1, 12], [172, 16, 1, 12]),
        0,
    );
    p.drain_events(&mut ev);
    assert_eq!(
        ev,
        vec![
            seen("172.16.1.10"),
            seen("172.16.1.11"),
            seen("172.16.1.15")
        ]
    );
}

/// A RARP (QEMU announce-self, VMware after a migration) carries the MAC but no IP address:
/// flooded, the MAC learned on its new port, no dynamic EID until the host's ARP or IP traffic.
#[test]
fn a_rarp_moves_the_mac_but_detects_no_dynamic_eid() {
    let mut p = switch();
    roamer_1_across_subnets(&mut p);
    let mut rarp = arp_request(HOST_A, [0; 4], [0; 4]);
    rarp[12..14].copy_from_slice(&[0x80, 0x35]);
    rarp[20..22].copy_from_slice(&[0, 3]);
    rarp[32..38].copy_from_slice(&HOST_A.0);
    let (out, _) = run(&mut p, A, &rarp, 0);
    assert!(
        matches!(out.verdict, Verdict::Flood { .. }),
        "{:?}",
        out.verdict
    );
    assert_eq!(p.tables.fdb.get(&(v(10), HOST_A)).map(|f| f.port), Some(A));
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, HalEvent::DynamicEidSeen { .. })),
        "{ev:?}"
    );
}

#[test]
fn a_host_back_from_away_is_reported_at_once_not_at_the_refresh_pace() {
    let mut p = switch();
    roamer_1_across_subnets(&mut p);
    let from_moved = udp(HOST_A, ROUTER_MAC, [172, 16, 1, 10], [10, 20, 0, 6], 64);
    run(&mut p, A, &from_moved, 0);
    // It moved away (the control plane says so), then comes back two seconds later.
    add(
        &mut p,
        TableEntry::AwayEntry {
            iid: Iid::default(),
            eid: "172.16.1.10/32".parse().unwrap(),
        },
    );
    run(&mut p, A, &from_moved, 2_000);
    run(&mut p, A, &from_moved, 2_050);
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert_eq!(ev.len(), 2, "{ev:?}");
}
