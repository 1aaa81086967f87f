//! The minimal frame copier between two hosts in network namespaces:
//! ns1 —veth— [port A | copier | port B] —veth— ns2, with AF_PACKET ports, TAP ports and one
//! of each. Pings cross, and a TCP stream crosses intact as large segments (offloads carried
//! from port to port rather than cut into MTU frames).

#![allow(clippy::unwrap_used)] // helpers shared by the tests

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use roamer_platforms::software::copier::{self, CopierStats};
use roamer_platforms::software::{AfPacketConfig, AfPacketPort, PortIo, TapPort};
use roamer_test_support::{self as support, Netns, Veth, ip, ping, unique_prefix};

const H1: Ipv4Addr = Ipv4Addr::new(10, 93, 0, 1);
const H2: Ipv4Addr = Ipv4Addr::new(10, 93, 0, 2);

/// A host in its own namespace, reached through a port of `kind` ("afpacket" or "tap").
struct Side {
    port: Box<dyn PortIo>,
    // Guards: dropped after the port.
    _veth: Option<Veth>,
    ns: Netns,
}

fn side(kind: &str, addr: Ipv4Addr) -> Side {
    let p = unique_prefix();
    let ns = Netns::new(&format!("{p}h")).unwrap();
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    let cidr = format!("{addr}/24");
    match kind {
        "afpacket" | "afpacket-plain" => {
            let (a, b) = (format!("{p}p"), format!("{p}q"));
            let veth = Veth::new(&a, &b).unwrap();
            veth.move_to(&b, &ns).unwrap();
            ns.addr(&b, &cidr).unwrap();
            let port = if kind == "afpacket" {
                AfPacketPort::open(&a).unwrap()
            } else {
                // No vnet-hdr: the host must not send large segments (there is no way to
                // describe them), but its checksums stay partial.
                ns.exec(&["ethtool", "-K", &b, "tso", "off", "gso", "off"])
                    .unwrap();
                let config = AfPacketConfig {
                    vnet_hdr: false,
                    ..AfPacketConfig::default()
                };
                let port = AfPacketPort::open_with(&a, &config).unwrap();
                assert!(!port.features().vnet_hdr);
                port
            };
            Side {
                port: Box::new(port),
                _veth: Some(veth),
                ns,
            }
        }
        _ => {
            let t = format!("{p}t");
            let port = TapPort::create(&t).unwrap();
            ip(&["link", "set", &t, "netns", ns.name()]).unwrap();
            ns.addr(&t, &cidr).unwrap();
            Side {
                port: Box::new(port),
                _veth: None,
                ns,
            }
        }
    }
}

/// Sets the flag when dropped, so a copier thread stops also when the test body panics (and
/// the scope it runs in can end).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs the copier between the two sides' ports while `f` runs; returns `f`'s result and
/// what the copier moved.
fn with_copier<T>(
    s1: &mut Side,
    s2: &mut Side,
    f: impl FnOnce(&Netns, &Netns) -> T,
) -> (T, CopierStats) {
    let stop = AtomicBool::new(false);
    let (a, b) = (&mut s1.port, &mut s2.port);
    let (ns1, ns2) = (&s1.ns, &s2.ns);
    std::thread::scope(|scope| {
        let copier = scope.spawn(|| copier::run(a.as_mut(), b.as_mut(), &stop));
        let out = {
            let _stop = StopOnDrop(&stop);
            f(ns1, ns2)
        };
        (out, copier.join().unwrap().unwrap())
    })
}

fn tcp_stream(ns1: &Netns, ns2: &Netns, total: usize) -> (usize, Duration) {
    support::tcp_stream(ns1, ns2, H2, 5001, total).expect("tcp stream")
}

fn pings_and_tcp_cross(kind1: &str, kind2: &str) {
    let large = kind1 != "afpacket-plain" && kind2 != "afpacket-plain";
    let mut s1 = side(kind1, H1);
    let mut s2 = side(kind2, H2);
    const TOTAL: usize = 8 << 20;
    let ((answered, (good, took)), stats) = with_copier(&mut s1, &mut s2, |ns1, ns2| {
        let answered = ping(ns1, H2, Duration::from_secs(10)).unwrap();
        (answered, tcp_stream(ns1, ns2, TOTAL))
    });
    assert!(
        answered,
        "ns1 pings ns2 through the copier ({kind1} | {kind2})"
    );
    assert_eq!(good, TOTAL, "the TCP stream arrives intact");
    eprintln!(
        "{kind1} | copier | {kind2}: {TOTAL} B in {took:?} ({:.0} Mbit/s, debug build), {stats:?}",
        TOTAL as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
    assert!(stats.a_to_b > 0 && stats.b_to_a > 0);
    assert_eq!(
        stats.largest_frame > 1514,
        large,
        "TCP segments crossed as large frames when both ports take them (largest {} B)",
        stats.largest_frame
    );
    let (p1, p2) = (s1.port.stats(), s2.port.stats());
    assert_eq!(p1.rx_dropped + p2.rx_dropped, 0, "{p1:?} {p2:?}");
    assert_eq!(p1.tx_dropped + p2.tx_dropped, 0, "{p1:?} {p2:?}");
}

#[test]
fn copier_joins_two_hosts_over_af_packet() {
    needs_root();
    pings_and_tcp_cross("afpacket", "afpacket");
}

#[test]
fn copier_joins_two_hosts_over_tap() {
    needs_root();
    pings_and_tcp_cross("tap", "tap");
}

#[test]
fn copier_joins_a_tap_host_and_a_veth_host() {
    needs_root();
    pings_and_tcp_cross("tap", "afpacket");
}

/// Ports without vnet-hdr: partial checksums of the hosts' TCP segments (veth leaves them to
/// an offload) are located from the headers and completed in software.
#[test]
fn copier_without_vnet_hdr_completes_partial_checksums() {
    needs_root();
    roamer_test_support::require_tool("ethtool", "ethtool");
    pings_and_tcp_cross("afpacket-plain", "afpacket-plain");
}

#[test]
fn copier_stops_when_asked() {
    needs_root();
    let mut s1 = side("afpacket", H1);
    let mut s2 = side("afpacket", H2);
    let started = Instant::now();
    let (_, stats) = with_copier(&mut s1, &mut s2, |_, _| ());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stats.dropped, 0);
}

/// Frames per second the copier moves between two veth hosts, 64-byte frames from a raw
/// sender (run with `cargo test --release -p roamer-platforms --test copier -- --ignored
/// --nocapture`; on a 2-core machine sender, copier and kernel share the cores).
#[test]
#[ignore = "measurement, not a check"]
fn copier_pps_64_byte_frames() {
    needs_root();
    use roamer_test_support::ethernet_frame;
    let p = unique_prefix();
    let ns1 = Netns::new(&format!("{p}s")).unwrap();
    let ns2 = Netns::new(&format!("{p}r")).unwrap();
    let v1 = Veth::new(&format!("{p}a"), &format!("{p}b")).unwrap();
    let v2 = Veth::new(&format!("{p}c"), &format!("{p}d")).unwrap();
    v1.move_to(&v1.b, &ns1).unwrap();
    v2.move_to(&v2.b, &ns2).unwrap();
    for (ns, dev) in [(&ns1, &v1.b), (&ns2, &v2.b)] {
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.ip(&["link", "set", dev, "up"]).unwrap();
    }
    let mut a = AfPacketPort::open(&v1.a).unwrap();
    let mut b = AfPacketPort::open(&v2.a).unwrap();
    let mut tx = raw_in(&ns1, &v1.b);
    let stop = AtomicBool::new(false);
    let secs = 3.0;
    let (sent, stats) = std::thread::scope(|scope| {
        let copier = scope.spawn(|| copier::run(&mut a, &mut b, &stop));
        let guard = StopOnDrop(&stop);
        let frame = ethernet_frame([0x02, 0, 0, 0, 0, 9], tx.mac(), None, TEST_ETHERTYPE, &[9]);
        let mut slots = slots_with(&vec![frame; 64]);
        let mut sent = 0u64;
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < secs {
            sent += tx.send_batch(&mut slots).unwrap() as u64;
        }
        std::thread::sleep(Duration::from_millis(200));
        drop(guard);
        (sent, copier.join().unwrap().unwrap())
    });
    eprintln!(
        "sent {sent} 60-byte frames in {secs} s ({:.0} pps offered); copier moved {} ({:.0} pps), dropped {}",
        sent as f64 / secs,
        stats.a_to_b,
        stats.a_to_b as f64 / secs,
        stats.dropped
    );
}

/// Like the copier, but large segments from `a` are cut in software (`gso::segment`) before
/// they go out of `b`: the host behind `b` then gets wire-sized frames whose checksums its
/// stack verifies.
#[test]
fn segmenting_copy_delivers_a_tcp_stream_as_wire_sized_frames() {
    needs_root();
    use roamer_platforms::software::gso;
    use roamer_platforms::software::{FRAME_ROOM, FrameSlot, GSO_FRAME_ROOM};
    let mut s1 = side("tap", H1);
    let mut s2 = side("afpacket", H2);
    let stop = AtomicBool::new(false);
    let (a, b) = (&mut s1.port, &mut s2.port);
    let (ns1, ns2) = (&s1.ns, &s2.ns);
    let (good, largest_out, segmented) = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let mut rx = FrameSlot::batch(64, GSO_FRAME_ROOM);
            let mut cut = FrameSlot::batch(64, FRAME_ROOM);
            let (mut largest_out, mut segmented) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                let n = a.recv_batch(&mut rx).unwrap();
                for s in rx[..n].iter_mut() {
                    if s.gso.is_some_and(|g| g.is_segment_offload()) {
                        let k = gso::segment(s, &mut cut).unwrap();
                        segmented += 1;
                        largest_out = cut[..k].iter().map(|c| c.len).fold(largest_out, usize::max);
                        send_all(b.as_mut(), &mut cut[..k]);
                    } else {
                        s.complete_checksum().unwrap();
                        largest_out = largest_out.max(s.len);
                        send_all(b.as_mut(), std::slice::from_mut(s));
                    }
                }
                let m = b.recv_batch(&mut rx).unwrap();
                send_all(a.as_mut(), &mut rx[..m]);
                if n == 0 && m == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            (largest_out, segmented)
        });
        let (good, _) = {
            let _stop = StopOnDrop(&stop);
            assert!(ping(ns1, H2, Duration::from_secs(10)).unwrap());
            tcp_stream(ns1, ns2, 4 << 20)
        };
        let (largest_out, segmented) = worker.join().unwrap();
        (good, largest_out, segmented)
    });
    assert_eq!(good, 4 << 20, "the stream arrives intact");
    assert!(segmented > 0, "large segments were cut");
    assert!(
        largest_out <= 1514,
        "nothing larger than the wire went out ({largest_out})"
    );
}
