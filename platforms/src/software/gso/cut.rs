//! Cutting one frame into several: a large TCP or UDP segment into wire-sized packets (copied
//! into caller slots, or in place in its own buffer), and an IPv4 packet into fragments.

use super::{ETH_HLEN, Layout, SegmentError};
use crate::software::port::{FrameSlot, GsoInfo, HEADROOM, ones_complement_sum};

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
