//! The operator's small gaps (issue 15, item 7): `| i`, an empty startup file, binary files,
//! temporaries left by an interrupted save, `roamer exec … | head`.

mod common;

use std::process::Stdio;

use common::{Daemon, roamer, run};

const SIM: &str = "roamer platform backend sim\nhostname gaps1\nfeature lisp\n";

#[test]
fn pipe_i_is_include() {
    let d = Daemon::start(SIM, "startup-config");
    for modifier in ["i", "inc", "include"] {
        let out = d.exec(&format!("show running-config | {modifier} hostname"));
        assert_eq!(out.code, 0, "| {modifier}: {}", out.stderr);
        assert_eq!(out.stdout, "hostname gaps1\n", "| {modifier}");
    }
}

#[test]
fn an_empty_startup_file_is_named_in_the_log_and_in_show_startup_config() {
    let d = Daemon::spawn("\n  \n", "startup-config");
    let warning = d.wait_for_line("empty startup configuration");
    assert!(
        warning.contains(&format!("{}:1:", d.startup.display())),
        "{warning}"
    );
    let ready = d.wait_for_line("ready");
    // Taken as an (empty) CLI configuration, not as TOML.
    assert!(ready.contains("config_syntax=Cli"), "{ready}");
    let shown = d.exec("show startup-config").stdout;
    assert!(
        shown.contains(&format!(
            "!{}: empty startup configuration",
            d.startup.display()
        )),
        "{shown}"
    );
    let out = d.exec("copy running-config startup-config");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let saved = std::fs::read_to_string(&d.startup).expect("read");
    assert!(saved.starts_with("hostname "), "saved as CLI: {saved}");
    let shown = d.exec("show startup-config").stdout;
    assert!(!shown.contains("empty startup configuration"), "{shown}");
}

#[test]
fn validate_warns_about_an_empty_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("empty.cfg");
    std::fs::write(&file, "! nothing here\n").expect("write");
    let out = run(roamer().arg("validate").arg(&file));
    assert!(
        out.stderr
            .contains(&format!("{}:1: warning: empty", file.display())),
        "{out:?}"
    );
}

#[test]
fn a_binary_startup_file_is_refused_with_its_first_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let startup = dir.path().join("startup-config");
    std::fs::write(
        &startup,
        b"hostname b1\nfeature lisp\nfe\x00ature\xff\xfe\n",
    )
    .expect("write");
    let mut d = Daemon::spawn_in(dir, startup.clone());
    let line = d.wait_for_line("binary data");
    assert!(
        line.starts_with(&format!("{}:3: ", startup.display())),
        "{line}"
    );
    assert_eq!(d.wait_exit(), 2);

    let out = run(roamer().arg("validate").arg(&startup));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("{}:3: ", startup.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn copying_a_binary_file_into_running_config_is_refused_with_its_line() {
    let d = Daemon::start(SIM, "startup-config");
    let file = d.path("blob.cfg");
    std::fs::write(&file, b"hostname ok\n\x89PNG\r\n\x1a\n").expect("write");
    let out = d.exec(&format!("copy {} running-config", file.display()));
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(&format!(
            "{}:2: not a text configuration file",
            file.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        d.exec("show running-config")
            .stdout
            .contains("hostname gaps1")
    );
}

#[test]
fn temporaries_left_by_an_interrupted_save_are_removed_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let startup = dir.path().join("startup-config");
    std::fs::write(&startup, SIM).expect("write");
    // pid_max is at most 2^22: no process has this pid.
    let stale = dir.path().join(".startup-config.tmp-4999999");
    let foreign = dir.path().join(".other-file.tmp-4999999");
    let own_name = dir.path().join("startup-config.tmp-4999999");
    for f in [&stale, &foreign, &own_name] {
        std::fs::write(f, "partial").expect("write");
    }
    let d = Daemon::spawn_in(dir, startup);
    let line = d.wait_for_line("left by an interrupted save");
    assert!(line.contains(".startup-config.tmp-4999999"), "{line}");
    d.wait_for_line("ready");
    assert!(!stale.exists(), "the stale temporary is still there");
    assert!(
        foreign.exists() && own_name.exists(),
        "only our own temporaries"
    );
}

#[test]
fn exec_into_a_closed_pipe_exits_quietly() {
    let d = Daemon::start(SIM, "startup-config");
    let mut child = roamer()
        .arg("exec")
        .arg("--socket")
        .arg(&d.socket)
        .args(std::iter::repeat_n("show running-config", 20))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader goes away before anything is written (as `| head` does after its lines).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_script_piped_into_roamer_cli_reports_its_failures_in_the_exit_status() {
    let d = Daemon::start(SIM, "startup-config");
    let out = d.cli("configure terminal\nbogus-command\nhostname script1\nend\n");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("1 command(s) failed"), "{}", out.stderr);
    // A script runs every line (like `roamer exec`); only a terminal stops at the failed one.
    assert!(
        d.exec("show running-config")
            .stdout
            .contains("hostname script1")
    );
    assert_eq!(d.cli("show version\n").code, 0);
}
