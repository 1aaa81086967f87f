//! `roamer lab`: runs containerlab topology files without containerlab or Docker. One network
//! namespace per node (named as containerlab names the container), one veth pair per link
//! (named by its endpoints inside the namespaces); roamer nodes run `roamer run` on the startup
//! configuration from their binds, other linux nodes run their `exec` lines.
//!
//! Everything `up` creates is written to a state file before it is created, so `down` removes
//! exactly that (by name and PID), also after `up` failed halfway.

mod announce;
pub mod container;
mod demo;
mod docker;
mod migrate;
pub mod ping;
mod ready;
mod state;
mod topology;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::error::RoamerError;
pub use state::Runtime;
use state::{ContainerState, DaemonState, LinkState, NodeState, State};
use topology::{Role, Topology};

/// How long a roamer node may take to serve its control socket.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `roamer lab`: without a subcommand, the across-subnet mobility demo from a built-in copy of
/// `images/containerlab/across-subnet.clab.yml`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    command: Option<LabCommand>,
    /// The demo lab's name (its namespaces are clab-NAME-NODE).
    #[arg(long, default_value = demo::DEFAULT_NAME)]
    name: String,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the lab of a containerlab topology file: namespaces, links, roamer daemons, exec lines.
    Up {
        /// The containerlab topology file.
        file: PathBuf,
        /// Return once the namespaces, links and daemons exist, without waiting for HSRP,
        /// registrations and reliable sessions.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the lab to converge, in seconds.
        #[arg(long, default_value_t = ready::DEFAULT_TIMEOUT.as_secs())]
        timeout: u64,
        /// Network namespaces and daemons started by roamer, or Docker containers of
        /// roamer:latest (and roamer-host:latest for linux nodes) as containerlab runs them.
        #[arg(long, value_enum, default_value_t = Runtime::Netns)]
        runtime: Runtime,
    },
    /// Check a topology file and every startup configuration it binds; builds nothing.
    Validate {
        /// The containerlab topology file.
        file: PathBuf,
    },
    /// Remove everything `up` created for this topology file.
    Down {
        /// The containerlab topology file.
        file: PathBuf,
    },
    /// Run a command on a node: a roamer CLI command on a roamer node, a shell command elsewhere.
    Exec {
        /// The lab's topology file (needed when several labs are up).
        #[arg(long)]
        topo: Option<PathBuf>,
        /// The node name as in the topology file.
        node: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Re-attach a host's link to another node's port, as a migrated VM arrives: same interface
    /// name, MAC, addresses and routes. The port's far end (a spare node) gets the old link; a
    /// port with nothing wired to it gets a new link, and the old one is removed.
    Move {
        /// The lab's topology file (needed when several labs are up).
        #[arg(long)]
        topo: Option<PathBuf>,
        /// The host node (or NODE:IFACE when it has several links).
        host: String,
        /// The port it arrives at, NODE:IFACE (e.g. sw2:eth3).
        #[arg(long)]
        to: String,
        /// What the host sends on arrival, as after a live migration: gratuitous ARP (roamer
        /// detects the dynamic EID from it), RARP (QEMU announce-self, VMware: the MAC moves,
        /// no EID until the host talks), both, or none.
        #[arg(long, value_enum, default_value_t = announce::Announce::Both)]
        announce: announce::Announce,
    },
    /// Sends a moved host's announcement from the namespace this runs in (under
    /// `ip netns exec`).
    #[command(hide = true)]
    Announce(announce::AnnounceArgs),
    /// ICMP echoes from the namespace this runs in (under `ip netns exec`): how the lab pings
    /// without iputils-ping.
    #[command(hide = true)]
    Ping(ping::PingArgs),
}

pub fn dispatch(args: LabArgs) -> Result<(), RoamerError> {
    let Some(cmd) = args.command else {
        return demo::run(&args.name);
    };
    match cmd {
        LabCommand::Up {
            file,
            no_wait,
            timeout,
            runtime,
        } => up(
            &file,
            (!no_wait).then(|| Duration::from_secs(timeout)),
            runtime,
        ),
        LabCommand::Validate { file } => validate(&file),
        LabCommand::Down { file } => down(&file),
        LabCommand::Exec {
            topo,
            node,
            command,
        } => exec(topo.as_deref(), &node, &command),
        LabCommand::Move {
            topo,
            host,
            to,
            announce,
        } => {
            let (mut st, dir) = current(topo.as_deref())?;
            migrate::move_host(&mut st, &dir, &host, &to, announce)
        }
        LabCommand::Announce(args) => announce::run(&args),
        LabCommand::Ping(args) => {
            if ping::run(&args)? {
                Ok(())
            } else {
                // As ping: status 1 when nothing was answered.
                std::process::exit(1)
            }
        }
    }
}

/// A lab error about one node: `node NODE: WHAT<the error's own message>`.
fn in_node(node: &str, what: &str, e: RoamerError) -> RoamerError {
    match e {
        RoamerError::Lab(m) => lab_err(format!("node {node}: {what}{m}")),
        other => lab_err(format!("node {node}: {what}{other}")),
    }
}

fn lab_err(message: impl Into<String>) -> RoamerError {
    RoamerError::Lab(message.into())
}

/// Runs a command to completion; an error carries its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, RoamerError> {
    // Its own process group: a Ctrl-C at the terminal stops roamer's waits, never a half-done
    // `ip` command (the lab is torn down by roamer, with every command complete).
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && program == "ip" {
                lab_err("roamer lab needs `ip` (Debian package iproute2): apt-get install iproute2")
            } else {
                lab_err(format!("cannot run {program}: {e}"))
            }
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(lab_err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn ip(args: &[&str]) -> Result<String, RoamerError> {
    run("ip", args)
}

/// Builds the lab; with `wait`, returns once it has converged (or fails after that long,
/// saying what is missing; the lab stays up).
pub fn up(file: &Path, wait: Option<Duration>, runtime: Runtime) -> Result<(), RoamerError> {
    let (topo, dir) = bring_up(file, runtime)?;
    let st = State::load(&dir)?.ok_or_else(|| lab_err("the lab's state vanished"))?;
    println!(
        "lab {}: {} node(s), {} link(s) up",
        topo.lab,
        topo.nodes.len(),
        topo.links.len()
    );
    for n in &st.nodes {
        let container = st.containers.iter().find(|c| c.node == n.name);
        let what = if n.socket.is_some() {
            "roamer"
        } else {
            "linux"
        };
        match (container, &n.socket) {
            (Some(c), Some(socket)) => println!(
                "  {:<10} {}  {what}  container {}  socket {}  logs: docker logs {}",
                n.name,
                n.netns,
                c.id.get(..12).unwrap_or(&c.id),
                socket.display(),
                c.name
            ),
            (Some(c), None) => println!(
                "  {:<10} {}  {what}  container {}",
                n.name,
                n.netns,
                c.id.get(..12).unwrap_or(&c.id)
            ),
            (None, Some(socket)) => println!(
                "  {:<10} {}  {what}  socket {}  log {}",
                n.name,
                n.netns,
                socket.display(),
                dir.join(format!("{}.log", n.name)).display()
            ),
            (None, None) => println!("  {:<10} {}  {what}", n.name, n.netns),
        }
    }
    if let Some(timeout) = wait {
        let _ = std::io::stdout().flush();
        ready::wait(&st, timeout)?;
    }
    Ok(())
}

/// `roamer lab validate`: the topology as `up` reads it, and every roamer node's startup
/// configuration checked as `roamer validate` checks it.
pub fn validate(file: &Path) -> Result<(), RoamerError> {
    let topo = topology::load(file)?;
    let catalogue = roamer_hal::Catalogue::builtin()?;
    let mut roamers = 0;
    for node in &topo.nodes {
        match &node.role {
            Role::Roamer { config, .. } => {
                roamers += 1;
                let loaded = crate::load::load(config, &catalogue)?;
                for w in &loaded.warnings {
                    eprintln!("{w}");
                }
                println!(
                    "  {:<10} roamer  {}: {}",
                    node.name,
                    config.display(),
                    crate::load::describe(&loaded.config)
                );
            }
            Role::Linux { exec } => {
                println!("  {:<10} linux   {} exec line(s)", node.name, exec.len())
            }
        }
    }
    println!(
        "lab {}: {} node(s) ({roamers} roamer), {} link(s): valid",
        topo.lab,
        topo.nodes.len(),
        topo.links.len()
    );
    Ok(())
}

/// Builds the lab of a topology file; on failure, whatever was created is removed again.
fn bring_up(file: &Path, runtime: Runtime) -> Result<(Topology, PathBuf), RoamerError> {
    let topo = topology::load(file)?;
    // Every startup configuration is checked before anything is created.
    let catalogue = roamer_hal::Catalogue::builtin()?;
    for node in &topo.nodes {
        if let Role::Roamer { config, .. } = &node.role {
            crate::load::load(config, &catalogue)?;
        }
    }
    let dir = state::lab_dir(&topo.lab);
    if state::path(&dir).exists() {
        return Err(lab_err(format!(
            "lab {} is already up (state in {}); run `roamer lab down` first",
            topo.lab,
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| lab_err(format!("cannot create {}: {e}", dir.display())))?;
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut st = State {
        lab: topo.lab.clone(),
        topology: file,
        nodes: Vec::new(),
        links: Vec::new(),
        daemons: Vec::new(),
        runtime,
        containers: Vec::new(),
    };
    let built = match runtime {
        Runtime::Netns => build(&topo, &dir, &mut st),
        Runtime::Docker => build_docker(&topo, &dir, &mut st),
    };
    match built {
        Ok(()) => Ok((topo, dir)),
        Err(e) => {
            if let Err(clean) = teardown(&st, &dir) {
                eprintln!("roamer: cleaning up after the failure: {clean}");
            }
            Err(e)
        }
    }
}

/// Creates the lab, recording each object in the state file as soon as it exists (never before:
/// an object that was there already, e.g. a namespace of the same name, is not ours to remove).
fn build(topo: &Topology, dir: &Path, st: &mut State) -> Result<(), RoamerError> {
    for node in &topo.nodes {
        if Path::new("/run/netns").join(&node.netns).exists() {
            return Err(lab_err(format!(
                "node {}: network namespace {} exists already (another lab, or containerlab?)",
                node.name, node.netns
            )));
        }
        ip(&["netns", "add", &node.netns])?;
        st.nodes.push(NodeState {
            name: node.name.clone(),
            netns: node.netns.clone(),
            socket: match node.role {
                Role::Roamer { .. } => Some(dir.join(format!("{}.sock", node.name))),
                Role::Linux { .. } => None,
            },
            startup_config: match &node.role {
                Role::Roamer { config, .. } => Some(config.clone()),
                Role::Linux { .. } => None,
            },
        });
        st.save(dir)?;
        ip(&["-n", &node.netns, "link", "set", "lo", "up"])?;
    }
    make_links(topo, dir, st)?;
    let exe = std::env::current_exe()
        .map_err(|e| lab_err(format!("cannot find the roamer binary: {e}")))?;
    for node in &topo.nodes {
        match &node.role {
            Role::Roamer { config, exec } => {
                start_daemon(node, &topo.links, config, &exe, dir, st)?;
                if !exec.is_empty() {
                    crate::client::exec(&dir.join(format!("{}.sock", node.name)), exec)
                        .map_err(|e| lab_err(format!("node {}: exec failed: {e}", node.name)))?;
                }
            }
            Role::Linux { exec } => {
                for line in exec {
                    run("ip", &["netns", "exec", &node.netns, "sh", "-c", line]).map_err(|e| {
                        lab_err(format!("node {}: exec {line:?} failed: {e}", node.name))
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// One veth pair per link, each end moved into its node's namespace and named there, as
/// containerlab makes them; each recorded as soon as it exists.
fn make_links(topo: &Topology, dir: &Path, st: &mut State) -> Result<(), RoamerError> {
    let netns = |name: &str| -> Result<String, RoamerError> {
        topo.node(name)
            .map(|n| n.netns.clone())
            .ok_or_else(|| lab_err(format!("no node {name}")))
    };
    for link in &topo.links {
        let (ns_a, ns_b) = (netns(&link.a.node)?, netns(&link.b.node)?);
        let mtu = link.mtu.to_string();
        ip(&[
            "link",
            "add",
            &link.tmp_a,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            &link.tmp_b,
            "mtu",
            &mtu,
        ])?;
        st.links.push(LinkState {
            tmp_a: link.tmp_a.clone(),
            tmp_b: link.tmp_b.clone(),
            a: format!("{}:{}", link.a.node, link.a.iface),
            b: format!("{}:{}", link.b.node, link.b.iface),
        });
        st.save(dir)?;
        for (tmp, ns, end) in [(&link.tmp_a, &ns_a, &link.a), (&link.tmp_b, &ns_b, &link.b)] {
            let iface = &end.iface;
            if let Some(mac) = &end.mac {
                ip(&["link", "set", tmp, "address", mac])?;
            }
            ip(&["link", "set", tmp, "netns", ns])?;
            ip(&["-n", ns, "link", "set", tmp, "name", iface])?;
            ip(&["-n", ns, "link", "set", iface, "up"])?;
        }
    }
    Ok(())
}

/// The number of data interfaces a node gets, as containerlab counts them for `CLAB_INTFS`;
/// `None` when one of its links is not named `ethN` (nothing is waited for then).
fn clab_intfs(node: &str, topo_links: &[topology::Link]) -> Option<usize> {
    let ends: Vec<&str> = topo_links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| e.node == node)
        .map(|e| e.iface.as_str())
        .collect();
    ends.iter()
        .all(|i| i.starts_with("eth"))
        .then_some(ends.len())
}

/// `--runtime docker`: one container per node (see [`docker`]), recorded as soon as it is
/// created; its namespace linked at /run/netns; then the links; then the roamer nodes' sockets
/// are waited for and the exec lines run inside the containers.
fn build_docker(topo: &Topology, dir: &Path, st: &mut State) -> Result<(), RoamerError> {
    docker::check_engine()?;
    // Everything is checked before anything is created.
    let mut images = Vec::new();
    for node in &topo.nodes {
        images.push(match &node.role {
            Role::Roamer { .. } => docker::roamer_image(&node.name, &node.image)?,
            Role::Linux { .. } => docker::linux_image(&node.name, &node.image)?,
        });
        if std::fs::symlink_metadata(Path::new("/run/netns").join(&node.netns)).is_ok() {
            return Err(lab_err(format!(
                "node {}: network namespace {} exists already (another lab, or containerlab?)",
                node.name, node.netns
            )));
        }
        if docker::exists(&node.netns) {
            return Err(lab_err(format!(
                "node {}: a container named {} exists already (another lab, or containerlab?)",
                node.name, node.netns
            )));
        }
    }
    let mut note = None;
    let privileges = docker::privilege_args(&mut note);
    if let Some(note) = note {
        println!("  {note}");
    }
    let mut ids = Vec::new();
    for (node, image) in topo.nodes.iter().zip(&images) {
        let mut binds = Vec::new();
        let mut socket = None;
        if let Role::Roamer { config, .. } = &node.role {
            // The daemon's /run/roamer: its control socket, reachable from here.
            let run_dir = dir.join(&node.name);
            std::fs::create_dir_all(&run_dir)
                .map_err(|e| lab_err(format!("cannot create {}: {e}", run_dir.display())))?;
            socket = Some(run_dir.join("roamer.sock"));
            binds.push((config.clone(), container::STARTUP_CONFIG));
            binds.push((run_dir, "/run/roamer"));
        }
        let roamer = socket.is_some();
        let id = docker::create(&docker::Spec {
            lab: &topo.lab,
            node: &node.name,
            name: &node.netns,
            image,
            privileges: &privileges,
            intfs: if roamer {
                clab_intfs(&node.name, &topo.links)
            } else {
                None
            },
            binds,
            tty: !roamer && image != docker::HOST_IMAGE,
        })
        .map_err(|e| in_node(&node.name, "", e))?;
        st.containers.push(ContainerState {
            node: node.name.clone(),
            name: node.netns.clone(),
            id: id.clone(),
        });
        st.save(dir)?;
        let pid = docker::start(&id).map_err(|e| in_node(&node.name, "", e))?;
        docker::link_netns(&node.netns, pid)?;
        st.nodes.push(NodeState {
            name: node.name.clone(),
            netns: node.netns.clone(),
            socket,
            startup_config: match &node.role {
                Role::Roamer { config, .. } => Some(config.clone()),
                Role::Linux { .. } => None,
            },
        });
        st.save(dir)?;
        ids.push(id);
    }
    make_links(topo, dir, st)?;
    for ((node, id), ns) in topo.nodes.iter().zip(&ids).zip(st.nodes.clone()) {
        match &node.role {
            Role::Roamer { exec, .. } => {
                let socket = ns
                    .socket
                    .ok_or_else(|| lab_err(format!("node {}: no socket", node.name)))?;
                wait_container_socket(&node.name, id, &socket)?;
                if !exec.is_empty() {
                    crate::client::exec(&socket, exec)
                        .map_err(|e| lab_err(format!("node {}: exec failed: {e}", node.name)))?;
                }
            }
            Role::Linux { exec } => {
                for line in exec {
                    docker::exec_line(&node.netns, line)
                        .map_err(|e| in_node(&node.name, &format!("exec {line:?} failed: "), e))?;
                }
            }
        }
    }
    Ok(())
}

/// Waits until a roamer container serves its control socket.
fn wait_container_socket(node: &str, id: &str, socket: &Path) -> Result<(), RoamerError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut next_check = Instant::now();
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if Instant::now() >= next_check {
            if !docker::running(id) {
                return Err(lab_err(format!(
                    "node {node}: roamer's container exited before it was ready:\n{}",
                    docker::logs(id)
                )));
            }
            next_check += Duration::from_secs(1);
        }
        if Instant::now() > deadline {
            return Err(lab_err(format!(
                "node {node}: roamer not ready after {}s:\n{}",
                READY_TIMEOUT.as_secs(),
                docker::logs(id)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_daemon(
    node: &topology::Node,
    topo_links: &[topology::Link],
    config: &Path,
    exe: &Path,
    dir: &Path,
    st: &mut State,
) -> Result<(), RoamerError> {
    let socket = dir.join(format!("{}.sock", node.name));
    let log_path = dir.join(format!("{}.log", node.name));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| lab_err(format!("cannot create {}: {e}", log_path.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| lab_err(format!("{}: {e}", log_path.display())))?;
    // `ip netns exec` replaces itself with roamer, so the child's PID is the daemon's. Its own
    // process group keeps a Ctrl-C at the terminal that ran `up` from reaching it.
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &node.netns])
        .arg(exe)
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--socket")
        .arg(&socket);
    // As containerlab does: the number of data interfaces the daemon is to wait for (here
    // they are all attached already; only ethN names count).
    if let Some(n) = clab_intfs(&node.name, topo_links) {
        command.env(container::CLAB_INTFS, n.to_string());
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| lab_err(format!("node {}: cannot start roamer: {e}", node.name)))?;
    st.daemons.push(DaemonState {
        node: node.name.clone(),
        pid: child.id(),
        socket: socket.clone(),
    });
    st.save(dir)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(lab_err(format!(
                "node {}: roamer exited ({status}) before it was ready:\n{}",
                node.name,
                tail(&log_path)
            )));
        }
        if Instant::now() > deadline {
            return Err(lab_err(format!(
                "node {}: roamer not ready after {}s:\n{}",
                node.name,
                READY_TIMEOUT.as_secs(),
                tail(&log_path)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a daemon's log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub fn down(file: &Path) -> Result<(), RoamerError> {
    let topo = topology::load(file)?;
    let dir = state::lab_dir(&topo.lab);
    let Some(st) = State::load(&dir)? else {
        eprintln!("lab {} is not up", topo.lab);
        return Ok(());
    };
    teardown(&st, &dir)?;
    println!("lab {}: down", topo.lab);
    Ok(())
}

/// Removes what the state lists: containers (by ID), daemons (by PID, checked to be ours), veth
/// ends still in the root namespace, namespaces (their interfaces go with them) or the links to
/// the containers' namespaces, then the state directory.
fn teardown(st: &State, dir: &Path) -> Result<(), RoamerError> {
    let mut problems = Vec::new();
    for c in st.containers.iter().rev() {
        if let Err(e) = docker::remove(&c.id) {
            problems.push(format!("container {}: {e}", c.name));
        }
    }
    for d in &st.daemons {
        stop_daemon(d);
    }
    for l in &st.links {
        // Only an end that never left the root namespace is still there under its temporary name.
        for tmp in [&l.tmp_a, &l.tmp_b] {
            if Path::new("/sys/class/net").join(tmp).exists()
                && let Err(e) = ip(&["link", "del", tmp])
            {
                problems.push(e.to_string());
            }
        }
    }
    for n in &st.nodes {
        let result = match st.runtime {
            Runtime::Netns if Path::new("/run/netns").join(&n.netns).exists() => {
                ip(&["netns", "del", &n.netns]).map(drop)
            }
            Runtime::Netns => Ok(()),
            Runtime::Docker => docker::unlink_netns(&n.netns),
        };
        if let Err(e) = result {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| lab_err(format!("cannot remove {}: {e}", dir.display())))?;
        Ok(())
    } else {
        Err(lab_err(problems.join("; ")))
    }
}

/// Stops one daemon: SIGTERM, then SIGKILL after 5 s. Only a process whose command line names
/// this daemon's socket is signalled (a PID may have been reused since `up`).
fn stop_daemon(d: &DaemonState) {
    let ours = || {
        std::fs::read(format!("/proc/{}/cmdline", d.pid))
            .map(|c| {
                c.split(|b| *b == 0)
                    .any(|arg| arg == d.socket.as_os_str().as_encoded_bytes())
            })
            .unwrap_or(false)
    };
    if !ours() {
        return;
    }
    let pid = d.pid.to_string();
    let _ = run("kill", &["-TERM", &pid]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ours() && !is_zombie(d.pid) {
        if Instant::now() > deadline {
            let _ = run("kill", &["-KILL", &pid]);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The lab `exec` acts on: the one of `--topo`, or the only lab that is up.
fn current(topo: Option<&Path>) -> Result<(State, PathBuf), RoamerError> {
    if let Some(file) = topo {
        let t = topology::load(file)?;
        let dir = state::lab_dir(&t.lab);
        let st = State::load(&dir)?.ok_or_else(|| lab_err(format!("lab {} is not up", t.lab)))?;
        return Ok((st, dir));
    }
    let labs = state::labs_up();
    match labs.as_slice() {
        [] => Err(lab_err("no lab is up")),
        [(st, dir)] => Ok((st.clone(), dir.clone())),
        many => Err(lab_err(format!(
            "{} labs are up ({}); name one with --topo FILE",
            many.len(),
            many.iter()
                .map(|(s, _)| s.lab.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub fn exec(topo: Option<&Path>, node: &str, command: &[String]) -> Result<(), RoamerError> {
    let (st, _dir) = current(topo)?;
    let n = st
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| lab_err(format!("lab {} has no node {node}", st.lab)))?;
    let line = command.join(" ");
    match &n.socket {
        Some(socket) => crate::client::exec(socket, &[line]),
        None => {
            let container = st.containers.iter().find(|c| c.node == n.name);
            let status = match container {
                // Inside the container, with its own tools.
                Some(c) => docker::exec_interactive(&c.name, &line)?,
                None => Command::new("ip")
                    .args(["netns", "exec", &n.netns, "sh", "-c", &line])
                    .status()
                    .map_err(|e| lab_err(format!("cannot run ip netns exec: {e}")))?,
            };
            let _ = std::io::stdout().flush();
            match status.code() {
                Some(0) => Ok(()),
                // The command's own exit status, as `docker exec` gives it (scripts test it).
                Some(code) => std::process::exit(code),
                None => Err(lab_err(format!("{node}: {line:?} failed ({status})"))),
            }
        }
    }
}
