//! Frames the pipeline answers or originates itself: ICMP echo replies to our addresses and the
//! ARP request / neighbour solicitation that resolves an unknown next hop (glean).

use std::net::{IpAddr, Ipv6Addr};

use roamer_hal::{L3Interface, PortId, PuntReason, VlanId};

use super::{
    DropReason, ETH_LEN, ETHERTYPE_ARP, Frame, Outcome, Pipeline, ReplyTo, Tracer, Verdict, mac_at,
};
use crate::wire::checksum;

/// Turns the IPv4 ICMP echo request in `ip` (from its IP header on; the caller checked the
/// header and the 8 ICMP octets) into the reply in place: addresses swapped, TTL 64, header
/// checksum recomputed, ICMP checksum updated for the new type (RFC 1624).
pub(super) fn echo_rewrite_v4(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let (src, dst) = (ip[12..16].to_owned_array4(), ip[16..20].to_owned_array4());
    ip[12..16].copy_from_slice(&dst);
    ip[16..20].copy_from_slice(&src);
    ip[8] = 64;
    ip[10..12].fill(0);
    let c = checksum::ipv4_header(&ip[..ihl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut ip[ihl..];
    let old = u16::from_be_bytes([icmp[0], icmp[1]]);
    icmp[0] = ECHO_REPLY_V4;
    let new = u16::from_be_bytes([icmp[0], icmp[1]]);
    let sum = u16::from_be_bytes([icmp[2], icmp[3]]);
    icmp[2..4].copy_from_slice(&checksum::update_word(sum, old, new).to_be_bytes());
}

pub(super) const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
/// A next hop is asked for at most this often while packets wait for it.
const GLEAN_INTERVAL_MS: u64 = 1000;

impl Pipeline {
    /// Turns an ICMP or ICMPv6 echo request to one of our addresses into the reply, in place
    /// (`rewrite` turns the IP packet around; false: it cannot), and sends it back out of the
    /// port it came from.
    pub(super) fn echo_reply(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        frame: &mut Frame<'_>,
        rewrite: impl FnOnce(&mut [u8]) -> bool,
    ) -> Outcome {
        let Some(our_mac) = self.tables.iface_mac.get(&iface).copied() else {
            return Outcome::dropped(DropReason::NotForUs);
        };
        // The reply's checksum is updated from the request's (IPv4) or computed afresh (IPv6):
        // nothing may be left to the offload.
        frame.complete_partial_checksum();
        let b = frame.bytes_mut();
        let peer_mac = mac_at(b, 6);
        b[..6].copy_from_slice(&peer_mac.0);
        b[6..12].copy_from_slice(&our_mac.0);
        if !rewrite(&mut b[ETH_LEN..]) {
            return Outcome::dropped(DropReason::BadIpHeader);
        }
        let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
        Outcome::no_reply(Verdict::Forward { port, tag })
    }

    /// A decapsulated packet for one of our own addresses: a remote site pinging an xTR's SVI
    /// address, which lies inside the xTR's own EID prefix. An echo request is answered and the
    /// reply routed like a packet from a local EID (LISP-encapsulated back towards the
    /// requester's site: a map-cache miss asks for it like any other); anything else goes to
    /// the control plane. `frame` holds the inner packet behind an Ethernet header.
    pub(super) fn for_us_decapsulated<T: Tracer>(
        &mut self,
        frame: &mut Frame<'_>,
        inner_src: IpAddr,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        frame.complete_partial_checksum();
        let b = frame.bytes_mut();
        // The bytes in front of the inner packet were the outer headers: no addresses.
        b[..12].fill(0);
        let Some(ip) = b.get_mut(ETH_LEN..) else {
            return Outcome::dropped(DropReason::Runt);
        };
        let answered = match inner_src {
            IpAddr::V4(_) => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                let echo = ip[9] == 1
                    && total >= ihl + 8
                    && total <= ip.len()
                    && ip.get(ihl) == Some(&ECHO_REQUEST_V4);
                if echo {
                    echo_rewrite_v4(ip);
                }
                echo
            }
            IpAddr::V6(_) => super::ipv6::echo_rewrite_v6(ip),
        };
        if !answered {
            t.step(format_args!(
                "decapsulated packet for our own address: control plane"
            ));
            return Outcome::no_reply(Verdict::Punt(PuntReason::ForUs));
        }
        t.step(format_args!(
            "decapsulated echo request for our own address: reply to {inner_src}, routed"
        ));
        self.route_ip(frame, inner_src, now_ms, false, t)
    }

    /// Builds an ARP request (IPv4) or a neighbour solicitation (IPv6) for `neighbor` out of
    /// `egress`, at most once per [`GLEAN_INTERVAL_MS`] per neighbour.
    /// A host moved here across subnets is in none of our subnets (a live-migrated VM keeps its
    /// ARP cache and never asks): ask for it from the interface's own address.
    fn moved_host_source(&self, egress: L3Interface, neighbor: IpAddr) -> Option<IpAddr> {
        let moved = self.tables.dynamic_ranges.get(&egress).is_some_and(|rs| {
            rs.iter()
                .any(|r| !r.extended_subnet && r.eid.contains(neighbor))
        });
        if !moved {
            return None;
        }
        self.own_address(egress, neighbor)
    }

    pub(super) fn glean(
        &mut self,
        egress: L3Interface,
        neighbor: IpAddr,
        now_ms: u64,
    ) -> Option<ReplyTo> {
        let mac = self.tables.iface_mac.get(&egress).copied()?;
        let source = self
            .tables
            .addresses
            .iter()
            .filter(|(a, o)| {
                o.iface == egress
                    && o.virtual_mac.is_none()
                    && a.is_ipv4() == neighbor.is_ipv4()
                    && roamer_hal::Prefix::new(**a, o.prefix_len)
                        .is_ok_and(|p| p.contains(neighbor))
            })
            .map(|(a, _)| *a)
            .min()
            .or_else(|| self.moved_host_source(egress, neighbor))?;
        if !self.rate_ok(5, neighbor, now_ms, GLEAN_INTERVAL_MS) {
            return None;
        }
        match (source, neighbor) {
            (IpAddr::V4(src), IpAddr::V4(target)) => {
                let r = &mut self.reply;
                r[..6].fill(0xff);
                r[6..12].copy_from_slice(&mac.0);
                r[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
                r[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
                r[22..28].copy_from_slice(&mac.0);
                r[28..32].copy_from_slice(&src.octets());
                r[32..38].fill(0);
                r[38..42].copy_from_slice(&target.octets());
                r[42..60].fill(0);
                self.reply_len = 60;
            }
            (IpAddr::V6(src), IpAddr::V6(target)) => {
                let t = target.octets();
                let group = Ipv6Addr::new(
                    0xff02,
                    0,
                    0,
                    0,
                    0,
                    1,
                    0xff00 | u16::from(t[13]),
                    u16::from_be_bytes([t[14], t[15]]),
                );
                let dst_mac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
                self.reply_len = super::ipv6::write_ndp(
                    &mut self.reply,
                    &super::ipv6::Ndp {
                        dst_mac,
                        src_mac: mac.0,
                        src,
                        dst: group,
                        kind: super::ipv6::NS,
                        target,
                        flags: 0,
                    },
                );
            }
            _ => return None,
        }
        Some(match egress {
            L3Interface::Port(port) => ReplyTo::Port { port, tag: None },
            L3Interface::Vlan(v) => ReplyTo::Vlan(v),
        })
    }
}

trait ToArray {
    fn to_owned_array4(&self) -> [u8; 4];
}

impl ToArray for [u8] {
    fn to_owned_array4(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self[..4]);
        a
    }
}
