//! RLOC probing (RFC 9301 §7.1, protocols.md §3.9): the ITR sends a Map-Request with the P bit,
//! unencapsulated, from its RLOC to each locator of its map-cache entries, and marks a locator
//! down when two probes in a row go unanswered; down locators are programmed with priority 255
//! (never used) so traffic moves to the next priority, and back when the locator answers again.
//!
//! One state per RLOC (not per entry): a probe tests the path to a locator, whichever entry
//! names it, so an ETR serving many prefixes costs one probe per interval. Bounded (at most
//! [`MAX_RLOCS`] locators probed) and rate-limited ([`PROBES_PER_SECOND`]).
//!
//! Defaults: NX-OS and IOS enable probing with `lisp loc-reach-algorithm rloc-probing` (off by
//! default, N7K LISP command reference); roamer probes every 60 s by default
//! (`roamer lisp rloc-probe interval SECONDS`; lispers.net uses 10 s, protocols.md §3.9).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use roamer_hal::{Prefix, TableOp};

use super::{Output, Xtr};
use crate::config::Config;
use crate::show::lisp_data::LocatorStatus;
use crate::wire::lisp::{Address, MapReply, MapRequest};

/// Probe interval when none is configured.
pub const DEFAULT_INTERVAL_MS: u64 = 60_000;
/// Locators probed at most (beyond it new locators are not probed, and counted).
pub const MAX_RLOCS: usize = 4_096;
/// Probes sent at most per second, whatever the number of locators.
pub const PROBES_PER_SECOND: u64 = 200;
/// Unanswered probes in a row that make a locator down.
const MISSES_DOWN: u32 = 2;
/// How often the probe state is looked at.
const RUN_EVERY_MS: u64 = 100;

/// The probing state of one locator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlocState {
    pub up: bool,
    pub changes: u32,
    pub last_change_ms: u64,
    pub last_probe_ms: Option<u64>,
    next_ms: u64,
    /// The outstanding probe: nonce and the time it is given up.
    waiting: Option<(u64, u64)>,
    misses: u32,
}

/// Counters of RLOC probing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProbeCounters {
    pub probes_sent: u64,
    pub probe_replies: u64,
    pub probe_replies_unexpected: u64,
    pub probes_unanswered: u64,
    pub locators_down: u64,
    pub locators_up: u64,
    /// Probes delayed by the rate limit.
    pub probes_rate_limited: u64,
    /// Locators not probed because [`MAX_RLOCS`] are.
    pub locators_not_probed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Prober {
    enabled: bool,
    interval_ms: u64,
    rlocs: BTreeMap<IpAddr, RlocState>,
    by_nonce: HashMap<u64, IpAddr>,
    tokens: u64,
    refilled_ms: u64,
    next_run_ms: u64,
}

impl Prober {
    pub fn configure(&mut self, cfg: &Config) {
        self.enabled = cfg.features.lisp && cfg.lisp.rloc_probing;
        self.interval_ms = cfg
            .lisp
            .rloc_probe_interval
            .map_or(DEFAULT_INTERVAL_MS, |s| u64::from(s) * 1000);
    }

    /// How long a probe is waited for: half the interval, at most 3 s.
    fn wait_ms(&self) -> u64 {
        (self.interval_ms / 2).clamp(100, 3_000)
    }

    pub fn state(&self, rloc: &IpAddr) -> Option<&RlocState> {
        self.rlocs.get(rloc)
    }

    /// The locator is known to be down (never probed: not down).
    pub fn is_down(&self, rloc: &IpAddr) -> bool {
        self.rlocs.get(rloc).is_some_and(|s| !s.up)
    }

    fn take_token(&mut self, now_ms: u64) -> bool {
        let refill = now_ms.saturating_sub(self.refilled_ms) * PROBES_PER_SECOND / 1000;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(PROBES_PER_SECOND);
            self.refilled_ms = now_ms;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

impl Xtr {
    /// Per-locator state of a map-cache entry for the show commands (empty when not probing).
    pub fn locator_status(&self, prefix: &Prefix, now_ms: u64) -> Vec<LocatorStatus> {
        let Some(entry) = self.cache.get(prefix) else {
            return Vec::new();
        };
        entry
            .locators
            .iter()
            .filter_map(|l| {
                let s = self.probe.state(&l.rloc)?;
                Some(LocatorStatus {
                    rloc: l.rloc,
                    up: s.up,
                    state_changes: s.changes,
                    last_change_secs: now_ms.saturating_sub(s.last_change_ms) / 1000,
                    last_probe_secs: s.last_probe_ms.map(|t| now_ms.saturating_sub(t) / 1000),
                })
            })
            .collect()
    }

    pub fn probe_counters(&self) -> ProbeCounters {
        self.counters.probe
    }

    /// Probing timers: follows the map-cache's locators, gives up unanswered probes, sends the
    /// probes that are due and re-programs the entries whose locators changed state.
    pub(super) fn probe_tick(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        if now_ms < self.probe.next_run_ms {
            return;
        }
        self.probe.next_run_ms = now_ms.saturating_add(RUN_EVERY_MS);
        let mut changed: Vec<IpAddr> = Vec::new();
        if !self.probe.enabled || !self.itr {
            // Probing off: every locator is usable again.
            changed.extend(
                self.probe
                    .rlocs
                    .iter()
                    .filter(|(_, s)| !s.up)
                    .map(|(r, _)| *r),
            );
            self.probe.rlocs.clear();
            self.probe.by_nonce.clear();
            self.reprogram(&changed, out);
            return;
        }
        // The locators in use: one example prefix each (the probe's EID-record).
        let mut wanted: BTreeMap<IpAddr, Prefix> = BTreeMap::new();
        for c in self.cache.values() {
            for l in &c.locators {
                wanted.entry(l.rloc).or_insert(c.prefix);
            }
        }
        self.probe.rlocs.retain(|r, _| wanted.contains_key(r));
        let live: Vec<IpAddr> = self.probe.rlocs.keys().copied().collect();
        self.probe
            .by_nonce
            .retain(|_, r| live.binary_search(r).is_ok());
        let interval = self.probe.interval_ms;
        for rloc in wanted.keys() {
            if self.probe.rlocs.contains_key(rloc) {
                continue;
            }
            if self.probe.rlocs.len() >= MAX_RLOCS {
                self.counters.probe.locators_not_probed += 1;
                continue;
            }
            // Learned just now from a Map-Reply: up; first probe within one interval, spread
            // over it so that many new entries do not probe at once.
            let spread = self.nonces.fresh() % interval.max(1);
            self.probe.rlocs.insert(
                *rloc,
                RlocState {
                    up: true,
                    changes: 1,
                    last_change_ms: now_ms,
                    last_probe_ms: None,
                    next_ms: now_ms.saturating_add(spread),
                    waiting: None,
                    misses: 0,
                },
            );
        }
        let wait = self.probe.wait_ms();
        let rlocs: Vec<IpAddr> = self.probe.rlocs.keys().copied().collect();
        for rloc in rlocs {
            let Some(s) = self.probe.rlocs.get_mut(&rloc) else {
                continue;
            };
            if let Some((nonce, deadline)) = s.waiting
                && deadline <= now_ms
            {
                s.waiting = None;
                self.probe.by_nonce.remove(&nonce);
                self.counters.probe.probes_unanswered += 1;
                s.misses += 1;
                if s.up && s.misses >= MISSES_DOWN {
                    s.up = false;
                    s.changes += 1;
                    s.last_change_ms = now_ms;
                    self.counters.probe.locators_down += 1;
                    changed.push(rloc);
                }
                // A first miss is checked again at once, not an interval later.
                s.next_ms = if s.up {
                    now_ms
                } else {
                    now_ms.saturating_add(interval)
                };
            }
            let Some(s) = self.probe.rlocs.get(&rloc) else {
                continue;
            };
            if s.waiting.is_some() || s.next_ms > now_ms {
                continue;
            }
            if !self.probe.take_token(now_ms) {
                self.counters.probe.probes_rate_limited += 1;
                continue;
            }
            let Some(prefix) = wanted.get(&rloc).copied() else {
                continue;
            };
            let nonce = self.nonces.fresh();
            if self.send_probe(rloc, prefix, nonce, out) {
                self.probe.by_nonce.insert(nonce, rloc);
                self.counters.probe.probes_sent += 1;
                if let Some(s) = self.probe.rlocs.get_mut(&rloc) {
                    s.waiting = Some((nonce, now_ms.saturating_add(wait)));
                    s.last_probe_ms = Some(now_ms);
                    s.next_ms = now_ms.saturating_add(interval);
                }
            } else if let Some(s) = self.probe.rlocs.get_mut(&rloc) {
                // No RLOC of ours in that family: nothing to probe from.
                s.next_ms = now_ms.saturating_add(interval);
            }
        }
        self.reprogram(&changed, out);
    }

    /// The RLOC-probe: a plain Map-Request with P=1 from our RLOC to the locator (never
    /// encapsulated, never to the mapping system), Source-EID AFI 0.
    fn send_probe(
        &mut self,
        rloc: IpAddr,
        prefix: Prefix,
        nonce: u64,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(itr) = self.rloc_for(rloc) else {
            return false;
        };
        let req = MapRequest {
            probe: true,
            ..MapRequest::query(
                nonce,
                Address::None,
                vec![itr],
                vec![self.eid_prefix(prefix)],
            )
        };
        let Ok(payload) = req.to_vec() else {
            return false;
        };
        out.push(Output::control(rloc, payload));
        true
    }

    /// A Map-Reply with the P bit: the answer to one of our probes (nonce and source checked).
    pub(super) fn probe_reply(
        &mut self,
        r: &MapReply,
        from: SocketAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some(rloc) = self.probe.by_nonce.get(&r.nonce).copied() else {
            self.counters.probe.probe_replies_unexpected += 1;
            return;
        };
        // From the probed locator (or naming it as the probed one, for a multi-RLOC ETR that
        // answers from another address).
        let named = r
            .records
            .iter()
            .flat_map(|rec| &rec.locators)
            .any(|l| l.probed && l.rloc == rloc);
        if from.ip() != rloc && !named {
            self.counters.probe.probe_replies_unexpected += 1;
            return;
        }
        self.probe.by_nonce.remove(&r.nonce);
        self.counters.probe.probe_replies += 1;
        let Some(s) = self.probe.rlocs.get_mut(&rloc) else {
            return;
        };
        s.waiting = None;
        s.misses = 0;
        if !s.up {
            s.up = true;
            s.changes += 1;
            s.last_change_ms = now_ms;
            self.counters.probe.locators_up += 1;
            self.reprogram(&[rloc], out);
        }
    }

    /// Re-programs every map-cache entry naming one of `rlocs` (their state changed).
    fn reprogram(&mut self, rlocs: &[IpAddr], out: &mut Vec<Output>) {
        if rlocs.is_empty() {
            return;
        }
        let rows: Vec<_> = self
            .cache
            .values()
            .filter(|c| c.locators.iter().any(|l| rlocs.contains(&l.rloc)))
            .map(|c| self.cache_row(c))
            .collect();
        for row in rows {
            out.push(Output::Table(TableOp::update(row)));
        }
    }

    /// The locators to program for an entry: down ones get priority 255 (never used by the
    /// forwarding core), unless every one is down (then all are kept: nothing better to try).
    pub(super) fn usable_locators(
        &self,
        locators: &[roamer_hal::Locator],
    ) -> Vec<roamer_hal::Locator> {
        if locators.iter().all(|l| self.probe.is_down(&l.rloc)) {
            return locators.to_vec();
        }
        locators
            .iter()
            .map(|l| {
                if self.probe.is_down(&l.rloc) {
                    roamer_hal::Locator {
                        priority: 255,
                        ..*l
                    }
                } else {
                    *l
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};
    use crate::wire::lisp::{
        Ecm, EidPrefix, EidRecord, LISP_CONTROL_PORT, LispMessage, LocatorRecord, parse_message,
    };
    use roamer_hal::{Locator, TableEntry};

    const PROBING: &str =
        "lisp loc-reach-algorithm rloc-probing\nroamer lisp rloc-probe interval 1\n";

    fn cfg(extra: &str) -> Config {
        let text = format!(
            "feature lisp\n\
             ip lisp itr-etr\n\
             ip lisp itr map-resolver 192.0.2.100\n\
             ip lisp database-mapping 10.1.0.0/24 192.0.2.1 priority 1 weight 100\n{extra}"
        );
        config::parse(&text, Syntax::Cli).unwrap().0
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(s: &str) -> SocketAddr {
        SocketAddr::new(ip(s), LISP_CONTROL_PORT)
    }

    /// An ITR that resolved 10.3.0.0/24 to 192.0.2.3 (priority 1) and 192.0.2.4 (priority 2).
    fn resolved(extra: &str) -> Xtr {
        let (x, _) = resolved_to(
            extra,
            vec![
                LocatorRecord::local(ip("192.0.2.3"), 1, 100),
                LocatorRecord::local(ip("192.0.2.4"), 2, 100),
            ],
        );
        assert_eq!(x.map_cache().count(), 1);
        x
    }

    /// An ITR whose miss for 10.3.0.10 was answered (by 192.0.2.3) with 10.3.0.0/24 at
    /// `locators`; what it sent.
    fn resolved_to(extra: &str, locators: Vec<LocatorRecord>) -> (Xtr, Vec<Output>) {
        let mut x = Xtr::new(&cfg(extra), 0);
        let mut out = Vec::new();
        x.map_cache_miss(ip("10.3.0.10"), ip("10.1.0.9"), 0, &mut out);
        let ecm = out
            .iter()
            .find_map(|o| match o {
                Output::Send { payload, .. } => Ecm::parse(payload).ok(),
                _ => None,
            })
            .unwrap();
        let LispMessage::MapRequest(req) = *ecm.message else {
            panic!("not a Map-Request")
        };
        let reply = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: req.nonce,
            records: vec![EidRecord::authoritative(
                EidPrefix::from_prefix("10.3.0.0/24".parse().unwrap()),
                1440,
                locators,
            )],
        };
        x.receive(&reply.to_vec().unwrap(), at("192.0.2.3"), 0, &mut out);
        (x, out)
    }

    /// The probes in `out`: (locator, request).
    fn probes(out: &[Output]) -> Vec<(IpAddr, MapRequest)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, payload, .. } => match parse_message(payload).ok()? {
                    LispMessage::MapRequest(r) if r.probe => Some((to.ip(), r)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn programmed(out: &[Output]) -> Vec<Vec<Locator>> {
        out.iter()
            .filter_map(|o| match o {
                Output::Table(op) => match &op.entry {
                    TableEntry::LispMapCache { locators, .. } => Some(locators.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// The ETR at `rloc` answers `req` as roamer's ETR does.
    fn answer(req: &MapRequest, rloc: &str) -> Vec<u8> {
        MapReply {
            probe: true,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: req.nonce,
            records: vec![EidRecord::authoritative(
                req.records[0],
                1440,
                vec![LocatorRecord {
                    probed: true,
                    ..LocatorRecord::local(ip(rloc), 1, 100)
                }],
            )],
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn probing_is_off_by_default() {
        let mut x = resolved("");
        let mut out = Vec::new();
        for t in (0..=130_000).step_by(100) {
            x.tick(t, &mut out);
        }
        assert!(probes(&out).is_empty());
        assert_eq!(x.probe_counters().probes_sent, 0);
    }

    #[test]
    fn a_silent_locator_goes_down_within_three_intervals_and_comes_back_when_it_answers() {
        let mut x = resolved(PROBING);
        let mut out = Vec::new();
        let mut down_at = None;
        // 192.0.2.4 answers every probe, 192.0.2.3 none.
        for t in (0..=5_000).step_by(100) {
            out.clear();
            x.tick(t, &mut out);
            for (to, req) in probes(&out) {
                // Unencapsulated, from our RLOC, Source-EID AFI 0, the cached prefix.
                assert_eq!(req.itr_rlocs, vec![ip("192.0.2.1")]);
                assert_eq!(req.source_eid, Address::None);
                assert_eq!(req.records[0].prefix(), "10.3.0.0/24".parse().ok());
                assert!(!req.smr && !req.smr_invoked);
                if to == ip("192.0.2.4") {
                    x.receive(&answer(&req, "192.0.2.4"), at("192.0.2.4"), t + 5, &mut out);
                }
            }
            let programs = programmed(&out);
            if down_at.is_none() && !programs.is_empty() {
                assert_eq!(
                    programs,
                    vec![vec![
                        Locator {
                            rloc: ip("192.0.2.3"),
                            priority: 255,
                            weight: 100
                        },
                        Locator {
                            rloc: ip("192.0.2.4"),
                            priority: 2,
                            weight: 100
                        },
                    ]],
                    "traffic moves to the second priority"
                );
                down_at = Some(t);
            }
        }
        let down_at = down_at.expect("192.0.2.3 went down");
        assert!(down_at <= 3_000, "down after {down_at} ms (interval 1 s)");
        let status = x.locator_status(&"10.3.0.0/24".parse().unwrap(), 5_000);
        assert_eq!(status.len(), 2);
        assert!(!status[0].up && status[0].state_changes == 2, "{status:?}");
        assert!(status[1].up && status[1].state_changes == 1, "{status:?}");
        assert_eq!(x.probe_counters().locators_down, 1);
        // It answers again: back to priority 1 at once.
        let mut back = false;
        for t in (5_100..=7_000).step_by(100) {
            out.clear();
            x.tick(t, &mut out);
            for (to, req) in probes(&out) {
                x.receive(
                    &answer(&req, &to.to_string()),
                    at(&to.to_string()),
                    t + 5,
                    &mut out,
                );
            }
            if let Some(p) = programmed(&out).first() {
                assert_eq!(p[0].priority, 1, "{p:?}");
                back = true;
                break;
            }
        }
        assert!(back, "192.0.2.3 came back");
        let status = x.locator_status(&"10.3.0.0/24".parse().unwrap(), 7_000);
        assert!(status[0].up && status[0].state_changes == 3, "{status:?}");
        assert_eq!(x.probe_counters().locators_up, 1);
    }

    #[test]
    fn every_locator_down_keeps_them_all_and_replies_are_checked() {
        let mut x = resolved(PROBING);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut programs = Vec::new();
        for t in (0..=5_000).step_by(100) {
            out.clear();
            x.tick(t, &mut out);
            for (to, req) in probes(&out) {
                // Wrong source, or an unknown nonce: ignored.
                x.receive(&answer(&req, "192.0.2.9"), at("192.0.2.9"), t, &mut out);
                let mut forged = req.clone();
                forged.nonce ^= 1;
                x.receive(
                    &answer(&forged, &to.to_string()),
                    at(&to.to_string()),
                    t,
                    &mut out,
                );
                seen.push(to);
            }
            programs.extend(programmed(&out));
        }
        // Nothing better to try once both are down: programmed as learned.
        let last = programs.last().expect("re-programmed");
        assert_eq!(
            last.iter().map(|l| l.priority).collect::<Vec<_>>(),
            vec![1, 2],
            "{programs:?}"
        );
        assert!(seen.contains(&ip("192.0.2.3")) && seen.contains(&ip("192.0.2.4")));
        let status = x.locator_status(&"10.3.0.0/24".parse().unwrap(), 5_000);
        assert!(status.iter().all(|s| !s.up), "{status:?}");
        assert!(x.probe_counters().probe_replies_unexpected >= 4);
        assert_eq!(x.probe_counters().probe_replies, 0);
    }

    #[test]
    fn the_etr_answers_a_probe_with_the_p_bit_and_its_locator_marked_probed() {
        let mut etr = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        let probe = |eid: &str| MapRequest {
            probe: true,
            ..MapRequest::query(
                0x77,
                Address::None,
                vec![ip("192.0.2.3")],
                vec![EidPrefix::from_prefix(eid.parse().unwrap())],
            )
        };
        etr.receive(
            &probe("10.1.0.0/24").to_vec().unwrap(),
            at("192.0.2.3"),
            0,
            &mut out,
        );
        let Some(Output::Send { to, payload, .. }) = out.first() else {
            panic!("no answer: {out:?}")
        };
        assert_eq!(*to, at("192.0.2.3"));
        let Ok(LispMessage::MapReply(r)) = parse_message(payload) else {
            panic!("not a Map-Reply")
        };
        assert!(r.probe);
        assert_eq!(r.nonce, 0x77);
        assert!(r.records[0].authoritative);
        assert!(r.records[0].locators[0].probed && r.records[0].locators[0].local);
        // An EID that is not ours: still answered (reachability), with no record.
        out.clear();
        etr.receive(
            &probe("10.7.0.0/24").to_vec().unwrap(),
            at("192.0.2.3"),
            0,
            &mut out,
        );
        let Some(Output::Send { payload, .. }) = out.first() else {
            panic!("no answer: {out:?}")
        };
        let Ok(LispMessage::MapReply(r)) = parse_message(payload) else {
            panic!("not a Map-Reply")
        };
        assert!(r.probe && r.records.is_empty());
    }

    #[test]
    fn probes_are_rate_limited_and_bounded() {
        // 255 locators in one record: more than a second's worth of probes.
        let locators: Vec<LocatorRecord> = (0..255u32)
            .map(|i| LocatorRecord::local(IpAddr::from([198, 18, (i >> 8) as u8, i as u8]), 1, 1))
            .collect();
        let (mut x, mut out) = resolved_to(PROBING, locators);
        out.clear();
        for t in (0..1_000).step_by(100) {
            x.tick(t, &mut out);
        }
        let sent = probes(&out).len() as u64;
        assert!(sent <= PROBES_PER_SECOND + 1, "{sent} probes in a second");
        assert!(x.probe_counters().probes_rate_limited > 0);
    }
}
