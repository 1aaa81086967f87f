//! Packets too large for their path: large segments cut for the tunnel, the tunnel MTU,
//! decapsulated TCP cut into segments, fragmentation needed, fragmentation.

use super::*;

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
