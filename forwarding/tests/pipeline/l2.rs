//! Bridging, ARP and proxy ARP for the virtual gateway, HSRP hellos, bounded learning.

use super::*;

const VMAC: Mac = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);

#[test]
fn bridging_learns_floods_then_forwards_and_tags_trunks() {
    let mut p = switch();
    let (out, _) = run(
        &mut p,
        A,
        &udp(HOST_A, HOST_B, [10, 10, 0, 5], [10, 10, 0, 6], 64),
        0,
    );
    assert_eq!(
        out.verdict,
        Verdict::Flood {
            vlan: v(10),
            except: A
        }
    );
    // HOST_B answers from the trunk, tagged 10.
    let mut tagged = udp(HOST_B, HOST_A, [10, 10, 0, 6], [10, 10, 0, 5], 64);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    let (out, bytes) = run(&mut p, TRUNK, &tagged, 1);
    assert_eq!(out.verdict, Verdict::Forward { port: A, tag: None });
    assert_eq!(
        &bytes[12..14],
        &[0x08, 0x00],
        "tag stripped for the access port"
    );
    let (out, _) = run(
        &mut p,
        A,
        &udp(HOST_A, HOST_B, [10, 10, 0, 5], [10, 10, 0, 6], 64),
        2,
    );
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: TRUNK,
            tag: Some(v(10))
        }
    );
    // VLAN 30 is not carried by the trunk.
    let mut wrong = udp(HOST_B, HOST_A, [10, 10, 0, 6], [10, 10, 0, 5], 64);
    wrong.splice(12..12, [0x81, 0x00, 0x00, 0x1e]);
    assert_eq!(
        run(&mut p, TRUNK, &wrong, 3).0.verdict,
        Verdict::Drop(DropReason::VlanNotAllowed)
    );
    assert_eq!(p.counters.drops.get("vlan-not-allowed"), Some(&1));
}

#[test]
fn arp_for_our_address_and_for_the_virtual_ip() {
    let mut p = switch();
    let svi = L3Interface::Vlan(v(10));
    add(
        &mut p,
        TableEntry::RouterMac {
            iface: svi,
            mac: VMAC,
            virtual_mac: true,
        },
    );
    add(
        &mut p,
        TableEntry::InterfaceAddress {
            iface: svi,
            addr: ip("10.10.0.254"),
            prefix_len: 32,
            virtual_mac: Some(VMAC),
        },
    );
    for (target, mac) in [([10, 10, 0, 1], ROUTER_MAC), ([10, 10, 0, 254], VMAC)] {
        let (out, _) = run(&mut p, A, &arp_request(HOST_A, [10, 10, 0, 5], target), 0);
        assert_eq!(
            out.verdict,
            Verdict::Flood {
                vlan: v(10),
                except: A
            }
        );
        assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
        let r = p.reply();
        assert_eq!(&r[..6], &HOST_A.0);
        assert_eq!(&r[6..12], &mac.0);
        assert_eq!(&r[20..22], &[0, 2], "ARP reply");
        assert_eq!(&r[22..28], &mac.0);
        assert_eq!(&r[28..32], &target);
    }
    // The requester was learned as a neighbour.
    assert!(p.tables.neighbors.contains_key(&(svi, ip("10.10.0.5"))));
    // Nobody answers for an unknown host on the subnet.
    let (out, _) = run(
        &mut p,
        A,
        &arp_request(HOST_A, [10, 10, 0, 5], [10, 10, 0, 77]),
        0,
    );
    assert_eq!(out.reply, None);
}

#[test]
fn proxy_arp_answers_off_subnet_reachable_addresses_with_the_virtual_mac() {
    let mut p = switch();
    let svi = L3Interface::Vlan(v(10));
    add(
        &mut p,
        TableEntry::RouterMac {
            iface: svi,
            mac: VMAC,
            virtual_mac: true,
        },
    );
    let moved_host_asks = arp_request(HOST_A, [10, 10, 0, 5], [10, 20, 0, 9]);
    assert_eq!(
        run(&mut p, A, &moved_host_asks, 0).0.reply,
        None,
        "without ip proxy-arp"
    );
    add(&mut p, TableEntry::ProxyArp { iface: svi });
    let (out, _) = run(&mut p, A, &moved_host_asks, 1);
    assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
    assert_eq!(
        &p.reply()[22..28],
        &VMAC.0,
        "proxy answers carry the HSRP virtual MAC"
    );
    // A target reachable only back out of the same interface is not proxied.
    let (out, _) = run(
        &mut p,
        A,
        &arp_request(HOST_A, [10, 10, 0, 5], [10, 10, 0, 9]),
        2,
    );
    assert_eq!(out.reply, None);
    // Gratuitous ARP is never answered.
    let (out, _) = run(
        &mut p,
        A,
        &arp_request(HOST_A, [10, 20, 0, 9], [10, 20, 0, 9]),
        3,
    );
    assert_eq!(out.reply, None);
}

#[test]
fn a_host_moved_across_subnets_keeps_its_old_gateway_through_proxy_arp() {
    let mut p = switch();
    let svi = L3Interface::Vlan(v(10));
    add(
        &mut p,
        TableEntry::RouterMac {
            iface: svi,
            mac: VMAC,
            virtual_mac: true,
        },
    );
    add(
        &mut p,
        TableEntry::DynamicEidRange {
            iface: svi,
            map: "Roamer-1".into(),
            eid: "172.16.1.0/24".parse().unwrap(),
            extended_subnet: false,
            notify_group: None,
        },
    );
    // Its old gateway 172.16.1.1 is nowhere in our tables (only the LISP default covers it).
    let asks_old_gateway = arp_request(HOST_A, [172, 16, 1, 10], [172, 16, 1, 1]);
    assert_eq!(
        run(&mut p, A, &asks_old_gateway, 0).0.reply,
        None,
        "without ip proxy-arp"
    );
    add(&mut p, TableEntry::ProxyArp { iface: svi });
    let (out, _) = run(&mut p, A, &asks_old_gateway, 1);
    assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
    assert_eq!(&p.reply()[22..28], &VMAC.0, "the shared HSRP virtual MAC");
    assert!(
        p.tables.neighbors.contains_key(&(svi, ip("172.16.1.10"))),
        "the moved host is a neighbour from its first ARP on"
    );
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert!(
        ev.iter().any(
            |e| matches!(e, HalEvent::DynamicEidSeen { eid, .. } if *eid == ip("172.16.1.10"))
        ),
        "the answered ARP reports the moved host: {ev:?}"
    );
    // The control plane routes the host here: its ARP answers are learned, it is still
    // reported (refresh) and its old gateway still answered.
    add(
        &mut p,
        TableEntry::Route {
            prefix: "172.16.1.10/32".parse().unwrap(),
            next_hop: NextHop::Connected(svi),
        },
    );
    let (out, _) = run(&mut p, A, &asks_old_gateway, 20_000);
    assert!(out.reply.is_some());
    assert!(p.tables.neighbors.contains_key(&(svi, ip("172.16.1.10"))));
    ev.clear();
    p.drain_events(&mut ev);
    assert_eq!(ev.len(), 1, "refreshed: {ev:?}");
    // A host outside every dynamic-EID range gets no such answer.
    let stranger = arp_request(HOST_A, [192, 168, 7, 7], [192, 168, 7, 1]);
    assert_eq!(run(&mut p, A, &stranger, 2).0.reply, None);
}

#[test]
fn the_virtual_ip_is_not_answered_across_the_lan_extension() {
    let mut p = switch();
    let svi = L3Interface::Vlan(v(10));
    add(
        &mut p,
        TableEntry::InterfaceAddress {
            iface: svi,
            addr: ip("10.10.0.254"),
            prefix_len: 24,
            virtual_mac: Some(VMAC),
        },
    );
    // The trunk is the LAN extension to the other data centre.
    add(&mut p, TableEntry::HelloFilter { port: TRUNK });
    let tagged = |f: Vec<u8>| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 10]);
        t.extend_from_slice(&f[12..]);
        t
    };
    let asks_vip = arp_request(HOST_A, [10, 10, 0, 5], [10, 10, 0, 254]);
    assert!(
        run(&mut p, A, &asks_vip, 0).0.reply.is_some(),
        "a local host"
    );
    let (out, _) = run(&mut p, TRUNK, &tagged(asks_vip), 1);
    assert_eq!(
        out.reply, None,
        "a host of the other data centre (FHRP isolation)"
    );
    // Our own (real) address is still ours to answer from anywhere.
    let asks_svi = arp_request(HOST_B, [10, 10, 0, 6], [10, 10, 0, 1]);
    assert!(run(&mut p, TRUNK, &tagged(asks_svi), 2).0.reply.is_some());
}

#[test]
fn hsrp_hellos_are_flooded_and_punted_except_on_hello_filter_ports() {
    let mut p = switch();
    let b = PacketBuilder::ethernet2(HOST_A.0, [0x01, 0x00, 0x5e, 0, 0, 2])
        .ipv4([10, 10, 0, 2], [224, 0, 0, 2], 1)
        .udp(1985, 1985);
    let mut hello = Vec::new();
    b.write(&mut hello, &[0u8; 20]).unwrap();
    assert!(roamer_forwarding::pipeline::is_hsrp_hello(&hello));
    let (out, _) = run(&mut p, A, &hello, 0);
    assert_eq!(
        out.verdict,
        Verdict::FloodAndPunt {
            vlan: v(10),
            except: A,
            reason: roamer_hal::PuntReason::Hsrp
        }
    );
    add(&mut p, TableEntry::HelloFilter { port: A });
    let (out, _) = run(&mut p, A, &hello, 1);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HelloFiltered));
    assert_eq!(p.counters.drops.get("hsrp-hello-filtered"), Some(&1));
}

#[test]
fn learning_is_bounded() {
    let mut tables = Tables::new(roamer_forwarding::tables::Limits {
        fdb: 4,
        neighbors: 4,
    });
    tables
        .apply(&TableOp::add(TableEntry::Vlan { vlan: v(10) }))
        .unwrap();
    tables
        .apply(&TableOp::add(TableEntry::VlanMember {
            vlan: v(10),
            port: A,
            tagged: false,
        }))
        .unwrap();
    let mut p = Pipeline::new(tables, Settings::default());
    for i in 0..100u8 {
        let src = Mac([0x02, 1, 1, 1, 1, i]);
        run(
            &mut p,
            A,
            &udp(src, HOST_B, [10, 10, 0, 5], [10, 10, 0, 6], 64),
            0,
        );
    }
    assert_eq!(p.tables.fdb.len(), 4);
    assert_eq!(p.tables.learn_drops, 96);
}
