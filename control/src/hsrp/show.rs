//! `show hsrp brief` and `show hsrp` in the NX-OS layout (protocols.md §10.7), with NX-OS-style
//! JSON (`TABLE_grp_detail` / `ROW_grp_detail`, `sh_*` keys, every value a string).
//!
//! Choices where NX-OS is not documented here: `ROW_grp_detail` is always an array (NX-OS makes
//! a single row an object); keys are never printed — default text authentication shows as
//! `"cisco"` as NX-OS does, any other text or MD5 key as hidden; the ignored-packet counters
//! (authentication failures, malformed frames) are a roamer line at the end of each `show hsrp`
//! group and `sh_auth_failures` / `sh_malformed_pkts` in JSON; the cause of the last state
//! change (which NX-OS only logs) is a roamer line under "last state change" and
//! `sh_last_state_change_{from,reason,cause,peer}` in JSON. Rows are sorted by VLAN, then
//! group.

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::{AuthSummary, GroupStatus, State};
use crate::show::{ShowOutput, age};

/// The state as NX-OS prints it.
fn state_name(s: &GroupStatus) -> String {
    match (s.state, s.disabled_reason) {
        (State::Disabled, Some(reason)) => format!("Disabled({reason})"),
        (State::Disabled, None) => "Disabled".into(),
        (State::Initial, _) => "Initial".into(),
        (State::Learn, _) => "Learn".into(),
        (State::Listen, _) => "Listen".into(),
        (State::Speak, _) => "Speak".into(),
        (State::Standby, _) => "Standby".into(),
        (State::Active, _) => "Active".into(),
    }
}

/// `local`, the address, or `unknown`.
fn router(addr: Option<Ipv4Addr>, local: Ipv4Addr) -> String {
    match addr {
        Some(a) if a == local => "local".into(),
        Some(a) => a.to_string(),
        None => "unknown".into(),
    }
}

/// A value padded to `width`, always followed by at least one space.
fn col(out: &mut String, value: &str, width: usize) {
    out.push_str(value);
    let pad = width.saturating_sub(value.len()).max(1);
    out.extend(std::iter::repeat_n(' ', pad));
}

/// Seconds with six decimals, as NX-OS prints remaining times (`1.234000`).
fn secs6(ms: u64) -> String {
    format!("{}.{:03}000", ms / 1000, ms % 1000)
}

/// `3 sec` or `250 msec`.
fn timer(ms: u32) -> (String, &'static str) {
    if ms.is_multiple_of(1000) {
        ((ms / 1000).to_string(), "sec")
    } else {
        (ms.to_string(), "msec")
    }
}

fn sorted(groups: &[GroupStatus]) -> Vec<&GroupStatus> {
    let mut v: Vec<&GroupStatus> = groups.iter().collect();
    v.sort_by_key(|g| (g.vlan, g.group));
    v
}

fn version_name(s: &GroupStatus) -> &'static str {
    if s.version == 2 { "v2" } else { "v1" }
}

fn table(rows: Vec<Value>) -> Value {
    json!({ "TABLE_grp_detail": { "ROW_grp_detail": rows } })
}

/// The JSON keys both views share.
fn common_row(s: &GroupStatus) -> Map<String, Value> {
    let addr = |a: Option<Ipv4Addr>| a.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string();
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.into(), Value::String(v));
    };
    put("sh_if_index", s.interface());
    put("sh_group_num", s.group.to_string());
    put("sh_group_type", "v4".into());
    put("sh_group_version", version_name(s).into());
    put("sh_group_state", state_name(s));
    put("sh_prio", s.priority.to_string());
    put(
        "sh_preempt",
        if s.preempt.is_some() {
            "enabled"
        } else {
            "disabled"
        }
        .into(),
    );
    put("sh_active_router_addr", addr(s.active));
    put("sh_standby_router_addr", addr(s.standby));
    put("sh_vip", addr(s.vip));
    put(
        "sh_vip_attr",
        match (s.vip, s.vip_learnt) {
            (None, _) => "",
            (Some(_), true) => "(Learnt)",
            (Some(_), false) => "(Cfged)",
        }
        .into(),
    );
    m
}

/// `show hsrp brief`.
pub fn brief(groups: &[GroupStatus]) -> ShowOutput {
    let mut text = String::from(
        "*:IPv6 group   #:group belongs to a bundle\n\
         \x20                    P indicates configured to preempt.\n\
         \x20                    |\n\
         \x20Interface   Grp  Prio P State    Active addr      Standby addr     Group addr\n",
    );
    let mut rows = Vec::new();
    for s in sorted(groups) {
        text.push_str("  ");
        col(&mut text, &s.interface(), 11);
        col(&mut text, &s.group.to_string(), 5);
        col(&mut text, &s.priority.to_string(), 5);
        col(&mut text, if s.preempt.is_some() { "P" } else { "" }, 2);
        col(&mut text, &state_name(s), 9);
        col(&mut text, &router(s.active, s.local_ip), 17);
        col(&mut text, &router(s.standby, s.local_ip), 17);
        match s.vip {
            Some(v) => {
                col(&mut text, &v.to_string(), 16);
                text.push_str(if s.vip_learnt { "(learnt)" } else { "(conf)" });
            }
            None => text.push_str("unknown"),
        }
        text.push('\n');
        rows.push(Value::Object(common_row(s)));
    }
    ShowOutput {
        text,
        json: table(rows),
    }
}

/// `show hsrp` (= `show hsrp detail`).
pub fn detail(groups: &[GroupStatus]) -> ShowOutput {
    let mut text = String::new();
    let mut rows = Vec::new();
    for (i, s) in sorted(groups).into_iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let name = s.interface();
        let (hello, hello_unit) = timer(s.hello_ms);
        let (hold, hold_unit) = timer(s.hold_ms);
        text.push_str(&format!(
            "{name} - Group {} (HSRP-V{}) (IPv4)\n",
            s.group, s.version
        ));
        text.push_str(&format!(
            "  Local state is {}, priority {} (Cfged {}){}\n",
            state_name(s),
            s.priority,
            s.priority,
            if s.preempt.is_some() {
                ", may preempt"
            } else {
                ""
            }
        ));
        text.push_str(&format!(
            "    Forwarding threshold(for vPC), lower: 1 upper: {}\n",
            s.priority
        ));
        if let Some(delay) = s.preempt.filter(|d| *d > 0) {
            text.push_str(&format!("  Preemption Delay (Seconds) Minimum:{delay}\n"));
        }
        text.push_str(&format!(
            "  Hellotime {hello} {hello_unit}, holdtime {hold} {hold_unit}\n"
        ));
        if let Some(ms) = s.next_hello_ms {
            text.push_str(&format!("  Next hello sent in {} sec(s)\n", secs6(ms)));
        }
        match s.vip {
            Some(v) => text.push_str(&format!(
                "  Virtual IP address is {v} ({})\n",
                if s.vip_learnt { "Learnt" } else { "Cfged" }
            )),
            None => text.push_str("  Virtual IP address is unknown\n"),
        }
        text.push_str(&peer_line(
            "Active router is",
            "",
            s.active,
            s.active_priority,
            s.active_expires_ms,
            s.local_ip,
        ));
        text.push_str(&peer_line(
            "Standby router is",
            " ",
            s.standby,
            s.standby_priority,
            s.standby_expires_ms,
            s.local_ip,
        ));
        text.push_str(match s.auth {
            AuthSummary::None => "  Authentication none\n",
            AuthSummary::Text { default: true } => "  Authentication text \"cisco\"\n",
            AuthSummary::Text { default: false } => "  Authentication text, key-string hidden\n",
            AuthSummary::Md5 => "  Authentication MD5, key-string hidden\n",
        });
        text.push_str(&format!(
            "  Virtual mac address is {} ({})\n",
            s.vmac,
            if s.vmac_default {
                "Default MAC"
            } else {
                "User Configured"
            }
        ));
        let since = s.now_ms.saturating_sub(s.last_change_ms) / 1000;
        text.push_str(&format!(
            "  {} state changes, last state change {}\n",
            s.state_changes,
            age(since)
        ));
        if let Some(c) = &s.last_change {
            text.push_str(&format!(
                "    Last state change {:?} -> {:?}: {}\n",
                c.from, c.to, c.cause
            ));
        }
        text.push_str(&format!(
            "  IP redundancy name is hsrp-{name}-{} (default)\n",
            s.group
        ));
        text.push_str(&format!(
            "  Packets ignored: {} authentication failure(s), {} malformed\n",
            s.auth_failures, s.malformed
        ));

        let mut m = common_row(s);
        let mut put = |k: &str, v: String| {
            m.insert(k.into(), Value::String(v));
        };
        put("sh_cfg_prio", s.priority.to_string());
        put("sh_fwd_lower_threshold", "1".into());
        put("sh_fwd_upper_threshold", s.priority.to_string());
        put("sh_preempt_delay_min", s.preempt.unwrap_or(0).to_string());
        put("sh_cur_hello", hello);
        put("sh_cur_hello_attr", hello_unit.into());
        put("sh_cur_hold", hold);
        put("sh_cur_hold_attr", hold_unit.into());
        if let Some(ms) = s.next_hello_ms {
            put("sh_nxt_hello", secs6(ms));
        }
        if let Some(p) = s.active_priority {
            put("sh_active_router_prio", p.to_string());
        }
        if let Some(ms) = s.active_expires_ms {
            put("sh_active_router_timer", secs6(ms));
        }
        if let Some(p) = s.standby_priority {
            put("sh_standby_router_prio", p.to_string());
        }
        if let Some(ms) = s.standby_expires_ms {
            put("sh_standby_router_timer", secs6(ms));
        }
        match s.auth {
            AuthSummary::None => put("sh_authentication_type", "none".into()),
            AuthSummary::Text { default } => {
                put("sh_authentication_type", "text".into());
                if default {
                    put("sh_authentication_data", "cisco".into());
                } else {
                    put("sh_keystring_attr", "hidden".into());
                }
            }
            AuthSummary::Md5 => {
                put("sh_authentication_type", "md5".into());
                put("sh_keystring_attr", "hidden".into());
            }
        }
        put("sh_vmac", s.vmac.to_string());
        put(
            "sh_vmac_attr",
            if s.vmac_default {
                "(Default MAC)"
            } else {
                "(User Configured)"
            }
            .into(),
        );
        put("sh_num_of_state_changes", s.state_changes.to_string());
        put("sh_last_state_change", since.to_string());
        if let Some(c) = &s.last_change {
            put("sh_last_state_change_from", format!("{:?}", c.from));
            put("sh_last_state_change_reason", c.cause.kind().into());
            put("sh_last_state_change_cause", c.cause.to_string());
            if let Some(peer) = c.cause.peer() {
                put("sh_last_state_change_peer", peer.to_string());
            }
        }
        put("sh_ip_redund_name", format!("hsrp-{name}-{}", s.group));
        put("sh_ip_redund_name_attr", "(default)".into());
        put("sh_auth_failures", s.auth_failures.to_string());
        put("sh_malformed_pkts", s.malformed.to_string());
        rows.push(Value::Object(m));
    }
    ShowOutput {
        text,
        json: table(rows),
    }
}

/// `  Active router is local` / `… is 10.1.10.2, priority 110 expires in 7.500000 sec(s)`.
fn peer_line(
    head: &str,
    comma_gap: &str,
    addr: Option<Ipv4Addr>,
    priority: Option<u8>,
    expires_ms: Option<u64>,
    local: Ipv4Addr,
) -> String {
    match addr {
        Some(a) if a == local => format!("  {head} local\n"),
        Some(a) => {
            let mut line = format!("  {head} {a}{comma_gap}");
            if let Some(p) = priority {
                line.push_str(&format!(", priority {p}"));
            }
            if let Some(ms) = expires_ms {
                line.push_str(&format!(" expires in {} sec(s)", secs6(ms)));
            }
            line.push('\n');
            line
        }
        None => format!("  {head} unknown\n"),
    }
}
