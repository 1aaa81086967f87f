//! The Ethernet / IP / UDP frames HSRP travels in (protocols.md §1.1, §7.1, §7.5), built with
//! correct checksums and parsed with validation; virtual MAC and link-local helpers.
//!
//! | | v1 | v2 (IPv4) | HSRP for IPv6 |
//! |---|---|---|---|
//! | dst IP / MAC | 224.0.0.2 / 01:00:5e:00:00:02 | 224.0.0.102 / 01:00:5e:00:00:66 | ff02::66 / 33:33:00:00:00:66 |
//! | UDP | 1985 → 1985 | 1985 → 1985 | 2029 → 2029 |
//! | TTL / hop limit | 1 | 1 | 255 (reference: "255 recommended", UNVERIFIED) |
//! | src IP | interface address | interface address | interface link-local |
//!
//! Source MAC: the virtual MAC when the sender is Active, its interface MAC otherwise
//! ([`hello_source_mac`], protocols.md §7.6). DSCP is CS6 (ToS / traffic class 0xc0), as for
//! other Cisco control-plane traffic (not in the reference; tshark does not care). IPv4 DF is
//! clear, identification 0. The UDP checksum is always computed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use roamer_forwarding::wire::checksum;
use roamer_hal::types::Mac;

use super::{
    HSRP_IPV6_GROUP, HSRP_IPV6_PORT, HSRP_PORT, HSRP_V1_GROUP, HSRP_V2_GROUP, HsrpMd5Key,
    HsrpPacket, HsrpState, MAX_V2_GROUP, sign_md5,
};
use crate::ControlError;

/// Ethernet destination of HSRP v1.
pub const HSRP_V1_MCAST_MAC: Mac = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x02]);
/// Ethernet destination of HSRP v2 over IPv4.
pub const HSRP_V2_MCAST_MAC: Mac = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x66]);
/// Ethernet destination of HSRP for IPv6.
pub const HSRP_IPV6_MCAST_MAC: Mac = Mac([0x33, 0x33, 0x00, 0x00, 0x00, 0x66]);

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const TOS_CS6: u8 = 0xc0;
const IPV4_TTL: u8 = 1;
const IPV6_HOP_LIMIT: u8 = 255;

/// Which of the three encapsulations a packet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HsrpTransport {
    /// v1: 224.0.0.2, UDP 1985.
    V1,
    /// v2 over IPv4: 224.0.0.102, UDP 1985.
    V2Ipv4,
    /// HSRP for IPv6 (v2 format): ff02::66, UDP 2029.
    V2Ipv6,
}

impl HsrpTransport {
    /// v1 packets go as v1; v2 packets by the family of their virtual IP (an Interface-State-only
    /// packet by the family of the source address).
    pub fn for_packet(packet: &HsrpPacket, src_ip: IpAddr) -> Self {
        match packet {
            HsrpPacket::V1(_) | HsrpPacket::V1Advertise => HsrpTransport::V1,
            HsrpPacket::V2(r) if r.group_state.virtual_ip.is_ipv6() => HsrpTransport::V2Ipv6,
            HsrpPacket::V2(_) => HsrpTransport::V2Ipv4,
            HsrpPacket::V2InterfaceState { .. } if src_ip.is_ipv6() => HsrpTransport::V2Ipv6,
            HsrpPacket::V2InterfaceState { .. } => HsrpTransport::V2Ipv4,
        }
    }

    /// Destination address.
    pub fn dst_ip(self) -> IpAddr {
        match self {
            HsrpTransport::V1 => IpAddr::V4(HSRP_V1_GROUP),
            HsrpTransport::V2Ipv4 => IpAddr::V4(HSRP_V2_GROUP),
            HsrpTransport::V2Ipv6 => IpAddr::V6(HSRP_IPV6_GROUP),
        }
    }

    /// Destination MAC.
    pub fn dst_mac(self) -> Mac {
        match self {
            HsrpTransport::V1 => HSRP_V1_MCAST_MAC,
            HsrpTransport::V2Ipv4 => HSRP_V2_MCAST_MAC,
            HsrpTransport::V2Ipv6 => HSRP_IPV6_MCAST_MAC,
        }
    }

    /// UDP source and destination port.
    pub fn port(self) -> u16 {
        match self {
            HsrpTransport::V1 | HsrpTransport::V2Ipv4 => HSRP_PORT,
            HsrpTransport::V2Ipv6 => HSRP_IPV6_PORT,
        }
    }
}

/// v1 virtual MAC `00:00:0c:07:ac:<group>`.
pub fn virtual_mac_v1(group: u8) -> Mac {
    Mac([0x00, 0x00, 0x0c, 0x07, 0xac, group])
}

fn check_group(group: u16) -> Result<[u8; 2], ControlError> {
    if group > MAX_V2_GROUP {
        return Err(ControlError::BadValue {
            what: "HSRP v2 group (0-4095)",
            value: u64::from(group),
        });
    }
    Ok(group.to_be_bytes())
}

/// v2 virtual MAC `00:00:0c:9f:f<g>` (low 12 bits = group).
pub fn virtual_mac_v2(group: u16) -> Result<Mac, ControlError> {
    let [hi, lo] = check_group(group)?;
    Ok(Mac([0x00, 0x00, 0x0c, 0x9f, 0xf0 | hi, lo]))
}

/// HSRP IPv6 virtual MAC `00:05:73:a0:0<g>` (low 12 bits = group).
pub fn virtual_mac_ipv6(group: u16) -> Result<Mac, ControlError> {
    let [hi, lo] = check_group(group)?;
    Ok(Mac([0x00, 0x05, 0x73, 0xa0, hi, lo]))
}

/// HSRP IPv6 virtual link-local address: the virtual MAC with ff:fe inserted and the U/L bit
/// NOT inverted (Cisco form, protocols.md §7.5 / §12 #18): group g → `fe80::5:73ff:fea0:g`.
pub fn virtual_link_local_ipv6(group: u16) -> Result<Ipv6Addr, ControlError> {
    check_group(group)?;
    Ok(Ipv6Addr::new(
        0xfe80, 0, 0, 0, 0x0005, 0x73ff, 0xfea0, group,
    ))
}

/// Ethernet source of an HSRP packet: the virtual MAC when Active, else the interface MAC.
pub fn hello_source_mac(state: HsrpState, virtual_mac: Mac, interface_mac: Mac) -> Mac {
    if state == HsrpState::Active {
        virtual_mac
    } else {
        interface_mac
    }
}

/// Length of the frame [`emit_hsrp_frame`] writes.
pub fn hsrp_frame_len(packet: &HsrpPacket, src_ip: IpAddr) -> usize {
    let ip = match HsrpTransport::for_packet(packet, src_ip) {
        HsrpTransport::V2Ipv6 => IPV6_LEN,
        _ => IPV4_LEN,
    };
    ETH_LEN + ip + UDP_LEN + packet.buffer_len()
}

/// Writes Ethernet + IPv4/IPv6 + UDP + HSRP into `out` and returns the frame length.
///
/// `src_ip` is the interface address (IPv4 for v1 / v2, the link-local IPv6 address for HSRP
/// for IPv6). With `md5_key`, a packet carrying an MD5 TLV is signed before the UDP checksum is
/// computed.
pub fn emit_hsrp_frame(
    packet: &HsrpPacket,
    src_mac: Mac,
    src_ip: IpAddr,
    md5_key: Option<&HsrpMd5Key>,
    out: &mut [u8],
) -> Result<usize, ControlError> {
    let transport = HsrpTransport::for_packet(packet, src_ip);
    let len = hsrp_frame_len(packet, src_ip);
    let frame = super::prefix_of(out, len, "HSRP frame for the buffer")?;
    let (eth, rest) = frame
        .split_first_chunk_mut::<ETH_LEN>()
        .ok_or(ControlError::Truncated {
            what: "HSRP frame",
            needed: ETH_LEN,
            available: len,
        })?;
    eth[0..6].copy_from_slice(&transport.dst_mac().0);
    eth[6..12].copy_from_slice(&src_mac.0);
    let port = transport.port();
    match (transport, src_ip) {
        (HsrpTransport::V1 | HsrpTransport::V2Ipv4, IpAddr::V4(src)) => {
            eth[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let (ip, udp) = rest.split_at_mut(IPV4_LEN);
            let udp_len = udp.len();
            let payload_len = emit_udp_payload(packet, udp, port, md5_key)?;
            let total = u16::try_from(IPV4_LEN + UDP_LEN + payload_len).map_err(|_| {
                ControlError::TooLarge {
                    what: "HSRP IPv4 packet",
                    limit: 65535,
                    actual: IPV4_LEN + udp_len,
                }
            })?;
            let dst = match transport.dst_ip() {
                IpAddr::V4(d) => d,
                IpAddr::V6(_) => HSRP_V2_GROUP,
            };
            ip[0] = 0x45;
            ip[1] = TOS_CS6;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[4..8].copy_from_slice(&[0, 0, 0, 0]);
            ip[8] = IPV4_TTL;
            ip[9] = checksum::IPPROTO_UDP;
            ip[10..12].copy_from_slice(&[0, 0]);
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let c = checksum::ipv4_header(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let ulen = total - 20;
            let c = checksum::udp_field(
                checksum::pseudo_ipv4(src, dst, checksum::IPPROTO_UDP, ulen),
                udp,
            );
            if let Some(f) = udp.get_mut(6..8) {
                f.copy_from_slice(&c.to_be_bytes());
            }
        }
        (HsrpTransport::V2Ipv6, IpAddr::V6(src)) => {
            if src.segments()[0] & 0xffc0 != 0xfe80 {
                return Err(ControlError::BadValue {
                    what: "HSRP for IPv6 source address must be link-local (fe80::/10)",
                    value: u64::from(src.segments()[0]),
                });
            }
            eth[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let (ip, udp) = rest.split_at_mut(IPV6_LEN);
            let payload_len = emit_udp_payload(packet, udp, port, md5_key)?;
            let ulen =
                u16::try_from(UDP_LEN + payload_len).map_err(|_| ControlError::TooLarge {
                    what: "HSRP IPv6 packet",
                    limit: 65535,
                    actual: UDP_LEN + payload_len,
                })?;
            let w0 = (6u32 << 28) | (u32::from(TOS_CS6) << 20);
            ip[0..4].copy_from_slice(&w0.to_be_bytes());
            ip[4..6].copy_from_slice(&ulen.to_be_bytes());
            ip[6] = checksum::IPPROTO_UDP;
            ip[7] = IPV6_HOP_LIMIT;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&HSRP_IPV6_GROUP.octets());
            let c = checksum::udp_field(
                checksum::pseudo_ipv6(src, HSRP_IPV6_GROUP, checksum::IPPROTO_UDP, u32::from(ulen)),
                udp,
            );
            if let Some(f) = udp.get_mut(6..8) {
                f.copy_from_slice(&c.to_be_bytes());
            }
        }
        (_, other) => {
            return Err(ControlError::UnsupportedAfi {
                what: "HSRP frame source address for this HSRP version",
                afi: if other.is_ipv4() { 1 } else { 2 },
            });
        }
    }
    Ok(len)
}

/// UDP header (checksum 0) + payload, signed if asked; returns the payload length.
fn emit_udp_payload(
    packet: &HsrpPacket,
    udp: &mut [u8],
    port: u16,
    md5_key: Option<&HsrpMd5Key>,
) -> Result<usize, ControlError> {
    let available = udp.len();
    let (hdr, payload) = udp
        .split_first_chunk_mut::<UDP_LEN>()
        .ok_or(ControlError::Truncated {
            what: "HSRP UDP header",
            needed: UDP_LEN,
            available,
        })?;
    let n = packet.emit(payload)?;
    if let (Some(key), super::HsrpAuth::Md5(_)) = (md5_key, packet.auth()) {
        sign_md5(payload.get_mut(..n).unwrap_or(&mut []), key)?;
    }
    let ulen = u16::try_from(UDP_LEN + n).unwrap_or(u16::MAX);
    hdr[0..2].copy_from_slice(&port.to_be_bytes());
    hdr[2..4].copy_from_slice(&port.to_be_bytes());
    hdr[4..6].copy_from_slice(&ulen.to_be_bytes());
    hdr[6..8].copy_from_slice(&[0, 0]);
    Ok(n)
}

/// [`emit_hsrp_frame`] into a new vector.
pub fn build_hsrp_frame(
    packet: &HsrpPacket,
    src_mac: Mac,
    src_ip: IpAddr,
    md5_key: Option<&HsrpMd5Key>,
) -> Result<Vec<u8>, ControlError> {
    let mut v = vec![0u8; hsrp_frame_len(packet, src_ip)];
    let n = emit_hsrp_frame(packet, src_mac, src_ip, md5_key, &mut v)?;
    v.truncate(n);
    Ok(v)
}

/// A received HSRP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsrpFrame {
    pub dst_mac: Mac,
    pub src_mac: Mac,
    /// 802.1Q VLAN id when the frame carried one tag.
    pub vlan: Option<u16>,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    pub packet: HsrpPacket,
    /// Where the HSRP payload is in the frame (for [`super::HsrpPacket::authenticate`]).
    pub payload: Range<usize>,
}

impl HsrpFrame {
    /// The HSRP UDP payload inside `frame`.
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        frame.get(self.payload.clone()).unwrap_or(&[])
    }

    /// The transport the destination address says this is (Wireshark's rule), if any.
    pub fn transport(&self) -> Option<HsrpTransport> {
        match self.dst_ip {
            IpAddr::V4(a) if a == HSRP_V1_GROUP => Some(HsrpTransport::V1),
            IpAddr::V4(a) if a == HSRP_V2_GROUP => Some(HsrpTransport::V2Ipv4),
            IpAddr::V6(a) if a == HSRP_IPV6_GROUP => Some(HsrpTransport::V2Ipv6),
            _ => None,
        }
    }
}

/// The fixed header of IP version `version` (`N` octets) at the start of `ip`: `Truncated`
/// (`what`) when `ip` is shorter, `BadValue` (`version_what`) when it holds another version.
fn ip_header<'a, const N: usize>(
    ip: &'a [u8],
    version: u8,
    what: &'static str,
    version_what: &'static str,
) -> Result<&'a [u8; N], ControlError> {
    let h: &[u8; N] = ip.first_chunk().ok_or(truncated(what, N, ip.len()))?;
    if h[0] >> 4 != version {
        return Err(ControlError::BadValue {
            what: version_what,
            value: u64::from(h[0] >> 4),
        });
    }
    Ok(h)
}

fn truncated(what: &'static str, needed: usize, available: usize) -> ControlError {
    ControlError::Truncated {
        what,
        needed,
        available,
    }
}

/// Parses an Ethernet frame (optionally with one 802.1Q tag) carrying HSRP: IPv4 (header
/// checksum, not a fragment, UDP) or IPv6 (next header UDP), UDP destination port 1985 over IPv4
/// or 2029 over IPv6, UDP length, UDP checksum (0 accepted over IPv4 only), then the payload.
pub fn parse_hsrp_frame(frame: &[u8]) -> Result<HsrpFrame, ControlError> {
    let eth: &[u8; ETH_LEN] =
        frame
            .first_chunk()
            .ok_or(truncated("Ethernet header", ETH_LEN, frame.len()))?;
    let mut dst_mac = [0u8; 6];
    dst_mac.copy_from_slice(&eth[0..6]);
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&eth[6..12]);
    let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    let mut l3 = ETH_LEN;
    let mut vlan = None;
    if ethertype == ETHERTYPE_VLAN {
        let tag: &[u8; 4] = frame
            .get(ETH_LEN..)
            .and_then(|t| t.first_chunk())
            .ok_or(truncated("802.1Q tag", ETH_LEN + 4, frame.len()))?;
        vlan = Some(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff);
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        l3 += 4;
    }
    let ip = frame.get(l3..).unwrap_or(&[]);
    let (src_ip, dst_ip, ttl, udp_range, pseudo, port) = match ethertype {
        ETHERTYPE_IPV4 => {
            let h = ip_header::<IPV4_LEN>(ip, 4, "IPv4 header", "IPv4 version")?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if ihl < IPV4_LEN || total < ihl || total > ip.len() {
                return Err(ControlError::BadLength {
                    what: "IPv4 header / total length",
                    declared: total,
                    actual: ip.len(),
                });
            }
            let header = ip.get(..ihl).unwrap_or(&[]);
            if checksum::fold(checksum::add(0, header)) != 0xffff {
                let mut acc = checksum::add(0, &h[..10]);
                acc = checksum::add(acc, header.get(12..).unwrap_or(&[]));
                return Err(ControlError::BadChecksum {
                    what: "IPv4 header",
                    found: u16::from_be_bytes([h[10], h[11]]),
                    expected: checksum::finish(acc),
                });
            }
            let frag = u16::from_be_bytes([h[6], h[7]]);
            if frag & 0x3fff != 0 {
                return Err(ControlError::BadValue {
                    what: "IPv4 fragment carrying HSRP",
                    value: u64::from(frag),
                });
            }
            if h[9] != checksum::IPPROTO_UDP {
                return Err(ControlError::BadValue {
                    what: "IPv4 protocol (not UDP)",
                    value: u64::from(h[9]),
                });
            }
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            (
                IpAddr::V4(src),
                IpAddr::V4(dst),
                h[8],
                l3 + ihl..l3 + total,
                checksum::pseudo_ipv4(src, dst, checksum::IPPROTO_UDP, 0),
                HSRP_PORT,
            )
        }
        ETHERTYPE_IPV6 => {
            let h = ip_header::<IPV6_LEN>(ip, 6, "IPv6 header", "IPv6 version")?;
            let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if IPV6_LEN + plen > ip.len() {
                return Err(ControlError::BadLength {
                    what: "IPv6 payload length",
                    declared: plen,
                    actual: ip.len() - IPV6_LEN,
                });
            }
            if h[6] != checksum::IPPROTO_UDP {
                return Err(ControlError::BadValue {
                    what: "IPv6 next header (not UDP)",
                    value: u64::from(h[6]),
                });
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&h[8..24]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&h[24..40]);
            let dst = Ipv6Addr::from(a);
            (
                IpAddr::V6(src),
                IpAddr::V6(dst),
                h[7],
                l3 + IPV6_LEN..l3 + IPV6_LEN + plen,
                checksum::pseudo_ipv6(src, dst, checksum::IPPROTO_UDP, 0),
                HSRP_IPV6_PORT,
            )
        }
        other => {
            return Err(ControlError::BadValue {
                what: "Ethertype (not IPv4 / IPv6)",
                value: u64::from(other),
            });
        }
    };
    let udp_all = frame.get(udp_range.clone()).unwrap_or(&[]);
    let u: &[u8; UDP_LEN] =
        udp_all
            .first_chunk()
            .ok_or(truncated("UDP header", UDP_LEN, udp_all.len()))?;
    let dport = u16::from_be_bytes([u[2], u[3]]);
    if dport != port {
        return Err(ControlError::BadValue {
            what: "UDP destination port (HSRP: 1985 over IPv4, 2029 over IPv6)",
            value: u64::from(dport),
        });
    }
    let ulen = usize::from(u16::from_be_bytes([u[4], u[5]]));
    if ulen < UDP_LEN || ulen > udp_all.len() {
        return Err(ControlError::BadLength {
            what: "UDP length",
            declared: ulen,
            actual: udp_all.len(),
        });
    }
    let segment = udp_all.get(..ulen).unwrap_or(&[]);
    let found = u16::from_be_bytes([u[6], u[7]]);
    let pseudo = pseudo + u64::try_from(ulen).unwrap_or(0);
    if found == 0 {
        if src_ip.is_ipv6() {
            return Err(ControlError::BadValue {
                what: "UDP checksum 0 over IPv6",
                value: 0,
            });
        }
    } else if !checksum::verifies(pseudo, segment) {
        let mut acc = checksum::add(pseudo, segment.get(..6).unwrap_or(&[]));
        acc = checksum::add(acc, segment.get(8..).unwrap_or(&[]));
        return Err(ControlError::BadChecksum {
            what: "UDP",
            found,
            expected: match checksum::finish(acc) {
                0 => 0xffff,
                c => c,
            },
        });
    }
    let payload = udp_range.start + UDP_LEN..udp_range.start + ulen;
    let packet = HsrpPacket::parse(frame.get(payload.clone()).unwrap_or(&[]))?;
    Ok(HsrpFrame {
        dst_mac: Mac(dst_mac),
        src_mac: Mac(src_mac),
        vlan,
        src_ip,
        dst_ip,
        ttl,
        packet,
        payload,
    })
}
