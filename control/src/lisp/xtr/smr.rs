//! Solicit-Map-Request: sending SMRs (rate-limited per prefix) and answering received ones.

use super::*;

impl Xtr {
    /// An SMR: the mapping of its Source-EID changed; ask the mapping system again.
    pub(super) fn smr_received(&mut self, r: MapRequest, now_ms: u64, out: &mut Vec<Output>) {
        self.counters.smrs_received += 1;
        let Some(changed) = r.source_eid.ip() else {
            self.counters.smrs_ignored += 1;
            return;
        };
        // Only for EIDs in our cache: a forged SMR can cause at most one extra lookup.
        let Some(prefix) = self
            .cache
            .keys()
            .filter(|p| p.contains(changed))
            .max_by_key(|p| p.len())
            .copied()
        else {
            self.counters.smrs_ignored += 1;
            return;
        };
        if !self.rate_ok_prefix(prefix, now_ms) {
            self.counters.smrs_ignored += 1;
            return;
        }
        let talker = r.records.first().and_then(|e| e.eid.ip());
        // Ask for the EID that changed, not the cached prefix: a host that moved out of a
        // cached /24 is answered with its own /32 by whoever registers it now.
        let asked = Prefix::host(changed);
        self.pending.remove(&asked);
        self.request(asked, talker, true, now_ms, out);
    }

    /// A decapsulated packet for an EID that is not (or no longer) here: solicit the sender
    /// (an SMR to `source_rloc`, at most one every 3 seconds per EID and locator).
    pub fn eid_not_here(
        &mut self,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let key = (source_rloc, eid);
        if self
            .smr_sent
            .get(&key)
            .is_some_and(|t| now_ms.saturating_sub(*t) < SMR_INTERVAL_MS)
        {
            return;
        }
        if self.smr_sent.len() >= self.limits.rate_entries {
            self.counters.dropped_table_full += 1;
            return;
        }
        self.smr_sent.insert(key, now_ms);
        let Some(me) = self.rloc_for(source_rloc) else {
            return;
        };
        // Source-EID: the EID whose mapping changed; record: who was talking to it (§4.3).
        let req = MapRequest {
            probe: true,
            smr: true,
            dont_map_reply: true,
            ..MapRequest::query(
                self.nonces.fresh(),
                self.address(eid),
                vec![me],
                vec![self.eid_prefix(Prefix::host(inner_source))],
            )
        };
        let Ok(payload) = req.to_vec() else { return };
        self.counters.smrs_sent += 1;
        out.push(Output::control(source_rloc, payload));
    }

    pub(super) fn rate_ok_prefix(&mut self, prefix: Prefix, now_ms: u64) -> bool {
        if self
            .smr_invoked
            .get(&prefix)
            .is_some_and(|t| now_ms.saturating_sub(*t) < SMR_INTERVAL_MS)
        {
            return false;
        }
        if self.smr_invoked.len() >= self.limits.rate_entries {
            return false;
        }
        self.smr_invoked.insert(prefix, now_ms);
        true
    }
}
