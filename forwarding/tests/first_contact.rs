//! First contact (issue 19): packets held on a map-cache miss or an unresolved neighbour and
//! sent on when it resolves, bounded and counted; and the conformance points pinned with them
//! (a random LISP nonce, IPv6 link-local control traffic counted on its own).

#![allow(clippy::unwrap_used)] // fixtures of known-valid values

mod common;

use common::*;
use etherparse::PacketBuilder;
use roamer_forwarding::pipeline::{
    DropReason, Frame, Outcome, Pipeline, ReplyTo, Resumed, Settings, Verdict,
};
use roamer_forwarding::wire::lisp_data::{NonceField, decapsulate};
use roamer_hal::{Iid, Locator, Mac, NegativeAction, NextHop, PortId, TableEntry};

/// VLAN 10 on port A (SVI 10.10.0.1/24), VLAN 20 on port B (SVI 10.20.0.1/24), a routed uplink
/// 192.0.2.1/24 to a peer xTR 192.0.2.2 (resolved), and 172.16.0.0/16 behind LISP with no
/// map-cache entry yet.
fn switch(settings: Settings) -> Pipeline {
    let mut p = test_switch(settings, false);
    add(
        &mut p,
        TableEntry::Route {
            prefix: "172.16.0.0/16".parse().unwrap(),
            next_hop: NextHop::Lisp,
        },
    );
    p
}

fn map_cache_entry(p: &mut Pipeline, eid: &str) {
    add(
        p,
        TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: eid.parse().unwrap(),
            locators: vec![Locator {
                rloc: ip("192.0.2.2"),
                priority: 1,
                weight: 100,
            }],
            negative: NegativeAction::NoAction,
        },
    );
}

fn run(p: &mut Pipeline, port: PortId, frame: &[u8], now: u64) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut f = Frame::new(&mut buf, HEADROOM, frame.len());
    let out = p.process(port, None, &mut f, now);
    let bytes = f.bytes().to_vec();
    (out, bytes)
}

/// A UDP packet whose first payload octet is `id`.
fn udp(src_mac: Mac, src: [u8; 4], dst: [u8; 4], id: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, ROUTER_MAC.0)
        .ipv4(src, dst, 64)
        .udp(5000, 6000);
    let mut out = Vec::new();
    b.write(&mut out, &[id; 32]).unwrap();
    out
}

/// Everything released at `now`: each resumed packet and its bytes.
fn released(p: &mut Pipeline, now: u64) -> Vec<(Resumed, Vec<u8>)> {
    let mut out = Vec::new();
    if !p.poll_held(now) {
        return out;
    }
    let mut buf = vec![0u8; 4096];
    while let Some(r) = p.resume_released(&mut buf, HEADROOM, now) {
        out.push((r, buf[r.start..r.start + r.len].to_vec()));
    }
    out
}

fn drops(p: &Pipeline, r: DropReason) -> u64 {
    p.counters.drops.get(r.name()).copied().unwrap_or(0)
}

/// The payload's first octet of an encapsulated UDP packet (its id), and the inner TTL.
fn inner_id_and_ttl(bytes: &[u8]) -> (u8, u8) {
    let d = decapsulate(&bytes[14..]).expect("a LISP data packet");
    let inner = d.inner(&bytes[14..]);
    (inner[28], inner[8])
}

#[test]
fn a_map_cache_miss_is_held_and_sent_when_the_map_reply_comes() {
    let mut p = switch(Settings::default());
    let frame = udp(HOST_A, [10, 10, 0, 5], [172, 16, 1, 9], 1);
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Held);
    assert_eq!(p.held(), 1);
    assert_eq!(p.counters.held, 1);
    assert_eq!(drops(&p, DropReason::MapCacheMiss), 0, "not dropped");
    // Nothing changed: nothing goes.
    assert!(released(&mut p, 100).is_empty());
    // The Map-Reply: the control plane adds the map-cache entry.
    map_cache_entry(&mut p, "172.16.1.0/24");
    let out = released(&mut p, 200);
    assert_eq!(out.len(), 1);
    let (r, bytes) = &out[0];
    assert_eq!(
        r.outcome.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!((r.port, r.tag), (A, Some(v(10))), "where it came in");
    assert_eq!(&bytes[..6], &PEER_RLOC_MAC.0);
    assert_eq!(inner_id_and_ttl(bytes), (1, 63), "TTL decremented once");
    assert_eq!(p.counters.released, 1);
    assert_eq!(p.counters.encapsulated, 1);
    assert_eq!(p.held(), 0);
    assert!(released(&mut p, 300).is_empty());
}

#[test]
fn a_route_that_stops_leading_to_lisp_releases_its_packets_too() {
    let mut p = switch(Settings::default());
    run(
        &mut p,
        A,
        &udp(HOST_A, [10, 10, 0, 5], [172, 16, 1, 9], 1),
        0,
    );
    // The control plane installs a host route to it on the uplink (it moved here, say).
    add(
        &mut p,
        TableEntry::Route {
            prefix: "172.16.1.9/32".parse().unwrap(),
            next_hop: NextHop::Gateway {
                via: ip("192.0.2.2"),
                iface: None,
            },
        },
    );
    let out = released(&mut p, 10);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].0.outcome.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!(p.counters.encapsulated, 0, "routed natively");
}

#[test]
fn held_packets_are_bounded_per_destination_keeping_the_newest() {
    let mut p = switch(Settings::default());
    for id in 1..=6 {
        let (out, _) = run(
            &mut p,
            A,
            &udp(HOST_A, [10, 10, 0, 5], [172, 16, 1, 9], id),
            id.into(),
        );
        assert_eq!(out.verdict, Verdict::Held);
    }
    assert_eq!(p.held(), 4, "four per destination");
    assert_eq!(drops(&p, DropReason::HoldOverflow), 2);
    // Another destination has its own four.
    run(
        &mut p,
        A,
        &udp(HOST_A, [10, 10, 0, 5], [172, 16, 2, 9], 9),
        10,
    );
    assert_eq!(p.held(), 5);
    map_cache_entry(&mut p, "172.16.1.0/24");
    let ids: Vec<u8> = released(&mut p, 20)
        .iter()
        .map(|(_, b)| inner_id_and_ttl(b).0)
        .collect();
    assert_eq!(ids, vec![3, 4, 5, 6], "the newest four, in order");
    assert_eq!(p.held(), 1, "the other destination still waits");
}

#[test]
fn held_packets_are_bounded_in_total_and_dropped_after_the_timeout() {
    let settings = Settings {
        hold_total: 8,
        ..Settings::default()
    };
    let mut p = switch(settings);
    for i in 0..20u8 {
        let (out, _) = run(
            &mut p,
            A,
            &udp(HOST_A, [10, 10, 0, 5], [172, 16, 3, i], i),
            0,
        );
        let want = if i < 8 {
            Verdict::Held
        } else {
            Verdict::Drop(DropReason::HoldOverflow)
        };
        assert_eq!(out.verdict, want, "packet {i}");
    }
    assert_eq!(p.held(), 8);
    assert_eq!(drops(&p, DropReason::HoldOverflow), 12);
    // Not yet.
    assert!(released(&mut p, 2999).is_empty());
    assert_eq!(p.held(), 8);
    // Three seconds: dropped and counted.
    assert!(released(&mut p, 3000).is_empty());
    assert_eq!(p.held(), 0);
    assert_eq!(drops(&p, DropReason::HoldTimeout), 8);
    // Too late: the Map-Reply finds nothing to send.
    map_cache_entry(&mut p, "172.16.3.0/24");
    assert!(released(&mut p, 3100).is_empty());
    assert_eq!(p.counters.released, 0);
}

#[test]
fn a_flood_to_unresolvable_eids_stays_in_its_slots_and_every_packet_is_counted() {
    let mut p = switch(Settings::default());
    let total = 20_000u32;
    let mut now = 0;
    for i in 0..total {
        let dst = 0xac10_0000u32 + (i % 5000); // 172.16.0.0 + i: 5000 EIDs, 4 packets each
        let frame = udp(HOST_A, [10, 10, 0, 5], dst.to_be_bytes(), 0);
        now = u64::from(i / 4); // 5000 packets a second
        run(&mut p, A, &frame, now);
        assert!(p.held() <= 256);
        released(&mut p, now);
    }
    now += 3000;
    released(&mut p, now);
    assert_eq!(p.held(), 0);
    let held = p.counters.held;
    let (overflow, timeout) = (
        drops(&p, DropReason::HoldOverflow),
        drops(&p, DropReason::HoldTimeout),
    );
    assert!(overflow > 0 && timeout > 0, "{overflow} {timeout}");
    // Every packet was either held or refused; every held one timed out or was pushed out.
    let refused = u64::from(total) - held;
    assert_eq!(overflow + timeout, held + refused, "{:?}", p.counters);
    assert_eq!(p.counters.released, 0);
}

#[test]
fn a_packet_waiting_for_arp_is_sent_when_the_neighbour_answers() {
    let mut p = switch(Settings::default());
    let frame = udp(HOST_A, [10, 10, 0, 5], [10, 20, 0, 6], 7);
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Held);
    assert!(out.reply.is_some(), "the ARP request still leaves");
    // Unanswered: asked again once a second while the packet waits, as Linux does.
    assert_eq!(p.reask_held(500), None, "not within the second");
    assert_eq!(p.reask_held(1000), Some(ReplyTo::Vlan(v(20))));
    assert_eq!(&p.reply()[38..42], &[10, 20, 0, 6], "an ARP request for B");
    assert_eq!(p.reask_held(1000), None, "once");
    // B answers the ARP request.
    let mut reply = ROUTER_MAC.0.to_vec();
    reply.extend_from_slice(&HOST_B.0);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
    reply.extend_from_slice(&HOST_B.0);
    reply.extend_from_slice(&[10, 20, 0, 6]);
    reply.extend_from_slice(&ROUTER_MAC.0);
    reply.extend_from_slice(&[10, 20, 0, 1]);
    reply.resize(60, 0);
    run(&mut p, B, &reply, 1005);
    let out = released(&mut p, 1006);
    assert_eq!(out.len(), 1);
    let (r, bytes) = &out[0];
    assert_eq!(r.outcome.verdict, Verdict::Forward { port: B, tag: None });
    assert_eq!(&bytes[..6], &HOST_B.0, "rewritten to the answer");
    assert_eq!(&bytes[6..12], &ROUTER_MAC.0);
    assert_eq!(bytes[14 + 8], 63, "TTL decremented once");
    assert_eq!(bytes[14 + 28], 7);
}

#[test]
fn a_trace_and_a_disabled_queue_hold_nothing() {
    let mut p = switch(Settings::default());
    let frame = udp(HOST_A, [10, 10, 0, 5], [172, 16, 1, 9], 1);
    let (out, steps) = p.trace(A, None, &frame, 0);
    assert_eq!(out.verdict, Verdict::Held, "{steps:?}");
    assert!(
        steps.iter().any(|s| s.contains("held for the Map-Reply")),
        "{steps:?}"
    );
    assert_eq!(p.held(), 0, "a trace keeps nothing");
    assert_eq!(p.counters.held, 0);
    let mut p = switch(Settings {
        hold_per_destination: 0,
        ..Settings::default()
    });
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::MapCacheMiss));
    let (out, _) = run(
        &mut p,
        A,
        &udp(HOST_A, [10, 10, 0, 5], [10, 20, 0, 6], 1),
        0,
    );
    assert_eq!(out.verdict, Verdict::Drop(DropReason::Glean));
    assert_eq!(p.held(), 0);
}

#[test]
fn the_lisp_nonce_is_random_per_packet_and_the_source_port_is_the_flow_hash() {
    let mut p = switch(Settings::default());
    map_cache_entry(&mut p, "172.16.1.0/24");
    let frame = udp(HOST_A, [10, 10, 0, 5], [172, 16, 1, 9], 1);
    let mut nonces = Vec::new();
    let mut ports = Vec::new();
    for now in 0..16 {
        let (out, bytes) = run(&mut p, A, &frame, now);
        assert!(matches!(out.verdict, Verdict::Forward { .. }));
        let d = decapsulate(&bytes[14..]).unwrap();
        let NonceField::Nonce { nonce, .. } = d.header.nonce else {
            panic!("no nonce: {:?}", d.header.nonce)
        };
        nonces.push(nonce);
        // The outer UDP source port, after the 20-octet outer IPv4 header.
        ports.push(u16::from_be_bytes([bytes[14 + 20], bytes[14 + 21]]));
    }
    nonces.sort_unstable();
    nonces.dedup();
    assert!(nonces.len() >= 15, "one flow, random nonces: {nonces:?}");
    ports.dedup();
    assert_eq!(ports.len(), 1, "one flow, one source port (ECMP entropy)");
    // Another xTR encapsulating the same flow does not repeat this one's nonces.
    let mut q = switch(Settings::default());
    map_cache_entry(&mut q, "172.16.1.0/24");
    let (_, bytes) = run(&mut q, A, &frame, 0);
    let d = decapsulate(&bytes[14..]).unwrap();
    let NonceField::Nonce { nonce, .. } = d.header.nonce else {
        panic!()
    };
    let mut p2 = switch(Settings::default());
    map_cache_entry(&mut p2, "172.16.1.0/24");
    let (_, bytes2) = run(&mut p2, A, &frame, 0);
    let d2 = decapsulate(&bytes2[14..]).unwrap();
    assert_ne!(d.header.nonce, d2.header.nonce, "{nonce}");
}

/// An ICMPv6 message of `kind` from `src` to `dst` with `hop` limit, to the router's MAC on the
/// routed uplink (or the group's MAC for a multicast destination).
fn icmpv6_on_uplink(src: &str, dst: &str, hop: u8, kind: u8) -> Vec<u8> {
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let dst_mac = if d.is_multicast() {
        let o = d.octets();
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        ROUTER_MAC.0
    };
    let b = PacketBuilder::ethernet2(PEER_RLOC_MAC.0, dst_mac)
        .ipv6(s.octets(), d.octets(), hop)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: kind,
            code_u8: 0,
            bytes5to8: [0; 4],
        });
    let mut out = Vec::new();
    b.write(&mut out, &[0; 16]).unwrap();
    out
}

#[test]
fn ipv6_link_local_and_multicast_control_traffic_is_counted_on_its_own() {
    let mut p = switch(Settings::default());
    let frames = [
        // Router solicitation to all-routers.
        icmpv6_on_uplink("fe80::99", "ff02::2", 255, 133),
        // MLDv2 report (hop limit 1).
        icmpv6_on_uplink("fe80::99", "ff02::16", 1, 143),
        // Something link-local to us that is not one of our addresses.
        icmpv6_on_uplink("fe80::99", "fe80::1", 1, 128),
    ];
    // IGMPv3 report to 224.0.0.22 with TTL 1, as a kernel sends when its link comes up.
    let mut igmp = vec![0x01, 0x00, 0x5e, 0, 0, 0x16];
    igmp.extend_from_slice(&PEER_RLOC_MAC.0);
    igmp.extend_from_slice(&[0x08, 0x00]);
    let mut ip4 = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 1, 2, 0, 0, 192, 0, 2, 2, 224, 0, 0, 22,
    ];
    let sum = {
        let mut x: u32 = ip4
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while x > 0xffff {
            x = (x & 0xffff) + (x >> 16);
        }
        !(x as u16)
    };
    ip4[10..12].copy_from_slice(&sum.to_be_bytes());
    igmp.extend_from_slice(&ip4);
    igmp.extend_from_slice(&[0x22, 0, 0, 0, 0, 0, 0, 0]);
    let frames = [
        frames[0].clone(),
        frames[1].clone(),
        frames[2].clone(),
        igmp,
    ];
    for f in &frames {
        let (out, _) = run(&mut p, UPLINK, f, 0);
        assert_eq!(out.verdict, Verdict::Consumed);
        assert_eq!(out.reply, None, "no ICMPv6 error for link control traffic");
    }
    assert_eq!(p.counters.link_local_control, 4);
    assert_eq!(drops(&p, DropReason::TtlExpired), 0);
    assert!(
        p.counters.drops.values().all(|n| *n == 0),
        "{:?}",
        p.counters
    );
}

#[test]
fn an_ipv6_packet_waiting_for_neighbour_discovery_is_sent_when_the_advertisement_comes() {
    let mut p = switch(Settings::default());
    add_svi6(&mut p);
    let (a6, b6): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
        "2001:db8:a::5".parse().unwrap(),
        "2001:db8:14::6".parse().unwrap(),
    );
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv6(a6.octets(), b6.octets(), 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    b.write(&mut frame, &[9; 8]).unwrap();
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Held);
    assert!(
        out.reply.is_some(),
        "the neighbour solicitation still leaves"
    );
    // B advertises itself (solicited, with its link-layer address).
    let svi: std::net::Ipv6Addr = "2001:db8:14::1".parse().unwrap();
    let mut na = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
    na.extend_from_slice(&b6.octets());
    na.extend_from_slice(&svi.octets());
    let mut icmp = vec![136u8, 0, 0, 0, 0x60, 0, 0, 0];
    icmp.extend_from_slice(&b6.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&HOST_B.0);
    na.extend_from_slice(&icmp);
    let mut f = ROUTER_MAC.0.to_vec();
    f.extend_from_slice(&HOST_B.0);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&na);
    run(&mut p, B, &f, 5);
    let out = released(&mut p, 6);
    assert_eq!(out.len(), 1, "{:?}", p.counters);
    let (r, bytes) = &out[0];
    assert_eq!(r.outcome.verdict, Verdict::Forward { port: B, tag: None });
    assert_eq!(&bytes[..6], &HOST_B.0);
    assert_eq!(bytes[14 + 7], 63, "hop limit decremented once");
}
