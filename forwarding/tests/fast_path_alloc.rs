//! The fast path allocates nothing per packet: once the tables hold what a flow needs (and the
//! rate-limited events were raised), switching, routing, LISP encapsulation and decapsulation
//! and a roaming host's packets go through `Pipeline::process` without one heap allocation.
//! A counting allocator (this test binary's global allocator) counts what the pipeline's own
//! thread allocates while it runs.

#![allow(unsafe_code)] // the counting global allocator below, and nothing else
#![allow(clippy::unwrap_used)] // fixtures of known-valid values

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use etherparse::PacketBuilder;
use roamer_forwarding::pipeline::{Frame, Pipeline, Settings, Verdict};
use roamer_hal::{L3Interface, Mac, PortId, TableEntry};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the measuring thread's allocations count (the test harness has others).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is passed to the system allocator unchanged; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HOST_B_IP: [u8; 4] = [10, 20, 0, 6];

fn udp(src_mac: Mac, dst_mac: Mac, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src, dst, 64)
        .udp(5000, 6000)
        .write(&mut out, &[0xab; 64])
        .unwrap();
    out
}

fn udp6(src_mac: Mac, dst_mac: Mac, src: &str, dst: &str) -> Vec<u8> {
    let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) = (ip(src), ip(dst)) else {
        unreachable!("IPv6 fixtures")
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv6(s.octets(), d.octets(), 64)
        .udp(5000, 6000)
        .write(&mut out, &[0xab; 64])
        .unwrap();
    out
}

/// A LISP data packet from the peer xTR (192.0.2.2) to our RLOC carrying `inner`.
fn lisp_data(inner: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x80, 0, 0, 1, 0, 0, 0, 0]; // N bit, a nonce, no LSBs, IID 0
    payload.extend_from_slice(&inner[14..]);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(PEER_RLOC_MAC.0, ROUTER_MAC.0)
        .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
        .udp(61000, 4341)
        .write(&mut out, &payload)
        .unwrap();
    out
}

/// The switch of the pipeline tests (with IPv6 on its SVIs) with host B resolved on VLAN 20, a LISP route and
/// map-cache entry for 172.16.1.0/24 via the peer, our EIDs 10.20.0.0/16 in the database, and
/// a dynamic-EID range 172.16.9.0/24 on VLAN 10's SVI (hosts that roamed in from elsewhere).
fn pipeline() -> Pipeline {
    let mut p = test_switch(Settings::default(), true);
    add_svi6(&mut p);
    let svi20 = L3Interface::Vlan(v(20));
    for addr in ["10.20.0.6", "2001:db8:14::6"] {
        add(
            &mut p,
            TableEntry::Neighbor {
                iface: svi20,
                ip: ip(addr),
                mac: HOST_B,
            },
        );
    }
    itr(&mut p);
    local_database(&mut p, "10.20.0.0/16");
    add(
        &mut p,
        TableEntry::DynamicEidRange {
            iface: L3Interface::Vlan(v(10)),
            map: "Roamer-1".into(),
            eid: "172.16.9.0/24".parse().unwrap(),
            extended_subnet: false,
            notify_group: None,
        },
    );
    p
}

/// Runs `frame` in from `port` through a reused buffer; the verdict.
fn run(p: &mut Pipeline, buf: &mut [u8], port: PortId, frame: &[u8], now: u64) -> Verdict {
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut f = Frame {
        buf,
        start: HEADROOM,
        len: frame.len(),
        large: false,
        gso_tcp: false,
        partial_csum: None,
    };
    p.process(port, None, &mut f, now).verdict
}

#[test]
fn switching_routing_lisp_and_a_roaming_host_allocate_nothing_per_packet() {
    let mut p = pipeline();
    let flows: Vec<(&str, PortId, Vec<u8>)> = vec![
        (
            "switched in VLAN 10",
            A,
            udp(HOST_A, HOST_B, [10, 10, 0, 5], [10, 10, 0, 6]),
        ),
        (
            "routed VLAN 10 -> 20",
            A,
            udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], HOST_B_IP),
        ),
        (
            "routed IPv6 VLAN 10 -> 20",
            A,
            udp6(HOST_A, ROUTER_MAC, "2001:db8:a::5", "2001:db8:14::6"),
        ),
        (
            "LISP-encapsulated",
            A,
            udp(HOST_A, ROUTER_MAC, [10, 10, 0, 5], [172, 16, 1, 9]),
        ),
        (
            "LISP-decapsulated",
            UPLINK,
            lisp_data(&udp(HOST_A, ROUTER_MAC, [172, 16, 1, 9], HOST_B_IP)),
        ),
        (
            "from a roamed host (dynamic EID)",
            A,
            udp(HOST_A, ROUTER_MAC, [172, 16, 9, 10], HOST_B_IP),
        ),
    ];
    let mut buf = vec![0u8; 4096];
    // Warm-up: host B's MAC learned on port B (VLAN 20) and on the trunk (VLAN 10, tagged),
    // then the flows' first packets (events, learning).
    run(
        &mut p,
        &mut buf,
        B,
        &udp(HOST_B, HOST_A, [10, 20, 0, 6], [10, 20, 0, 1]),
        0,
    );
    let mut tagged = udp(HOST_B, HOST_A, [10, 10, 0, 6], [10, 10, 0, 5]);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    run(&mut p, &mut buf, TRUNK, &tagged, 0);
    let mut warm = Vec::new();
    for (what, port, frame) in &flows {
        for now in 0..4 {
            warm.push((*what, run(&mut p, &mut buf, *port, frame, now)));
        }
    }
    let mut events = Vec::new();
    p.drain_events(&mut events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, roamer_hal::HalEvent::DynamicEidSeen { .. })),
        "the roamed host was not detected: {events:?}"
    );
    for (what, verdict) in &warm {
        assert!(
            matches!(verdict, Verdict::Forward { .. }),
            "{what}: not forwarded ({verdict:?}), so not a fast-path case"
        );
    }

    for (what, port, frame) in &flows {
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        for now in 10..1010 {
            run(&mut p, &mut buf, *port, frame, now);
        }
        COUNTING.with(|c| c.set(false));
        let n = ALLOCATIONS.load(Ordering::Relaxed);
        assert_eq!(n, 0, "{what}: {n} allocations in 1000 packets");
    }
}
