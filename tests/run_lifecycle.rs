//! `roamer run` logs a readiness line and stops cleanly on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EXAMPLE: &str = include_str!("../examples/n7k-dc1.toml");
const TIMEOUT: Duration = Duration::from_secs(20);

struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &str) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("startup.toml");
    std::fs::write(&path, config).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roamer");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Daemon {
        child,
        lines,
        _dir: dir,
    }
}

fn wait_for_line(d: &Daemon, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match d.lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(_) => panic!("no line containing {needle:?} within {TIMEOUT:?}"),
        }
    }
}

fn signal(d: &Daemon, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(d.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(d: &mut Daemon) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = d.child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "roamer did not stop within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ready_then_clean_stop_on_sigterm() {
    let mut d = start(EXAMPLE);
    let ready = wait_for_line(&d, "ready");
    assert!(
        ready.contains("hostname=n7k-dc1") || ready.contains("n7k-dc1"),
        "{ready}"
    );
    assert!(ready.contains("backend=sim"), "{ready}");
    signal(&d, "TERM");
    wait_for_line(&d, "SIGTERM");
    assert_eq!(wait_exit(&mut d), 0);
}

#[test]
fn clean_stop_on_sigint() {
    let mut d = start(EXAMPLE);
    wait_for_line(&d, "ready");
    signal(&d, "INT");
    assert_eq!(wait_exit(&mut d), 0);
}

#[test]
fn invalid_config_does_not_start() {
    let mut d = start(&EXAMPLE.replace("186.008", "186.007"));
    let line = wait_for_line(&d, "186.007");
    assert!(line.contains("startup.toml:"), "{line}");
    assert_eq!(wait_exit(&mut d), 2);
}

#[test]
fn unavailable_backend_is_a_clear_error() {
    let mut d = start(&EXAMPLE.replace("backend = \"sim\"", "backend = \"kernel\""));
    wait_for_line(&d, "kernel backend is not available");
    assert_eq!(wait_exit(&mut d), 2);
}
