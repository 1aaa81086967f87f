//! Seed 003, reliable registration: an xTR registers to a new map-server (reliable transport)
//! and to an old one (configured without it). After the UDP Map-Register is acknowledged the
//! xTR opens TCP 4342 to each: the new one accepts, asks for a refresh and acknowledges the
//! registrations sent over the session (`yes#`, session Up); the old one refuses and the xTR
//! stays on UDP there (session Down, `never`). A map-server restart breaks the session: the
//! xTR falls back to UDP and re-establishes it.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Daemon;
use common::lisp_config::{self as lisp, KEY};
use roamer_test_support::{self as support, Capture};

fn ms_config(p: &str, n: u8, reliable: bool) -> String {
    let old = if reliable {
        ""
    } else {
        "roamer lisp reliable-registration disable\n"
    };
    let underlay = format!("ip address 192.0.2.{n}/24");
    lisp::map_server(&format!("ms{n}"), &format!("{p}u{n}"), &[&underlay], "ip")
        + old
        + &lisp::sites(&[("A", &["10.10.10.0/24", "172.16.0.0/24"])])
}

fn xtr_config(p: &str) -> String {
    lisp::node("xtr1", &[], &format!("{p}u1"), &["ip address 192.0.2.1/24"])
        + &format!(
            "ip lisp itr-etr\n\
             ip lisp etr map-server 192.0.2.100 key {KEY}\n\
             ip lisp etr map-server 192.0.2.101 key {KEY}\n\
             ip lisp database-mapping 10.10.10.0/24 192.0.2.1 priority 1 weight 100\n\
             ip lisp database-mapping 172.16.0.0/24 192.0.2.1 priority 1 weight 100\n"
        )
}

fn session_line<'a>(text: &'a str, peer: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(peer))
        .unwrap_or_default()
}

/// The map-server `ms`'s `show lisp site` once both sites are registered there, each row
/// marked `mark` (`yes#`: over the reliable transport; ` yes `: over UDP), within `secs`.
fn both_registered(ms: &Daemon, mark: &str, what: &str, secs: u64) -> String {
    ms.wait_show(what, secs, "show lisp site", |s| {
        s.matches(mark).count() == 2
    })
}

#[test]
fn reliable_registration_with_a_new_map_server_and_udp_with_an_old_one() {
    let p = support::unique_prefix();
    let [core, x_ns, new_ns, old_ns] = common::namespaces(&p, ["k", "x", "n", "o"]);
    let links = common::bridged_underlay(
        &core,
        &p,
        &[("1", &x_ns), ("100", &new_ns), ("101", &old_ns)],
    );
    let capture = Capture::start(
        &core,
        &format!("{p}k100"),
        "tcp port 4342 and tcp[tcpflags] & tcp-push != 0",
        6,
        &["ip.src", "ip.dst", "frame.protocols", "_ws.malformed"],
        Duration::from_secs(40),
    )
    .expect("tshark on the new map-server's link");

    let new_ms = Daemon::start_in_netns(&ms_config(&p, 100, true), new_ns.name());
    let old_ms = Daemon::start_in_netns(&ms_config(&p, 101, false), old_ns.name());
    let xtr = Daemon::start_in_netns(&xtr_config(&p), x_ns.name());

    let new_up_old_down = |s: &str| {
        session_line(s, "192.0.2.100").contains(" Up ")
            && session_line(s, "192.0.2.101").contains("Down")
    };
    let what = "session Up to the new map-server";
    let sessions = xtr.wait_show(what, 20, "show lisp session", new_up_old_down);
    assert!(
        sessions.starts_with("Sessions for VRF default, total: 2, established: 1\n"),
        "{sessions}"
    );
    assert!(
        session_line(&sessions, "192.0.2.101").contains("never"),
        "{sessions}"
    );
    let site = both_registered(&new_ms, "yes#", "registrations over the session", 10);
    assert!(
        site.contains("# = Some registrations are sourced by reliable transport"),
        "{site}"
    );
    let ms_sessions = new_ms.exec("show lisp session").stdout;
    assert!(
        session_line(&ms_sessions, "192.0.2.1").contains(" Up "),
        "{ms_sessions}"
    );
    let old_site = both_registered(&old_ms, " yes ", "UDP registrations at the old one", 10);
    assert!(!old_site.contains('#'), "{old_site}");

    // The session's messages on the wire: decoded as LISP reliable transport, not malformed.
    let wire = capture.wire_until_quiet(Duration::from_secs(2));
    wire.assert_any("no LISP reliable transport message decoded", |l| {
        l.contains("lisp-tcp")
    });
    wire.assert_clean(&[3]);

    // The new map-server restarts: the session breaks, the xTR registers over UDP again and
    // re-establishes the session.
    drop(new_ms);
    let new_ms = Daemon::start_in_netns(&ms_config(&p, 100, true), new_ns.name());
    both_registered(
        &new_ms,
        "yes#",
        "registrations again, over a new session",
        60,
    );
    let sessions = xtr.exec("show lisp session").stdout;
    assert!(
        session_line(&sessions, "192.0.2.100").contains(" Up "),
        "{sessions}"
    );
    drop((new_ms, old_ms, xtr));
    drop(links);
}
