//! IPv6: neighbour discovery, moved hosts, routing between SVIs, echo and hop-limit expiry.

use super::*;

fn icmpv6_checksum_ok(frame: &[u8]) -> bool {
    let parsed = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ipv6)) = parsed.net else {
        return false;
    };
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = parsed.transport else {
        return false;
    };
    let h = ipv6.header();
    icmp.icmp_type()
        .calc_checksum(h.source(), h.destination(), icmp.payload())
        .ok()
        == Some(icmp.checksum())
}

#[test]
fn neighbour_solicitation_for_our_address_is_advertised() {
    let mut p = switch6();
    let (out, _) = run(&mut p, A, &ns(HOST_A, HOST_A6, SVI10_6), 0);
    assert_eq!(
        out.verdict,
        Verdict::Flood {
            vlan: v(10),
            except: A
        }
    );
    assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
    let r = p.reply().to_vec();
    assert_eq!(&r[..6], &HOST_A.0);
    assert_eq!(r[54], 136, "neighbour advertisement");
    assert_eq!(&r[62..78], &SVI10_6, "target");
    assert_eq!(&r[80..86], &ROUTER_MAC.0, "target link-layer address");
    assert!(icmpv6_checksum_ok(&r));
    assert!(
        p.tables
            .neighbors
            .contains_key(&(L3Interface::Vlan(v(10)), IpAddr::from(HOST_A6)))
    );
}

#[test]
fn an_ipv6_host_moved_across_subnets_keeps_its_old_gateway_and_is_detected_from_nd() {
    let mut p = switch6();
    let svi = L3Interface::Vlan(v(10));
    add(
        &mut p,
        TableEntry::DynamicEidRange {
            iface: svi,
            map: "roam".into(),
            eid: "2001:db8:99::/64".parse().unwrap(),
            extended_subnet: false,
            notify_group: None,
        },
    );
    let moved: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
    ];
    let old_gw: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    let asks_old_gateway = ns(HOST_A, moved, old_gw);
    assert_eq!(
        run(&mut p, A, &asks_old_gateway, 0).0.reply,
        None,
        "without ip proxy-arp"
    );
    add(&mut p, TableEntry::ProxyArp { iface: svi });
    let (out, _) = run(&mut p, A, &asks_old_gateway, 1);
    assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
    let r = p.reply().to_vec();
    assert_eq!(r[54], 136, "neighbour advertisement");
    assert_eq!(&r[62..78], &old_gw, "for the old gateway");
    assert_eq!(&r[80..86], &ROUTER_MAC.0);
    assert!(icmpv6_checksum_ok(&r));
    assert!(
        p.tables.neighbors.contains_key(&(svi, IpAddr::from(moved))),
        "the moved host is a neighbour from its first solicitation on"
    );
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert!(
        ev.iter().any(
            |e| matches!(e, HalEvent::DynamicEidSeen { eid, .. } if *eid == IpAddr::from(moved))
        ),
        "{ev:?}"
    );
    // The interface's own subnet's addresses are not proxied (their owners answer).
    let on_subnet: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    let (out, _) = run(&mut p, A, &ns(HOST_A, moved, on_subnet), 2);
    assert_eq!(out.reply, None);
    // An unsolicited advertisement of another moved host detects it too.
    let other: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8,
    ];
    let mut na = ns(HOST_B, other, other);
    na[54] = 136;
    na[78] = 2; // target link-layer address option
    let (_, _) = run(&mut p, A, &na, 3);
    p.drain_events(&mut ev);
    assert!(
        ev.iter().any(
            |e| matches!(e, HalEvent::DynamicEidSeen { eid, .. } if *eid == IpAddr::from(other))
        ),
        "{ev:?}"
    );
}

#[test]
fn ipv6_routes_between_svis_with_hop_limit_and_gleans_with_ns() {
    let mut p = switch6();
    run(&mut p, A, &ns(HOST_A, HOST_A6, SVI10_6), 0);
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv6(HOST_A6, HOST_B6, 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    b.write(&mut frame, &[1, 2, 3, 4]).unwrap();
    // B unknown yet: a neighbour solicitation goes to its solicited-node group in VLAN 20.
    let (out, _) = run(&mut p, A, &frame, 1);
    assert_eq!(
        (out.verdict, out.reply),
        (Verdict::Held, Some(ReplyTo::Vlan(v(20))))
    );
    let r = p.reply().to_vec();
    assert_eq!(&r[..6], &[0x33, 0x33, 0xff, 0, 0, 6]);
    assert_eq!(r[54], 135);
    assert!(icmpv6_checksum_ok(&r));
    // B answers the solicitation of the router (it solicits the router back, which teaches us).
    let sv20 = [0x20, 0x01, 0x0d, 0xb8, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    run(&mut p, B, &ns(HOST_B, HOST_B6, sv20), 2);
    let (out, bytes) = run(&mut p, A, &frame, 3);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    assert_eq!(&bytes[..6], &HOST_B.0);
    assert_eq!(bytes[14 + 7], 63, "hop limit decremented");
}

#[test]
fn ipv6_echo_and_hop_limit_expiry() {
    let mut p = switch6();
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv6(HOST_A6, SVI10_6, 64)
        .icmpv6_echo_request(9, 1);
    let mut ping = Vec::new();
    b.write(&mut ping, &[7; 16]).unwrap();
    let (out, bytes) = run(&mut p, A, &ping, 0);
    assert_eq!(out.verdict, Verdict::Forward { port: A, tag: None });
    assert_eq!(bytes[54], 129, "echo reply");
    assert!(icmpv6_checksum_ok(&bytes));
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv6(HOST_A6, HOST_B6, 1)
        .udp(1, 2);
    let mut dying = Vec::new();
    b.write(&mut dying, &[0; 8]).unwrap();
    let (out, _) = run(&mut p, A, &dying, 1);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TtlExpired));
    let r = p.reply().to_vec();
    assert_eq!(r[54], 3, "time exceeded");
    assert!(icmpv6_checksum_ok(&r));
}
