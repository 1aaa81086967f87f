//! `show lisp statistics` (also `show ip lisp statistics`): every counter of the LISP
//! instances, in the grouped layout of IOS-XE/NX-OS `show lisp statistics` — a section per
//! role, "Control Packets:" lines first, then "Errors:" — one line per counter.
//!
//! The counters are read through their `Serialize` form, so a counter added to any of the
//! structures shows here (and in `| json`) without a change to this file: a field the layout
//! below does not name is printed with a label made from its name, under "Errors:" when its
//! name says it refuses, drops, ignores or fails something, else at the end of "Control
//! Packets:". Every refusal is therefore visible to an operator.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::lisp::map_server;
use crate::lisp::reliable::{EndpointCounters, EtrCounters, MsCounters};
use crate::lisp::xtr;

/// What `show lisp statistics` reads; `None` for a role this switch does not run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LispStatistics {
    /// The Map-Server's (and Map-Resolver's) counters.
    pub map_server: Option<map_server::Counters>,
    /// `ip lisp map-resolver` is configured.
    pub map_resolver: bool,
    /// Encapsulated Map-Requests not answered: over the per-requester rate limit.
    pub map_requests_rate_limited: u64,
    pub xtr: Option<xtr::Counters>,
    /// Reliable registration, ETR side (present with the xTR).
    pub etr_sessions: Option<EtrCounters>,
    /// Reliable registration, Map-Server side (present with the Map-Server).
    pub ms_sessions: Option<MsCounters>,
    /// The userspace TCP endpoint both sides use.
    pub tcp: Option<EndpointCounters>,
}

impl LispStatistics {
    /// No LISP role running.
    pub const NONE: LispStatistics = LispStatistics {
        map_server: None,
        map_resolver: false,
        map_requests_rate_limited: 0,
        xtr: None,
        etr_sessions: None,
        ms_sessions: None,
        tcp: None,
    };
}

/// Field name, label. Labels follow IOS wording ("in"/"out" seen from this switch).
type Layout = &'static [(&'static str, &'static str)];

const MS_PACKETS: Layout = &[
    ("registers_accepted", "Map-Registers in, accepted"),
    ("notify_acks", "Map-Notify-Acks in"),
    ("moves", "Map-Notify out, EID moved to another ETR"),
    (
        "overlap_notifies",
        "Map-Notify out, more-specific in a prefix",
    ),
    (
        "notifies_resent",
        "Map-Notify out, resent (no Map-Notify-Ack)",
    ),
    (
        "notifies_given_up",
        "Map-Notify out, given up (never acknowledged)",
    ),
    ("withdrawals", "Registrations withdrawn (TTL 0)"),
    ("expired", "Registrations expired"),
];
const MS_ERRORS: Layout = &[
    ("refused_malformed", "Map-Registers refused, malformed"),
    (
        "refused_unknown_site",
        "Map-Registers refused, no such site",
    ),
    (
        "refused_outside_site",
        "Map-Registers refused, EID not in the site",
    ),
    (
        "refused_authentication",
        "Map-Registers refused, authentication failure",
    ),
    (
        "refused_site_limit",
        "Map-Registers refused, site registration limit",
    ),
    ("notify_acks_malformed", "Map-Notify-Acks malformed"),
    (
        "notify_acks_refused",
        "Map-Notify-Acks refused, unknown nonce, source or key",
    ),
];
/// Map-Server counters that belong to the Map-Resolver.
const MR_PACKETS: Layout = &[
    (
        "requests_forwarded",
        "Encapsulated Map-Requests forwarded to ETR",
    ),
    ("proxy_replies", "Map-Replies out, proxy reply for ETR"),
    ("negative_replies", "Negative Map-Replies out"),
];
const MR_ERRORS: Layout = &[("requests_refused", "Map-Requests refused")];

const XTR_PACKETS: Layout = &[
    ("registers_sent", "Map-Registers out"),
    ("map_notifies_accepted", "Map-Notify in, accepted"),
    ("map_requests_sent", "Map-Requests out"),
    ("map_requests_answered", "Map-Requests in, answered"),
    ("map_replies_accepted", "Map-Reply records in, accepted"),
    ("smrs_sent", "SMRs out"),
    ("smrs_received", "SMRs in"),
    ("smr_invoked_sent", "SMR-invoked Map-Requests out"),
    ("site_notifies_sent", "Site Map-Notify out"),
    ("site_notifies_received", "Site Map-Notify in"),
    ("dynamic_eids_detected", "Dynamic EIDs detected"),
    ("dynamic_eids_moved_away", "Dynamic EIDs moved away"),
    ("dynamic_eids_timed_out", "Dynamic EIDs timed out"),
    ("resolver_switches", "Map-Resolver switches"),
];
const XTR_ERRORS: Layout = &[
    ("map_notifies_refused", "Map-Notify in, refused"),
    ("map_requests_ignored", "Map-Requests in, ignored"),
    ("map_replies_unexpected", "Map-Replies in, unexpected"),
    ("smrs_ignored", "SMRs in, ignored"),
    ("site_notifies_refused", "Site Map-Notify in, refused"),
    ("malformed", "Malformed control messages"),
    (
        "dropped_table_full",
        "Map-cache entries dropped, table full",
    ),
    ("unusable_keys", "Unusable (type-3) keys"),
];

const ETR_PACKETS: Layout = &[
    ("connects", "Session connects"),
    ("sessions_up", "Sessions up"),
    ("registrations_sent", "Map-Registers out over TCP"),
    ("acks", "Registration-ACKs in"),
    ("refreshes", "Registration-Refresh in"),
    ("mapping_notifications", "Mapping-Notifications in"),
];
const ETR_ERRORS: Layout = &[
    ("connect_timeouts", "Session connect timeouts"),
    ("connects_refused", "Session connects refused"),
    ("connects_deferred", "Session connects deferred (back-off)"),
    ("resets", "Sessions reset"),
    ("framing_errors", "Framing errors"),
    ("registrations_refused", "Map-Registers not sent over TCP"),
    ("nacks", "Registration-NACKs in (rejected)"),
    ("error_notifications", "Error-Notifications in"),
    ("messages_ignored", "Messages ignored"),
];

const MSS_PACKETS: Layout = &[
    ("sessions_accepted", "Sessions accepted"),
    ("registrations", "Map-Registers in over TCP"),
    ("acks_sent", "Registration-ACKs out"),
];
const MSS_ERRORS: Layout = &[
    ("refused_full", "Sessions refused, too many"),
    (
        "refused_not_allowed",
        "Sessions refused, no UDP registration first",
    ),
    ("resets", "Sessions reset"),
    ("framing_errors", "Framing errors"),
    ("nacks_sent", "Registration-NACKs out (rejected)"),
    (
        "sends_refused",
        "Messages not sent (no session, queue full)",
    ),
    ("error_notifications", "Error-Notifications in"),
    ("messages_ignored", "Messages ignored"),
];

const TCP_PACKETS: Layout = &[
    ("rx_packets", "Segments in"),
    ("tx_packets", "Segments out"),
    ("looped_back", "Segments looped back to ourselves"),
];
const TCP_ERRORS: Layout = &[
    ("rx_dropped_full", "Segments in dropped, queue full"),
    ("rx_dropped_not_ours", "Segments in dropped, not ours"),
    ("tx_dropped_full", "Segments out dropped, queue full"),
];

/// Width of the label column.
const LABEL: usize = 52;

/// Whether a counter not in the layout counts something refused or lost.
fn is_error(field: &str) -> bool {
    [
        "refus",
        "reject",
        "drop",
        "ignor",
        "malformed",
        "fail",
        "error",
        "invalid",
        "limit",
        "nack",
        "timeout",
    ]
    .iter()
    .any(|w| field.contains(w))
}

/// `refused_over_quota` → `Refused over quota`.
fn label_of(field: &str) -> String {
    let words = field.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => words,
    }
}

fn fields<T: Serialize>(counters: &T) -> Map<String, Value> {
    match serde_json::to_value(counters) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn line(text: &mut String, label: &str, value: &Value) {
    let shown = match value {
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    let label = format!("{label}:");
    text.push_str(&format!("    {label:<LABEL$} {shown}\n"));
}

/// One role: a title, "Control Packets:" and "Errors:". `rest` takes the fields of `counters`
/// that no layout names (`None`: they belong to another section of the same structure).
struct Section<'a> {
    title: &'a str,
    counters: &'a Map<String, Value>,
    packets: Layout,
    errors: Layout,
    extra_errors: &'a [(&'a str, u64)],
    rest: bool,
    /// Fields named by another section over the same counters.
    elsewhere: &'a [Layout],
}

fn render(text: &mut String, s: &Section<'_>) {
    let named = |f: &str| {
        s.packets
            .iter()
            .chain(s.errors.iter())
            .chain(s.elsewhere.iter().flat_map(|l| l.iter()))
            .any(|(n, _)| *n == f)
    };
    let unnamed: Vec<(&String, &Value)> = if s.rest {
        s.counters.iter().filter(|(k, _)| !named(k)).collect()
    } else {
        Vec::new()
    };
    text.push_str(&format!("{}\n  Control Packets:\n", s.title));
    for (field, label) in s.packets {
        if let Some(v) = s.counters.get(*field) {
            line(text, label, v);
        }
    }
    for (field, v) in unnamed.iter().filter(|(k, _)| !is_error(k)) {
        line(text, &label_of(field), v);
    }
    text.push_str("  Errors:\n");
    for (field, label) in s.errors {
        if let Some(v) = s.counters.get(*field) {
            line(text, label, v);
        }
    }
    for (field, v) in unnamed.iter().filter(|(k, _)| is_error(k)) {
        line(text, &label_of(field), v);
    }
    for (label, n) in s.extra_errors {
        line(text, label, &json!(n));
    }
}

/// The text and JSON of `show lisp statistics`.
pub fn show(stats: &LispStatistics) -> super::ShowOutput {
    let mut text = String::from(
        "LISP statistics for instance ID 0 - last cleared: never (since the daemon started)\n",
    );
    let none = Map::new();
    let mut any = false;
    if let Some(ms) = &stats.map_server {
        any = true;
        let m = fields(ms);
        render(
            &mut text,
            &Section {
                title: "Map-Server:",
                counters: &m,
                packets: MS_PACKETS,
                errors: MS_ERRORS,
                extra_errors: &[],
                rest: true,
                elsewhere: &[MR_PACKETS, MR_ERRORS],
            },
        );
        if stats.map_resolver {
            render(
                &mut text,
                &Section {
                    title: "Map-Resolver:",
                    counters: &m,
                    packets: MR_PACKETS,
                    errors: MR_ERRORS,
                    extra_errors: &[(
                        "Map-Requests refused, over the rate limit",
                        stats.map_requests_rate_limited,
                    )],
                    rest: false,
                    elsewhere: &[],
                },
            );
        }
    }
    if let Some(x) = &stats.xtr {
        any = true;
        render(
            &mut text,
            &Section {
                title: "xTR:",
                counters: &fields(x),
                packets: XTR_PACKETS,
                errors: XTR_ERRORS,
                extra_errors: &[],
                rest: true,
                elsewhere: &[],
            },
        );
    }
    type Role<'a> = (&'a str, Option<Map<String, Value>>, Layout, Layout);
    let reliable: [Role<'_>; 3] = [
        (
            "Reliable registration (TCP 4342), ETR side:",
            stats.etr_sessions.as_ref().map(fields),
            ETR_PACKETS,
            ETR_ERRORS,
        ),
        (
            "Reliable registration (TCP 4342), Map-Server side:",
            stats.ms_sessions.as_ref().map(fields),
            MSS_PACKETS,
            MSS_ERRORS,
        ),
        (
            "Reliable registration TCP endpoint:",
            stats.tcp.as_ref().map(fields),
            TCP_PACKETS,
            TCP_ERRORS,
        ),
    ];
    for (title, counters, packets, errors) in &reliable {
        let Some(counters) = counters else { continue };
        any = true;
        render(
            &mut text,
            &Section {
                title,
                counters,
                packets,
                errors,
                extra_errors: &[],
                rest: true,
                elsewhere: &[],
            },
        );
    }
    if !any {
        text.push_str("LISP is not running (no map-server, map-resolver or xTR configured).\n");
    }
    let obj = |m: Option<Map<String, Value>>| m.map(Value::Object).unwrap_or(Value::Null);
    let mut resolver = Map::new();
    if stats.map_resolver {
        let m = stats.map_server.as_ref().map(fields).unwrap_or(none);
        for (field, _) in MR_PACKETS.iter().chain(MR_ERRORS) {
            if let Some(v) = m.get(*field) {
                resolver.insert((*field).into(), v.clone());
            }
        }
        resolver.insert(
            "requests_rate_limited".into(),
            json!(stats.map_requests_rate_limited),
        );
    }
    let json = json!({
        "instance_id": 0,
        "map_server": obj(stats.map_server.as_ref().map(fields)),
        "map_resolver": if stats.map_resolver { Value::Object(resolver) } else { Value::Null },
        "xtr": obj(stats.xtr.as_ref().map(fields)),
        "reliable": {
            "etr": obj(stats.etr_sessions.as_ref().map(fields)),
            "map_server": obj(stats.ms_sessions.as_ref().map(fields)),
            "tcp": obj(stats.tcp.as_ref().map(fields)),
        },
    });
    super::ShowOutput { text, json }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> LispStatistics {
        LispStatistics {
            map_server: Some(map_server::Counters {
                registers_accepted: 7,
                refused_authentication: 3,
                refused_site_limit: 8,
                requests_refused: 2,
                ..Default::default()
            }),
            map_resolver: true,
            map_requests_rate_limited: 11,
            xtr: Some(xtr::Counters {
                registers_sent: 5,
                map_notifies_refused: 4,
                ..Default::default()
            }),
            etr_sessions: Some(EtrCounters {
                nacks: 1,
                ..Default::default()
            }),
            ms_sessions: Some(MsCounters {
                refused_full: 6,
                ..Default::default()
            }),
            tcp: Some(EndpointCounters::default()),
        }
    }

    fn value_of(text: &str, label: &str) -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{label}:")))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string)
    }

    #[test]
    fn grouped_sections_one_line_per_counter() {
        let out = show(&all());
        let t = &out.text;
        for title in [
            "Map-Server:",
            "Map-Resolver:",
            "xTR:",
            "Reliable registration (TCP 4342), ETR side:",
            "Reliable registration (TCP 4342), Map-Server side:",
        ] {
            assert!(t.lines().any(|l| l == title), "{title} missing:\n{t}");
        }
        assert_eq!(
            value_of(t, "Map-Registers in, accepted").as_deref(),
            Some("7")
        );
        assert_eq!(
            value_of(t, "Map-Registers refused, authentication failure").as_deref(),
            Some("3")
        );
        assert_eq!(
            value_of(t, "Map-Requests refused, over the rate limit").as_deref(),
            Some("11")
        );
        assert_eq!(value_of(t, "Map-Notify in, refused").as_deref(), Some("4"));
        assert_eq!(
            value_of(t, "Map-Registers refused, site registration limit").as_deref(),
            Some("8")
        );
        assert_eq!(
            value_of(t, "Sessions refused, too many").as_deref(),
            Some("6")
        );
        // The Map-Resolver's counters are not repeated under the Map-Server.
        assert_eq!(t.matches("Negative Map-Replies out:").count(), 1);
    }

    /// Every counter of every structure is printed: a counter added later (say a new refusal
    /// of the Map-Server) cannot be missing from the command.
    #[test]
    fn every_counter_has_a_line() {
        let stats = all();
        let out = show(&stats);
        let lines = out.text.lines().filter(|l| l.starts_with("    ")).count();
        let count = |v: &Value| v.as_object().map_or(0, |m| m.len());
        let j = &out.json;
        // Map-Server + Map-Resolver fields are one structure; the rate limit is one more line.
        let expected = count(&j["map_server"])
            + 1
            + count(&j["xtr"])
            + count(&j["reliable"]["etr"])
            + count(&j["reliable"]["map_server"])
            + count(&j["reliable"]["tcp"]);
        assert_eq!(lines, expected, "{}", out.text);
        assert_eq!(j["map_resolver"]["requests_rate_limited"], 11);
        assert_eq!(j["map_server"]["refused_authentication"], 3);
    }

    #[test]
    fn unnamed_counters_are_labelled_and_refusals_go_to_errors() {
        let mut m = Map::new();
        m.insert("registers_accepted".into(), json!(1));
        m.insert("refused_over_quota".into(), json!(9));
        m.insert("something_new".into(), json!(2));
        let mut text = String::new();
        render(
            &mut text,
            &Section {
                title: "Map-Server:",
                counters: &m,
                packets: MS_PACKETS,
                errors: MS_ERRORS,
                extra_errors: &[],
                rest: true,
                elsewhere: &[],
            },
        );
        let errors_at = text.find("  Errors:").unwrap();
        let limit_at = text.find("Refused over quota:").unwrap();
        let new_at = text.find("Something new:").unwrap();
        assert!(limit_at > errors_at && new_at < errors_at, "{text}");
    }

    #[test]
    fn nothing_running() {
        let out = show(&LispStatistics::default());
        assert!(out.text.contains("LISP is not running"));
        assert_eq!(out.json["xtr"], Value::Null);
    }
}
