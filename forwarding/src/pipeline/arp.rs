//! ARP in the pipeline: answers for our addresses and proxy ARP, learning, moved hosts.

use super::*;

impl Pipeline {
    /// ARP: learn the sender, answer for our addresses and, with proxy-ARP, for reachable ones.
    pub(super) fn arp<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
        now_ms: u64,
        t: &mut T,
    ) -> Option<ReplyTo> {
        let a = f.get(ETH_LEN..ETH_LEN + 28)?;
        if be16(a, 0) != 1 || be16(a, 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
            return None;
        }
        let op = be16(a, 6);
        let sender_mac = mac_at(a, 8);
        let sender_ip = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
        let target_ip = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
        // A host moved here across subnets asking for its old gateway is a neighbour too (the
        // host route the control plane installs for it comes only after this ARP).
        let on_subnet = self.on_subnet(iface, IpAddr::V4(sender_ip))
            || self.moved_host_gateway(iface, IpAddr::V4(sender_ip), IpAddr::V4(target_ip));
        if T::LEARN && on_subnet && !sender_ip.is_unspecified() {
            self.tables
                .learn_neighbor(iface, IpAddr::V4(sender_ip), sender_mac, now_ms);
        }
        // FHRP isolation: across the LAN extension (the hello-filter port) the other data
        // centre has its own active gateway; answering its hosts for the virtual IP, or by
        // proxy, would pull them (and their dynamic-EID detection) over here.
        let isolated = self.tables.hello_filter.contains(&port);
        // A host announcing itself detects it: the gratuitous ARP a host (or its hypervisor,
        // after a live migration) sends when it arrives, or an ARP reply. Not one flooded over
        // the LAN extension (the hello-filter port): that host is at the other data centre.
        // A request detects it only when we answer it (below): on an extended LAN every xTR
        // sees the flooded requests for the other's addresses.
        let announces = sender_ip == target_ip || op == 2;
        if announces && !isolated && !sender_ip.is_unspecified() {
            self.detect_dynamic_eid(iface, IpAddr::V4(sender_ip), now_ms, t);
        }
        if op != 1 || sender_ip.is_unspecified() || sender_ip == target_ip {
            return None;
        }
        let target = IpAddr::V4(target_ip);
        if isolated
            && (self
                .tables
                .addresses
                .get(&target)
                .is_some_and(|own| own.virtual_mac.is_some())
                || self.tables.proxy_arp.contains(&iface))
            && !self
                .tables
                .addresses
                .get(&target)
                .is_some_and(|own| own.iface == iface && own.virtual_mac.is_none())
        {
            t.step(format_args!(
                "ARP for {target_ip} on the LAN extension {port}: the other site's gateway answers"
            ));
            return None;
        }
        let answer_mac = match self.tables.addresses.get(&target) {
            Some(own) if own.iface == iface => {
                let mac = own
                    .virtual_mac
                    .or_else(|| self.tables.iface_mac.get(&iface).copied())?;
                t.step(format_args!(
                    "ARP for our address {target_ip}: answer with {mac}"
                ));
                mac
            }
            _ if self.proxy_arp_applies(iface, target)
                || self.moved_host_gateway(iface, IpAddr::V4(sender_ip), target) =>
            {
                let mac = self.tables.answer_mac(iface)?;
                t.step(format_args!(
                    "proxy-ARP for {target_ip} on {iface}: answer with {mac}"
                ));
                mac
            }
            _ => return None,
        };
        // A moved host asks its gateway — us — before it sends anything routed.
        self.detect_dynamic_eid(iface, IpAddr::V4(sender_ip), now_ms, t);
        let r = &mut self.reply;
        r[..6].copy_from_slice(&sender_mac.0);
        r[6..12].copy_from_slice(&answer_mac.0);
        r[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        r[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        r[22..28].copy_from_slice(&answer_mac.0);
        r[28..32].copy_from_slice(&target_ip.octets());
        r[32..38].copy_from_slice(&sender_mac.0);
        r[38..42].copy_from_slice(&sender_ip.octets());
        r[42..60].fill(0);
        self.reply_len = 60;
        let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
        Some(ReplyTo::Port { port, tag })
    }

    /// RFC 1027 with the LISP mobility twist (protocols.md §8.1, §8.3).
    pub(super) fn proxy_arp_applies(&self, iface: L3Interface, target: IpAddr) -> bool {
        if !self.tables.proxy_arp.contains(&iface) {
            return false;
        }
        let IpAddr::V4(t4) = target else { return false };
        if t4.is_broadcast() || t4.is_multicast() || t4.is_unspecified() {
            return false;
        }
        // Within the interface's own subnet the owner answers — unless a host route says the
        // address now lives elsewhere (a moved EID).
        let Some((prefix, nh)) = self.tables.route_match(target) else {
            return false;
        };
        if prefix.is_empty() {
            return false;
        }
        match nh {
            NextHop::Connected(i) => i != iface,
            NextHop::Gateway { iface: Some(i), .. } => i != iface,
            NextHop::Gateway { via, iface: None } => {
                !matches!(self.tables.route(via), Some(NextHop::Connected(i)) if i == iface)
            }
            NextHop::Lisp => true,
            NextHop::Discard => false,
        }
    }

    /// Across subnets (seed 001): a host that moved here keeps its old gateway address; with
    /// proxy-ARP on, we answer for it (with the shared HSRP virtual MAC where there is one),
    /// so the host's gateway keeps working without any change on the host.
    pub(super) fn moved_host_gateway(
        &self,
        iface: L3Interface,
        sender: IpAddr,
        target: IpAddr,
    ) -> bool {
        if !self.tables.proxy_arp.contains(&iface) || self.in_iface_subnet(iface, sender) {
            return false;
        }
        let in_range = |ip: IpAddr| {
            self.tables
                .dynamic_ranges
                .get(&iface)
                .is_some_and(|rs| rs.iter().any(|r| !r.extended_subnet && r.eid.contains(ip)))
        };
        in_range(sender)
            && !self.in_iface_subnet(iface, target)
            && !self.tables.addresses.contains_key(&target)
    }

    /// Inside one of the interface's own subnets (its addresses' prefixes; host routes to
    /// moved hosts do not count).
    pub(super) fn in_iface_subnet(&self, iface: L3Interface, ip: IpAddr) -> bool {
        self.tables.addresses.iter().any(|(a, own)| {
            own.iface == iface
                && own.virtual_mac.is_none()
                && roamer_hal::Prefix::new(*a, own.prefix_len).is_ok_and(|p| p.contains(ip))
        })
    }

    pub(super) fn on_subnet(&self, iface: L3Interface, ip: IpAddr) -> bool {
        matches!(self.tables.route(ip), Some(NextHop::Connected(i)) if i == iface)
    }
}
