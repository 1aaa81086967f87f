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

use super::port::{FrameSlot, GsoInfo, GsoType, ones_complement_sum};

mod cut;
mod offload;

pub use cut::{InPlaceCut, fragment_ipv4, segment, segment_count, segment_to_fit};
pub use offload::{MAX_UDP_SEGMENTS, append_tcp, append_udp, partial_checksum, tcp_offload};

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

const TCP_FIN: u8 = 0x01;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

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

#[cfg(test)]
mod append_udp_tests;
#[cfg(test)]
mod fragment_tests;
#[cfg(test)]
mod segment_to_fit_tests;
#[cfg(test)]
mod test_frames;
