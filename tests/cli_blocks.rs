//! Configuration blocks in a session (issue 15, item 7): a `lisp site` can be created line by
//! line — its key is typed inside the sub-mode — and is validated when the block ends, each
//! error naming the command it comes from; an invalid block applies nothing.

mod common;

use common::Daemon;

const MS: &str = "roamer platform backend sim\nhostname ms\nfeature lisp\nip lisp map-server\n";

#[test]
fn a_site_is_created_line_by_line_and_checked_when_its_block_ends() {
    let d = Daemon::start(MS, "startup-config");
    let out = d.exec(
        "configure terminal; lisp site dc; eid-prefix 10.1.1.0/24; authentication-key k1; exit; \
         lisp site bad; eid-prefix 10.2.2.0/24; exit; \
         lisp site dup; authentication-key k2; eid-prefix 10.1.1.0/24; end",
    );
    assert_eq!(out.code, 1, "two blocks fail: {}{}", out.stdout, out.stderr);
    // The site without a key: refused when its block ended, naming the line that created it.
    assert!(
        out.stderr.contains(
            "% lisp site bad: not valid when its block ended, not applied:\n\
             % 'lisp site bad': lisp site bad needs an authentication-key\n"
        ),
        "{}",
        out.stderr
    );
    // One prefix in two sites: the command that added it the second time.
    assert!(
        out.stderr.contains(
            "% 'eid-prefix 10.1.1.0/24': eid-prefix 10.1.1.0/24 of lisp site dup is already configured in lisp site dc"
        ),
        "{}",
        out.stderr
    );
    let run = d.exec("show running-config").stdout;
    assert!(
        run.contains("lisp site dc\n  eid-prefix 10.1.1.0/24\n"),
        "{run}"
    );
    assert!(
        !run.contains("lisp site bad") && !run.contains("10.2.2.0"),
        "{run}"
    );
    // `dup` was valid (with its key) before the refused prefix: that part stays.
    assert!(run.contains("lisp site dup"), "{run}");
    assert_eq!(run.matches("eid-prefix 10.1.1.0/24").count(), 1, "{run}");
}

#[test]
fn a_command_of_another_mode_ends_the_block_and_still_runs() {
    let d = Daemon::start(MS, "startup-config");
    // `hostname` belongs to configuration mode: it ends the site's block (valid by then) and
    // runs on the new configuration.
    let out = d.cli(
        "configure terminal\nlisp site dc\neid-prefix 10.1.1.0/24\nauthentication-key k1\n\
         hostname ms2\nend\nshow running-config | include site\n",
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert!(out.stdout.contains("lisp site dc"), "{}", out.stdout);
    assert!(
        d.exec("show running-config")
            .stdout
            .contains("hostname ms2")
    );

    // An invalid block ended by such a command: neither is applied, and the session is back
    // in configuration mode.
    let out = d.cli(
        "configure terminal\nlisp site nokey\neid-prefix 10.5.5.0/24\nhostname ms3\n\
         hostname ms4\nend\n",
    );
    assert!(
        out.stderr
            .contains("'lisp site nokey': lisp site nokey needs an authentication-key")
            && out.stderr.contains("% 'hostname ms3' not applied either"),
        "{}",
        out.stderr
    );
    let run = d.exec("show running-config").stdout;
    assert!(!run.contains("nokey") && !run.contains("ms3"), "{run}");
    assert!(run.contains("hostname ms4"), "{run}");
}

#[test]
fn errors_outside_block_modes_are_still_immediate() {
    let d = Daemon::start(MS, "startup-config");
    // An unknown word in the site's sub-mode is refused at once.
    let out = d.exec("configure terminal; lisp site dc; frobnicate; authentication-key k; exit");
    out.assert_refused("frobnicate");
    assert!(
        d.exec("show running-config")
            .stdout
            .contains("lisp site dc")
    );
}

/// A session of the control socket spoken directly (one JSON request and answer per line).
struct Raw {
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Raw {
    fn open(d: &Daemon) -> Raw {
        let writer = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
        writer
            .set_read_timeout(Some(common::TIMEOUT))
            .expect("timeout");
        let reader = std::io::BufReader::new(writer.try_clone().expect("clone"));
        Raw { reader, writer }
    }

    fn line(&mut self, line: &str) -> serde_json::Value {
        use std::io::{BufRead, Write};
        let req = serde_json::json!({ "op": "line", "line": line });
        writeln!(self.writer, "{req}").expect("send");
        let mut answer = String::new();
        self.reader.read_line(&mut answer).expect("answer");
        serde_json::from_str(&answer).expect("json answer")
    }
}

#[test]
fn a_block_does_not_undo_what_another_session_committed_meanwhile() {
    let d = Daemon::start(MS, "startup-config");
    let mut a = Raw::open(&d);
    for l in [
        "configure terminal",
        "lisp site dc",
        "eid-prefix 10.1.1.0/24",
    ] {
        let r = a.line(l);
        assert_eq!(r["ok"], true, "{l}: {r}");
    }
    assert_eq!(
        a.line("show running-config")["output"]
            .as_str()
            .map(|o| o.contains("lisp site dc")),
        Some(false)
    );
    // Meanwhile another session changes the host name.
    let b = d.exec("configure terminal; hostname other");
    assert_eq!(b.code, 0, "{}", b.stderr);
    // The block becomes valid: it is applied on top of that change.
    let r = a.line("authentication-key k1");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["prompt"], "other(config-lisp-site)#");
    let both = ["hostname other", "lisp site dc\n  eid-prefix 10.1.1.0/24\n"];
    d.assert_shows("show running-config", &both);
}

/// A `roamer exec` batch that stops inside an incomplete block is ended for it (an implicit
/// `end`): the block is refused to the caller, exit status 1, not dropped in silence.
#[test]
fn an_exec_batch_ending_inside_an_incomplete_block_is_refused_to_its_caller() {
    let d = Daemon::start(MS, "startup-config");
    let out = d.exec("configure terminal; lisp site half; eid-prefix 10.5.5.0/24");
    out.assert_refused("% 'lisp site half': lisp site half needs an authentication-key");
    let run = d.exec("show running-config").stdout;
    assert!(!run.contains("lisp site half"), "{run}");
    // A complete batch left in configuration mode is ended quietly.
    let ok = d.exec("configure terminal; hostname ms3");
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        d.exec("show running-config")
            .stdout
            .contains("hostname ms3")
    );
}

/// `exit` outside configuration mode ends the CLI session, as on NX-OS (the VM image's console
/// login returns to its login prompt); inside configuration mode it leaves the mode.
#[test]
fn exit_at_the_exec_prompt_ends_the_session() {
    let d = Daemon::start(
        "roamer platform backend sim\nhostname ex\n",
        "startup-config",
    );
    let out = d.cli("configure terminal\nexit\nshow version\nexit\nshow version\n");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The `exit` in configuration mode left the mode; the one at the exec prompt ended the
    // session: the `show version` after it was not run.
    assert_eq!(
        out.stdout.matches("Device name: ex").count(),
        1,
        "{}",
        out.stdout
    );
}
