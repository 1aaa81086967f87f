//! ETR / PETR side: outer-header validation and inner-packet location (protocols.md §2.4), and the
//! RFC 6040 / RFC 9300 outer→inner rewrite of TTL, DSCP and ECN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::{
    GpeNextProtocol, HEADER_LEN, LISP_DATA_PORT, LispDataHeader, LispDataRepr, UDP_HEADER_LEN,
    header, header_mut,
};
use crate::ForwardingError;
use crate::wire::checksum;

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const ETHERNET_HEADER_LEN: usize = 14;

/// What the inner packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InnerKind {
    Ipv4,
    Ipv6,
    /// LISP-GPE next protocol 3 (an Ethernet frame without FCS).
    Ethernet,
}

/// The outer-header fields an ETR needs after decapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterInfo {
    /// Source RLOC (SMR target, gleaning).
    pub src: IpAddr,
    /// Destination RLOC (must be one of mine; checked by the caller).
    pub dst: IpAddr,
    /// Outer TTL / hop limit.
    pub ttl: u8,
    /// Outer ToS / traffic class (DSCP << 2 | ECN).
    pub tos: u8,
    /// UDP source port.
    pub src_port: u16,
    /// UDP checksum as received (0 = not computed).
    pub udp_checksum: u16,
}

/// Result of [`decapsulate`]: offsets are relative to the slice given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    pub outer: OuterInfo,
    pub header: LispDataRepr,
    pub inner_kind: InnerKind,
    /// Offset of the UDP header.
    pub udp_start: usize,
    /// Offset of the inner packet (just after the LISP header).
    pub inner_start: usize,
    /// Length of the inner packet (bounded by the UDP length).
    pub inner_len: usize,
}

impl Decapsulated {
    /// Where the inner packet is.
    pub fn inner_range(&self) -> Range<usize> {
        self.inner_start..self.inner_start + self.inner_len
    }

    /// The inner packet inside `packet` (the slice given to [`decapsulate`]).
    pub fn inner<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        packet.get(self.inner_range()).unwrap_or(&[])
    }
}

fn truncated(what: &'static str, needed: usize, available: usize) -> ForwardingError {
    ForwardingError::Truncated {
        what,
        needed,
        available,
    }
}

/// Outer IP header fields and where its payload is.
struct Outer {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    payload: Range<usize>,
}

fn outer_ipv4(packet: &[u8]) -> Result<Outer, ForwardingError> {
    let h = header::<IPV4_HEADER_LEN>(packet, "outer IPv4 header")?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < IPV4_HEADER_LEN {
        return Err(ForwardingError::BadValue {
            what: "outer IPv4 header length (IHL)",
            value: u64::from(h[0] & 0x0f),
        });
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < ihl || total > packet.len() {
        return Err(ForwardingError::BadLength {
            what: "outer IPv4 total length",
            declared: total,
            actual: packet.len(),
        });
    }
    let header = packet.get(..ihl).unwrap_or(&[]);
    if checksum::fold(checksum::add(0, header)) != 0xffff {
        let found = u16::from_be_bytes([h[10], h[11]]);
        let mut acc = checksum::add(0, &h[..10]);
        acc = checksum::add(acc, header.get(12..).unwrap_or(&[]));
        return Err(ForwardingError::BadChecksum {
            what: "outer IPv4 header",
            found,
            expected: checksum::finish(acc),
        });
    }
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let offset = frag & 0x1fff;
    let more_fragments = frag & 0x2000 != 0;
    if offset != 0 || more_fragments {
        return Err(ForwardingError::Fragmented {
            what: "outer IPv4 packet",
            offset,
            more_fragments,
        });
    }
    if h[9] != checksum::IPPROTO_UDP {
        return Err(ForwardingError::BadValue {
            what: "outer IPv4 protocol (not UDP)",
            value: u64::from(h[9]),
        });
    }
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    Ok(Outer {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        ttl: h[8],
        tos: h[1],
        payload: ihl..total,
    })
}

fn outer_ipv6(packet: &[u8]) -> Result<Outer, ForwardingError> {
    let h = header::<IPV6_HEADER_LEN>(packet, "outer IPv6 header")?;
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let end = IPV6_HEADER_LEN + payload_len;
    if end > packet.len() {
        return Err(ForwardingError::BadLength {
            what: "outer IPv6 payload length",
            declared: payload_len,
            actual: packet.len() - IPV6_HEADER_LEN,
        });
    }
    // Extension headers are not walked: an ITR sends UDP directly after the fixed header.
    if h[6] != checksum::IPPROTO_UDP {
        return Err(ForwardingError::BadValue {
            what: "outer IPv6 next header (not UDP)",
            value: u64::from(h[6]),
        });
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&h[8..24]);
    let src = Ipv6Addr::from(s);
    s.copy_from_slice(&h[24..40]);
    let dst = Ipv6Addr::from(s);
    Ok(Outer {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl: h[7],
        tos: (h[0] << 4) | (h[1] >> 4),
        payload: IPV6_HEADER_LEN..end,
    })
}

/// Validates the outer headers of a LISP data packet and locates the inner packet.
///
/// `packet` starts at the outer IP header (after Ethernet); trailing octets after the IP datagram
/// (Ethernet padding) are ignored. Checks, each failing with a typed error:
/// outer IPv4 (IHL, total length, header checksum, not a fragment, protocol UDP) or IPv6 (payload
/// length, next header UDP — extension headers are not walked); UDP destination port 4341 and UDP
/// length; LISP header present; key id 0 (LISP-crypto payloads are not supported); inner packet
/// type from the LISP-GPE next protocol (1 IPv4, 2 IPv6, 3 Ethernet) or, without P, from the inner
/// IP version nibble; inner header long enough (20 / 40 / 14 octets).
///
/// The UDP checksum is not verified (a receiver MAY, protocols.md §2.4 step 2; use
/// [`udp_checksum_ok`]). The outer destination RLOC and the instance-ID are the caller's to check.
pub fn decapsulate(packet: &[u8]) -> Result<Decapsulated, ForwardingError> {
    let first = *packet.first().ok_or(truncated("outer IP header", 1, 0))?;
    let outer = match first >> 4 {
        4 => outer_ipv4(packet)?,
        6 => outer_ipv6(packet)?,
        v => {
            return Err(ForwardingError::BadValue {
                what: "outer IP version",
                value: u64::from(v),
            });
        }
    };
    let ip_payload = packet.get(outer.payload.clone()).unwrap_or(&[]);
    let udp = header::<UDP_HEADER_LEN>(ip_payload, "UDP header")?;
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let udp_checksum = u16::from_be_bytes([udp[6], udp[7]]);
    if dst_port != LISP_DATA_PORT {
        return Err(ForwardingError::BadValue {
            what: "UDP destination port (not LISP data 4341)",
            value: u64::from(dst_port),
        });
    }
    if udp_len < UDP_HEADER_LEN + HEADER_LEN || udp_len > ip_payload.len() {
        return Err(ForwardingError::BadLength {
            what: "UDP length of a LISP data packet",
            declared: udp_len,
            actual: ip_payload.len(),
        });
    }
    let udp_start = outer.payload.start;
    let lisp_start = udp_start + UDP_HEADER_LEN;
    let inner_start = lisp_start + HEADER_LEN;
    let inner_len = udp_len - UDP_HEADER_LEN - HEADER_LEN;
    let lisp = packet.get(lisp_start..inner_start).unwrap_or(&[]);
    let header = LispDataRepr::parse(&LispDataHeader::new_checked(lisp)?);
    if header.key_id != 0 {
        return Err(ForwardingError::BadValue {
            what: "LISP key id (LISP-crypto payload not supported)",
            value: u64::from(header.key_id),
        });
    }
    let inner = packet
        .get(inner_start..inner_start + inner_len)
        .unwrap_or(&[]);
    let inner_kind = match header.next_protocol {
        Some(GpeNextProtocol::IPV4) => InnerKind::Ipv4,
        Some(GpeNextProtocol::IPV6) => InnerKind::Ipv6,
        Some(GpeNextProtocol::ETHERNET) => InnerKind::Ethernet,
        Some(other) => {
            return Err(ForwardingError::BadValue {
                what: "LISP-GPE next protocol (supported: 1 IPv4, 2 IPv6, 3 Ethernet)",
                value: u64::from(other.0),
            });
        }
        None => match inner.first().map(|b| b >> 4) {
            Some(4) => InnerKind::Ipv4,
            Some(6) => InnerKind::Ipv6,
            Some(v) => {
                return Err(ForwardingError::BadValue {
                    what: "inner IP version",
                    value: u64::from(v),
                });
            }
            None => return Err(truncated("inner packet", 1, 0)),
        },
    };
    let min = match inner_kind {
        InnerKind::Ipv4 => IPV4_HEADER_LEN,
        InnerKind::Ipv6 => IPV6_HEADER_LEN,
        InnerKind::Ethernet => ETHERNET_HEADER_LEN,
    };
    if inner_len < min {
        return Err(truncated("inner packet header", min, inner_len));
    }
    Ok(Decapsulated {
        outer: OuterInfo {
            src: outer.src,
            dst: outer.dst,
            ttl: outer.ttl,
            tos: outer.tos,
            src_port,
            udp_checksum,
        },
        header,
        inner_kind,
        udp_start,
        inner_start,
        inner_len,
    })
}

/// Verifies the UDP checksum of a decapsulated packet: `true` when it is 0 (not computed, allowed
/// for IPv4 and, per RFC 6935/6936, for IPv6 tunnels) or correct.
pub fn udp_checksum_ok(packet: &[u8], d: &Decapsulated) -> bool {
    if d.outer.udp_checksum == 0 {
        return true;
    }
    let end = d.inner_start + d.inner_len;
    let segment = packet.get(d.udp_start..end).unwrap_or(&[]);
    let len = u64::try_from(segment.len()).unwrap_or(0);
    let pseudo = match (d.outer.src, d.outer.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            checksum::pseudo_ipv4(s, t, checksum::IPPROTO_UDP, 0) + len
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            checksum::pseudo_ipv6(s, t, checksum::IPPROTO_UDP, 0) + len
        }
        _ => return false,
    };
    checksum::verifies(pseudo, segment)
}

/// RFC 6040 §4.2 decapsulation table: the inner ECN after decapsulation, or
/// [`ForwardingError::EcnCeOnNotEct`] (drop) for outer CE over an inner Not-ECT packet.
pub fn ecn_decapsulate(inner: u8, outer: u8) -> Result<u8, ForwardingError> {
    const NOT_ECT: u8 = 0b00;
    const ECT1: u8 = 0b01;
    const ECT0: u8 = 0b10;
    const CE: u8 = 0b11;
    match (inner & 3, outer & 3) {
        (NOT_ECT, CE) => Err(ForwardingError::EcnCeOnNotEct),
        (NOT_ECT, _) => Ok(NOT_ECT),
        (CE, _) | (_, CE) => Ok(CE),
        (ECT0, ECT1) => Ok(ECT1),
        (i, _) => Ok(i),
    }
}

/// Applies protocols.md §2.4 steps 5-6 to the inner IP header at the start of `inner`:
/// TTL := min(inner, outer); DSCP := outer DSCP; ECN per [`ecn_decapsulate`]. The IPv4 header
/// checksum is updated incrementally (RFC 1624). Ethernet inner frames are left unchanged.
pub fn apply_outer_to_inner(
    inner: &mut [u8],
    kind: InnerKind,
    outer_ttl: u8,
    outer_tos: u8,
) -> Result<(), ForwardingError> {
    match kind {
        InnerKind::Ipv4 => {
            let h = header_mut::<IPV4_HEADER_LEN>(inner, "inner IPv4 header")?;
            let ecn = ecn_decapsulate(h[1], outer_tos)?;
            let old0 = u16::from_be_bytes([h[0], h[1]]);
            let old4 = u16::from_be_bytes([h[8], h[9]]);
            h[1] = (outer_tos & 0xfc) | ecn;
            h[8] = h[8].min(outer_ttl);
            let new0 = u16::from_be_bytes([h[0], h[1]]);
            let new4 = u16::from_be_bytes([h[8], h[9]]);
            let mut c = u16::from_be_bytes([h[10], h[11]]);
            c = checksum::update_word(c, old0, new0);
            c = checksum::update_word(c, old4, new4);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            Ok(())
        }
        InnerKind::Ipv6 => {
            let h = header_mut::<IPV6_HEADER_LEN>(inner, "inner IPv6 header")?;
            let tc = (h[0] << 4) | (h[1] >> 4);
            let ecn = ecn_decapsulate(tc, outer_tos)?;
            let tc = (outer_tos & 0xfc) | ecn;
            h[0] = (h[0] & 0xf0) | (tc >> 4);
            h[1] = (h[1] & 0x0f) | (tc << 4);
            h[7] = h[7].min(outer_ttl);
            Ok(())
        }
        InnerKind::Ethernet => Ok(()),
    }
}

/// [`decapsulate`], then [`apply_outer_to_inner`] on the inner packet in place.
pub fn decapsulate_in_place(packet: &mut [u8]) -> Result<Decapsulated, ForwardingError> {
    let d = decapsulate(packet)?;
    let inner = packet.get_mut(d.inner_range()).unwrap_or(&mut []);
    apply_outer_to_inner(inner, d.inner_kind, d.outer.ttl, d.outer.tos)?;
    Ok(d)
}
