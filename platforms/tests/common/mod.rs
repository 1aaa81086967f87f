//! Shared pieces of the port tests: one host in a namespace behind a veth pair, and a receive
//! loop with a deadline.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test set-up: a failure is the test's failure

use std::time::{Duration, Instant};

use roamer_platforms::software::{
    AfPacketConfig, AfPacketPort, FrameSlot, GSO_FRAME_ROOM, GsoInfo, GsoType, PortIo,
};
use roamer_test_support::{Capture, Netns, Veth, require_root, unique_prefix};

/// Experimental EtherType (IEEE 802 local experimental 1) the tests mark their frames with.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// Fails the test, saying why, unless it runs as root.
pub fn needs_root() {
    require_root("network namespaces, AF_PACKET, TAP");
}

/// A namespace with one end of a veth pair in it (`ns_dev`, addressed `cidr` if given); the
/// other end (`port_dev`) stays in the root namespace for a port to open.
pub struct OneHost {
    pub veth: Veth,
    pub ns: Netns,
    pub port_dev: String,
    pub ns_dev: String,
}

pub fn one_host(cidr: Option<&str>) -> OneHost {
    let p = unique_prefix();
    let ns = Netns::new(&format!("{p}h")).unwrap();
    let (port_dev, ns_dev) = (format!("{p}p"), format!("{p}q"));
    let veth = Veth::new(&port_dev, &ns_dev).unwrap();
    veth.move_to(&ns_dev, &ns).unwrap();
    if let Some(cidr) = cidr {
        ns.addr(&ns_dev, cidr).unwrap();
    }
    // No IPv6 chatter (router and neighbour solicitations) on the test link.
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    let _ = roamer_test_support::run(
        "sysctl",
        &["-qw", &format!("net.ipv6.conf.{port_dev}.disable_ipv6=1")],
    );
    OneHost {
        veth,
        ns,
        port_dev,
        ns_dev,
    }
}

/// A raw frame sender/receiver inside the namespace on `dev` (an AF_PACKET socket opened by a
/// thread in the namespace; it stays there).
pub fn raw_in(ns: &Netns, dev: &str) -> AfPacketPort {
    let dev = dev.to_string();
    ns.enter(move || {
        AfPacketPort::open_with(
            &dev,
            &AfPacketConfig {
                promiscuous: true,
                vnet_hdr: false,
                ..AfPacketConfig::default()
            },
        )
    })
    .unwrap()
    .unwrap()
}

/// A received frame, copied out for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub frame: Vec<u8>,
    pub vlan: Option<u16>,
    pub gso: bool,
}

/// Receives until `want` frames for which `keep` holds have arrived or `timeout` passed.
/// Also returns the largest number of frames one `recv_batch` returned.
pub fn collect(
    port: &mut dyn PortIo,
    slots: &mut [FrameSlot],
    want: usize,
    timeout: Duration,
    keep: impl Fn(&FrameSlot) -> bool,
) -> (Vec<Got>, usize) {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut best_batch = 0;
    while out.len() < want && Instant::now() < deadline {
        let n = port.recv_batch(slots).unwrap();
        best_batch = best_batch.max(n);
        if n == 0 {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        for s in &slots[..n] {
            if keep(s) {
                out.push(Got {
                    frame: s.frame().to_vec(),
                    vlan: s.vlan,
                    gso: s.gso.is_some(),
                });
            }
        }
    }
    (out, best_batch)
}

/// The EtherType of an untagged frame.
pub fn ethertype(frame: &[u8]) -> u16 {
    if frame.len() < 14 {
        return 0;
    }
    u16::from_be_bytes([frame[12], frame[13]])
}

/// Sends every slot, retrying briefly while the queue is full.
pub fn send_all(port: &mut dyn PortIo, slots: &mut [FrameSlot]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut done = 0;
    while done < slots.len() {
        done += port.send_batch(&mut slots[done..]).unwrap();
        assert!(Instant::now() < deadline, "send queue stayed full");
    }
}

/// Slots holding `frames`, ready to send.
pub fn slots_with(frames: &[Vec<u8>]) -> Vec<FrameSlot> {
    frames
        .iter()
        .map(|f| {
            let mut s = FrameSlot::new(roamer_platforms::software::FRAME_ROOM);
            s.set_frame(f).unwrap();
            s
        })
        .collect()
}

/// Sends `frame` out of `port` tagged `vlan`, again every 250 ms (tshark starts capturing a
/// little after it says it does), until `capture` has a line, at most 20 times; that line.
pub fn send_tagged_until_seen(
    port: &mut dyn PortIo,
    frame: &[u8],
    vlan: u16,
    capture: &Capture,
) -> Option<String> {
    (0..20).find_map(|_| {
        let mut out = slots_with(&[frame.to_vec()]);
        out[0].vlan = Some(vlan);
        send_all(port, &mut out);
        capture.next_line(Duration::from_millis(250))
    })
}

/// Sends `count` frames of [`TEST_ETHERTYPE`] from `tx`, broadcast, tagged `vlan` if given,
/// the `i`th one's payload `[mark, i]`; the frames sent.
pub fn send_marked(tx: &mut AfPacketPort, vlan: Option<u16>, mark: u8, count: u8) -> Vec<Vec<u8>> {
    let frames: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            roamer_test_support::ethernet_frame(
                [0xff; 6],
                tx.mac(),
                vlan,
                TEST_ETHERTYPE,
                &[mark, i],
            )
        })
        .collect();
    send_all(tx, &mut slots_with(&frames));
    frames
}

/// The frames [`send_marked`] sent with `mark` that `port` receives within 5 s (at most
/// `want`), into slots of `room` octets.
pub fn collect_marked(port: &mut dyn PortIo, room: usize, want: usize, mark: u8) -> Vec<Got> {
    let mut slots = FrameSlot::batch(8, room);
    let marked = |s: &FrameSlot| ethertype(s.frame()) == TEST_ETHERTYPE && s.frame()[14] == mark;
    collect(port, &mut slots, want, Duration::from_secs(5), marked).0
}

/// A large TCP segment: Ethernet, IPv4 or IPv6, TCP with 12 bytes of options, `payload`.
pub fn large_tcp(ipv6: bool, payload: &[u8], flags: u8) -> FrameSlot {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    let tcp_len = 32;
    if ipv6 {
        f.extend_from_slice(&0x86ddu16.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&((tcp_len + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let total = (20 + tcp_len + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    }
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&5001u16.to_be_bytes());
    f.extend_from_slice(&0xffff_fff0u32.to_be_bytes()); // wraps
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
    f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    f.extend_from_slice(payload);
    let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
    slot.set_frame(&f).unwrap();
    slot.vlan = Some(10);
    let l4 = if ipv6 { 54 } else { 34 };
    slot.gso = Some(GsoInfo {
        gso_type: if ipv6 { GsoType::TcpV6 } else { GsoType::TcpV4 },
        ecn: false,
        gso_size: 1000,
        hdr_len: (l4 + tcp_len) as u16,
        csum: Some((l4 as u16, 16)),
        data_valid: false,
    });
    slot
}
