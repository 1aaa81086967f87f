//! Mobility: detected dynamic EIDs, the site multicast Map-Notify, the away table
//! (moved away, registered elsewhere inside our prefix, cache notified).

use super::*;

impl Xtr {
    /// Puts `eid` in the away table (from `producer`; `deconfigured`: a database prefix taken
    /// out of the configuration) and programs its table entry.
    pub(super) fn add_away(
        &mut self,
        eid: Prefix,
        producer: Producer,
        deconfigured: bool,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        self.away.insert(
            eid,
            AwayEntry {
                producer,
                created_ms: now_ms,
                programmed: true,
                deconfigured,
            },
        );
        out.push(Output::Table(TableOp::add(TableEntry::AwayEntry {
            iid: self.iid,
            eid,
        })));
    }

    // ----------------------------------------------------------------- data-plane events

    /// A source inside a dynamic-EID range appeared on a `lisp mobility` interface.
    pub fn dynamic_eid_seen(
        &mut self,
        iface: L3Interface,
        eid: IpAddr,
        map: &str,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if let Some(d) = self.dynamic.get_mut(&eid) {
            if !d.via_map_notify {
                d.last_seen_ms = now_ms;
                return;
            }
            // It was at another xTR of the site; now it talks to us: ours from here on.
            self.dynamic.remove(&eid);
        }
        if !self.maps.contains_key(map) {
            return;
        }
        if self.dynamic.len() >= self.limits.dynamic_eids {
            self.counters.dropped_table_full += 1;
            return;
        }
        self.counters.dynamic_eids_detected += 1;
        let host = Prefix::host(eid);
        // The host is here now: it is no longer away, and no longer remote.
        if let Some(a) = self.away.remove(&host)
            && a.programmed
        {
            out.push(Output::Table(TableOp::remove(TableEntry::AwayEntry {
                iid: self.iid,
                eid: host,
            })));
        }
        if let Some(c) = self.cache.remove(&host) {
            out.push(Output::Table(TableOp::remove(self.cache_row(&c))));
        }
        let extended = self
            .maps
            .get(map)
            .and_then(|p| p.extended_subnet.get(&iface).copied())
            .unwrap_or(false);
        // Across subnets the host is outside the interface's subnet: route it there.
        let host_route = !extended;
        if host_route {
            out.push(Output::Table(TableOp::add(TableEntry::Route {
                prefix: host,
                next_hop: NextHop::Connected(iface),
            })));
        }
        self.dynamic.insert(
            eid,
            DynamicEid {
                map: map.to_string(),
                iface,
                first_ms: now_ms,
                last_seen_ms: now_ms,
                host_route,
                via_map_notify: false,
            },
        );
        for s in self
            .servers
            .iter_mut()
            .filter(|s| s.maps.iter().any(|m| m == map))
        {
            s.next_ms = now_ms;
            s.failures = 0;
        }
        if extended {
            self.announce_to_site(iface, eid, map, out);
        }
    }

    /// Extended subnet: tell the other xTRs of the site (same VLAN) that `eid` is here now.
    pub(super) fn announce_to_site(
        &mut self,
        iface: L3Interface,
        eid: IpAddr,
        map: &str,
        out: &mut Vec<Output>,
    ) {
        let Some(policy) = self.maps.get(map) else {
            return;
        };
        let (Some(group), Some(source), L3Interface::Vlan(vlan)) = (
            policy.notify_group,
            policy.sources.get(&iface).copied(),
            iface,
        ) else {
            return;
        };
        let Some(key) = self.map_key(map) else {
            self.counters.unusable_keys += 1;
            return;
        };
        let Some(record) = self.record_for_prefix(Prefix::host(eid)) else {
            return;
        };
        let notify = MapNotify {
            ack: false,
            nonce: self.nonces.fresh(),
            auth: crate::wire::lisp::auth::Authentication::none(),
            records: vec![record],
            xtr: None,
        };
        let Ok(payload) = notify.to_signed_vec(&key) else {
            return;
        };
        self.counters.site_notifies_sent += 1;
        out.push(Output::SiteNotify {
            vlan,
            source,
            group,
            payload,
        });
    }

    /// The key that signs a map's messages: its map-servers' (the site's shared key).
    pub(super) fn map_key(&self, map: &str) -> Option<AuthKey> {
        self.servers
            .iter()
            .filter(|s| s.maps.iter().any(|m| m == map))
            .find_map(|s| s.key.clone())
    }

    /// A site-based Map-Notify to `group` received in `vlan` from another xTR of the site:
    /// the EIDs it names are at that xTR now; we stop claiming them and list them with `*`.
    pub fn site_notify(
        &mut self,
        payload: &[u8],
        group: Ipv4Addr,
        vlan: Option<VlanId>,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some((map, iface)) = self.maps.iter().find_map(|(name, p)| {
            if p.notify_group != Some(group) {
                return None;
            }
            let iface = p
                .sources
                .keys()
                .find(|i| vlan.is_none_or(|v| **i == L3Interface::Vlan(v)))
                .copied()?;
            Some((name.clone(), iface))
        }) else {
            self.counters.site_notifies_refused += 1;
            return;
        };
        let verified = self.map_key(&map).and_then(|key| {
            let index = MapNotify::parse(payload).ok()?.auth.key_index();
            MapNotify::parse_verified(payload, &key.with_key_index(index)).ok()
        });
        let Some(notify) = verified else {
            self.counters.site_notifies_refused += 1;
            return;
        };
        self.counters.site_notifies_received += 1;
        for record in &notify.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            let eid = prefix.addr();
            let in_map = self
                .maps
                .get(&map)
                .is_some_and(|p| p.ranges.iter().any(|(r, _)| r.contains(eid)));
            let ours = record.locators.iter().any(|l| self.rlocs.contains(&l.rloc));
            if ours || !in_map || prefix.len() != host_len(&prefix) {
                continue;
            }
            if let Some(old) = self.dynamic.remove(&eid)
                && old.host_route
            {
                out.push(Output::Table(TableOp::remove(TableEntry::Route {
                    prefix,
                    next_hop: NextHop::Connected(old.iface),
                })));
            }
            // In our site, on the extended LAN: not away (whatever the map-server said first).
            if let Some(a) = self.away.remove(&prefix)
                && a.programmed
            {
                out.push(Output::Table(TableOp::remove(TableEntry::AwayEntry {
                    iid: self.iid,
                    eid: prefix,
                })));
            }
            if self.dynamic.len() >= self.limits.dynamic_eids {
                self.counters.dropped_table_full += 1;
                continue;
            }
            self.dynamic.insert(
                eid,
                DynamicEid {
                    map: map.clone(),
                    iface,
                    first_ms: now_ms,
                    last_seen_ms: now_ms,
                    host_route: false,
                    via_map_notify: true,
                },
            );
        }
    }

    /// A decapsulated packet for a local EID without a route (generalized SMR): the prefix
    /// goes to the away table, is withdrawn from the map-servers, and the sender is solicited.
    pub fn local_eid_no_route(
        &mut self,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if let Some(prefix) = self.database_prefix(eid)
            && !self.away.contains_key(&prefix)
            && self.away.len() < self.limits.away
        {
            self.away.insert(
                prefix,
                AwayEntry {
                    producer: Producer::LocalEid,
                    created_ms: now_ms,
                    programmed: false,
                    deconfigured: false,
                },
            );
            self.withdraw(prefix, |s| s.global, now_ms, out);
        }
        self.eid_not_here(eid, source_rloc, inner_source, now_ms, out);
    }

    /// Another site registered a host inside one of our database prefixes: we must not deliver
    /// it locally any more (away table) — packets for it are SMR'd to their ITR instead.
    pub(super) fn remote_inside(&mut self, host: Prefix, now_ms: u64, out: &mut Vec<Output>) {
        if self.away.contains_key(&host) || self.away.len() >= self.limits.away {
            return;
        }
        self.add_away(host, Producer::RemoteEid, false, now_ms, out);
    }

    /// A host now away: its new locators, as the Map-Notify gives them, in the map-cache (until
    /// the record's TTL, at most the away entry's lifetime).
    pub(super) fn cache_notified(
        &mut self,
        host: Prefix,
        record: &EidRecord,
        map_server: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if !self.away.contains_key(&host) {
            return;
        }
        let locators: Vec<Locator> = record
            .locators
            .iter()
            .filter(|l| l.reachable && l.priority != 255 && !self.rlocs.contains(&l.rloc))
            .map(|l| l.to_hal())
            .collect();
        if locators.is_empty() {
            return;
        }
        let ttl_ms = (u64::from(record.ttl) * 60_000).min(AWAY_LIFETIME_MS);
        let entry = CacheEntry {
            prefix: host,
            locators,
            action: None,
            created_ms: now_ms,
            modified_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            map_source: map_server,
            source: CacheSource::MapNotify,
        };
        // Nothing is cached when the map-cache is full and has no entry for the host.
        self.install_cache_entry(entry, out);
    }

    /// Another site registered our dynamic EID: forget it, put it in the away table.
    pub(super) fn moved_away(&mut self, host: Prefix, now_ms: u64, out: &mut Vec<Output>) {
        // Held by another xTR of our site (site-based Map-Notify): the map-server only tells
        // us it is not ours, which we know; it stays listed.
        if self
            .dynamic
            .get(&host.addr())
            .is_none_or(|d| d.via_map_notify)
        {
            return;
        }
        let Some(d) = self.dynamic.remove(&host.addr()) else {
            return;
        };
        self.counters.dynamic_eids_moved_away += 1;
        if d.host_route {
            out.push(Output::Table(TableOp::remove(TableEntry::Route {
                prefix: host,
                next_hop: NextHop::Connected(d.iface),
            })));
        }
        if self.away.len() < self.limits.away && !self.away.contains_key(&host) {
            self.add_away(host, Producer::DynEid, false, now_ms, out);
        }
    }
}
