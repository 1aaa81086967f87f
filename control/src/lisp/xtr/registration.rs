//! ETR registration: Map-Registers to the map-servers (signed, acknowledged, refreshed), over
//! UDP or a reliable session, withdrawals, and the Map-Notifies that acknowledge them.

use super::*;

impl Xtr {
    /// A Map-Notify from one of our map-servers: the acknowledgement of our register, or news
    /// that another site now registers one of our dynamic EIDs.
    pub(super) fn map_notify(
        &mut self,
        payload: &[u8],
        from: SocketAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.servers.iter().position(|s| s.address == from.ip()) else {
            self.counters.map_notifies_refused += 1;
            return;
        };
        let Some(key) = self.servers[i].key.clone() else {
            self.counters.map_notifies_refused += 1;
            return;
        };
        let key = match MapNotify::parse(payload) {
            Ok(n) => key.with_key_index(n.auth.key_index()),
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        let Ok(notify) = MapNotify::parse_verified(payload, &key) else {
            self.counters.map_notifies_refused += 1;
            return;
        };
        self.counters.map_notifies_accepted += 1;
        let s = &mut self.servers[i];
        if let Some(at) = s.withdrawn.iter().position(|n| *n == notify.nonce) {
            s.withdrawn.remove(at);
            return;
        }
        if s.outstanding == Some(notify.nonce) {
            s.outstanding = None;
            s.acked_ms = Some(now_ms);
            s.failures = 0;
            s.next_ms = s.sent_ms.saturating_add(REGISTER_INTERVAL_MS);
            let map_server = s.address;
            if !s.reliable
                && let Some(local) = self.rloc_for(map_server)
            {
                out.push(Output::OpenSession { map_server, local });
            }
            return;
        }
        // Unsolicited: the mapping of these prefixes changed on the map-server (a publication
        // to which we subscribed, or news about our own EIDs).
        self.pubsub_apply(&notify, from.ip(), now_ms, out);
        for record in &notify.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            let ours = record.locators.iter().any(|l| self.rlocs.contains(&l.rloc));
            if ours || prefix.len() != host_len(&prefix) {
                continue;
            }
            if self.dynamic.contains_key(&prefix.addr()) {
                self.moved_away(prefix, now_ms, out);
            } else if self.database_prefix(prefix.addr()).is_some() {
                self.remote_inside(prefix, now_ms, out);
            } else {
                continue;
            }
            self.cache_notified(prefix, record, from.ip(), now_ms, out);
        }
        if let Ok(ack) = MapNotify::ack_of(&notify).to_signed_vec(&key) {
            out.push(Output::control(from.ip(), ack));
        }
    }

    /// The reliable session to `map_server` is up: registrations go over it from now on.
    pub fn session_up(&mut self, map_server: IpAddr) {
        for s in self.servers.iter_mut().filter(|s| s.address == map_server) {
            s.reliable = true;
        }
    }

    /// The session went down: back to periodic UDP registration at once.
    ///
    /// A session that was never up (the map-server refused or did not answer: no reliable
    /// transport there) changes nothing: UDP registration goes on at its pace, and the session
    /// is tried again after the next acknowledged register — not at once, which would loop.
    pub fn session_down(&mut self, map_server: IpAddr, was_up: bool, now_ms: u64) {
        for s in self.servers.iter_mut().filter(|s| s.address == map_server) {
            s.reliable = false;
            if was_up {
                s.outstanding = None;
                s.failures = 0;
                s.next_ms = now_ms;
            }
        }
    }

    /// The map-server asks for our full state over the session.
    pub fn refresh_requested(&mut self, map_server: IpAddr, now_ms: u64) {
        for s in self.servers.iter_mut().filter(|s| s.address == map_server) {
            s.next_ms = now_ms;
        }
    }

    /// Sends the full registration of server `i` (in as many Map-Registers as needed).
    pub(super) fn register(&mut self, i: usize, now_ms: u64, out: &mut Vec<Output>) {
        if self.servers[i].reliable {
            self.register_reliable(i, out);
            return;
        }
        let records = self.records_for(i);
        let s = &self.servers[i];
        let Some(key) = s.key.clone() else {
            self.counters.unusable_keys += 1;
            self.servers[i].next_ms = now_ms.saturating_add(REGISTER_INTERVAL_MS);
            return;
        };
        let (address, proxy) = (s.address, s.proxy_reply);
        if records.is_empty() {
            self.servers[i].next_ms = now_ms.saturating_add(REGISTER_INTERVAL_MS);
            return;
        }
        let nonce = self.nonces.fresh();
        for chunk in records.chunks(RECORDS_PER_REGISTER) {
            let mut reg = MapRegister::new(chunk.to_vec());
            reg.nonce = nonce;
            reg.want_map_notify = true;
            reg.proxy_reply = proxy;
            if let Ok(payload) = reg.to_signed_vec(&key) {
                self.counters.registers_sent += 1;
                out.push(Output::control(address, payload));
            }
        }
        let s = &mut self.servers[i];
        s.outstanding = Some(nonce);
        s.sent_ms = now_ms;
        // Until a Map-Notify confirms, retry soon (1, 2, 4 … s), never slower than the refresh.
        let backoff = 1_000u64 << s.failures.min(6);
        s.next_ms = now_ms.saturating_add(backoff.min(REGISTER_INTERVAL_MS));
        s.failures = s.failures.saturating_add(1);
    }

    /// Over the session: one Map-Register per record; nothing periodic (the session is the
    /// liveness), the next one when something changes or the map-server asks.
    pub(super) fn register_reliable(&mut self, i: usize, out: &mut Vec<Output>) {
        let records = self.records_for(i);
        let s = &mut self.servers[i];
        s.next_ms = u64::MAX;
        let (address, proxy) = (s.address, s.proxy_reply);
        let Some(key) = s.key.clone() else {
            self.counters.unusable_keys += 1;
            return;
        };
        for record in records {
            let mut reg = MapRegister::new(vec![record]);
            reg.nonce = self.nonces.fresh();
            reg.want_map_notify = true;
            reg.proxy_reply = proxy;
            if let Ok(payload) = reg.to_signed_vec(&key) {
                self.counters.registers_sent += 1;
                out.push(Output::SendReliable {
                    map_server: address,
                    payload,
                });
            }
        }
    }

    /// A register with TTL 0 for `prefix` to the servers `which` selects: withdraw it.
    pub(super) fn withdraw(
        &mut self,
        prefix: Prefix,
        which: impl Fn(&Server) -> bool,
        _now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some(mut record) = self.record_for_prefix(prefix) else {
            return;
        };
        record.ttl = 0;
        let nonce = self.nonces.fresh();
        for s in self.servers.iter_mut().filter(|s| which(s)) {
            let Some(key) = s.key.as_ref() else { continue };
            let mut reg = MapRegister::new(vec![record.clone()]);
            reg.nonce = nonce;
            if let Ok(payload) = reg.to_signed_vec(key) {
                if s.withdrawn.len() >= WITHDRAWALS_REMEMBERED {
                    s.withdrawn.remove(0);
                }
                s.withdrawn.push(nonce);
                self.counters.registers_sent += 1;
                out.push(if s.reliable {
                    Output::SendReliable {
                        map_server: s.address,
                        payload,
                    }
                } else {
                    Output::control(s.address, payload)
                });
            }
        }
    }
}
