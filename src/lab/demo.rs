//! `roamer lab` without a subcommand: the across-subnet VM mobility scenario (seeds 001, 004)
//! from a built-in copy of `images/containerlab/across-subnet.clab.yml`, start to finish. It
//! brings the lab up, shows the remote ITR's map-cache and the map-server's sites, moves the host
//! while the remote host pings it, shows them again with the convergence time and the pings
//! lost, and tears the lab down — also after a failure or a Ctrl-C.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::state::State;
use super::{bring_up, lab_err, migrate, teardown};
use crate::client::Connection;
use crate::error::RoamerError;
use crate::protocol::Request;

/// Printing never panics here: with stdout gone (a closed pipe, a hung-up terminal) nobody is
/// watching any more; the demo stops and the lab is still torn down.
macro_rules! say {
    ($($t:tt)*) => {{
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            STOP.store(true, Ordering::SeqCst);
        }
    }};
}

/// The same without the newline, flushed.
macro_rules! say_part {
    ($($t:tt)*) => {{
        let mut out = std::io::stdout();
        if write!(out, $($t)*).and_then(|()| out.flush()).is_err() {
            STOP.store(true, Ordering::SeqCst);
        }
    }};
}

pub const DEFAULT_NAME: &str = "roamer-demo";

const TOPOLOGY: &str = include_str!("../../images/containerlab/across-subnet.clab.yml");
const CONFIGS: [(&str, &str); 4] = [
    (
        "ms.cfg",
        include_str!("../../images/containerlab/across-subnet/ms.cfg"),
    ),
    (
        "xtr-a.cfg",
        include_str!("../../images/containerlab/across-subnet/xtr-a.cfg"),
    ),
    (
        "xtr-b.cfg",
        include_str!("../../images/containerlab/across-subnet/xtr-b.cfg"),
    ),
    (
        "xtr-c.cfg",
        include_str!("../../images/containerlab/across-subnet/xtr-c.cfg"),
    ),
];

const HOST: &str = "10.1.1.5";
const REMOTE: &str = "10.3.3.10";
/// Where the host arrives.
const TO: &str = "xtr-b:eth2";
/// Pings every this often while the host moves.
const PING_INTERVAL: &str = "0.1";
/// The move has converged once this many pings in a row are answered after it.
const STEADY: usize = 20;
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Set by SIGINT/SIGTERM/SIGHUP: every wait stops and the lab is torn down.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(name: &str) -> Result<(), RoamerError> {
    // Say what is missing before building anything. Only `ip` (iproute2, priority important:
    // on every Debian and Ubuntu install) is needed; the pings are roamer's own (`lab ping`).
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("ip").is_file()));
    if !found {
        return Err(lab_err(
            "roamer lab needs `ip` (Debian package iproute2): apt-get install iproute2",
        ));
    }
    catch_signals()?;
    let files = write_files(name)?;
    let topo_file = files.join("across-subnet.clab.yml");
    say!("roamer lab: VM mobility across subnets with SMR (seeds 001 and 004)\n");
    say!("  host   {HOST}  ── xtr-a  home site 10.1.1.0/24, HSRP group 1, gateway 10.1.1.1");
    say!(
        "     (moves to)       xtr-b  another site 10.2.2.0/24, HSRP group 1 (same virtual MAC), proxy-ARP"
    );
    say!("  remote {REMOTE} ── xtr-c  remote site 10.3.3.0/24: its ITR must follow the host");
    say!("                      ms     map-server / map-resolver (underlay 192.0.2.0/24)\n");

    let started = Instant::now();
    print_step(
        1,
        &format!("building lab {name} (namespaces, veth links, roamer daemons)"),
    );
    let built = bring_up(&topo_file, super::Runtime::Netns);
    let (topo, dir) = match built {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&files);
            return Err(e);
        }
    };
    let mut lab = Running {
        name: name.to_string(),
        dir,
        files,
        keep_logs: true,
    };
    done(started);
    say!(
        "      {} nodes, {} links; the daemons log to {} while it runs",
        topo.nodes.len(),
        topo.links.len(),
        lab.dir.display()
    );
    let result = scenario(&lab);
    // The logs are kept for a failure worth looking into, not after a Ctrl-C or a closed stdout.
    if result.is_ok() || STOP.load(Ordering::SeqCst) {
        lab.keep_logs = false;
    }
    drop(lab);
    result
}

fn scenario(lab: &Running) -> Result<(), RoamerError> {
    let st = State::load(&lab.dir)?.ok_or_else(|| lab_err("the lab's state vanished"))?;
    let netns = |node: &str| -> Result<String, RoamerError> {
        st.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.netns.clone())
            .ok_or_else(|| lab_err(format!("no node {node}")))
    };
    let (host_ns, remote_ns) = (netns("host")?, netns("remote")?);
    let show = |node: &str, cmd: &str| show(&lab.dir, node, cmd);

    let t = Instant::now();
    print_step(
        2,
        "waiting for the sites to register and the HSRP gateways to become active",
    );
    wait_until(
        "the sites registered at the map-server",
        Duration::from_secs(30),
        || {
            let site = show("ms", "show lisp site").ok()?;
            ["10.1.1.0/24", "10.2.2.0/24", "10.3.3.0/24"]
                .iter()
                .all(|p| site.lines().any(|l| l.contains(p) && l.contains(" yes")))
                .then_some(())
        },
    )?;
    wait_until(
        "HSRP active at xtr-a and xtr-b",
        Duration::from_secs(30),
        || {
            ["xtr-a", "xtr-b"]
                .iter()
                .all(|n| show(n, "show hsrp brief").is_ok_and(|b| hsrp_active(&b)))
                .then_some(())
        },
    )?;
    done(t);

    let t = Instant::now();
    print_step(
        3,
        &format!("host {HOST} and remote {REMOTE} talk through the mapping system"),
    );
    wait_until(
        "the host reaches the remote host",
        Duration::from_secs(30),
        || ping_once(&host_ns, REMOTE).then_some(()),
    )?;
    wait_until(
        "xtr-c caches the host at xtr-a",
        Duration::from_secs(30),
        || {
            let ok = ping_once(&remote_ns, HOST);
            let cache = show("xtr-c", &format!("show ip lisp map-cache {HOST}")).ok()?;
            (ok && cache.contains("192.0.2.1 ")).then_some(())
        },
    )?;
    done(t);

    banner("Before the move");
    print_show(&lab.dir, "xtr-c", "show ip lisp map-cache");
    print_show(&lab.dir, "ms", "show lisp site");

    say!(
        "[4/6] moving host from xtr-a:eth2 to {TO} (same MAC, address and gateway) while remote pings it every 100 ms"
    );
    let pinger = Pinger::start(&remote_ns, HOST)?;
    // Steady replies before the move, so the loss counted is the move's.
    let steady = wait_until("pings before the move", Duration::from_secs(10), || {
        (pinger.replies().len() >= 5).then_some(())
    });
    if let Err(e) = steady {
        let _ = pinger.stop();
        return Err(e);
    }
    let moved_at = now_epoch();
    let moved = {
        let mut st = st.clone();
        migrate::move_host(&mut st, &lab.dir, "host", TO, Default::default())
    };
    if let Err(e) = moved {
        let _ = pinger.stop();
        return Err(e);
    }
    // The host announced itself on arrival (RARP and gratuitous ARP, as QEMU with a virtio-net
    // guest): only the remote host's pings run; the host sends nothing else.
    let t = Instant::now();
    print_step(
        5,
        "waiting for the remote host's pings to reach the host again",
    );
    let converged = wait_until("convergence", CONVERGE_TIMEOUT, || {
        let r = pinger.replies();
        steady_after(&r, moved_at).then_some(())
    });
    let (replies, sent) = pinger.stop();
    match &converged {
        Ok(()) => done(t),
        Err(_) if STOP.load(Ordering::SeqCst) => {}
        Err(_) => say!("not within {}s", CONVERGE_TIMEOUT.as_secs()),
    }
    if STOP.load(Ordering::SeqCst) {
        return Err(lab_err("interrupted"));
    }

    banner("After the move");
    print_show(&lab.dir, "xtr-c", "show ip lisp map-cache");
    print_show(&lab.dir, "ms", "show lisp site");
    print_show(&lab.dir, "xtr-b", "show lisp dynamic-eid summary");
    print_show(&lab.dir, "xtr-a", "show ip lisp away");

    let m = measure(&replies, sent, moved_at);
    say!("");
    match (&converged, m.convergence) {
        (Ok(()), Some(c)) => {
            say!(
                "Convergence: {:.0} ms from the move to the first reply from the host at {TO}; {} of {} pings lost (one every 100 ms).",
                c * 1000.0,
                m.lost,
                m.sent
            );
            Ok(())
        }
        _ => Err(lab_err(format!(
            "the remote host's pings did not reach the moved host again within {}s of the move ({}); the daemons' logs are kept in {}",
            CONVERGE_TIMEOUT.as_secs(),
            if m.convergence.is_some() {
                "answered again, but not steadily"
            } else {
                "no reply since the move"
            },
            lab.files.join("logs").display()
        ))),
    }
}

/// The lab while it is up: dropping it tears everything down (also on error and Ctrl-C).
struct Running {
    name: String,
    dir: PathBuf,
    files: PathBuf,
    keep_logs: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let t = Instant::now();
        print_step(6, &format!("tearing lab {} down", self.name));
        if self.keep_logs {
            let logs = self.files.join("logs");
            let _ = std::fs::create_dir_all(&logs);
            if let Ok(entries) = std::fs::read_dir(&self.dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "log") {
                        let _ = std::fs::copy(&p, logs.join(e.file_name()));
                    }
                }
            }
        }
        let result = match State::load(&self.dir) {
            Ok(Some(st)) => teardown(&st, &self.dir),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if !self.keep_logs {
            let _ = std::fs::remove_dir_all(&self.files);
        } else {
            for (file, _) in CONFIGS {
                let _ = std::fs::remove_file(self.files.join("across-subnet").join(file));
            }
        }
        let prefix = format!("clab-{}-", self.name);
        let left: Vec<String> = std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        match result {
            Ok(()) if left.is_empty() => {
                done(t);
                say!("      no namespace left behind");
            }
            Ok(()) => say!("namespaces left: {}", left.join(" ")),
            Err(e) => say!("failed: {e}"),
        }
    }
}

/// Writes the built-in topology (named `name`) and its startup configurations to a private
/// directory.
fn write_files(name: &str) -> Result<PathBuf, RoamerError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(lab_err(format!(
            "lab name {name:?}: use letters, digits, '-', '_' and '.'"
        )));
    }
    let dir = std::env::temp_dir().join(format!("roamer-lab-{name}-{}", std::process::id()));
    let io = |e: std::io::Error| lab_err(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir.join("across-subnet")).map_err(io)?;
    let topology: String = TOPOLOGY
        .lines()
        .map(|l| {
            if l.starts_with("name:") {
                format!("name: {name}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dir.join("across-subnet.clab.yml"), topology).map_err(io)?;
    for (file, text) in CONFIGS {
        std::fs::write(dir.join("across-subnet").join(file), text).map_err(io)?;
    }
    Ok(dir)
}

fn catch_signals() -> Result<(), RoamerError> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                let _ = tx.send(Err("cannot catch SIGINT/SIGTERM".into()));
                return;
            };
            let _ = tx.send(Ok(()));
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                if !STOP.swap(true, Ordering::SeqCst) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "\nroamer lab: interrupted; the lab is torn down"
                    );
                }
            }
        });
    });
    match rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(lab_err(e)),
        Err(_) => Err(lab_err("cannot catch signals")),
    }
}

fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, RoamerError> {
    let deadline = Instant::now() + timeout;
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Err(lab_err("interrupted"));
        }
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(lab_err(format!(
                "{what}: not within {}s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn show(dir: &Path, node: &str, cmd: &str) -> Result<String, RoamerError> {
    let mut conn = Connection::open(&dir.join(format!("{node}.sock")))?;
    let resp = conn.call(&Request::Line {
        line: cmd.to_string(),
    })?;
    if resp.ok {
        Ok(resp.output)
    } else {
        Err(lab_err(format!("{node}: {cmd}: {}", resp.output.trim())))
    }
}

fn print_show(dir: &Path, node: &str, cmd: &str) {
    say!("{node}# {cmd}");
    match show(dir, node, cmd) {
        Ok(out) => say_part!("{out}"),
        Err(e) => say!("% {e}"),
    }
    say!("");
}

fn print_step(n: u8, what: &str) {
    say_part!("[{n}/6] {what} … ");
}

fn done(since: Instant) {
    say!("done ({:.1} s)", since.elapsed().as_secs_f64());
}

fn banner(title: &str) {
    let rule = "─".repeat(70usize.saturating_sub(title.len() + 4));
    say!("\n── {title} {rule}\n");
}

/// A group row of `show hsrp brief` in state Active.
fn hsrp_active(brief: &str) -> bool {
    brief.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next().is_some_and(|i| i.starts_with("Vlan")) && w.any(|x| x == "Active")
    })
}

/// `ip netns exec NETNS roamer lab ping ARGS…`: roamer's own ICMP echoes from a node.
fn pinger(netns: &str, args: &[&str]) -> Result<Command, RoamerError> {
    let exe = std::env::current_exe()
        .map_err(|e| lab_err(format!("cannot find the roamer binary: {e}")))?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns])
        .arg(exe)
        .args(["lab", "ping"])
        .args(args)
        .process_group(0);
    Ok(c)
}

/// One ping (1 s timeout) from a node's namespace; whether it was answered.
fn ping_once(netns: &str, to: &str) -> bool {
    pinger(netns, &["-c", "1", "-W", "1", to]).is_ok_and(|mut c| {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// An echo reply: when it arrived (epoch seconds) and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reply {
    at: f64,
    seq: u32,
}

/// `roamer lab ping` (timestamped as `ping -D`) from a namespace, its replies collected as they
/// arrive.
struct Pinger {
    child: Mutex<Child>,
    replies: Arc<Mutex<Vec<Reply>>>,
    /// From ping's summary once it has stopped.
    sent: Arc<Mutex<Option<u32>>>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Pinger {
    fn start(netns: &str, to: &str) -> Result<Pinger, RoamerError> {
        let mut child = pinger(
            netns,
            &[
                "-i",
                PING_INTERVAL,
                "-W",
                "1",
                "-w",
                "120",
                "--until-stdin-closes",
                to,
            ],
        )?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| lab_err(format!("cannot run roamer lab ping: {e}")))?;
        let replies = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(None));
        let reader = child.stdout.take().map(|out| {
            let (sink, total) = (replies.clone(), sent.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(r) = parse_reply(&line)
                        && let Ok(mut v) = sink.lock()
                    {
                        v.push(r);
                    } else if let Some(n) = parse_transmitted(&line)
                        && let Ok(mut t) = total.lock()
                    {
                        *t = Some(n);
                    }
                }
            })
        });
        Ok(Pinger {
            child: Mutex::new(child),
            replies,
            sent,
            reader: Mutex::new(reader),
        })
    }

    fn replies(&self) -> Vec<Reply> {
        self.replies.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops the pinger by closing its standard input, so that it prints how many requests it
    /// sent.
    fn stop(&self) -> (Vec<Reply>, Option<u32>) {
        if let Ok(mut c) = self.child.lock() {
            drop(c.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(reader) = self.reader.lock().ok().and_then(|mut r| r.take()) {
            let _ = reader.join();
        }
        let sent = self.sent.lock().ok().and_then(|s| *s);
        (self.replies(), sent)
    }
}

/// `[1700000000.123456] 64 bytes from 10.1.1.5: icmp_seq=12 ttl=62 time=0.4 ms`.
fn parse_reply(line: &str) -> Option<Reply> {
    if !line.contains("bytes from") {
        return None;
    }
    let at = line.strip_prefix('[')?.split(']').next()?.parse().ok()?;
    let seq = line
        .split("icmp_seq=")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(Reply { at, seq })
}

/// `100 packets transmitted, 97 received, 3% packet loss, time 9912ms`.
fn parse_transmitted(line: &str) -> Option<u32> {
    let (n, _) = line.split_once(" packets transmitted")?;
    n.trim().parse().ok()
}

/// The last [`STEADY`] sequence numbers were all answered, after the move.
fn steady_after(replies: &[Reply], moved_at: f64) -> bool {
    let mut seqs: Vec<u32> = replies
        .iter()
        .filter(|r| r.at > moved_at)
        .map(|r| r.seq)
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs.len() >= STEADY && {
        let tail = &seqs[seqs.len() - STEADY..];
        tail[STEADY - 1] - tail[0] == (STEADY - 1) as u32
    }
}

#[derive(Debug, PartialEq)]
struct Measure {
    /// Echo requests sent up to the last one answered.
    sent: u32,
    lost: u32,
    /// Seconds from the move to the first reply after the last lost request (0 when none
    /// was lost); `None` when nothing was answered after the move.
    convergence: Option<f64>,
}

/// `sent`: how many requests ping says it sent (else: up to the last one answered).
fn measure(replies: &[Reply], sent: Option<u32>, moved_at: f64) -> Measure {
    let answered: std::collections::BTreeSet<u32> = replies.iter().map(|r| r.seq).collect();
    // The very last request may still have been in flight when ping stopped.
    let Some(last) = sent
        .map(|s| s.saturating_sub(1))
        .into_iter()
        .chain(answered.last().copied())
        .max()
    else {
        return Measure {
            sent: 0,
            lost: 0,
            convergence: None,
        };
    };
    // Counted from the first answered request (the warm-up may have lost the very first).
    let first = answered.iter().next().copied().unwrap_or(1);
    let lost: Vec<u32> = (first..=last).filter(|s| !answered.contains(s)).collect();
    let after_loss = lost.last().copied().unwrap_or(0);
    let convergence = if lost.is_empty() {
        replies.iter().any(|r| r.at > moved_at).then_some(0.0)
    } else {
        replies
            .iter()
            .filter(|r| r.seq > after_loss && r.at > moved_at)
            .map(|r| r.at)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))))
            .map(|t| (t - moved_at).max(0.0))
    };
    Measure {
        sent: (last + 1).saturating_sub(first),
        lost: lost.len() as u32,
        convergence,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_timestamped_replies_only() {
        assert_eq!(
            parse_reply(
                "[1700000000.500000] 64 bytes from 10.1.1.5: icmp_seq=12 ttl=62 time=0.4 ms"
            ),
            Some(Reply {
                at: 1_700_000_000.5,
                seq: 12
            })
        );
        assert_eq!(
            parse_reply("PING 10.1.1.5 (10.1.1.5) 56(84) bytes of data."),
            None
        );
        assert_eq!(
            parse_reply("[1700000000.5] From 10.3.3.1 icmp_seq=3 Destination Host Unreachable"),
            None
        );
    }

    #[test]
    fn measures_the_outage_around_the_move() {
        let r = |seq: u32| Reply {
            at: 100.0 + f64::from(seq) * 0.1,
            seq,
        };
        // 1..=10 answered, 11..=14 lost (the move at 101.05), 15..=40 answered.
        let replies: Vec<Reply> = (1..=10).chain(15..=40).map(r).collect();
        let m = measure(&replies, None, 101.05);
        assert_eq!((m.sent, m.lost), (40, 4));
        // ping's own count includes the requests still unanswered when it stopped.
        let m2 = measure(&replies, Some(43), 101.05);
        assert_eq!((m2.sent, m2.lost), (42, 6));
        assert_eq!(m2.convergence, None);
        let c = m.convergence.unwrap();
        assert!((c - 0.45).abs() < 1e-6, "{c}");
        assert!(steady_after(&replies, 101.05));
        assert!(!steady_after(&replies[..15], 101.05));
        // Nothing lost: hitless.
        let all: Vec<Reply> = (1..=30).map(r).collect();
        assert_eq!(measure(&all, Some(31), 101.05).convergence, Some(0.0));
        // Nothing answered after the move.
        let none: Vec<Reply> = (1..=10).map(r).collect();
        assert_eq!(measure(&none, Some(40), 101.05).convergence, None);
        assert_eq!(measure(&none, Some(41), 101.05).lost, 30);
        assert_eq!(
            parse_transmitted("100 packets transmitted, 97 received, 3% packet loss, time 9912ms"),
            Some(100)
        );
    }
}
