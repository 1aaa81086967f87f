//! The other direction and its checksum helper: locating a partial checksum, turning a TCP
//! packet into one segmentation-offload frame, and growing such a frame (TCP or UDP) by the
//! packets that continue it, as GRO and `UDP_SEGMENT` do.

use super::{ETH_HLEN, Layout, SegmentError, TCP_ACK, TCP_CWR, TCP_PSH};
use crate::software::port::{FrameSlot, GsoInfo, GsoType, ones_complement_sum};

/// Offload metadata for a frame whose TCP or UDP checksum is partial (the pseudo-header sum in
/// the field), located from its headers: Ethernet (untagged), IPv4 or IPv6 without extension
/// headers, not a fragment. `None` for anything else.
pub fn partial_checksum(frame: &[u8]) -> Option<GsoInfo> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (l4, proto) = match ethertype {
        0x0800 => {
            let vihl = *frame.get(ETH_HLEN)?;
            let frag = u16::from_be_bytes([*frame.get(ETH_HLEN + 6)?, *frame.get(ETH_HLEN + 7)?]);
            if vihl >> 4 != 4 || frag & 0x3fff != 0 {
                return None;
            }
            (
                ETH_HLEN + usize::from(vihl & 0x0f) * 4,
                *frame.get(ETH_HLEN + 9)?,
            )
        }
        0x86dd => (ETH_HLEN + 40, *frame.get(ETH_HLEN + 6)?),
        _ => return None,
    };
    let csum_offset: u16 = match proto {
        6 => 16,
        17 => 6,
        _ => return None,
    };
    if l4 + usize::from(csum_offset) + 2 > frame.len() {
        return None;
    }
    Some(GsoInfo {
        gso_type: GsoType::None,
        ecn: false,
        gso_size: 0,
        hdr_len: 0,
        csum: Some((u16::try_from(l4).ok()?, csum_offset)),
        data_valid: false,
    })
}

/// Turns the TCP packet in `slot` (Ethernet, IPv4 or IPv6 without extension headers, TCP; any
/// checksum) into one segmentation-offload frame for a port with vnet-hdr: `slot.gso` becomes
/// TCPv4/TCPv6 with `gso_size` `mss` and a partial checksum, and the TCP checksum field holds
/// the pseudo-header sum over the whole TCP length, as the Linux stack hands a large segment
/// to a device (the kernel, or [`segment`](super::segment), fills in each segment's checksum).
/// ECN is flagged when the packet carries CWR (only the first segment keeps it).
pub fn tcp_offload(slot: &mut FrameSlot, mss: u16) -> Result<(), SegmentError> {
    if mss == 0 {
        return Err(SegmentError::NoSegmentSize);
    }
    let frame = slot.frame_mut();
    let ethertype = u16::from_be_bytes([
        *frame.get(12).ok_or(SegmentError::Malformed)?,
        *frame.get(13).ok_or(SegmentError::Malformed)?,
    ]);
    let gso_type = match ethertype {
        0x0800 => GsoType::TcpV4,
        0x86dd => GsoType::TcpV6,
        _ => return Err(SegmentError::Malformed),
    };
    let mut info = GsoInfo {
        gso_type,
        ecn: false,
        gso_size: mss,
        hdr_len: 0,
        csum: None,
        data_valid: false,
    };
    let layout = Layout::parse(frame, &info)?;
    let be16 = |at: usize| usize::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
    let ip_len = if layout.ipv6 {
        40 + be16(ETH_HLEN + 4)
    } else {
        // A fragment cannot be cut into TCP segments.
        if be16(ETH_HLEN + 6) & 0x3fff != 0 {
            return Err(SegmentError::Malformed);
        }
        be16(ETH_HLEN + 2)
    };
    // The lengths of the headers must be the frame's (no padding behind the packet).
    if ip_len + ETH_HLEN != frame.len() {
        return Err(SegmentError::Malformed);
    }
    let l4 = layout.l4;
    let l4_total = layout.total - l4;
    let pseudo = layout.pseudo_sum(frame, l4_total);
    frame[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
    info.ecn = frame[l4 + 13] & TCP_CWR != 0;
    info.hdr_len = u16::try_from(layout.hdr_len).map_err(|_| SegmentError::Malformed)?;
    info.csum = Some((u16::try_from(l4).map_err(|_| SegmentError::Malformed)?, 16));
    slot.gso = Some(info);
    Ok(())
}

/// Appends the payload of the TCP packet `next` (Ethernet, IPv4 or IPv6, TCP: one whole packet)
/// to the GSO frame in `held` (as [`tcp_offload`] made it) when `next` continues it, the way
/// GRO merges segments: the same Ethernet header, IP header (addresses, ToS / traffic class,
/// DF, TTL / hop limit, IPv4 options) and TCP header (ports, acknowledgment, window, options),
/// a sequence number right after `held`'s payload, `held` flagged ACK (CWR allowed) and `next`
/// ACK (PSH allowed), nothing larger than an IP packet can be. The lengths and the partial
/// checksum follow; `next`'s PSH carries over. Refused (`Malformed` when it does not continue,
/// `NoRoom` when it does not fit): `held` is left as it was.
pub fn append_tcp(held: &mut FrameSlot, next: &[u8]) -> Result<(), SegmentError> {
    let info = held
        .gso
        .filter(|g| matches!(g.gso_type, GsoType::TcpV4 | GsoType::TcpV6) && g.csum.is_some())
        .ok_or(SegmentError::NotLarge)?;
    let frame = held.frame();
    let layout = Layout::parse(frame, &info)?;
    let next_layout = Layout::parse(next, &info)?;
    let (l4, hdr) = (layout.l4, layout.hdr_len);
    if next_layout.hdr_len != hdr || next_layout.l4 != l4 || next.len() == hdr {
        return Err(SegmentError::Malformed);
    }
    let be16 = |f: &[u8], at: usize| usize::from(u16::from_be_bytes([f[at], f[at + 1]]));
    let same = |a: std::ops::Range<usize>| frame[a.clone()] == next[a];
    let ip = ETH_HLEN;
    let ip_fields_match = if layout.ipv6 {
        // Version, traffic class, flow label; next header, hop limit, addresses.
        same(0..ip + 4) && same(ip + 6..l4) && 40 + be16(next, ip + 4) + ETH_HLEN == next.len()
    } else {
        // Version, IHL, ToS; flags and offset (DF at most); TTL, protocol; addresses, options.
        same(0..ip + 2)
            && be16(next, ip + 6) & 0xbfff == 0
            && same(ip + 6..ip + 10)
            && same(ip + 12..l4)
            && be16(next, ip + 2) + ETH_HLEN == next.len()
    };
    // Ports; acknowledgment, data offset, window; options.
    let tcp_fields_match =
        same(l4..l4 + 4) && same(l4 + 8..l4 + 13) && same(l4 + 14..l4 + 16) && same(l4 + 20..hdr);
    let held_flags = frame[l4 + 13] & !TCP_CWR;
    let next_flags = next[l4 + 13] & !TCP_PSH;
    let seq = |f: &[u8]| u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]]);
    let continues = seq(frame).wrapping_add((frame.len() - hdr) as u32) == seq(next);
    if !(ip_fields_match
        && tcp_fields_match
        && held_flags == TCP_ACK
        && next_flags == TCP_ACK
        && continues)
    {
        return Err(SegmentError::Malformed);
    }
    let add = next.len() - hdr;
    let new_ip_len = frame.len() - ETH_HLEN + add;
    let room = held.buf.len().saturating_sub(held.start + held.len);
    if new_ip_len > usize::from(u16::MAX) + if layout.ipv6 { 40 } else { 0 } || room < add {
        return Err(SegmentError::NoRoom);
    }
    let end = held.start + held.len;
    held.buf[end..end + add].copy_from_slice(&next[hdr..]);
    held.len += add;
    let push = next[l4 + 13] & TCP_PSH;
    let f = held.frame_mut();
    if layout.ipv6 {
        let plen = (new_ip_len - 40) as u16;
        f[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
    } else {
        f[ip + 2..ip + 4].copy_from_slice(&(new_ip_len as u16).to_be_bytes());
        f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let sum = !ones_complement_sum(&f[ip..l4]);
        f[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
    }
    f[l4 + 13] |= push;
    let l4_total = f.len() - l4;
    let pseudo = layout.pseudo_sum(f, l4_total);
    f[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
    Ok(())
}

/// Most datagrams one UDP segmentation-offload frame carries (the kernel's `UDP_MAX_SEGMENTS`
/// on the socket path; the AF_PACKET path has no limit of its own, this keeps to the smallest).
pub const MAX_UDP_SEGMENTS: usize = 64;

/// Appends the UDP datagram `next` (Ethernet, IPv4 without options or IPv6 without extension
/// headers, UDP; one whole packet, not a fragment) to `held`, making `held` one UDP
/// segmentation-offload frame (USO: `gso_size` = the first datagram's payload, a partial
/// checksum), the way a UDP socket with `UDP_SEGMENT` hands a train of datagrams to a device:
/// the kernel, or the device, cuts it into datagrams with the same headers, their own
/// lengths, IPv4 IDs counting up, and checksums. `next` joins when its Ethernet, IP (but
/// length, ID and checksum) and UDP ports are `held`'s, every datagram in `held` is full
/// (`gso_size`), its payload is not larger, and the frame stays within an IP packet and
/// [`MAX_UDP_SEGMENTS`]. Refused (`Malformed` when it does not match, `NoRoom` when it does
/// not fit): `held` is left as it was.
pub fn append_udp(held: &mut FrameSlot, next: &[u8]) -> Result<(), SegmentError> {
    let size = match held.gso {
        None => None,
        Some(g) if g.gso_type == GsoType::UdpL4 && g.csum.is_some() => {
            Some(usize::from(g.gso_size))
        }
        Some(_) => return Err(SegmentError::NotLarge),
    };
    let frame = held.frame();
    let (ipv6, l4) = plain_udp(frame)?;
    if plain_udp(next)? != (ipv6, l4) {
        return Err(SegmentError::Malformed);
    }
    let hdr = l4 + 8;
    let ip = ETH_HLEN;
    let same = |a: std::ops::Range<usize>| frame[a.clone()] == next[a];
    let headers_match = same(0..ip)
        && if ipv6 {
            same(ip..ip + 4) && same(ip + 6..ip + 40)
        } else {
            // Version, IHL, ToS; flags and offset; TTL, protocol; addresses.
            same(ip..ip + 2) && same(ip + 6..ip + 10) && same(ip + 12..ip + 20)
        }
        && same(l4..l4 + 4);
    if !headers_match {
        return Err(SegmentError::Malformed);
    }
    let held_payload = frame.len() - hdr;
    let add = next.len() - hdr;
    let size = size.unwrap_or(held_payload);
    let full = size > 0 && held_payload.is_multiple_of(size);
    if !full || add == 0 || add > size {
        return Err(SegmentError::Malformed);
    }
    let l4_total = frame.len() - l4 + add;
    let room = held.buf.len().saturating_sub(held.start + held.len);
    if l4_total > usize::from(u16::MAX) - if ipv6 { 0 } else { l4 - ETH_HLEN }
        || room < add
        || held_payload / size >= MAX_UDP_SEGMENTS
    {
        return Err(SegmentError::NoRoom);
    }
    let end = held.start + held.len;
    held.buf[end..end + add].copy_from_slice(&next[hdr..]);
    held.len += add;
    let f = held.frame_mut();
    if ipv6 {
        f[ip + 4..ip + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
    } else {
        let ip_len = (l4 - ip + l4_total) as u16;
        f[ip + 2..ip + 4].copy_from_slice(&ip_len.to_be_bytes());
        f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let sum = !ones_complement_sum(&f[ip..l4]);
        f[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
    }
    f[l4 + 4..l4 + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
    let layout = Layout {
        ipv6,
        udp: true,
        l4,
        hdr_len: hdr,
        mss: size,
        total: f.len(),
    };
    let pseudo = layout.pseudo_sum(f, l4_total);
    f[l4 + 6..l4 + 8].copy_from_slice(&pseudo.to_be_bytes());
    held.gso = Some(GsoInfo {
        gso_type: GsoType::UdpL4,
        ecn: false,
        gso_size: u16::try_from(size).map_err(|_| SegmentError::NoRoom)?,
        hdr_len: u16::try_from(hdr).map_err(|_| SegmentError::Malformed)?,
        csum: Some((u16::try_from(l4).map_err(|_| SegmentError::Malformed)?, 6)),
        data_valid: false,
    });
    Ok(())
}

/// `(ipv6, l4)` of a frame that is one whole UDP datagram: Ethernet, IPv4 without options and
/// not a fragment, or IPv6 with UDP as its next header, lengths matching the frame's.
fn plain_udp(frame: &[u8]) -> Result<(bool, usize), SegmentError> {
    let be16 = |at: usize| -> Result<usize, SegmentError> {
        Ok(usize::from(u16::from_be_bytes([
            *frame.get(at).ok_or(SegmentError::Malformed)?,
            *frame.get(at + 1).ok_or(SegmentError::Malformed)?,
        ])))
    };
    let ip = ETH_HLEN;
    let (ipv6, l4) = match be16(12)? {
        0x0800 => {
            let whole = frame.get(ip) == Some(&0x45)
                && frame.get(ip + 9) == Some(&17)
                && be16(ip + 6)? & 0x3fff == 0
                && be16(ip + 2)? + ETH_HLEN == frame.len();
            (false, whole.then_some(ip + 20))
        }
        0x86dd => {
            let whole = frame.get(ip).is_some_and(|v| v >> 4 == 6)
                && frame.get(ip + 6) == Some(&17)
                && be16(ip + 4)? + ETH_HLEN + 40 == frame.len();
            (true, whole.then_some(ip + 40))
        }
        _ => (false, None),
    };
    let l4 = l4.ok_or(SegmentError::Malformed)?;
    if be16(l4 + 4)? + l4 != frame.len() {
        return Err(SegmentError::Malformed);
    }
    Ok((ipv6, l4))
}
