//! The UDP packets the LISP control plane sends and receives, over IPv4 or IPv6: frames to
//! hand to the forwarding core (which fills in our source address and the checksums), the
//! site-based Map-Notify frame, and the parsing of punted frames to port 4342.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_forwarding::wire::checksum;
use roamer_hal::Mac;

use crate::wire::lisp::LISP_CONTROL_PORT;

pub const ETH_LEN: usize = 14;
/// TTL (hop limit) of the packets we originate.
const ORIGIN_TTL: u8 = 64;
const IPV6_LEN: usize = 40;
const UDP: u8 = 17;

/// An Ethernet frame (addresses filled in by the forwarding core) with an IPv4/UDP or IPv6/UDP
/// packet from `src` (unspecified: the forwarding core puts our address towards `dst`) to
/// `dst`, of the family of `dst`. The checksums are left to the forwarding core, which completes
/// the source address (over IPv6 the UDP checksum is mandatory and always written there).
pub fn udp_frame(
    src: Option<IpAddr>,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let mut f = Vec::with_capacity(ETH_LEN + IPV6_LEN + 8 + payload.len());
    udp_frame_into(&mut f, src, dst, sport, dport, payload)?;
    Some(f)
}

/// [`udp_frame`] written into `f` (cleared first), so that a caller can reuse one buffer.
pub fn udp_frame_into(
    f: &mut Vec<u8>,
    src: Option<IpAddr>,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<()> {
    let udp_len = u16::try_from(8 + payload.len()).ok()?;
    f.clear();
    f.extend_from_slice(&[0u8; 12]);
    match dst {
        IpAddr::V4(dst) => {
            let src = match src {
                Some(IpAddr::V4(s)) => s,
                None => Ipv4Addr::UNSPECIFIED,
                Some(IpAddr::V6(_)) => return None,
            };
            let total = udp_len.checked_add(20)?;
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40;
            ip[8] = ORIGIN_TTL;
            ip[9] = UDP;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            f.extend_from_slice(&ip);
        }
        IpAddr::V6(dst) => {
            let src = match src {
                Some(IpAddr::V6(s)) => s,
                None => Ipv6Addr::UNSPECIFIED,
                Some(IpAddr::V4(_)) => return None,
            };
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = [0u8; IPV6_LEN];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
            ip[6] = UDP;
            ip[7] = ORIGIN_TTL;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            f.extend_from_slice(&ip);
        }
    }
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    Some(())
}

/// A UDP datagram to port 4342 in a punted frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub payload: &'a [u8],
}

/// Source and destination address, source port and payload of an Ethernet/IPv4/UDP or
/// Ethernet/IPv6/UDP frame (no extension headers) to port 4342.
pub fn udp_to_control_port(frame: &[u8]) -> Option<Datagram<'_>> {
    let ip = frame.get(ETH_LEN..)?;
    let (src, dst, udp) = match frame.get(12..14)? {
        [0x08, 0x00] => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            if ip.get(9)? != &UDP || ihl < 20 || total > ip.len() {
                return None;
            }
            // First: at least the 20-octet header is there (ihl <= total <= the packet).
            let udp = ip.get(ihl..total)?;
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(src), IpAddr::V4(dst), udp)
        }
        [0x86, 0xdd] => {
            if ip.len() < IPV6_LEN || ip[0] >> 4 != 6 || ip[6] != UDP {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let udp = ip.get(IPV6_LEN..IPV6_LEN + len)?;
            let addr = |at: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            (addr(8), addr(24), udp)
        }
        _ => return None,
    };
    if udp.len() < 8 {
        return None;
    }
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    if dport != LISP_CONTROL_PORT {
        return None;
    }
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    // The UDP length bounds the payload (padding after it is not LISP).
    let payload = udp.get(8..ulen.clamp(8, udp.len()))?;
    Some(Datagram {
        src,
        dst,
        sport,
        payload,
    })
}

/// A site-based Map-Notify frame: to the group's MAC, IP TTL 1 (it must not leave the site's
/// LAN), UDP 4342 to 4342 with its checksum.
pub fn site_notify_frame(
    mac: Mac,
    source: Ipv4Addr,
    group: Ipv4Addr,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let mut f = udp_frame(
        Some(IpAddr::V4(source)),
        IpAddr::V4(group),
        LISP_CONTROL_PORT,
        LISP_CONTROL_PORT,
        payload,
    )?;
    let g = group.octets();
    f[..6].copy_from_slice(&[0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]]);
    f[6..12].copy_from_slice(&mac.0);
    let ip = ETH_LEN;
    f[ip + 8] = 1;
    let c = checksum::ipv4_header(&f[ip..ip + 20]);
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    let udp = ip + 20;
    let len = u16::try_from(f.len() - udp).ok()?;
    let sum = checksum::udp_field(checksum::pseudo_ipv4(source, group, 17, len), &f[udp..]);
    f[udp + 6..udp + 8].copy_from_slice(&sum.to_be_bytes());
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_frame_is_built_and_parsed_back() {
        let f = udp_frame(
            Some(v6("2001:db8::1")),
            v6("2001:db8::2"),
            4342,
            4342,
            b"\x10abc",
        )
        .unwrap();
        assert_eq!(f.len(), ETH_LEN + 40 + 8 + 4);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[ETH_LEN] >> 4, 6);
        assert_eq!(u16::from_be_bytes([f[ETH_LEN + 4], f[ETH_LEN + 5]]), 12);
        assert_eq!(f[ETH_LEN + 7], 64, "hop limit");
        let d = udp_to_control_port(&f).unwrap();
        assert_eq!(d.src, v6("2001:db8::1"));
        assert_eq!(d.dst, v6("2001:db8::2"));
        assert_eq!(d.sport, 4342);
        assert_eq!(d.payload, b"\x10abc");
    }

    #[test]
    fn an_ipv4_frame_is_built_and_parsed_back() {
        let f = udp_frame(None, v6("192.0.2.2"), 61000, 4342, b"xyz").unwrap();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let d = udp_to_control_port(&f).unwrap();
        assert_eq!(d.src, v6("0.0.0.0"));
        assert_eq!(d.sport, 61000);
        assert_eq!(d.payload, b"xyz");
    }

    #[test]
    fn the_source_family_must_match_the_destination() {
        assert!(udp_frame(Some(v6("192.0.2.1")), v6("2001:db8::2"), 1, 2, b"").is_none());
        assert!(udp_frame(Some(v6("2001:db8::1")), v6("192.0.2.1"), 1, 2, b"").is_none());
    }

    #[test]
    fn other_ports_truncated_packets_and_extension_headers_are_not_taken() {
        let f = udp_frame(None, v6("2001:db8::2"), 4342, 4341, b"abc").unwrap();
        assert!(udp_to_control_port(&f).is_none(), "data port");
        let mut f = udp_frame(None, v6("2001:db8::2"), 4342, 4342, b"abc").unwrap();
        assert!(
            udp_to_control_port(&f[..f.len() - 1]).is_none(),
            "truncated"
        );
        f[ETH_LEN + 6] = 0; // hop-by-hop options header
        assert!(udp_to_control_port(&f).is_none());
    }

    #[test]
    fn a_frame_cut_anywhere_is_refused_or_its_payload_bounded_without_panicking() {
        for dst in ["2001:db8::2", "192.0.2.2"] {
            let f = udp_frame(None, v6(dst), 4342, 4342, b"abc").unwrap();
            for n in 0..f.len() {
                let mut cut = f[..n].to_vec();
                // The IP lengths say the packet is as long as it is now.
                if dst.contains(':') && n >= ETH_LEN + 6 {
                    let len = u16::try_from(n.saturating_sub(ETH_LEN + 40)).unwrap();
                    cut[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.to_be_bytes());
                } else if n >= ETH_LEN + 4 {
                    let len = u16::try_from(n - ETH_LEN).unwrap();
                    cut[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&len.to_be_bytes());
                }
                let headers = ETH_LEN + if dst.contains(':') { 40 } else { 20 } + 8;
                match udp_to_control_port(&cut) {
                    None => assert!(n < headers, "{dst} cut at {n}"),
                    // The UDP length (still 11) is bounded by what is there.
                    Some(d) => assert!(n >= headers && b"abc".starts_with(d.payload)),
                }
            }
            // Any octet of any value: parsed or refused, never a panic.
            for i in 0..f.len() {
                for v in [0u8, 1, 5, 0x0f, 0x45, 0x4f, 0x60, 0x86, 0xdd, 0xff] {
                    let mut bad = f.clone();
                    bad[i] = v;
                    let _ = udp_to_control_port(&bad);
                }
            }
        }
    }
}
