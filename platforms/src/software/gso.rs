//! Segmentation in software: cuts a large TCP (or UDP) segment that arrived whole from a
//! vnet-hdr port into smaller frames with complete checksums.
//!
//! Ports do not need this: an AF_PACKET or TAP port with vnet-hdr hands a large segment to the
//! kernel, which cuts it (in software when the device cannot). It is for the cases the kernel
//! interface cannot express, above all a large segment that the forwarding core is about to
//! LISP-encapsulate (a `virtio_net_hdr` cannot describe TCP inside a UDP tunnel:
//! [`segment_to_fit`] cuts it into TCP packets as large as the tunnel takes), and for an
//! egress port without vnet-hdr. [`tcp_offload`] goes the other way: it turns a TCP packet too
//! large for its egress port into one segmentation-offload frame for the kernel to cut. No
//! allocation: the segments are written into caller slots.

use super::port::{FrameSlot, GsoInfo, GsoType, HEADROOM, ones_complement_sum};

/// Why a frame could not be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentError {
    /// The slot carries no segment offload (nothing to cut).
    NotLarge,
    /// The headers are not Ethernet + IPv4/IPv6 (no extension headers) + TCP/UDP as `gso`
    /// says, or are cut short.
    Malformed,
    /// `gso_size` is 0.
    NoSegmentSize,
    /// Fewer output slots than segments, or a slot too small for one segment.
    NoRoom,
}

const ETH_HLEN: usize = 14;

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

const TCP_FIN: u8 = 0x01;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// How many segments `slot` cuts into (1 when it carries no segment offload).
pub fn segment_count(slot: &FrameSlot) -> Result<usize, SegmentError> {
    let Some(info) = slot.gso.filter(GsoInfo::is_segment_offload) else {
        return Ok(1);
    };
    let layout = Layout::parse(slot.frame(), &info)?;
    Ok(layout.payload_len().div_ceil(layout.mss).max(1))
}

/// Cuts `src` (a large TCP or UDP segment, see [`GsoInfo`]) into `out[..n]` and returns `n`.
/// Each output slot gets a complete frame at [`HEADROOM`], `src`'s `vlan`, and no offload.
pub fn segment(src: &FrameSlot, out: &mut [FrameSlot]) -> Result<usize, SegmentError> {
    segment_to_fit(src, 0, out)
}

/// `data` cut into pieces of `step` octets. A packet without data is one piece of its headers
/// alone, not none: the count says 1 and the caller sends `out[0]`, which would otherwise still
/// hold an earlier frame.
fn pieces(data: &[u8], step: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks(step)
        .chain(std::iter::once(&[][..]).take(usize::from(data.is_empty())))
}

/// Makes `dst` a frame of `len` octets behind the headroom, in `vlan`, without offload, and
/// returns its octets to fill; `NoRoom` when its buffer is too small.
fn start_piece(
    dst: &mut FrameSlot,
    len: usize,
    vlan: Option<u16>,
) -> Result<&mut [u8], SegmentError> {
    if dst.buf.len().saturating_sub(HEADROOM) < len {
        return Err(SegmentError::NoRoom);
    }
    dst.start = HEADROOM;
    dst.len = len;
    dst.vlan = vlan;
    dst.gso = None;
    Ok(&mut dst.buf[HEADROOM..HEADROOM + len])
}

/// Like [`segment`], but a TCP piece carries as many `gso_size` units of payload as fit an IP
/// packet of `max_ip_len` octets (at least one: where only one fits, or `max_ip_len` is
/// smaller still, this is [`segment`]). Each piece is one valid TCP packet: its own IP length
/// and (IPv4) ID, sequence number, FIN and PSH on the last piece only, CWR on the first only,
/// complete checksums. A UDP segment is cut into datagrams of `gso_size` whatever
/// `max_ip_len` is (datagram boundaries are the application's).
pub fn segment_to_fit(
    src: &FrameSlot,
    max_ip_len: usize,
    out: &mut [FrameSlot],
) -> Result<usize, SegmentError> {
    let (frame, layout) = Layout::of_large_segment(src)?;
    let step = layout.piece_payload(max_ip_len);
    let payload = &frame[layout.hdr_len..];
    let count = payload.len().div_ceil(step).max(1);
    if out.len() < count {
        return Err(SegmentError::NoRoom);
    }
    for (i, (chunk, dst)) in pieces(payload, step).zip(out.iter_mut()).enumerate() {
        let f = start_piece(dst, layout.hdr_len + chunk.len(), src.vlan)?;
        f[..layout.hdr_len].copy_from_slice(&frame[..layout.hdr_len]);
        f[layout.hdr_len..].copy_from_slice(chunk);
        layout.fix_segment(f, i, i * step, i + 1 == count, chunk.len(), true);
    }
    Ok(count)
}

/// Most header octets a large segment can have: Ethernet, IPv4 with options, TCP with options.
const MAX_HEADERS: usize = ETH_HLEN + 60 + 60;

/// [`segment_to_fit`] without a copy: the pieces are made one after the other in the large
/// segment's own buffer. Piece `i` is its payload where it already lies, with the headers
/// written in front of it, over the end of piece `i - 1`'s payload (saved headers, fixed as
/// [`segment_to_fit`] fixes them); so a piece must be done with (sent, copied, dropped)
/// before the next is made. The buffer's headroom in front of each piece is what lies before
/// it: the slot's own headroom for the first, the previous piece's payload for the others.
#[derive(Debug)]
pub struct InPlaceCut {
    layout: Layout,
    /// Payload octets per piece (the last may have fewer).
    step: usize,
    count: usize,
    /// The segment's headers as they arrived.
    headers: [u8; MAX_HEADERS],
    /// Where the segment's payload starts in the buffer, and its length.
    payload_at: usize,
    payload_len: usize,
    vlan: Option<u16>,
    next: usize,
    udp_checksum: bool,
}

impl InPlaceCut {
    /// Prepares cutting the large segment in `slot` into pieces whose IP packets fit
    /// `max_ip_len` (see [`segment_to_fit`]); nothing is changed yet.
    pub fn new(slot: &FrameSlot, max_ip_len: usize) -> Result<InPlaceCut, SegmentError> {
        let (frame, layout) = Layout::of_large_segment(slot)?;
        if layout.hdr_len > MAX_HEADERS {
            return Err(SegmentError::Malformed);
        }
        let mut headers = [0u8; MAX_HEADERS];
        headers[..layout.hdr_len].copy_from_slice(&frame[..layout.hdr_len]);
        let step = layout.piece_payload(max_ip_len);
        let payload_len = layout.payload_len();
        Ok(InPlaceCut {
            layout,
            step,
            count: payload_len.div_ceil(step).max(1),
            headers,
            payload_at: slot.start + layout.hdr_len,
            payload_len,
            vlan: slot.vlan,
            next: 0,
            udp_checksum: true,
        })
    }

    /// UDP pieces get checksum 0 instead of a computed one: for LISP packets about to be
    /// decapsulated here, whose outer checksum nobody reads (and which RFC 9300 §5.3 lets an
    /// ITR send as 0 over IPv4 and IPv6 alike).
    pub fn without_udp_checksum(mut self) -> InPlaceCut {
        self.udp_checksum = false;
        self
    }

    /// How many pieces the segment makes.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Makes the next piece in `slot` (the slot given to [`InPlaceCut::new`], nothing else done
    /// to its buffer since but processing the pieces before): a complete frame with `slot`'s
    /// `vlan` and no offload. False when every piece was made.
    pub fn next_piece(&mut self, slot: &mut FrameSlot) -> bool {
        let i = self.next;
        if i == self.count {
            return false;
        }
        self.next += 1;
        let offset = i * self.step;
        let chunk = self.step.min(self.payload_len - offset);
        let hdr = self.layout.hdr_len;
        let start = self.payload_at + offset - hdr;
        slot.buf[start..start + hdr].copy_from_slice(&self.headers[..hdr]);
        slot.start = start;
        slot.len = hdr + chunk;
        slot.vlan = self.vlan;
        slot.gso = None;
        let last = i + 1 == self.count;
        self.layout.fix_segment(
            &mut slot.buf[start..start + hdr + chunk],
            i,
            offset,
            last,
            chunk,
            self.udp_checksum,
        );
        true
    }
}

/// Turns the TCP packet in `slot` (Ethernet, IPv4 or IPv6 without extension headers, TCP; any
/// checksum) into one segmentation-offload frame for a port with vnet-hdr: `slot.gso` becomes
/// TCPv4/TCPv6 with `gso_size` `mss` and a partial checksum, and the TCP checksum field holds
/// the pseudo-header sum over the whole TCP length, as the Linux stack hands a large segment
/// to a device (the kernel, or [`segment`], fills in each segment's checksum). ECN is flagged
/// when the packet carries CWR (only the first segment keeps it).
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

/// Where the headers of a large segment are.
#[derive(Debug, Clone, Copy)]
struct Layout {
    ipv6: bool,
    udp: bool,
    /// Offset of the L4 header.
    l4: usize,
    /// Offset of the payload (all headers).
    hdr_len: usize,
    mss: usize,
    total: usize,
}

impl Layout {
    /// The frame in `slot` and its layout; `NotLarge` when the slot holds no large segment.
    fn of_large_segment(slot: &FrameSlot) -> Result<(&[u8], Layout), SegmentError> {
        let info = slot
            .gso
            .filter(GsoInfo::is_segment_offload)
            .ok_or(SegmentError::NotLarge)?;
        let frame = slot.frame();
        Ok((frame, Layout::parse(frame, &info)?))
    }

    fn parse(frame: &[u8], info: &GsoInfo) -> Result<Layout, SegmentError> {
        if info.gso_size == 0 {
            return Err(SegmentError::NoSegmentSize);
        }
        let ethertype = u16::from_be_bytes([
            *frame.get(12).ok_or(SegmentError::Malformed)?,
            *frame.get(13).ok_or(SegmentError::Malformed)?,
        ]);
        let (ipv6, l4, proto) = match ethertype {
            0x0800 => {
                let vihl = *frame.get(ETH_HLEN).ok_or(SegmentError::Malformed)?;
                let ihl = usize::from(vihl & 0x0f) * 4;
                if vihl >> 4 != 4 || ihl < 20 {
                    return Err(SegmentError::Malformed);
                }
                let proto = *frame.get(ETH_HLEN + 9).ok_or(SegmentError::Malformed)?;
                (false, ETH_HLEN + ihl, proto)
            }
            0x86dd => {
                let proto = *frame.get(ETH_HLEN + 6).ok_or(SegmentError::Malformed)?;
                (true, ETH_HLEN + 40, proto)
            }
            _ => return Err(SegmentError::Malformed),
        };
        let udp = match (info.gso_type, proto) {
            (GsoType::TcpV4, 6) if !ipv6 => false,
            (GsoType::TcpV6, 6) if ipv6 => false,
            (GsoType::UdpL4, 17) => true,
            _ => return Err(SegmentError::Malformed),
        };
        let l4_len = if udp {
            8
        } else {
            let off = *frame.get(l4 + 12).ok_or(SegmentError::Malformed)?;
            usize::from(off >> 4) * 4
        };
        // A TCP header has at least 20 octets: the flags and the checksum every piece gets are
        // written at fixed offsets in it (a shorter data offset put them into the payload, or
        // past the end of a short piece).
        let min_l4_len = if udp { 8 } else { 20 };
        if l4_len < min_l4_len || l4 + l4_len > frame.len() {
            return Err(SegmentError::Malformed);
        }
        Ok(Layout {
            ipv6,
            udp,
            l4,
            hdr_len: l4 + l4_len,
            mss: usize::from(info.gso_size),
            total: frame.len(),
        })
    }

    fn payload_len(&self) -> usize {
        self.total - self.hdr_len
    }

    /// Payload octets per piece so a piece's IP packet fits `max_ip_len`: the largest multiple
    /// of the segment size for TCP (at least one), the segment size for UDP.
    fn piece_payload(&self, max_ip_len: usize) -> usize {
        if self.udp {
            return self.mss;
        }
        let room = max_ip_len.saturating_sub(self.hdr_len - ETH_HLEN);
        (room / self.mss).max(1) * self.mss
    }

    /// The folded pseudo-header sum (addresses, protocol, `l4_total`) of the packet in `f`.
    fn pseudo_sum(&self, f: &[u8], l4_total: usize) -> u16 {
        let proto = if self.udp { 17u8 } else { 6u8 };
        if self.ipv6 {
            let addrs = ones_complement_sum(&f[ETH_HLEN + 8..ETH_HLEN + 40]);
            fold(
                u32::from(addrs)
                    + (l4_total as u32 >> 16)
                    + (l4_total as u32 & 0xffff)
                    + u32::from(proto),
            )
        } else {
            let addrs = ones_complement_sum(&f[ETH_HLEN + 12..ETH_HLEN + 20]);
            fold(u32::from(addrs) + l4_total as u32 + u32::from(proto))
        }
    }

    /// Rewrites lengths, IDs, sequence numbers, flags and checksums of piece `i` (`f` is the
    /// whole frame of the piece, `chunk` payload bytes starting `offset` bytes into the
    /// payload of the large segment).
    /// A UDP piece gets checksum 0 ("none": IPv4, and LISP over IPv6, RFC 9300 §5.3) when
    /// `udp_checksum` is false.
    fn fix_segment(
        &self,
        f: &mut [u8],
        i: usize,
        offset: usize,
        last: bool,
        chunk: usize,
        udp_checksum: bool,
    ) {
        let l4_len = self.hdr_len - self.l4;
        let l4_total = l4_len + chunk;
        if self.ipv6 {
            f[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
        } else {
            let ip_total = (self.l4 - ETH_HLEN + l4_total) as u16;
            f[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&ip_total.to_be_bytes());
            let id = u16::from_be_bytes([f[ETH_HLEN + 4], f[ETH_HLEN + 5]]).wrapping_add(i as u16);
            f[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&id.to_be_bytes());
            f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&[0, 0]);
            let sum = !ones_complement_sum(&f[ETH_HLEN..self.l4]);
            f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&sum.to_be_bytes());
        }
        let l4 = self.l4;
        let csum_at = if self.udp {
            f[l4 + 4..l4 + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
            l4 + 6
        } else {
            let seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]])
                .wrapping_add(offset as u32);
            f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
            if !last {
                f[l4 + 13] &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                f[l4 + 13] &= !TCP_CWR;
            }
            l4 + 16
        };
        f[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
        if self.udp && !udp_checksum {
            return;
        }
        let pseudo = self.pseudo_sum(f, l4_total);
        let body = ones_complement_sum(&f[l4..]);
        let mut sum = !fold(u32::from(pseudo) + u32::from(body));
        if sum == 0 && self.udp {
            sum = 0xffff;
        }
        f[csum_at..csum_at + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Fragments the IPv4 packet in `src` (Ethernet + IPv4, no options) into IP packets of at most
/// `max_ip_len` octets (RFC 791: fragment data in multiples of 8, MF on all but the last,
/// offsets relative to the original's) written into `out[..n]`; returns `n`. The L4 checksum
/// must be complete (see [`FrameSlot::complete_checksum`]): fragments cannot carry offloads.
pub fn fragment_ipv4(
    src: &FrameSlot,
    max_ip_len: usize,
    out: &mut [FrameSlot],
) -> Result<usize, SegmentError> {
    let frame = src.frame();
    let ip = frame.get(ETH_HLEN..).ok_or(SegmentError::Malformed)?;
    let vihl = *ip.first().ok_or(SegmentError::Malformed)?;
    if vihl != 0x45 || ip.len() < 20 {
        // Options would have to be split between copied and first-fragment-only ones.
        return Err(SegmentError::Malformed);
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < 20 || total > ip.len() {
        return Err(SegmentError::Malformed);
    }
    let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
    if flags_offset & 0x4000 != 0 {
        return Err(SegmentError::Malformed);
    }
    let original_more = flags_offset & 0x2000 != 0;
    let original_offset = usize::from(flags_offset & 0x1fff) * 8;
    let chunk = max_ip_len.saturating_sub(20) / 8 * 8;
    if chunk == 0 {
        return Err(SegmentError::NoSegmentSize);
    }
    let data = &ip[20..total];
    let count = data.len().div_ceil(chunk).max(1);
    if out.len() < count {
        return Err(SegmentError::NoRoom);
    }
    for (i, (piece, dst)) in pieces(data, chunk).zip(out.iter_mut()).enumerate() {
        let f = start_piece(dst, ETH_HLEN + 20 + piece.len(), src.vlan)?;
        f[..ETH_HLEN + 20].copy_from_slice(&frame[..ETH_HLEN + 20]);
        f[ETH_HLEN + 20..].copy_from_slice(piece);
        let h = &mut f[ETH_HLEN..ETH_HLEN + 20];
        let ip_len = u16::try_from(20 + piece.len()).map_err(|_| SegmentError::NoRoom)?;
        h[2..4].copy_from_slice(&ip_len.to_be_bytes());
        let last = i + 1 == count;
        let offset = (original_offset + i * chunk) / 8;
        let more = if last { original_more } else { true };
        let field = u16::try_from(offset).map_err(|_| SegmentError::Malformed)? & 0x1fff
            | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&field.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = !ones_complement_sum(h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    Ok(count)
}

/// Test frames shared by the test modules below.
#[cfg(test)]
mod test_frames {
    use super::{ETH_HLEN, ones_complement_sum};
    use std::net::IpAddr;

    /// Ethernet (02:00:00:00:00:02 -> 02:00:00:00:00:01) and an IPv4 (DF, no options, TTL 64,
    /// identification `id`, header checksum complete) or IPv6 (hop limit 64) header from
    /// `addrs[0]` to `addrs[1]`, for `l4_len` octets of protocol `proto` to follow.
    pub(super) fn eth_ip(addrs: [&str; 2], proto: u8, l4_len: usize, id: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        let [src, dst] = addrs.map(|a| a.parse::<IpAddr>().unwrap());
        match (src, dst) {
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&src.octets());
                f.extend_from_slice(&dst.octets());
            }
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
                f.extend_from_slice(&id.to_be_bytes());
                f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&src.octets());
                f.extend_from_slice(&dst.octets());
                let sum = !ones_complement_sum(&f[ETH_HLEN..ETH_HLEN + 20]);
                f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&sum.to_be_bytes());
            }
            _ => panic!("addresses of different families: {addrs:?}"),
        }
        f
    }
}

#[cfg(test)]
mod fragment_tests {
    use super::*;

    fn packet(payload: usize) -> FrameSlot {
        let mut slot = FrameSlot::batch(1, 9000).remove(0);
        let total = 20 + payload;
        let mut f = vec![0u8; ETH_HLEN + total];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
        f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 1, 0, 5]);
        f[30..34].copy_from_slice(&[10, 2, 0, 5]);
        for (i, b) in f[34..].iter_mut().enumerate() {
            *b = i as u8;
        }
        slot.set_frame(&f).unwrap();
        slot
    }

    #[test]
    fn fragments_carry_8_octet_offsets_mf_and_the_whole_payload() {
        let src = packet(1480);
        let mut out = FrameSlot::batch(4, 2048);
        let n = fragment_ipv4(&src, 1000, &mut out).unwrap();
        assert_eq!(n, 2);
        let mut data = Vec::new();
        for (i, s) in out[..n].iter().enumerate() {
            let ip = etherparse::Ipv4HeaderSlice::from_slice(&s.frame()[ETH_HLEN..]).unwrap();
            assert_eq!(ip.identification(), 0x1234);
            assert_eq!(ip.more_fragments(), i == 0);
            assert!(!ip.dont_fragment());
            assert_eq!(ip.fragments_offset().value() as usize * 8, data.len());
            assert!(usize::from(ip.total_len()) <= 1000);
            assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
            data.extend_from_slice(&s.frame()[ETH_HLEN + 20..]);
        }
        assert_eq!(data, src.frame()[ETH_HLEN + 20..]);
        assert_eq!((1000 - 20) / 8 * 8, out[0].frame().len() - ETH_HLEN - 20);
    }

    #[test]
    fn a_packet_without_data_is_one_header_only_fragment() {
        // IP total length 20 in a longer frame (found by the gso fuzz target): one fragment
        // was reported but none written, so the caller sent what the slot held before.
        let mut src = packet(100);
        src.frame_mut()[16..18].copy_from_slice(&20u16.to_be_bytes());
        let mut out = FrameSlot::batch(2, 2048);
        out[0].set_frame(&[0xee; 200]).unwrap();
        assert_eq!(fragment_ipv4(&src, 1000, &mut out), Ok(1));
        let f = out[0].frame();
        assert_eq!(f.len(), ETH_HLEN + 20);
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
        assert_eq!((ip.total_len(), ip.identification()), (20, 0x1234));
        assert!(!ip.more_fragments());
        assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
    }

    #[test]
    fn df_options_and_short_packets_are_refused() {
        let mut df = packet(1480);
        df.frame_mut()[20] = 0x40;
        let mut out = FrameSlot::batch(4, 2048);
        assert_eq!(
            fragment_ipv4(&df, 1000, &mut out),
            Err(SegmentError::Malformed)
        );
        let mut opts = packet(1480);
        opts.frame_mut()[14] = 0x46;
        assert_eq!(
            fragment_ipv4(&opts, 1000, &mut out),
            Err(SegmentError::Malformed)
        );
        assert_eq!(
            fragment_ipv4(&packet(1480), 20, &mut out),
            Err(SegmentError::NoSegmentSize)
        );
    }
}

#[cfg(test)]
mod segment_to_fit_tests {
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
    fn pieces_of(
        ipv6: bool,
        payload: usize,
        flags: u8,
        max_ip_len: usize,
    ) -> (Vec<u8>, Vec<Vec<u8>>) {
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
}

#[cfg(test)]
mod append_udp_tests {
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
}
