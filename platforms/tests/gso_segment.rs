//! Software segmentation of large TCP/UDP segments: every segment a complete frame (lengths,
//! IPv4 IDs, sequence numbers, flags, checksums), payload intact, refusals typed.

#![allow(clippy::unwrap_used)] // helpers shared by the tests

mod common;

use common::large_tcp;

use roamer_platforms::software::gso::{SegmentError, segment, segment_count};
use roamer_platforms::software::port::ones_complement_sum;
use roamer_platforms::software::{FRAME_ROOM, FrameSlot, GSO_FRAME_ROOM, GsoInfo, GsoType};

const ETH_HLEN: usize = 14;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

fn l4_checksum_ok(f: &[u8], ipv6: bool, l4: usize, proto: u8) -> bool {
    let l4_total = f.len() - l4;
    let mut pseudo = Vec::new();
    if ipv6 {
        pseudo.extend_from_slice(&f[ETH_HLEN + 8..ETH_HLEN + 40]);
        pseudo.extend_from_slice(&(l4_total as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
    } else {
        pseudo.extend_from_slice(&f[ETH_HLEN + 12..ETH_HLEN + 20]);
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(l4_total as u16).to_be_bytes());
    }
    pseudo.extend_from_slice(&f[l4..]);
    ones_complement_sum(&pseudo) == 0xffff
}

fn check_tcp(ipv6: bool) {
    let payload: Vec<u8> = (0..4500u32).map(|i| (i % 251) as u8).collect();
    let flags = TCP_PSH | TCP_FIN | TCP_CWR | 0x10;
    let src = large_tcp(ipv6, &payload, flags);
    assert_eq!(segment_count(&src), Ok(5));
    let mut out = FrameSlot::batch(8, FRAME_ROOM);
    assert_eq!(segment(&src, &mut out), Ok(5));
    let l4 = if ipv6 { 54 } else { 34 };
    let mut joined = Vec::new();
    for (i, s) in out[..5].iter().enumerate() {
        let f = s.frame();
        assert_eq!(s.vlan, Some(10));
        assert_eq!(s.gso, None);
        let chunk = if i < 4 { 1000 } else { 500 };
        assert_eq!(f.len(), l4 + 32 + chunk);
        if ipv6 {
            assert_eq!(u16::from_be_bytes([f[18], f[19]]) as usize, 32 + chunk);
        } else {
            assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, 20 + 32 + chunk);
            assert_eq!(u16::from_be_bytes([f[18], f[19]]), 0x1234 + i as u16);
            assert_eq!(
                ones_complement_sum(&f[14..34]),
                0xffff,
                "IPv4 header checksum"
            );
        }
        let seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]]);
        assert_eq!(seq, 0xffff_fff0u32.wrapping_add(1000 * i as u32));
        let fl = f[l4 + 13];
        assert_eq!(
            fl & (TCP_PSH | TCP_FIN) != 0,
            i == 4,
            "PSH/FIN on the last only"
        );
        assert_eq!(fl & TCP_CWR != 0, i == 0, "CWR on the first only");
        assert!(
            l4_checksum_ok(f, ipv6, l4, 6),
            "TCP checksum of segment {i}"
        );
        joined.extend_from_slice(&f[l4 + 32..]);
    }
    assert_eq!(joined, payload);
}

#[test]
fn tcp_v4_is_cut_with_right_headers() {
    check_tcp(false);
}

#[test]
fn tcp_v6_is_cut_with_right_headers() {
    check_tcp(true);
}

#[test]
fn udp_l4_is_cut_with_right_headers() {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let payload = vec![7u8; 2500];
    let total = (28 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&[0x10, 0x00, 0x10, 0x01, 0, 0, 0, 0]);
    f.extend_from_slice(&payload);
    let mut src = FrameSlot::new(GSO_FRAME_ROOM);
    src.set_frame(&f).unwrap();
    src.gso = Some(GsoInfo {
        gso_type: GsoType::UdpL4,
        ecn: false,
        gso_size: 1200,
        hdr_len: 42,
        csum: Some((34, 6)),
        data_valid: false,
    });
    let mut out = FrameSlot::batch(3, FRAME_ROOM);
    assert_eq!(segment(&src, &mut out), Ok(3));
    for (i, s) in out.iter().enumerate() {
        let f = s.frame();
        let chunk = [1200, 1200, 100][i];
        assert_eq!(u16::from_be_bytes([f[38], f[39]]) as usize, 8 + chunk);
        assert!(l4_checksum_ok(f, false, 34, 17));
    }
}

#[test]
fn refusals() {
    let src = large_tcp(false, &[0; 3000], 0x10);
    let mut two = FrameSlot::batch(2, FRAME_ROOM);
    assert_eq!(segment(&src, &mut two), Err(SegmentError::NoRoom));
    let mut tiny = FrameSlot::batch(3, 100);
    assert_eq!(segment(&src, &mut tiny), Err(SegmentError::NoRoom));
    let mut plain = FrameSlot::new(FRAME_ROOM);
    plain.set_frame(&[0; 60]).unwrap();
    assert_eq!(segment(&plain, &mut two), Err(SegmentError::NotLarge));
    assert_eq!(segment_count(&plain), Ok(1));
    let mut wrong = large_tcp(false, &[0; 3000], 0x10);
    if let Some(g) = wrong.gso.as_mut() {
        g.gso_type = GsoType::TcpV6;
    }
    assert_eq!(segment(&wrong, &mut two), Err(SegmentError::Malformed));
    let mut zero = large_tcp(true, &[0; 3000], 0x10);
    if let Some(g) = zero.gso.as_mut() {
        g.gso_size = 0;
    }
    assert_eq!(segment(&zero, &mut two), Err(SegmentError::NoSegmentSize));
}
