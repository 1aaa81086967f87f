//! LISP in the pipeline: encapsulation to a map-cache locator, decapsulation, dynamic-EID
//! detection and the LAN extension.

use super::*;

/// Lowest priority wins (255 = never); weights split flows among equal priorities.
fn choose_locator(locators: &[Locator], hash: u32) -> Option<Locator> {
    let best = locators
        .iter()
        .filter(|l| l.priority != 255)
        .map(|l| l.priority)
        .min()?;
    let mut candidates = locators.iter().filter(|l| l.priority == best);
    let total: u32 = candidates.clone().map(|l| u32::from(l.weight)).sum();
    if total == 0 {
        let n = candidates.clone().count() as u32;
        return candidates.nth((hash % n.max(1)) as usize).copied();
    }
    let mut pick = hash % total;
    for l in candidates.by_ref() {
        let w = u32::from(l.weight);
        if pick < w {
            return Some(*l);
        }
        pick -= w;
    }
    None
}

/// The source address of the IP packet after the Ethernet header.
fn inner_source(f: &[u8]) -> Option<IpAddr> {
    match f.get(ETH_LEN)? >> 4 {
        4 => {
            let a: [u8; 4] = f.get(ETH_LEN + 12..ETH_LEN + 16)?.try_into().ok()?;
            Some(IpAddr::from(a))
        }
        6 => {
            let a: [u8; 16] = f.get(ETH_LEN + 8..ETH_LEN + 24)?.try_into().ok()?;
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}

impl Pipeline {
    /// ITR: encapsulate towards the map-cache's locator, then route the outer packet.
    pub(super) fn encapsulate<T: Tracer>(
        &mut self,
        frame: &mut Frame<'_>,
        dst: IpAddr,
        now_ms: u64,
        decrement: bool,
        t: &mut T,
    ) -> Outcome {
        let drop = Outcome::dropped;
        let Some(entry) = self.tables.map_cache(dst) else {
            if self.rate_ok(0, dst, now_ms, self.settings.miss_interval_ms)
                && let Some(source) = inner_source(frame.bytes())
            {
                self.event(HalEvent::MapCacheMiss {
                    iid: Iid::default(),
                    dest: dst,
                    source,
                });
            }
            t.step(format_args!(
                "map-cache miss for {dst}: Map-Request, held for the Map-Reply"
            ));
            let waiting = hold::Waiting::MapCache { dst, decrement };
            return self.hold(waiting, frame, now_ms, DropReason::MapCacheMiss);
        };
        t.step(format_args!(
            "map-cache {} (IID {}): {} locator(s)",
            entry.eid,
            entry.iid,
            entry.locators.len()
        ));
        if entry.locators.is_empty() {
            t.step(format_args!(
                "negative map-cache entry {}: {:?}",
                entry.eid, entry.negative
            ));
            let (negative, iid) = (entry.negative, entry.iid);
            return match negative {
                NegativeAction::NativelyForward => drop(DropReason::NoRoute),
                NegativeAction::SendMapRequest => {
                    if self.rate_ok(0, dst, now_ms, self.settings.miss_interval_ms)
                        && let Some(source) = inner_source(frame.bytes())
                    {
                        self.event(HalEvent::MapCacheMiss {
                            iid,
                            dest: dst,
                            source,
                        });
                    }
                    drop(DropReason::NegativeMapCache)
                }
                NegativeAction::Drop | NegativeAction::NoAction => {
                    drop(DropReason::NegativeMapCache)
                }
            };
        }
        let iid = entry.iid;
        let inner = frame.bytes().get(ETH_LEN..).unwrap_or(&[]);
        let hash = crate::wire::lisp_data::flow_hash(inner, self.flow_seed);
        let Some(loc) = choose_locator(&entry.locators, hash) else {
            return drop(DropReason::NoLocator);
        };
        let towards = self.next_hop_towards(loc.rloc);
        let Some(outer_src) = towards.and_then(|(egress, _)| self.own_address(egress, loc.rloc))
        else {
            t.step(format_args!("no own address towards RLOC {}", loc.rloc));
            return drop(DropReason::NoRoute);
        };
        // Stateless MTU handling (RFC 9300 §7.1): S = L - H; larger packets are refused with
        // ICMP carrying S so the sender's path-MTU discovery shrinks them. L is the MTU of the
        // port the encapsulated packet leaves by, where known.
        let overhead = if outer_src.is_ipv4() {
            crate::wire::lisp_data::OVERHEAD_IPV4
        } else {
            crate::wire::lisp_data::OVERHEAD_IPV6
        };
        let l = towards
            .and_then(|(egress, neighbor)| self.egress_port(egress, neighbor))
            .and_then(|p| self.port_mtu.get(&p).copied())
            .unwrap_or(self.settings.underlay_mtu);
        let inner_len = frame.len - ETH_LEN;
        let s_max = usize::from(l).saturating_sub(overhead);
        if frame.large {
            t.step(format_args!(
                "large segment: cut into packets of at most {s_max} octets (L {l}), then encapsulate"
            ));
            return Outcome::no_reply(Verdict::Segment {
                max_ip_len: u16::try_from(s_max).unwrap_or(u16::MAX),
            });
        }
        let df_clear = frame.bytes().get(ETH_LEN).is_some_and(|b| b >> 4 == 4)
            && frame
                .bytes()
                .get(ETH_LEN + 6)
                .is_some_and(|b| b & 0x40 == 0);
        if inner_len > s_max && df_clear {
            t.step(format_args!(
                "{inner_len}-octet IPv4 packet without DF exceeds {s_max}: fragment, then encapsulate"
            ));
            return Outcome::no_reply(Verdict::Fragment {
                max_ip_len: u16::try_from(s_max).unwrap_or(u16::MAX),
            });
        }
        if inner_len > s_max {
            t.step(format_args!(
                "{inner_len}-octet packet exceeds {s_max} after encapsulation: ICMP too big"
            ));
            let sender = inner_source(frame.bytes());
            let reply = match sender {
                Some(src) if self.rate_ok(6, src, now_ms, TOO_BIG_INTERVAL_MS) => {
                    self.too_big(frame.bytes(), s_max)
                }
                _ => None,
            };
            return Outcome {
                verdict: Verdict::Drop(DropReason::TooBig),
                reply,
            };
        }
        if decrement {
            decrement_ttl(frame.bytes_mut());
        }
        if frame.complete_partial_checksum() {
            t.step(format_args!(
                "partial layer-4 checksum completed before encapsulation"
            ));
        }
        let inner_start = frame.start + ETH_LEN;
        let header = LispDataRepr {
            nonce: NonceField::Nonce {
                nonce: self.nonces.next_24(),
                echo_request: false,
            },
            instance_id: (iid.get() != 0).then_some(iid),
            ..LispDataRepr::default()
        };
        let src_port =
            flow_source_port(frame.bytes().get(ETH_LEN..).unwrap_or(&[]), self.flow_seed);
        let params = EncapParams::new(outer_src, loc.rloc, src_port, header);
        if inner_start < params.overhead() + ETH_LEN {
            return drop(DropReason::NoHeadroom);
        }
        let outer = match encapsulate_in_place(frame.buf, inner_start, inner_len, &params) {
            Ok(o) => o,
            Err(_) => return drop(DropReason::NoHeadroom),
        };
        // A new Ethernet header in front of the outer IP header; the routing below fills it.
        frame.start = outer - ETH_LEN;
        frame.len = inner_len + params.overhead() + ETH_LEN;
        frame.buf[frame.start + 12..frame.start + 14]
            .copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        if loc.rloc.is_ipv6() {
            frame.buf[frame.start + 12..frame.start + 14]
                .copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        }
        self.counters.encapsulated += 1;
        t.step(format_args!(
            "LISP encapsulate to RLOC {} (priority {}, weight {}) from {outer_src}",
            loc.rloc, loc.priority, loc.weight
        ));
        self.route_ip(frame, loc.rloc, now_ms, false, t)
    }

    /// Our address on the interface that reaches `rloc` (the outer source of encapsulation).
    pub(super) fn source_rloc(&self, rloc: IpAddr) -> Option<IpAddr> {
        let (egress, _) = self.next_hop_towards(rloc)?;
        self.own_address(egress, rloc)
    }

    /// ETR: decapsulate, then deliver a local EID or raise the SMR / no-route events.
    pub(super) fn decapsulate<T: Tracer>(
        &mut self,
        _iface: L3Interface,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let drop = Outcome::dropped;
        if frame.large && !frame.gso_tcp {
            // A train of LISP packets (UDP segmentation offload) from an ITR on this host:
            // each of its datagrams is a LISP packet of its own. (A TSO offload on a LISP
            // packet is one packet around a large inner TCP segment, as a kernel ITR's eBPF
            // encapsulation of a TSO packet arrives: it is decapsulated whole below and the
            // inner segment keeps its offload.)
            t.step(format_args!(
                "UDP segmentation-offload frame: cut into its datagrams, then decapsulate each"
            ));
            self.counters.udp_segments_received += 1;
            return Outcome::no_reply(Verdict::Segment {
                max_ip_len: u16::MAX,
            });
        }
        let ip_start = frame.start + ETH_LEN;
        let ip_end = frame.start + frame.len;
        let d = match decapsulate_in_place(&mut frame.buf[ip_start..ip_end]) {
            Ok(d) => d,
            Err(e) => {
                t.step(format_args!("bad LISP packet: {e}"));
                return drop(DropReason::BadLispPacket);
            }
        };
        let inner_abs = ip_start + d.inner_start;
        let inner = &frame.buf[inner_abs..inner_abs + d.inner_len];
        let (inner_src, inner_dst, ethertype) = match d.inner_kind {
            InnerKind::Ipv4 => {
                // The inner header is checked as a received one is: it is routed on from here.
                let ihl = usize::from(inner[0] & 0x0f) * 4;
                if ihl < 20 || ihl > inner.len() {
                    return drop(DropReason::BadIpHeader);
                }
                if !ipv4_header_ok(&inner[..ihl]) {
                    t.step(format_args!(
                        "inner IPv4 header checksum does not verify: dropped"
                    ));
                    return drop(DropReason::BadIpChecksum);
                }
                (
                    IpAddr::V4(Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15])),
                    IpAddr::V4(Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19])),
                    ETHERTYPE_IPV4,
                )
            }
            InnerKind::Ipv6 => {
                let addr = |at: usize| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&inner[at..at + 16]);
                    IpAddr::from(a)
                };
                (addr(8), addr(24), ETHERTYPE_IPV6)
            }
            // LISP-GPE Ethernet payloads are not bridged by this pipeline.
            InnerKind::Ethernet => return drop(DropReason::BadLispPacket),
        };
        self.counters.decapsulated += 1;
        let iid = d.header.instance_id.unwrap_or_default();
        t.step(format_args!(
            "LISP decapsulate from RLOC {}: inner {inner_src} -> {inner_dst} (IID {iid})",
            d.outer.src
        ));
        // Keep the Ethernet header just in front of the inner packet.
        frame.start = inner_abs - ETH_LEN;
        frame.len = d.inner_len + ETH_LEN;
        frame.buf[frame.start + 12..frame.start + 14].copy_from_slice(&ethertype.to_be_bytes());
        // A partial checksum left to the offload was the outer UDP one: gone with its header.
        if frame
            .partial_csum
            .is_some_and(|(first, _)| first < inner_abs)
        {
            frame.partial_csum = None;
        }
        if self.tables.addresses.contains_key(&inner_dst) {
            return self.for_us_decapsulated(frame, inner_src, now_ms, t);
        }

        let here = matches!(
            self.tables.route(inner_dst),
            Some(NextHop::Connected(_) | NextHop::Gateway { .. })
        );
        let local_prefix = self.tables.local_eid(inner_dst).is_some();
        if self.tables.is_away(inner_dst) || (!here && !local_prefix) {
            t.step(format_args!(
                "{inner_dst} is not here: SMR trigger towards {}",
                d.outer.src
            ));
            if self.rate_ok(1, d.outer.src, now_ms, self.settings.miss_interval_ms)
                || self.rate_ok(2, inner_dst, now_ms, self.settings.miss_interval_ms)
            {
                self.event(HalEvent::EidNotHere {
                    iid,
                    eid: inner_dst,
                    source_rloc: d.outer.src,
                    inner_source: inner_src,
                });
            }
            // A host that moved away, whose new locators the map-server told us: until the
            // sender's ITR follows the SMR, its packets go on there (the inner TTL is
            // decremented, so two xTRs that both think the host away cannot loop it forever).
            if self.tables.is_away(inner_dst) && self.relays_to_new_location(inner_dst) {
                t.step(format_args!(
                    "{inner_dst} moved away: sent on to its new locators"
                ));
                self.counters.relayed_away += 1;
                return self.encapsulate(frame, inner_dst, now_ms, true, t);
            }
            return drop(DropReason::EidNotHere);
        }
        if !here {
            t.step(format_args!(
                "{inner_dst} is a local EID without a route: no-route trigger"
            ));
            if self.rate_ok(3, inner_dst, now_ms, self.settings.miss_interval_ms) {
                self.event(HalEvent::NoRoute {
                    iid,
                    eid: inner_dst,
                    source_rloc: d.outer.src,
                    inner_source: inner_src,
                });
            }
            return drop(DropReason::LocalEidNoRoute);
        }
        // Extended subnet: a host whose MAC is now behind the LAN extension (the hello-filter
        // port) lives at the other data centre. The packet still reaches it over the extension;
        // the sender is solicited to ask the mapping system again, as the old data centre does
        // on NX-OS once the host has moved.
        if self.across_lan_extension(inner_dst)
            && self.rate_ok(8, inner_dst, now_ms, self.settings.miss_interval_ms)
        {
            t.step(format_args!(
                "{inner_dst} is across the LAN extension: SMR trigger towards {}",
                d.outer.src
            ));
            self.event(HalEvent::EidNotHere {
                iid,
                eid: inner_dst,
                source_rloc: d.outer.src,
                inner_source: inner_src,
            });
        }
        let out = self.route_ip(frame, inner_dst, now_ms, false, t);
        self.tcp_segments_to_fit(out, frame, t)
    }

    /// Whether a packet for `eid`, away from here, can be sent on: the map-cache has locators
    /// for it and none of them is one of ours.
    pub(super) fn relays_to_new_location(&self, eid: IpAddr) -> bool {
        self.tables.map_cache(eid).is_some_and(|e| {
            !e.locators.is_empty()
                && e.locators
                    .iter()
                    .all(|l| !self.tables.addresses.contains_key(&l.rloc))
        })
    }

    /// Whether `ip`, on a connected SVI subnet, was last seen behind a hello-filter port (the
    /// LAN extension to another data centre of the site).
    pub(super) fn across_lan_extension(&self, ip: IpAddr) -> bool {
        if self.tables.hello_filter.is_empty() {
            return false;
        }
        let Some(NextHop::Connected(iface @ L3Interface::Vlan(vlan))) = self.tables.route(ip)
        else {
            return false;
        };
        self.tables
            .neighbors
            .get(&(iface, ip))
            .and_then(|n| self.tables.fdb.get(&(vlan, n.mac)))
            .is_some_and(|f| self.tables.hello_filter.contains(&f.port))
    }

    /// A source inside a dynamic-EID range of the ingress interface is reported (then refreshed).
    pub(super) fn detect_dynamic_eid<T: Tracer>(
        &mut self,
        iface: L3Interface,
        src: IpAddr,
        now_ms: u64,
        t: &mut T,
    ) {
        let Some(ranges) = self.tables.dynamic_ranges.get(&iface) else {
            return;
        };
        let Some(at) = ranges.iter().position(|r| r.eid.contains(src)) else {
            return;
        };
        // Across subnets, only sources outside the interface's own subnets have moved in.
        // Across subnets, a host of the interface's own subnet is at home, not a dynamic EID —
        // unless we were told it had moved away (away table): then it is back.
        if !ranges[at].extended_subnet
            && self.in_iface_subnet(iface, src)
            && !self.tables.is_away(src)
        {
            return;
        }
        // A host we were told had left is back: report it at once, not at the refresh pace
        // (its last report here may be only seconds old).
        let (kind, interval) = if self.tables.is_away(src) {
            (7, AWAY_REDETECT_MS)
        } else {
            (4, self.settings.eid_refresh_ms)
        };
        if T::LEARN && self.rate_ok(kind, src, now_ms, interval) {
            // The map's name is copied only for the (rate-limited) event, never per packet.
            let Some(map) = self
                .tables
                .dynamic_ranges
                .get(&iface)
                .and_then(|r| r.get(at))
                .map(|r| r.map.clone())
            else {
                return;
            };
            t.step(format_args!("dynamic EID {src} seen on {iface} ({map})"));
            self.event(HalEvent::DynamicEidSeen {
                iface,
                eid: src,
                map,
            });
        }
    }
}
