//! Tests of `append_udp`.

use super::*;
use crate::software::port::GSO_FRAME_ROOM;
use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, UdpSlice};

/// Ethernet + IPv4 (DF, no options) or IPv6 + UDP 5000 -> `dport` with `payload`; the UDP
/// checksum 0 (IPv4) or complete.
fn datagram(ipv6: bool, dport: u16, id: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let addrs = if ipv6 {
        ["2001:db8::1", "2001:db8::2"]
    } else {
        ["192.0.2.1", "192.0.2.2"]
    };
    let mut f = super::test_frames::eth_ip(addrs, 17, udp_len, id);
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    if ipv6 {
        let ip = Ipv6HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
        let (src, dst) = (ip.source(), ip.destination());
        let sum = UdpSlice::from_slice(&f[54..])
            .unwrap()
            .to_header()
            .calc_checksum_ipv6_raw(src, dst, payload)
            .unwrap();
        f[60..62].copy_from_slice(&sum.to_be_bytes());
    }
    f
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (k * 7 + i * 31) as u8).collect()
}

fn slot(f: &[u8]) -> FrameSlot {
    let mut s = FrameSlot::new(GSO_FRAME_ROOM);
    s.set_frame(f).unwrap();
    s
}

#[test]
fn a_train_of_datagrams_is_cut_back_into_the_same_datagrams() {
    for ipv6 in [false, true] {
        let l4 = if ipv6 { 54 } else { 34 };
        let sizes = [1400, 1400, 1400, 1400, 333];
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| datagram(ipv6, 4341, 0xfffe, &payload(i, n)))
            .collect();
        let mut held = slot(&frames[0]);
        for f in &frames[1..] {
            append_udp(&mut held, f).unwrap();
        }
        let gso = held.gso.unwrap();
        assert_eq!(gso.gso_type, GsoType::UdpL4);
        assert_eq!(gso.gso_size, 1400);
        assert_eq!(gso.csum, Some((l4 as u16, 6)));
        assert_eq!(usize::from(gso.hdr_len), l4 + 8);
        let total: usize = sizes.iter().sum();
        assert_eq!(held.frame().len(), l4 + 8 + total);
        if !ipv6 {
            let ip = Ipv4HeaderSlice::from_slice(&held.frame()[ETH_HLEN..]).unwrap();
            assert_eq!(usize::from(ip.total_len()), 28 + total);
            assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
        }
        // What the kernel makes of it (our own USO cutter does the same).
        let mut out = FrameSlot::batch(8, 9216);
        let n = segment(&held, &mut out).unwrap();
        assert_eq!(n, sizes.len());
        for (i, piece) in out[..n].iter().enumerate() {
            let f = piece.frame();
            let udp = UdpSlice::from_slice(&f[l4..]).unwrap();
            assert_eq!(udp.payload(), payload(i, sizes[i]), "datagram {i}");
            assert_eq!(udp.destination_port(), 4341);
            assert_eq!(usize::from(udp.length()), 8 + sizes[i]);
            if ipv6 {
                let ip = Ipv6HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
                let want = udp
                    .to_header()
                    .calc_checksum_ipv6(&ip.to_header(), udp.payload())
                    .unwrap();
                assert_eq!(udp.checksum(), want);
            } else {
                let ip = Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
                assert_eq!(ip.identification(), 0xfffeu16.wrapping_add(i as u16));
                assert!(ip.dont_fragment());
                let want = udp
                    .to_header()
                    .calc_checksum_ipv4(&ip.to_header(), udp.payload())
                    .unwrap();
                assert_eq!(udp.checksum(), want);
            }
        }
    }
}

#[test]
fn only_full_matching_datagrams_join() {
    for ipv6 in [false, true] {
        let first = datagram(ipv6, 4341, 1, &payload(0, 1000));
        let mut held = slot(&first);
        let before = held.frame().to_vec();
        // Another destination port, a larger datagram, an empty one.
        for refused in [
            datagram(ipv6, 4342, 2, &payload(1, 1000)),
            datagram(ipv6, 4341, 2, &payload(1, 1001)),
            datagram(ipv6, 4341, 2, &[]),
        ] {
            assert_eq!(
                append_udp(&mut held, &refused),
                Err(SegmentError::Malformed)
            );
            assert_eq!(held.frame(), before, "left as it was");
            assert_eq!(held.gso, None);
        }
        // A shorter one joins and closes the train.
        append_udp(&mut held, &datagram(ipv6, 4341, 2, &payload(1, 500))).unwrap();
        assert_eq!(
            append_udp(&mut held, &datagram(ipv6, 4341, 3, &payload(2, 500))),
            Err(SegmentError::Malformed)
        );
        // A frame that is not one whole UDP datagram.
        let mut cut_short = datagram(ipv6, 4341, 4, &payload(3, 1000));
        cut_short.truncate(cut_short.len() - 1);
        let mut other = slot(&first);
        assert_eq!(
            append_udp(&mut other, &cut_short),
            Err(SegmentError::Malformed)
        );
    }
}

#[test]
fn a_train_stays_within_an_ip_packet_and_the_segment_limit() {
    // 1400-octet datagrams: 46 fit 65535 octets of IPv4.
    let mut held = slot(&datagram(false, 4341, 1, &payload(0, 1400)));
    let mut joined = 1;
    while append_udp(&mut held, &datagram(false, 4341, 1, &payload(joined, 1400))).is_ok() {
        joined += 1;
    }
    assert_eq!(joined, (65535 - 28) / 1400);
    assert!(held.frame().len() - ETH_HLEN <= 65535);
    // 100-octet datagrams: the segment limit first.
    let mut held = slot(&datagram(true, 4341, 1, &payload(0, 100)));
    let mut joined = 1;
    while append_udp(&mut held, &datagram(true, 4341, 1, &payload(joined, 100))).is_ok() {
        joined += 1;
    }
    assert_eq!(joined, MAX_UDP_SEGMENTS);
}
