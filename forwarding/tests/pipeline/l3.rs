//! IPv4 routing between SVIs: rewrites, gleaning, TTL expiry, echo replies, warmed bursts,
//! bad header checksums.

use super::*;

#[test]
fn routing_between_svis_rewrites_macs_and_decrements_ttl() {
    let mut p = switch();
    // Both hosts resolve their gateway, which teaches the switch their MACs and addresses.
    run(
        &mut p,
        A,
        &arp_request(HOST_A, [10, 10, 0, 5], [10, 10, 0, 1]),
        0,
    );
    run(
        &mut p,
        B,
        &arp_request(HOST_B, [10, 20, 0, 6], [10, 20, 0, 1]),
        0,
    );
    let (out, bytes) = run(
        &mut p,
        A,
        &udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 20, 0, 6], 64),
        1,
    );
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    let parsed = SlicedPacket::from_ethernet(&bytes).unwrap();
    let eth = parsed.link.unwrap();
    let etherparse::LinkSlice::Ethernet2(eth) = eth else {
        panic!()
    };
    assert_eq!(eth.destination(), HOST_B.0);
    assert_eq!(eth.source(), ROUTER_MAC.0);
    let Some(etherparse::NetSlice::Ipv4(ipv4)) = parsed.net else {
        panic!()
    };
    assert_eq!(ipv4.header().ttl(), 63);
    let header = ipv4.header().to_header();
    assert_eq!(
        header.header_checksum,
        header.calc_header_checksum(),
        "incremental checksum"
    );
    assert_eq!(p.counters.routed, 1);
}

#[test]
fn unresolved_next_hop_is_gleaned_with_an_arp_request() {
    let mut p = switch();
    let frame = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 20, 0, 6], 64);
    let (out, _) = run(&mut p, A, &frame, 1);
    assert_eq!(
        out.verdict,
        Verdict::Held,
        "held until the neighbour answers"
    );
    assert_eq!(out.reply, Some(ReplyTo::Vlan(v(20))));
    let r = p.reply();
    assert_eq!(&r[..6], &[0xff; 6]);
    assert_eq!(&r[20..22], &[0, 1], "ARP request");
    assert_eq!(&r[28..32], &[10, 20, 0, 1], "from our SVI address");
    assert_eq!(&r[38..42], &[10, 20, 0, 6]);
    // Asked once per second, not once per packet.
    assert_eq!(run(&mut p, A, &frame, 2).0.reply, None);
    assert!(run(&mut p, A, &frame, 1500).0.reply.is_some());
}

#[test]
fn ttl_one_gets_icmp_time_exceeded() {
    let mut p = switch();
    let frame = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 20, 0, 6], 1);
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TtlExpired));
    assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
    let reply = p.reply().to_vec();
    let parsed = SlicedPacket::from_ethernet(&reply).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ipv4)) = parsed.net else {
        panic!()
    };
    assert_eq!(ipv4.header().source(), [10, 10, 0, 1]);
    assert_eq!(ipv4.header().destination(), [10, 10, 0, 5]);
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = parsed.transport else {
        panic!("no ICMP")
    };
    assert_eq!(icmp.type_u8(), 11);
    let h = ipv4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let icmp_bytes = &reply[34..14 + usize::from(h.total_len)];
    let mut sum: u32 = 0;
    for c in icmp_bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    assert_eq!(sum, 0xffff, "ICMP checksum");
}

#[test]
fn echo_requests_to_our_addresses_are_answered_in_place() {
    let mut p = switch();
    let (out, bytes) = run(
        &mut p,
        A,
        &ping_v4(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 10, 0, 1]),
        0,
    );
    assert_eq!(out.verdict, Verdict::Forward { port: A, tag: None });
    let parsed = SlicedPacket::from_ethernet(&bytes).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ipv4)) = parsed.net else {
        panic!()
    };
    assert_eq!(ipv4.header().source(), [10, 10, 0, 1]);
    assert_eq!(ipv4.header().destination(), [10, 10, 0, 5]);
    let h = ipv4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = parsed.transport else {
        panic!()
    };
    assert_eq!(icmp.type_u8(), 0);
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
}

/// Warming reads the tables and nothing else: a warmed burst gets exactly the verdicts,
/// rewrites and counters of the same burst unwarmed, routes found or not. The table holds
/// /24s from 20.0.0.0 up behind the uplink's peer, every fourth one missing, twice as many
/// slots as the size from which tables are warmed.
#[test]
fn a_warmed_burst_is_forwarded_exactly_like_an_unwarmed_one() {
    let slots = 2 * roamer_forwarding::tables::WARM_MIN_ENTRIES as u32;
    let router = || {
        let mut p = switch();
        let next_hop = NextHop::Gateway {
            via: ip("192.0.2.2"),
            iface: Some(L3Interface::Port(UPLINK)),
        };
        for i in (0..slots).filter(|i| i % 4 != 3) {
            let addr = IpAddr::from(((20 << 24) + (i << 8)).to_be_bytes());
            let prefix = Prefix::new(addr, 24).unwrap();
            add(&mut p, TableEntry::Route { prefix, next_hop });
        }
        p
    };
    let (mut warmed, mut cold) = (router(), router());
    assert!(warmed.tables.worth_warming());
    let frames: Vec<Vec<u8>> = (0..64u32)
        .map(|k| {
            let dst = (20 << 24) + ((k * 997 % slots) << 8) + 9;
            udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], dst.to_be_bytes(), 64)
        })
        .collect();
    warmed.warm(frames.iter().map(Vec::as_slice));
    let mut outcomes = Vec::new();
    for p in [&mut warmed, &mut cold] {
        let seen: Vec<(Verdict, Vec<u8>)> = frames
            .iter()
            .map(|f| {
                let (out, bytes) = run(p, A, f, 0);
                (out.verdict, bytes)
            })
            .collect();
        outcomes.push(seen);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(warmed.counters.routed, cold.counters.routed);
    let routed = outcomes[0]
        .iter()
        .filter(|(v, _)| matches!(v, Verdict::Forward { .. }))
        .count();
    assert!((40..64).contains(&routed), "{routed} of 64 routed");
}

/// `frame` with its IPv4 header checksum (Ethernet + IPv4 at 14) made wrong.
fn bad_header_checksum(mut frame: Vec<u8>) -> Vec<u8> {
    frame[24] ^= 0x5a;
    frame
}

#[test]
fn ipv4_packets_with_a_bad_header_checksum_are_dropped_and_counted() {
    let mut p = etr_switch();
    itr(&mut p);
    let routed = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 20, 0, 6], 64);
    let to_encapsulate = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9], 64);
    let ping = ping_v4(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 10, 0, 1]);
    // The good ones go their way.
    for (frame, to) in [(&routed, B), (&to_encapsulate, UPLINK), (&ping, A)] {
        let (out, _) = run(&mut p, A, frame, 1);
        assert_eq!(
            out.verdict,
            Verdict::Forward {
                port: to,
                tag: None
            }
        );
    }
    assert_eq!((p.counters.routed, p.counters.encapsulated), (2, 1));
    // The same with a bad header checksum: routed, encapsulated, answered, none of them.
    for frame in [&routed, &to_encapsulate, &ping] {
        let (out, _) = run(&mut p, A, &bad_header_checksum(frame.clone()), 2);
        assert_eq!(out.verdict, Verdict::Drop(DropReason::BadIpChecksum));
        assert_eq!(out.reply, None);
    }
    // A LISP packet with a bad outer header, and one whose inner header is bad.
    let lisp = encapsulated([10, 20, 0, 6]);
    assert_eq!(
        run(&mut p, UPLINK, &lisp, 3).0.verdict,
        Verdict::Forward { port: B, tag: None }
    );
    // The inner header starts after Ethernet, outer IPv4, UDP and LISP (14 + 20 + 8 + 8).
    let mut inner_bad = lisp.clone();
    inner_bad[50 + 10] ^= 0x5a;
    for frame in [bad_header_checksum(lisp), inner_bad] {
        let (out, _) = run(&mut p, UPLINK, &frame, 4);
        assert_eq!(out.verdict, Verdict::Drop(DropReason::BadIpChecksum));
    }
    assert_eq!(
        (
            p.counters.routed,
            p.counters.encapsulated,
            p.counters.decapsulated
        ),
        (3, 1, 1)
    );
    assert_eq!(p.counters.drops.get("bad-ip-checksum"), Some(&5));
    assert_eq!(DropReason::BadIpChecksum.name(), "bad-ip-checksum");
}

/// An echo request whose ICMP checksum was left to the offload (vnet-hdr `NEEDS_CSUM`): the
/// reply is built from the completed checksum and leaves with nothing left to the offload.
#[test]
fn an_echo_request_with_a_partial_checksum_gets_a_correct_reply() {
    let mut p = switch();
    let mut frame = ping_v4(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [10, 10, 0, 1]);
    // ICMP has no pseudo-header: its partial checksum field holds zero.
    frame[36..38].fill(0);
    let mut b = Buf::new(&frame);
    let len = b.1;
    let mut f = Frame {
        buf: &mut b.0,
        start: HEADROOM,
        len,
        large: false,
        gso_tcp: false,
        partial_csum: Some((HEADROOM + 34, 2)),
    };
    let out = p.process(A, None, &mut f, 0);
    assert_eq!(out.verdict, Verdict::Forward { port: A, tag: None });
    assert_eq!(
        f.partial_csum, None,
        "completed, nothing left to the offload"
    );
    let bytes = f.bytes().to_vec();
    let parsed = SlicedPacket::from_ethernet(&bytes).unwrap();
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = parsed.transport else {
        panic!()
    };
    assert_eq!(icmp.type_u8(), 0);
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
}
