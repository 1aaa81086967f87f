//! The lab tests' helpers: a scenario's lab brought up by `roamer lab up` under a lab name of
//! its own, commands on its nodes, pings with roamer's own ICMP echoes (`roamer lab ping`, so
//! the tests need no iputils-ping), and waits on conditions.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[allow(unused_imports)] // each test file uses its own part
pub use roamer_test_support::wait_for;

pub fn roamer(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roamer"));
    c.env("ROAMER_LAB_DIR", state);
    c
}

#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Out {
    let out = cmd.output().unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The lab tests' switch `sw`: hosts on Ethernet1/1 to Ethernet1/`ports` in VLAN 10, its SVI
/// 10.10.0.1/24; `platform` is its `roamer platform …` line.
pub fn switch_config(platform: &str, ports: u8) -> String {
    let mut c = format!("hostname sw\n{platform}\nfeature interface-vlan\nvlan 10\n");
    for port in 1..=ports {
        c += &format!("interface Ethernet1/{port}\n  switchport\n  switchport access vlan 10\n");
    }
    c + "interface Vlan10\n  ip address 10.10.0.1/24\n"
}

/// Writes `config` as `DIR/sw.cfg` and, as `file`, the topology of lab `name`: one node `sw`
/// that binds it as its startup configuration.
pub fn write_one_switch_lab(dir: &Path, file: &Path, name: &str, config: &str) {
    std::fs::write(dir.join("sw.cfg"), config).unwrap();
    std::fs::write(
        file,
        format!("name: {name}\ntopology:\n  nodes:\n    sw: {{kind: linux, image: roamer, binds: [\"sw.cfg:/etc/roamer/startup-config\"]}}\n"),
    )
    .unwrap();
}

/// Runs `cmd`, a `roamer lab` command on a lab with a wrong startup configuration: it exits
/// with status 2 and names the place, `at` (`FILE:LINE:`), on stderr.
pub fn assert_config_error(cmd: &mut Command, at: &str) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(at), "{stderr}");
}

/// No namespace of the lab `name` is left.
#[track_caller]
pub fn assert_no_namespaces_of(name: &str) {
    let left = netns_list();
    assert!(
        !left.contains(&format!("clab-{name}-")),
        "namespaces left: {left}"
    );
}

pub fn netns_list() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

/// A scenario's lab, up; `roamer lab down` when dropped (also after a failed assertion).
pub struct Lab {
    pub name: String,
    pub file: PathBuf,
    pub state: PathBuf,
    /// Extra environment of every `roamer lab` command (e.g. DOCKER_HOST).
    env: Vec<(String, String)>,
    up_output: String,
    _tmp: tempfile::TempDir,
}

impl Lab {
    /// Copies `images/containerlab/SCENARIO.clab.yml` and its configurations, renames the lab
    /// `TAG<pid>`, brings it up.
    pub fn up(scenario: &str, tag: &str) -> Lab {
        Lab::up_with(scenario, tag, &[], &[])
    }

    /// As [`Lab::up`], with extra `lab up` arguments (e.g. `--runtime docker`) and an extra
    /// environment for every `roamer lab` command.
    pub fn up_with(scenario: &str, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Lab {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/containerlab");
        let tmp = tempfile::tempdir().unwrap();
        let name = format!("{tag}{}", std::process::id());
        let text = std::fs::read_to_string(src.join(format!("{scenario}.clab.yml"))).unwrap();
        // The lab's own name in place of the file's.
        let old = text.lines().find(|l| l.starts_with("name:")).unwrap();
        let text = text.replacen(old, &format!("name: {name}"), 1);
        let file = tmp.path().join(format!("{scenario}.clab.yml"));
        std::fs::write(&file, text).unwrap();
        std::fs::create_dir(tmp.path().join(scenario)).unwrap();
        for e in std::fs::read_dir(src.join(scenario)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, tmp.path().join(scenario).join(p.file_name().unwrap())).unwrap();
        }
        let mut lab = Lab {
            name,
            file,
            state: tmp.path().join("state"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            up_output: String::new(),
            _tmp: tmp,
        };
        let up = run(lab.roamer().args(["lab", "up"]).args(args).arg(&lab.file));
        assert!(up.ok, "lab up: {}{}", up.stdout, up.stderr);
        // `lab up` returns once the lab has converged, one status line per roamer node.
        assert!(
            up.stdout.contains(" converged in ") && !up.stdout.contains("WAITING"),
            "lab up: {}",
            up.stdout
        );
        lab.up_output = up.stdout;
        lab
    }

    /// `roamer` with this lab's state directory and environment.
    pub fn roamer(&self) -> Command {
        let mut c = roamer(&self.state);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn netns(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.name)
    }

    /// `roamer lab exec NODE CMD`: a CLI command on a roamer node, a shell command elsewhere.
    pub fn exec(&self, node: &str, cmd: &str) -> Out {
        run(self
            .roamer()
            .args(["lab", "exec", "--topo"])
            .arg(&self.file)
            .args([node, cmd]))
    }

    pub fn show(&self, node: &str, cmd: &str) -> String {
        let out = self.exec(node, cmd);
        assert!(out.ok, "{node}: {cmd}: {}", out.stderr);
        out.stdout
    }

    /// One echo (1 s timeout) from `node` with roamer's own pinger; whether it was answered.
    pub fn ping(&self, node: &str, to: &str) -> bool {
        self.ping_count(node, to, 1, "1").contains(" 1 received")
    }

    /// `count` echoes `interval` seconds apart from `node` (roamer's own pinger); its output,
    /// ending in `N packets transmitted, M received`.
    pub fn ping_count(&self, node: &str, to: &str, count: u32, interval: &str) -> String {
        let out = run(Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns(node),
                env!("CARGO_BIN_EXE_roamer"),
            ])
            .args([
                "lab",
                "ping",
                "-c",
                &count.to_string(),
                "-i",
                interval,
                "-W",
                "1",
                to,
            ]));
        out.stdout
    }

    /// Runs `cmd` on `node` until `ready` holds for its output, for up to `secs` (the test
    /// fails naming `what` after that); that output.
    pub fn wait_show(
        &self,
        what: &str,
        secs: u64,
        (node, cmd): (&str, &str),
        mut ready: impl FnMut(&str) -> bool,
    ) -> String {
        wait_for(what, Duration::from_secs(secs), || {
            let out = self.show(node, cmd);
            ready(&out).then_some(out)
        })
    }

    /// Waits up to `secs` for `show lisp site` on the map-server `ms` to list each
    /// `(prefix, locator)` registered; that output.
    pub fn wait_registered(
        &self,
        what: &str,
        secs: u64,
        ms: &str,
        sites: &[(&str, &str)],
    ) -> String {
        self.wait_show(what, secs, (ms, "show lisp site"), |site| {
            sites
                .iter()
                .all(|(prefix, by)| registered(site, prefix, by))
        })
    }

    /// Waits up to 30 s for HSRP to be active on each of `nodes`.
    pub fn wait_hsrp_active(&self, what: &str, nodes: &[&str]) {
        wait_for(what, Duration::from_secs(30), || {
            nodes
                .iter()
                .all(|n| hsrp_active(&self.show(n, "show hsrp brief")))
                .then(String::new)
        });
    }

    /// `show lisp dynamic-eid summary` on `node`, and its row of `eid` (empty when none).
    pub fn dynamic_eid(&self, node: &str, eid: &str) -> (String, String) {
        let summary = self.show(node, "show lisp dynamic-eid summary");
        let row = summary
            .lines()
            .find(|l| l.contains(eid))
            .unwrap_or_default();
        (row.to_string(), summary)
    }

    /// After the extended-subnet host (10.1.1.5) moved to dc2: dc2 holds it as its own
    /// dynamic EID, dc1 lists it with `*` (learned by Map-Notify).
    pub fn assert_dc2_holds_the_host(&self) {
        let ((r1, s1), (r2, s2)) = (
            self.dynamic_eid("dc1", "10.1.1.5"),
            self.dynamic_eid("dc2", "10.1.1.5"),
        );
        assert!(
            r1.contains("*10.1.1.5"),
            "dc1 learned the move from dc2 by Map-Notify:\n{s1}"
        );
        assert!(
            r2.contains(" 10.1.1.5") && !r2.contains('*'),
            "dc2 holds the host:\n{s2}"
        );
    }

    /// `roamer lab up`'s output.
    pub fn up_output(&self) -> &str {
        &self.up_output
    }

    pub fn move_host(&self, host: &str, to: &str) {
        let mv = run(self
            .roamer()
            .args(["lab", "move", "--topo"])
            .arg(&self.file)
            .args([host, "--to", to]));
        assert!(mv.ok, "lab move: {}{}", mv.stdout, mv.stderr);
    }

    /// `node` pings `to` every 100 ms while `during` runs (after 1.5 s of steady pings);
    /// returns the replies' arrival times and when `during` started.
    pub fn ping_across(&self, node: &str, to: &str, during: impl FnOnce()) -> Pings {
        let mut pinger = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns(node),
                env!("CARGO_BIN_EXE_roamer"),
            ])
            .args(["lab", "ping", "-i", "0.1", "-W", "1", "-c", "100", to])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Steady before `during`: 15 replies read (its output is read on to the end after).
        let mut reader = std::io::BufReader::new(pinger.stdout.take().unwrap());
        let mut text = String::new();
        let mut answered = 0;
        while answered < 15 {
            let mut line = String::new();
            use std::io::BufRead;
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            answered += usize::from(line.contains("bytes from"));
            text.push_str(&line);
        }
        assert_eq!(answered, 15, "pings before the move:\n{text}");
        let at = epoch();
        during();
        use std::io::Read;
        reader.read_to_string(&mut text).unwrap();
        pinger.wait().unwrap();
        let replies = text
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        Pings { at, replies, text }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let down = run(self.roamer().args(["lab", "down"]).arg(&self.file));
        if !std::thread::panicking() {
            assert!(down.ok, "lab down: {}{}", down.stdout, down.stderr);
            assert_no_namespaces_of(&self.name);
        }
    }
}

/// The state `roamer lab up` recorded for lab `name` in the state directory `dir`.
pub fn lab_state(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(name).join("state.json")).unwrap()).unwrap()
}

/// The entry of the list `state[list]` whose field `key` is `value`.
pub fn state_entry<'a>(
    state: &'a serde_json::Value,
    list: &str,
    key: &str,
    value: &str,
) -> &'a serde_json::Value {
    let entries = state[list].as_array().unwrap();
    let entry = entries.iter().find(|e| e[key] == value);
    entry.unwrap_or_else(|| panic!("no {list} entry with {key} {value}: {state}"))
}

pub fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub struct Pings {
    /// When the move started (epoch seconds).
    pub at: f64,
    /// Arrival time of each reply.
    pub replies: Vec<f64>,
    pub text: String,
}

impl Pings {
    pub fn after(&self) -> usize {
        self.replies.iter().filter(|t| **t > self.at).count()
    }

    /// From the move to the first reply after the longest silence that follows it.
    pub fn outage(&self) -> Duration {
        let mut last = self.at;
        let mut longest = 0.0f64;
        for t in self.replies.iter().filter(|t| **t > self.at) {
            longest = longest.max(t - last);
            last = *t;
        }
        Duration::from_secs_f64(longest)
    }
}

/// The group row of `show hsrp brief` is Active.
pub fn hsrp_active(brief: &str) -> bool {
    brief.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next().is_some_and(|i| i.starts_with("Vlan")) && w.any(|x| x == "Active")
    })
}

pub fn registered(site: &str, prefix: &str, by: &str) -> bool {
    site.lines()
        .any(|l| l.contains(prefix) && l.contains(by) && l.contains(" yes"))
}
