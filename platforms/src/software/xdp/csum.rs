//! Partial checksums on AF_XDP receive. A sender on the same host (a veth peer whose
//! `tx-checksumming` is on) leaves TCP and UDP checksums to the device: the frame carries only
//! the pseudo-header sum in the checksum field. AF_PACKET says so (`TP_STATUS_CSUMNOTREADY`,
//! or the vnet header); AF_XDP has no such flag. A frame whose field holds exactly its
//! pseudo-header sum and whose checksum does not verify is such a frame: it gets its
//! [`GsoInfo::csum`] like AF_PACKET's, and the egress completes it (or hands it to a kernel
//! that does). A frame whose checksum verifies is never touched; the test costs a 12- or
//! 36-octet sum per TCP/UDP frame, the full sum only for the frames that look partial.

use super::super::gso;
use super::super::port::{GsoInfo, ones_complement_sum};

const ETH_HLEN: usize = 14;

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum offload to record for `frame` (untagged), if its TCP/UDP checksum is partial.
pub(super) fn partial(frame: &[u8]) -> Option<GsoInfo> {
    let info = gso::partial_checksum(frame)?;
    let (start, offset) = info.csum?;
    let (l4, field_at) = (usize::from(start), usize::from(start) + usize::from(offset));
    let field = u16::from_be_bytes([*frame.get(field_at)?, *frame.get(field_at + 1)?]);
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    // The pseudo header: addresses, protocol, L4 length (from the IP header: the frame may be
    // padded to the Ethernet minimum).
    let (addrs, proto, l4_len) = if ethertype == 0x0800 {
        let ip = frame.get(ETH_HLEN..l4)?;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        (&ip[12..20], ip[9], total.checked_sub(ip.len())?)
    } else {
        let ip = frame.get(ETH_HLEN..ETH_HLEN + 40)?;
        let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        (&ip[8..40], ip[6], payload)
    };
    if proto == 17 && field == 0 {
        // UDP over IPv4 without a checksum.
        return None;
    }
    let l4_end = l4.checked_add(l4_len)?;
    let segment = frame.get(l4..l4_end)?;
    let len = u32::try_from(l4_len).ok()?;
    let pseudo = fold(
        u32::from(ones_complement_sum(addrs)) + u32::from(proto) + (len >> 16) + (len & 0xffff),
    );
    if field != pseudo {
        return None;
    }
    // It looks partial: unless the checksum verifies as it is (1 frame in 65536 may carry
    // its pseudo-header sum as a real checksum), it is.
    let full = fold(u32::from(pseudo) + u32::from(ones_complement_sum(segment)));
    (full != 0xffff).then_some(info)
}

/// LISP data (UDP 4341) whose inner TCP/UDP checksum is partial — a kernel ITR on this host
/// (roamer's eBPF encapsulation) encapsulated a packet whose sender left the checksum to the
/// offload, and AF_XDP carries no flag for it — gets the inner checksum completed in place, so
/// the packet decapsulated here is whole. Only a field that holds exactly the inner
/// pseudo-header sum and does not verify is written.
pub(super) fn complete_inner_of_lisp(frame: &mut [u8]) {
    let Some(inner) = lisp_inner_start(frame) else {
        return;
    };
    let Some((field_at, l4, l4_end, pseudo)) = inner_partial_field(frame, inner) else {
        return;
    };
    let full = fold(u32::from(pseudo) + u32::from(ones_complement_sum(&frame[l4..l4_end])));
    if full == 0xffff {
        return;
    }
    // The field holds the pseudo-header sum: the one's complement of the segment's sum with
    // it in place is the checksum (0 is sent as 0xffff).
    let sum = !fold(u32::from(ones_complement_sum(&frame[l4..l4_end])));
    let sum = if sum == 0 { 0xffff } else { sum };
    frame[field_at..field_at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Where the inner IP packet of a LISP data packet (outer IPv4 or IPv6, UDP to 4341) starts.
fn lisp_inner_start(frame: &[u8]) -> Option<usize> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let udp = match ethertype {
        0x0800 => {
            let vihl = *frame.get(ETH_HLEN)?;
            (frame.get(ETH_HLEN + 9) == Some(&17)).then_some(())?;
            ETH_HLEN + usize::from(vihl & 0x0f) * 4
        }
        0x86dd => {
            (frame.get(ETH_HLEN + 6) == Some(&17)).then_some(())?;
            ETH_HLEN + 40
        }
        _ => return None,
    };
    let dport = u16::from_be_bytes([*frame.get(udp + 2)?, *frame.get(udp + 3)?]);
    (dport == 4341).then_some(udp + 8 + 8)
}

/// The inner packet's TCP/UDP checksum field, its segment and pseudo-header sum, when the field
/// holds exactly that sum.
fn inner_partial_field(frame: &[u8], l3: usize) -> Option<(usize, usize, usize, u16)> {
    let version = frame.get(l3)? >> 4;
    let (addrs, proto, l4, l4_len) = match version {
        4 => {
            let ihl = usize::from(frame.get(l3)? & 0x0f) * 4;
            let ip = frame.get(l3..l3 + ihl)?;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            // A fragment's checksum is not in this packet alone.
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            (frag & 0x3fff == 0).then_some(())?;
            (&ip[12..20], ip[9], l3 + ihl, total.checked_sub(ihl)?)
        }
        6 => {
            let ip = frame.get(l3..l3 + 40)?;
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (&ip[8..40], ip[6], l3 + 40, payload)
        }
        _ => return None,
    };
    let field_at = match proto {
        6 => l4 + 16,
        17 => l4 + 6,
        _ => return None,
    };
    let l4_end = l4.checked_add(l4_len)?;
    frame.get(l4..l4_end)?;
    let field = u16::from_be_bytes([*frame.get(field_at)?, *frame.get(field_at + 1)?]);
    if proto == 17 && field == 0 && version == 4 {
        return None;
    }
    let len = u32::try_from(l4_len).ok()?;
    let pseudo = fold(
        u32::from(ones_complement_sum(addrs)) + u32::from(proto) + (len >> 16) + (len & 0xffff),
    );
    (field == pseudo).then_some((field_at, l4, l4_end, pseudo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::port::FrameSlot;

    /// Ethernet + IPv4 + UDP (or TCP) with `payload`, checksum field = pseudo-header sum.
    fn partial_frame(proto: u8, payload: &[u8]) -> Vec<u8> {
        let l4_hdr = if proto == 6 { 20 } else { 8 };
        let l4_len = l4_hdr + payload.len();
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let total = (20 + l4_len) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        let mut l4 = vec![0u8; l4_hdr];
        l4[0..2].copy_from_slice(&1234u16.to_be_bytes());
        l4[2..4].copy_from_slice(&80u16.to_be_bytes());
        if proto == 6 {
            l4[12] = 0x50;
        } else {
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        let len = l4_len as u32;
        let pseudo = fold(
            u32::from(ones_complement_sum(&[10, 0, 0, 1, 10, 0, 0, 2])) + u32::from(proto) + len,
        );
        let at = if proto == 6 { 16 } else { 6 };
        l4[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        f.extend_from_slice(&l4);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_partial_checksum_is_found_and_completing_it_verifies() {
        for proto in [6u8, 17] {
            let mut f = partial_frame(proto, b"some payload bytes");
            // Padded to the Ethernet minimum (and beyond, as a short frame would be).
            f.resize(f.len().max(60), 0);
            let info = partial(&f).expect("partial");
            let mut slot = FrameSlot::new(2048);
            slot.set_frame(&f).unwrap();
            slot.gso = Some(info);
            slot.complete_checksum().unwrap();
            assert_eq!(partial(slot.frame()), None, "complete now (proto {proto})");
            // Verifies: pseudo header + segment sum to all ones.
            let l4 = &slot.frame()[34..34 + (if proto == 6 { 20 } else { 8 }) + 18];
            let len = l4.len() as u32;
            let sum = fold(
                u32::from(ones_complement_sum(&[10, 0, 0, 1, 10, 0, 0, 2]))
                    + u32::from(proto)
                    + len
                    + u32::from(ones_complement_sum(l4)),
            );
            assert_eq!(sum, 0xffff);
        }
    }

    #[test]
    fn complete_or_absent_checksums_are_left_alone() {
        let mut f = partial_frame(17, b"abc");
        f[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(partial(&f), None, "UDP without a checksum");
        let mut f = partial_frame(6, b"abcdef");
        f[50] ^= 0x55;
        assert_eq!(
            partial(&f),
            None,
            "a field that is not the pseudo-header sum"
        );
        assert_eq!(partial(&f[..20]), None, "a runt");
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(partial(&arp), None);
    }

    /// A LISP packet around a TCP segment whose checksum holds only the pseudo-header sum (a
    /// same-host kernel ITR's encapsulation): completed in place, and it then verifies; a
    /// complete one is left alone.
    #[test]
    fn a_partial_inner_checksum_of_a_lisp_packet_is_completed() {
        let inner = partial_frame(6, b"lisp inner payload");
        let inner_ip = &inner[ETH_HLEN..];
        let mut f = inner[..ETH_HLEN].to_vec();
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + 8 + inner_ip.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        let udp_len = (8 + 8 + inner_ip.len()) as u16;
        f.extend_from_slice(&[0x30, 0x39, 0x10, 0xf5]);
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0]);
        f.extend_from_slice(inner_ip);
        let l3 = ETH_HLEN + 20 + 16;
        assert_eq!(lisp_inner_start(&f), Some(l3));
        assert!(inner_partial_field(&f, l3).is_some(), "looks partial");
        complete_inner_of_lisp(&mut f);
        let l4 = l3 + 20;
        let (src_dst, len) = (&f[l3 + 12..l3 + 20], (f.len() - l4) as u32);
        let pseudo = u32::from(ones_complement_sum(src_dst)) + 6 + len;
        let full = fold(pseudo + u32::from(ones_complement_sum(&f[l4..])));
        assert_eq!(full, 0xffff, "the inner TCP checksum verifies");
        let done = f.clone();
        complete_inner_of_lisp(&mut f);
        assert_eq!(f, done, "a complete checksum is left alone");
    }
}
