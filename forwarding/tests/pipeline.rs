//! The forwarding pipeline on real frames (built with etherparse, checked byte by byte).

#![allow(clippy::unwrap_used)] // fixtures of known-valid values

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use etherparse::{PacketBuilder, SlicedPacket};
use roamer_forwarding::pipeline::{
    DropReason, Frame, Outcome, Pipeline, ReplyTo, Settings, Verdict,
};
use roamer_forwarding::tables::Tables;
use roamer_forwarding::wire::lisp_data::decapsulate;
use roamer_hal::{
    HalEvent, Iid, L3Interface, Locator, Mac, NegativeAction, NextHop, PortId, Prefix, TableEntry,
    TableOp,
};

const VMAC: Mac = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);

/// VLAN 10 on port A, VLAN 20 on port B, both on the trunk; SVIs 10.10.0.1/24 and 10.20.0.1/24;
/// a routed uplink 192.0.2.1/24 towards a peer xTR at 192.0.2.2.
fn switch() -> Pipeline {
    test_switch(Settings::default(), true)
}

struct Buf(Vec<u8>, usize);

impl Buf {
    fn new(frame: &[u8]) -> Buf {
        let mut v = vec![0u8; HEADROOM + frame.len() + 64];
        v[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        Buf(v, frame.len())
    }
}

fn run(p: &mut Pipeline, port: PortId, frame: &[u8], now: u64) -> (Outcome, Vec<u8>) {
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
    let out = p.process(port, None, &mut f, now);
    let bytes = f.bytes().to_vec();
    (out, bytes)
}

fn udp(src_mac: Mac, dst_mac: Mac, src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src, dst, ttl)
        .udp(5000, 6000);
    let payload = [0xabu8; 32];
    let mut out = Vec::new();
    b.write(&mut out, &payload).unwrap();
    out
}

fn arp_request(sender_mac: Mac, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

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

fn itr(p: &mut Pipeline) {
    add(
        p,
        TableEntry::Route {
            prefix: "172.16.0.0/16".parse().unwrap(),
            next_hop: NextHop::Lisp,
        },
    );
    add(
        p,
        TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: "172.16.1.0/24".parse().unwrap(),
            locators: vec![Locator {
                rloc: ip("192.0.2.2"),
                priority: 1,
                weight: 100,
            }],
            negative: NegativeAction::NoAction,
        },
    );
}

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

/// An encapsulated frame from the peer xTR to us, carrying `inner_dst`.
fn encapsulated(inner_dst: [u8; 4]) -> Vec<u8> {
    encapsulated_by_peer(&udp(HOST_A, ROUTER_MAC, [172, 16, 5, 5], inner_dst, 64))
}

/// `host_frame` (sent by host A to its router) encapsulated by the peer xTR towards us, over an
/// underlay of MTU 9000.
fn encapsulated_by_peer(host_frame: &[u8]) -> Vec<u8> {
    // The remote xTR: one access VLAN and the uplink, everything else through LISP.
    let mut q = Pipeline::new(Tables::default(), Settings::default());
    q.set_port_mtu(UPLINK, 9000);
    add(&mut q, TableEntry::Vlan { vlan: v(10) });
    add(
        &mut q,
        TableEntry::VlanMember {
            vlan: v(10),
            port: A,
            tagged: false,
        },
    );
    add(
        &mut q,
        TableEntry::RouterMac {
            iface: L3Interface::Vlan(v(10)),
            mac: ROUTER_MAC,
            virtual_mac: false,
        },
    );
    add_uplink(&mut q);
    add(
        &mut q,
        TableEntry::Route {
            prefix: "0.0.0.0/0".parse().unwrap(),
            next_hop: NextHop::Lisp,
        },
    );
    add(
        &mut q,
        TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: "0.0.0.0/0".parse().unwrap(),
            locators: vec![Locator {
                rloc: ip("192.0.2.2"),
                priority: 1,
                weight: 1,
            }],
            negative: NegativeAction::NoAction,
        },
    );
    let (out, mut bytes) = run(&mut q, A, host_frame, 0);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    // Turn it around: from the peer (192.0.2.2) to us (192.0.2.1).
    bytes[..6].copy_from_slice(&ROUTER_MAC.0);
    bytes[6..12].copy_from_slice(&PEER_RLOC_MAC.0);
    let ip = &mut bytes[14..34];
    ip[12..16].copy_from_slice(&[192, 0, 2, 2]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
    ip[10..12].fill(0);
    let c = roamer_forwarding::wire::checksum::ipv4_header(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    bytes
}

/// The test switch as an ETR: host B (10.20.0.6) known behind port B, 10.20.0.0/16 in the
/// local LISP database.
fn etr_switch() -> Pipeline {
    let mut p = switch();
    run(
        &mut p,
        B,
        &arp_request(HOST_B, [10, 20, 0, 6], [10, 20, 0, 1]),
        0,
    );
    add(
        &mut p,
        TableEntry::LispDatabase {
            iid: Iid::default(),
            eid: "10.20.0.0/16".parse().unwrap(),
            locators: vec![],
        },
    );
    p
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

fn ping_v4(src_mac: Mac, dst_mac: Mac, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src, dst, 64)
        .icmpv4_echo_request(7, 1);
    let mut out = Vec::new();
    b.write(&mut out, &[0x55; 24]).unwrap();
    out
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

const HOST_A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
const HOST_B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6];
const SVI10_6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn switch6() -> Pipeline {
    let mut p = switch();
    add_svi6(&mut p);
    p
}

fn ns(sender_mac: Mac, src: [u8; 16], target: [u8; 16]) -> Vec<u8> {
    let mut icmp = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&sender_mac.0);
    let dst = [
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13], target[14], target[15],
    ];
    let b = PacketBuilder::ethernet2(
        sender_mac.0,
        [0x33, 0x33, 0xff, target[13], target[14], target[15]],
    )
    .ipv6(src, dst, 255)
    .icmpv6(etherparse::Icmpv6Type::Unknown {
        type_u8: 135,
        code_u8: 0,
        bytes5to8: [0; 4],
    });
    let mut out = Vec::new();
    b.write(&mut out, &icmp[8..]).unwrap();
    out
}

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

/// Runs `frame` through `p` as a large segment (GSO) received on port A.
fn run_large(p: &mut Pipeline, frame: &[u8]) -> Outcome {
    let mut b = Buf::new(frame);
    let len = b.1;
    let before = b.0.clone();
    let mut f = Frame {
        buf: &mut b.0,
        start: HEADROOM,
        len,
        large: true,
        gso_tcp: false,
        partial_csum: None,
    };
    let out = p.process(A, None, &mut f, 0);
    assert_eq!((f.start, f.len), (HEADROOM, len));
    assert_eq!(b.0, before, "nothing changed before the cut");
    out
}

#[test]
fn large_segments_are_cut_to_fit_the_tunnel_before_lisp_encapsulation() {
    let mut p = switch();
    itr(&mut p);
    let frame = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9], 64);
    // The MTU of the port towards the RLOC unknown: L is the configured 1500.
    assert_eq!(
        run_large(&mut p, &frame).verdict,
        Verdict::Segment { max_ip_len: 1464 }
    );
    // The uplink's MTU is L: pieces up to 9000 - 36.
    p.set_port_mtu(UPLINK, 9000);
    assert_eq!(
        run_large(&mut p, &frame).verdict,
        Verdict::Segment { max_ip_len: 8964 }
    );
    assert_eq!(p.counters.encapsulated, 0);
    // A large segment nobody has a mapping for is one drop, not one per piece.
    let miss = udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 9, 9], 64);
    assert_eq!(
        run_large(&mut p, &miss).verdict,
        Verdict::Drop(DropReason::MapCacheMiss)
    );
    assert_eq!(p.counters.drops.get("map-cache-miss"), Some(&1));
}

/// Ethernet + IPv4 (DF) + UDP with `payload` octets, from host A to 172.16.1.9 via the router.
fn udp_df(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv4([10, 10, 0, 5], [172, 16, 1, 9], 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    b.write(&mut frame, &vec![0u8; payload]).unwrap();
    frame[14 + 6] |= 0x40; // DF
    let c = roamer_forwarding::wire::checksum::ipv4_header(&{
        let mut h = frame[14..34].to_vec();
        h[10..12].fill(0);
        h
    });
    frame[24..26].copy_from_slice(&c.to_be_bytes());
    frame
}

#[test]
fn the_tunnel_is_as_large_as_the_mtu_of_the_port_towards_the_rloc() {
    let mut p = switch();
    itr(&mut p);
    p.set_port_mtu(UPLINK, 9000);
    // 3028 octets of IP: too big for a 1500 underlay, fits 9000.
    let (out, bytes) = run(&mut p, A, &udp_df(3000), 0);
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
    assert_eq!(bytes.len(), 14 + 36 + 3028);
    // 8965 octets of IP do not fit 9000 - 36.
    let (out, _) = run(&mut p, A, &udp_df(8965 - 28), 1);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TooBig));
    let r = p.reply();
    assert_eq!(u16::from_be_bytes([r[40], r[41]]), 8964, "MTU = 9000 - 36");
}

/// Host A's TCP packet to 10.20.0.6 carrying `payload` octets (20-octet TCP header, ACK|PSH).
fn tcp_to_b(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv4([172, 16, 5, 5], [10, 20, 0, 6], 64)
        .tcp(40000, 5001, 1000, 65535)
        .ack(1)
        .psh();
    let mut frame = Vec::new();
    let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    b.write(&mut frame, &data).unwrap();
    frame
}

#[test]
fn etr_sends_decapsulated_tcp_larger_than_the_host_port_as_tcp_segments() {
    let mut p = etr_switch();
    p.set_port_mtu(B, 1500);
    // Four segments' worth packed into one LISP packet by the ITR.
    let (out, bytes) = run(
        &mut p,
        UPLINK,
        &encapsulated_by_peer(&tcp_to_b(4 * 1460)),
        1,
    );
    assert_eq!(
        out.verdict,
        Verdict::ForwardTcpSegments {
            port: B,
            tag: None,
            mss: 1500 - 20 - 20
        }
    );
    assert_eq!(&bytes[..6], &HOST_B.0, "routed like any other packet");
    assert_eq!(bytes.len(), 14 + 40 + 4 * 1460);
    assert_eq!(bytes[14 + 8], 63, "TTL decremented once, by the ITR");
    assert_eq!(p.counters.tcp_segmented, 1);
    // One that fits goes as it is.
    let (out, _) = run(&mut p, UPLINK, &encapsulated_by_peer(&tcp_to_b(1460)), 2);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    // Not TCP: as it is too (the port's MTU decides its fate).
    let mut big_udp = udp(HOST_A, ROUTER_MAC, [172, 16, 5, 5], [10, 20, 0, 6], 64);
    big_udp.truncate(14 + 28);
    big_udp.resize(14 + 3000, 0);
    big_udp[16..18].copy_from_slice(&3000u16.to_be_bytes());
    big_udp[38..40].copy_from_slice(&2980u16.to_be_bytes());
    big_udp[24..26].fill(0);
    let c = roamer_forwarding::wire::checksum::ipv4_header(&big_udp[14..34]);
    big_udp[24..26].copy_from_slice(&c.to_be_bytes());
    let (out, _) = run(&mut p, UPLINK, &encapsulated_by_peer(&big_udp), 3);
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
    assert_eq!(p.counters.tcp_segmented, 1);
    assert!(p.counters.drops.is_empty(), "{:?}", p.counters.drops);
    // The port's MTU unknown: nothing to fit.
    let mut q = etr_switch();
    let (out, _) = run(
        &mut q,
        UPLINK,
        &encapsulated_by_peer(&tcp_to_b(4 * 1460)),
        1,
    );
    assert_eq!(out.verdict, Verdict::Forward { port: B, tag: None });
}

#[test]
fn oversize_packets_get_fragmentation_needed_instead_of_encapsulation() {
    let mut p = switch();
    itr(&mut p);
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv4([10, 10, 0, 5], [172, 16, 1, 9], 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    b.write(&mut frame, &vec![0u8; 1472]).unwrap();
    frame[14 + 6] |= 0x40; // DF
    let c = roamer_forwarding::wire::checksum::ipv4_header(&{
        let mut h = frame[14..34].to_vec();
        h[10..12].fill(0);
        h
    });
    frame[24..26].copy_from_slice(&c.to_be_bytes());
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TooBig));
    assert_eq!(out.reply, Some(ReplyTo::Port { port: A, tag: None }));
    let r = p.reply();
    assert_eq!((r[34], r[35]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([r[40], r[41]]), 1464, "MTU = 1500 - 36");
    // A packet that fits after encapsulation goes through.
    let (out, _) = run(
        &mut p,
        A,
        &udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9], 64),
        1,
    );
    assert_eq!(
        out.verdict,
        Verdict::Forward {
            port: UPLINK,
            tag: None
        }
    );
}

#[test]
fn oversize_packets_without_df_are_fragmented_before_encapsulation() {
    let mut p = switch();
    itr(&mut p);
    let b = PacketBuilder::ethernet2(HOST_A.0, ROUTER_MAC.0)
        .ipv4([10, 10, 0, 5], [172, 16, 1, 9], 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    b.write(&mut frame, &vec![0u8; 1472]).unwrap();
    frame[14 + 6] &= !0x40; // no DF
    let c = roamer_forwarding::wire::checksum::ipv4_header(&{
        let mut h = frame[14..34].to_vec();
        h[10..12].fill(0);
        h
    });
    frame[24..26].copy_from_slice(&c.to_be_bytes());
    let (out, _) = run(&mut p, A, &frame, 0);
    assert_eq!(out.verdict, Verdict::Fragment { max_ip_len: 1464 });
    assert_eq!(
        out.reply, None,
        "no ICMP: the ITR fragments (RFC 9300 §7.1)"
    );
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
fn etr_delivers_ipv6_eids() {
    use roamer_forwarding::wire::lisp_data::{EncapParams, LispDataRepr, encapsulate_in_place};
    let mut p = switch6();
    let sv20 = [0x20, 0x01, 0x0d, 0xb8, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    run(&mut p, B, &ns(HOST_B, HOST_B6, sv20), 0);
    add(
        &mut p,
        TableEntry::LispDatabase {
            iid: Iid::default(),
            eid: "2001:db8:14::/48".parse().unwrap(),
            locators: vec![],
        },
    );
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
