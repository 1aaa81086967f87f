//! roamer as a containerlab node: the startup configuration is bound at
//! `/etc/roamer/startup-config`, eth0 is containerlab's management interface (never a data
//! port), data port `ethN` is `Ethernet1/N`, and the data interfaces are attached by containerlab
//! after the container has started: `CLAB_INTFS` says how many to wait for.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roamer_control::config::Config;
use roamer_control::reconcile::port_bindings;
use tracing::{info, warn};

use crate::error::RoamerError;

/// The startup configuration `roamer run` reads when `--config` is not given (where containerlab
/// binds it).
pub const STARTUP_CONFIG: &str = "/etc/roamer/startup-config";

/// containerlab's variable: the number of data interfaces it attaches to the container.
pub const CLAB_INTFS: &str = "CLAB_INTFS";

/// How long `roamer run` waits for them (`ROAMER_PORT_WAIT` seconds overrides it).
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// The management interface containerlab gives every container.
const MGMT: &str = "eth0";

pub fn startup_config(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| PathBuf::from(STARTUP_CONFIG))
}

/// The devices the configuration's data ports are taken over from (TAP ports are created by
/// roamer itself and are not waited for).
fn devices(cfg: &Config) -> Vec<String> {
    port_bindings(cfg)
        .into_iter()
        .map(|b| b.device)
        .filter(|d| !d.starts_with("tap:"))
        .collect()
}

/// Interfaces that count as data interfaces: `ethN` with N ≥ 1, and any device a port names.
fn data_interfaces(dir: &Path, named: &[String]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            n != MGMT
                && (named.contains(n)
                    || n.strip_prefix("eth")
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())))
        })
        .collect();
    found.sort();
    found
}

/// What is still missing: fewer data interfaces than expected. A device a port names that is
/// absent is not waited for (its port starts down, `Link not present`, and comes up when the
/// device appears) but is named.
fn missing(dir: &Path, expected: usize, named: &[String]) -> Option<String> {
    let have = data_interfaces(dir, named);
    if have.len() >= expected {
        return None;
    }
    let absent: Vec<&str> = named
        .iter()
        .filter(|d| !have.contains(d))
        .map(String::as_str)
        .collect();
    let mut what = format!("{} of {expected} data interface(s)", have.len());
    if !absent.is_empty() {
        what.push_str(&format!("; no device yet for {}", absent.join(", ")));
    }
    Some(what)
}

/// Under containerlab (`CLAB_INTFS` set): refuses a port on eth0 and waits until that many data
/// interfaces are there (then, or after the timeout, the switch starts: a port whose device is
/// missing is down until the device appears). Elsewhere nothing is waited for.
pub fn wait_for_ports(cfg: &Config) -> Result<(), RoamerError> {
    let Some(value) = std::env::var_os(CLAB_INTFS) else {
        return Ok(());
    };
    let expected: usize = value
        .to_str()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            RoamerError::Lab(format!(
                "{CLAB_INTFS}={value:?}: expected the number of data interfaces"
            ))
        })?;
    let named = devices(cfg);
    if named.iter().any(|d| d == MGMT) {
        return Err(RoamerError::Lab(format!(
            "a port is mapped to {MGMT}, containerlab's management interface; data ports are eth1 and up (Ethernet1/N = ethN)"
        )));
    }
    let timeout = std::env::var("ROAMER_PORT_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WAIT);
    wait(Path::new("/sys/class/net"), expected, &named, timeout)
}

fn wait(
    dir: &Path,
    expected: usize,
    named: &[String],
    timeout: Duration,
) -> Result<(), RoamerError> {
    let start = Instant::now();
    let mut next_log = start;
    loop {
        let Some(what) = missing(dir, expected, named) else {
            if start.elapsed() > Duration::from_millis(100) {
                info!(
                    waited_ms = start.elapsed().as_millis() as u64,
                    "data interfaces attached"
                );
            }
            return Ok(());
        };
        if start.elapsed() >= timeout {
            warn!(
                "{CLAB_INTFS}={expected}: after {timeout:?}, {what}; starting: the ports without their device stay down until it appears"
            );
            return Ok(());
        }
        if Instant::now() >= next_log {
            info!("waiting for containerlab to attach the data interfaces: {what}");
            next_log += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_eth_interfaces_but_not_management_and_names_what_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for n in ["lo", "eth0", "eth1", "tunl0", "ethx", "sit0"] {
            std::fs::create_dir(dir.join(n)).unwrap();
        }
        assert_eq!(data_interfaces(&dir, &[]), vec!["eth1"]);
        assert_eq!(missing(&dir, 1, &[]), None);
        let m = missing(&dir, 2, &["eth1".into(), "eth2".into()]).unwrap();
        assert!(m.contains("1 of 2") && m.contains("eth2"), "{m}");
        // A named device that is absent is not waited for once the count is reached.
        assert_eq!(missing(&dir, 1, &["eth1".into(), "eth7".into()]), None);
        std::fs::create_dir(dir.join("eth2")).unwrap();
        assert_eq!(missing(&dir, 2, &["eth1".into(), "eth2".into()]), None);
        // A renamed port counts once it is there.
        assert!(missing(&dir, 3, &["uplink".into()]).is_some());
        std::fs::create_dir(dir.join("uplink")).unwrap();
        assert_eq!(missing(&dir, 3, &["uplink".into()]), None);
        // After the timeout the switch starts anyway.
        let started = Instant::now();
        wait(&dir, 5, &[], Duration::from_millis(50)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
