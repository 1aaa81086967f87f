//! Packets of the switch's own routed through the pipeline (`Pipeline::originate`).

use super::*;

/// Runs a packet of the switch's own through [`Pipeline::originate`].
fn originate(p: &mut Pipeline, frame: &[u8], now: u64) -> (Outcome, Vec<u8>) {
    let mut b = Buf::new(frame);
    let len = b.1;
    let mut f = Frame {
        buf: &mut b.0,
        start: HEADROOM,
        len,
        large: false,
        gso_tcp: false,
        partial_csum: None,
    };
    let out = p.originate(&mut f, now);
    let bytes = f.bytes().to_vec();
    (out, bytes)
}

/// A LISP control datagram as the control plane hands it over: MAC addresses zero, checksums
/// zero (the pipeline computes them), TTL 64.
fn own_udp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut f = udp(Mac([0; 6]), Mac([0; 6]), src, dst, 64);
    let ip = &mut f[14..];
    ip[10..12].fill(0);
    ip[20..22].copy_from_slice(&4342u16.to_be_bytes());
    ip[22..24].copy_from_slice(&4342u16.to_be_bytes());
    ip[26..28].fill(0);
    f
}

/// Checks the originated frame's addresses and checksums; returns its TTL.
fn check_own_udp(bytes: &[u8], dst_mac: Mac, src: [u8; 4], dst: [u8; 4]) -> u8 {
    let parsed = SlicedPacket::from_ethernet(bytes).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = parsed.link else {
        panic!("not Ethernet II")
    };
    assert_eq!(eth.destination(), dst_mac.0, "to the neighbour's MAC");
    assert_eq!(eth.source(), ROUTER_MAC.0, "from the interface's MAC");
    let Some(etherparse::NetSlice::Ipv4(ipv4)) = parsed.net else {
        panic!("not IPv4")
    };
    let header = ipv4.header().to_header();
    assert_eq!(header.source, src);
    assert_eq!(header.destination, dst);
    assert_eq!(
        header.header_checksum,
        header.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let Some(etherparse::TransportSlice::Udp(udp)) = parsed.transport else {
        panic!("not UDP")
    };
    assert_eq!(udp.source_port(), 4342);
    assert_eq!(udp.destination_port(), 4342);
    assert_ne!(udp.checksum(), 0, "a UDP checksum is always sent");
    assert_eq!(
        udp.checksum(),
        udp.to_header()
            .calc_checksum_ipv4(&header, udp.payload())
            .unwrap(),
        "UDP checksum over the pseudo-header"
    );
    header.time_to_live
}

#[test]
fn originated_udp_takes_the_egress_address_and_is_routed_without_ttl_decrement() {
    let mut p = switch();
    let (out, bytes) = originate(&mut p, &own_udp([0; 4], [192, 0, 2, 2]), 0);
    assert_eq!(
        out,
        Outcome {
            verdict: Verdict::Forward {
                port: UPLINK,
                tag: None
            },
            reply: None
        }
    );
    let ttl = check_own_udp(&bytes, PEER_RLOC_MAC, [192, 0, 2, 1], [192, 0, 2, 2]);
    assert_eq!(ttl, 64, "TTL unchanged");
    // A source the control plane chose is kept; the checksums still come out right.
    let (out, bytes) = originate(&mut p, &own_udp([10, 10, 0, 1], [192, 0, 2, 2]), 1);
    assert!(matches!(out.verdict, Verdict::Forward { port: UPLINK, .. }));
    check_own_udp(&bytes, PEER_RLOC_MAC, [10, 10, 0, 1], [192, 0, 2, 2]);
    assert_eq!(p.counters.originated, 2);
    assert_eq!(p.counters.routed, 2);
    assert_eq!(p.counters.rx, 0, "nothing was received");
}

#[test]
fn originated_ipv6_udp_takes_the_egress_address_and_gets_its_mandatory_checksum() {
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
    // As the control plane hands it over: MACs, source address and checksum zero.
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 12, 17, 64]);
    frame.extend_from_slice(&[0u8; 16]);
    frame.extend_from_slice(
        &"2001:db8:ff::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    frame.extend_from_slice(&[0x10, 0xf6, 0x10, 0xf6, 0, 12, 0, 0, 0x10, 1, 2, 3]);
    let (out, bytes) = originate(&mut p, &frame, 0);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    let parsed = SlicedPacket::from_ethernet(&bytes).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ipv6)) = parsed.net else {
        panic!("not IPv6")
    };
    let header = ipv6.header().to_header();
    assert_eq!(
        IpAddr::from(header.source),
        ip("2001:db8:ff::1"),
        "our egress address"
    );
    assert_eq!(header.hop_limit, 64, "hop limit unchanged");
    assert_eq!(&bytes[..6], &PEER_RLOC_MAC.0);
    let Some(etherparse::TransportSlice::Udp(udp)) = parsed.transport else {
        panic!("not UDP")
    };
    assert_ne!(udp.checksum(), 0, "mandatory over IPv6");
    assert_eq!(
        udp.checksum(),
        udp.to_header()
            .calc_checksum_ipv6(&header, udp.payload())
            .unwrap(),
        "UDP checksum over the IPv6 pseudo-header"
    );
    assert_eq!(udp.payload(), &[0x10, 1, 2, 3]);
    // Nowhere to go: no route, or one of our own addresses.
    let mut to_self = frame.clone();
    to_self[14 + 24..14 + 40].copy_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]);
    assert_eq!(
        originate(&mut p, &to_self, 1).0.verdict,
        Verdict::Drop(DropReason::NoRoute)
    );
    let mut unrouted = frame;
    unrouted[14 + 24] = 0x30;
    assert_eq!(
        originate(&mut p, &unrouted, 2).0.verdict,
        Verdict::Drop(DropReason::NoRoute)
    );
}

#[test]
fn originated_udp_to_an_unresolved_neighbour_is_gleaned_then_sent() {
    let mut p = switch();
    let frame = own_udp([0; 4], [192, 0, 2, 3]);
    let (out, _) = originate(&mut p, &frame, 0);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::Glean));
    assert_eq!(
        out.reply,
        Some(ReplyTo::Port {
            port: UPLINK,
            tag: None
        })
    );
    let r = p.reply();
    assert_eq!(&r[..6], &[0xff; 6]);
    assert_eq!(&r[6..12], &ROUTER_MAC.0);
    assert_eq!(&r[20..22], &[0, 1], "ARP request");
    assert_eq!(&r[28..32], &[192, 0, 2, 1], "from our uplink address");
    assert_eq!(&r[38..42], &[192, 0, 2, 3]);
    assert_eq!(p.counters.drops.get("glean"), Some(&1));
    assert_eq!(p.counters.replies, 1);
    // The neighbour makes itself known; the next attempt leaves.
    const PEER2: Mac = Mac([0x02, 0, 0, 0, 0, 0x98]);
    run(
        &mut p,
        UPLINK,
        &arp_request(PEER2, [192, 0, 2, 3], [192, 0, 2, 1]),
        5,
    );
    let (out, bytes) = originate(&mut p, &frame, 10);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    check_own_udp(&bytes, PEER2, [192, 0, 2, 1], [192, 0, 2, 3]);
}

#[test]
fn originated_udp_behind_an_svi_is_tagged_forwarded_or_flooded_like_transit() {
    let mut p = switch();
    // Unresolved: gleaned in the VLAN.
    let frame = own_udp([0; 4], [10, 20, 0, 6]);
    let (out, _) = originate(&mut p, &frame, 0);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::Glean));
    assert_eq!(out.reply, Some(ReplyTo::Vlan(v(20))));
    assert_eq!(&p.reply()[28..32], &[10, 20, 0, 1], "from the SVI address");
    // Resolved on the access port: untagged there.
    run(
        &mut p,
        B,
        &arp_request(HOST_B, [10, 20, 0, 6], [10, 20, 0, 1]),
        1,
    );
    let (out, bytes) = originate(&mut p, &frame, 2);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    check_own_udp(&bytes, HOST_B, [10, 20, 0, 1], [10, 20, 0, 6]);
    // Resolved behind the trunk: tagged.
    let mut tagged = arp_request(HOST_A, [10, 10, 0, 7], [10, 10, 0, 1]);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    run(&mut p, TRUNK, &tagged, 3);
    let (out, bytes) = originate(&mut p, &own_udp([0; 4], [10, 10, 0, 7]), 4);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: TRUNK,
            tag: Some(v(10))
        }
    );
    check_own_udp(&bytes, HOST_A, [10, 10, 0, 1], [10, 10, 0, 7]);
    // A neighbour whose MAC the VLAN has not learned: flooded, as transit is.
    const QUIET: Mac = Mac([0x02, 0, 0, 0, 0, 0x0c]);
    add(
        &mut p,
        TableEntry::Neighbor {
            iface: L3Interface::Vlan(v(20)),
            ip: ip("10.20.0.9"),
            mac: QUIET,
        },
    );
    let (out, bytes) = originate(&mut p, &own_udp([0; 4], [10, 20, 0, 9]), 5);
    assert_eq!(
        out.verdict,
        Verdict::Flood {
            vlan: v(20),
            except: PortId(u32::MAX)
        }
    );
    check_own_udp(&bytes, QUIET, [10, 20, 0, 1], [10, 20, 0, 9]);
}

#[test]
fn originated_packets_without_a_usable_route_are_dropped() {
    let mut p = switch();
    itr(&mut p);
    add(
        &mut p,
        TableEntry::Route {
            prefix: "198.51.100.0/24".parse().unwrap(),
            next_hop: NextHop::Discard,
        },
    );
    let cases: [([u8; 4], DropReason); 7] = [
        ([203, 0, 113, 1], DropReason::NoRoute),
        // Control packets are never LISP-encapsulated by the data path.
        ([172, 16, 1, 9], DropReason::NoRoute),
        ([198, 51, 100, 1], DropReason::Discard),
        ([224, 0, 0, 1], DropReason::NoRoute),
        ([239, 1, 1, 1], DropReason::NoRoute),
        ([255, 255, 255, 255], DropReason::NoRoute),
        ([192, 0, 2, 1], DropReason::NoRoute),
    ];
    for (dst, reason) in cases {
        let (out, _) = originate(&mut p, &own_udp([0; 4], dst), 0);
        assert_eq!(
            out,
            Outcome {
                verdict: Verdict::Drop(reason),
                reply: None
            },
            "to {dst:?}"
        );
    }
    let mut ev = Vec::new();
    p.drain_events(&mut ev);
    assert!(
        ev.is_empty(),
        "no map-cache miss for a control packet: {ev:?}"
    );
    assert_eq!(p.counters.originated, 7);
    assert_eq!(p.counters.drops.get("no-route"), Some(&6));
    assert_eq!(p.counters.drops.get("discard-route"), Some(&1));
}

#[test]
fn originated_frames_must_hold_a_whole_unfragmented_ipv4_packet() {
    let mut p = switch();
    let good = own_udp([0; 4], [192, 0, 2, 2]);
    let mut arp = arp_request(HOST_A, [10, 10, 0, 5], [10, 10, 0, 1]);
    arp[..12].fill(0);
    let mut short = good.clone();
    short.truncate(14 + 19);
    let mut fragment = good.clone();
    fragment[14 + 6] = 0x20; // more fragments
    let mut udp_too_long = good.clone();
    udp_too_long[14 + 24..14 + 26].copy_from_slice(&200u16.to_be_bytes());
    for (name, frame) in [
        ("ARP", arp),
        ("short", short),
        ("fragment", fragment),
        ("UDP length", udp_too_long),
    ] {
        let (out, _) = originate(&mut p, &frame, 0);
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::BadIpHeader),
            "{name}"
        );
    }
    assert_eq!(p.counters.routed, 0);
}
