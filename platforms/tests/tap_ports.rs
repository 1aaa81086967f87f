//! TAP ports against a real Linux host: the TAP is created here, moved into a namespace (the
//! open fd stays valid) and addressed there; the host pings an address the test answers from
//! the TAP, tagged frames cross both ways, offloads are negotiated.

#![allow(clippy::unwrap_used)] // helpers shared by the tests

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use roamer_platforms::software::port::ones_complement_sum;
use roamer_platforms::software::{FRAME_ROOM, FrameSlot, GSO_FRAME_ROOM, PortIo, TapPort};
use roamer_test_support::{Capture, Netns, ethernet_frame, ip, ping, require_tool, unique_prefix};

const ANSWER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x5a, 0x02];
const ANSWER_IP: [u8; 4] = [10, 92, 0, 2];

/// A TAP opened here and then moved into its own namespace, addressed 10.92.0.1/24.
fn tap_in_namespace() -> (TapPort, Netns, String) {
    let p = unique_prefix();
    let ns = Netns::new(&format!("{p}h")).unwrap();
    let tap_name = format!("{p}t");
    let port = TapPort::create(&tap_name).unwrap();
    ip(&["link", "set", &tap_name, "netns", ns.name()]).unwrap();
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.addr(&tap_name, "10.92.0.1/24").unwrap();
    (port, ns, tap_name)
}

/// Answers ARP requests for ANSWER_IP and ICMP echo requests to it, in place in the slot.
/// Returns whether the slot now holds a reply to send.
fn answer(slot: &mut FrameSlot) -> bool {
    let f = slot.frame_mut();
    if f.len() < 42 {
        return false;
    }
    let src: [u8; 6] = f[6..12].try_into().unwrap();
    match ethertype(f) {
        0x0806 if f[20..22] == [0, 1] && f[38..42] == ANSWER_IP => {
            let (sha, spa): ([u8; 6], [u8; 4]) =
                (f[22..28].try_into().unwrap(), f[28..32].try_into().unwrap());
            f[0..6].copy_from_slice(&src);
            f[6..12].copy_from_slice(&ANSWER_MAC);
            f[20..22].copy_from_slice(&[0, 2]);
            f[22..28].copy_from_slice(&ANSWER_MAC);
            f[28..32].copy_from_slice(&ANSWER_IP);
            f[32..38].copy_from_slice(&sha);
            f[38..42].copy_from_slice(&spa);
            true
        }
        0x0800 if f[23] == 1 && f[30..34] == ANSWER_IP => {
            let ihl = usize::from(f[14] & 0x0f) * 4;
            let icmp = 14 + ihl;
            if f.len() < icmp + 8 || f[icmp] != 8 {
                return false;
            }
            let total = 14 + usize::from(u16::from_be_bytes([f[16], f[17]]));
            f[0..6].copy_from_slice(&src);
            f[6..12].copy_from_slice(&ANSWER_MAC);
            // Swapping the addresses leaves the IP header checksum as it is.
            let (s, d): ([u8; 4], [u8; 4]) =
                (f[26..30].try_into().unwrap(), f[30..34].try_into().unwrap());
            f[26..30].copy_from_slice(&d);
            f[30..34].copy_from_slice(&s);
            f[icmp] = 0;
            f[icmp + 2..icmp + 4].copy_from_slice(&[0, 0]);
            let end = total.min(f.len());
            let sum = !ones_complement_sum(&f[icmp..end]);
            f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
            true
        }
        _ => false,
    }
}

#[test]
fn a_host_pings_an_address_answered_through_the_tap() {
    needs_root();
    let (mut port, ns, _tap) = tap_in_namespace();
    let features = port.features();
    eprintln!("TAP features on this kernel: {features:?}");
    assert!(
        features.vnet_hdr && features.tso,
        "offloads negotiated: {features:?}"
    );
    let done = AtomicBool::new(false);
    let answered = std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            let r = ping(&ns, Ipv4Addr::from(ANSWER_IP), Duration::from_secs(10));
            done.store(true, Ordering::Relaxed);
            r
        });
        let mut slots = FrameSlot::batch(16, GSO_FRAME_ROOM);
        while !done.load(Ordering::Relaxed) {
            let n = port.recv_batch(&mut slots).unwrap();
            if n == 0 {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            // Replies are made in place and gathered at the front of the batch.
            let mut replies = 0;
            for i in 0..n {
                if answer(&mut slots[i]) {
                    slots.swap(replies, i);
                    replies += 1;
                }
            }
            send_all(&mut port, &mut slots[..replies]);
        }
        pinger.join().unwrap().unwrap()
    });
    assert!(answered, "the host's ping was answered through the TAP");
    let stats = port.stats();
    assert!(stats.rx_frames >= 2 && stats.tx_frames >= 2, "{stats:?}");
    assert_eq!(stats.rx_dropped + stats.tx_dropped, 0);
    let neigh = ns.ip(&["neigh", "show", "10.92.0.2"]).unwrap();
    assert!(neigh.contains("02:00:00:00:5a:02"), "{neigh}");
}

#[test]
fn tags_cross_the_tap_both_ways() {
    needs_root();
    let (mut port, ns, tap) = tap_in_namespace();
    // Host → port: a raw socket in the namespace sends tagged frames on the TAP; the TAP
    // driver hands them over with the tag inline and the port takes it out.
    let mut tx = raw_in(&ns, &tap);
    let frames = send_marked(&mut tx, Some(42), 6, 5);
    let got = collect_marked(&mut port, GSO_FRAME_ROOM, 5, 6);
    assert_eq!(got.len(), 5);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.vlan, Some(42), "frame {i}");
        let mut expect = frames[i].clone();
        expect.drain(12..16);
        assert_eq!(g.frame, expect, "frame {i} without its tag");
    }

    // Port → host: a frame sent with vlan 42 arrives tagged (seen by tshark in the namespace).
    require_tool("tshark", "tshark");
    let capture = Capture::start(
        &ns,
        &tap,
        "vlan 42",
        1,
        &["vlan.id", "vlan.etype", "frame.len"],
        Duration::from_secs(20),
    )
    .unwrap();
    let frame = ethernet_frame([0xff; 6], ANSWER_MAC, None, TEST_ETHERTYPE, &[7; 46]);
    let line = send_tagged_until_seen(&mut port, &frame, 42, &capture)
        .expect("tshark saw the tagged frame");
    assert_eq!(line, "42\t0x88b5\t64");
}

#[test]
fn a_tap_without_offloads_still_carries_frames() {
    needs_root();
    let p = unique_prefix();
    let ns = Netns::new(&format!("{p}h")).unwrap();
    let name = format!("{p}t");
    let mut config = roamer_platforms::software::TapConfig::new(&name);
    config.offload = false;
    config.mac = Some([0x02, 0, 0, 0, 0x5a, 0x01]);
    let mut port = TapPort::create_with(&config).unwrap();
    assert!(!port.features().vnet_hdr);
    assert_eq!(port.mac(), [0x02, 0, 0, 0, 0x5a, 0x01]);
    assert_eq!(port.mtu(), 1500);
    assert!(port.is_up());
    ip(&["link", "set", &name, "netns", ns.name()]).unwrap();
    ns.ip(&["link", "set", &name, "up"]).unwrap();
    let mut tx = raw_in(&ns, &name);
    let frames = send_marked(&mut tx, None, 8, 5);
    let got = collect_marked(&mut port, FRAME_ROOM, 5, 8);
    assert_eq!(got.len(), 5);
    assert_eq!(
        got.iter().map(|g| g.frame.clone()).collect::<Vec<_>>(),
        frames
    );
    // Moved away, the device is no longer visible here: the MTU read at creation stands.
    assert_eq!(port.mtu(), 1500);
    assert!(!port.is_up());
}
