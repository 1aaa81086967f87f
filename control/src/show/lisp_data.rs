//! The per-family LISP views: `show {ip|ipv6} lisp data` (the ETR's mapping database, seed 002),
//! `show {ip|ipv6} lisp map-cache [EID [detail]]` (seeds 002 and 004) and
//! `show {ip|ipv6} lisp away` (seed 002); protocols.md §10.1–10.3.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_hal::{Locator, NegativeAction, Prefix};
use serde::Serialize;
use serde_json::json;

use super::{MapCacheRow, ShowContext, ShowOutput, age};
use crate::ControlError;
use crate::config::Config;
use crate::config::cli::grammar::Args;

/// The state of one locator of a map-cache entry (RLOC probing, protocols.md §3.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatorStatus {
    pub rloc: IpAddr,
    pub up: bool,
    /// Up/down changes since the entry was learned (the first "up" counts, as IOS counts it).
    pub state_changes: u32,
    /// Seconds since the last up/down change.
    pub last_change_secs: u64,
    /// Seconds since the last RLOC-probe to it (None: never probed).
    pub last_probe_secs: Option<u64>,
}

fn family(p: &Prefix, v6: bool) -> bool {
    p.addr().is_ipv6() == v6
}

fn af_name(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// A locator of one ETR database entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseLocator {
    pub rloc: IpAddr,
    pub priority: u8,
    pub weight: u8,
    /// `cfg-addr`: the locator is given as an address (roamer's only form).
    pub source: &'static str,
    /// The locator is one of this router's addresses.
    pub site_self: bool,
    /// `reachable` / `unreachable` (our own locators: the interface holding it is up) or
    /// `report-reachable` (another xTR's locator: registered with the R bit, not probed).
    pub state: &'static str,
}

/// One entry of the ETR mapping database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseRow {
    pub prefix: Prefix,
    /// A detected dynamic EID: its `lisp dynamic-eid` map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_eid: Option<String>,
    /// No route to the EID prefix (generalized SMR trigger, seed 002).
    pub no_route: bool,
    pub locators: Vec<DatabaseLocator>,
}

/// True when a route other than the default and LISP's own covers or lies inside `prefix`:
/// the connected subnet of an interface that is not shut down, a static route, or a route the
/// forwarding core lists.
pub fn has_route(ctx: &ShowContext<'_>, prefix: &Prefix) -> bool {
    let cfg = ctx.running;
    let connected = cfg
        .interfaces
        .values()
        .filter(|i| !i.shutdown)
        .flat_map(|i| i.ipv4.iter().chain(&i.ipv6))
        .any(|a| a.subnet().overlaps(prefix));
    let statics = cfg
        .routes
        .iter()
        .any(|r| !r.prefix.is_empty() && r.prefix.overlaps(prefix));
    let table = ctx.routes.iter().any(|r| {
        r.source != "lisp"
            && r.prefix
                .parse::<Prefix>()
                .is_ok_and(|p| !p.is_empty() && p.overlaps(prefix))
    });
    connected || statics || table
}

fn locator_row(cfg: &Config, rloc: IpAddr, priority: u8, weight: u8) -> DatabaseLocator {
    let holder = cfg
        .interfaces
        .values()
        .find(|i| i.ipv4.iter().chain(&i.ipv6).any(|a| a.addr == rloc));
    let (site_self, state) = match holder {
        Some(i) if i.shutdown => (true, "unreachable"),
        Some(_) => (true, "reachable"),
        None => (false, "report-reachable"),
    };
    DatabaseLocator {
        rloc,
        priority,
        weight,
        source: "cfg-addr",
        site_self,
        state,
    }
}

/// The database of one family: configured mappings, then the dynamic EIDs this xTR detected
/// (those another xTR of the site registers are not ours), sorted by prefix.
pub fn database_rows(ctx: &ShowContext<'_>, v6: bool) -> Vec<DatabaseRow> {
    let cfg = ctx.running;
    let mut rows: Vec<DatabaseRow> = Vec::new();
    for m in cfg
        .lisp
        .ipv4
        .database_mapping
        .iter()
        .chain(&cfg.lisp.ipv6.database_mapping)
    {
        if !family(&m.eid_prefix, v6) {
            continue;
        }
        let loc = locator_row(cfg, m.locator, m.priority, m.weight);
        match rows.iter_mut().find(|r| r.prefix == m.eid_prefix) {
            Some(r) => r.locators.push(loc),
            None => rows.push(DatabaseRow {
                prefix: m.eid_prefix,
                dynamic_eid: None,
                no_route: !has_route(ctx, &m.eid_prefix),
                locators: vec![loc],
            }),
        }
    }
    for d in ctx.dynamic_eids {
        if d.via_map_notify || d.eid.is_ipv6() != v6 {
            continue;
        }
        let prefix = Prefix::host(d.eid);
        if rows.iter().any(|r| r.prefix == prefix) {
            continue;
        }
        let locators = cfg
            .lisp
            .dynamic_eid
            .get(&d.map)
            .map(|map| {
                map.database_mapping
                    .iter()
                    .filter(|m| m.eid_prefix.contains(d.eid))
                    .map(|m| locator_row(cfg, m.locator, m.priority, m.weight))
                    .collect()
            })
            .unwrap_or_default();
        rows.push(DatabaseRow {
            prefix,
            dynamic_eid: Some(d.map.clone()),
            no_route: false,
            locators,
        });
    }
    rows.sort_by_key(|r| r.prefix);
    rows
}

/// Locator-status-bits: bit n set when the n-th distinct locator of the database is up.
pub fn lsbs(rows: &[DatabaseRow]) -> u32 {
    let mut seen: Vec<IpAddr> = Vec::new();
    let mut bits = 0u32;
    for l in rows.iter().flat_map(|r| &r.locators) {
        if seen.contains(&l.rloc) || seen.len() >= 32 {
            continue;
        }
        if l.state != "unreachable" {
            bits |= 1 << seen.len();
        }
        seen.push(l.rloc);
    }
    bits
}

/// `show {ip|ipv6} lisp data` in the IOS layout of seed 002.
pub fn database(ctx: &ShowContext<'_>, v6: bool) -> ShowOutput {
    let rows = database_rows(ctx, v6);
    let iid = ctx.running.instance_id();
    let bits = lsbs(&rows);
    let no_route = rows.iter().filter(|r| r.no_route).count();
    let mut text = format!(
        "LISP ETR {} Mapping Database for EID-table default (IID {iid}), LSBs: {bits:#x}\n\
         Entries total {}, no-route {no_route}, inactive 0\n",
        af_name(v6),
        rows.len()
    );
    for r in &rows {
        text.push_str(&r.prefix.to_string());
        if let Some(map) = &r.dynamic_eid {
            text.push_str(&format!(", dynamic-eid {map}"));
        }
        if r.no_route {
            text.push_str(" *** NO ROUTE TO EID PREFIX ***");
        }
        text.push('\n');
        text.push_str("  Locator       Pri/Wgt  Source     State\n");
        for l in &r.locators {
            let who = if l.site_self {
                "site-self"
            } else {
                "site-other"
            };
            text.push_str(&format!(
                "  {:<14}{:>3}/{:<3}  {:<11}{who}, {}\n",
                l.rloc.to_string(),
                l.priority,
                l.weight,
                l.source,
                l.state
            ));
        }
    }
    ShowOutput {
        text,
        json: json!({
            "instance_id": iid,
            "lsbs": bits,
            "total": rows.len(),
            "no_route": no_route,
            "inactive": 0,
            "entries": rows,
        }),
    }
}

fn action_name(a: NegativeAction) -> &'static str {
    match a {
        NegativeAction::NoAction => "no-action",
        NegativeAction::NativelyForward => "forward-native",
        NegativeAction::SendMapRequest => "send-map-request",
        NegativeAction::Drop => "drop",
    }
}

/// `show {ip|ipv6} lisp map-cache [EID [detail]]` in the IOS layout of seeds 002 and 004: the
/// static default "send-map-request" entry of an ITR, then what the mapping system taught. With
/// an EID, the longest match with the detail lines of seed 004 that roamer can fill.
pub fn map_cache(ctx: &ShowContext<'_>, args: &Args, v6: bool) -> Result<ShowOutput, ControlError> {
    let af = if v6 {
        &ctx.running.lisp.ipv6
    } else {
        &ctx.running.lisp.ipv4
    };
    let itr = ctx.running.features.lisp && af.itr;
    let wanted: Option<IpAddr> = args.get("eid").and_then(|a| a.parse().ok());
    let mut rows: Vec<MapCacheRow> = ctx
        .map_cache
        .iter()
        .filter(|r| family(&r.prefix, v6))
        .cloned()
        .collect();
    for m in &af.map_cache {
        if family(&m.eid_prefix, v6) && !rows.iter().any(|r| r.prefix == m.eid_prefix) {
            rows.push(MapCacheRow {
                prefix: m.eid_prefix,
                uptime_secs: ctx.uptime_secs,
                expires_secs: None,
                via: "static".into(),
                action: None,
                locators: vec![Locator {
                    rloc: m.locator,
                    priority: m.priority,
                    weight: m.weight,
                }],
                locators_uptime_secs: ctx.uptime_secs,
                map_source: None,
                locator_status: Vec::new(),
            });
        }
    }
    if itr {
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        rows.push(MapCacheRow {
            prefix: Prefix::new(any, 0).map_err(|_| ControlError::IncompleteCommand {
                command: "default map-cache entry".into(),
            })?,
            uptime_secs: ctx.uptime_secs,
            expires_secs: None,
            via: "static send map-request".into(),
            action: Some(NegativeAction::SendMapRequest),
            locators: Vec::new(),
            locators_uptime_secs: 0,
            map_source: None,
            locator_status: Vec::new(),
        });
    }
    rows.sort_by_key(|r| r.prefix);
    if let Some(eid) = wanted {
        // The longest match only, like IOS.
        let best = rows
            .iter()
            .filter(|r| r.prefix.contains(eid))
            .max_by_key(|r| r.prefix.len())
            .cloned();
        rows = best.into_iter().collect();
    }
    let text = render_map_cache(&rows, ctx.running.instance_id(), v6, wanted.is_some());
    Ok(ShowOutput {
        text,
        json: json!({ "instance_id": ctx.running.instance_id(), "entries": rows }),
    })
}

/// The text of the map-cache view; `detail` adds seed 004's per-entry and per-locator lines.
pub fn render_map_cache(rows: &[MapCacheRow], iid: u32, v6: bool, detail: bool) -> String {
    let mut text = format!(
        "LISP {} Mapping Cache for EID-table default (IID {iid}), {} entries\n\n",
        af_name(v6),
        rows.len()
    );
    for r in rows {
        let expires = r.expires_secs.map(age).unwrap_or_else(|| "never".into());
        let state = match r.action {
            None => "complete".to_string(),
            Some(a) => action_name(a).to_string(),
        };
        if r.via.starts_with("static send") {
            text.push_str(&format!(
                "{}, uptime: {}, expires: {expires}, via {}\n",
                r.prefix,
                age(r.uptime_secs),
                r.via
            ));
        } else {
            text.push_str(&format!(
                "{}, uptime: {}, expires: {expires}, via {}, {state}\n",
                r.prefix,
                age(r.uptime_secs),
                r.via
            ));
        }
        if detail && r.action.is_none() {
            text.push_str(&format!("  Sources: {}\n", r.via));
            match r.map_source {
                Some(src) => text.push_str(&format!(
                    "  State: complete, last modified: {}, map-source: {src}\n",
                    age(r.locators_uptime_secs)
                )),
                None => text.push_str(&format!(
                    "  State: complete, last modified: {}, map-source: local\n",
                    age(r.locators_uptime_secs)
                )),
            }
        }
        match r.action {
            Some(a) => text.push_str(&format!(
                "  Negative cache entry, action: {}\n",
                action_name(a)
            )),
            None => {
                text.push_str("  Locator       Uptime    State      Pri/Wgt\n");
                for l in &r.locators {
                    let status = r.locator_status.iter().find(|s| s.rloc == l.rloc);
                    let up = status.is_none_or(|s| s.up);
                    let since = status.map_or(r.locators_uptime_secs, |s| s.last_change_secs);
                    text.push_str(&format!(
                        "  {:<14}{:<10}{:<11}{:>3}/{}\n",
                        l.rloc.to_string(),
                        age(since),
                        if up { "up" } else { "down" },
                        l.priority,
                        l.weight
                    ));
                    if detail {
                        let (changes, last_change, probe) = match status {
                            Some(s) => (s.state_changes, s.last_change_secs, s.last_probe_secs),
                            None => (1, r.locators_uptime_secs, None),
                        };
                        text.push_str(&format!(
                            "    Last up-down state change:         {}, state change count: {changes}\n",
                            age(last_change)
                        ));
                        text.push_str("    RLOC-probing loc-status algorithm:\n");
                        text.push_str(&format!(
                            "      Last RLOC-probe sent:            {}\n",
                            probe.map_or_else(|| "never".into(), age)
                        ));
                    }
                }
            }
        }
    }
    text
}

/// `show {ip|ipv6} lisp away` in the IOS layout of seed 002 (protocols.md §10.3).
pub fn away(ctx: &ShowContext<'_>, v6: bool) -> ShowOutput {
    let iid = ctx.running.instance_id();
    let rows: Vec<_> = ctx.away.iter().filter(|r| family(&r.prefix, v6)).collect();
    let mut text = format!(
        "LISP Away Table for router lisp 0 (default) IID {iid}\nEntries: {}\nPrefix                Producer\n",
        rows.len()
    );
    for r in &rows {
        text.push_str(&format!("{:<22}{}\n", r.prefix.to_string(), r.producer));
    }
    ShowOutput {
        text,
        json: json!({ "instance_id": iid, "entries": rows }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};
    use crate::show::{AwayRow, DynamicEidRow, run};

    /// Asserts that `text` contains each of `parts`.
    fn assert_contains(text: &str, parts: &[&str]) {
        for part in parts {
            assert!(text.contains(part), "no {part:?} in:\n{text}");
        }
    }

    fn ctx(cfg: &Config) -> ShowContext<'_> {
        ShowContext::empty(cfg, 12_765)
    }

    /// xTR1 of seed 002: three database mappings on one RLOC, the SVI of 172.16.0.0/24 shut.
    fn xtr1() -> Config {
        let text = "feature interface-vlan\nfeature lisp\nvlan 10\nvlan 20\nvlan 30\n\
             interface Ethernet1/3\n  no switchport\n  ip address 203.0.113.11/24\n\
             interface Vlan10\n  ip address 10.10.10.1/24\n\
             interface Vlan20\n  ip address 10.20.20.1/24\n\
             interface Vlan30\n  shutdown\n  ip address 172.16.0.1/24\n\
             ipv6 lisp database-mapping 2001:db8:bb::/48 203.0.113.11 priority 1 weight 100\n\
             ip lisp database-mapping 10.10.10.0/24 203.0.113.11 priority 1 weight 100\n\
             ip lisp database-mapping 10.20.20.0/24 203.0.113.11 priority 1 weight 100\n\
             ip lisp database-mapping 172.16.0.0/24 203.0.113.11 priority 1 weight 100\n\
             ip lisp itr-etr\n";
        let (cfg, _) = config::parse(text, Syntax::Cli).expect("seed configuration parses");
        cfg
    }

    /// The seed's output, without its `, locator-set set1` (roamer configures no locator-sets)
    /// and with the locator lines indented as protocols.md §10.2 measures them.
    const SEED_002_DATA: &str = "\
LISP ETR IPv4 Mapping Database for EID-table default (IID 0), LSBs: 0x1
Entries total 3, no-route 1, inactive 0
10.10.10.0/24
  Locator       Pri/Wgt  Source     State
  203.0.113.11    1/100  cfg-addr   site-self, reachable
10.20.20.0/24
  Locator       Pri/Wgt  Source     State
  203.0.113.11    1/100  cfg-addr   site-self, reachable
172.16.0.0/24 *** NO ROUTE TO EID PREFIX ***
  Locator       Pri/Wgt  Source     State
  203.0.113.11    1/100  cfg-addr   site-self, reachable
";

    #[test]
    fn ip_lisp_data_matches_seed_002_with_the_no_route_marker() {
        let cfg = xtr1();
        let c = ctx(&cfg);
        assert_eq!(run(&c, "ip lisp data").unwrap(), SEED_002_DATA);
        // `database` spelled out is the same command.
        assert_eq!(run(&c, "ip lisp database").unwrap(), SEED_002_DATA);
        let json: serde_json::Value =
            serde_json::from_str(&run(&c, "ip lisp data | json").unwrap()).unwrap();
        assert_eq!(json["total"], 3);
        assert_eq!(json["no_route"], 1);
        assert_eq!(json["lsbs"], 1);
        assert_eq!(json["entries"][2]["no_route"], true);
        assert_eq!(json["entries"][0]["locators"][0]["state"], "reachable");
    }

    #[test]
    fn ipv6_lisp_data_lists_the_ipv6_mappings_only() {
        let cfg = xtr1();
        let text = run(&ctx(&cfg), "ipv6 lisp data").unwrap();
        assert_eq!(
            text,
            "LISP ETR IPv6 Mapping Database for EID-table default (IID 0), LSBs: 0x1\n\
             Entries total 1, no-route 1, inactive 0\n\
             2001:db8:bb::/48 *** NO ROUTE TO EID PREFIX ***\n\
             \x20 Locator       Pri/Wgt  Source     State\n\
             \x20 203.0.113.11    1/100  cfg-addr   site-self, reachable\n"
        );
    }

    #[test]
    fn a_shut_rloc_interface_clears_its_lsb_and_detected_dynamic_eids_are_listed() {
        let text = "feature interface-vlan\nfeature lisp\nvlan 10\n\
             interface Ethernet1/3\n  no switchport\n  shutdown\n  ip address 192.0.2.1/24\n\
             interface Vlan10\n  ip address 10.9.0.1/24\n  lisp mobility roam\n\
             lisp dynamic-eid roam\n  database-mapping 10.9.0.0/24 192.0.2.1 priority 1 weight 100\n\
             ip lisp database-mapping 10.1.0.0/24 192.0.2.9 priority 2 weight 50\n\
             ip lisp database-mapping 10.1.0.0/24 192.0.2.1 priority 1 weight 50\n\
             ip lisp itr-etr\n";
        let (cfg, _) = config::parse(text, Syntax::Cli).unwrap();
        let dynamic = [
            DynamicEidRow {
                map: "roam".into(),
                eid: "10.9.0.5".parse().unwrap(),
                interface: "Vlan10".into(),
                uptime_secs: 1,
                last_packet_secs: 1,
                via_map_notify: false,
                pending_pings: 0,
            },
            DynamicEidRow {
                map: "roam".into(),
                eid: "10.9.0.6".parse().unwrap(),
                interface: "Vlan10".into(),
                uptime_secs: 1,
                last_packet_secs: 1,
                via_map_notify: true,
                pending_pings: 0,
            },
        ];
        let c = ShowContext {
            dynamic_eids: &dynamic,
            ..ctx(&cfg)
        };
        let out = run(&c, "ip lisp data").unwrap();
        // 192.0.2.1 first (bit 0, its interface shut: clear), then 192.0.2.9 (another xTR's).
        assert!(out.starts_with("LISP ETR IPv4 Mapping Database for EID-table default (IID 0), LSBs: 0x2\nEntries total 2, no-route 1, inactive 0\n"), "{out}");
        assert_contains(
            &out,
            &[
                "  192.0.2.1       1/50   cfg-addr   site-self, unreachable\n",
                "  192.0.2.9       2/50   cfg-addr   site-other, report-reachable\n",
                "10.9.0.5/32, dynamic-eid roam\n",
            ],
        );
        assert!(!out.contains("10.9.0.6"), "another xTR registers it: {out}");
    }

    fn learned(prefix: &str, rlocs: &[(&str, u8)]) -> MapCacheRow {
        MapCacheRow {
            prefix: prefix.parse().unwrap(),
            uptime_secs: 37,
            expires_secs: Some(86_362),
            via: "map-reply".into(),
            action: None,
            locators: rlocs
                .iter()
                .map(|(r, p)| Locator {
                    rloc: r.parse().unwrap(),
                    priority: *p,
                    weight: 0,
                })
                .collect(),
            locators_uptime_secs: 37,
            map_source: Some("2.2.2.2".parse().unwrap()),
            locator_status: Vec::new(),
        }
    }

    #[test]
    fn map_cache_detail_has_seed_004_fields() {
        let (cfg, _) = config::parse("feature lisp\nip lisp itr-etr\n", Syntax::Cli).unwrap();
        let rows = [learned("1.1.1.1/32", &[("2.2.2.2", 0)])];
        let c = ShowContext {
            map_cache: &rows,
            ..ctx(&cfg)
        };
        let text = run(&c, "ip lisp map-cache 1.1.1.1").unwrap();
        assert_eq!(
            text,
            "LISP IPv4 Mapping Cache for EID-table default (IID 0), 1 entries\n\n\
             1.1.1.1/32, uptime: 00:00:37, expires: 23:59:22, via map-reply, complete\n\
             \x20 Sources: map-reply\n\
             \x20 State: complete, last modified: 00:00:37, map-source: 2.2.2.2\n\
             \x20 Locator       Uptime    State      Pri/Wgt\n\
             \x20 2.2.2.2       00:00:37  up           0/0\n\
             \x20   Last up-down state change:         00:00:37, state change count: 1\n\
             \x20   RLOC-probing loc-status algorithm:\n\
             \x20     Last RLOC-probe sent:            never\n"
        );
        assert_eq!(run(&c, "ip lisp map-cache 1.1.1.1 detail").unwrap(), text);
        // Without an EID: the summary lines only, and the ITR's default entry.
        let all = run(&c, "ip lisp map-cache").unwrap();
        assert!(all.contains("0.0.0.0/0, uptime: 03:32:45, expires: never, via static send map-request\n  Negative cache entry, action: send-map-request\n"), "{all}");
        assert!(!all.contains("Sources:"), "{all}");
    }

    #[test]
    fn a_probed_down_locator_shows_down_with_its_changes() {
        let (cfg, _) = config::parse("feature lisp\nip lisp itr-etr\n", Syntax::Cli).unwrap();
        let mut row = learned("10.3.0.0/24", &[("192.0.2.3", 1), ("192.0.2.4", 2)]);
        row.locator_status = vec![LocatorStatus {
            rloc: "192.0.2.3".parse().unwrap(),
            up: false,
            state_changes: 2,
            last_change_secs: 5,
            last_probe_secs: Some(1),
        }];
        let rows = [row];
        let c = ShowContext {
            map_cache: &rows,
            ..ctx(&cfg)
        };
        let text = run(&c, "ip lisp map-cache 10.3.0.9 detail").unwrap();
        assert_contains(
            &text,
            &[
                "  192.0.2.3     00:00:05  down         1/0\n    Last up-down state change:         00:00:05, state change count: 2\n    RLOC-probing loc-status algorithm:\n      Last RLOC-probe sent:            00:00:01\n",
                "  192.0.2.4     00:00:37  up           2/0\n",
            ],
        );
    }

    #[test]
    fn ipv6_map_cache_and_away_are_per_family() {
        let (cfg, _) = config::parse(
            "feature lisp\nip lisp itr-etr\nipv6 lisp itr-etr\n",
            Syntax::Cli,
        )
        .unwrap();
        let rows = [
            learned("10.3.0.0/24", &[("192.0.2.3", 1)]),
            learned("2001:db8:3::/48", &[("192.0.2.3", 1)]),
        ];
        let away = [
            AwayRow {
                prefix: "10.9.0.5/32".parse().unwrap(),
                producer: "dyn-eid".into(),
                created_secs: 1,
            },
            AwayRow {
                prefix: "2001:db8:9::5/128".parse().unwrap(),
                producer: "dyn-eid".into(),
                created_secs: 1,
            },
        ];
        let c = ShowContext {
            map_cache: &rows,
            away: &away,
            ..ctx(&cfg)
        };
        let v6 = run(&c, "ipv6 lisp map-cache").unwrap();
        assert!(v6.starts_with("LISP IPv6 Mapping Cache for EID-table default (IID 0), 2 entries\n\n::/0, uptime: 03:32:45, expires: never, via static send map-request\n"), "{v6}");
        assert!(
            v6.contains("2001:db8:3::/48, uptime") && !v6.contains("10.3.0.0"),
            "{v6}"
        );
        let one = run(&c, "ipv6 lisp map-cache 2001:db8:3::1").unwrap();
        assert!(one.contains("  Sources: map-reply\n"), "{one}");
        let json: serde_json::Value =
            serde_json::from_str(&run(&c, "ipv6 lisp map-cache | json").unwrap()).unwrap();
        assert_eq!(json["entries"].as_array().map(Vec::len), Some(2));
        let v4 = run(&c, "ip lisp map-cache").unwrap();
        assert!(!v4.contains("2001:db8"), "{v4}");
        let a6 = run(&c, "ipv6 lisp away").unwrap();
        assert!(
            a6.contains("Entries: 1\n") && a6.contains("2001:db8:9::5/128     dyn-eid\n"),
            "{a6}"
        );
        let a4 = run(&c, "ip lisp away | json").unwrap();
        assert!(
            a4.contains("10.9.0.5/32") && !a4.contains("2001:db8"),
            "{a4}"
        );
        assert!(run(&c, "ip lisp map-cache 2001:db8::1").is_err());
    }
}
