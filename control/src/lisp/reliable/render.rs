//! `show lisp session`.

use super::*;

// ---------------------------------------------------------------------------------------------
// show lisp session
// ---------------------------------------------------------------------------------------------

/// `text` left-aligned in `width` columns, always followed by at least one space.
pub(super) fn column(out: &mut String, text: &str, width: usize) {
    out.push_str(text);
    let pad = width.saturating_sub(text.chars().count()).max(1);
    out.extend(std::iter::repeat_n(' ', pad));
}

/// `show lisp session` in the layout of seed 003 (IOS): peers as addresses, `Up/Down` the time
/// since the last change (`hh:mm:ss` below a day, `never` when never established), `In/Out` the
/// messages received/sent, `Users` the EID-prefixes registered over the session.
pub fn render_sessions(rows: &[SessionRow], now_ms: u64) -> String {
    let established = rows.iter().filter(|r| r.state == SessionState::Up).count();
    let mut out = format!(
        "Sessions for VRF default, total: {}, established: {established}\n",
        rows.len()
    );
    out.push_str("Peer                State    Up/Down    In/Out    Users\n");
    for r in rows {
        let updown = r.since_ms.map_or_else(
            || "never".to_string(),
            |t| crate::show::age(now_ms.saturating_sub(t) / 1000),
        );
        column(&mut out, &r.peer.ip().to_string(), 19);
        column(&mut out, &r.state.to_string(), 9);
        column(&mut out, &updown, 11);
        column(
            &mut out,
            &format!("{}/{}", r.messages_in, r.messages_out),
            10,
        );
        out.push_str(&format!("{}\n", r.users));
    }
    // Map-servers that keep refusing: why, how often, and when the ETR tries again.
    for r in rows
        .iter()
        .filter(|r| r.failures > 0 && r.state == SessionState::Down)
    {
        let why = match r.last_down {
            Some(DownReason::ConnectTimeout) => "not answered",
            _ => "refused",
        };
        let count = if r.failures == 1 {
            "once".to_string()
        } else {
            format!("{} times in a row", r.failures)
        };
        let next = r.retry_in_ms.map_or_else(
            || "at the next acknowledged registration".to_string(),
            |ms| format!("in {}", crate::show::age(ms.div_ceil(1000))),
        );
        out.push_str(&format!(
            "  {}: {why} {count}, next try {next}\n",
            r.peer.ip()
        ));
    }
    out
}
