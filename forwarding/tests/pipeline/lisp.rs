//! LISP: the ITR encapsulating, the ETR decapsulating and soliciting, over IPv4 and IPv6
//! underlays, replies to remote sites, hosts moved away, and trace.

use super::*;

#[test]
fn itr_encapsulates_towards_the_map_cache_locator() {
    let mut p = switch();
    itr(&mut p);
    let (out, bytes) = run(
        &mut p,
        A,
        &udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9], 64),
        0,
    );
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!(&bytes[..6], &PEER_RLOC_MAC.0);
    let d = decapsulate(&bytes[14..]).expect("a LISP data packet");
    assert_eq!(d.outer.src, ip("192.0.2.1"));
    assert_eq!(d.outer.dst, ip("192.0.2.2"));
    let inner = d.inner(&bytes[14..]);
    assert_eq!(&inner[16..20], &[172, 16, 1, 9]);
    assert_eq!(inner[8], 63, "inner TTL decremented once");
    assert_eq!(p.counters.encapsulated, 1);
}

#[test]
fn map_cache_miss_is_reported_once_per_interval() {
    let mut p = switch();
    itr(&mut p);
    let frame = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 9, 9], 64);
    for now in [0, 10, 500] {
        assert_eq!(
            run(&mut p, A, &frame, now).0.verdict,
            Verdict::Held,
            "held for the Map-Reply"
        );
    }
    run(&mut p, A, &frame, 1500);
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert_eq!(
        ev,
        vec![
            HalEvent::MapCacheMiss {
                iid: Iid::default(),
                dest: ip("172.16.9.9"),
                source: ip("10.10.0.5"),
            };
            2
        ]
    );
}

#[test]
fn etr_delivers_local_eids_and_raises_smr_and_no_route_events() {
    let mut p = etr_switch();
    // Local and routed: delivered natively to host B.
    let (out, bytes) = run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 1);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    assert_eq!(&bytes[..6], &HOST_B.0);
    assert_eq!(&bytes[14 + 16..14 + 20], &[10, 20, 0, 6]);
    assert_eq!(p.counters.decapsulated, 1);
    // Not a local EID at all: the SMR trigger, with the encapsulating RLOC.
    assert_eq!(
        run(&mut p, UPLINK, &encapsulated([172, 16, 1, 1]), 2)
            .0
            .verdict,
        Verdict::Drop(DropReason::EidNotHere)
    );
    // Inside the local database but with no route (the seed 002 case).
    assert_eq!(
        run(&mut p, UPLINK, &encapsulated([10, 20, 99, 7]), 3)
            .0
            .verdict,
        Verdict::Drop(DropReason::LocalEidNoRoute)
    );
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert_eq!(
        ev,
        vec![
            HalEvent::EidNotHere {
                iid: Iid::default(),
                eid: ip("172.16.1.1"),
                source_rloc: ip("192.0.2.2"),
                inner_source: ip("172.16.5.5")
            },
            HalEvent::NoRoute {
                iid: Iid::default(),
                eid: ip("10.20.99.7"),
                source_rloc: ip("192.0.2.2"),
                inner_source: ip("172.16.5.5")
            },
        ]
    );
}

/// Extended subnet: once a host's MAC is behind the LAN extension (the hello-filter port), it
/// lives at the other data centre; a packet for it is still delivered (over the extension) and
/// the encapsulating ITR is solicited to ask the mapping system again.
#[test]
fn etr_solicits_the_sender_for_a_host_now_across_the_lan_extension() {
    let mut p = etr_switch();
    let (out, _) = run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 1);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert_eq!(ev, vec![], "at home: no SMR");
    // Host B's port is now the LAN extension (as after the host moved to the other side).
    add(&mut p, TableEntry::HelloFilter { port: B });
    let (out, _) = run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 2);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 3);
    p.drain_events(&mut ev);
    assert_eq!(
        ev,
        vec![HalEvent::EidNotHere {
            iid: Iid::default(),
            eid: ip("10.20.0.6"),
            source_rloc: ip("192.0.2.2"),
            inner_source: ip("172.16.5.5")
        }],
        "one SMR trigger per interval"
    );
}

#[test]
fn trace_explains_and_learns_nothing() {
    let mut p = switch();
    itr(&mut p);
    let frame = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9], 64);
    let (out, steps) = p.trace(A, None, &frame, 0);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    let text = steps.join("\n");
    assert!(text.contains("route 172.16.0.0/16 -> Lisp"), "{text}");
    assert!(
        text.contains("LISP encapsulate to RLOC 192.0.2.2"),
        "{text}"
    );
    assert!(p.tables.fdb.is_empty(), "trace must not learn");
    assert_eq!(p.counters.rx, 0);
    let _ = Prefix::host(IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn etr_delivers_ipv6_eids() {
    use roamer_forwarding::wire::lisp_data::{EncapParams, LispDataRepr, encapsulate_in_place};
    let mut p = switch6();
    let sv20 = [0x20, 0x01, 0x0d, 0xb8, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    run(&mut p, B, &ns(HOST_B, HOST_B6, sv20), 0);
    local_database(&mut p, "2001:db8:14::/48");
    let remote = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    let mut inner = Vec::new();
    PacketBuilder::ipv6(remote, HOST_B6, 64)
        .udp(1, 2)
        .write(&mut inner, &[5; 8])
        .unwrap();
    let mut buf = vec![0u8; 128 + inner.len()];
    buf[128..].copy_from_slice(&inner);
    let params = EncapParams::new(
        ip("192.0.2.2"),
        ip("192.0.2.1"),
        50_000,
        LispDataRepr::default(),
    );
    let outer = encapsulate_in_place(&mut buf, 128, inner.len(), &params).unwrap();
    let mut frame = ROUTER_MAC.0.to_vec();
    frame.extend_from_slice(&PEER_RLOC_MAC.0);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&buf[outer..]);
    let (out, bytes) = run(&mut p, UPLINK, &frame, 1);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    assert_eq!(&bytes[..6], &HOST_B.0);
    assert_eq!(
        &bytes[12..14],
        &[0x86, 0xdd],
        "an IPv6 frame towards host B"
    );
    assert_eq!(&bytes[14 + 24..14 + 40], &HOST_B6);
}

#[test]
fn itr_encapsulates_over_an_ipv6_underlay() {
    let mut p = switch();
    let up = L3Interface::Port(UPLINK);
    add(
        &mut p,
        TableEntry::InterfaceAddress {
            iface: up,
            addr: ip("2001:db8:ff::1"),
            prefix_len: 64,
            virtual_mac: None,
        },
    );
    add(
        &mut p,
        TableEntry::Neighbor {
            iface: up,
            ip: ip("2001:db8:ff::2"),
            mac: PEER_RLOC_MAC,
        },
    );
    add(
        &mut p,
        TableEntry::Route {
            prefix: "172.16.0.0/16".parse().unwrap(),
            next_hop: NextHop::Lisp,
        },
    );
    add(
        &mut p,
        TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: "172.16.1.0/24".parse().unwrap(),
            locators: vec![Locator {
                rloc: ip("2001:db8:ff::2"),
                priority: 1,
                weight: 100,
            }],
            negative: NegativeAction::NoAction,
        },
    );
    let (out, bytes) = run(
        &mut p,
        A,
        &udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9], 64),
        0,
    );
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!(&bytes[12..14], &[0x86, 0xdd]);
    let d = decapsulate(&bytes[14..]).expect("LISP over IPv6");
    assert_eq!(d.outer.src, ip("2001:db8:ff::1"));
    assert_eq!(d.outer.dst, ip("2001:db8:ff::2"));
    assert_eq!(&d.inner(&bytes[14..])[16..20], &[172, 16, 1, 9]);
}

/// A host at another LISP site pings the xTR's SVI address (inside the xTR's own EID prefix
/// 10.20.0.0/16): the decapsulated request is answered and the reply goes back through LISP.
#[test]
fn a_remote_site_pinging_an_svi_address_gets_an_encapsulated_reply() {
    let mut p = etr_switch();
    itr(&mut p);
    let request = encapsulated_by_peer(&ping_v4(
        HOST_A,
        ROUTER_MAC,
        [172, 16, 1, 9],
        [10, 20, 0, 1],
    ));
    let (out, bytes) = run(&mut p, UPLINK, &request, 1);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!(&bytes[..6], &PEER_RLOC_MAC.0);
    let d = decapsulate(&bytes[14..]).expect("the reply is a LISP data packet");
    assert_eq!(
        (d.outer.src, d.outer.dst),
        (ip("192.0.2.1"), ip("192.0.2.2"))
    );
    let inner = d.inner(&bytes[14..]).to_vec();
    let parsed = SlicedPacket::from_ip(&inner).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ipv4)) = parsed.net else {
        panic!("inner IPv4")
    };
    assert_eq!(ipv4.header().source(), [10, 20, 0, 1]);
    assert_eq!(ipv4.header().destination(), [172, 16, 1, 9]);
    let h = ipv4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = parsed.transport else {
        panic!("inner ICMP")
    };
    assert_eq!(icmp.type_u8(), 0, "an echo reply");
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
    assert_eq!((p.counters.decapsulated, p.counters.encapsulated), (1, 1));
    // Anything else for our own address goes to the control plane.
    let other = encapsulated_by_peer(&udp(
        HOST_A,
        ROUTER_MAC,
        [172, 16, 1, 9],
        [10, 20, 0, 1],
        64,
    ));
    assert_eq!(
        run(&mut p, UPLINK, &other, 2).0.verdict,
        Verdict::Punt(roamer_hal::PuntReason::ForUs)
    );
}

/// The same over IPv6 EIDs: a remote host pings the SVI's IPv6 address across LISP.
#[test]
fn a_remote_site_pinging_an_ipv6_svi_address_gets_an_encapsulated_reply() {
    use roamer_forwarding::wire::lisp_data::{EncapParams, LispDataRepr, encapsulate_in_place};
    let mut p = switch6();
    let sv20 = [0x20, 0x01, 0x0d, 0xb8, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let remote = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    for e in [
        TableEntry::LispDatabase {
            iid: Iid::default(),
            eid: "2001:db8:14::/48".parse().unwrap(),
            locators: vec![],
        },
        TableEntry::Route {
            prefix: "2001:db8:99::/48".parse().unwrap(),
            next_hop: NextHop::Lisp,
        },
        TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: "2001:db8:99::/48".parse().unwrap(),
            locators: vec![Locator {
                rloc: ip("192.0.2.2"),
                priority: 1,
                weight: 100,
            }],
            negative: NegativeAction::NoAction,
        },
    ] {
        add(&mut p, e);
    }
    let mut inner = Vec::new();
    PacketBuilder::ipv6(remote, sv20, 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut inner, &[5; 16])
        .unwrap();
    let mut buf = vec![0u8; 128 + inner.len()];
    buf[128..].copy_from_slice(&inner);
    let params = EncapParams::new(
        ip("192.0.2.2"),
        ip("192.0.2.1"),
        50_000,
        LispDataRepr::default(),
    );
    let outer = encapsulate_in_place(&mut buf, 128, inner.len(), &params).unwrap();
    let mut frame = ROUTER_MAC.0.to_vec();
    frame.extend_from_slice(&PEER_RLOC_MAC.0);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&buf[outer..]);
    let (out, bytes) = run(&mut p, UPLINK, &frame, 1);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    let d = decapsulate(&bytes[14..]).expect("the reply is a LISP data packet");
    assert_eq!(d.outer.dst, ip("192.0.2.2"));
    let reply = d.inner(&bytes[14..]).to_vec();
    let parsed = SlicedPacket::from_ip(&reply).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ipv6)) = &parsed.net else {
        panic!("inner IPv6")
    };
    assert_eq!(ipv6.header().source(), sv20);
    assert_eq!(ipv6.header().destination(), remote);
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &parsed.transport else {
        panic!("inner ICMPv6")
    };
    assert_eq!(icmp.type_u8(), 129, "an echo reply");
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type()
            .calc_checksum(sv20, remote, icmp.payload())
            .unwrap()
    );
}

/// A host that moved away from this ETR (away table) whose new locators the map-server told
/// us (map-cache): a packet for it that still arrives here is encapsulated again towards them,
/// with the inner TTL decremented, while the sender is solicited; without them, or when they
/// would lead back to us, it is dropped as before.
#[test]
fn a_packet_for_a_host_that_moved_away_is_sent_on_to_its_new_locators() {
    let mut p = etr_switch();
    let host: Prefix = "10.20.0.6/32".parse().unwrap();
    add(
        &mut p,
        TableEntry::AwayEntry {
            iid: Iid::default(),
            eid: host,
        },
    );
    let (out, _) = run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 1);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::EidNotHere));
    let cache = |rloc: &str| TableEntry::LispMapCache {
        iid: Iid::default(),
        eid: host,
        locators: vec![Locator {
            rloc: ip(rloc),
            priority: 1,
            weight: 100,
        }],
        negative: NegativeAction::NoAction,
    };
    add(&mut p, cache("192.0.2.2"));
    let (out, bytes) = run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 2);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!(
        &bytes[..6],
        &PEER_RLOC_MAC.0,
        "to the new locator's next hop"
    );
    let outer = &bytes[14..34];
    assert_eq!(&outer[12..16], &[192, 0, 2, 1], "from our RLOC");
    assert_eq!(&outer[16..20], &[192, 0, 2, 2], "to the new locator");
    // Outer IPv4 (20) + UDP (8) + LISP (8): the inner packet, TTL one lower than it arrived.
    let inner = &bytes[14 + 36..];
    assert_eq!(&inner[16..20], &[10, 20, 0, 6]);
    assert_eq!(inner[8], 62, "the peer ITR took one, the relay another");
    assert_eq!(p.counters.relayed_away, 1);
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert!(
        ev.iter()
            .any(|e| matches!(e, HalEvent::EidNotHere { eid, .. } if *eid == ip("10.20.0.6"))),
        "the sender is still solicited: {ev:?}"
    );
    // New locators that are our own: no loop, dropped.
    p.tables
        .apply(&TableOp::update(cache("192.0.2.1")))
        .unwrap();
    let (out, _) = run(&mut p, UPLINK, &encapsulated([10, 20, 0, 6]), 5_000);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::EidNotHere));
    assert_eq!(p.counters.relayed_away, 1);
}
