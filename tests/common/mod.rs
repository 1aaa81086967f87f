//! A roamer daemon started for one test: its own directory, startup file and control socket.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test file uses its own part
pub use roamer_test_support::wait_for;

pub mod lisp_config;
pub mod mobility;

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn roamer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_roamer"))
}

/// Adds `run --config STARTUP --socket SOCKET` to `command` (roamer, or what runs it).
pub fn run_args<'a>(command: &'a mut Command, startup: &Path, socket: &Path) -> &'a mut Command {
    command
        .arg("run")
        .arg("--config")
        .arg(startup)
        .arg("--socket")
        .arg(socket)
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts that the command was refused: exit status 1, `message` on stderr.
    #[track_caller]
    pub fn assert_refused(&self, message: &str) {
        assert_eq!(self.code, 1, "{}{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(message), "{}", self.stderr);
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run roamer");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub struct Daemon {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub dir: tempfile::TempDir,
    pub startup: PathBuf,
    pub socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Writes `config` as the startup file (named `file_name`) and starts the daemon on it,
    /// without waiting for readiness.
    pub fn spawn(config: &str, file_name: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let startup = dir.path().join(file_name);
        std::fs::write(&startup, config).expect("write startup");
        Self::spawn_in(dir, startup)
    }

    /// Starts a daemon on an existing startup file in `dir`.
    pub fn spawn_in(dir: tempfile::TempDir, startup: PathBuf) -> Daemon {
        Self::spawn_with(dir, startup, None, &[])
    }

    /// Writes the startup file and starts the daemon inside network namespace `netns`
    /// (`ip netns exec` replaces itself with roamer, so the child is roamer itself).
    pub fn start_in_netns(config: &str, netns: &str) -> Daemon {
        Self::start_in_netns_with_env(config, netns, &[])
    }

    /// As [`Daemon::start_in_netns`], with `env` added to the daemon's environment.
    pub fn start_in_netns_with_env(config: &str, netns: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let startup = dir.path().join("startup-config");
        std::fs::write(&startup, config).expect("write startup");
        let d = Self::spawn_with(dir, startup, Some(netns), env);
        d.wait_for_line("ready");
        d
    }

    fn spawn_with(
        dir: tempfile::TempDir,
        startup: PathBuf,
        netns: Option<&str>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let socket = dir.path().join("roamer.sock");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_roamer")]);
                c
            }
            None => roamer(),
        };
        command.envs(env.iter().copied());
        run_args(&mut command, &startup, &socket);
        Self::spawn_command(&mut command, dir, startup, socket)
    }

    /// Starts `command`, which runs a daemon on `startup` and `socket` in `dir` (its stdout
    /// discarded, its stderr read as the log), without waiting for readiness.
    pub fn spawn_command(
        command: &mut Command,
        dir: tempfile::TempDir,
        startup: PathBuf,
        socket: PathBuf,
    ) -> Daemon {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn roamer");
        Self::adopt(child, dir, startup, socket)
    }

    /// A daemon started by the caller (its stderr piped), its log lines read from now on.
    pub fn adopt(
        mut child: Child,
        dir: tempfile::TempDir,
        startup: PathBuf,
        socket: PathBuf,
    ) -> Daemon {
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
            dir,
            startup,
            socket,
        }
    }

    /// Starts and waits for the readiness line.
    pub fn start(config: &str, file_name: &str) -> Daemon {
        let d = Self::spawn(config, file_name);
        d.wait_for_line("ready");
        d
    }

    pub fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no line containing {needle:?} within {TIMEOUT:?}"),
            }
        }
    }

    /// All log lines seen so far (non-blocking).
    pub fn drain_log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    pub fn exec(&self, commands: &str) -> Output {
        run(roamer()
            .arg("exec")
            .arg("--socket")
            .arg(&self.socket)
            .arg(commands))
    }

    /// Runs `cmd` until `ready` holds for its output, for up to `secs` (the test fails naming
    /// `what` after that); that output.
    pub fn wait_show(
        &self,
        what: &str,
        secs: u64,
        cmd: &str,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        wait_for(what, Duration::from_secs(secs), || {
            let out = self.exec(cmd).stdout;
            ready(&out).then_some(out)
        })
    }

    /// The output of the command `cmd`, which must contain each of `needles`.
    #[track_caller]
    pub fn assert_shows(&self, cmd: &str, needles: &[&str]) -> String {
        let out = self.exec(cmd).stdout;
        for needle in needles {
            assert!(out.contains(needle), "{cmd}: no {needle:?} in\n{out}");
        }
        out
    }

    /// The output of the command `cmd`, and its first line containing `needle` (empty when
    /// there is none).
    pub fn show_row(&self, cmd: &str, needle: &str) -> (String, String) {
        let out = self.exec(cmd).stdout;
        let row = out.lines().find(|l| l.contains(needle)).unwrap_or_default();
        (row.to_string(), out)
    }

    /// Feeds `input` to `roamer cli` on stdin (not a terminal: plain line reading).
    pub fn cli(&self, input: &str) -> Output {
        let mut child = roamer()
            .arg("cli")
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("cli output");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Resident memory of the daemon in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "roamer did not stop within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The seeds' configuration examples (tests/fixtures/seeds), each a block from exec mode to exec
/// mode.
pub const SEED_BLOCKS: [&str; 6] = [
    "000-map-notify-group.cli",
    "000-map-server.cli",
    "001-extended-subnet.cli",
    "001-across-subnets.cli",
    "001-hsrp.cli",
    "002-shutdown.cli",
];

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

/// A counter of `d`'s `show forwarding counters` (0 when not listed).
pub fn counter(d: &Daemon, name: &str) -> u64 {
    counter_in(&d.exec("show forwarding counters").stdout, name)
}

/// The value of counter `name` in the text of `show forwarding counters` (0 if absent).
pub fn counter_in(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(char::is_whitespace))
        })
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

/// Fails the test unless it runs as root with `ip` (for its network namespaces) and each of
/// `tools`, `(tool, the Debian package that has it)`.
#[track_caller]
pub fn require_netns_and(tools: &[(&str, &str)]) {
    roamer_test_support::require_root("network namespaces");
    roamer_test_support::require_tool("ip", "iproute2");
    for (tool, package) in tools {
        roamer_test_support::require_tool(tool, package);
    }
}

/// iputils `ping ARGS…` inside `ns`: its output, whether or not every echo was answered.
pub fn iputils_ping(ns: &roamer_test_support::Netns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name(), "ping"])
        .args(args)
        .output()
        .expect("this test needs ping (Debian package iputils-ping)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `python3 -c script args…` in network namespace `ns`. Fails the test, with python's
/// stderr under `what`, when it does not succeed; `needs` says what must be installed.
pub fn python_in(ns: &str, script: &str, args: &[&str], needs: &str, what: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", script])
        .args(args)
        .output()
        .expect(needs);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The map-server tests' two namespaces: a map-server `{prefix}m` and an ETR `{prefix}e`, joined
/// by the veth `{prefix}m1` / `{prefix}e1`, the ETR's end at 192.0.2.11/24.
pub fn ms_and_etr(
    prefix: &str,
) -> (
    roamer_test_support::Netns,
    roamer_test_support::Netns,
    roamer_test_support::Veth,
) {
    use roamer_test_support::{Netns, Veth};
    let ms = Netns::new(&format!("{prefix}m")).expect("netns");
    let etr = Netns::new(&format!("{prefix}e")).expect("netns");
    let link =
        Veth::between(&format!("{prefix}m1"), &ms, &format!("{prefix}e1"), &etr).expect("veth");
    etr.addr(&format!("{prefix}e1"), "192.0.2.11/24")
        .expect("addr");
    (ms, etr, link)
}

/// Network namespaces `{p}{tag}`, one a tag in order, each with its loopback up.
pub fn namespaces<const N: usize>(p: &str, tags: [&str; N]) -> [roamer_test_support::Netns; N] {
    tags.map(|tag| {
        let ns = roamer_test_support::Netns::new(&format!("{p}{tag}")).expect("netns");
        ns.ip(&["link", "set", "lo", "up"]).expect("lo");
        ns
    })
}

/// Host links: for each `(tag, node, host, dev)` a veth pair `{p}h{tag}` (in `node`, the xTR's
/// host port) / `{p}{dev}` (in `host`), pushed to `links`.
pub fn host_links(
    p: &str,
    links: &mut Vec<roamer_test_support::Veth>,
    ends: &[(
        &str,
        &roamer_test_support::Netns,
        &roamer_test_support::Netns,
        &str,
    )],
) {
    for (tag, node, host, dev) in ends {
        let (port, end) = (format!("{p}h{tag}"), format!("{p}{dev}"));
        let v = roamer_test_support::Veth::between(&port, node, &end, host).expect("veth");
        links.push(v);
    }
}

/// A map-server and three xTRs on one bridged underlay segment, and two hosts: the namespaces
/// `[core, ms, a, b, c, h, r]` (`{p}k`, `{p}m`, …) and the links: the underlay's, then H to
/// xTR-A (`{p}ea`) and to xTR-B (`{p}eb`), R to xTR-C (`{p}er`).
pub fn three_xtrs(
    p: &str,
) -> (
    [roamer_test_support::Netns; 7],
    Vec<roamer_test_support::Veth>,
) {
    let [core, ms, a, b, c, h, r] = namespaces(p, ["k", "m", "a", "b", "c", "h", "r"]);
    let mut links = bridged_underlay(&core, p, &[("m", &ms), ("a", &a), ("b", &b), ("c", &c)]);
    host_links(
        p,
        &mut links,
        &[
            ("a", &a, &h, "ea"),
            ("b", &b, &h, "eb"),
            ("c", &c, &r, "er"),
        ],
    );
    ([core, ms, a, b, c, h, r], links)
}

/// An underlay segment: a bridge `{p}br` in `core` and, for each `(tag, node)`, a veth pair
/// `{p}u{tag}` (in `node`, up) / `{p}k{tag}` (a port of the bridge). The pairs are returned so
/// the caller deletes them at the end.
pub fn bridged_underlay(
    core: &roamer_test_support::Netns,
    p: &str,
    nodes: &[(&str, &roamer_test_support::Netns)],
) -> Vec<roamer_test_support::Veth> {
    use roamer_test_support::Veth;
    let bridge = format!("{p}br");
    core.ip(&["link", "add", &bridge, "type", "bridge"])
        .expect("bridge");
    core.ip(&["link", "set", &bridge, "up"]).expect("up");
    let mut links = Vec::new();
    for (tag, node) in nodes {
        let (u, k) = (format!("{p}u{tag}"), format!("{p}k{tag}"));
        let v = Veth::new(&u, &k).expect("veth");
        v.move_to(&u, node).expect("move");
        v.move_to(&k, core).expect("move");
        node.ip(&["link", "set", &u, "up"]).expect("up");
        core.ip(&["link", "set", &k, "master", &bridge])
            .expect("enslave");
        core.ip(&["link", "set", &k, "up"]).expect("up");
        links.push(v);
    }
    links
}

/// The state column of the Vlan10 row of `show hsrp brief` ("" when there is none).
pub fn hsrp_state(d: &Daemon) -> String {
    hsrp_state_in(&d.exec("show hsrp brief").stdout)
}

/// The state of group Vlan10 in `show hsrp brief` output.
pub fn hsrp_state_in(brief: &str) -> String {
    brief
        .lines()
        .find(|l| l.trim_start().starts_with("Vlan10"))
        .and_then(|l| {
            l.split_whitespace().find(|w| {
                [
                    "Active", "Standby", "Speak", "Listen", "Learn", "Init", "Initial", "Disabled",
                ]
                .contains(w)
            })
        })
        .unwrap_or("")
        .to_string()
}

/// A host namespace on one end of `veth`, addressed, with its default gateway.
pub fn host(
    prefix: &str,
    name: &str,
    veth: &roamer_test_support::Veth,
    dev: &str,
    cidr: &str,
    gw: &str,
) -> roamer_test_support::Netns {
    let ns = roamer_test_support::Netns::new(&format!("{prefix}{name}")).expect("netns");
    veth.move_to(dev, &ns).expect("move");
    ns.addr(dev, cidr).expect("address");
    ns.ip(&["route", "add", "default", "via", gw])
        .expect("gateway");
    ns
}

/// The host on [`two_vlan_switch`]'s port `n` (1: `{p}a`, 10.10.0.5 in VLAN 10; 2: `{p}b`,
/// 10.20.0.6 in VLAN 20), on the end `{p}p{n}h` of `veth`, its loopback up, its gateway the SVI.
pub fn two_vlan_host(
    p: &str,
    n: u8,
    veth: &roamer_test_support::Veth,
) -> roamer_test_support::Netns {
    let (name, cidr) = match n {
        1 => ("a", "10.10.0.5/24"),
        _ => ("b", "10.20.0.6/24"),
    };
    let ns = host(
        p,
        name,
        veth,
        &format!("{p}p{n}h"),
        cidr,
        &format!("10.{n}0.0.1"),
    );
    ns.ip(&["link", "set", "lo", "up"]).expect("lo");
    ns
}

/// sw1 with two access ports, `{p}p1` in VLAN 10 and `{p}p2` in VLAN 20 (`port_options` after
/// each port's device, e.g. `" io af-xdp"`), routing between them on the SVIs 10.10.0.1/24 and
/// 10.20.0.1/24.
pub fn two_vlan_switch(p: &str, port_options: &str) -> String {
    format!(
        "hostname sw1\nroamer platform port Ethernet1/1 {p}p1{port_options}\nroamer platform port Ethernet1/2 {p}p2{port_options}\nfeature interface-vlan\nvlan 10,20\ninterface Ethernet1/1\n  switchport\n  switchport access vlan 10\ninterface Ethernet1/2\n  switchport\n  switchport access vlan 20\ninterface Vlan10\n  ip address 10.10.0.1/24\ninterface Vlan20\n  ip address 10.20.0.1/24\n"
    )
}

/// A veth pair with its end `{p}{name}` in the switch namespace `sw` (up there) and the end
/// `{p}{name}h` left for a host.
pub fn access_port(
    p: &str,
    sw: &roamer_test_support::Netns,
    name: &str,
) -> roamer_test_support::Veth {
    let dev = format!("{p}{name}");
    let veth = roamer_test_support::Veth::new(&dev, &format!("{dev}h")).expect("veth");
    veth.move_to(&dev, sw).expect("move port");
    veth
}

/// The trunk tests' two switches: the namespaces `{p}s` and `{p}t`, joined by the trunk veth
/// `{p}k1` / `{p}k2`, with the access ports `{p}p1`, `{p}p2` in the first and `{p}p3`, `{p}p4`
/// in the second (see [`access_port`]).
pub struct TrunkedSwitches {
    pub sw1: roamer_test_support::Netns,
    pub sw2: roamer_test_support::Netns,
    pub trunk: roamer_test_support::Veth,
    pub ports: [roamer_test_support::Veth; 4],
}

impl TrunkedSwitches {
    /// Starts roamer on both switches, sw1 and sw2, as [`trunk_switch_config`] with their own
    /// access ports and trunk end; `io[i]`: the I/O of switch i+1's access ports and trunk.
    pub fn start(&self, p: &str, io: [[&str; 2]; 2]) -> [Daemon; 2] {
        let dev = |d: &str| format!("{p}{d}");
        [
            ("sw1", ["p1", "p2", "k1"], &self.sw1, io[0]),
            ("sw2", ["p3", "p4", "k2"], &self.sw2, io[1]),
        ]
        .map(|(name, [a, b, k], ns, io)| {
            let config = trunk_switch_config(name, [&dev(a), &dev(b)], &dev(k), io);
            Daemon::start_in_netns(&config, ns.name())
        })
    }
}

pub fn trunked_switches(p: &str) -> TrunkedSwitches {
    let [sw1, sw2] = namespaces(p, ["s", "t"]);
    let trunk =
        roamer_test_support::Veth::between(&format!("{p}k1"), &sw1, &format!("{p}k2"), &sw2)
            .expect("trunk");
    let ports = [(&sw1, "p1"), (&sw1, "p2"), (&sw2, "p3"), (&sw2, "p4")]
        .map(|(sw, name)| access_port(p, sw, name));
    TrunkedSwitches {
        sw1,
        sw2,
        trunk,
        ports,
    }
}

/// A trunk test's switch `name`: Ethernet1/1 (VLAN 10) and Ethernet1/2 (VLAN 20) on the
/// devices `access`, with I/O `io[0]`; the trunk Ethernet1/48, both VLANs, on the device `trunk`
/// with I/O `io[1]`.
pub fn trunk_switch_config(name: &str, access: [&str; 2], trunk: &str, io: [&str; 2]) -> String {
    format!(
        "hostname {name}\nroamer platform port Ethernet1/1 {} io {}\nroamer platform port Ethernet1/2 {} io {}\nroamer platform port Ethernet1/48 {trunk} io {}\nvlan 10,20\ninterface Ethernet1/1\n  switchport\n  switchport access vlan 10\ninterface Ethernet1/2\n  switchport\n  switchport access vlan 20\ninterface Ethernet1/48\n  switchport\n  switchport mode trunk\n  switchport trunk allowed vlan 10,20\n",
        access[0], io[0], access[1], io[0], io[1]
    )
}

/// r1 in `sw` with HSRP group 10 (virtual IP 10.10.0.1, timers 1 3) on Vlan10 (10.10.0.2/24),
/// whose access port Ethernet1/1 is the device `dev`; returned once it is Active, alone.
pub fn hsrp_active_alone(dev: &str, sw: &roamer_test_support::Netns) -> Daemon {
    let config = format!(
        "hostname r1\nroamer platform port Ethernet1/1 {dev}\nfeature interface-vlan\nfeature hsrp\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Vlan10\n  ip address 10.10.0.2/24\n  hsrp 10\n    timers 1 3\n    ip 10.10.0.1\n"
    );
    let d = Daemon::start_in_netns(&config, sw.name());
    assert!(
        roamer_test_support::wait_until(Duration::from_secs(15), || hsrp_state(&d) == "Active"),
        "alone, roamer becomes active"
    );
    d
}

/// Whether `text`, lines of [`lisp_data_capture`], has an ICMP packet in LISP data from `src` to
/// `dst` (each `RLOC,EID`), decoded as such.
pub fn has_lisp_icmp(text: &str, src: &str, dst: &str) -> bool {
    let start = format!("{src}\t{dst}\t4341\t");
    text.lines()
        .any(|l| l.starts_with(&start) && l.contains("udp:lisp-data:ip:icmp"))
}

/// tshark on the underlay device `dev` in `ns`: the first four LISP data packets, one line each
/// with the outer then inner addresses, the UDP port, the protocols and any expert info.
pub fn lisp_data_capture(
    ns: &roamer_test_support::Netns,
    dev: &str,
) -> roamer_test_support::Capture {
    roamer_test_support::Capture::start(
        ns,
        dev,
        "udp port 4341",
        4,
        &[
            "ip.src",
            "ip.dst",
            "udp.dstport",
            "frame.protocols",
            "_ws.expert",
        ],
        Duration::from_secs(20),
    )
    .expect("tshark on the underlay")
}

/// The two-xTR tests' namespaces: xTRs `{p}x1` and `{p}x2` joined by the underlay veth
/// `{p}u1` / `{p}u2`, and a host behind each, `{p}a` (10.10.0.5/24) and `{p}b` (10.20.0.5/24),
/// on the veth `{p}h{n}` (the xTR's host port) / `{p}e{n}`, its gateway 10.{n}0.0.1. Every
/// loopback is up.
pub struct TwoXtrs {
    pub x1: roamer_test_support::Netns,
    pub x2: roamer_test_support::Netns,
    pub h1: roamer_test_support::Netns,
    pub h2: roamer_test_support::Netns,
    pub links: Vec<roamer_test_support::Veth>,
}

impl TwoXtrs {
    /// Pings host B from host A until `capture` (a [`lisp_data_capture`]-like one on the
    /// underlay) has `want` lines; asserts that one is such an echo in LISP data from xtr1 to
    /// xtr2, decoded. The lines.
    pub fn lisp_icmp_seen(&self, capture: &roamer_test_support::Capture, want: usize) -> String {
        let to_h2 = std::net::Ipv4Addr::new(10, 20, 0, 5);
        let what = "host traffic across the LISP xTRs";
        let text = lines_while_pinging(capture, want, &self.h1, to_h2, what);
        // tshark lists outer then inner addresses: the RLOCs, then the EIDs.
        assert!(
            has_lisp_icmp(&text, "192.0.2.1,10.10.0.5", "192.0.2.2,10.20.0.5"),
            "no LISP data packet from xtr1 to xtr2 decoded:\n{text}"
        );
        text
    }
}

pub fn two_xtrs(p: &str) -> TwoXtrs {
    use roamer_test_support::Veth;
    let [x1, x2, h1, h2] = namespaces(p, ["x1", "x2", "a", "b"]);
    let underlay = Veth::between(&format!("{p}u1"), &x1, &format!("{p}u2"), &x2).expect("underlay");
    let mut links = vec![underlay];
    for (x, h, n) in [(&x1, &h1, 1), (&x2, &h2, 2)] {
        let v = Veth::between(&format!("{p}h{n}"), x, &format!("{p}e{n}"), h).expect("veth");
        h.addr(&format!("{p}e{n}"), &format!("10.{n}0.0.5/24"))
            .expect("addr");
        h.ip(&["route", "add", "default", "via", &format!("10.{n}0.0.1")])
            .expect("gw");
        links.push(v);
    }
    TwoXtrs {
        x1,
        x2,
        h1,
        h2,
        links,
    }
}

/// xTR `me` of the two-xTR tests ([`TwoXtrs`]): its host port Ethernet1/1 `{prefix}h{me}` in
/// VLAN 10 (SVI 10.{me}0.0.1/24), its underlay port Ethernet1/3 `{prefix}u{me}` at
/// 192.0.2.{me}/24, its EIDs 10.{me}0.0.0/24 and a static map-cache entry for those of `peer`;
/// `io`: the I/O of the two ports; `extra`: further configuration lines.
pub fn static_xtr_config(prefix: &str, me: u8, peer: u8, io: [&str; 2], extra: &str) -> String {
    format!(
        "hostname xtr{me}\n\
         roamer platform port Ethernet1/1 {prefix}h{me} io {}\n\
         roamer platform port Ethernet1/3 {prefix}u{me} io {}\n\
         feature interface-vlan\nfeature lisp\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Ethernet1/3\n  no switchport\n  ip address 192.0.2.{me}/24\n\
         interface Vlan10\n  ip address 10.{me}0.0.1/24\n\
         ip lisp itr-etr\n\
         ip lisp database-mapping 10.{me}0.0.0/24 192.0.2.{me} priority 1 weight 100\n\
         ip lisp map-cache 10.{peer}0.0.0/24 192.0.2.{peer} priority 1 weight 100\n{extra}",
        io[0], io[1]
    )
}

/// Pings `dst` from `from` (each ping answered, or the test fails with `what`) until `capture`
/// has `want` lines, for up to 15 s (tshark says it captures a little before it does); the
/// lines, one a packet.
pub fn lines_while_pinging(
    capture: &roamer_test_support::Capture,
    want: usize,
    from: &roamer_test_support::Netns,
    dst: std::net::Ipv4Addr,
    what: &str,
) -> String {
    let lines = capture.lines_while(want, Duration::from_secs(15), || {
        let answered = roamer_test_support::ping(from, dst, Duration::from_secs(8)).expect("ping");
        assert!(answered, "{what}");
    });
    lines.join("\n")
}

/// Python (standard library only): an active HSRPv1 hello of group 10, priority 200, virtual IP
/// 10.10.0.1, from 10.10.0.9. `udp`: through a UDP socket (the kernel leaves the checksum to
/// the veth's offload); `bad`: a complete Ethernet frame through a packet socket whose UDP
/// checksum is wrong.
pub const HSRP_PEER_HELLOS: &str = r#"
import socket, struct, sys, time
mode, iface, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
hello = bytes([0, 0, 16, 1, 3, 200, 10, 0]) + b'cisco'.ljust(8, b'\0') + socket.inet_aton('10.10.0.1')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton('10.10.0.9'), socket.inet_aton('224.0.0.2')
if mode == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('10.10.0.9', 1985))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, src)
    for _ in range(count):
        s.sendto(hello, ('224.0.0.2', 1985))
        time.sleep(0.2)
else:
    udp = struct.pack('!HHHH', 1985, 1985, 8 + len(hello), 0) + hello
    good = csum(src + dst + struct.pack('!BBH', 0, 17, len(udp)) + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', good ^ 0x0101) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 1, 17, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    eth = bytes.fromhex('01005e000002' '020000000099' '0800')
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for _ in range(count):
        s.send(eth + ip + udp)
        time.sleep(0.1)
"#;

/// Sends `count` hellos of [`HSRP_PEER_HELLOS`] from namespace `ns`.
pub fn send_hsrp_hellos(ns: &str, mode: &str, iface: &str, count: u32) {
    python_in(
        ns,
        HSRP_PEER_HELLOS,
        &[mode, iface, &count.to_string()],
        "python3 is required for this test",
        &format!("python3 sender ({mode})"),
    );
}
