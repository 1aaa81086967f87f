//! IPv4 in the pipeline: routing, next hops, TTL expiry and ICMP errors, MSS clamping.

use super::*;

/// The header and total lengths of the IPv4 header at the start of `ip` when it is well formed:
/// version 4, at least 20 octets of header, a total length not below the header nor beyond `ip`.
#[inline]
fn ipv4_lengths(ip: &[u8]) -> Option<(usize, usize)> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || usize::from(ip[0] & 0x0f) * 4 < 20 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    (total >= ihl && total <= ip.len()).then_some((ihl, total))
}

impl Pipeline {
    pub(super) fn originate_ipv4(&mut self, frame: &mut Frame<'_>, now_ms: u64) -> Outcome {
        let drop = Outcome::dropped;
        let f = frame.bytes();
        if f.len() < ETH_LEN {
            return drop(DropReason::Runt);
        }
        if be16(f, 12) != ETHERTYPE_IPV4 {
            return drop(DropReason::BadIpHeader);
        }
        let ip = &f[ETH_LEN..];
        let Some((ihl, total)) = ipv4_lengths(ip) else {
            return drop(DropReason::BadIpHeader);
        };
        // A fragment's UDP checksum covers the whole datagram, which this frame is not.
        if be16(ip, 6) & 0x3fff != 0 {
            return drop(DropReason::BadIpHeader);
        }
        let proto = ip[9];
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        if dst.is_multicast() || dst.is_broadcast() || dst.is_unspecified() {
            return drop(DropReason::NoRoute);
        }
        let dst_ip = IpAddr::V4(dst);
        let src = match self.originate_source(dst_ip, IpAddr::V4(src)) {
            Ok(IpAddr::V4(a)) => a,
            Ok(IpAddr::V6(_)) => return drop(DropReason::NoRoute),
            Err(reason) => return drop(reason),
        };
        let ip_start = frame.start + ETH_LEN;
        let ip = &mut frame.buf[ip_start..ip_start + total];
        ip[12..16].copy_from_slice(&src.octets());
        ip[10..12].fill(0);
        let c = checksum::ipv4_header(&ip[..ihl]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        if proto == checksum::IPPROTO_UDP {
            let udp = &mut ip[ihl..];
            let ulen = be16(udp, 4);
            let end = usize::from(ulen);
            if udp.len() < 8 || end < 8 || end > udp.len() {
                return drop(DropReason::BadIpHeader);
            }
            udp[6..8].fill(0);
            let pseudo = checksum::pseudo_ipv4(src, dst, proto, ulen);
            let c = checksum::udp_field(pseudo, &udp[..end]);
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        self.route_ip(frame, dst_ip, now_ms, false, &mut NoTrace)
    }

    /// The source of a packet we originate to `dst`: `src`, or when that is unspecified our
    /// address of `dst`'s family towards it. Refused (why) when `dst` is one of our own
    /// addresses or its route is LISP, discard or missing.
    pub(super) fn originate_source(&self, dst: IpAddr, src: IpAddr) -> Result<IpAddr, DropReason> {
        if self.tables.addresses.contains_key(&dst) {
            return Err(DropReason::NoRoute);
        }
        match self.tables.route_match(dst) {
            None | Some((_, NextHop::Lisp)) => return Err(DropReason::NoRoute),
            Some((_, NextHop::Discard)) => return Err(DropReason::Discard),
            Some((_, NextHop::Connected(_) | NextHop::Gateway { .. })) => {}
        }
        if !src.is_unspecified() {
            return Ok(src);
        }
        match self.source_rloc(dst) {
            Some(a) if a.is_ipv4() == dst.is_ipv4() => Ok(a),
            _ => Err(DropReason::NoRoute),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer3<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        dst_mac: Mac,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        self.ingress = Some((iface, port, vlan));
        let drop = Outcome::dropped;
        match be16(frame.bytes(), 12) {
            ETHERTYPE_ARP => {
                let reply = self.arp(iface, port, vlan, frame.bytes(), now_ms, t);
                Outcome {
                    verdict: Verdict::Consumed,
                    reply,
                }
            }
            ETHERTYPE_IPV4 => self.ipv4(iface, port, vlan, frame, now_ms, t),
            ETHERTYPE_IPV6 => self.ipv6(iface, port, vlan, frame, now_ms, t),
            other => {
                t.step(format_args!(
                    "ethertype {other:#06x} to router MAC {dst_mac}: dropped"
                ));
                drop(DropReason::NotForUs)
            }
        }
    }

    pub(super) fn ipv4<T: Tracer>(
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
        let Some(ip) = f.get(ETH_LEN..) else {
            return drop(DropReason::Runt);
        };
        let Some((ihl, total)) = ipv4_lengths(ip) else {
            return drop(DropReason::BadIpHeader);
        };
        // Every IPv4 packet routed, encapsulated, decapsulated or answered here has its header
        // checked (a 20-octet sum; offloads never leave the header checksum to the device).
        if !ipv4_header_ok(&ip[..ihl]) {
            t.step(format_args!(
                "IPv4 header checksum does not verify: dropped"
            ));
            return drop(DropReason::BadIpChecksum);
        }
        let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
        let proto = ip[9];
        let dport = if matches!(proto, 6 | 17) && ip.len() >= ihl + 4 {
            be16(ip, ihl + 2)
        } else {
            0
        };
        t.step(format_args!("IPv4 {src} -> {dst} proto {proto} on {iface}"));
        self.detect_dynamic_eid(iface, src, now_ms, t);

        if self.tables.addresses.contains_key(&dst) {
            return match (proto, dport) {
                (17, LISP_DATA_PORT) => self.decapsulate(iface, frame, now_ms, t),
                (17 | 6, LISP_CONTROL_PORT) => {
                    Outcome::no_reply(Verdict::Punt(PuntReason::LispControl))
                }
                (17, HSRP_PORT | HSRP_V6_PORT) => {
                    Outcome::no_reply(Verdict::Punt(PuntReason::Hsrp))
                }
                // An echo request's 8-octet header lies within the packet (the type octet alone
                // may be padding behind a shorter one); anything less is not answered.
                (1, _) if total >= ihl + 8 && ip.get(ihl) == Some(&icmp::ECHO_REQUEST_V4) => {
                    t.step(format_args!("ICMP echo to our address {dst}: reply"));
                    self.echo_reply(iface, port, vlan, frame, |ip| {
                        icmp::echo_rewrite_v4(ip);
                        true
                    })
                }
                _ => {
                    t.step(format_args!("{dst} is ours: control plane"));
                    Outcome::no_reply(Verdict::Punt(PuntReason::ForUs))
                }
            };
        }
        if let IpAddr::V4(d4) = dst
            && (d4.is_multicast() || d4.is_broadcast())
            && !is_hsrp(frame.bytes())
        {
            // IGMP, mDNS, DHCP and the like on a routed port: never routed (there is no
            // multicast routing), never an expired TTL; counted on their own.
            t.step(format_args!(
                "multicast or broadcast {dst}: link control traffic, not routed"
            ));
            self.counters.link_local_control += 1;
            return Outcome::no_reply(Verdict::Consumed);
        }
        if ip[8] <= 1 {
            t.step(format_args!(
                "TTL {} expires here: ICMP time exceeded",
                ip[8]
            ));
            let reply = self.icmp_time_exceeded(iface, port, vlan, frame.bytes());
            return Outcome {
                verdict: Verdict::Drop(DropReason::TtlExpired),
                reply,
            };
        }
        self.route_ip(frame, dst, now_ms, true, t)
    }

    /// Routes the IPv4 packet after the Ethernet header of `frame` towards `dst`.
    pub(super) fn route_ip<T: Tracer>(
        &mut self,
        frame: &mut Frame<'_>,
        dst: IpAddr,
        now_ms: u64,
        decrement: bool,
        t: &mut T,
    ) -> Outcome {
        let drop = Outcome::dropped;
        let Some((prefix, nh)) = self.tables.route_match(dst) else {
            t.step(format_args!("no route to {dst}"));
            return drop(DropReason::NoRoute);
        };
        t.step(format_args!("route {prefix} -> {nh:?}"));
        let (egress, neighbor) = match nh {
            NextHop::Connected(i) => (i, dst),
            NextHop::Gateway {
                via,
                iface: Some(i),
            } => (i, via),
            NextHop::Gateway { via, iface: None } => match self.tables.route(via) {
                Some(NextHop::Connected(i)) => (i, via),
                _ => return drop(DropReason::NoRoute),
            },
            NextHop::Discard => return drop(DropReason::Discard),
            NextHop::Lisp => return self.encapsulate(frame, dst, now_ms, decrement, t),
        };
        if decrement {
            decrement_ttl(frame.bytes_mut());
        }
        self.towards_neighbor(egress, neighbor, frame, now_ms, t)
    }

    /// Rewrites the Ethernet header towards a neighbour on `egress` and picks the port.
    pub(super) fn towards_neighbor<T: Tracer>(
        &mut self,
        egress: L3Interface,
        neighbor: IpAddr,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let Some(n) = self.tables.neighbors.get(&(egress, neighbor)).copied() else {
            t.step(format_args!(
                "{neighbor} on {egress} not resolved: glean, held for the answer"
            ));
            let reply = self.glean(egress, neighbor, now_ms);
            let waiting = hold::Waiting::Neighbor {
                iface: egress,
                ip: neighbor,
            };
            let out = self.hold(waiting, frame, now_ms, DropReason::Glean);
            return Outcome { reply, ..out };
        };
        let Some(src_mac) = self.tables.iface_mac.get(&egress).copied() else {
            return Outcome::dropped(DropReason::NoRoute);
        };
        let b = frame.bytes_mut();
        b[..6].copy_from_slice(&n.mac.0);
        b[6..12].copy_from_slice(&src_mac.0);
        self.counters.routed += 1;
        t.step(format_args!(
            "rewrite to {} from {src_mac} via {egress}",
            n.mac
        ));
        match egress {
            L3Interface::Port(p) => Outcome::no_reply(Verdict::Forward { port: p, tag: None }),
            L3Interface::Vlan(v) => match self.tables.fdb.get(&(v, n.mac)) {
                Some(e) => {
                    let tag = self
                        .tables
                        .egress_tagged(e.port, v)
                        .unwrap_or(false)
                        .then_some(v);
                    Outcome::no_reply(Verdict::Forward { port: e.port, tag })
                }
                // Routed frames never go back out of the router's own (non-existent) port.
                None => Outcome::no_reply(Verdict::Flood {
                    vlan: v,
                    except: PortId(u32::MAX),
                }),
            },
        }
    }

    /// The interface and next hop a packet routed to `dst` leaves by (a LISP or discard route
    /// has none).
    pub(super) fn next_hop_towards(&self, dst: IpAddr) -> Option<(L3Interface, IpAddr)> {
        match self.tables.route(dst)? {
            NextHop::Connected(i) => Some((i, dst)),
            NextHop::Gateway {
                via,
                iface: Some(i),
            } => Some((i, via)),
            NextHop::Gateway { via, iface: None } => match self.tables.route(via)? {
                NextHop::Connected(i) => Some((i, via)),
                _ => None,
            },
            NextHop::Discard | NextHop::Lisp => None,
        }
    }

    /// Our lowest (non-virtual) address on `iface` of `peer`'s family.
    pub(super) fn own_address(&self, iface: L3Interface, peer: IpAddr) -> Option<IpAddr> {
        self.tables
            .addresses
            .iter()
            .filter(|(a, o)| {
                o.iface == iface && o.virtual_mac.is_none() && a.is_ipv4() == peer.is_ipv4()
            })
            .map(|(a, _)| *a)
            .min()
    }

    /// The port a frame to `neighbor` on `iface` leaves by, as far as the tables know without
    /// sending anything: the routed port itself, or where the resolved neighbour's MAC was
    /// learned in the VLAN.
    pub(super) fn egress_port(&self, iface: L3Interface, neighbor: IpAddr) -> Option<PortId> {
        match iface {
            L3Interface::Port(p) => Some(p),
            L3Interface::Vlan(v) => {
                let n = self.tables.neighbors.get(&(iface, neighbor))?;
                self.tables.fdb.get(&(v, n.mac)).map(|e| e.port)
            }
        }
    }

    /// A decapsulated packet routed out of a port whose MTU it exceeds: a TCP packet leaves as
    /// segments that fit ([`Verdict::ForwardTcpSegments`]); anything else as it is.
    pub(super) fn tcp_segments_to_fit<T: Tracer>(
        &mut self,
        out: Outcome,
        frame: &Frame<'_>,
        t: &mut T,
    ) -> Outcome {
        let Verdict::Forward { port, tag } = out.verdict else {
            return out;
        };
        let Some(mtu) = self.port_mtu.get(&port).map(|m| usize::from(*m)) else {
            return out;
        };
        let ip = frame.bytes().get(ETH_LEN..).unwrap_or(&[]);
        if ip.len() <= mtu {
            return out;
        }
        let Some(headers) = tcp_headers_len(ip) else {
            return out;
        };
        let Some(mss) = mtu
            .checked_sub(headers)
            .filter(|m| *m > 0)
            .and_then(|m| u16::try_from(m).ok())
        else {
            return out;
        };
        t.step(format_args!(
            "{}-octet TCP packet exceeds the MTU {mtu} of {port}: TCP segments of {mss} octets",
            ip.len()
        ));
        Outcome {
            verdict: Verdict::ForwardTcpSegments { port, tag, mss },
            reply: out.reply,
        }
    }

    /// "Fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6) announcing `mtu`, back
    /// to where the routed frame came in. IPv4 without DF is fragmented instead
    /// ([`Verdict::Fragment`]); only a large segment without DF gets here, and no answer.
    pub(super) fn too_big(&mut self, f: &[u8], mtu: usize) -> Option<ReplyTo> {
        let (iface, port, vlan) = self.ingress?;
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        match f.get(ETH_LEN).map(|b| b >> 4) {
            Some(4) if f.get(ETH_LEN + 6).is_some_and(|b| b & 0x40 != 0) => {
                let m = mtu.to_be_bytes();
                self.icmp_error(iface, port, vlan, f, [3, 4, 0, 0, 0, 0, m[0], m[1]])
            }
            Some(6) => {
                let m = u32::from(mtu).to_be_bytes();
                self.icmpv6_error(iface, port, vlan, f, [2, 0, 0, 0, m[0], m[1], m[2], m[3]])
            }
            _ => None,
        }
    }

    /// ICMP time exceeded (type 11 code 0) back to the sender.
    pub(super) fn icmp_time_exceeded(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
    ) -> Option<ReplyTo> {
        self.icmp_error(iface, port, vlan, f, [11, 0, 0, 0, 0, 0, 0, 0])
    }

    /// An ICMP error (`head` = its first 8 octets, checksum zero) quoting the packet in `f`,
    /// built in the reply buffer, sent back out of the ingress port.
    pub(super) fn icmp_error(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
        head: [u8; 8],
    ) -> Option<ReplyTo> {
        let ip = f.get(ETH_LEN..)?;
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let quoted = ip.get(..(ihl + 8).min(ip.len()))?;
        let our = self
            .tables
            .addresses
            .iter()
            .filter(|(a, o)| o.iface == iface && o.virtual_mac.is_none() && a.is_ipv4())
            .map(|(a, _)| *a)
            .min()?;
        let IpAddr::V4(our) = our else { return None };
        let mac = self.tables.iface_mac.get(&iface).copied()?;
        let total = 20 + 8 + quoted.len();
        let r = &mut self.reply;
        r[..6].copy_from_slice(&f[6..12]);
        r[6..12].copy_from_slice(&mac.0);
        r[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let h = &mut r[ETH_LEN..ETH_LEN + 20];
        h.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[12..16].copy_from_slice(&our.octets());
        h[16..20].copy_from_slice(&ip[12..16]);
        let c = checksum::ipv4_header(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let icmp = &mut r[ETH_LEN + 20..ETH_LEN + total];
        icmp[..8].copy_from_slice(&head);
        icmp[8..].copy_from_slice(quoted);
        let c = checksum::finish(checksum::add(0, icmp));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        self.reply_len = (ETH_LEN + total).max(60);
        r[ETH_LEN + total..self.reply_len].fill(0);
        let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
        Some(ReplyTo::Port { port, tag })
    }
}
