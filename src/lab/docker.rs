//! `roamer lab up --runtime docker`: the nodes are real containers, run as containerlab runs
//! them. roamer nodes run the topology's roamer image (`roamer:latest`) with the startup
//! configuration bound read-write at `/etc/roamer/startup-config`, a host directory of the lab
//! bound at `/run/roamer` (the control socket is reachable from the host, so `lab exec`, the
//! convergence wait and `lab move` work unchanged) and `CLAB_INTFS` set; `linux` nodes run their
//! image when it is loaded, else `roamer-host:latest`. Every container has `--network none`; its
//! network namespace is made visible as containerlab does (`/run/netns/NAME` →
//! `/proc/PID/ns/net`), and the links are veth pairs moved into the namespaces after start.
//!
//! Everything goes through the `docker` CLI, so `DOCKER_HOST` and the CLI's contexts apply.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::lab_err;
use crate::error::RoamerError;

/// The image `linux` nodes fall back to when theirs is not loaded.
pub const HOST_IMAGE: &str = "roamer-host:latest";

/// What to tell someone whose engine lacks an image.
const LOAD_HINT: &str = "run scripts/build-images.sh container, then docker load -i target/images/roamer-oci.tar and docker load -i target/images/roamer-host-oci.tar";

/// Runs `docker ARGS`; an error carries its stderr, and says what to do when the CLI is missing.
pub fn docker(args: &[&str]) -> Result<String, RoamerError> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                lab_err("--runtime docker needs the docker CLI (Debian package docker.io) on PATH")
            } else {
                lab_err(format!("cannot run docker: {e}"))
            }
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(lab_err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Checks that the CLI is there and the engine answers.
pub fn check_engine() -> Result<(), RoamerError> {
    match docker(&["version", "--format", "{{.Server.Version}}"]) {
        Ok(_) => Ok(()),
        Err(RoamerError::Lab(m)) if m.contains("docker CLI") => Err(RoamerError::Lab(m)),
        Err(e) => {
            let e = match e {
                RoamerError::Lab(m) => m,
                other => other.to_string(),
            };
            let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "the default socket".into());
            Err(lab_err(format!(
                "the Docker engine is not running or not reachable at {host} (start it: systemctl start docker, or dockerd): {e}"
            )))
        }
    }
}

/// Whether the engine has this image.
pub fn image_loaded(image: &str) -> bool {
    docker(&["image", "inspect", "--format", "{{.Id}}", image]).is_ok()
}

/// The image a roamer node runs: the topology's, which must be loaded.
pub fn roamer_image(node: &str, image: &str) -> Result<String, RoamerError> {
    if image_loaded(image) {
        Ok(image.to_string())
    } else {
        Err(lab_err(format!(
            "node {node}: image {image} is not loaded in the Docker engine: {LOAD_HINT}"
        )))
    }
}

/// The image a linux node runs: its own when loaded, else the host image (one line says so).
pub fn linux_image(node: &str, image: &str) -> Result<String, RoamerError> {
    if !image.is_empty() && image_loaded(image) {
        return Ok(image.to_string());
    }
    if !image_loaded(HOST_IMAGE) {
        return Err(lab_err(format!(
            "node {node}: image {HOST_IMAGE} (for linux nodes) is not loaded in the Docker engine: {LOAD_HINT}"
        )));
    }
    if !image.is_empty() {
        println!("  {node}: image {image} is not loaded; using {HOST_IMAGE}");
    }
    Ok(HOST_IMAGE.to_string())
}

/// Whether a container of this name exists (running or not).
pub fn exists(name: &str) -> bool {
    docker(&["container", "inspect", "--format", "{{.Id}}", name]).is_ok()
}

/// The capability names by number (capability(7)), up to CAP_CHECKPOINT_RESTORE.
const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities, by name, that a bounding set (`CapBnd:` of /proc/PID/status, hex) lacks
/// among those the kernel knows (0 to `last_cap`).
fn missing_caps(status: &str, last_cap: usize) -> Vec<&'static str> {
    let Some(bits) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Vec::new();
    };
    CAPS.iter()
        .enumerate()
        .take(last_cap.saturating_add(1))
        .filter(|(i, _)| bits & (1u64 << i) == 0)
        .map(|(_, name)| *name)
        .collect()
}

/// How containers get their privileges: `--privileged` as containerlab gives them, or, where
/// this machine's capability bounding set lacks some capability (a machine that is itself a
/// container), `--privileged` cannot start a container and every capability there is is given
/// instead, without seccomp and AppArmor confinement (said once, on `message`).
pub fn privilege_args(message: &mut Option<String>) -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAPS.len() - 1);
    let missing = missing_caps(&status, last_cap);
    if missing.is_empty() {
        return vec!["--privileged".to_string()];
    }
    *message = Some(format!(
        "this machine's capability bounding set lacks CAP_{}: the containers get every other capability instead of --privileged",
        missing.join(", CAP_")
    ));
    let mut args = vec!["--cap-add".to_string(), "ALL".to_string()];
    for cap in missing {
        args.push("--cap-drop".to_string());
        args.push(cap.to_string());
    }
    for opt in [
        "seccomp=unconfined",
        "apparmor=unconfined",
        "systempaths=unconfined",
    ] {
        args.push("--security-opt".to_string());
        args.push(opt.to_string());
    }
    args
}

/// One container to create.
pub struct Spec<'a> {
    pub lab: &'a str,
    pub node: &'a str,
    pub name: &'a str,
    pub image: &'a str,
    pub privileges: &'a [String],
    /// `CLAB_INTFS`, for roamer nodes.
    pub intfs: Option<usize>,
    /// (host path, container path) bind mounts, read-write.
    pub binds: Vec<(PathBuf, &'a str)>,
    /// A terminal keeps images whose command is a shell running (as containerlab's linux nodes).
    pub tty: bool,
}

/// `docker create`: the new container's ID.
pub fn create(spec: &Spec) -> Result<String, RoamerError> {
    let mut args: Vec<String> = [
        "create",
        "--name",
        spec.name,
        "--hostname",
        spec.node,
        "--network",
        "none",
        "--label",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("containerlab={}", spec.lab));
    args.push("--label".into());
    args.push(format!("clab-node-name={}", spec.node));
    args.extend(spec.privileges.iter().cloned());
    if let Some(n) = spec.intfs {
        args.push("--env".into());
        args.push(format!("{}={n}", super::container::CLAB_INTFS));
    }
    for (host, target) in &spec.binds {
        args.push("--volume".into());
        args.push(format!("{}:{target}", host.display()));
    }
    if spec.tty {
        args.push("--tty".into());
    }
    args.push(spec.image.to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = docker(&refs)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(lab_err(format!(
            "node {}: docker create answered {id:?}, not a container ID",
            spec.node
        )));
    }
    Ok(id)
}

/// Starts a created container; its PID (in the host's PID namespace).
pub fn start(id: &str) -> Result<u32, RoamerError> {
    docker(&["start", id])?;
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", id])?;
    match pid.parse::<u32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(lab_err(format!(
            "container {id}: not running after start (PID {pid:?}): {}",
            logs(id)
        ))),
    }
}

/// Whether a container is running.
pub fn running(id: &str) -> bool {
    docker(&["inspect", "--format", "{{.State.Running}}", id]).is_ok_and(|s| s == "true")
}

/// The last lines of a container's output, for an error message.
pub fn logs(id: &str) -> String {
    Command::new("docker")
        .args(["logs", "--tail", "20", id])
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

/// Makes the container's network namespace visible to `ip netns` as containerlab does: a
/// symbolic link `/run/netns/NAME` → `/proc/PID/ns/net`.
pub fn link_netns(name: &str, pid: u32) -> Result<(), RoamerError> {
    let dir = Path::new("/run/netns");
    std::fs::create_dir_all(dir)
        .map_err(|e| lab_err(format!("cannot create {}: {e}", dir.display())))?;
    let link = dir.join(name);
    std::os::unix::fs::symlink(format!("/proc/{pid}/ns/net"), &link)
        .map_err(|e| lab_err(format!("cannot link {}: {e}", link.display())))
}

/// Removes a namespace link made by [`link_netns`] (a symbolic link only: a namespace someone
/// mounted there is not ours).
pub fn unlink_netns(name: &str) -> Result<(), RoamerError> {
    let link = Path::new("/run/netns").join(name);
    match std::fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(&link)
            .map_err(|e| lab_err(format!("cannot remove {}: {e}", link.display()))),
        Ok(_) => Err(lab_err(format!(
            "{} is not the symbolic link roamer lab made; left alone",
            link.display()
        ))),
        Err(_) => Ok(()),
    }
}

/// Stops (SIGTERM, SIGKILL after 5 s) and removes a container; one that is gone already is fine.
pub fn remove(id: &str) -> Result<(), RoamerError> {
    let gone = |e: &RoamerError| e.to_string().contains("No such container");
    if let Err(e) = docker(&["stop", "-t", "5", id])
        && !gone(&e)
    {
        return Err(e);
    }
    match docker(&["rm", "--force", "--volumes", id]) {
        Err(e) if !gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// `docker exec NAME sh -c LINE`, output captured (a linux node's exec line).
pub fn exec_line(name: &str, line: &str) -> Result<String, RoamerError> {
    docker(&["exec", name, "sh", "-c", line])
}

/// `docker exec NAME sh -c LINE` with the terminal's output (`roamer lab exec`): its status.
pub fn exec_interactive(name: &str, line: &str) -> Result<std::process::ExitStatus, RoamerError> {
    Command::new("docker")
        .args(["exec", name, "sh", "-c", line])
        .status()
        .map_err(|e| lab_err(format!("cannot run docker exec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_capabilities_a_bounding_set_lacks() {
        let full = "Name:\tx\nCapBnd:\t000001ffffffffff\n";
        assert!(missing_caps(full, 40).is_empty());
        let container = "CapBnd:\t000001fffeffffff\n";
        assert_eq!(missing_caps(container, 40), vec!["SYS_RESOURCE"]);
        // An older kernel does not know the higher ones: they are not missing.
        assert!(missing_caps("CapBnd:\t0000003fffffffff\n", 37).is_empty());
        assert_eq!(
            missing_caps("CapBnd:\t0000003fffffffff\n", 40),
            vec!["PERFMON", "BPF", "CHECKPOINT_RESTORE"]
        );
    }
}
