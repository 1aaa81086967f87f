//! `roamer cli` in a real terminal (tmux): TAB completion, `?` help that keeps the line,
//! history, prompts that follow the mode, and pasted blocks applied line by line (or stopped
//! at the first failed line).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, fixture};

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let name = format!(
            "roamer-cli-test-{}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "160",
                "-y",
                "50",
                command,
            ])
            .status()
            .expect("tmux (installed by scripts/test.sh)")
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { name }
    }

    fn literal(&self, text: &str) {
        assert!(
            Command::new("tmux")
                .args(["send-keys", "-t", &self.name, "-l", text])
                .status()
                .expect("tmux")
                .success()
        );
    }

    fn key(&self, key: &str) {
        assert!(
            Command::new("tmux")
                .args(["send-keys", "-t", &self.name, key])
                .status()
                .expect("tmux")
                .success()
        );
    }

    /// Pastes `text` as a terminal does (newlines sent as CR), `bracketed` when the
    /// application asked for bracketed paste (`paste-buffer -p`).
    fn paste(&self, text: &str, bracketed: bool) {
        let buffer = format!("{}-buf", self.name);
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write paste");
        let loaded = Command::new("tmux")
            .args(["load-buffer", "-b", &buffer])
            .arg(file.path())
            .status()
            .expect("tmux")
            .success();
        assert!(loaded, "tmux load-buffer failed");
        let mut args = vec!["paste-buffer", "-d", "-b", &buffer, "-t", &self.name];
        if bracketed {
            args.push("-p");
        }
        assert!(
            Command::new("tmux")
                .args(&args)
                .status()
                .expect("tmux")
                .success(),
            "tmux paste-buffer failed"
        );
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-t", &self.name, "-p"])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen's last non-empty line satisfies `pred`.
    fn wait_last_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_screen(what, |screen| {
            pred(
                screen
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or(""),
            )
        })
    }

    /// Waits until the screen satisfies `pred`.
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn tab_question_mark_history_and_prompts() {
    let d = Daemon::start(LAB1, "startup-config");
    let t = cli_in_tmux(&d, "lab1");

    t.literal("conf");
    t.key("Tab");
    t.wait_last_line("completion of conf", |l| l.trim_end() == "lab1# configure");
    t.literal("t");
    t.key("Enter");
    t.wait_last_line("config prompt", |l| l.trim_end() == "lab1(config)#");

    t.literal("feature ?");
    // The line alone is on the screen before `?` is read too: wait for the help above it.
    t.wait_screen("line kept after help", |s| {
        s.contains("interface-vlan")
            && s.contains("hsrp")
            && s.trim_end().ends_with("lab1(config)# feature")
    });
    t.literal(" lisp");
    t.key("Enter");
    t.literal("lisp dynamic-eid Roamer-1");
    t.key("Enter");
    t.wait_last_line("dynamic-eid prompt", |l| {
        l.trim_end() == "lab1(config-lisp-dynamic-eid)#"
    });
    t.literal("end");
    t.key("Enter");
    t.wait_last_line("back to exec", |l| l.trim_end() == "lab1#");
    t.key("Up");
    t.wait_last_line("history recalls the last command", |l| {
        l.trim_end() == "lab1# end"
    });
}

/// The seeds' configuration blocks, each from exec mode to exec mode.
fn seed_blocks() -> String {
    let mut text = String::new();
    for name in common::SEED_BLOCKS {
        text.push_str("configure terminal\n");
        text.push_str(&fixture(&format!("seeds/{name}")));
        text.push_str("end\n");
    }
    text
}

/// `roamer cli` on `d` in tmux, at the exec prompt of `hostname`.
fn cli_in_tmux(d: &Daemon, hostname: &str) -> Tmux {
    let t = Tmux::start(&format!(
        "{} cli --socket {}",
        env!("CARGO_BIN_EXE_roamer"),
        d.socket.display()
    ));
    let prompt = format!("{hostname}#");
    t.wait_last_line("exec prompt", |l| l.trim_end() == prompt);
    t
}

const LAB1: &str = "roamer platform backend sim\nhostname lab1\n";

fn paste_seed_blocks(bracketed: bool) {
    // The same text through a pipe (line by line) gives the reference configuration.
    let reference = Daemon::start(LAB1, "startup-config");
    let piped = reference.cli(&seed_blocks());
    assert!(
        piped.stderr.lines().all(|l| l.contains("warning:")),
        "{}",
        piped.stderr
    );
    let expected = reference.exec("show running-config").stdout;
    assert!(expected.contains("ip 10.3.3.1"), "{expected}");

    let d = Daemon::start(LAB1, "startup-config");
    let t = cli_in_tmux(&d, "lab1");
    t.paste(&seed_blocks(), bracketed);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if d.exec("show running-config").stdout == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pasted configuration was not applied in full; screen:\n{}\nrunning:\n{}",
            t.screen(),
            d.exec("show running-config").stdout
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let screen = t.wait_last_line("exec prompt after the paste", |l| l.trim_end() == "lab1#");
    assert!(!screen.contains("% failed"), "{screen}");
}

#[test]
fn pasted_seed_blocks_apply_every_line() {
    paste_seed_blocks(false);
}

#[test]
fn bracketed_paste_of_seed_blocks_applies_every_line() {
    paste_seed_blocks(true);
}

fn paste_stops_at_the_failed_line(bracketed: bool) {
    let d = Daemon::start(LAB1, "startup-config");
    let t = cli_in_tmux(&d, "lab1");
    t.paste(
        "configure terminal\nhostname pasted1\nfeature interface-vlan\nbogus-command 7\nhostname pasted2\nfeature hsrp\nend\n",
        bracketed,
    );
    let screen = t.wait_screen("the last line skipped", |s| {
        s.contains("% not applied: end\npasted1(config)#")
    });
    assert!(screen.contains("% failed: bogus-command 7"), "{screen}");
    assert!(
        screen.contains("% not applied: hostname pasted2"),
        "{screen}"
    );
    assert!(screen.contains("% not applied: feature hsrp"), "{screen}");
    let running = d.exec("show running-config").stdout;
    assert!(running.contains("hostname pasted1"), "{running}");
    assert!(running.contains("feature interface-vlan"), "{running}");
    assert!(!running.contains("pasted2"), "{running}");
    assert!(!running.contains("feature hsrp"), "{running}");
    // What is typed afterwards, at a person's pace (slower than the CLI's 200 ms type-ahead
    // window), runs again.
    std::thread::sleep(Duration::from_millis(500));
    t.literal("end");
    t.key("Enter");
    t.wait_last_line("exec prompt", |l| l.trim_end() == "pasted1#");
}

#[test]
fn a_paste_stops_at_the_first_failed_line() {
    paste_stops_at_the_failed_line(false);
}

#[test]
fn a_bracketed_paste_stops_at_the_first_failed_line() {
    paste_stops_at_the_failed_line(true);
}

#[test]
fn a_bracketed_paste_takes_question_marks_and_tabs_as_text() {
    let d = Daemon::start(LAB1, "startup-config");
    let t = cli_in_tmux(&d, "lab1");
    t.paste(
        "configure terminal\nvlan 20\n  name what?now\nvlan\t30\nend\n",
        true,
    );
    let screen = t.wait_screen("the paste's last line", |s| s.contains("# end\nlab1#"));
    assert!(!screen.contains('%'), "{screen}");
    let running = d.exec("show running-config").stdout;
    assert!(running.contains("  name what?now"), "{running}");
    assert!(running.contains("vlan 30"), "{running}");
}

/// A `lisp site` typed line by line: its key comes after its first line, so the block is
/// checked when it ends, as on NX-OS (issue 15, item 7); an incomplete one is refused then,
/// naming the command, and applies nothing.
#[test]
fn a_lisp_site_is_created_interactively() {
    let d = Daemon::start(
        "roamer platform backend sim\nhostname ms\nfeature lisp\nip lisp map-server\n",
        "startup-config",
    );
    let t = cli_in_tmux(&d, "ms");
    let enter = |line: &str, prompt: &str| {
        t.literal(line);
        t.key("Enter");
        t.wait_last_line(prompt, |l| l.trim_end() == prompt)
    };
    enter("configure terminal", "ms(config)#");
    let screen = enter("lisp site dc", "ms(config-lisp-site)#");
    assert!(
        !screen.contains("% "),
        "no error before the key can be typed:\n{screen}"
    );
    enter(
        "eid-prefix 10.1.1.0/24 accept-more-specifics",
        "ms(config-lisp-site)#",
    );
    enter("authentication-key roamer-key", "ms(config-lisp-site)#");
    enter("exit", "ms(config)#");
    enter("lisp site nokey", "ms(config-lisp-site)#");
    enter("eid-prefix 10.3.3.0/24", "ms(config-lisp-site)#");
    let screen = enter("exit", "ms(config)#");
    assert!(
        screen.contains("% 'lisp site nokey': lisp site nokey needs an authentication-key"),
        "{screen}"
    );
    let run = d.exec("show running-config").stdout;
    assert!(
        run.contains("lisp site dc\n  eid-prefix 10.1.1.0/24 accept-more-specifics\n"),
        "{run}"
    );
    assert!(!run.contains("nokey") && !run.contains("10.3.3.0"), "{run}");
}
