//! A live `tshark` capture inside a network namespace.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::netns::Netns;

/// A `tshark` capture running inside a namespace; ended (by its process id) on drop.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Capture {
    /// Starts `tshark -i DEV -f FILTER -c COUNT -T fields -e FIELD…` inside `ns` (at most
    /// `max` long) and returns once it is capturing.
    pub fn start(
        ns: &Netns,
        dev: &str,
        filter: &str,
        count: usize,
        fields: &[&str],
        max: Duration,
    ) -> io::Result<Capture> {
        Capture::start_with(ns, dev, filter, count, fields, &[], max)
    }

    /// [`Capture::start`] with more tshark arguments before the fields, e.g. preferences
    /// (`-o tcp.check_checksum:TRUE`) or decode-as rules (`-d tcp.port==5001,data`).
    pub fn start_with(
        ns: &Netns,
        dev: &str,
        filter: &str,
        count: usize,
        fields: &[&str],
        extra: &[&str],
        max: Duration,
    ) -> io::Result<Capture> {
        let count = count.to_string();
        let duration = format!("duration:{}", max.as_secs().max(1));
        let mut args = vec![
            "netns",
            "exec",
            ns.name(),
            "tshark",
            "-l",
            "-n",
            "-i",
            dev,
            "-f",
            filter,
            "-c",
            &count,
            "-a",
            &duration,
            "-T",
            "fields",
        ];
        args.extend_from_slice(extra);
        for f in fields {
            args.push("-e");
            args.push(f);
        }
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(io::Error::other("tshark pipes missing"));
        };
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Capturing on")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        let mut capture = Capture { child, lines };
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
            capture.stop();
            return Err(io::Error::other("tshark did not start capturing"));
        }
        Ok(capture)
    }

    /// The next output line (one per captured frame), waiting at most `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Up to the first `want` lines, each within `gap` of the one before.
    pub fn first_lines(&self, want: usize, gap: Duration) -> Vec<String> {
        std::iter::from_fn(|| self.next_line(gap))
            .take(want)
            .collect()
    }

    /// Up to `want` lines, calling `poke` (which sends traffic) before each round of reading,
    /// for at most `within`: tshark says it captures a little before it does, so traffic sent
    /// just after the start may go unseen. A round reads until no line has come for 300 ms.
    pub fn lines_while(
        &self,
        want: usize,
        within: Duration,
        mut poke: impl FnMut(),
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + within;
        while lines.len() < want && std::time::Instant::now() < deadline {
            poke();
            while let Some(l) = self.next_line(Duration::from_millis(300)) {
                lines.push(l);
                if lines.len() >= want {
                    break;
                }
            }
        }
        lines
    }

    /// Every line until none has come for `quiet` (the capture gone quiet).
    pub fn lines_until_quiet(&self, quiet: Duration) -> Vec<String> {
        std::iter::from_fn(|| self.next_line(quiet)).collect()
    }

    /// [`Capture::lines_until_quiet`] as a [`Wire`], for assertions.
    pub fn wire_until_quiet(&self, quiet: Duration) -> Wire {
        Wire {
            lines: self.lines_until_quiet(quiet),
        }
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a capture printed, one line a frame (its fields separated by tabs), for assertions that
/// show the whole capture when they fail.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    pub lines: Vec<String>,
}

impl Wire {
    /// The whole capture, one frame a line.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Asserts that some frame's line satisfies `seen`; the failure says `missing` and shows
    /// the capture.
    pub fn assert_any(&self, missing: &str, seen: impl Fn(&str) -> bool) {
        assert!(
            self.lines.iter().any(|l| seen(l)),
            "{missing}:\n{}",
            self.text()
        );
    }

    /// Asserts that some frame's line starts with `prefix` (its first fields); the failure says
    /// `missing` and shows the capture.
    pub fn assert_starts(&self, missing: &str, prefix: &str) {
        self.assert_any(missing, |l| l.starts_with(prefix));
    }

    /// Asserts that no frame has a value in the fields at `columns` (0-based), such as
    /// `_ws.malformed` and `_ws.expert`: nothing malformed, no expert info.
    pub fn assert_clean(&self, columns: &[usize]) {
        assert!(
            !self.lines.iter().any(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                columns
                    .iter()
                    .any(|&c| f.get(c).is_some_and(|v| !v.is_empty()))
            }),
            "malformed or expert-flagged control messages:\n{}",
            self.text()
        );
    }
}
