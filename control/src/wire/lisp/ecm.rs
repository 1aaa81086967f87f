//! Encapsulated Control Message (type 8), protocols.md §3.8.
//!
//! ```text
//! Type=8 |S|D|E|M| Reserved (24) | inner IPv4 or IPv6 header | inner UDP header | LISP message
//! ```
//!
//! * `D` (DDT) is kept. `E` and `M` are ignored on receive and sent as zero (§12 #8).
//! * `S` (LISP-SEC) is refused on receive ([`ControlError::BadValue`]): roamer does not implement
//!   LISP-SEC and its authentication data would change the layout.
//! * Inner IPv4: version 4, IHL ≥ 5 (options skipped), protocol 17, not a fragment, header
//!   checksum verified. Emitted as `45 00 len 0000 4000 ttl 11 csum src dst` (ID 0, DF).
//! * Inner IPv6: next header must be UDP (no extension headers). Emitted with traffic class and
//!   flow label 0.
//! * Inner UDP: length checked against the IP payload; checksum verified (an IPv4 checksum of 0,
//!   "not computed", is accepted; an IPv6 checksum of 0 is refused). Emitted checksum is always
//!   computed (0 sent as 0xFFFF).
//! * The inner message is any LISP control message except another ECM (no recursion). Octets
//!   after the inner IP packet and after the inner UDP datagram are ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bytes::{Reader, Writer, check_room, emit_vec, len_u16, room_mut};
use super::{LispMessage, MessageType, check_type, parse_message};
use crate::ControlError;

const S: u32 = 0x0800_0000;
const D: u32 = 0x0400_0000;
const IPPROTO_UDP: u8 = 17;

/// An Encapsulated Control Message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ecm {
    /// D: the sender wants a Map-Referral (DDT).
    pub ddt: bool,
    /// Inner IP source (ITR RLOC or source EID). Must be the same family as `inner_dst`.
    pub inner_src: IpAddr,
    /// Inner IP destination (the EID being asked for).
    pub inner_dst: IpAddr,
    /// Inner IPv4 TTL / IPv6 hop limit.
    pub inner_ttl: u8,
    pub inner_src_port: u16,
    /// Normally 4342.
    pub inner_dst_port: u16,
    /// The encapsulated message (never an ECM).
    pub message: Box<LispMessage>,
}

impl Ecm {
    fn ip_header_len(&self) -> usize {
        match self.inner_src {
            IpAddr::V4(_) => 20,
            IpAddr::V6(_) => 40,
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.ip_header_len() + 8 + self.message.buffer_len()
    }

    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(buf);
        let w0 = r.u32("ECM header")?;
        check_type(w0, MessageType::Ecm)?;
        if w0 & S != 0 {
            return Err(ControlError::BadValue {
                what: "ECM S bit (LISP-SEC not supported)",
                value: 1,
            });
        }
        let ip = r.rest();
        let version = ip.first().map(|b| b >> 4).ok_or(ControlError::Truncated {
            what: "ECM inner IP header",
            needed: 20,
            available: 0,
        })?;
        let (src, dst, ttl, udp) = match version {
            4 => parse_ipv4(ip)?,
            6 => parse_ipv6(ip)?,
            v => {
                return Err(ControlError::BadValue {
                    what: "ECM inner IP version",
                    value: u64::from(v),
                });
            }
        };
        let mut u = Reader::new(udp);
        let src_port = u.u16("ECM inner UDP header")?;
        let dst_port = u.u16("ECM inner UDP header")?;
        let udp_len = usize::from(u.u16("ECM inner UDP header")?);
        let csum = u.u16("ECM inner UDP header")?;
        if udp_len < 8 || udp_len > udp.len() {
            return Err(ControlError::BadLength {
                what: "ECM inner UDP length",
                declared: udp_len,
                actual: udp.len(),
            });
        }
        let datagram = udp.get(..udp_len).ok_or(ControlError::BadLength {
            what: "ECM inner UDP length",
            declared: udp_len,
            actual: udp.len(),
        })?;
        match (csum, src) {
            (0, IpAddr::V4(_)) => {}
            (0, IpAddr::V6(_)) => {
                return Err(ControlError::BadValue {
                    what: "ECM inner UDP checksum (zero over IPv6)",
                    value: 0,
                });
            }
            _ => {
                if udp_checksum(src, dst, datagram) != 0 {
                    return Err(ControlError::BadValue {
                        what: "ECM inner UDP checksum",
                        value: u64::from(csum),
                    });
                }
            }
        }
        let payload = datagram.get(8..).unwrap_or(&[]);
        let message = parse_message(payload)?;
        if matches!(message, LispMessage::Ecm(_)) {
            return Err(ControlError::BadValue {
                what: "ECM inside an ECM",
                value: MessageType::Ecm as u64,
            });
        }
        Ok(Self {
            ddt: w0 & D != 0,
            inner_src: src,
            inner_dst: dst,
            inner_ttl: ttl,
            inner_src_port: src_port,
            inner_dst_port: dst_port,
            message: Box::new(message),
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        if matches!(*self.message, LispMessage::Ecm(_)) {
            return Err(ControlError::BadValue {
                what: "ECM inside an ECM",
                value: MessageType::Ecm as u64,
            });
        }
        if self.inner_src.is_ipv4() != self.inner_dst.is_ipv4() {
            return Err(ControlError::BadValue {
                what: "ECM inner addresses of different families",
                value: 0,
            });
        }
        let total = self.buffer_len();
        let msg_len = self.message.buffer_len();
        let udp_len = len_u16("ECM inner UDP length", 8 + msg_len)?;
        // IPv4 total length (header included); unused for IPv6, whose payload length is udp_len.
        let ip_len = if self.inner_src.is_ipv4() {
            len_u16("ECM inner IP length", total - 4)?
        } else {
            0
        };
        check_room(buf, total)?;
        let ip_start = 4;
        let udp_start = ip_start + self.ip_header_len();
        let payload_start = udp_start + 8;
        {
            let payload = room_mut(buf, payload_start, total)?;
            let n = self.message.emit(payload)?;
            if n != msg_len {
                return Err(ControlError::BadLength {
                    what: "ECM inner message length",
                    declared: msg_len,
                    actual: n,
                });
            }
        }
        let mut w = Writer::new(buf);
        let mut w0 = (MessageType::Ecm as u32) << 28;
        if self.ddt {
            w0 |= D;
        }
        w.u32(w0)?;
        match (self.inner_src, self.inner_dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = [0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&ip_len.to_be_bytes());
                h[6] = 0x40; // DF
                h[8] = self.inner_ttl;
                h[9] = IPPROTO_UDP;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let c = !fold(sum16(0, &h));
                h[10..12].copy_from_slice(&c.to_be_bytes());
                w.put(&h)?;
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                w.u32(0x6000_0000)?;
                w.u16(udp_len)?;
                w.u8(IPPROTO_UDP)?;
                w.u8(self.inner_ttl)?;
                w.put(&s.octets())?;
                w.put(&d.octets())?;
            }
            _ => {
                return Err(ControlError::BadValue {
                    what: "ECM inner addresses of different families",
                    value: 0,
                });
            }
        }
        w.u16(self.inner_src_port)?;
        w.u16(self.inner_dst_port)?;
        w.u16(udp_len)?;
        w.u16(0)?;
        let datagram = room_mut(buf, udp_start, total)?;
        let mut c = udp_checksum(self.inner_src, self.inner_dst, datagram);
        if c == 0 {
            c = 0xFFFF;
        }
        if let Some(f) = datagram.get_mut(6..8) {
            f.copy_from_slice(&c.to_be_bytes());
        }
        Ok(total)
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        emit_vec(self.buffer_len(), |v| self.emit(v))
    }
}

type Inner<'a> = (IpAddr, IpAddr, u8, &'a [u8]);

fn parse_ipv4(ip: &[u8]) -> Result<Inner<'_>, ControlError> {
    let mut r = Reader::new(ip);
    let vihl = r.u8("ECM inner IPv4 header")?;
    let ihl = usize::from(vihl & 0x0F) * 4;
    if ihl < 20 {
        return Err(ControlError::BadValue {
            what: "ECM inner IPv4 header length",
            value: ihl as u64,
        });
    }
    let header = ip.get(..ihl).ok_or(ControlError::Truncated {
        what: "ECM inner IPv4 header",
        needed: ihl,
        available: ip.len(),
    })?;
    let _tos = r.u8("ECM inner IPv4 header")?;
    let total = usize::from(r.u16("ECM inner IPv4 header")?);
    let _id = r.u16("ECM inner IPv4 header")?;
    let frag = r.u16("ECM inner IPv4 header")?;
    let ttl = r.u8("ECM inner IPv4 header")?;
    let proto = r.u8("ECM inner IPv4 header")?;
    let _csum = r.u16("ECM inner IPv4 header")?;
    let src = Ipv4Addr::from(r.array::<4>("ECM inner IPv4 header")?);
    let dst = Ipv4Addr::from(r.array::<4>("ECM inner IPv4 header")?);
    if total < ihl || total > ip.len() {
        return Err(ControlError::BadLength {
            what: "ECM inner IPv4 total length",
            declared: total,
            actual: ip.len(),
        });
    }
    if frag & 0x3FFF != 0 {
        return Err(ControlError::BadValue {
            what: "ECM inner IPv4 fragment",
            value: u64::from(frag),
        });
    }
    if proto != IPPROTO_UDP {
        return Err(ControlError::BadValue {
            what: "ECM inner IP protocol",
            value: u64::from(proto),
        });
    }
    if fold(sum16(0, header)) != 0xFFFF {
        return Err(ControlError::BadValue {
            what: "ECM inner IPv4 header checksum",
            value: u64::from(u16::from_be_bytes([
                header.get(10).copied().unwrap_or(0),
                header.get(11).copied().unwrap_or(0),
            ])),
        });
    }
    let udp = ip.get(ihl..total).unwrap_or(&[]);
    Ok((IpAddr::V4(src), IpAddr::V4(dst), ttl, udp))
}

fn parse_ipv6(ip: &[u8]) -> Result<Inner<'_>, ControlError> {
    let mut r = Reader::new(ip);
    let _vtf = r.u32("ECM inner IPv6 header")?;
    let plen = usize::from(r.u16("ECM inner IPv6 header")?);
    let next = r.u8("ECM inner IPv6 header")?;
    let hlim = r.u8("ECM inner IPv6 header")?;
    let src = Ipv6Addr::from(r.array::<16>("ECM inner IPv6 header")?);
    let dst = Ipv6Addr::from(r.array::<16>("ECM inner IPv6 header")?);
    if next != IPPROTO_UDP {
        return Err(ControlError::BadValue {
            what: "ECM inner IP protocol",
            value: u64::from(next),
        });
    }
    if plen > r.remaining() {
        return Err(ControlError::BadLength {
            what: "ECM inner IPv6 payload length",
            declared: plen,
            actual: r.remaining(),
        });
    }
    let udp = r.take(plen, "ECM inner IPv6 payload")?;
    Ok((IpAddr::V6(src), IpAddr::V6(dst), hlim, udp))
}

/// Adds 16-bit big-endian words of `data` to `acc` (odd trailing octet padded with zero).
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The UDP checksum over the pseudo-header and `datagram`. With the checksum field zeroed it is
/// the value to send; over a datagram carrying a correct checksum it is 0.
fn udp_checksum(src: IpAddr, dst: IpAddr, datagram: &[u8]) -> u16 {
    let len = datagram.len();
    let mut acc = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
            acc = sum16(acc, &[0, IPPROTO_UDP]);
            acc = sum16(acc, &(len as u16).to_be_bytes());
        }
        (s, d) => {
            let (s, d) = (v6(s), v6(d));
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
            acc = sum16(acc, &(len as u32).to_be_bytes());
            acc = sum16(acc, &[0, 0, 0, IPPROTO_UDP]);
        }
    }
    acc = sum16(acc, datagram);
    !fold(acc)
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}
