//! The forwarding pipeline on real frames (built with etherparse, checked byte by byte).
//!
//! One test binary: this file holds the test switches and the frame helpers the modules share;
//! the tests are in one module per area.

#![allow(clippy::unwrap_used)] // fixtures of known-valid values

#[path = "../common/mod.rs"]
mod common;

mod dynamic_eid;
mod ipv6;
mod l2;
mod l3;
mod lisp;
mod mtu;
mod originated;

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
    local_database(&mut p, "10.20.0.0/16");
    p
}

fn ping_v4(src_mac: Mac, dst_mac: Mac, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src, dst, 64)
        .icmpv4_echo_request(7, 1);
    let mut out = Vec::new();
    b.write(&mut out, &[0x55; 24]).unwrap();
    out
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
