//! ITR / PITR side: outer headers written in place in front of the inner packet (protocols.md §2.3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    HEADER_LEN, LISP_DATA_PORT, LispDataRepr, OVERHEAD_IPV4, OVERHEAD_IPV6, UDP_HEADER_LEN,
};
use crate::ForwardingError;
use crate::wire::checksum;

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// How the outer ECN field is set (RFC 6040 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EcnEncapMode {
    /// Normal mode: copy the inner ECN field to the outer header (protocols.md §2.3).
    #[default]
    Normal,
    /// Compatibility mode: outer ECN is Not-ECT.
    Compatibility,
}

/// What the ITR puts in the outer headers.
///
/// Outer TTL / hop limit and DSCP are copied from the inner header (after the caller's normal
/// routing decrement), outer ECN per [`EcnEncapMode`]. Outer source and destination must be of the
/// same family; the family selects the outer header (IPv4: 36 octets of overhead, IPv6: 56).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapParams {
    /// Own RLOC.
    pub outer_src: IpAddr,
    /// The ETR's RLOC chosen from the map-cache.
    pub outer_dst: IpAddr,
    /// UDP source port, usually [`super::flow_source_port`] of the inner packet.
    pub src_port: u16,
    /// The LISP header to send.
    pub header: LispDataRepr,
    /// Outer IPv4 Identification (ignored for IPv6).
    pub ipv4_ident: u16,
    /// Outer IPv4 DF bit (SHOULD be set, stateless MTU scheme; ignored for IPv6).
    pub dont_fragment: bool,
    /// Outer ECN.
    pub ecn: EcnEncapMode,
    /// Outer IPv6 flow label, 20 bits (ignored for IPv4).
    pub ipv6_flow_label: u32,
}

impl EncapParams {
    /// Parameters with DF set, IPv4 identification 0, RFC 6040 normal mode and flow label 0.
    pub fn new(outer_src: IpAddr, outer_dst: IpAddr, src_port: u16, header: LispDataRepr) -> Self {
        Self {
            outer_src,
            outer_dst,
            src_port,
            header,
            ipv4_ident: 0,
            dont_fragment: true,
            ecn: EcnEncapMode::Normal,
            ipv6_flow_label: 0,
        }
    }

    /// Octets written in front of the inner packet.
    pub fn overhead(&self) -> usize {
        if self.outer_src.is_ipv4() {
            OVERHEAD_IPV4
        } else {
            OVERHEAD_IPV6
        }
    }
}

/// DSCP+ECN (IPv4 ToS / IPv6 traffic class) and TTL / hop limit of an inner IP packet.
pub(super) fn inner_tos_ttl(inner: &[u8]) -> Result<(u8, u8), ForwardingError> {
    let first = *inner.first().ok_or(ForwardingError::Truncated {
        what: "inner IP packet",
        needed: 1,
        available: 0,
    })?;
    match first >> 4 {
        4 => {
            let h = super::header::<IPV4_HEADER_LEN>(inner, "inner IPv4 header")?;
            Ok((h[1], h[8]))
        }
        6 => {
            let h = super::header::<IPV6_HEADER_LEN>(inner, "inner IPv6 header")?;
            Ok(((h[0] << 4) | (h[1] >> 4), h[7]))
        }
        v => Err(ForwardingError::BadValue {
            what: "inner IP version",
            value: u64::from(v),
        }),
    }
}

/// Writes the UDP header (`src_port` to 4341, `udp_len`, checksum 0) and the LISP header `lisp`
/// at the start of `out`, which holds the 16 octets.
fn write_udp_lisp(out: &mut [u8], src_port: u16, udp_len: u16, lisp: &[u8; HEADER_LEN]) {
    out[0..2].copy_from_slice(&src_port.to_be_bytes());
    out[2..4].copy_from_slice(&LISP_DATA_PORT.to_be_bytes());
    out[4..6].copy_from_slice(&udp_len.to_be_bytes());
    out[6..8].copy_from_slice(&[0, 0]);
    out[8..16].copy_from_slice(lisp);
}

/// Where the `N` octets of outer headers (`what`) start, right in front of the inner packet at
/// `inner_start`, and those octets; `NoHeadroom` when `buf` has fewer in front of it.
fn outer_headers<'a, const N: usize>(
    buf: &'a mut [u8],
    inner_start: usize,
    what: &'static str,
) -> Result<(usize, &'a mut [u8; N]), ForwardingError> {
    let no_room = || ForwardingError::NoHeadroom {
        what,
        needed: N,
        available: inner_start,
    };
    let start = inner_start.checked_sub(N).ok_or_else(no_room)?;
    let out = buf
        .get_mut(start..)
        .and_then(|b| b.first_chunk_mut())
        .ok_or_else(no_room)?;
    Ok((start, out))
}

fn check_v4(src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), ForwardingError> {
    if src.is_multicast() || src.is_broadcast() || src.is_unspecified() {
        return Err(ForwardingError::BadAddress {
            what: "outer IPv4 source RLOC",
            addr: IpAddr::V4(src),
        });
    }
    let link_local_mcast = dst.octets()[..3] == [224, 0, 0];
    if dst.is_broadcast() || dst.is_unspecified() || link_local_mcast {
        return Err(ForwardingError::BadAddress {
            what: "outer IPv4 destination RLOC",
            addr: IpAddr::V4(dst),
        });
    }
    Ok(())
}

fn check_v6(src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), ForwardingError> {
    if src.is_multicast() || src.is_unspecified() {
        return Err(ForwardingError::BadAddress {
            what: "outer IPv6 source RLOC",
            addr: IpAddr::V6(src),
        });
    }
    // Multicast scope 1 (interface-local) and 2 (link-local).
    let seg0 = dst.segments()[0];
    let local_mcast = dst.is_multicast() && (seg0 & 0x000f) <= 2;
    if dst.is_unspecified() || local_mcast {
        return Err(ForwardingError::BadAddress {
            what: "outer IPv6 destination RLOC",
            addr: IpAddr::V6(dst),
        });
    }
    Ok(())
}

/// Writes outer IP + UDP (dst 4341) + LISP header into the `params.overhead()` octets in front of
/// the inner packet at `buf[inner_start..inner_start + inner_len]` and returns the offset of the
/// outer IP header. The inner packet is not touched; nothing is allocated.
///
/// * IPv4 outer: header checksum computed, UDP checksum 0 (RFC 9300 §5.3).
/// * IPv6 outer: UDP checksum computed (RFC 6935/6936 would allow 0; computed to stay
///   tshark-clean and valid for any receiver).
/// * TTL / hop limit and DSCP copied from the inner header; ECN per `params.ecn`.
pub fn encapsulate_in_place(
    buf: &mut [u8],
    inner_start: usize,
    inner_len: usize,
    params: &EncapParams,
) -> Result<usize, ForwardingError> {
    let available = buf.len();
    let inner_end = inner_start
        .checked_add(inner_len)
        .filter(|&end| end <= available)
        .ok_or(ForwardingError::Truncated {
            what: "inner packet in buffer",
            needed: inner_start.saturating_add(inner_len),
            available,
        })?;
    let inner = buf.get(inner_start..inner_end).unwrap_or(&[]);
    let (inner_tos, ttl) = inner_tos_ttl(inner)?;
    let tos = match params.ecn {
        EcnEncapMode::Normal => inner_tos,
        EcnEncapMode::Compatibility => inner_tos & 0xfc,
    };
    let lisp = params.header.to_bytes()?;
    let udp_len_usize = inner_len + UDP_HEADER_LEN + HEADER_LEN;
    let too_big = |limit: usize| ForwardingError::BadLength {
        what: "LISP-encapsulated packet exceeds 65535 octets",
        declared: limit,
        actual: udp_len_usize,
    };

    match (params.outer_src, params.outer_dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            check_v4(src, dst)?;
            let total = u16::try_from(udp_len_usize + IPV4_HEADER_LEN)
                .map_err(|_| too_big(65535 - IPV4_HEADER_LEN))?;
            let udp_len = total - 20;
            let (start, out) = outer_headers::<OVERHEAD_IPV4>(
                buf,
                inner_start,
                "LISP encapsulation (IPv4 outer)",
            )?;
            let frag = if params.dont_fragment { 0x4000u16 } else { 0 };
            out[0] = 0x45;
            out[1] = tos;
            out[2..4].copy_from_slice(&total.to_be_bytes());
            out[4..6].copy_from_slice(&params.ipv4_ident.to_be_bytes());
            out[6..8].copy_from_slice(&frag.to_be_bytes());
            out[8] = ttl;
            out[9] = checksum::IPPROTO_UDP;
            out[10..12].copy_from_slice(&[0, 0]);
            out[12..16].copy_from_slice(&src.octets());
            out[16..20].copy_from_slice(&dst.octets());
            let csum = checksum::ipv4_header(&out[..IPV4_HEADER_LEN]);
            out[10..12].copy_from_slice(&csum.to_be_bytes());
            write_udp_lisp(&mut out[20..], params.src_port, udp_len, &lisp);
            Ok(start)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            check_v6(src, dst)?;
            let udp_len = u16::try_from(udp_len_usize).map_err(|_| too_big(65535))?;
            let (start, out) = outer_headers::<OVERHEAD_IPV6>(
                buf,
                inner_start,
                "LISP encapsulation (IPv6 outer)",
            )?;
            let w0 = (6u32 << 28) | (u32::from(tos) << 20) | (params.ipv6_flow_label & 0x000f_ffff);
            out[0..4].copy_from_slice(&w0.to_be_bytes());
            out[4..6].copy_from_slice(&udp_len.to_be_bytes());
            out[6] = checksum::IPPROTO_UDP;
            out[7] = ttl;
            out[8..24].copy_from_slice(&src.octets());
            out[24..40].copy_from_slice(&dst.octets());
            write_udp_lisp(&mut out[40..], params.src_port, udp_len, &lisp);
            let region = buf.get_mut(start..inner_end).unwrap_or(&mut []);
            let pseudo = checksum::pseudo_ipv6(src, dst, checksum::IPPROTO_UDP, u32::from(udp_len));
            let segment = region.get(IPV6_HEADER_LEN..).unwrap_or(&[]);
            let csum = checksum::udp_field(pseudo, segment);
            if let Some(c) = region.get_mut(46..48) {
                c.copy_from_slice(&csum.to_be_bytes());
            }
            Ok(start)
        }
        (_, dst) => Err(ForwardingError::BadAddress {
            what: "outer destination RLOC of another family than the source",
            addr: dst,
        }),
    }
}
