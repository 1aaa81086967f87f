//! Tests of cutting large segments (`segment`, `segment_to_fit`, `InPlaceCut`) and of
//! making and growing TCP offload frames (`tcp_offload`, `append_tcp`).

use super::*;
use crate::software::port::GSO_FRAME_ROOM;
use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, TcpSlice};

const SEQ: u32 = 0xffff_f000; // wraps within the segment
const ID: u16 = 0xfffe; // wraps too

/// Ethernet + IPv4 (DF) or IPv6 + TCP with 12 octets of options (32-octet header) and
/// `payload`; ACK with `flags`; the TCP checksum complete.
fn tcp_frame(ipv6: bool, payload: &[u8], flags: u8) -> Vec<u8> {
    let addrs = if ipv6 {
        ["2001:db8:10::5", "2001:db8:20::6"]
    } else {
        ["10.10.0.5", "10.20.0.6"]
    };
    let mut f = super::test_frames::eth_ip(addrs, 6, 32 + payload.len(), ID);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&5001u16.to_be_bytes());
    f.extend_from_slice(&SEQ.to_be_bytes());
    f.extend_from_slice(&77u32.to_be_bytes());
    f.extend_from_slice(&[0x80, 0x10 | flags, 0x01, 0xf5, 0, 0, 0, 0]);
    f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    f.extend_from_slice(payload);
    let l4 = if ipv6 { 54 } else { 34 };
    let sum = checksum_of(&f, ipv6, l4);
    f[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The TCP checksum of the frame, computed from scratch by etherparse.
fn checksum_of(f: &[u8], ipv6: bool, l4: usize) -> u16 {
    let tcp = TcpSlice::from_slice(&f[l4..]).unwrap();
    if ipv6 {
        let ip = Ipv6HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
        tcp.calc_checksum_ipv6(ip.source(), ip.destination())
            .unwrap()
    } else {
        let ip = Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
        tcp.calc_checksum_ipv4(ip.source(), ip.destination())
            .unwrap()
    }
}

/// The frame as a large segment of `gso_size` with a partial checksum, as a vnet-hdr port
/// hands it over.
fn large(ipv6: bool, f: &[u8], gso_size: u16) -> FrameSlot {
    let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
    slot.set_frame(f).unwrap();
    let l4 = if ipv6 { 54 } else { 34 };
    // Partial: the pseudo-header sum in the field.
    tcp_offload(&mut slot, gso_size).unwrap();
    assert_eq!(slot.gso.unwrap().csum, Some((l4 as u16, 16)));
    slot
}

/// Checks every piece and returns the payload sizes.
fn check_pieces(ipv6: bool, src: &[u8], pieces: &[FrameSlot], max_ip_len: usize) -> Vec<usize> {
    let l4 = if ipv6 { 54 } else { 34 };
    let hdr = l4 + 32;
    let mut joined = Vec::new();
    let mut sizes = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let f = p.frame();
        assert_eq!(p.gso, None, "complete frames");
        let chunk = f.len() - hdr;
        sizes.push(chunk);
        if ipv6 {
            let ip = Ipv6HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
            assert_eq!(usize::from(ip.payload_length()), 32 + chunk);
        } else {
            let ip = Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
            assert_eq!(usize::from(ip.total_len()), 20 + 32 + chunk);
            assert_eq!(ip.identification(), ID.wrapping_add(i as u16));
            assert!(ip.dont_fragment());
            assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
        }
        assert!(f.len() - ETH_HLEN <= max_ip_len.max(hdr - ETH_HLEN + 1000));
        let tcp = TcpSlice::from_slice(&f[l4..]).unwrap();
        assert_eq!(
            tcp.sequence_number(),
            SEQ.wrapping_add(joined.len() as u32),
            "piece {i}"
        );
        assert_eq!(tcp.acknowledgment_number(), 77);
        assert!(tcp.ack());
        let last = i + 1 == pieces.len();
        assert_eq!(tcp.psh(), last, "PSH on the last piece only");
        assert_eq!(tcp.fin(), last, "FIN on the last piece only");
        assert_eq!(tcp.cwr(), i == 0, "CWR on the first piece only");
        assert_eq!(tcp.options(), &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(tcp.checksum(), checksum_of(f, ipv6, l4), "piece {i}");
        joined.extend_from_slice(tcp.payload());
    }
    assert_eq!(joined, src[hdr..], "the payload, whole and in order");
    sizes
}

fn cut(ipv6: bool, payload: usize, max_ip_len: usize) -> Vec<usize> {
    let data: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
    let f = tcp_frame(ipv6, &data, TCP_PSH | TCP_FIN | TCP_CWR);
    let src = large(ipv6, &f, 1000);
    let mut out = FrameSlot::batch(16, 9216);
    let n = segment_to_fit(&src, max_ip_len, &mut out).unwrap();
    check_pieces(ipv6, &f, &out[..n], max_ip_len)
}

#[test]
fn tcp_pieces_carry_as_many_segments_as_fit_the_tunnel() {
    for ipv6 in [false, true] {
        let hdr = if ipv6 { 40 + 32 } else { 20 + 32 };
        // Three segments' worth fit 3500 octets of IP.
        assert_eq!(cut(ipv6, 10_000, 3500), [3000, 3000, 3000, 1000]);
        // Exactly two.
        assert_eq!(cut(ipv6, 4500, hdr + 2000), [2000, 2000, 500]);
        // One octet short of two: one segment a piece.
        assert_eq!(cut(ipv6, 4500, hdr + 1999), [1000, 1000, 1000, 1000, 500]);
        // A jumbo tunnel: 8 segments a piece.
        assert_eq!(cut(ipv6, 20_000, 8964), [8000, 8000, 4000]);
        // Room for less than one segment: one segment a piece, as `segment` cuts.
        assert_eq!(cut(ipv6, 2500, 500), [1000, 1000, 500]);
        assert_eq!(cut(ipv6, 2500, 0), [1000, 1000, 500]);
        // A segment smaller than a piece is one piece.
        assert_eq!(cut(ipv6, 700, 8964), [700]);
    }
}

#[test]
fn udp_segments_keep_their_datagram_size() {
    let mut f = vec![0u8; ETH_HLEN];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0x0b, 0xd4, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 10, 0, 5, 10, 20, 0, 6]);
    f.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, 0x0b, 0xc0, 0, 0]);
    f.resize(ETH_HLEN + 3028, 7);
    let mut src = FrameSlot::new(GSO_FRAME_ROOM);
    src.set_frame(&f).unwrap();
    src.gso = Some(GsoInfo {
        gso_type: GsoType::UdpL4,
        ecn: false,
        gso_size: 1000,
        hdr_len: 42,
        csum: None,
        data_valid: false,
    });
    let mut out = FrameSlot::batch(8, 9216);
    assert_eq!(segment_to_fit(&src, 8964, &mut out), Ok(3));
    assert!(out[..3].iter().all(|p| p.frame().len() == 42 + 1000));
}

#[test]
fn too_few_or_too_small_slots_are_refused() {
    let data = vec![1u8; 10_000];
    let f = tcp_frame(false, &data, 0);
    let src = large(false, &f, 1000);
    let mut few = FrameSlot::batch(3, 9216);
    assert_eq!(
        segment_to_fit(&src, 3500, &mut few),
        Err(SegmentError::NoRoom)
    );
    let mut small = FrameSlot::batch(16, 2048);
    assert_eq!(
        segment_to_fit(&src, 3500, &mut small),
        Err(SegmentError::NoRoom)
    );
}

#[test]
fn tcp_offload_makes_one_gso_frame_with_a_partial_checksum() {
    for ipv6 in [false, true] {
        let l4 = if ipv6 { 54 } else { 34 };
        let data: Vec<u8> = (0..5000).map(|i| (i % 13) as u8).collect();
        let f = tcp_frame(ipv6, &data, TCP_PSH);
        let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
        slot.set_frame(&f).unwrap();
        tcp_offload(&mut slot, 1448).unwrap();
        let info = slot.gso.unwrap();
        assert_eq!(
            info.gso_type,
            if ipv6 { GsoType::TcpV6 } else { GsoType::TcpV4 }
        );
        assert_eq!(
            (info.gso_size, info.hdr_len, info.csum, info.ecn),
            (1448, (l4 + 32) as u16, Some((l4 as u16, 16)), false)
        );
        // The field holds the pseudo-header sum: completing it gives the full checksum back.
        let mut whole = FrameSlot::new(GSO_FRAME_ROOM);
        whole.set_frame(slot.frame()).unwrap();
        whole.gso = slot.gso;
        whole.complete_checksum().unwrap();
        assert_eq!(whole.frame(), &f[..]);
        // And the kernel's cut, done here: 1448-octet segments, all valid.
        let mut out = FrameSlot::batch(8, 2048);
        let n = segment(&slot, &mut out).unwrap();
        assert_eq!(n, 4);
        let sizes: Vec<usize> = out[..n].iter().map(|s| s.frame().len() - l4 - 32).collect();
        assert_eq!(sizes, [1448, 1448, 1448, 656]);
        for s in &out[..n] {
            let tcp = TcpSlice::from_slice(&s.frame()[l4..]).unwrap();
            assert_eq!(tcp.checksum(), checksum_of(s.frame(), ipv6, l4));
        }
    }
}

#[test]
fn tcp_offload_flags_ecn_and_refuses_what_is_not_one_tcp_packet() {
    let f = tcp_frame(false, &[9u8; 3000], TCP_CWR);
    let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
    slot.set_frame(&f).unwrap();
    tcp_offload(&mut slot, 1448).unwrap();
    assert!(slot.gso.unwrap().ecn, "CWR: ECN");
    assert_eq!(tcp_offload(&mut slot, 0), Err(SegmentError::NoSegmentSize));
    // A fragment.
    let mut frag = f.clone();
    frag[ETH_HLEN + 6] = 0x20;
    slot.set_frame(&frag).unwrap();
    assert_eq!(tcp_offload(&mut slot, 1448), Err(SegmentError::Malformed));
    // UDP.
    let mut udp = f.clone();
    udp[ETH_HLEN + 9] = 17;
    slot.set_frame(&udp).unwrap();
    assert_eq!(tcp_offload(&mut slot, 1448), Err(SegmentError::Malformed));
    // Padding behind the packet.
    let mut padded = f.clone();
    padded.extend_from_slice(&[0; 4]);
    slot.set_frame(&padded).unwrap();
    assert_eq!(tcp_offload(&mut slot, 1448), Err(SegmentError::Malformed));
    assert_eq!(slot.gso, None, "nothing set on a refusal");
}

#[test]
fn a_tcp_header_shorter_than_20_octets_is_malformed() {
    // Data offset 2 (8 octets): the pieces' flags and checksum would be written into the
    // payload (found by the gso fuzz target), or past the end of a short piece.
    for ipv6 in [false, true] {
        let l4 = if ipv6 { 54 } else { 34 };
        let mut f = tcp_frame(ipv6, &[7u8; 3000], 0);
        let mut slot = large(ipv6, &f, 1000);
        slot.frame_mut()[l4 + 12] = 0x20;
        let mut out = FrameSlot::batch(8, 9216);
        assert_eq!(segment(&slot, &mut out), Err(SegmentError::Malformed));
        assert_eq!(segment_count(&slot), Err(SegmentError::Malformed));
        assert!(matches!(
            InPlaceCut::new(&slot, 0),
            Err(SegmentError::Malformed)
        ));
        let held = slot.frame().to_vec();
        assert_eq!(append_tcp(&mut slot, &f), Err(SegmentError::Malformed));
        assert_eq!(slot.frame(), &held[..]);
        f[l4 + 12] = 0x20;
        let mut plain = FrameSlot::new(GSO_FRAME_ROOM);
        plain.set_frame(&f).unwrap();
        assert_eq!(tcp_offload(&mut plain, 1000), Err(SegmentError::Malformed));
    }
}

/// The pieces of a large segment cut to fit `max_ip_len`, as complete frames.
fn pieces_of(ipv6: bool, payload: usize, flags: u8, max_ip_len: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let data: Vec<u8> = (0..payload).map(|i| (i % 239) as u8).collect();
    let f = tcp_frame(ipv6, &data, flags);
    let src = large(ipv6, &f, 1000);
    let mut out = FrameSlot::batch(80, 9216);
    let n = segment_to_fit(&src, max_ip_len, &mut out).unwrap();
    (f, out[..n].iter().map(|p| p.frame().to_vec()).collect())
}

#[test]
fn appended_pieces_make_the_large_segment_again() {
    for ipv6 in [false, true] {
        let l4 = if ipv6 { 54 } else { 34 };
        let (whole, pieces) = pieces_of(ipv6, 20_000, TCP_PSH, 4000);
        assert_eq!(pieces.len(), 7, "6 of 3000 octets, 2000");
        let mut held = FrameSlot::new(GSO_FRAME_ROOM);
        held.set_frame(&pieces[0]).unwrap();
        tcp_offload(&mut held, 1000).unwrap();
        for p in &pieces[1..] {
            append_tcp(&mut held, p).unwrap();
        }
        let info = held.gso.unwrap();
        assert_eq!((info.gso_size, info.csum), (1000, Some((l4 as u16, 16))));
        // Completed as the kernel would: the sender's segment, flags and all (PSH from the
        // last piece; the IPv4 ID is the first piece's, which is the segment's).
        held.complete_checksum().unwrap();
        assert_eq!(held.frame(), &whole[..]);
    }
}

#[test]
fn only_the_continuation_of_the_same_stream_is_appended() {
    let (_, pieces) = pieces_of(false, 12_000, 0, 3500);
    let held_of = |first: &[u8]| {
        let mut held = FrameSlot::new(GSO_FRAME_ROOM);
        held.set_frame(first).unwrap();
        tcp_offload(&mut held, 1000).unwrap();
        held
    };
    let refused = |first: &[u8], next: &[u8]| {
        let mut held = held_of(first);
        let before = held.frame().to_vec();
        let r = append_tcp(&mut held, next);
        assert_eq!(held.frame(), &before[..], "unchanged when refused");
        r
    };
    let ok = |first: &[u8], next: &[u8]| append_tcp(&mut held_of(first), next);
    assert_eq!(ok(&pieces[0], &pieces[1]), Ok(()));
    // Not the next one: a gap, or the same again.
    assert_eq!(
        refused(&pieces[0], &pieces[2]),
        Err(SegmentError::Malformed)
    );
    assert_eq!(
        refused(&pieces[0], &pieces[0]),
        Err(SegmentError::Malformed)
    );
    let changed = |at: usize, v: u8| {
        let mut p = pieces[1].clone();
        p[at] ^= v;
        p
    };
    for (what, at) in [
        ("destination MAC", 0),
        ("ToS", 15),
        ("TTL", 22),
        ("source address", 26),
        ("destination port", 37),
        ("acknowledgment", 45),
        ("window", 49),
        ("timestamp option", 63),
    ] {
        assert_eq!(
            refused(&pieces[0], &changed(at, 1)),
            Err(SegmentError::Malformed),
            "{what}"
        );
    }
    // SYN, FIN, RST, URG, CWR on the next one; PSH on the one held.
    for flag in [0x02, TCP_FIN, 0x04, 0x20, TCP_CWR] {
        assert_eq!(
            refused(&pieces[0], &changed(47, flag)),
            Err(SegmentError::Malformed)
        );
    }
    let mut pushed = pieces[0].clone();
    pushed[47] |= TCP_PSH;
    assert_eq!(refused(&pushed, &pieces[1]), Err(SegmentError::Malformed));
    // PSH on the next one is fine and carries over.
    let mut held = held_of(&pieces[0]);
    append_tcp(&mut held, &changed(47, TCP_PSH)).unwrap();
    assert_eq!(held.frame()[47] & TCP_PSH, TCP_PSH);
    // Nothing beyond the largest IP packet.
    let mut held = held_of(&tcp_frame(false, &[1u8; 60_000], 0));
    let mut next = tcp_frame(false, &[2u8; 6_000], 0);
    next[38..42].copy_from_slice(&SEQ.wrapping_add(60_000).to_be_bytes());
    let before = held.frame().to_vec();
    assert_eq!(append_tcp(&mut held, &next), Err(SegmentError::NoRoom));
    assert_eq!(held.frame(), &before[..]);
    next.truncate(next.len() - 600);
    next[16..18].copy_from_slice(&((20 + 32 + 5_400) as u16).to_be_bytes());
    assert_eq!(
        append_tcp(&mut held, &next),
        Ok(()),
        "65,452 octets of IP fit"
    );
    // A frame that is no TCP GSO frame takes nothing.
    let mut plain = FrameSlot::new(GSO_FRAME_ROOM);
    plain.set_frame(&pieces[0]).unwrap();
    assert_eq!(
        append_tcp(&mut plain, &pieces[1]),
        Err(SegmentError::NotLarge)
    );
}

#[test]
fn in_place_pieces_are_the_copied_ones() {
    for ipv6 in [false, true] {
        for max_ip_len in [0, 3500, 8964, 65_535] {
            let data: Vec<u8> = (0..30_000).map(|i| (i % 233) as u8).collect();
            let f = tcp_frame(ipv6, &data, TCP_PSH | TCP_CWR);
            let src = large(ipv6, &f, 1000);
            let mut copied = FrameSlot::batch(40, 9216 * 4);
            let n = segment_to_fit(&src, max_ip_len, &mut copied).unwrap();
            let mut slot = large(ipv6, &f, 1000);
            slot.vlan = Some(10);
            let mut cut = InPlaceCut::new(&slot, max_ip_len).unwrap();
            assert_eq!(cut.count(), n);
            let mut made = 0;
            while cut.next_piece(&mut slot) {
                assert_eq!(slot.frame(), copied[made].frame(), "piece {made}");
                assert_eq!((slot.vlan, slot.gso), (Some(10), None));
                // What the pipeline may do to a piece: rewrite it, encapsulate it (write in
                // front of it), before the next one is made.
                let start = slot.start;
                slot.buf[start - 64..start + 20].fill(0xee);
                made += 1;
            }
            assert_eq!(made, n);
            assert!(!cut.next_piece(&mut slot), "done");
        }
    }
}
