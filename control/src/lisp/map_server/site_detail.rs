//! `show lisp site detail` (protocols.md §10.4, the IOS-XE per-prefix view): every ETR's
//! registration of each prefix, and the unsolicited Map-Notifies sent to previous RLOCs for it
//! (sent, resent, acknowledged, given up).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use roamer_hal::{Locator, Prefix};
use serde::Serialize;

use super::{MapServer, SiteRow};
use crate::show::age;

/// The unsolicited Map-Notifies about one prefix (to the ETRs that lost it, RFC 9301 §5.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotifyCounts {
    pub sent: u64,
    pub resent: u64,
    pub acked: u64,
    /// Sent the allowed number of times without a Map-Notify-Ack.
    pub given_up: u64,
}

impl NotifyCounts {
    pub fn is_zero(&self) -> bool {
        *self == NotifyCounts::default()
    }
}

/// Per-prefix [`NotifyCounts`], bounded: past [`NotifyLog::MAX`] prefixes the lowest is dropped.
#[derive(Debug, Clone, Default)]
pub(super) struct NotifyLog {
    by_prefix: BTreeMap<Prefix, NotifyCounts>,
}

impl NotifyLog {
    const MAX: usize = 65_536;

    pub(super) fn count(&mut self, prefixes: &[Prefix], f: impl Fn(&mut NotifyCounts)) {
        for p in prefixes {
            if self.by_prefix.len() >= Self::MAX
                && !self.by_prefix.contains_key(p)
                && let Some(first) = self.by_prefix.keys().next().copied()
            {
                self.by_prefix.remove(&first);
            }
            f(self.by_prefix.entry(*p).or_default());
        }
    }

    pub(super) fn get(&self, p: &Prefix) -> NotifyCounts {
        self.by_prefix.get(p).copied().unwrap_or_default()
    }
}

/// One ETR's registration of a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtrRegistration {
    pub registrar: SocketAddr,
    pub first_registered_age_ms: u64,
    pub last_registered_age_ms: u64,
    pub proxy_reply: bool,
    /// Registered over the reliable transport (TCP 4342).
    pub reliable: bool,
    pub locators: Vec<Locator>,
}

impl MapServer {
    /// The registrations site `site` holds for `prefix`, newest first.
    pub(super) fn etr_registrations(
        &self,
        prefix: &Prefix,
        site: u32,
        now_ms: u64,
    ) -> Vec<EtrRegistration> {
        let t = &self.table;
        let Some(id) = t.index.get(prefix) else {
            return Vec::new();
        };
        let mut out: Vec<EtrRegistration> = t
            .regs(id)
            .iter()
            .filter_map(|r| {
                let s = t.sources.get(r.source);
                (s.site == site).then(|| EtrRegistration {
                    registrar: s.registrar,
                    first_registered_age_ms: now_ms.saturating_sub(r.first_ms()),
                    last_registered_age_ms: now_ms.saturating_sub(r.last_ms()),
                    proxy_reply: s.proxy_reply,
                    reliable: s.reliable,
                    locators: s.locators.to_vec(),
                })
            })
            .collect();
        out.sort_by_key(|e| e.last_registered_age_ms);
        out
    }
}

/// `show lisp site detail`: per site, every prefix with its registrations and Map-Notify counts.
pub fn render_site_detail(rows: &[SiteRow]) -> String {
    let mut out = String::from("LISP Site Registration Information\n");
    let mut last_site = None;
    for r in rows {
        if last_site != Some(r.site.as_str()) {
            last_site = Some(r.site.as_str());
            out.push_str(&format!(
                "\nSite name: {}\nAllowed configured locators: any\nRequested EID-prefix:\n",
                r.site
            ));
        }
        out.push_str(&format!(
            "  EID-prefix: {} instance-id {}\n",
            r.prefix, r.instance_id
        ));
        let first = r.etrs.iter().map(|e| e.first_registered_age_ms).max();
        let last = r.etrs.iter().map(|e| e.last_registered_age_ms).min();
        let when = |ms: Option<u64>| ms.map_or_else(|| "never".into(), |m| age(m / 1000));
        out.push_str(&format!("    First registered:     {}\n", when(first)));
        out.push_str(&format!("    Last registered:      {}\n", when(last)));
        let origin = if r.configured {
            "Configured".to_string()
        } else {
            match rows
                .iter()
                .find(|c| c.site == r.site && c.configured && c.prefix.covers(&r.prefix))
            {
                Some(c) => format!("Dynamic, more specific of {}", c.prefix),
                None => "Dynamic".to_string(),
            }
        };
        out.push_str(&format!("    Origin:               {origin}\n"));
        let proxy = r.etrs.iter().any(|e| e.proxy_reply);
        out.push_str(&format!(
            "    Proxy reply:          {}\n",
            if proxy { "Yes" } else { "No" }
        ));
        out.push_str(&format!(
            "    State:                {}\n",
            if r.etrs.is_empty() {
                "unknown"
            } else {
                "complete"
            }
        ));
        let n = &r.notifies;
        out.push_str(&format!(
            "    Map-Notify to previous RLOCs: sent {}, resent {}, acknowledged {}, given up {}\n",
            n.sent, n.resent, n.acked, n.given_up
        ));
        for e in &r.etrs {
            out.push_str(&format!(
                "    ETR {}, last registered {}, {}\n",
                e.registrar,
                age(e.last_registered_age_ms / 1000),
                if e.proxy_reply {
                    "proxy-reply"
                } else {
                    "no proxy-reply"
                }
            ));
            if e.reliable {
                out.push_str("                        sourced by reliable transport\n");
            }
            out.push_str("      Locator      State      Pri/Wgt\n");
            for l in &e.locators {
                out.push_str(&format!(
                    "      {:<13}{:<11}{:>3}/{}\n",
                    l.rloc.to_string(),
                    "up",
                    l.priority,
                    l.weight
                ));
            }
        }
    }
    out
}
