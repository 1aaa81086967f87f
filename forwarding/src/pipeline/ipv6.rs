//! IPv6 in the pipeline: neighbour discovery (answers for our addresses, learning, solicitation
//! of unknown next hops), echo replies, hop-limit expiry and routing.

use std::net::{IpAddr, Ipv6Addr};

use roamer_hal::{L3Interface, Mac, PortId, PuntReason, VlanId};

use super::{
    DropReason, ETH_LEN, ETHERTYPE_IPV6, Frame, HSRP_V6_PORT, LISP_CONTROL_PORT, NoTrace, Outcome,
    Pipeline, ReplyTo, Tracer, Verdict, be16, mac_at,
};
use crate::wire::checksum;

pub(super) const NS: u8 = 135;
pub(super) const NA: u8 = 136;
const ICMPV6: u8 = 58;
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const TIME_EXCEEDED: u8 = 3;
const IPV6_LEN: usize = 40;
/// Router, Solicited and Override flags of a neighbour advertisement.
const NA_FLAGS: u8 = 0xe0;

/// Turns the ICMPv6 echo request in `ip` (from its IPv6 header on) into the reply in place:
/// addresses swapped, hop limit 64, checksum recomputed. `false` (nothing changed) when it is
/// not an echo request whose ICMPv6 message lies within the packet.
pub(super) fn echo_rewrite_v6(ip: &mut [u8]) -> bool {
    if ip.len() < IPV6_LEN || ip[6] != ICMPV6 {
        return false;
    }
    let len = usize::from(be16(ip, 4));
    if len < 8 || IPV6_LEN + len > ip.len() || ip[IPV6_LEN] != ECHO_REQUEST {
        return false;
    }
    let (src, dst) = (addr_at(ip, 8), addr_at(ip, 24));
    ip[8..24].copy_from_slice(&dst.octets());
    ip[24..40].copy_from_slice(&src.octets());
    ip[7] = 64;
    let icmp = &mut ip[IPV6_LEN..IPV6_LEN + len];
    icmp[0] = ECHO_REPLY;
    icmp[2..4].fill(0);
    let c = checksum::finish(checksum::add(
        checksum::pseudo_ipv6(dst, src, ICMPV6, len as u32),
        icmp,
    ));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        a.copy_from_slice(s);
    }
    Ipv6Addr::from(a)
}

/// A neighbour solicitation or advertisement to write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ndp {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub kind: u8,
    pub target: Ipv6Addr,
    pub flags: u8,
}

/// Writes an NS or NA with a link-layer address option; returns the frame length (86).
pub(super) fn write_ndp(buf: &mut [u8; 256], m: &Ndp) -> usize {
    let Ndp {
        dst_mac,
        src_mac,
        src,
        dst,
        kind,
        target,
        flags,
    } = *m;
    const ICMP_LEN: usize = 32;
    buf[..6].copy_from_slice(&dst_mac);
    buf[6..12].copy_from_slice(&src_mac);
    buf[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let ip = &mut buf[ETH_LEN..ETH_LEN + IPV6_LEN];
    ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(ICMP_LEN as u16).to_be_bytes());
    ip[6] = ICMPV6;
    ip[7] = 255;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    let icmp = &mut buf[ETH_LEN + IPV6_LEN..ETH_LEN + IPV6_LEN + ICMP_LEN];
    icmp.fill(0);
    icmp[0] = kind;
    icmp[4] = flags;
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = if kind == NS { 1 } else { 2 };
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&src_mac);
    let c = checksum::finish(checksum::add(
        checksum::pseudo_ipv6(src, dst, ICMPV6, ICMP_LEN as u32),
        icmp,
    ));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ETH_LEN + IPV6_LEN + ICMP_LEN
}

impl Pipeline {
    /// [`Pipeline::originate`] for an IPv6 packet: the source filled in when unspecified (our
    /// address towards the destination), the UDP checksum computed, then routed.
    pub(super) fn originate_ipv6(&mut self, frame: &mut Frame<'_>, now_ms: u64) -> Outcome {
        let drop = Outcome::dropped;
        let f = frame.bytes();
        let Some(ip) = f.get(ETH_LEN..) else {
            return drop(DropReason::Runt);
        };
        if ip.len() < IPV6_LEN || ip[0] >> 4 != 6 {
            return drop(DropReason::BadIpHeader);
        }
        let payload = usize::from(be16(ip, 4));
        if IPV6_LEN + payload > ip.len() {
            return drop(DropReason::BadIpHeader);
        }
        let next = ip[6];
        let dst = addr_at(ip, 24);
        let src = addr_at(ip, 8);
        if dst.is_multicast() || dst.is_unspecified() {
            return drop(DropReason::NoRoute);
        }
        let dst_ip = IpAddr::V6(dst);
        let src = match self.originate_source(dst_ip, IpAddr::V6(src)) {
            Ok(IpAddr::V6(a)) => a,
            Ok(IpAddr::V4(_)) => return drop(DropReason::NoRoute),
            Err(reason) => return drop(reason),
        };
        let ip_start = frame.start + ETH_LEN;
        let ip = &mut frame.buf[ip_start..ip_start + IPV6_LEN + payload];
        ip[8..24].copy_from_slice(&src.octets());
        if next == checksum::IPPROTO_UDP {
            let udp = &mut ip[IPV6_LEN..];
            let ulen = be16(udp, 4);
            let end = usize::from(ulen);
            if udp.len() < 8 || end < 8 || end > udp.len() {
                return drop(DropReason::BadIpHeader);
            }
            udp[6..8].fill(0);
            let pseudo = checksum::pseudo_ipv6(src, dst, next, u32::from(ulen));
            let c = checksum::udp_field(pseudo, &udp[..end]);
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        self.route_ip(frame, dst_ip, now_ms, false, &mut NoTrace)
    }

    /// IPv6 to one of our router MACs.
    pub(super) fn ipv6<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let drop = Outcome::dropped;
        let f = frame.bytes();
        if f.len() < ETH_LEN + IPV6_LEN || f[ETH_LEN] >> 4 != 6 {
            return drop(DropReason::BadIpHeader);
        }
        let ip = &f[ETH_LEN..];
        let payload = usize::from(be16(ip, 4));
        if IPV6_LEN + payload > ip.len() {
            return drop(DropReason::BadIpHeader);
        }
        let next = ip[6];
        let hop = ip[7];
        let src = IpAddr::V6(addr_at(ip, 8));
        let dst = IpAddr::V6(addr_at(ip, 24));
        t.step(format_args!(
            "IPv6 {src} -> {dst} next-header {next} on {iface}"
        ));
        self.detect_dynamic_eid(iface, src, now_ms, t);
        if next == ICMPV6 && matches!(ip.get(IPV6_LEN), Some(&NS) | Some(&NA)) {
            let reply = self.ndp(iface, port, vlan, frame.bytes(), now_ms, t);
            return Outcome {
                verdict: Verdict::Consumed,
                reply,
            };
        }
        if self.tables.addresses.contains_key(&dst) {
            let dport = if matches!(next, 6 | 17) {
                be16(ip, IPV6_LEN + 2)
            } else {
                0
            };
            return match (next, dport) {
                (17, crate::wire::lisp_data::LISP_DATA_PORT) => {
                    self.decapsulate(iface, frame, now_ms, t)
                }
                (17 | 6, LISP_CONTROL_PORT) => {
                    Outcome::no_reply(Verdict::Punt(PuntReason::LispControl))
                }
                (17, HSRP_V6_PORT) => Outcome::no_reply(Verdict::Punt(PuntReason::Hsrp)),
                // An echo request's 8-octet header lies within the payload length (the type
                // octet alone may be padding behind a shorter payload); anything less is not
                // answered.
                (ICMPV6, _) if payload >= 8 && ip.get(IPV6_LEN) == Some(&ECHO_REQUEST) => {
                    t.step(format_args!("ICMPv6 echo to our address {dst}: reply"));
                    self.echo_reply(iface, port, vlan, frame, echo_rewrite_v6)
                }
                _ => Outcome::no_reply(Verdict::Punt(PuntReason::ForUs)),
            };
        }
        if let (IpAddr::V6(s6), IpAddr::V6(d6)) = (src, dst)
            && (d6.is_multicast() || d6.is_unicast_link_local() || s6.is_unicast_link_local())
        {
            // Router and neighbour solicitations, MLD, link-local chatter: never routed (and
            // never an expired hop limit), counted on their own.
            t.step(format_args!(
                "link-local or multicast {dst}: link control traffic, not routed"
            ));
            self.counters.link_local_control += 1;
            return Outcome::no_reply(Verdict::Consumed);
        }
        if hop <= 1 {
            t.step(format_args!(
                "hop limit {hop} expires here: ICMPv6 time exceeded"
            ));
            let reply = self.icmpv6_time_exceeded(iface, port, vlan, frame.bytes());
            return Outcome {
                verdict: Verdict::Drop(DropReason::TtlExpired),
                reply,
            };
        }
        self.route_ip(frame, dst, now_ms, true, t)
    }

    /// IPv6 multicast in a VLAN: flooded; neighbour discovery and HSRP also seen by us.
    pub(super) fn ipv6_multicast<T: Tracer>(
        &mut self,
        svi: L3Interface,
        port: PortId,
        vlan: VlanId,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let f = frame.bytes();
        let flood = Verdict::Flood { vlan, except: port };
        let Some(ip) = f
            .get(ETH_LEN..)
            .filter(|ip| ip.len() >= IPV6_LEN + 4 && ip[0] >> 4 == 6)
        else {
            return Outcome::no_reply(flood);
        };
        match (ip[6], ip[IPV6_LEN]) {
            (ICMPV6, NS | NA) => {
                let reply = self.ndp(svi, port, Some(vlan), frame.bytes(), now_ms, t);
                Outcome {
                    verdict: flood,
                    reply,
                }
            }
            (17, _) if be16(ip, IPV6_LEN + 2) == HSRP_V6_PORT => {
                Outcome::no_reply(Verdict::FloodAndPunt {
                    vlan,
                    except: port,
                    reason: PuntReason::Hsrp,
                })
            }
            (17, _) if be16(ip, IPV6_LEN + 2) == LISP_CONTROL_PORT => {
                Outcome::no_reply(Verdict::FloodAndPunt {
                    vlan,
                    except: port,
                    reason: PuntReason::LispControl,
                })
            }
            _ => Outcome::no_reply(flood),
        }
    }

    /// Neighbour solicitation and advertisement: learn the sender, answer for our addresses.
    fn ndp<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
        now_ms: u64,
        t: &mut T,
    ) -> Option<ReplyTo> {
        let ip = f.get(ETH_LEN..)?;
        let icmp = ip.get(IPV6_LEN..IPV6_LEN + usize::from(be16(ip, 4)))?;
        if icmp.len() < 24 || ip[7] != 255 {
            return None;
        }
        let src = addr_at(ip, 8);
        let target = addr_at(icmp, 8);
        let option_mac = |want: u8| -> Option<Mac> {
            let mut opts = icmp.get(24..)?;
            while opts.len() >= 8 {
                let len = usize::from(opts[1]) * 8;
                if len == 0 || len > opts.len() {
                    return None;
                }
                if opts[0] == want {
                    return Some(mac_at(opts, 2));
                }
                opts = &opts[len..];
            }
            None
        };
        // Not a host of ours when it comes over the LAN extension (the hello-filter port): that
        // host is at the other data centre (as for ARP).
        let isolated = self.tables.hello_filter.contains(&port);
        let host = |a: Ipv6Addr| !a.is_unspecified() && !a.is_unicast_link_local();
        match icmp[0] {
            NA => {
                if let Some(mac) = option_mac(2)
                    && T::LEARN
                {
                    self.tables
                        .learn_neighbor(iface, IpAddr::V6(target), mac, now_ms);
                }
                // A host announcing itself (the unsolicited advertisement a moved host sends)
                // detects it, as a gratuitous ARP does.
                if !isolated && host(target) {
                    self.detect_dynamic_eid(iface, IpAddr::V6(target), now_ms, t);
                }
                None
            }
            NS => {
                let sender_mac = option_mac(1);
                if let Some(mac) = sender_mac
                    && !src.is_unspecified()
                    && T::LEARN
                {
                    self.tables
                        .learn_neighbor(iface, IpAddr::V6(src), mac, now_ms);
                }
                if src.is_unspecified() {
                    // Duplicate address detection by someone else: not ours to answer here.
                    return None;
                }
                let own = self
                    .tables
                    .addresses
                    .get(&IpAddr::V6(target))
                    .filter(|o| o.iface == iface);
                let mac = match own {
                    Some(own) => own
                        .virtual_mac
                        .or_else(|| self.tables.iface_mac.get(&iface).copied())?,
                    // A host moved here across subnets soliciting its old gateway: answered
                    // as proxy-ARP answers it (seed 001), so its gateway keeps working.
                    None if !isolated
                        && self.moved_host_gateway(iface, IpAddr::V6(src), IpAddr::V6(target)) =>
                    {
                        self.tables.answer_mac(iface)?
                    }
                    None => return None,
                };
                // A moved host asks its gateway — us — before it sends anything routed.
                if !isolated && host(src) {
                    self.detect_dynamic_eid(iface, IpAddr::V6(src), now_ms, t);
                }
                let dst_mac = sender_mac.unwrap_or_else(|| mac_at(f, 6));
                t.step(format_args!(
                    "neighbour solicitation for our {target}: advertise {mac}"
                ));
                self.reply_len = write_ndp(
                    &mut self.reply,
                    &Ndp {
                        dst_mac: dst_mac.0,
                        src_mac: mac.0,
                        src: target,
                        dst: src,
                        kind: NA,
                        target,
                        flags: NA_FLAGS,
                    },
                );
                let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
                Some(ReplyTo::Port { port, tag })
            }
            _ => None,
        }
    }

    fn icmpv6_time_exceeded(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
    ) -> Option<ReplyTo> {
        self.icmpv6_error(iface, port, vlan, f, [TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0])
    }

    /// An ICMPv6 error (`head` = its first 8 octets, checksum zero) quoting the start of the
    /// packet in `f`, built in the reply buffer, sent back out of the ingress port.
    pub(super) fn icmpv6_error(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
        head: [u8; 8],
    ) -> Option<ReplyTo> {
        let ip = f.get(ETH_LEN..)?;
        let quoted = ip.get(..(IPV6_LEN + 8).min(ip.len()))?;
        let our = self
            .tables
            .addresses
            .iter()
            .filter_map(|(a, o)| match a {
                IpAddr::V6(v6) if o.iface == iface && o.virtual_mac.is_none() => Some(*v6),
                _ => None,
            })
            .min()?;
        let mac = self.tables.iface_mac.get(&iface).copied()?;
        let to = addr_at(ip, 8);
        let icmp_len = 8 + quoted.len();
        let r = &mut self.reply;
        r[..6].copy_from_slice(&f[6..12]);
        r[6..12].copy_from_slice(&mac.0);
        r[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let h = &mut r[ETH_LEN..ETH_LEN + IPV6_LEN];
        h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        h[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
        h[6] = ICMPV6;
        h[7] = 64;
        h[8..24].copy_from_slice(&our.octets());
        h[24..40].copy_from_slice(&to.octets());
        let icmp = &mut r[ETH_LEN + IPV6_LEN..ETH_LEN + IPV6_LEN + icmp_len];
        icmp[..8].copy_from_slice(&head);
        icmp[8..].copy_from_slice(quoted);
        let c = checksum::finish(checksum::add(
            checksum::pseudo_ipv6(our, to, ICMPV6, icmp_len as u32),
            icmp,
        ));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        self.reply_len = ETH_LEN + IPV6_LEN + icmp_len;
        let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
        Some(ReplyTo::Port { port, tag })
    }
}
