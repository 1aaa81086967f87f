//! One harness for the software segmentation code ([`super::gso`]), shared by the `gso` fuzz
//! target and the test that replays its corpus. Frames come from ports with offload metadata
//! (a `virtio_net_hdr`) that a local host chooses: every public function of `gso` is run on
//! arbitrary frames and arbitrary [`GsoInfo`]. Nothing may panic, and what the doc comments
//! promise is checked where it is cheap and certain: pieces lie within their slots, carry the
//! source's tag and no offload, and together carry the original payload; a refused append
//! leaves the held frame as it was.
//!
//! Input: `[flags, gso_size:2, hdr_len:2, csum_start:2, csum_offset:2, size:2, split:2, frames]`
//! (big-endian; missing octets are zeros). Flags: bits 0-2 the [`GsoType`] (modulo 5), bit 3
//! ECN, bit 4 a partial checksum at `csum_start`/`csum_offset`, bit 5 the partial checksum
//! located by [`gso::partial_checksum`] instead, bit 6 the frame carries VLAN `size & 0xfff`
//! (inserted and stripped again first), bit 7 `data_valid`. `size` is one more `max_ip_len`
//! and the MSS for [`gso::tcp_offload`]. The first `split` octets of `frames` are the frame
//! under test, the rest the frame to append to it (no second frame when `split` is 0 or
//! beyond the end).

use super::gso::{self, InPlaceCut, SegmentError};
use super::port::{FrameSlot, GSO_FRAME_ROOM, GsoInfo, GsoType, HEADROOM, ones_complement_sum};

const HEADER: usize = 13;
const OUT_SLOTS: usize = 64;
const OUT_ROOM: usize = 16 * 1024;
const ETH_HLEN: usize = 14;

/// Slots allocated once and reused for every input.
#[derive(Debug)]
pub struct GsoHarness {
    /// The frame under test with the fuzzed metadata.
    src: FrameSlot,
    /// Scratch: cut in place, appended to.
    work: FrameSlot,
    out: Vec<FrameSlot>,
    joined: Vec<u8>,
}

impl Default for GsoHarness {
    fn default() -> Self {
        Self::new()
    }
}

/// What the input asks for.
#[derive(Debug, Clone, Copy)]
struct Params {
    gso: Option<GsoInfo>,
    vlan: Option<u16>,
    size: u16,
}

impl GsoHarness {
    pub fn new() -> GsoHarness {
        GsoHarness {
            src: FrameSlot::new(GSO_FRAME_ROOM),
            work: FrameSlot::new(GSO_FRAME_ROOM),
            out: FrameSlot::batch(OUT_SLOTS, OUT_ROOM),
            joined: Vec::new(),
        }
    }

    /// Runs every entry point of `gso` on the frames and metadata in `data`.
    pub fn feed(&mut self, data: &[u8]) {
        let mut h = [0u8; HEADER];
        let n = data.len().min(HEADER);
        h[..n].copy_from_slice(&data[..n]);
        let rest = &data[n..];
        let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        let split = usize::from(be16(11));
        let (frame, next) = if split == 0 || split > rest.len() {
            (rest, &[][..])
        } else {
            rest.split_at(split)
        };
        if frame.len() > GSO_FRAME_ROOM {
            return;
        }
        let flags = h[0];
        let gso_type = match (flags & 7) % 5 {
            0 => GsoType::None,
            1 => GsoType::TcpV4,
            2 => GsoType::TcpV6,
            3 => GsoType::UdpL4,
            _ => GsoType::Ufo,
        };
        let mut info = GsoInfo {
            gso_type,
            ecn: flags & 0x08 != 0,
            gso_size: be16(1),
            hdr_len: be16(3),
            csum: (flags & 0x10 != 0).then(|| (be16(5), be16(7))),
            data_valid: flags & 0x80 != 0,
        };
        let located = gso::partial_checksum(frame);
        if let Some(l) = located {
            let (start, offset) = l.csum.expect("partial_checksum sets csum");
            assert!(usize::from(start) + usize::from(offset) + 2 <= frame.len());
            if flags & 0x20 != 0 {
                info.csum = l.csum;
            }
        }
        let size = be16(9);
        let p = Params {
            gso: Some(info),
            vlan: (flags & 0x40 != 0).then_some(size & 0x0fff),
            size,
        };
        self.vlan_round_trip(frame, &p);
        load(&mut self.src, frame, &p);

        self.segments(&p);
        self.in_place(&p);
        self.offload_and_append_tcp(frame, next, &p);
        self.append_udp(frame, next, &p);
        self.fragment(frame, &p);

        // A partial checksum located in the frame is always in range.
        if let Some(l) = located {
            load(&mut self.work, frame, &Params { gso: Some(l), ..p });
            assert_eq!(self.work.complete_checksum(), Ok(()));
            assert_eq!(self.work.gso, None, "only a checksum to do");
        }
        let had_csum = self.src.gso.is_some_and(|g| g.csum.is_some());
        if self.src.complete_checksum().is_ok() && had_csum {
            assert!(self.src.gso.is_none_or(|g| g.csum.is_none()));
        }
        assert_eq!(self.src.len, frame.len());
        in_bounds(&self.src);
    }

    /// A tag inserted and stripped again gives the same frame and offsets back (away from the
    /// ends of the offset range, where they are clamped), and an inline tag is taken out.
    fn vlan_round_trip(&mut self, frame: &[u8], p: &Params) {
        let slot = &mut self.work;
        load(slot, frame, &Params { vlan: None, ..*p });
        let before = slot.gso;
        if slot.strip_vlan() {
            assert_eq!(slot.len + 4, frame.len());
            assert_eq!(slot.frame()[..12], frame[..12]);
            assert_eq!(slot.frame()[12..], frame[16..]);
            assert_eq!(slot.insert_vlan(), Ok(()));
            let mut expect = frame.to_vec();
            expect[14] &= 0x0f;
            assert_eq!(slot.frame(), &expect[..], "strip then insert");
            if offsets_unclamped(before) {
                assert_eq!(slot.gso, before);
            }
        }
        let Some(vid) = p.vlan else { return };
        load(slot, frame, &Params { vlan: None, ..*p });
        slot.vlan = Some(vid);
        match slot.insert_vlan() {
            Ok(()) => {
                assert_eq!(slot.frame()[12..16], [0x81, 0, (vid >> 8) as u8, vid as u8]);
                assert!(slot.strip_vlan());
                assert_eq!(slot.vlan, Some(vid));
                assert_eq!(slot.frame(), frame, "insert then strip");
                if offsets_unclamped(before) {
                    assert_eq!(slot.gso, before);
                }
            }
            Err(_) => assert!(frame.len() < ETH_HLEN),
        }
        in_bounds(slot);
    }

    /// `segment_count`, `segment` and `segment_to_fit` on the fuzzed frame.
    fn segments(&mut self, p: &Params) {
        let count = gso::segment_count(&self.src);
        let large = self.src.gso.is_some_and(|g| g.is_segment_offload());
        if !large {
            assert_eq!(count, Ok(1));
        }
        for max_ip_len in max_ip_lens(p.size) {
            poison(&mut self.out);
            let r = if max_ip_len == 0 {
                gso::segment(&self.src, &mut self.out)
            } else {
                gso::segment_to_fit(&self.src, max_ip_len, &mut self.out)
            };
            let Ok(n) = r else {
                if !large {
                    assert_eq!(r, Err(SegmentError::NotLarge));
                }
                continue;
            };
            let count = count.expect("a frame that is cut is counted");
            assert!(n >= 1 && n <= count, "{n} pieces of {count}");
            if max_ip_len == 0 {
                assert_eq!(n, count);
            }
            check_pieces(&self.src, &self.out[..n], max_ip_len, &mut self.joined);
        }
    }

    /// `InPlaceCut` (with and without UDP checksums) gives the pieces `segment_to_fit` copies.
    fn in_place(&mut self, p: &Params) {
        for max_ip_len in max_ip_lens(p.size) {
            for udp_checksum in [true, false] {
                let Ok(cut) = InPlaceCut::new(&self.src, max_ip_len) else {
                    let copied = gso::segment_to_fit(&self.src, max_ip_len, &mut self.out);
                    assert!(copied.is_err(), "copied but not cut in place");
                    continue;
                };
                let mut cut = if udp_checksum {
                    cut
                } else {
                    cut.without_udp_checksum()
                };
                poison(&mut self.out);
                let copied = gso::segment_to_fit(&self.src, max_ip_len, &mut self.out).ok();
                if let Some(n) = copied {
                    assert_eq!(cut.count(), n);
                }
                let (l4, hdr) = headers(self.src.frame()).expect("InPlaceCut parsed it");
                let udp = self.src.gso.is_some_and(|g| g.gso_type == GsoType::UdpL4);
                let src = self.src.frame();
                load_slot_from(&mut self.work, &self.src);
                self.joined.clear();
                let mut made = 0;
                while cut.next_piece(&mut self.work) {
                    assert!(made < cut.count(), "more pieces than counted");
                    let w = &mut self.work;
                    in_bounds(w);
                    assert!(w.start >= HEADROOM, "a piece in front of the segment");
                    assert_eq!((w.vlan, w.gso), (self.src.vlan, None));
                    let f = w.frame();
                    assert!(f.len() >= hdr);
                    self.joined.extend_from_slice(&f[hdr..]);
                    if let Some(c) = copied.map(|_| self.out[made].frame()) {
                        if udp && !udp_checksum {
                            assert_eq!(f[..l4 + 6], c[..l4 + 6], "piece {made}");
                            assert_eq!(f[l4 + 6..l4 + 8], [0, 0], "no UDP checksum");
                            assert_eq!(f[l4 + 8..], c[l4 + 8..], "piece {made}");
                        } else {
                            assert_eq!(f, c, "piece {made}");
                        }
                    }
                    // What the pipeline may do to a piece before the next is made: rewrite its
                    // headers, encapsulate it (write in front of it).
                    let s = w.start;
                    w.buf[s.saturating_sub(64)..s + 20].fill(0xee);
                    made += 1;
                }
                assert_eq!(made, cut.count());
                assert!(!cut.next_piece(&mut self.work), "done");
                assert_eq!(self.joined, src[hdr..], "the pieces carry the payload");
            }
        }
    }

    /// `tcp_offload`, then `append_tcp`, `segment` and `complete_checksum` on the result;
    /// `append_tcp` also on the fuzzed metadata.
    fn offload_and_append_tcp(&mut self, frame: &[u8], next: &[u8], p: &Params) {
        load_slot_from(&mut self.work, &self.src);
        append_checked(&mut self.work, next, gso::append_tcp);

        let w = &mut self.work;
        load(w, frame, &Params { gso: None, ..*p });
        if gso::tcp_offload(w, p.size).is_err() {
            assert_eq!(w.frame(), frame, "nothing changed on a refusal");
            assert_eq!(w.gso, None, "nothing set on a refusal");
            return;
        }
        let info = w.gso.expect("tcp_offload sets the offload");
        let (l4, _) = headers(frame).expect("tcp_offload parsed it");
        let v6 = frame[12..14] == [0x86, 0xdd];
        let want_type = if v6 { GsoType::TcpV6 } else { GsoType::TcpV4 };
        assert_eq!(info.gso_type, want_type);
        assert_eq!(info.gso_size, p.size);
        assert_eq!(info.csum, Some((l4 as u16, 16)));
        assert_eq!(w.frame()[..l4 + 16], frame[..l4 + 16]);
        assert_eq!(w.frame()[l4 + 18..], frame[l4 + 18..]);
        append_checked(w, next, gso::append_tcp);
        poison(&mut self.out);
        if let Ok(n) = gso::segment(w, &mut self.out) {
            check_pieces(w, &self.out[..n], 0, &mut self.joined);
        }
        // The kernel's part: the partial checksum completed is the TCP checksum.
        assert_eq!(w.complete_checksum(), Ok(()));
        assert_eq!(w.gso.map(|g| (g.gso_type, g.csum)), Some((want_type, None)));
        let f = w.frame();
        self.joined.clear();
        if v6 {
            self.joined
                .extend_from_slice(&f[ETH_HLEN + 8..ETH_HLEN + 40]);
        } else {
            self.joined
                .extend_from_slice(&f[ETH_HLEN + 12..ETH_HLEN + 20]);
        }
        self.joined.extend_from_slice(&[0, 0, 0, 6]);
        self.joined
            .extend_from_slice(&((f.len() - l4) as u32).to_be_bytes());
        self.joined.extend_from_slice(&f[l4..]);
        assert_eq!(ones_complement_sum(&self.joined), 0xffff, "TCP checksum");
    }

    /// `append_udp` on the plain frame (twice: a train of three) and on the fuzzed metadata.
    fn append_udp(&mut self, frame: &[u8], next: &[u8], p: &Params) {
        load_slot_from(&mut self.work, &self.src);
        append_checked(&mut self.work, next, gso::append_udp);

        let w = &mut self.work;
        load(w, frame, &Params { gso: None, ..*p });
        if !append_checked(w, next, gso::append_udp) {
            return;
        }
        let info = w.gso.expect("append_udp sets the offload");
        assert_eq!(info.gso_type, GsoType::UdpL4);
        append_checked(w, next, gso::append_udp);
        poison(&mut self.out);
        if let Ok(n) = gso::segment(w, &mut self.out) {
            check_pieces(w, &self.out[..n], 0, &mut self.joined);
        }
    }

    /// `fragment_ipv4`: every fragment written, within its slot and `max_ip_len`, and together
    /// the original packet's data.
    fn fragment(&mut self, frame: &[u8], p: &Params) {
        load(&mut self.work, frame, &Params { gso: None, ..*p });
        for max_ip_len in [0, 28, 68, 576, 1464, usize::from(p.size), 65_535] {
            poison(&mut self.out);
            let Ok(n) = gso::fragment_ipv4(&self.work, max_ip_len, &mut self.out) else {
                continue;
            };
            let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            self.joined.clear();
            for (i, piece) in self.out[..n].iter().enumerate() {
                assert_eq!(piece.start, HEADROOM, "fragment {i} of {n} written");
                in_bounds(piece);
                assert_eq!((piece.vlan, piece.gso), (self.work.vlan, None));
                let f = piece.frame();
                assert!(f.len() >= ETH_HLEN + 20 && f.len() - ETH_HLEN <= max_ip_len);
                self.joined.extend_from_slice(&f[ETH_HLEN + 20..]);
            }
            assert_eq!(self.joined, frame[ETH_HLEN + 20..ETH_HLEN + total]);
        }
    }
}

/// The `max_ip_len`s every input is cut for: [`gso::segment`]'s 0, the smallest IPv4 MTU, the
/// LISP tunnels of a 1500 and a 9000 underlay, the largest IP packet, and the input's own.
fn max_ip_lens(size: u16) -> [usize; 6] {
    [0, 68, 1464, 8964, 65_535, usize::from(size)]
}

/// Puts `frame` into `slot` with the input's tag and metadata.
fn load(slot: &mut FrameSlot, frame: &[u8], p: &Params) {
    slot.set_frame(frame).expect("frames fit GSO_FRAME_ROOM");
    slot.vlan = p.vlan;
    slot.gso = p.gso;
}

fn load_slot_from(slot: &mut FrameSlot, src: &FrameSlot) {
    slot.set_frame(src.frame())
        .expect("frames fit GSO_FRAME_ROOM");
    slot.vlan = src.vlan;
    slot.gso = src.gso;
}

/// Marks the output slots so a piece reported but not written shows (`start` 0).
fn poison(out: &mut [FrameSlot]) {
    for s in out {
        s.start = 0;
        s.len = 0;
    }
}

fn in_bounds(slot: &FrameSlot) {
    assert!(
        slot.start
            .checked_add(slot.len)
            .is_some_and(|e| e <= slot.buf.len()),
        "frame {}+{} outside its {}-octet slot",
        slot.start,
        slot.len,
        slot.buf.len()
    );
}

/// Whether a tag inserted and taken out again gives these offsets back.
fn offsets_unclamped(g: Option<GsoInfo>) -> bool {
    let ok = |v: u16| (8..=65_000).contains(&v);
    g.is_none_or(|g| (g.hdr_len == 0 || ok(g.hdr_len)) && g.csum.is_none_or(|(s, _)| ok(s)))
}

/// `(l4, hdr)`: where the L4 header and the payload of a TCP or UDP frame start, read as
/// [`gso`] reads them (only for frames `gso` accepted).
fn headers(f: &[u8]) -> Option<(usize, usize)> {
    let (l4, proto) = match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 => (
            ETH_HLEN + usize::from(f.get(ETH_HLEN)? & 0x0f) * 4,
            *f.get(23)?,
        ),
        0x86dd => (ETH_HLEN + 40, *f.get(20)?),
        _ => return None,
    };
    match proto {
        6 => Some((l4, l4 + usize::from(f.get(l4 + 12)? >> 4) * 4)),
        17 => Some((l4, l4 + 8)),
        _ => None,
    }
}

/// Checks the pieces `src` was cut into for `max_ip_len` (0: [`gso::segment`]).
fn check_pieces(src: &FrameSlot, pieces: &[FrameSlot], max_ip_len: usize, joined: &mut Vec<u8>) {
    let info = src.gso.expect("only large frames are cut");
    let (_, hdr) = headers(src.frame()).expect("a frame that was cut parses");
    let mss = usize::from(info.gso_size);
    let udp = info.gso_type == GsoType::UdpL4;
    joined.clear();
    for (i, piece) in pieces.iter().enumerate() {
        assert_eq!(
            piece.start,
            HEADROOM,
            "piece {i} of {} written",
            pieces.len()
        );
        in_bounds(piece);
        assert_eq!((piece.vlan, piece.gso), (src.vlan, None));
        let f = piece.frame();
        assert!(f.len() >= hdr, "piece {i} shorter than its headers");
        let payload = f.len() - hdr;
        if udp || max_ip_len == 0 {
            assert!(payload <= mss, "piece {i}: {payload} octets, mss {mss}");
        } else {
            assert!(payload <= mss || f.len() - ETH_HLEN <= max_ip_len);
        }
        joined.extend_from_slice(&f[hdr..]);
    }
    assert_eq!(
        joined[..],
        src.frame()[hdr..],
        "the pieces carry the payload"
    );
}

/// Appends `next` to `held`; a refusal must leave `held` as it was, an append add `next`'s
/// payload at the end. Returns whether it was appended.
fn append_checked(
    held: &mut FrameSlot,
    next: &[u8],
    append: fn(&mut FrameSlot, &[u8]) -> Result<(), SegmentError>,
) -> bool {
    let before = held.frame().to_vec();
    let (start, gso, vlan) = (held.start, held.gso, held.vlan);
    let r = append(held, next);
    in_bounds(held);
    assert_eq!((held.start, held.vlan), (start, vlan));
    if r.is_err() {
        assert_eq!(held.frame(), &before[..], "refused: frame unchanged");
        assert_eq!(held.gso, gso, "refused: offload unchanged");
        return false;
    }
    let (_, hdr) = headers(next).expect("an appended frame parses");
    assert_eq!(held.len, before.len() + next.len() - hdr);
    assert_eq!(
        held.frame()[before.len()..],
        next[hdr..],
        "payload appended"
    );
    true
}
