//! AF_XDP ports against a host in a network namespace: frames both ways through the XDP
//! program and the rings, 802.1Q tags taken out on receive and written on send, a frame
//! larger than the MTU refused, large segments whole both ways beside the rings, the XDP program on the device exactly while the port lives, and
//! devices AF_XDP cannot take refused with the reason (MTU above a page, an XDP program already
//! there).

#![allow(clippy::unwrap_used)] // helpers shared by the tests

mod common;

use std::time::Duration;

use common::*;
use roamer_platforms::PlatformError;
use roamer_platforms::software::{
    AfPacketConfig, AfPacketPort, FRAME_ROOM, FrameSlot, GSO_FRAME_ROOM, PortIo, XdpAttach, XdpPort,
};
use roamer_test_support::{ethernet_frame, run};

const WAIT: Duration = Duration::from_secs(5);

fn marked(payload_tag: u8) -> impl Fn(&FrameSlot) -> bool {
    move |s| ethertype(s.frame()) == TEST_ETHERTYPE && s.frame().get(14) == Some(&payload_tag)
}

/// Sends `frames`, each with its tag, from `from`; receives at `to` those whose payload starts
/// with `mark`. What arrived, and the largest number of frames one receive returned.
fn cross(
    from: &mut dyn PortIo,
    to: &mut dyn PortIo,
    frames: &[(Vec<u8>, Option<u16>)],
    mark: u8,
) -> (Vec<Got>, usize) {
    let mut out: Vec<FrameSlot> = frames
        .iter()
        .map(|(f, v)| {
            let mut s = FrameSlot::new(FRAME_ROOM);
            s.set_frame(f).unwrap();
            s.vlan = *v;
            s
        })
        .collect();
    send_all(from, &mut out);
    let mut slots = FrameSlot::batch(64, FRAME_ROOM);
    collect(to, &mut slots, frames.len(), WAIT, marked(mark))
}

fn require() -> OneHost {
    needs_root();
    if let Err(why) = roamer_platforms::bpf_objects::XDP_REDIRECT {
        panic!("this build has no XDP program ({why}); install clang and rebuild");
    }
    let host = one_host(None);
    run("ip", &["link", "set", &host.port_dev, "up"]).unwrap();
    host
}

/// Whether `ip link show DEV` lists an XDP program on the device.
fn has_xdp(dev: &str) -> bool {
    let out = run("ip", &["-d", "link", "show", dev]).unwrap();
    out.contains("prog/xdp")
}

#[test]
fn frames_cross_both_ways_with_their_tags() {
    let host = require();
    let mut port = XdpPort::open(&host.port_dev).unwrap();
    assert_eq!(
        port.info().attach,
        XdpAttach::Generic,
        "a veth gets generic XDP (native would take its peer's segmentation offload)"
    );
    assert!(!port.info().zero_copy, "veth: copy mode");
    assert!(has_xdp(&host.port_dev), "the program is on the device");
    let mut peer = raw_in(&host.ns, &host.ns_dev);

    // 100 frames in, every third one tagged: the tag ends up in `vlan`, the frame untagged.
    let frames: Vec<(Vec<u8>, Option<u16>)> = (0..100u8)
        .map(|i| {
            let vlan = (i % 3 == 0).then_some(100 + u16::from(i));
            let f = ethernet_frame([0xff; 6], peer.mac(), None, TEST_ETHERTYPE, &[1, i, 0xab]);
            (f, vlan)
        })
        .collect();
    let (got, best) = cross(&mut peer, &mut port, &frames, 1);
    assert_eq!(got.len(), 100, "all frames arrive");
    for (i, g) in got.iter().enumerate() {
        // The peer pads to the Ethernet minimum: compare the frame's own bytes.
        assert_eq!(&g.frame[..frames[i].0.len()], &frames[i].0[..], "frame {i}");
        assert_eq!(g.vlan, frames[i].1, "frame {i}'s tag");
        assert!(!g.gso);
    }
    assert!(best > 1, "received in batches ({best})");
    assert_eq!(port.stats().rx_dropped, 0);

    // 100 frames out, tagged 42 or not; the peer sees the tags.
    let mac = port.mac();
    let back: Vec<(Vec<u8>, Option<u16>)> = (0..100u8)
        .map(|i| {
            let f = ethernet_frame([0xff; 6], mac, None, TEST_ETHERTYPE, &[2, i, 0xcd]);
            (f, (i % 2 == 0).then_some(42))
        })
        .collect();
    let (got, _) = cross(&mut port, &mut peer, &back, 2);
    assert_eq!(got.len(), 100, "all frames leave");
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.frame[15], i as u8, "in order");
        assert_eq!(
            g.vlan,
            (i % 2 == 0).then_some(42),
            "frame {i}'s tag on the wire"
        );
    }
    let stats = port.stats();
    assert_eq!((stats.tx_frames, stats.tx_dropped), (100, 0));

    // A frame larger than the MTU is dropped and counted, not sent.
    let big = ethernet_frame([0xff; 6], port.mac(), None, TEST_ETHERTYPE, &[3; 1600]);
    let mut slot = FrameSlot::new(FRAME_ROOM);
    slot.set_frame(&big).unwrap();
    assert_eq!(port.send_batch(std::slice::from_mut(&mut slot)).unwrap(), 1);
    assert_eq!(port.stats().tx_dropped, 1);

    // The program goes with the port.
    drop(port);
    assert!(!has_xdp(&host.port_dev), "the program left with the port");
    // And the device can be taken again.
    let again = XdpPort::open(&host.port_dev).unwrap();
    drop(again);
}

/// A peer's large TCP segment crosses the port whole with its offload request, both ways: in,
/// passed by the XDP program to the stack (larger than the MTU) and taken by the port's
/// vnet-hdr socket (the peer kept its segmentation offload: generic XDP); out, through that
/// socket for the kernel to cut. A frame of the MTU still comes through the AF_XDP socket.
#[test]
fn large_segments_cross_whole_with_their_offload_request() {
    let host = require();
    let mut port = XdpPort::open(&host.port_dev).unwrap();
    assert!(
        port.features().tso,
        "large segments through the vnet-hdr socket"
    );
    let peer_dev = host.ns_dev.clone();
    let mut peer = host
        .ns
        .enter(move || AfPacketPort::open_with(&peer_dev, &AfPacketConfig::default()))
        .unwrap()
        .unwrap();
    assert!(peer.features().tso, "the peer's socket has vnet-hdr");
    let payload: Vec<u8> = (0..4500u32).map(|i| (i % 251) as u8).collect();
    let is_large = |s: &FrameSlot| s.len > 2000;

    let mut segment = large_tcp(false, &payload, 0x18);
    segment.vlan = None;
    let sent = segment.frame().to_vec();
    send_all(&mut peer, std::slice::from_mut(&mut segment));
    let mut slots = FrameSlot::batch(8, GSO_FRAME_ROOM);
    let (got, _) = collect(&mut port, &mut slots, 1, WAIT, is_large);
    assert_eq!(got.len(), 1, "the segment arrived whole, not cut");
    assert_eq!(got[0].frame.len(), sent.len());
    assert_eq!(
        &got[0].frame[..34],
        &sent[..34],
        "Ethernet and IPv4 headers"
    );
    assert_eq!(&got[0].frame[66..], &payload[..], "payload");
    assert!(got[0].gso, "with its offload request");

    let mut segment = large_tcp(false, &payload, 0x18);
    segment.vlan = None;
    send_all(&mut port, std::slice::from_mut(&mut segment));
    let (got, _) = collect(&mut peer, &mut slots, 1, WAIT, is_large);
    assert_eq!(
        got.len(),
        1,
        "the segment left whole, for the kernel to cut"
    );
    assert_eq!(&got[0].frame[66..], &payload[..], "payload");
    assert!(got[0].gso, "with its offload request");
    let stats = port.stats();
    assert_eq!((stats.tx_frames, stats.tx_dropped), (1, 0), "{stats:?}");

    // A frame of the flow after its large segment keeps its place behind it: both go the
    // stack's way (read after the AF_XDP socket's frames, so the small one would overtake).
    let mut large = large_tcp(false, &payload, 0x18);
    large.vlan = None;
    let mut small = large_tcp(false, &payload[..1200], 0x18);
    small.vlan = None;
    small.gso = None;
    let mut both = [large, small];
    send_all(&mut peer, &mut both);
    let (got, _) = collect(&mut port, &mut slots, 2, WAIT, |s| s.len > 1100);
    let lengths: Vec<usize> = got.iter().map(|g| g.frame.len()).collect();
    assert_eq!(lengths, [66 + 4500, 66 + 1200], "in the order sent");

    // A frame of the MTU is no large segment: through the AF_XDP socket, as every small one.
    let full = ethernet_frame([0xff; 6], peer.mac(), None, TEST_ETHERTYPE, &[4; 1500]);
    let (got, _) = cross(&mut peer, &mut port, &[(full, None)], 4);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].frame.len(), 1514);
    assert!(!got[0].gso);

    // The MTU lowered to 1000: the XDP program learns it at the next link check, and a
    // 1,266-byte segment (above the new MTU, below the old) still arrives with its request.
    run("ip", &["link", "set", &host.port_dev, "mtu", "1000"]).unwrap();
    port.check_link();
    let mut segment = large_tcp(false, &payload[..1200], 0x18);
    segment.vlan = None;
    // Another flow (source port 40001): not one that follows its large segments already.
    segment.frame_mut()[34..36].copy_from_slice(&40001u16.to_be_bytes());
    send_all(&mut peer, std::slice::from_mut(&mut segment));
    let is_mid = |s: &FrameSlot| s.len > 1100 && s.len < 1300;
    let (got, _) = collect(&mut port, &mut slots, 1, WAIT, is_mid);
    assert_eq!(got.len(), 1, "the segment arrived");
    assert!(
        got[0].gso,
        "through the vnet-hdr socket, with its offload request"
    );
}

#[test]
fn devices_af_xdp_cannot_take_are_refused_with_the_reason() {
    let host = require();
    // A port on the device already (its socket has the queue, its program the device).
    let first = XdpPort::open(&host.port_dev).unwrap();
    match XdpPort::open(&host.port_dev) {
        Err(PlatformError::AfXdpUnavailable { reason, .. }) => {
            assert!(reason.contains("another AF_XDP socket"), "{reason}")
        }
        other => panic!("a second port on the device: {other:?}"),
    }
    drop(first);
    // Another XDP program on the device (attached by hand, generic mode, as another tool
    // would): both attach modes refused.
    let object = std::env::temp_dir().join(format!("{}.o", host.port_dev));
    std::fs::write(
        &object,
        roamer_platforms::bpf_objects::XDP_REDIRECT.unwrap(),
    )
    .unwrap();
    let object = object.to_str().unwrap();
    run(
        "ip",
        &[
            "link",
            "set",
            "dev",
            &host.port_dev,
            "xdpgeneric",
            "obj",
            object,
            "sec",
            "xdp.frags",
        ],
    )
    .unwrap();
    match XdpPort::open(&host.port_dev) {
        Err(PlatformError::AfXdpUnavailable { reason, .. }) => {
            assert!(reason.contains("another XDP program"), "{reason}")
        }
        other => panic!("a device with another XDP program: {other:?}"),
    }
    run(
        "ip",
        &["link", "set", "dev", &host.port_dev, "xdpgeneric", "off"],
    )
    .unwrap();
    let _ = std::fs::remove_file(object);
    // An MTU above a page.
    run("ip", &["link", "set", &host.port_dev, "mtu", "9000"]).unwrap();
    match XdpPort::open(&host.port_dev) {
        Err(PlatformError::AfXdpUnavailable { reason, .. }) => {
            assert!(reason.contains("MTU 9000 is above 3498"), "{reason}")
        }
        other => panic!("MTU 9000: {other:?}"),
    }
    assert!(!has_xdp(&host.port_dev), "nothing left on the device");
    // No such device: the typed error AF_PACKET's absent port waits on.
    assert!(matches!(
        XdpPort::open(&format!("{}x", host.port_dev)),
        Err(PlatformError::NoSuchInterface { .. })
    ));
}
