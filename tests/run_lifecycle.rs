//! `roamer run` logs a readiness line and stops cleanly on SIGTERM and SIGINT.

mod common;

use common::Daemon;

const EXAMPLE: &str = include_str!("../examples/n7k-dc1.toml");

#[test]
fn ready_then_clean_stop_on_sigterm() {
    let mut d = Daemon::spawn(EXAMPLE, "startup.toml");
    let ready = d.wait_for_line("ready");
    assert!(ready.contains("n7k-dc1"), "{ready}");
    assert!(ready.contains("backend=sim"), "{ready}");
    d.signal("TERM");
    d.wait_for_line("SIGTERM");
    assert_eq!(d.wait_exit(), 0);
    assert!(!d.socket.exists(), "socket left behind");
}

#[test]
fn clean_stop_on_sigint() {
    let mut d = Daemon::start(EXAMPLE, "startup.toml");
    d.signal("INT");
    assert_eq!(d.wait_exit(), 0);
}

#[test]
fn invalid_config_does_not_start() {
    let mut d = Daemon::spawn(&EXAMPLE.replace("186.008", "186.007"), "startup.toml");
    let line = d.wait_for_line("186.007");
    assert!(line.contains("startup.toml:"), "{line}");
    assert_eq!(d.wait_exit(), 2);
}

#[test]
fn unavailable_backend_is_a_clear_error() {
    // The kernel backend over a TAP port, which it cannot take: refused before it touches the
    // kernel (this daemon runs in the test's own namespace).
    let mut d = Daemon::spawn(
        &EXAMPLE
            .replace("backend = \"sim\"", "backend = \"kernel\"")
            .replace(
                "[features]",
                "[platform.port]\n\"Ethernet1/1\" = \"tap:rmrnotap0\"\n[features]",
            ),
        "startup.toml",
    );
    d.wait_for_line("kernel backend is not available");
    assert_eq!(d.wait_exit(), 2);
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let first = Daemon::start(EXAMPLE, "startup.toml");
    let out = common::run(
        common::roamer()
            .arg("run")
            .arg("--config")
            .arg(&first.startup)
            .arg("--socket")
            .arg(&first.socket),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("another roamer is serving this socket"),
        "{}",
        out.stderr
    );
    assert_eq!(
        first.exec("show version").code,
        0,
        "the first daemon must keep serving"
    );
}
