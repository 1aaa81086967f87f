//! Resolution: looking up registrations for an EID, answering Map-Requests (forwarded to the
//! ETR or proxy-replied), and narrowing negative replies to the clear prefix around the EID.

use super::*;

/// The ITR-RLOC to answer: the first usable one of the inner source's family (for Cisco ITRs the
/// RLOC family they reached the resolver with), else the first usable one.
pub(super) fn reply_rloc(request: &MapRequest, inner_src: IpAddr) -> Option<IpAddr> {
    let usable = || {
        request.itr_rlocs.iter().copied().filter(|a| match a {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast(),
        })
    };
    usable()
        .find(|a| a.is_ipv4() == inner_src.is_ipv4())
        .or_else(|| usable().next())
}

/// `p` in the same encoding as the requested EID (inside its instance-ID LCAF when it had one).
pub(super) fn like_request(requested: &Address, p: Prefix) -> EidPrefix {
    let eid = match *requested {
        Address::InstanceId { iid, .. } => Address::InstanceId {
            iid,
            mask_len: 0,
            addr: Some(p.addr()),
        },
        _ => Address::Ip(p.addr()),
    };
    EidPrefix {
        eid,
        mask_len: p.len(),
    }
}

/// A negative record: no locators, Natively-Forward, not authoritative.
pub(super) fn negative(prefix: EidPrefix, ttl: u32) -> EidRecord {
    EidRecord {
        ttl,
        prefix,
        action: Action::NativelyForward,
        authoritative: false,
        map_version: 0,
        locators: Vec::new(),
    }
}

/// A Map-Server's proxy record: the union of the registrations' locators (the newest
/// registration's priority and weight win for an RLOC named twice), sorted by address as §3.3
/// asks, A=0 and L=0 because the Map-Server is not the owner (protocols.md §3.3). Registrations
/// keep no R bit, so every locator is sent reachable.
pub(super) fn proxy_record(prefix: EidPrefix, regs: &[&Reg], sources: &Sources) -> EidRecord {
    let mut newest_first = regs.to_vec();
    newest_first.sort_by_key(|r| Reverse(r.last_ms()));
    let mut locators: Vec<LocatorRecord> = Vec::new();
    for l in newest_first
        .iter()
        .flat_map(|r| sources.get(r.source).locators.iter())
    {
        if locators.len() == MAX_COUNT {
            break;
        }
        if !locators.iter().any(|x| x.rloc == l.rloc) {
            locators.push(LocatorRecord {
                local: false,
                ..LocatorRecord::local(l.rloc, l.priority, l.weight)
            });
        }
    }
    locators.sort_by_key(|l| l.rloc);
    EidRecord {
        ttl: PROXY_REPLY_TTL,
        prefix,
        action: Action::NoAction,
        authoritative: false,
        map_version: 0,
        locators,
    }
}

impl MapServer {
    /// The longest registered prefix for `eid`, else what the site configuration says.
    pub fn lookup(&self, eid: IpAddr) -> Lookup {
        match self.find(eid, |_| true) {
            Found::Registered(p, regs) => {
                Lookup::Registered(p, regs.iter().map(|r| self.table.registration(r)).collect())
            }
            Found::SiteWithoutEtr(p) => Lookup::SiteWithoutEtr(p),
            Found::NotEid => Lookup::NotEid,
        }
    }

    /// [`MapServer::lookup`] counting only the registrations `live` accepts (the resolver skips
    /// those past their lifetime that [`MapServer::expire`] has not dropped yet). The longest
    /// prefix with a live registration wins; when several sites registered it, the last site.
    /// O(L log n) for L prefix lengths in use.
    pub(super) fn find(&self, eid: IpAddr, live: impl Fn(&Reg) -> bool) -> Found<'_> {
        let t = &self.table;
        let hit = t.index.find_longest(eid, |id| {
            let slot = t.slots.get(id as usize)?;
            let regs = slot.regs.as_slice();
            let site = t
                .sources
                .get(regs.iter().rev().find(|r| live(r))?.source)
                .site;
            let regs: Vec<&Reg> = regs
                .iter()
                .filter(|r| t.sources.get(r.source).site == site && live(r))
                .collect();
            Some((slot.prefix, regs))
        });
        if let Some((p, regs)) = hit {
            return Found::Registered(p, regs);
        }
        match self
            .sites
            .iter()
            .flat_map(|s| &s.eids)
            .filter(|e| e.prefix.contains(eid))
            .max_by_key(|e| e.prefix.len())
        {
            Some(e) => Found::SiteWithoutEtr(e.prefix),
            None => Found::NotEid,
        }
    }

    /// Map-Resolver: answers the Encapsulated Control Message `ecm` (a UDP 4342 payload) in
    /// RFC 9301 §8.3 order. Only the first EID record of the Map-Request is answered (senders
    /// send one).
    pub fn resolve(&mut self, ecm: &[u8], now_ms: u64) -> Result<Resolution, ResolveRefusal> {
        let result = self.try_resolve(ecm, now_ms);
        let c = &mut self.counters;
        match &result {
            Ok((_, Answer::Forwarded, _)) => c.requests_forwarded += 1,
            Ok((_, Answer::Proxy, _)) => c.proxy_replies += 1,
            Ok((_, Answer::Negative, _)) => c.negative_replies += 1,
            Err(_) => c.requests_refused += 1,
        }
        result.map(|(resolution, _, subscribe)| {
            if let Some(req) = subscribe {
                self.subscribe(req, now_ms);
            }
            resolution
        })
    }

    pub(super) fn try_resolve(
        &self,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(Resolution, Answer, Option<pubsub::SubscribeRequest>), ResolveRefusal> {
        let ecm = Ecm::parse(bytes).map_err(ResolveRefusal::Malformed)?;
        let LispMessage::MapRequest(request) = &*ecm.message else {
            return Err(ResolveRefusal::NotMapRequest(ecm.message.message_type()));
        };
        // RFC 9301 §5.3: Map-Resolvers and Map-Servers drop RLOC-probes; answering them would
        // let anyone probe through the mapping system.
        if request.probe {
            return Err(ResolveRefusal::Probe);
        }
        let itr = reply_rloc(request, ecm.inner_src).ok_or(ResolveRefusal::NoItrRloc)?;
        let to = SocketAddr::new(itr, ecm.inner_src_port);
        let requested = request.records.first().ok_or(ResolveRefusal::NoEid)?;
        let eid = requested.eid.ip().ok_or(ResolveRefusal::NoEid)?;
        let sources = &self.table.sources;
        let sessions = &self.sessions;
        let live = |r: &Reg| {
            let refreshed = sessions.refreshed_ms(sources.get(r.source), r, now_ms);
            now_ms.saturating_sub(refreshed) < REGISTRATION_LIFETIME_MS
        };
        // RFC 9437: the ITR subscribes to the prefix it is answered with.
        let subscribe = |p: Prefix| pubsub::SubscribeRequest::of(request, p, to);
        let (records, answer) = match self.find(eid, live) {
            Found::NotEid => {
                // The prefix as requested, narrowed only if it would cover a site: a negative
                // entry must never hide an EID from the ITR for 15 minutes.
                let p = self.clear_prefix(eid, requested.mask_len, None);
                let record = negative(like_request(&requested.eid, p), NEGATIVE_TTL_NOT_EID);
                (vec![record], Answer::Negative)
            }
            Found::SiteWithoutEtr(site) => {
                // The site prefix, narrowed around registered more-specifics (a moved host
                // inside it) so they are not answered natively-forward.
                let p = self.clear_prefix(eid, site.len(), Some(site.len()));
                let ttl = if self.refilling(now_ms) && !self.registered_since_start.contains(&site)
                {
                    NEGATIVE_TTL_REFILLING
                } else {
                    NEGATIVE_TTL_UNREGISTERED
                };
                let record = negative(like_request(&requested.eid, p), ttl);
                (vec![record], Answer::Negative)
            }
            Found::Registered(p, regs) => {
                if !regs.iter().any(|r| sources.get(r.source).proxy_reply) {
                    // The ETR that registered last is the one most likely still there (lookup
                    // never yields an empty list; the error only keeps this free of unwrap).
                    let newest = regs
                        .iter()
                        .max_by_key(|r| r.last_ms())
                        .ok_or(ResolveRefusal::NoEid)?;
                    let forward = Resolution::Forward {
                        etr: sources.get(newest.source).registrar.ip(),
                        ecm: bytes.to_vec(),
                    };
                    return Ok((forward, Answer::Forwarded, subscribe(p)));
                }
                let records = self.proxy_records(&requested.eid, eid, p, &regs, live);
                (records, Answer::Proxy)
            }
        };
        let reply = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: request.nonce,
            records,
        };
        let map_reply = reply.to_vec().map_err(ResolveRefusal::Encoding)?;
        let answered = reply.records.first().and_then(|r| r.prefix.prefix());
        Ok((
            Resolution::Reply { to, map_reply },
            answer,
            answered.and_then(subscribe),
        ))
    }

    /// The records of a proxy reply for `p`. Overlap rule (protocols.md §3.5): the registered
    /// more-specifics inside `p` come along, else the ITR would send their traffic to `p`'s
    /// locators for a day. When they do not all fit in [`MAX_REPLY_LEN`], the reply is instead
    /// the part of `p` around `eid` that holds none of them, which is as correct and one record.
    ///
    /// Whether they fit does not depend on their order, so the walk stops at the first one that
    /// does not fit; those that do are then put in site order, each site's by prefix.
    pub(super) fn proxy_records(
        &self,
        requested: &Address,
        eid: IpAddr,
        p: Prefix,
        regs: &[&Reg],
        live: impl Fn(&Reg) -> bool,
    ) -> Vec<EidRecord> {
        let t = &self.table;
        let first = proxy_record(like_request(requested, p), regs, &t.sources);
        let mut len = 12 + first.wire_len();
        let mut more: Vec<(u32, Prefix, EidRecord)> = Vec::new();
        let walk = t.index.each_inside(p, |id| {
            let Some(slot) = t.slots.get(id as usize) else {
                return ControlFlow::Continue(());
            };
            // One record per site with live registrations of the prefix.
            let mut rest = slot.regs.as_slice();
            while let Some(head) = rest.first() {
                let site = t.sources.get(head.source).site;
                let n = rest
                    .iter()
                    .take_while(|r| t.sources.get(r.source).site == site)
                    .count();
                let (group, tail) = rest.split_at(n);
                rest = tail;
                let q_regs: Vec<&Reg> = group.iter().filter(|r| live(r)).collect();
                if q_regs.is_empty() {
                    continue;
                }
                let record =
                    proxy_record(like_request(requested, slot.prefix), &q_regs, &t.sources);
                len += record.wire_len();
                if 1 + more.len() == MAX_COUNT || len > MAX_REPLY_LEN {
                    return ControlFlow::Break(());
                }
                more.push((site, slot.prefix, record));
            }
            ControlFlow::Continue(())
        });
        if walk.is_break() {
            let clear = self.clear_prefix(eid, p.len(), Some(p.len()));
            return vec![proxy_record(
                like_request(requested, clear),
                regs,
                &t.sources,
            )];
        }
        more.sort_by_key(|(site, q, _)| (*site, *q));
        let mut records = vec![first];
        records.extend(more.into_iter().map(|(_, _, record)| record));
        records
    }

    /// The least-specific prefix around `eid`, `start` bits or longer, that covers no configured
    /// or registered prefix longer than `floor` bits (`None`: no prefix at all). RFC 9301 §8.3
    /// asks negative replies for the widest prefix that does not match any known EID-prefix.
    ///
    /// A prefix of length `len` around `eid` covers a known `q` exactly when
    /// `len <= min(q.len, common leading bits of eid and q)`; the answer is one bit longer than
    /// the largest such minimum, which the index finds per prefix length in O(log n).
    pub(super) fn clear_prefix(&self, eid: IpAddr, start: u8, floor: Option<u8>) -> Prefix {
        let max = if eid.is_ipv4() { 32 } else { 128 };
        let longer = |q: &Prefix| floor.is_none_or(|f| q.len() > f);
        let configured = self
            .sites
            .iter()
            .flat_map(|s| &s.eids)
            .map(|e| e.prefix)
            .filter(|q| q.is_ipv4() == eid.is_ipv4() && longer(q))
            .map(|q| q.len().min(common_bits(eid, q.addr())))
            .max();
        let deepest = configured.max(self.table.index.deepest(eid, floor));
        let len = match deepest {
            Some(d) => start.min(max).max(d + 1),
            None => start.min(max),
        };
        if len > max {
            return Prefix::host(eid);
        }
        Prefix::new(eid, len).unwrap_or(Prefix::host(eid))
    }
}
