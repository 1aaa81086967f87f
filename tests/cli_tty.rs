//! `roamer cli` in a real terminal (tmux): TAB completion, `?` help that keeps the line,
//! history, and prompts that follow the mode.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Daemon;

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        // Tests of this file run in parallel in one process: the PID alone is not unique.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("roamer-cli-test-{}-{n}", std::process::id());
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

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-t", &self.name, "-p"])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen's last non-empty line satisfies `pred`.
    fn wait_last_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            let last = screen
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            if pred(&last) {
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
    let d = Daemon::start(
        "roamer platform backend sim\nhostname lab1\n",
        "startup-config",
    );
    let t = Tmux::start(&format!(
        "{} cli --socket {}",
        env!("CARGO_BIN_EXE_roamer"),
        d.socket.display()
    ));
    t.wait_last_line("exec prompt", |l| l.trim_end() == "lab1#");

    t.literal("conf");
    t.key("Tab");
    t.wait_last_line("completion of conf", |l| l.trim_end() == "lab1# configure");
    t.literal("t");
    t.key("Enter");
    t.wait_last_line("config prompt", |l| l.trim_end() == "lab1(config)#");

    t.literal("feature ?");
    let screen = t.wait_last_line("line kept after help", |l| {
        l.trim_end() == "lab1(config)# feature"
    });
    assert!(
        screen.contains("interface-vlan") && screen.contains("hsrp"),
        "{screen}"
    );
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

/// A `lisp site` typed line by line: its key comes after its first line, so the block is
/// checked when it ends, as on NX-OS (issue 15, item 7); an incomplete one is refused then,
/// naming the command, and applies nothing.
#[test]
fn a_lisp_site_is_created_interactively() {
    let d = Daemon::start(
        "roamer platform backend sim\nhostname ms\nfeature lisp\nip lisp map-server\n",
        "startup-config",
    );
    let t = Tmux::start(&format!(
        "{} cli --socket {}",
        env!("CARGO_BIN_EXE_roamer"),
        d.socket.display()
    ));
    t.wait_last_line("exec prompt", |l| l.trim_end() == "ms#");
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
