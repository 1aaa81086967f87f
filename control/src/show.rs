//! `show` commands: a registry with the same abbreviation and help rules as configuration
//! commands; every command renders text (the NX-OS layout) and JSON (`| json`).

pub mod lisp_data;
pub mod lisp_stats;

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ControlError;
use crate::config::cli::grammar::{Args, Grammar, HelpItem, MatchError};
use crate::config::{self, Config, Syntax};

/// A line-card slot as `show module` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleRow {
    pub slot: u8,
    pub model: String,
    pub ports: u16,
    pub description: String,
    pub status: String,
}

/// One row of `show hardware capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityRow {
    pub scope: String,
    pub table: String,
    pub used: u32,
    pub capacity: u32,
}

/// A detected dynamic EID, as `show lisp dynamic-eid` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynamicEidRow {
    pub map: String,
    pub eid: std::net::IpAddr,
    pub interface: String,
    pub uptime_secs: u64,
    pub last_packet_secs: u64,
    /// Learned from a site-based Map-Notify rather than from local traffic.
    pub via_map_notify: bool,
    pub pending_pings: u32,
}

/// A map-cache entry as `show ip lisp map-cache` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapCacheRow {
    pub prefix: roamer_hal::Prefix,
    pub uptime_secs: u64,
    /// None: never expires (static entries).
    pub expires_secs: Option<u64>,
    /// `map-reply`, `static send map-request` …
    pub via: String,
    /// Negative entries: the action (None for entries with locators).
    pub action: Option<roamer_hal::NegativeAction>,
    pub locators: Vec<roamer_hal::Locator>,
    pub locators_uptime_secs: u64,
    pub map_source: Option<std::net::IpAddr>,
    /// Per-locator state (RLOC probing); empty: every locator up since `locators_uptime_secs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locator_status: Vec<lisp_data::LocatorStatus>,
}

/// An away-table entry as `show ip lisp away` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwayRow {
    pub prefix: roamer_hal::Prefix,
    pub producer: String,
    pub created_secs: u64,
}

/// A MAC address table row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MacRow {
    pub vlan: u16,
    pub mac: String,
    pub dynamic: bool,
    /// Seconds since a frame from a dynamic address was last seen (0 for static ones).
    pub age_secs: u64,
    /// The port's interface name, or `sup-eth1(R)` for the router's own MACs.
    pub port: String,
    pub gateway: bool,
}

/// An ARP or neighbour table row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArpRow {
    pub address: std::net::IpAddr,
    pub age_secs: u64,
    pub mac: String,
    pub interface: String,
}

/// A route as `show ip route` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    pub prefix: String,
    pub via: String,
    pub interface: String,
    /// `direct`, `local`, `static`, `lisp` …
    pub source: String,
}

/// An interface as `show interface brief` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceRow {
    pub name: String,
    pub vlan: String,
    pub mode: String,
    pub status: String,
    pub reason: String,
    pub address: String,
    /// How the port's frames move (software backend: `af-xdp (native XDP, copy)`,
    /// `af-packet`, with the reason AF_XDP was not used); empty when the backend does not say.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub io: String,
}

/// Everything a show command may read. Protocol instances add their snapshots here.
#[derive(Debug, Clone, Copy)]
pub struct ShowContext<'a> {
    pub running: &'a Config,
    /// The startup configuration as stored (None when there is no startup file yet).
    pub startup: Option<&'a Config>,
    pub modules: &'a [ModuleRow],
    pub capacity: &'a [CapacityRow],
    /// Dynamic EIDs detected by the LISP instances (empty while none are).
    pub dynamic_eids: &'a [DynamicEidRow],
    pub macs: &'a [MacRow],
    pub arp: &'a [ArpRow],
    pub routes: &'a [RouteRow],
    pub interfaces: &'a [InterfaceRow],
    /// Forwarding counters by name (rx, bridged, routed, drops by reason …).
    pub counters: &'a [(String, u64)],
    /// Why `macs`, `arp`, `routes`, `interfaces` and `counters` are incomplete: the data plane
    /// did not answer. The commands that show them fail with it instead of an empty table.
    pub dataplane_error: Option<&'a str>,
    pub hsrp: &'a [crate::hsrp::GroupStatus],
    pub lisp_sites: &'a [crate::lisp::map_server::SiteRow],
    pub map_cache: &'a [MapCacheRow],
    pub away: &'a [AwayRow],
    /// Reliable registration sessions (`show lisp session`).
    pub sessions: &'a [crate::lisp::reliable::SessionRow],
    /// Counters of the LISP roles (`show lisp statistics`).
    pub lisp_statistics: &'a lisp_stats::LispStatistics,
    /// This map-server takes registrations over TCP (the `#` legend of `show lisp site`).
    pub reliable_registration: bool,
    pub uptime_secs: u64,
    /// The control socket's sessions and refusals (`show users`).
    pub control_sessions: ControlSessions,
}

/// The control socket's sessions, and the connections it refused, since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ControlSessions {
    pub in_use: usize,
    pub max: usize,
    /// Peers whose uid may not configure the switch (`% permission denied`).
    pub refused_permission: u64,
    /// Connections beyond `max` (`% too many sessions`).
    pub refused_too_many: u64,
    /// Sessions closed after `idle_secs` without a request.
    pub idle_closed: u64,
    pub idle_secs: u64,
}

/// A show command's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowOutput {
    pub text: String,
    pub json: Value,
}

type ShowFn = fn(&ShowContext<'_>, &Args) -> Result<ShowOutput, ControlError>;

struct ShowCommand {
    pattern: &'static str,
    help: &'static str,
    run: ShowFn,
}

static SHOW: &[ShowCommand] = &[
    ShowCommand {
        pattern: "running-config",
        help: "Current operating configuration",
        run: running_config,
    },
    ShowCommand {
        pattern: "startup-config",
        help: "Contents of the startup configuration",
        run: startup_config,
    },
    ShowCommand {
        pattern: "version",
        help: "Software and hardware versions",
        run: version,
    },
    ShowCommand {
        pattern: "users",
        help: "Sessions of the control socket",
        run: users,
    },
    ShowCommand {
        pattern: "module",
        help: "Line cards and their state",
        run: module,
    },
    ShowCommand {
        pattern: "hardware capacity",
        help: "Forwarding table usage per card",
        run: hardware_capacity,
    },
    ShowCommand {
        pattern: "lisp dynamic-eid",
        help: "LISP information",
        run: lisp_dynamic_eid,
    },
    ShowCommand {
        pattern: "lisp dynamic-eid {summary}=view",
        help: "LISP information",
        run: lisp_dynamic_eid,
    },
    ShowCommand {
        pattern: "mac address-table",
        help: "MAC address table",
        run: mac_table,
    },
    ShowCommand {
        pattern: "ip arp",
        help: "IP information",
        run: ip_arp,
    },
    ShowCommand {
        pattern: "ipv6 neighbor",
        help: "IPv6 information",
        run: ipv6_neighbor,
    },
    ShowCommand {
        pattern: "ip route",
        help: "IP information",
        run: ip_route,
    },
    ShowCommand {
        pattern: "interface brief",
        help: "Interface status",
        run: interface_brief,
    },
    ShowCommand {
        pattern: "forwarding counters",
        help: "Forwarding verdict counters",
        run: forwarding_counters,
    },
    ShowCommand {
        pattern: "hsrp",
        help: "HSRP information",
        run: hsrp_detail,
    },
    ShowCommand {
        pattern: "hsrp brief",
        help: "HSRP information",
        run: hsrp_brief,
    },
    ShowCommand {
        pattern: "lisp site",
        help: "LISP information",
        run: lisp_site,
    },
    ShowCommand {
        pattern: "lisp site detail",
        help: "LISP information",
        run: |c, _| {
            Ok(ShowOutput {
                text: crate::lisp::map_server::render_site_detail(c.lisp_sites),
                json: json!({ "TABLE_site": { "ROW_site": c.lisp_sites } }),
            })
        },
    },
    ShowCommand {
        pattern: "ip lisp map-cache [ <eid:ipv4> [ detail ] ]",
        help: "IP information",
        run: |c, a| lisp_data::map_cache(c, a, false),
    },
    ShowCommand {
        pattern: "ipv6 lisp map-cache [ <eid:ipv6> [ detail ] ]",
        help: "IPv6 information",
        run: |c, a| lisp_data::map_cache(c, a, true),
    },
    ShowCommand {
        pattern: "ip lisp database",
        help: "IP information",
        run: |c, _| Ok(lisp_data::database(c, false)),
    },
    ShowCommand {
        pattern: "ipv6 lisp database",
        help: "IPv6 information",
        run: |c, _| Ok(lisp_data::database(c, true)),
    },
    ShowCommand {
        pattern: "lisp session",
        help: "LISP information",
        run: lisp_session,
    },
    ShowCommand {
        pattern: "lisp statistics",
        help: "LISP information",
        run: lisp_statistics,
    },
    ShowCommand {
        pattern: "ip lisp statistics",
        help: "IP information",
        run: lisp_statistics,
    },
    ShowCommand {
        pattern: "ip lisp away",
        help: "IP information",
        run: |c, _| Ok(lisp_data::away(c, false)),
    },
    ShowCommand {
        pattern: "ipv6 lisp away",
        help: "IPv6 information",
        run: |c, _| Ok(lisp_data::away(c, true)),
    },
];

fn grammar() -> &'static Grammar {
    static G: OnceLock<Grammar> = OnceLock::new();
    G.get_or_init(|| {
        let mut g = Grammar::default();
        for (i, c) in SHOW.iter().enumerate() {
            g.add(c.pattern, i, c.help);
        }
        g
    })
}

/// Runs `show <rest>`; `rest` may end in `| json` or `| include WORD`.
/// Whether `show <rest>` is `show startup-config` (the one show command that reads the disk).
pub fn reads_startup(rest: &str) -> bool {
    let command = rest.split('|').next().unwrap_or_default();
    let toks: Vec<&str> = command.split_whitespace().collect();
    grammar()
        .matches(&toks, false)
        .is_ok_and(|m| SHOW[m.command].pattern == "startup-config")
}

/// Whether `rest` (what follows `show`) lists the Map-Server's registrations: only those
/// commands need its rows, which are many on a busy map-server.
pub fn reads_lisp_sites(rest: &str) -> bool {
    let command = rest.split('|').next().unwrap_or_default();
    let toks: Vec<&str> = command.split_whitespace().collect();
    grammar()
        .matches(&toks, false)
        .is_ok_and(|m| SHOW[m.command].pattern.starts_with("lisp site"))
}

pub fn run(ctx: &ShowContext<'_>, rest: &str) -> Result<String, ControlError> {
    let mut parts = rest.split('|');
    let command = parts.next().unwrap_or_default();
    let toks: Vec<&str> = command.split_whitespace().collect();
    let matched = grammar().matches(&toks, false).map_err(|e| match e {
        MatchError::Invalid { at, .. } => ControlError::UnknownKeyword {
            token: toks.get(at).copied().unwrap_or_default().to_string(),
            mode: "show",
            suggestion: None,
        },
        MatchError::Ambiguous { at, candidates } => ControlError::AmbiguousKeyword {
            token: toks.get(at).copied().unwrap_or_default().to_string(),
            candidates,
        },
        MatchError::Incomplete => ControlError::IncompleteCommand {
            command: format!("show {command}"),
        },
    })?;
    let out = (SHOW[matched.command].run)(ctx, &matched.args)?;
    let mut text = out.text;
    for modifier in parts {
        let m: Vec<&str> = modifier.split_whitespace().collect();
        match m.as_slice() {
            [j] if "json".starts_with(&j.to_ascii_lowercase()) && !j.is_empty() => {
                text = serde_json::to_string_pretty(&out.json).unwrap_or_default();
                text.push('\n');
            }
            // `i`, `inc`, `include`, as NX-OS takes them.
            [inc, word] if "include".starts_with(&inc.to_ascii_lowercase()) => {
                text = text
                    .lines()
                    .filter(|l| l.contains(word))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
            _ => {
                return Err(ControlError::UnknownKeyword {
                    token: modifier.trim().to_string(),
                    mode: "show modifier (json, include WORD)",
                    suggestion: None,
                });
            }
        }
    }
    Ok(text)
}

/// `show ?` help.
pub fn help(rest_tokens: &[&str], partial: &str) -> Vec<HelpItem> {
    grammar().help(rest_tokens, partial)
}

/// TAB completion after `show`.
pub fn complete(rest_tokens: &[&str], partial: &str) -> Vec<String> {
    grammar().complete(rest_tokens, partial)
}

fn running_config(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    Ok(config_output("show running-config", ctx.running))
}

fn startup_config(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    match ctx.startup {
        Some(cfg) => Ok(config_output("show startup-config", cfg)),
        None => Ok(ShowOutput {
            text: "No startup configuration saved.\n".into(),
            json: Value::Null,
        }),
    }
}

fn config_output(title: &str, cfg: &Config) -> ShowOutput {
    let text = format!(
        "\n!Command: {title}\n\n{}",
        config::render(cfg, Syntax::Cli)
    );
    ShowOutput {
        text,
        json: serde_json::to_value(cfg).unwrap_or(Value::Null),
    }
}

fn users(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    let c = ctx.control_sessions;
    let text = format!(
        "Control socket sessions: {} in use of {}\n\
         Refused, permission denied: {}\n\
         Refused, too many sessions: {}\n\
         Closed after {} s idle: {}\n",
        c.in_use, c.max, c.refused_permission, c.refused_too_many, c.idle_secs, c.idle_closed
    );
    Ok(ShowOutput {
        text,
        json: serde_json::to_value(c).unwrap_or(Value::Null),
    })
}

fn version(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    let p = &ctx.running.platform;
    let up = ctx.uptime_secs;
    let uptime = format!(
        "{} day(s), {} hour(s), {} minute(s), {} second(s)",
        up / 86400,
        up % 86400 / 3600,
        up % 3600 / 60,
        up % 60
    );
    let release = p
        .release
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "n/a".into());
    let text = format!(
        "roamer {}\nEmulated NX-OS release: {release}\nProfile: {}  Backend: {}\nDevice name: {}\nKernel uptime is {uptime}\n",
        env!("CARGO_PKG_VERSION"),
        p.profile,
        p.backend,
        ctx.running.hostname,
    );
    Ok(ShowOutput {
        text,
        json: json!({
            "roamer_version": env!("CARGO_PKG_VERSION"),
            "nxos_release": release,
            "profile": p.profile.to_string(),
            "backend": p.backend.to_string(),
            "host_name": ctx.running.hostname,
            "uptime_secs": up,
        }),
    })
}

fn module(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    let mut text = String::from(
        "Mod  Ports  Module-Type                                          Model              Status\n--- ----- ---------------------------------------------------- ------------------ ----------\n",
    );
    for m in ctx.modules {
        text.push_str(&format!(
            "{:<4} {:<5}  {:<52} {:<18} {}\n",
            m.slot,
            m.ports,
            truncate(&m.description, 52),
            m.model,
            m.status
        ));
    }
    Ok(ShowOutput {
        text,
        json: json!({ "TABLE_modinfo": { "ROW_modinfo": ctx.modules } }),
    })
}

fn hardware_capacity(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    let mut text = String::from(
        "Scope                              Table                     Used   Capacity\n",
    );
    for r in ctx.capacity {
        text.push_str(&format!(
            "{:<34} {:<24} {:>6} {:>10}\n",
            r.scope, r.table, r.used, r.capacity
        ));
    }
    Ok(ShowOutput {
        text,
        json: json!({ "capacity": ctx.capacity }),
    })
}

/// `hh:mm:ss` below a day, `NdNNh` beyond, as NX-OS prints ages.
pub fn age(secs: u64) -> String {
    if secs < 86_400 {
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    } else {
        format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600)
    }
}

fn lisp_dynamic_eid(ctx: &ShowContext<'_>, args: &Args) -> Result<ShowOutput, ControlError> {
    let rows = ctx.dynamic_eids;
    let mut text = String::from(
        "LISP Dynamic EID Summary for VRF \"default\"\n* = Dyn-EID learned by site-based Map-Notify\n",
    );
    let unusable: Vec<String> = ctx
        .running
        .lisp
        .dynamic_eid
        .values()
        .flat_map(|m| &m.map_server)
        .chain(ctx.running.lisp.ipv4.etr_map_server.iter())
        .chain(ctx.running.lisp.ipv6.etr_map_server.iter())
        .filter(|ms| ms.key.as_ref().is_some_and(|k| k.secret().is_none()))
        .map(|ms| ms.address.to_string())
        .collect();
    let json = json!({ "vrf": "default", "dynamic_eids": rows, "unusable_type3_keys": unusable });
    if args.get("view") == Some("summary") || ctx.running.lisp.dynamic_eid.is_empty() {
        for a in &unusable {
            text.push_str(&format!(
                "Warning: map-server {a} has a type-3 key that cannot be decrypted here: no registration is sent to it\n"
            ));
        }
        text.push_str(
            "Dyn-EID Name    Dynamic-EID     Interface    Uptime     Last       Pending\n",
        );
        text.push_str(
            "                                                        Packet     Ping Count\n",
        );
        for r in rows {
            let flag = if r.via_map_notify { "*" } else { " " };
            text.push_str(&format!(
                "{:<15}{flag}{:<16}{:<13}{:<11}{:<11}{}\n",
                truncate(&r.map, 14),
                r.eid.to_string(),
                r.interface,
                age(r.uptime_secs),
                age(r.last_packet_secs),
                r.pending_pings
            ));
        }
        return Ok(ShowOutput { text, json });
    }
    // Without `summary`: each map's policy and the EIDs detected under it.
    text.clear();
    text.push_str("LISP Dynamic EID Information for VRF \"default\"\n");
    for (name, map) in &ctx.running.lisp.dynamic_eid {
        let found: Vec<&DynamicEidRow> = rows.iter().filter(|r| r.map == *name).collect();
        text.push_str(&format!("\nDynamic-EID name: {name}\n"));
        for m in &map.database_mapping {
            text.push_str(&format!("  Database-mapping EID-prefix: {}, LSBs: 0x1\n    Locator: {}, priority: {}, weight: {}\n", m.eid_prefix, m.locator, m.priority, m.weight));
        }
        if let Some(g) = map.map_notify_group {
            text.push_str(&format!("  Map-notify-group: {g}\n"));
        }
        for ms in &map.map_server {
            let proxy = if ms.proxy_reply { ", proxy-reply" } else { "" };
            text.push_str(&format!(
                "  Registering more-specific dynamic-EIDs to map-server {}{proxy}\n",
                ms.address
            ));
            if ms.key.as_ref().is_some_and(|k| k.secret().is_none()) {
                text.push_str(&format!(
                    "    Warning: the type-3 key of map-server {} cannot be decrypted here; no registration is sent to it until the key is re-entered as type 0 or 7\n",
                    ms.address
                ));
            }
        }
        text.push_str(&format!(
            "  Number of roaming dynamic-EIDs discovered: {}\n",
            found.len()
        ));
        for r in found {
            text.push_str(&format!(
                "    {} on {}, uptime {}, last activity {}{}\n",
                r.eid,
                r.interface,
                age(r.uptime_secs),
                age(r.last_packet_secs),
                if r.via_map_notify {
                    ", learned by site-based Map-Notify"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(ShowOutput { text, json })
}

/// The data plane's rows are there, or the error that kept them away.
fn answered(ctx: &ShowContext<'_>) -> Result<(), ControlError> {
    match ctx.dataplane_error {
        Some(detail) => Err(ControlError::DataPlane {
            detail: detail.to_string(),
        }),
        None => Ok(()),
    }
}

fn mac_table(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    answered(ctx)?;
    let mut text = String::from(
        "Legend:\n        * - primary entry, G - Gateway MAC, (R) - Routed MAC, O - Overlay MAC\n        age - seconds since last seen,+ - primary entry using vPC Peer-Link,\n        (T) - True, (F) - False, C - ControlPlane MAC, ~ - vsan\n   VLAN     MAC Address      Type      age     Secure NTFY Ports\n---------+-----------------+--------+---------+------+----+------------------\n",
    );
    for r in ctx.macs {
        let flag = if r.gateway { "G" } else { "*" };
        let (kind, age) = if r.dynamic {
            ("dynamic", r.age_secs.to_string())
        } else {
            ("static", "-".to_string())
        };
        text.push_str(&format!(
            "{flag} {:>6}     {:<16} {:<8} {:<9} F      F    {}\n",
            r.vlan, r.mac, kind, age, r.port
        ));
    }
    Ok(ShowOutput {
        text,
        json: json!({ "TABLE_mac_address": { "ROW_mac_address": ctx.macs } }),
    })
}

fn neighbors(ctx: &ShowContext<'_>, v6: bool) -> ShowOutput {
    let rows: Vec<&ArpRow> = ctx
        .arp
        .iter()
        .filter(|r| r.address.is_ipv6() == v6)
        .collect();
    let mut text = if v6 {
        String::from("\nIPv6 Adjacency Table for VRF default\n")
    } else {
        String::from(
            "\nFlags: * - Adjacencies learnt on non active FHRP router\n       + - Adjacencies synced via CFSoE\n       # - Adjacencies Throttled for Glean\n       D - Static Adjacencies attached to down interface\n\nIP ARP Table for context default\n",
        )
    };
    text.push_str(&format!("Total number of entries: {}\n", rows.len()));
    text.push_str("Address         Age       MAC Address     Interface       Flags\n");
    for r in &rows {
        text.push_str(&format!(
            "{:<15} {:<9} {:<15} {:<15}\n",
            r.address.to_string(),
            age(r.age_secs),
            r.mac,
            r.interface
        ));
    }
    ShowOutput {
        text,
        json: json!({ "TABLE_vrf": { "ROW_vrf": { "vrf-name-out": "default", "TABLE_adj": { "ROW_adj": rows } } } }),
    }
}

fn ip_arp(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    answered(ctx)?;
    Ok(neighbors(ctx, false))
}

fn ipv6_neighbor(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    answered(ctx)?;
    Ok(neighbors(ctx, true))
}

fn ip_route(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    answered(ctx)?;
    let mut text = String::from(
        "IP Route Table for VRF \"default\"\n'*' denotes best ucast next-hop\n'**' denotes best mcast next-hop\n'[x/y]' denotes [preference/metric]\n'%<string>' in via output denotes VRF <string>\n\n",
    );
    for r in ctx.routes {
        let attached = if r.source == "direct" || r.source == "local" {
            ", attached"
        } else {
            ""
        };
        let pref = match r.source.as_str() {
            "static" => "[1/0]",
            "lisp" => "[240/1]",
            _ => "[0/0]",
        };
        text.push_str(&format!("{}, ubest/mbest: 1/0{attached}\n", r.prefix));
        let iface = if r.interface.is_empty() {
            String::new()
        } else {
            format!(", {}", r.interface)
        };
        text.push_str(&format!(
            "    *via {}{iface}, {pref}, {}\n",
            r.via, r.source
        ));
    }
    Ok(ShowOutput {
        text,
        json: json!({ "TABLE_vrf": { "ROW_vrf": { "vrf-name-out": "default", "TABLE_prefix": { "ROW_prefix": ctx.routes } } } }),
    })
}

fn interface_brief(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    answered(ctx)?;
    let mut text = String::from(
        "\n--------------------------------------------------------------------------------\nEthernet      VLAN    Type Mode   Status  Reason                   Speed     Port\nInterface                                                                    Ch #\n--------------------------------------------------------------------------------\n",
    );
    let (eth, other): (Vec<&InterfaceRow>, Vec<&InterfaceRow>) = ctx
        .interfaces
        .iter()
        .partition(|r| r.name.starts_with("Eth"));
    for r in &eth {
        text.push_str(&format!(
            "{:<13} {:<7} eth  {:<6} {:<7} {:<24} auto(D)   --\n",
            r.name, r.vlan, r.mode, r.status, r.reason
        ));
    }
    if eth.iter().any(|r| !r.io.is_empty()) {
        text.push_str("\nPort I/O (software backend)\n");
        for r in eth.iter().filter(|r| !r.io.is_empty()) {
            text.push_str(&format!("{:<13} {}\n", r.name, r.io));
        }
    }
    if !other.is_empty() {
        text.push_str("\n--------------------------------------------------------------------------------\nInterface     Secondary VLAN(Type)                    Status Reason\n--------------------------------------------------------------------------------\n");
        for r in &other {
            text.push_str(&format!(
                "{:<13} --                                      {:<6} {}\n",
                r.name, r.status, r.reason
            ));
        }
    }
    Ok(ShowOutput {
        text,
        json: json!({ "TABLE_interface": { "ROW_interface": ctx.interfaces } }),
    })
}

fn forwarding_counters(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    answered(ctx)?;
    let mut text = String::from("Forwarding counters\n");
    for (name, n) in ctx.counters {
        text.push_str(&format!("  {name:<28} {n}\n"));
    }
    let map: serde_json::Map<String, Value> = ctx
        .counters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    Ok(ShowOutput {
        text,
        json: Value::Object(map),
    })
}

fn lisp_site(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    Ok(ShowOutput {
        text: crate::lisp::map_server::render_sites(ctx.lisp_sites, ctx.reliable_registration),
        json: json!({ "TABLE_site": { "ROW_site": ctx.lisp_sites } }),
    })
}

/// `show lisp session` in the layout of seed 003.
fn lisp_session(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    // Rows carry their age as of when they were taken; render against that instant.
    const THEN: u64 = 1 << 62;
    let rows: Vec<_> = ctx
        .sessions
        .iter()
        .cloned()
        .map(|mut r| {
            r.since_ms = r.age_ms.map(|a| THEN - a);
            r
        })
        .collect();
    Ok(ShowOutput {
        text: crate::lisp::reliable::render_sessions(&rows, THEN),
        json: json!({ "vrf": "default", "sessions": ctx.sessions }),
    })
}

fn lisp_statistics(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    Ok(lisp_stats::show(ctx.lisp_statistics))
}

fn hsrp_brief(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    Ok(crate::hsrp::show::brief(ctx.hsrp))
}

fn hsrp_detail(ctx: &ShowContext<'_>, _: &Args) -> Result<ShowOutput, ControlError> {
    Ok(crate::hsrp::show::detail(ctx.hsrp))
}

#[cfg(test)]
impl<'a> ShowContext<'a> {
    /// A context for tests: `running`, an uptime, and nothing else (no tables, no counters).
    pub(crate) fn empty(running: &'a Config, uptime_secs: u64) -> Self {
        ShowContext {
            dataplane_error: None,
            running,
            startup: None,
            modules: &[],
            capacity: &[],
            dynamic_eids: &[],
            macs: &[],
            arp: &[],
            routes: &[],
            interfaces: &[],
            counters: &[],
            hsrp: &[],
            lisp_sites: &[],
            map_cache: &[],
            away: &[],
            sessions: &[],
            lisp_statistics: &lisp_stats::LispStatistics::NONE,
            reliable_registration: false,
            uptime_secs,
            control_sessions: ControlSessions::default(),
        }
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(cfg: &Config) -> ShowContext<'_> {
        ShowContext::empty(cfg, 3661)
    }

    #[test]
    fn only_show_startup_config_reads_the_startup_file() {
        assert!(reads_startup("startup-config"));
        assert!(reads_startup("start | json"));
        assert!(!reads_startup("running-config"));
        assert!(!reads_startup("version"));
        assert!(!reads_startup("bogus"));
    }

    #[test]
    fn abbreviations_json_and_include() {
        let (cfg, _) = config::parse("hostname n7k\nfeature lisp\n", Syntax::Cli).unwrap();
        let c = ctx(&cfg);
        let text = run(&c, "run").unwrap();
        assert!(text.contains("hostname n7k") && text.contains("feature lisp"));
        let json = run(&c, "running-config | json").unwrap();
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["hostname"], "n7k");
        assert_eq!(
            run(&c, "running-config | include feature").unwrap(),
            "feature lisp\n"
        );
        for short in ["i", "inc", "I"] {
            assert_eq!(
                run(&c, &format!("running-config | {short} feature")).unwrap(),
                "feature lisp\n",
                "| {short}"
            );
        }
        assert!(run(&c, "ver").unwrap().contains("1 hour(s), 1 minute(s)"));
        assert!(run(&c, "bogus").is_err());
        assert!(run(&c, "running-config | frobnicate").is_err());
        assert_eq!(
            run(&c, "startup").unwrap(),
            "No startup configuration saved.\n"
        );
    }

    #[test]
    fn dynamic_eid_summary_layout_and_type3_warning() {
        let (cfg, _) =
            config::parse("feature lisp\nlisp dynamic-eid Roamer-1\n", Syntax::Cli).unwrap();
        let rows = [DynamicEidRow {
            map: "Roamer-1".into(),
            eid: "10.17.1.10".parse().unwrap(),
            interface: "Vlan1301".into(),
            uptime_secs: 253,
            last_packet_secs: 253,
            via_map_notify: true,
            pending_pings: 0,
        }];
        let c = ShowContext {
            dynamic_eids: &rows,
            ..ctx(&cfg)
        };
        let text = run(&c, "lisp dynamic-eid summary").unwrap();
        assert!(
            text.contains("Roamer-1       *10.17.1.10      Vlan1301     00:04:13   00:04:13   0"),
            "{text}"
        );
        let detail = run(&c, "lisp dyn").unwrap();
        assert!(
            detail.contains("Number of roaming dynamic-EIDs discovered: 1"),
            "{detail}"
        );
        let (t3, _) = config::parse(
            "feature lisp\nlisp dynamic-eid R\n map-server 10.1.1.1 key 3 1c27564ab1212434\n",
            Syntax::Cli,
        )
        .unwrap();
        let warned = run(&ctx(&t3), "lisp dynamic-eid summary").unwrap();
        assert!(
            warned.contains("map-server 10.1.1.1 has a type-3 key"),
            "{warned}"
        );
        assert!(
            run(&ctx(&t3), "lisp dynamic-eid")
                .unwrap()
                .contains("re-entered as type 0 or 7")
        );
    }
}
