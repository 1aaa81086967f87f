//! AF_PACKET ports against real Linux hosts in network namespaces: frames both ways, VLAN tags
//! recovered on receive (kernel-stripped or not) and written on send, own frames ignored,
//! features and link state reported, a missing interface refused with a typed error.

#![allow(clippy::unwrap_used)] // helpers shared by the tests

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use roamer_platforms::PlatformError;
use roamer_platforms::software::{AfPacketPort, FRAME_ROOM, FrameSlot, HEADROOM, PortIo};
use roamer_test_support::{
    Capture, ethernet_frame, have, parse_mac, require_tool, run, sysfs, unique_prefix,
};

const WAIT: Duration = Duration::from_secs(5);

fn marked(payload_tag: u8) -> impl Fn(&FrameSlot) -> bool {
    move |s| ethertype(s.frame()) == TEST_ETHERTYPE && s.frame().get(14) == Some(&payload_tag)
}

#[test]
fn frames_from_the_namespace_arrive_in_batches() {
    needs_root();
    let host = one_host(None);
    let mut port = AfPacketPort::open(&host.port_dev).unwrap();
    let mut tx = raw_in(&host.ns, &host.ns_dev);
    let frames: Vec<Vec<u8>> = (0..100u8)
        .map(|i| ethernet_frame([0xff; 6], tx.mac(), None, TEST_ETHERTYPE, &[1, i, 0xab]))
        .collect();
    send_all(&mut tx, &mut slots_with(&frames));

    let mut slots = FrameSlot::batch(32, FRAME_ROOM);
    let (got, best_batch) = collect(&mut port, &mut slots, 100, WAIT, marked(1));
    assert_eq!(got.len(), 100, "all frames arrive");
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.frame, frames[i], "frame {i} arrives unchanged, in order");
        assert_eq!(g.vlan, None);
    }
    assert!(
        best_batch > 1,
        "frames waiting are received in batches ({best_batch})"
    );
    let stats = port.stats();
    assert!(stats.rx_frames >= 100);
    assert_eq!(stats.rx_dropped, 0);
}

#[test]
fn frames_sent_by_the_port_reach_the_host_stack() {
    needs_root();
    let host = one_host(Some("10.91.0.1/24"));
    let mut port = AfPacketPort::open(&host.port_dev).unwrap();
    let me = port.mac();
    // An ARP request for the host's address, from the port: the host's kernel answers it.
    let mut arp = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    arp.extend_from_slice(&me);
    arp.extend_from_slice(&[10, 91, 0, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 91, 0, 1]);
    let request = ethernet_frame([0xff; 6], me, None, 0x0806, &arp);
    send_all(&mut port, &mut slots_with(&[request]));

    let mut slots = FrameSlot::batch(8, FRAME_ROOM);
    let is_reply = move |s: &FrameSlot| {
        let f = s.frame();
        ethertype(f) == 0x0806 && f.len() >= 42 && f[20..22] == [0, 2] && f[32..38] == me
    };
    let (got, _) = collect(&mut port, &mut slots, 1, WAIT, is_reply);
    assert_eq!(got.len(), 1, "the host answered the port's ARP request");
    let host_mac = parse_mac(&sysfs(&host.ns, &host.ns_dev, "address").unwrap()).unwrap();
    assert_eq!(got[0].frame[0..6], me, "reply to the port's MAC");
    assert_eq!(got[0].frame[6..12], host_mac);
    assert_eq!(got[0].frame[28..32], [10, 91, 0, 1]);
    // And the host learned the port's address from it.
    let neigh = host
        .ns
        .ip(&["neigh", "show", "10.91.0.2", "dev", &host.ns_dev])
        .unwrap();
    let me_text = me
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(neigh.contains(&me_text), "neighbour entry: {neigh}");
}

/// Frames tagged 42 (and one 802.1ad S-tagged) sent from the namespace arrive untagged with
/// `vlan == Some(42)` (the S-tag stays in the frame).
fn tagged_frames_arrive(host: &OneHost) {
    let mut port = AfPacketPort::open(&host.port_dev).unwrap();
    let mut tx = raw_in(&host.ns, &host.ns_dev);
    let untagged: Vec<Vec<u8>> = (0..10u8)
        .map(|i| ethernet_frame(port.mac(), tx.mac(), None, TEST_ETHERTYPE, &[2, i]))
        .collect();
    let mut wire: Vec<Vec<u8>> = (0..10u8)
        .map(|i| ethernet_frame(port.mac(), tx.mac(), Some(42), TEST_ETHERTYPE, &[2, i]))
        .collect();
    // Priority bits on the wire are not part of the VLAN ID.
    wire[3][14] |= 0xa0;
    let mut s_tagged = ethernet_frame(port.mac(), tx.mac(), Some(7), TEST_ETHERTYPE, &[3]);
    s_tagged[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
    wire.push(s_tagged.clone());
    send_all(&mut tx, &mut slots_with(&wire));

    let mut slots = FrameSlot::batch(16, FRAME_ROOM);
    let c_tagged = marked(2);
    let ours = |s: &FrameSlot| c_tagged(s) || s.frame().get(12..14) == Some(&[0x88, 0xa8][..]);
    let (got, _) = collect(&mut port, &mut slots, 11, WAIT, ours);
    assert_eq!(got.len(), 11);
    for (i, g) in got[..10].iter().enumerate() {
        assert_eq!(g.vlan, Some(42), "frame {i}");
        // The untagged frame is the 60-byte minimum of the wire frame, less the 4-byte tag.
        assert_eq!(g.frame[..], untagged[i][..56], "frame {i} without its tag");
    }
    assert_eq!(got[10].vlan, None, "an S-tag is not a VLAN of ours");
    assert_eq!(
        got[10].frame, s_tagged,
        "the S-tag is back where it was on the wire"
    );
}

#[test]
fn tagged_frames_arrive_with_their_vlan_rx_offload_on() {
    needs_root();
    let host = one_host(None);
    if have("ethtool") {
        run("ethtool", &["-K", &host.port_dev, "rxvlan", "on"]).unwrap();
    }
    tagged_frames_arrive(&host);
}

#[test]
fn tagged_frames_arrive_with_their_vlan_rx_offload_off() {
    needs_root();
    require_tool("ethtool", "ethtool");
    let host = one_host(None);
    run("ethtool", &["-K", &host.port_dev, "rxvlan", "off"]).unwrap();
    let features = run("ethtool", &["-k", &host.port_dev]).unwrap();
    assert!(
        features.contains("rx-vlan-offload: off"),
        "rx-vlan offload is off: {features}"
    );
    tagged_frames_arrive(&host);
}

#[test]
fn sending_with_a_vlan_puts_the_tag_on_the_wire() {
    needs_root();
    require_tool("tshark", "tshark");
    let host = one_host(None);
    let mut port = AfPacketPort::open(&host.port_dev).unwrap();
    let capture = Capture::start(
        &host.ns,
        &host.ns_dev,
        "vlan 42",
        1,
        &["vlan.id", "vlan.etype", "eth.src", "frame.len"],
        Duration::from_secs(20),
    )
    .unwrap();
    let frame = ethernet_frame([0xff; 6], port.mac(), None, TEST_ETHERTYPE, &[4; 46]);
    let line = send_tagged_until_seen(&mut port, &frame, 42, &capture)
        .expect("tshark saw a frame tagged 42");
    let fields: Vec<&str> = line.split('\t').collect();
    let mac = port
        .mac()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(fields[0], "42", "{line}");
    assert_eq!(fields[1], "0x88b5", "{line}");
    assert_eq!(fields[2], mac, "{line}");
    assert_eq!(fields[3], "64", "60-byte frame + 4-byte tag: {line}");
    drop(capture);

    // What went out is what the slot says after the call: tag written in place, vlan cleared.
    let mut slots = slots_with(std::slice::from_ref(&frame));
    slots[0].vlan = Some(42);
    send_all(&mut port, &mut slots);
    assert_eq!(slots[0].vlan, None);
    assert_eq!(slots[0].start, HEADROOM - 4);
    assert_eq!(&slots[0].frame()[12..16], &[0x81, 0x00, 0x00, 42]);
}

#[test]
fn the_port_does_not_receive_its_own_frames() {
    needs_root();
    let host = one_host(None);
    let mut port = AfPacketPort::open(&host.port_dev).unwrap();
    assert!(port.features().ignore_outgoing);
    let mut rx = raw_in(&host.ns, &host.ns_dev);
    let frames: Vec<Vec<u8>> = (0..20u8)
        .map(|i| ethernet_frame([0xff; 6], port.mac(), None, TEST_ETHERTYPE, &[5, i]))
        .collect();
    send_all(&mut port, &mut slots_with(&frames));
    let mut slots = FrameSlot::batch(32, FRAME_ROOM);
    // The host side sees all 20 …
    let (there, _) = collect(&mut rx, &mut slots, 20, WAIT, marked(5));
    assert_eq!(there.len(), 20);
    // … the port itself none.
    let (here, _) = collect(
        &mut port,
        &mut slots,
        1,
        Duration::from_millis(300),
        marked(5),
    );
    assert!(here.is_empty(), "own frames came back: {}", here.len());
}

#[test]
fn features_mac_mtu_and_link_state_are_reported() {
    needs_root();
    let host = one_host(None);
    let port = AfPacketPort::open(&host.port_dev).unwrap();
    let features = port.features();
    assert!(features.vnet_hdr, "PACKET_VNET_HDR on this kernel");
    assert!(features.tso);
    assert!(
        features.ignore_outgoing,
        "PACKET_IGNORE_OUTGOING on this kernel"
    );
    let mac = run(
        "cat",
        &[&format!("/sys/class/net/{}/address", host.port_dev)],
    )
    .unwrap();
    assert_eq!(Some(port.mac()), parse_mac(&mac));
    assert_eq!(port.mtu(), 1500);
    assert_eq!(port.name(), host.port_dev);
    assert!(port.ifindex() > 0);
    assert!(port.is_up());
    roamer_test_support::ip(&["link", "set", &host.port_dev, "mtu", "1400"]).unwrap();
    assert_eq!(port.mtu(), 1400);
    roamer_test_support::ip(&["link", "set", &host.port_dev, "down"]).unwrap();
    assert!(!port.is_up());
}

#[test]
fn a_missing_interface_is_a_typed_error() {
    let name = format!("{}x", unique_prefix());
    match AfPacketPort::open(&name) {
        Err(PlatformError::NoSuchInterface { port, .. }) => assert_eq!(port, name),
        other => panic!("expected NoSuchInterface, got {other:?}"),
    }
    assert!(matches!(
        AfPacketPort::open("bad/name\0"),
        Err(PlatformError::NoSuchInterface { .. })
    ));
}

#[test]
fn a_lone_host_gets_no_ping_reply() {
    // Sanity of the ping helper: a host alone on its link (a port that answers nothing) gets
    // no reply.
    needs_root();
    let host = one_host(Some("10.91.0.1/24"));
    let _port = AfPacketPort::open(&host.port_dev).unwrap();
    let answered = roamer_test_support::ping(
        &host.ns,
        Ipv4Addr::new(10, 91, 0, 2),
        Duration::from_millis(500),
    )
    .unwrap();
    assert!(!answered);
}
