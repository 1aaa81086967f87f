//! The control socket is the switch's console: 0600 whatever the umask, served only to root
//! and the daemon's own user (SO_PEERCRED), `% too many sessions` at once beyond the limit,
//! idle sessions closed; the startup file it saves is 0600.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Output, TIMEOUT};

const CONFIG: &str = "roamer platform backend sim\nhostname sock1\n";

/// Starts `roamer run` through `sh` so that it gets umask `umask` and the extra environment.
fn start(umask: &str, env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let startup = dir.path().join("startup-config");
    std::fs::write(&startup, CONFIG).expect("write startup");
    let socket = dir.path().join("roamer.sock");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "umask {umask} && exec \"$0\" run --config \"$1\" --socket \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_roamer"))
        .arg(&startup)
        .arg(&socket)
        .envs(env.iter().copied());
    let d = Daemon::spawn_command(&mut command, dir, startup, socket);
    d.wait_for_line("ready");
    d
}

/// Runs a command, killing it and failing if it does not finish within `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?} (hung)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn exec(d: &Daemon, commands: &str) -> Output {
    run_within(
        common::roamer()
            .arg("exec")
            .arg("--socket")
            .arg(&d.socket)
            .arg(commands),
        Duration::from_secs(5),
    )
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// An idle session that was admitted (it got an answer to one request).
fn idle_session(d: &Daemon) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.write_all(b"{\"op\":\"prompt\"}\n").expect("write");
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).expect("prompt answer");
    assert!(line.contains("sock1#"), "{line}");
    reader
}

#[test]
fn socket_and_saved_startup_file_are_0600_under_umask_000() {
    let d = start("000", &[]);
    assert_eq!(mode(&d.socket), 0o600, "socket mode");
    let out = exec(&d, "copy running-config startup-config");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mode(&d.startup), 0o600, "startup file mode");
    let saved = std::fs::read_to_string(&d.startup).expect("read");
    assert!(saved.contains("hostname sock1"), "{saved}");
}

#[test]
fn another_user_is_refused_even_when_the_socket_is_opened_up() {
    let setpriv = Command::new("setpriv").arg("--version").output();
    assert!(
        setpriv.is_ok_and(|o| o.status.success()),
        "this test needs setpriv (util-linux) and root"
    );
    let d = start("022", &[]);
    let as_nobody = || {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_roamer"))
            .arg("exec")
            .arg("--socket")
            .arg(&d.socket)
            .arg("configure terminal; hostname pwned; end");
        run_within(&mut c, Duration::from_secs(5))
    };
    // The socket's mode keeps other users out.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = as_nobody();
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    // With the socket opened up by mistake, the peer's credentials still keep them out.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = as_nobody();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("% permission denied"), "{}", out.stderr);
    let log = d.wait_for_line("peer not allowed");
    assert!(log.contains("uid=Some(65534)"), "{log}");
    assert!(log.contains("refused=1"), "{log}");
    let users = exec(&d, "show users").stdout;
    assert!(users.contains("Refused, permission denied: 1"), "{users}");
    let running = exec(&d, "show running-config").stdout;
    assert!(!running.contains("pwned"), "{running}");
    assert!(running.contains("hostname sock1"), "{running}");
}

#[test]
fn too_many_sessions_is_answered_at_once_and_slots_come_back() {
    let d = start("022", &[]);
    let sessions: Vec<_> = (0..16).map(|_| idle_session(&d)).collect();
    let started = Instant::now();
    let out = exec(&d, "show version");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("% too many sessions"), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    d.wait_for_line("too many sessions");
    drop(sessions);
    common::wait_for("a session slot after closing the others", TIMEOUT, || {
        (exec(&d, "show version").code == 0).then_some(())
    });
    // The refusal is counted where the operator sees it.
    let users = exec(&d, "show users | json").stdout;
    let v: serde_json::Value = serde_json::from_str(&users).expect("json");
    assert_eq!(v["refused_too_many"], 1, "{users}");
    assert_eq!(v["max"], 16, "{users}");
    let text = exec(&d, "show users").stdout;
    assert!(text.contains("Refused, too many sessions: 1"), "{text}");
}

#[test]
fn idle_sessions_time_out_and_free_their_slots() {
    let d = start("022", &[("ROAMER_SESSION_IDLE_SECS", "2")]);
    let mut sessions: Vec<_> = (0..16).map(|_| idle_session(&d)).collect();
    assert!(
        exec(&d, "show version")
            .stderr
            .contains("% too many sessions")
    );
    // Without closing anything, the idle sessions are closed and the slots come back.
    common::wait_for("a slot freed by the idle timeout", TIMEOUT, || {
        (exec(&d, "show version").code == 0).then_some(())
    });
    let mut line = String::new();
    sessions[0].read_line(&mut line).expect("read");
    assert!(line.contains("% session idle timeout"), "{line}");
    assert!(line.contains("\"closed\":true"), "{line}");
    line.clear();
    assert_eq!(sessions[0].read_line(&mut line).expect("read"), 0, "closed");
    d.wait_for_line("idle session closed");
}
