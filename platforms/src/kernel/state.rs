//! What roamer changed in the kernel that has no mark of its own (a sysctl, an interface's
//! MAC address): the old values, kept in memory and in a state file
//! `/run/roamer/kernel-<netns inode>.state`, so they are restored on stop and, after a crash,
//! on the next start in the same namespace. Every file access runs on the netlink thread, which
//! lives in the backend's namespace (a test harness may call from another one).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use roamer_hal::HalError;

use super::nl::Netlink;

/// The old values, by what was changed.
#[derive(Debug)]
pub struct Restore {
    nl: Arc<Netlink>,
    path: Option<PathBuf>,
    /// sysctl path (under /proc/sys) -> old value.
    sysctls: BTreeMap<String, String>,
    /// device -> old MAC (aa:bb:..).
    macs: BTreeMap<String, String>,
}

fn state_path() -> Option<PathBuf> {
    let ino = std::fs::metadata("/proc/thread-self/ns/net").ok()?.ino();
    Some(PathBuf::from(format!("/run/roamer/kernel-{ino}.state")))
}

/// The inodes of every network namespace that still exists: those of running processes and
/// those kept by `ip netns` (`/run/netns`).
fn live_namespaces() -> std::collections::BTreeSet<u64> {
    let mut live = std::collections::BTreeSet::new();
    let pids = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for e in pids {
        if let Ok(m) = std::fs::metadata(e.path().join("ns/net")) {
            live.insert(m.ino());
        }
    }
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(m) = std::fs::metadata(e.path()) {
            live.insert(m.ino());
        }
    }
    live
}

/// Removes the state files of namespaces that are gone (a run killed with its namespace: there
/// is nothing left to restore).
fn remove_orphans(dir: &std::path::Path) {
    let live = live_namespaces();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let ino = name.to_str().and_then(|n| {
            n.strip_prefix("kernel-")?
                .strip_suffix(".state")?
                .parse::<u64>()
                .ok()
        });
        if let Some(ino) = ino
            && !live.contains(&ino)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn flatten<T>(r: Result<io::Result<T>, HalError>) -> io::Result<T> {
    r.map_err(io::Error::other)?
}

fn parse(text: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (mut sysctls, mut macs) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("sysctl"), Some(k), Some(v)) => {
                sysctls.insert(k.into(), v.into());
            }
            (Some("mac"), Some(k), Some(v)) => {
                macs.insert(k.into(), v.into());
            }
            _ => {}
        }
    }
    (sysctls, macs)
}

/// Writes the old values back (on the calling thread); returns what was restored.
fn put_back(sysctls: &BTreeMap<String, String>, macs: &BTreeMap<String, String>) -> Vec<String> {
    let mut done = Vec::new();
    for (k, v) in sysctls {
        if std::fs::write(k, v).is_ok() {
            done.push(format!("{k}={v}"));
        }
    }
    for (dev, mac) in macs {
        let ok = std::process::Command::new("ip")
            .args(["link", "set", "dev", dev, "address", mac])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            done.push(format!("{dev} address {mac}"));
        }
    }
    done
}

impl Restore {
    /// Restores what a previous run left in its state file (after a crash), then starts a new
    /// record. Returns what was restored, for the log.
    pub fn recover(nl: Arc<Netlink>) -> Result<(Restore, Vec<String>), HalError> {
        let (path, done) = nl.run("recover state", || {
            let path = state_path();
            if let Some(dir) = path.as_ref().and_then(|p| p.parent()) {
                remove_orphans(dir);
            }
            let mut done = Vec::new();
            if let Some(p) = &path
                && let Ok(text) = std::fs::read_to_string(p)
            {
                let (sysctls, macs) = parse(&text);
                done = put_back(&sysctls, &macs);
                let _ = std::fs::remove_file(p);
            }
            (path, done)
        })?;
        Ok((
            Restore {
                nl,
                path,
                sysctls: BTreeMap::new(),
                macs: BTreeMap::new(),
            },
            done,
        ))
    }

    fn save(&self) {
        let Some(p) = self.path.clone() else { return };
        let mut text = String::new();
        for (k, v) in &self.sysctls {
            text.push_str(&format!("sysctl {k} {v}\n"));
        }
        for (k, v) in &self.macs {
            text.push_str(&format!("mac {k} {v}\n"));
        }
        let _ = self.nl.run("save state", move || {
            if text.is_empty() {
                let _ = std::fs::remove_file(&p);
                return;
            }
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(&p, text);
        });
    }

    /// Sets a sysctl, remembering its value before roamer's first change.
    pub fn set_sysctl(&mut self, path: &str, value: &str) -> io::Result<()> {
        let p = path.to_string();
        let old = flatten(self.nl.run("read sysctl", move || {
            std::fs::read_to_string(&p).map(|s| s.trim().to_string())
        }))?;
        if old == value {
            return Ok(());
        }
        self.sysctls.entry(path.to_string()).or_insert(old);
        self.save();
        let (p, v) = (path.to_string(), value.to_string());
        flatten(self.nl.run("write sysctl", move || std::fs::write(&p, v)))
    }

    /// Puts one sysctl back to its value before roamer.
    pub fn restore_sysctl(&mut self, path: &str) -> io::Result<()> {
        if let Some(old) = self.sysctls.remove(path) {
            let p = path.to_string();
            flatten(self.nl.run("write sysctl", move || std::fs::write(&p, old)))?;
            self.save();
        }
        Ok(())
    }

    /// Remembers a device's MAC before roamer changes it (the first time only).
    pub fn remember_mac(&mut self, device: &str, mac: &str) {
        self.macs
            .entry(device.to_string())
            .or_insert_with(|| mac.to_string());
        self.save();
    }

    /// The MAC a device had before roamer, forgetting it.
    pub fn take_mac(&mut self, device: &str) -> Option<String> {
        let m = self.macs.remove(device);
        self.save();
        m
    }

    /// Puts everything back; returns what was restored, for the log.
    pub fn restore_all(&mut self) -> Vec<String> {
        let sysctls = std::mem::take(&mut self.sysctls);
        let macs = std::mem::take(&mut self.macs);
        let done = self
            .nl
            .run("restore", move || put_back(&sysctls, &macs))
            .unwrap_or_default();
        self.save();
        done
    }
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lines_parse_back() {
        let (s, m) =
            parse("sysctl /proc/sys/net/ipv4/ip_forward 0\nmac swp1 02:00:00:00:00:01\nbogus\n");
        assert_eq!(
            s.get("/proc/sys/net/ipv4/ip_forward").map(String::as_str),
            Some("0")
        );
        assert_eq!(m.get("swp1").map(String::as_str), Some("02:00:00:00:00:01"));
        assert_eq!(parse_mac("02:00:00:00:00:01"), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
    }
}
