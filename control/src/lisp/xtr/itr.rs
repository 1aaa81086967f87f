//! The ITR side: map-cache misses, encapsulated Map-Requests with their retransmissions, the
//! Map-Replies that fill the map-cache, and the ETR's answers to forwarded Map-Requests.

use super::*;

impl Xtr {
    /// The ITR has no usable mapping for `dest`: ask the map-resolver.
    /// A packet from the local host `source` to `dest` found no map-cache entry: ask, with
    /// `source` as the Map-Request's Source-EID (RFC 9301 §5.3).
    pub fn map_cache_miss(
        &mut self,
        dest: IpAddr,
        source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if !self.itr {
            return;
        }
        let prefix = Prefix::host(dest);
        if self.pending.keys().any(|p| p.contains(dest)) {
            return;
        }
        // Only a unicast address of the destination's family is a Source-EID.
        let source = Some(source)
            .filter(|s| s.is_ipv4() == dest.is_ipv4() && !s.is_unspecified() && !s.is_multicast());
        self.request(prefix, source, false, now_ms, out);
    }

    pub(super) fn map_reply(
        &mut self,
        r: MapReply,
        from: SocketAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some(asked) = self.by_nonce.remove(&r.nonce) else {
            self.counters.map_replies_unexpected += 1;
            return;
        };
        self.pending.remove(&asked);
        self.counters.map_replies_accepted += 1;
        for record in &r.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            // Only what was asked for: a reply cannot plant mappings for unrelated space.
            if !prefix.covers(&asked) && !asked.covers(&prefix) {
                continue;
            }
            if self.configured.contains(&prefix)
                || self.dynamic.contains_key(&prefix.addr()) && prefix.len() == host_len(&prefix)
                || self.away.contains_key(&prefix)
            {
                continue;
            }
            self.apply_record(
                prefix,
                record,
                from.ip(),
                CacheSource::MapReply,
                now_ms,
                out,
            );
        }
    }

    /// Answers a Map-Request for our EIDs with a Map-Reply to its first usable ITR-RLOC.
    pub(super) fn answer(&mut self, r: &MapRequest, reply_port: u16, out: &mut Vec<Output>) {
        let Some(asked) = r.records.first().and_then(|e| e.eid.ip()) else {
            self.counters.map_requests_ignored += 1;
            return;
        };
        let record = self.own_record(asked, RECORD_TTL_MINUTES);
        if record.is_none() && !r.probe {
            self.counters.map_requests_ignored += 1;
            return;
        }
        // An ITR-RLOC of the family of our first RLOC, else of a family we have an RLOC of
        // (a dual-stack ITR lists both; an IPv6-only one only its IPv6 RLOC).
        let ours = |a: &&IpAddr| self.rlocs.iter().any(|me| me.is_ipv4() == a.is_ipv4());
        let Some(itr) = r
            .itr_rlocs
            .iter()
            .find(|a| {
                self.rlocs
                    .first()
                    .is_none_or(|me| me.is_ipv4() == a.is_ipv4())
            })
            .or_else(|| r.itr_rlocs.iter().find(ours))
            .copied()
        else {
            self.counters.map_requests_ignored += 1;
            return;
        };
        // An RLOC-probe is answered even for an EID no longer here (reachability is what it
        // asks; no record then), with A=1 and our locator marked probed (RFC 9301 §7.1).
        let records: Vec<EidRecord> = record
            .into_iter()
            .map(|mut record| {
                record.authoritative = true;
                if r.probe {
                    let me = self.rlocs.iter().find(|a| a.is_ipv4() == itr.is_ipv4());
                    for l in &mut record.locators {
                        l.probed = Some(&l.rloc) == me;
                    }
                }
                record
            })
            .collect();
        let reply = MapReply {
            probe: r.probe,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: r.nonce,
            records,
        };
        let Ok(payload) = reply.to_vec() else { return };
        self.counters.map_requests_answered += 1;
        out.push(Output::send(SocketAddr::new(itr, reply_port), payload));
    }

    pub(super) fn request(
        &mut self,
        prefix: Prefix,
        source_eid: Option<IpAddr>,
        smr_invoked: bool,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if self.resolvers.is_empty() {
            return;
        }
        if self.pending.len() >= self.limits.pending_requests {
            self.counters.dropped_table_full += 1;
            return;
        }
        let nonce = self.nonces.fresh();
        self.pending.insert(
            prefix,
            Pending {
                nonce,
                source_eid,
                smr_invoked,
                attempts: 0,
                resolver: 0,
                next_ms: now_ms,
            },
        );
        self.by_nonce.insert(nonce, prefix);
        self.retransmit(prefix, now_ms, out);
    }

    /// Sends (or re-sends) the Map-Request for `prefix` to the current map-resolver.
    pub(super) fn retransmit(&mut self, prefix: Prefix, now_ms: u64, out: &mut Vec<Output>) {
        let Some(p) = self.pending.get_mut(&prefix) else {
            return;
        };
        if p.attempts >= REQUEST_ATTEMPTS {
            // Unanswered: give up; the next miss asks again (rate-limited by the data path).
            self.by_nonce.remove(&p.nonce);
            self.pending.remove(&prefix);
            return;
        }
        if p.attempts == 2 && self.resolvers.len() > 1 {
            p.resolver = (p.resolver + 1) % self.resolvers.len();
            self.counters.resolver_switches += 1;
        }
        // A new nonce per transmission; answers to the old ones are still accepted.
        let nonce = self.nonces.fresh();
        self.by_nonce.insert(nonce, prefix);
        p.nonce = nonce;
        let delay = REQUEST_RETRY_MS
            .get(p.attempts as usize)
            .copied()
            .unwrap_or(REQUEST_RETRY_MS[1]);
        p.attempts += 1;
        p.next_ms = now_ms.saturating_add(delay);
        let (resolver, smr_invoked, source_eid) = (
            self.resolvers.get(p.resolver).copied(),
            p.smr_invoked,
            p.source_eid,
        );
        let Some(resolver) = resolver else { return };
        let Some(itr) = self.rloc_for(resolver) else {
            return;
        };
        let inner_src = source_eid
            .filter(|s| s.is_ipv4() == prefix.addr().is_ipv4())
            .or(Some(itr).filter(|i| i.is_ipv4() == prefix.addr().is_ipv4()))
            // An EID of the other family than the resolver's (IPv6 EIDs over an IPv4
            // underlay, or the reverse): the inner header is of the EID's family.
            .or_else(|| self.rloc_for(prefix.addr()));
        let Some(inner_src) = inner_src else { return };
        let req = MapRequest {
            smr_invoked,
            subscribe: self.subscription_for(prefix),
            ..MapRequest::query(
                nonce,
                source_eid.map(|a| self.address(a)).unwrap_or(Address::None),
                self.itr_rlocs(itr),
                vec![self.eid_prefix(prefix)],
            )
        };
        let ecm = Ecm {
            ddt: false,
            inner_src,
            inner_dst: prefix.addr(),
            inner_ttl: 64,
            inner_src_port: LISP_CONTROL_PORT,
            inner_dst_port: LISP_CONTROL_PORT,
            message: Box::new(LispMessage::MapRequest(req)),
        };
        let Ok(payload) = ecm.to_vec() else { return };
        if smr_invoked {
            self.counters.smr_invoked_sent += 1;
        }
        self.counters.map_requests_sent += 1;
        out.push(Output::control(resolver, payload));
    }

    /// The ITR-RLOC list of a Map-Request sent from `first`: `first`, then our locator of the
    /// other address family when we have one (a dual-stack xTR can be answered over either).
    pub(super) fn itr_rlocs(&self, first: IpAddr) -> Vec<IpAddr> {
        let mut v = vec![first];
        v.extend(
            self.own_locators
                .iter()
                .find(|a| a.is_ipv4() != first.is_ipv4()),
        );
        v
    }

    /// Applies `record` for `prefix`, learnt from `map_source` (a Map-Reply or a publication),
    /// to the map-cache: TTL 0 removes the entry, any other installs it (or counts a full
    /// map-cache).
    pub(super) fn apply_record(
        &mut self,
        prefix: Prefix,
        record: &EidRecord,
        map_source: IpAddr,
        source: CacheSource,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if record.ttl == 0 {
            if let Some(c) = self.cache.remove(&prefix) {
                out.push(Output::Table(TableOp::remove(self.cache_row(&c))));
            }
            return;
        }
        let (locators, action) = record.hal_mapping();
        let entry = CacheEntry {
            prefix,
            locators,
            action,
            created_ms: now_ms,
            modified_ms: now_ms,
            expires_ms: now_ms.saturating_add(u64::from(record.ttl) * 60_000),
            map_source,
            source,
        };
        if !self.install_cache_entry(entry, out) {
            self.counters.dropped_table_full += 1;
        }
    }

    /// Adds `entry` to the map-cache, or replaces the entry of its prefix (keeping that one's
    /// creation time), and emits the table operation. False, and nothing done, when the prefix
    /// is new and the map-cache is full.
    pub(super) fn install_cache_entry(
        &mut self,
        mut entry: CacheEntry,
        out: &mut Vec<Output>,
    ) -> bool {
        let existed = self.cache.get(&entry.prefix).map(|c| c.created_ms);
        if existed.is_none() && self.cache.len() >= self.limits.map_cache {
            return false;
        }
        entry.created_ms = existed.unwrap_or(entry.created_ms);
        let row = self.cache_row(&entry);
        out.push(Output::Table(if existed.is_some() {
            TableOp::update(row)
        } else {
            TableOp::add(row)
        }));
        self.cache.insert(entry.prefix, entry);
        true
    }

    pub(super) fn cache_row(&self, c: &CacheEntry) -> TableEntry {
        TableEntry::LispMapCache {
            iid: self.iid,
            eid: c.prefix,
            locators: self.usable_locators(&c.locators),
            negative: c.action.unwrap_or(NegativeAction::NoAction),
        }
    }
}
