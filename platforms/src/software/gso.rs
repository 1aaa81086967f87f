//! Segmentation in software: cuts a large TCP (or UDP) segment that arrived whole from a
//! vnet-hdr port into wire-sized frames with complete checksums.
//!
//! Ports do not need this: an AF_PACKET or TAP port with vnet-hdr hands a large segment to the
//! kernel, which cuts it (in software when the device cannot). It is for the cases the kernel
//! interface cannot express, above all a large segment that the forwarding core is about to
//! LISP-encapsulate (a `virtio_net_hdr` cannot describe TCP inside a UDP tunnel), and for an
//! egress port without vnet-hdr. No allocation: the segments are written into caller slots.

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
    let info = src
        .gso
        .filter(GsoInfo::is_segment_offload)
        .ok_or(SegmentError::NotLarge)?;
    let frame = src.frame();
    let layout = Layout::parse(frame, &info)?;
    let payload = &frame[layout.hdr_len..];
    let count = payload.len().div_ceil(layout.mss).max(1);
    if out.len() < count {
        return Err(SegmentError::NoRoom);
    }
    for (i, (chunk, dst)) in payload
        .chunks(layout.mss)
        .chain(std::iter::once(&[][..]).take(usize::from(payload.is_empty())))
        .zip(out.iter_mut())
        .enumerate()
    {
        let len = layout.hdr_len + chunk.len();
        let room = dst.buf.len().saturating_sub(HEADROOM);
        if room < len {
            return Err(SegmentError::NoRoom);
        }
        dst.start = HEADROOM;
        dst.len = len;
        dst.vlan = src.vlan;
        dst.gso = None;
        let f = &mut dst.buf[HEADROOM..HEADROOM + len];
        f[..layout.hdr_len].copy_from_slice(&frame[..layout.hdr_len]);
        f[layout.hdr_len..].copy_from_slice(chunk);
        layout.fix_segment(f, i, i + 1 == count, chunk.len());
    }
    Ok(count)
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
        if l4_len < 8 || l4 + l4_len > frame.len() {
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

    /// Rewrites lengths, IDs, sequence numbers, flags and checksums of segment `i` (`f` is the
    /// whole frame of the segment, `chunk` payload bytes).
    fn fix_segment(&self, f: &mut [u8], i: usize, last: bool, chunk: usize) {
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
                .wrapping_add((i * self.mss) as u32);
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
        let proto = if self.udp { 17u8 } else { 6u8 };
        let pseudo = if self.ipv6 {
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
        };
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
    for (i, (piece, dst)) in data.chunks(chunk).zip(out.iter_mut()).enumerate() {
        let len = ETH_HLEN + 20 + piece.len();
        if dst.buf.len().saturating_sub(HEADROOM) < len {
            return Err(SegmentError::NoRoom);
        }
        dst.start = HEADROOM;
        dst.len = len;
        dst.vlan = src.vlan;
        dst.gso = None;
        let f = &mut dst.buf[HEADROOM..HEADROOM + len];
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
