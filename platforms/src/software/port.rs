//! The one trait every data port of the software backend implements, and the frame slots it
//! fills and drains.
//!
//! A port moves frames between the kernel and caller-owned [`FrameSlot`]s that are allocated
//! once and reused for every batch: nothing on the receive or send path allocates or reads a
//! clock. Every received frame is handed over *untagged*: an 802.1Q tag, whether the kernel
//! stripped it (AF_PACKET auxdata) or it was still in the frame (TAP), ends up in
//! [`FrameSlot::vlan`]. On send a `vlan` is written back into the frame in place, in the
//! [`HEADROOM`] in front of it.
//!
//! Offload metadata (a partial L4 checksum, a TCP/UDP segment larger than the MTU) travels in
//! [`FrameSlot::gso`], in the shape of the Linux `virtio_net_hdr` that both TAP (`IFF_VNET_HDR`)
//! and AF_PACKET (`PACKET_VNET_HDR`) speak, so a large TCP segment crosses the switch as one
//! frame and the kernel of the egress port segments it (or the peer takes it whole).

use std::io;
use std::os::fd::RawFd;

/// Room in front of every received frame: a LISP encapsulation adds at most 56 bytes, an
/// 802.1Q tag 4, and the `virtio_net_hdr` a port writes in front of a frame 10.
pub const HEADROOM: usize = 128;

/// Frame room for ports without large segments: a 1500-byte MTU frame with tags, rounded up.
pub const FRAME_ROOM: usize = 2048;

/// Frame room that holds the largest segment a vnet-hdr port can hand over (64 KiB of IP
/// packet plus the Ethernet header and tags).
pub const GSO_FRAME_ROOM: usize = 65536 + 64;

/// EtherType of an 802.1Q (C-VLAN) tag.
pub const ETH_P_8021Q: u16 = 0x8100;

/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// Length of the (legacy, non-mergeable) `virtio_net_hdr` both TAP and AF_PACKET use.
pub const VNET_HDR_LEN: usize = 10;

const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
const VIRTIO_NET_HDR_GSO_UDP: u8 = 3;
const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

/// How a large frame is to be cut into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoType {
    /// Not a large segment (the offload is a partial checksum only).
    None,
    TcpV4,
    TcpV6,
    /// UDP segmentation (USO, `VIRTIO_NET_HDR_GSO_UDP_L4`).
    UdpL4,
    /// Legacy UDP fragmentation offload (UFO); only ever received from old peers.
    Ufo,
}

/// Offload metadata of one frame: the `virtio_net_hdr` fields, with offsets counted from the
/// first byte of the frame (`buf[start]`).
///
/// Present when the frame carries a partial checksum (`csum`) or is larger than the MTU and
/// must be segmented (`gso_type != None`). Inserting or stripping a tag with the
/// [`FrameSlot`] helpers keeps the offsets right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GsoInfo {
    pub gso_type: GsoType,
    /// The segments carry ECN CWR (`VIRTIO_NET_HDR_GSO_ECN`).
    pub ecn: bool,
    /// Payload bytes per segment (the MSS for TCP).
    pub gso_size: u16,
    /// Length of all headers, Ethernet included (a hint; the kernel recomputes it).
    pub hdr_len: u16,
    /// `(csum_start, csum_offset)`: the L4 checksum is partial; the sum from `csum_start` to the
    /// end of the frame goes to `csum_start + csum_offset` (`VIRTIO_NET_HDR_F_NEEDS_CSUM`).
    pub csum: Option<(u16, u16)>,
    /// The receiving kernel already verified the checksum (`VIRTIO_NET_HDR_F_DATA_VALID`).
    pub data_valid: bool,
}

impl GsoInfo {
    /// Whether this frame must be cut into segments before it fits the wire.
    pub fn is_segment_offload(&self) -> bool {
        self.gso_type != GsoType::None
    }

    /// Decodes a `virtio_net_hdr` (native byte order, as legacy virtio and both kernel
    /// interfaces use). `None` for a header that asks for nothing. A GSO type this code does
    /// not know is an error (the frame should be dropped).
    pub fn from_vnet_hdr(hdr: &[u8; VNET_HDR_LEN]) -> Result<Option<GsoInfo>, u8> {
        let flags = hdr[0];
        let raw_type = hdr[1];
        let gso_type = match raw_type & !VIRTIO_NET_HDR_GSO_ECN {
            VIRTIO_NET_HDR_GSO_NONE => GsoType::None,
            VIRTIO_NET_HDR_GSO_TCPV4 => GsoType::TcpV4,
            VIRTIO_NET_HDR_GSO_TCPV6 => GsoType::TcpV6,
            VIRTIO_NET_HDR_GSO_UDP_L4 => GsoType::UdpL4,
            VIRTIO_NET_HDR_GSO_UDP => GsoType::Ufo,
            other => return Err(other),
        };
        let needs_csum = flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0;
        let data_valid = flags & VIRTIO_NET_HDR_F_DATA_VALID != 0;
        if gso_type == GsoType::None && !needs_csum {
            // DATA_VALID alone tells nothing the next hop needs.
            return Ok(None);
        }
        let field = |i: usize| u16::from_ne_bytes([hdr[i], hdr[i + 1]]);
        Ok(Some(GsoInfo {
            gso_type,
            ecn: raw_type & VIRTIO_NET_HDR_GSO_ECN != 0,
            hdr_len: field(2),
            gso_size: field(4),
            csum: needs_csum.then(|| (field(6), field(8))),
            data_valid,
        }))
    }

    /// Encodes `info` (or an empty header for `None`) as a `virtio_net_hdr`.
    pub fn to_vnet_hdr(info: Option<&GsoInfo>, out: &mut [u8; VNET_HDR_LEN]) {
        *out = [0; VNET_HDR_LEN];
        let Some(info) = info else { return };
        let mut gso_type = match info.gso_type {
            GsoType::None => VIRTIO_NET_HDR_GSO_NONE,
            GsoType::TcpV4 => VIRTIO_NET_HDR_GSO_TCPV4,
            GsoType::TcpV6 => VIRTIO_NET_HDR_GSO_TCPV6,
            GsoType::UdpL4 => VIRTIO_NET_HDR_GSO_UDP_L4,
            GsoType::Ufo => VIRTIO_NET_HDR_GSO_UDP,
        };
        if info.ecn && gso_type != VIRTIO_NET_HDR_GSO_NONE {
            gso_type |= VIRTIO_NET_HDR_GSO_ECN;
        }
        let (csum_start, csum_offset) = info.csum.unwrap_or((0, 0));
        out[0] = if info.csum.is_some() {
            VIRTIO_NET_HDR_F_NEEDS_CSUM
        } else {
            0
        };
        out[1] = gso_type;
        out[2..4].copy_from_slice(&info.hdr_len.to_ne_bytes());
        out[4..6].copy_from_slice(&info.gso_size.to_ne_bytes());
        out[6..8].copy_from_slice(&csum_start.to_ne_bytes());
        out[8..10].copy_from_slice(&csum_offset.to_ne_bytes());
    }

    /// Moves every offset by `delta` bytes (a header of that length was inserted, or removed
    /// when negative, in front of the L3 header).
    pub fn shift(&mut self, delta: i32) {
        let add = |v: u16| (i32::from(v) + delta).clamp(0, i32::from(u16::MAX)) as u16;
        if self.hdr_len != 0 {
            self.hdr_len = add(self.hdr_len);
        }
        if let Some((start, offset)) = self.csum {
            self.csum = Some((add(start), offset));
        }
    }
}

/// Why a frame in a slot could not be prepared for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The frame is shorter than an Ethernet header.
    Runt,
    /// `start`/`len` point outside the buffer.
    OutOfBounds,
    /// Neither the headroom nor the tailroom has room for the tag or header to add.
    NoRoom,
    /// The VLAN ID does not fit 12 bits.
    BadVlan,
}

/// One received or to-be-sent frame in caller-owned memory. The frame is
/// `buf[start..start + len]`; the bytes in front of it are headroom a port or the forwarding
/// core may write headers into.
#[derive(Debug)]
pub struct FrameSlot {
    pub buf: Box<[u8]>,
    pub start: usize,
    pub len: usize,
    /// VLAN ID (12 bits) of the frame's 802.1Q tag, which is never inside the frame on
    /// receive; on send, `Some` makes the port insert the tag (priority 0).
    pub vlan: Option<u16>,
    /// Offload metadata (partial checksum, large segment); see [`GsoInfo`].
    pub gso: Option<GsoInfo>,
}

impl FrameSlot {
    /// A slot with [`HEADROOM`] in front and `frame_room` bytes for the frame (use
    /// [`FRAME_ROOM`], or [`GSO_FRAME_ROOM`] to take large segments whole). Allocate slots
    /// once and reuse them.
    pub fn new(frame_room: usize) -> FrameSlot {
        FrameSlot {
            buf: vec![0; HEADROOM + frame_room].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            vlan: None,
            gso: None,
        }
    }

    /// `n` slots of `frame_room` bytes each.
    pub fn batch(n: usize, frame_room: usize) -> Vec<FrameSlot> {
        (0..n).map(|_| FrameSlot::new(frame_room)).collect()
    }

    /// The frame (empty if `start`/`len` are out of bounds).
    pub fn frame(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start.saturating_add(self.len))
            .unwrap_or(&[])
    }

    /// The frame, writable (empty if `start`/`len` are out of bounds).
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let end = self.start.saturating_add(self.len);
        self.buf.get_mut(self.start..end).unwrap_or(&mut [])
    }

    /// Forgets the frame: `start` back at [`HEADROOM`], no tag, no offload.
    pub fn reset(&mut self) {
        self.start = HEADROOM.min(self.buf.len());
        self.len = 0;
        self.vlan = None;
        self.gso = None;
    }

    /// Copies `frame` into the slot after the headroom (no tag, no offload). For tests and
    /// for frames the control plane injects; the fast path never copies.
    pub fn set_frame(&mut self, frame: &[u8]) -> Result<(), SlotError> {
        self.reset();
        let end = self.start + frame.len();
        let dst = self.buf.get_mut(self.start..end).ok_or(SlotError::NoRoom)?;
        dst.copy_from_slice(frame);
        self.len = frame.len();
        Ok(())
    }

    /// Writes `self.vlan` (if any) into the frame as an 802.1Q tag after the MAC addresses and
    /// clears `vlan`; moves the MAC addresses 4 bytes into the headroom (or, without headroom,
    /// the rest of the frame 4 bytes towards the tail). Offload offsets follow.
    pub fn insert_vlan(&mut self) -> Result<(), SlotError> {
        let Some(vid) = self.vlan else { return Ok(()) };
        if vid > 0x0fff {
            return Err(SlotError::BadVlan);
        }
        let end = self.end()?;
        if self.len < 14 {
            return Err(SlotError::Runt);
        }
        if self.start >= VLAN_TAG_LEN {
            // The 12 bytes of MAC addresses move into the headroom.
            self.buf
                .copy_within(self.start..self.start + 12, self.start - VLAN_TAG_LEN);
            self.start -= VLAN_TAG_LEN;
        } else if end + VLAN_TAG_LEN <= self.buf.len() {
            // No headroom: everything after the MAC addresses moves towards the tail.
            self.buf
                .copy_within(self.start + 12..end, self.start + 12 + VLAN_TAG_LEN);
        } else {
            return Err(SlotError::NoRoom);
        }
        let tag = self.start + 12;
        self.buf[tag..tag + 2].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
        self.buf[tag + 2..tag + 4].copy_from_slice(&vid.to_be_bytes());
        self.len += VLAN_TAG_LEN;
        self.vlan = None;
        if let Some(gso) = self.gso.as_mut() {
            gso.shift(VLAN_TAG_LEN as i32);
        }
        Ok(())
    }

    /// Takes in a read of `len` octets that starts with a virtio-net header (the header ends at
    /// [`HEADROOM`]): its GSO request into `gso`. The frame's length, or `None` (drop it) when
    /// the read is shorter than the header or the header asks for what this code does not know.
    pub fn take_vnet_hdr(&mut self, len: usize) -> Option<usize> {
        let frame_len = len.checked_sub(VNET_HDR_LEN)?;
        let mut hdr = [0u8; VNET_HDR_LEN];
        hdr.copy_from_slice(&self.buf[HEADROOM - VNET_HDR_LEN..HEADROOM]);
        self.gso = GsoInfo::from_vnet_hdr(&hdr).ok()?;
        Some(frame_len)
    }

    /// If the frame carries an 802.1Q tag inline and `vlan` is not set yet, takes the tag out
    /// of the frame into `vlan` (the MAC addresses move 4 bytes towards the payload). Returns
    /// whether a tag was taken.
    pub fn strip_vlan(&mut self) -> bool {
        if self.vlan.is_some() {
            return false;
        }
        let frame = self.frame();
        if frame.len() < 14 + VLAN_TAG_LEN
            || u16::from_be_bytes([frame[12], frame[13]]) != ETH_P_8021Q
        {
            return false;
        }
        let vid = u16::from_be_bytes([frame[14], frame[15]]) & 0x0fff;
        self.buf
            .copy_within(self.start..self.start + 12, self.start + VLAN_TAG_LEN);
        self.start += VLAN_TAG_LEN;
        self.len -= VLAN_TAG_LEN;
        self.vlan = Some(vid);
        if let Some(gso) = self.gso.as_mut() {
            gso.shift(-(VLAN_TAG_LEN as i32));
        }
        true
    }

    /// Re-inserts a tag of an arbitrary TPID (an 802.1ad S-tag the kernel took off) so the
    /// frame is again the bytes that were on the wire.
    pub(crate) fn insert_raw_tag(&mut self, tpid: u16, tci: u16) -> Result<(), SlotError> {
        let saved = self.vlan.take();
        self.vlan = Some(0);
        let result = self.insert_vlan();
        self.vlan = saved;
        result?;
        let tag = self.start + 12;
        self.buf[tag..tag + 2].copy_from_slice(&tpid.to_be_bytes());
        self.buf[tag + 2..tag + 4].copy_from_slice(&tci.to_be_bytes());
        Ok(())
    }

    /// Fills in a partial L4 checksum (`gso.csum`) in software, for an egress that cannot take
    /// offload metadata. Leaves a segment offload in place (see [`GsoInfo::is_segment_offload`]).
    pub fn complete_checksum(&mut self) -> Result<(), SlotError> {
        let Some(info) = self.gso else { return Ok(()) };
        let Some((csum_start, csum_offset)) = info.csum else {
            return Ok(());
        };
        complete_partial_checksum(self.frame_mut(), csum_start, csum_offset)?;
        if let Some(g) = self.gso.as_mut() {
            g.csum = None;
            if g.gso_type == GsoType::None {
                self.gso = None;
            }
        }
        Ok(())
    }

    /// Where the frame ends in `buf`; `OutOfBounds` when `start` and `len` point past it.
    fn end(&self) -> Result<usize, SlotError> {
        self.start
            .checked_add(self.len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(SlotError::OutOfBounds)
    }

    /// Makes room for `need` bytes in front of the frame (a port's `virtio_net_hdr`): if `start`
    /// is smaller than `need`, moves the frame towards the tail.
    pub(crate) fn ensure_headroom(&mut self, need: usize) -> Result<(), SlotError> {
        if self.start >= need {
            return Ok(());
        }
        let end = self.end()?;
        let shift = need - self.start;
        if end + shift > self.buf.len() {
            return Err(SlotError::NoRoom);
        }
        self.buf.copy_within(self.start..end, need);
        self.start = need;
        Ok(())
    }
}

/// Completes the partial layer-4 checksum of `frame` in place, as the device would have: the
/// field at `csum_start + csum_offset` holds the folded pseudo-header sum, and the checksum is
/// the complemented sum from `csum_start` to the end of the frame (field included).
pub fn complete_partial_checksum(
    frame: &mut [u8],
    csum_start: u16,
    csum_offset: u16,
) -> Result<(), SlotError> {
    let (csum_start, csum_offset) = (usize::from(csum_start), usize::from(csum_offset));
    let field = csum_start + csum_offset;
    if field + 2 > frame.len() {
        return Err(SlotError::OutOfBounds);
    }
    // The field holds the folded pseudo-header sum; the sum over [csum_start..] includes it.
    let sum = ones_complement_sum(&frame[csum_start..]);
    let mut folded = !sum;
    if folded == 0 && csum_offset == 6 {
        // UDP (checksum at offset 6): a computed zero is sent as all ones.
        folded = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&folded.to_be_bytes());
    Ok(())
}

/// The 16-bit one's complement sum of `data` (big-endian words, odd byte padded), folded.
///
/// Eight octets at a time: the sum does not depend on the byte order the words are read in
/// (RFC 1071 §2(B)), so native-order 32-bit halves are added into a 64-bit accumulator (no
/// overflow before 2^32 of them) and the folded result is turned into network order once. The
/// segmentation code sums whole 64 KiB segments with it.
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let (words, rest) = data.as_chunks::<8>();
    for w in words {
        let w = u64::from_ne_bytes(*w);
        sum += (w & 0xffff_ffff) + (w >> 32);
    }
    // The tail (at most 7 octets) padded with zeros to a whole word: an odd last octet is the
    // high half of a big-endian word, as the checksum wants it.
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    let w = u64::from_ne_bytes(tail);
    sum += (w & 0xffff_ffff) + (w >> 32);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::from_be(sum as u16)
}

/// Counters of one port (monotonic since it was opened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames the port received but could not hand over: larger than the slot, a malformed or
    /// unknown offload header.
    pub rx_dropped: u64,
    /// Frames the kernel dropped before the port could receive them (an AF_PACKET socket's
    /// ring full: the data path did not keep up); read once a link check.
    pub rx_kernel_dropped: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames given to `send_batch` that were counted as accepted but not sent: a frame the
    /// kernel refused (too large for the MTU, malformed), no room for the tag, an offload the
    /// egress cannot do.
    pub tx_dropped: u64,
}

impl PortStats {
    /// Adds another socket's counters (a port with two): every field, so that a new counter
    /// cannot be left out.
    pub fn add(&mut self, other: &PortStats) {
        let PortStats {
            rx_frames,
            rx_bytes,
            rx_dropped,
            rx_kernel_dropped,
            tx_frames,
            tx_bytes,
            tx_dropped,
        } = *other;
        self.rx_frames += rx_frames;
        self.rx_bytes += rx_bytes;
        self.rx_dropped += rx_dropped;
        self.rx_kernel_dropped += rx_kernel_dropped;
        self.tx_frames += tx_frames;
        self.tx_bytes += tx_bytes;
        self.tx_dropped += tx_dropped;
    }
}

/// What a port negotiated with the kernel when it was opened. A feature that is missing was
/// reported (logged as a warning) and the port works without it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortFeatures {
    /// Frames carry a `virtio_net_hdr`: offload metadata crosses ([`FrameSlot::gso`]).
    pub vnet_hdr: bool,
    /// TCP segmentation offload negotiated (large TCP segments are received whole and may
    /// be sent whole).
    pub tso: bool,
    /// UDP segmentation offload negotiated.
    pub uso: bool,
    /// The kernel drops the port's own outgoing frames before they reach the receive queue
    /// (`PACKET_IGNORE_OUTGOING`); without it they are filtered per frame.
    pub ignore_outgoing: bool,
}

/// The state of the interface under a port, as [`PortIo::check_link`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The port does not follow an interface (a TAP device roamer owns, a test port): taken as
    /// up.
    Unwatched,
    /// Up, with a carrier.
    Up,
    /// The interface is there but administratively down: the kernel drops what is sent.
    AdminDown,
    /// The interface is up without a carrier (a veth whose peer is down or gone): the kernel
    /// drops what is sent.
    NoCarrier,
    /// No interface of the port's name any more (deleted, moved to another namespace), or a new
    /// one that could not be opened: the port has nothing to send on.
    Gone,
}

impl Link {
    /// The HAL's name for this state.
    pub fn state(self) -> roamer_hal::LinkState {
        match self {
            Link::Unwatched => roamer_hal::LinkState::Unwatched,
            Link::Up => roamer_hal::LinkState::Up,
            Link::AdminDown => roamer_hal::LinkState::AdminDown,
            Link::NoCarrier => roamer_hal::LinkState::NoCarrier,
            Link::Gone => roamer_hal::LinkState::Gone,
        }
    }

    /// Whether frames can leave (or are taken to).
    pub fn is_up(self) -> bool {
        matches!(self, Link::Unwatched | Link::Up)
    }

    /// What the state is called in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Unwatched | Link::Up => "up",
            Link::AdminDown => "administratively down",
            Link::NoCarrier => "no carrier",
            Link::Gone => "interface gone",
        }
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one [`PortIo::check_link`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkCheck {
    pub link: Link,
    /// The port was opened again on a new interface of its name since the last check (the old
    /// one was deleted, or left the namespace): [`PortIo::raw_fd`] changed.
    pub reopened: bool,
}

/// A data port: batched, non-blocking frame I/O between the kernel and caller-owned slots.
pub trait PortIo: Send {
    fn name(&self) -> &str;

    /// Fills up to `slots.len()` slots; returns how many. Never blocks (non-blocking fd);
    /// 0 = nothing ready. Each filled slot has `start == HEADROOM` or a little more (when a
    /// tag was taken out of the frame), `vlan` and `gso` set from what arrived.
    fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize>;

    /// Sends `slots[i]` for `i` in `0..n` and returns `n`, how many were taken care of: sent, or
    /// dropped and counted in [`PortStats::tx_dropped`] because that one frame can never be
    /// sent. `slots[n..]` were not sent because the kernel queue is full; send them again
    /// later. A slot's frame (`buf[start..start + len]`) gets its `vlan` tag written in place,
    /// using the headroom, and `vlan` set to `None`, so sending the slot again sends the same
    /// bytes.
    fn send_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize>;

    /// The fd to wait on (for tokio `AsyncFd` / `poll`): readable when frames are waiting.
    fn raw_fd(&self) -> RawFd;

    /// The fd to wait on for room to send (writable when `send_batch` may take more).
    fn tx_fd(&self) -> RawFd {
        self.raw_fd()
    }

    fn mac(&self) -> [u8; 6];

    fn mtu(&self) -> u32;

    /// The interface is administratively up and has a carrier.
    fn is_up(&self) -> bool;

    /// What the port negotiated with the kernel.
    fn features(&self) -> PortFeatures;

    fn stats(&self) -> PortStats;

    /// Looks at the interface under the port and, when an interface of the same name replaced
    /// the one the port was opened on (deleted and created again, or moved out of the namespace
    /// and back), opens the port again on it: same configuration, counters kept, a new
    /// [`PortIo::raw_fd`]. A few system calls and no allocation while nothing changes: the data
    /// path calls it about once a second, never per frame. A port that does not follow an
    /// interface answers [`Link::Unwatched`] (the default).
    fn check_link(&mut self) -> LinkCheck {
        LinkCheck {
            link: Link::Unwatched,
            reopened: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with_tag(vid: u16) -> Vec<u8> {
        let mut f = vec![0xaa; 6];
        f.extend_from_slice(&[0xbb; 6]);
        f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
        f.extend_from_slice(&(0x2000 | vid).to_be_bytes());
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4, 5]);
        f
    }

    #[test]
    fn strip_then_insert_round_trips() {
        let mut slot = FrameSlot::new(FRAME_ROOM);
        let tagged = frame_with_tag(42);
        slot.set_frame(&tagged).unwrap();
        assert!(slot.strip_vlan());
        assert_eq!(slot.vlan, Some(42));
        assert_eq!(slot.start, HEADROOM + 4);
        assert_eq!(&slot.frame()[12..14], &[0x08, 0x00]);
        assert!(!slot.strip_vlan());
        slot.insert_vlan().unwrap();
        assert_eq!(slot.vlan, None);
        // Priority bits are not kept.
        let mut expect = tagged.clone();
        expect[14] &= 0x0f;
        assert_eq!(slot.frame(), &expect[..]);
    }

    #[test]
    fn insert_without_headroom_uses_tailroom() {
        let mut slot = FrameSlot::new(64);
        slot.set_frame(&[7u8; 20]).unwrap();
        slot.start = 0;
        slot.buf.copy_within(HEADROOM..HEADROOM + 20, 0);
        slot.vlan = Some(5);
        slot.insert_vlan().unwrap();
        assert_eq!(slot.start, 0);
        assert_eq!(slot.len, 24);
        assert_eq!(&slot.frame()[12..16], &[0x81, 0, 0, 5]);
        assert_eq!(&slot.frame()[16..], &[7u8; 8]);
    }

    #[test]
    fn insert_refuses_runts_and_bad_ids() {
        let mut slot = FrameSlot::new(64);
        slot.set_frame(&[0u8; 10]).unwrap();
        slot.vlan = Some(1);
        assert_eq!(slot.insert_vlan(), Err(SlotError::Runt));
        slot.set_frame(&[0u8; 20]).unwrap();
        slot.vlan = Some(4096);
        assert_eq!(slot.insert_vlan(), Err(SlotError::BadVlan));
    }

    #[test]
    fn offsets_follow_the_tag() {
        let mut slot = FrameSlot::new(FRAME_ROOM);
        slot.set_frame(&frame_with_tag(9)).unwrap();
        slot.gso = Some(GsoInfo {
            gso_type: GsoType::TcpV4,
            ecn: false,
            gso_size: 1448,
            hdr_len: 70,
            csum: Some((38, 16)),
            data_valid: false,
        });
        slot.strip_vlan();
        let g = slot.gso.unwrap();
        assert_eq!((g.hdr_len, g.csum), (66, Some((34, 16))));
        slot.insert_vlan().unwrap();
        let g = slot.gso.unwrap();
        assert_eq!((g.hdr_len, g.csum), (70, Some((38, 16))));
    }

    #[test]
    fn vnet_hdr_round_trips() {
        let info = GsoInfo {
            gso_type: GsoType::TcpV6,
            ecn: true,
            gso_size: 1428,
            hdr_len: 86,
            csum: Some((54, 16)),
            data_valid: false,
        };
        let mut raw = [0u8; VNET_HDR_LEN];
        GsoInfo::to_vnet_hdr(Some(&info), &mut raw);
        assert_eq!(GsoInfo::from_vnet_hdr(&raw), Ok(Some(info)));
        GsoInfo::to_vnet_hdr(None, &mut raw);
        assert_eq!(GsoInfo::from_vnet_hdr(&raw), Ok(None));
        raw[1] = 0x42;
        assert_eq!(GsoInfo::from_vnet_hdr(&raw), Err(0x42));
    }

    #[test]
    fn the_word_at_a_time_sum_is_the_rfc_1071_sum() {
        fn reference(data: &[u8]) -> u16 {
            let mut sum: u64 = 0;
            for c in data.chunks(2) {
                sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            sum as u16
        }
        let mut x: u32 = 0x1234_5678;
        let data: Vec<u8> = (0..70_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in (0..40).chain([1447, 1448, 8191, 65_535, 65_536, 70_000]) {
            for start in [0, 1, 3, 8] {
                let d = &data[start..(start + len).min(data.len())];
                assert_eq!(ones_complement_sum(d), reference(d), "{len} from {start}");
            }
        }
        assert_eq!(ones_complement_sum(&[0xff; 64]), 0xffff);
        assert_eq!(ones_complement_sum(&[]), 0);
    }

    #[test]
    fn software_checksum_matches_a_full_computation() {
        // Ethernet + IPv4 + UDP with a partial checksum (pseudo-header sum in the field).
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let payload = b"hello, roamer!!";
        let udp_len = 8 + payload.len() as u16;
        let ip = [
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        f.extend_from_slice(&ip);
        f.extend_from_slice(&1234u16.to_be_bytes());
        f.extend_from_slice(&4321u16.to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&ones_complement_sum(&pseudo).to_be_bytes());
        f.extend_from_slice(payload);
        let mut slot = FrameSlot::new(FRAME_ROOM);
        slot.set_frame(&f).unwrap();
        slot.gso = Some(GsoInfo {
            gso_type: GsoType::None,
            ecn: false,
            gso_size: 0,
            hdr_len: 0,
            csum: Some((34, 6)),
            data_valid: false,
        });
        slot.complete_checksum().unwrap();
        assert_eq!(slot.gso, None);
        // Verification: pseudo header + UDP header and data sum to 0xffff.
        let mut check = pseudo.clone();
        check.extend_from_slice(&slot.frame()[34..]);
        assert_eq!(ones_complement_sum(&check), 0xffff);
    }
}
