//! The VM image as users boot it: `target/images/roamer.qcow2` (built by
//! `scripts/build-images.sh`) under `qemu-system-x86_64 -accel tcg`, a config drive (ISO 9660,
//! label ROAMER-CFG) and three virtio NICs on TAP devices moved into test namespaces: eth0 is
//! management, eth1 and eth2 are Ethernet1/1 and 1/2 with a host in VLAN 10 and one in VLAN 20.
//! Everything is driven through the serial console, as an operator would.
//!
//! Needs root, qemu-system-x86_64, xorriso and the image; without them the test fails saying
//! what is missing (scripts/test.sh installs the tools and builds the image first).
#![allow(clippy::unwrap_used)]

mod common;
#[path = "image_vm/extended.rs"]
mod extended;
#[path = "image_vm/mobility.rs"]
mod mobility;

use roamer_test_support::{self as support, Netns};

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Boot under emulation takes ~20 s on an idle machine; CI shares two cores with other tests.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn image() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/images/roamer.qcow2")
}

/// What this test needs, or a failure naming what is missing.
fn require() {
    support::require_root("TAP devices, namespaces");
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("xorriso", "xorriso"),
        ("qemu-img", "qemu-utils"),
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
    ] {
        support::require_tool(tool, package);
    }
    assert!(
        image().exists(),
        "{} is missing: run scripts/build-images.sh vm (scripts/test.sh does)",
        image().display()
    );
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    try_until(timeout, check).unwrap_or_else(|| panic!("timed out after {timeout:?}: {what}"))
}

fn try_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The serial console: everything the guest printed, and a cursor past what was consumed.
struct Console {
    seen: Arc<Mutex<Vec<u8>>>,
    stream: UnixStream,
    cursor: usize,
    log: PathBuf,
}

impl Console {
    fn connect(path: &Path, log: PathBuf) -> Console {
        let stream = wait_until("qemu's console socket", STEP_TIMEOUT, || {
            UnixStream::connect(path).ok()
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (stream.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Console {
            seen,
            stream,
            cursor: 0,
            log,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits for `needle` after the cursor; returns what came before it and moves past it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let text = String::from_utf8_lossy(&seen[self.cursor.min(seen.len())..]);
                if let Some(at) = text.find(needle) {
                    let before = text[..at].to_string();
                    // The lossy text may differ in length from the bytes only where the guest
                    // printed invalid UTF-8, which the console never does before a needle.
                    self.cursor += at + needle.len();
                    return before;
                }
            }
            if Instant::now() > deadline {
                let _ = std::fs::write(&self.log, self.text());
                let text = self.text();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!(
                    "no {needle:?} on the serial console after {timeout:?} (whole console in \
                     {}); its end:\n{tail}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types a line as at a terminal (Enter is carriage return).
    fn line(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
        self.stream.write_all(b"\r").unwrap();
    }

    /// Logs in on the console: a fresh login prompt, the user name and the password.
    fn login(&mut self, user: &str, password: &str) {
        self.line("");
        self.expect("login: ", STEP_TIMEOUT);
        self.line(user);
        self.expect("Password: ", STEP_TIMEOUT);
        self.line(password);
    }

    /// Runs a CLI command and returns its output up to the next prompt.
    fn command(&mut self, prompt: &str, command: &str) -> String {
        self.line(command);
        self.expect(command, STEP_TIMEOUT);
        self.expect(prompt, STEP_TIMEOUT)
    }
}

/// One qemu process (started and killed by its PID), with its serial console.
struct Vm {
    child: Child,
    console: Console,
    started: Instant,
}

struct Nic<'a> {
    tap: String,
    mac: &'a str,
}

impl Vm {
    fn boot(dir: &Path, disk: &Path, config_drive: Option<&Path>, nics: &[Nic], run: u32) -> Vm {
        let socket = dir.join(format!("console{run}.sock"));
        let _ = std::fs::remove_file(&socket);
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel", "tcg", "-m", "1024", "-smp", "2", "-display", "none",
        ])
        .args(["-nodefaults", "-no-reboot"])
        .arg("-chardev")
        .arg(format!(
            "socket,id=con,path={},server=on,wait=off",
            socket.display()
        ))
        .args(["-serial", "chardev:con"])
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=qcow2", disk.display()));
        if let Some(iso) = config_drive {
            cmd.arg("-drive")
                .arg(format!("file={},media=cdrom,readonly=on", iso.display()));
        }
        for nic in nics {
            cmd.arg("-nic").arg(format!(
                "tap,ifname={},script=no,downscript=no,model=virtio-net-pci,mac={}",
                nic.tap, nic.mac
            ));
        }
        let log = std::fs::File::create(dir.join(format!("qemu{run}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start qemu-system-x86_64");
        // Kept after the test (the scratch directory is not) for a look after a failure.
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "image_vm-{}-console{run}.log",
            dir.file_name().unwrap().to_string_lossy()
        ));
        let console = Console::connect(&socket, log);
        Vm {
            child,
            console,
            started: Instant::now(),
        }
    }

    /// Waits for roamer's `ready` line; returns the boot time.
    fn wait_ready(&mut self) -> Duration {
        self.console.expect("ready profile=", BOOT_TIMEOUT);
        self.started.elapsed()
    }

    /// Waits for roamer's `ready` line, prints the boot time, logs in as admin and waits for
    /// the CLI's `prompt`.
    fn admin_cli(&mut self, boot_name: &str, prompt: &str) {
        let boot = self.wait_ready();
        println!("{boot_name}: {:.1} s", boot.as_secs_f64());
        self.console.login("admin", "admin");
        self.console.expect(prompt, STEP_TIMEOUT);
    }

    /// Waits for qemu to end by itself (the guest powered off).
    fn wait_poweroff(&mut self) {
        let child = &mut self.child;
        wait_until("the guest to power off", BOOT_TIMEOUT, || {
            child.try_wait().unwrap().map(|_| ())
        });
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::write(&self.console.log, self.console.text());
    }
}

/// A config drive as vrnetlab makes them: ISO 9660, label ROAMER-CFG, file `startup-config`.
fn config_drive(dir: &Path, name: &str, config: &str) -> PathBuf {
    config_drive_with(dir, name, config, &[])
}

/// [`config_drive`] with more files on it.
fn config_drive_with(dir: &Path, name: &str, config: &str, files: &[(&str, String)]) -> PathBuf {
    let content = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("startup-config"), config).unwrap();
    for (file, text) in files {
        std::fs::write(content.join(file), text).unwrap();
    }
    let iso = dir.join(format!("{name}.iso"));
    run(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "ROAMER-CFG",
            "-r",
            "-J",
            "-o",
            iso.to_str().unwrap(),
            content.to_str().unwrap(),
        ],
    );
    iso
}

/// A copy-on-write disk over the image, so the image itself stays as built.
fn overlay(dir: &Path, name: &str) -> PathBuf {
    let disk = dir.join(name);
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            image().to_str().unwrap(),
            disk.to_str().unwrap(),
        ],
    );
    disk
}

/// Moves a TAP device qemu created into a namespace once it exists.
fn adopt_tap(tap: &str, ns: &Netns) {
    wait_until(&format!("qemu's TAP device {tap}"), STEP_TIMEOUT, || {
        Path::new("/sys/class/net").join(tap).exists().then_some(())
    });
    run("ip", &["link", "set", tap, "netns", ns.name()]);
    ns.ip(&["link", "set", tap, "up"]).unwrap();
}

const SWITCH: &str = "hostname vsw1
feature interface-vlan
vlan 10
vlan 20
interface Ethernet1/1
  switchport
  switchport access vlan 10
interface Ethernet1/2
  switchport
  switchport access vlan 20
interface Ethernet1/3
  switchport
  switchport access vlan 20
interface Vlan10
  ip address 10.10.0.1/24
interface Vlan20
  ip address 10.20.0.1/24
";

/// The switch VM booted from `config` with three NICs (management, Ethernet1/1 and 1/2), host
/// a (10.10.0.10, VLAN 10) on the first data NIC and, with `host_b`, host b (10.20.0.10,
/// VLAN 20) on the second (else its TAP device is up in namespace b, unaddressed), roamer
/// ready.
struct SwitchLab {
    // The VM first: it stops before its namespaces go.
    vm: Vm,
    a: Netns,
    b: Netns,
    _mgmt: Netns,
    b_tap: String,
    /// The prefix of the lab's namespaces and devices.
    p: String,
    disk: PathBuf,
    dir: tempfile::TempDir,
}

impl SwitchLab {
    fn boot(config: &str, host_b: bool) -> SwitchLab {
        require();
        // Unique per lab: the tests of this file run in parallel in one process.
        let p = support::unique_prefix();
        let dir = tempfile::tempdir().unwrap();
        let disk = overlay(dir.path(), "switch.qcow2");
        let drive = config_drive(dir.path(), "day0", config);
        let (mgmt, a, b) = (
            Netns::new(&format!("{p}-mgmt")).unwrap(),
            Netns::new(&format!("{p}-a")).unwrap(),
            Netns::new(&format!("{p}-b")).unwrap(),
        );
        let taps = [format!("{p}m"), format!("{p}a"), format!("{p}b")];
        let nics: Vec<Nic> = taps
            .iter()
            .zip([
                "52:54:00:72:00:00",
                "52:54:00:72:00:01",
                "52:54:00:72:00:02",
            ])
            .map(|(tap, mac)| Nic {
                tap: tap.clone(),
                mac,
            })
            .collect();
        let mut vm = Vm::boot(dir.path(), &disk, Some(&drive), &nics, 1);
        adopt_tap(&taps[0], &mgmt);
        adopt_tap(&taps[1], &a);
        adopt_tap(&taps[2], &b);
        let hosts = [
            (&a, &taps[1], "10.10.0.10/24", "10.10.0.1"),
            (&b, &taps[2], "10.20.0.10/24", "10.20.0.1"),
        ];
        for (ns, tap, addr, gw) in &hosts[..if host_b { 2 } else { 1 }] {
            ns.ip(&["addr", "add", addr, "dev", tap]).unwrap();
            ns.ip(&["route", "add", "default", "via", gw]).unwrap();
        }
        vm.console.expect(
            "startup configuration taken from the config drive",
            BOOT_TIMEOUT,
        );
        let boot = vm.wait_ready();
        println!(
            "boot to roamer's ready line under TCG: {:.1} s",
            boot.as_secs_f64()
        );
        SwitchLab {
            vm,
            a,
            b,
            _mgmt: mgmt,
            b_tap: taps[2].clone(),
            p,
            disk,
            dir,
        }
    }

    /// Hosts in VLAN 10 and VLAN 20 reach each other and their gateways through the SVIs.
    fn hosts_reach_each_other(&self) {
        let (a, b) = (&self.a, &self.b);
        let reached = try_until(STEP_TIMEOUT * 2, || {
            a.exec(&["ping", "-c", "1", "-W", "1", "10.20.0.10"])
                .ok()
                .map(drop)
        });
        if reached.is_none() {
            panic!(
                "10.10.0.10 cannot ping 10.20.0.10 through the VM; host a:\n{:?}\n{:?}\nconsole:\n{}",
                a.ip(&["neigh"]),
                a.ip(&["-s", "link"]),
                self.vm.console.text()
            );
        }
        let text = a
            .exec(&["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.20.0.10"])
            .expect("host a pings host b");
        assert!(text.contains(" 0% packet loss"), "{text}");
        b.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.10.0.1"])
            .expect("host b pings its gateway");
    }
}

#[test]
fn vm_routes_between_vlans_and_keeps_its_saved_configuration_across_a_reboot() {
    let lab = SwitchLab::boot(SWITCH, true);
    lab.hosts_reach_each_other();
    let SwitchLab {
        mut vm, disk, dir, ..
    } = lab;

    // The operator's view, through the serial console as admin.
    vm.console.login("admin", "admin");
    vm.console.expect("vsw1#", STEP_TIMEOUT);
    let version = vm.console.command("vsw1#", "show version");
    assert!(version.contains("roamer"), "show version:\n{version}");
    let brief = vm.console.command("vsw1#", "show interface brief");
    for port in ["Eth1/1", "Eth1/2", "Eth1/3"] {
        assert!(brief.contains(port), "show interface brief:\n{brief}");
    }
    // Ethernet1/3 has no NIC: that port is down, the switch is not.
    let eth13 = brief.lines().find(|l| l.contains("Eth1/3")).unwrap();
    assert!(
        eth13.contains("down"),
        "Ethernet1/3 without a NIC:\n{brief}"
    );
    vm.console.line("configure terminal");
    vm.console.expect("(config)#", STEP_TIMEOUT);
    vm.console.line("hostname vsw2");
    vm.console.expect("vsw2(config)#", STEP_TIMEOUT);
    vm.console.line("end");
    vm.console.expect("vsw2#", STEP_TIMEOUT);
    let copied = vm
        .console
        .command("vsw2#", "copy running-config startup-config");
    assert!(copied.contains("Copy complete"), "{copied}");
    vm.console.line("exit");

    // A clean power-off as root (the debugging account), then a boot without the drive.
    vm.console.login("root", "roamer");
    vm.console.expect("# ", STEP_TIMEOUT);
    // What the kernel offload backend needs of the guest kernel is there.
    vm.console
        .line("modprobe -a 8021q bridge cls_flower && ip link add rvmbr type bridge vlan_filtering 1 && echo OFFLOAD-KERNEL-$((40 + 2))");
    vm.console.expect("OFFLOAD-KERNEL-42", STEP_TIMEOUT);
    vm.console.line("poweroff");
    vm.wait_poweroff();
    drop(vm);

    let mut vm = Vm::boot(dir.path(), &disk, None, &[], 2);
    vm.console.expect("no config drive", BOOT_TIMEOUT);
    vm.admin_cli("second boot, without the config drive", "vsw2#");
    let running = vm.console.command("vsw2#", "show running-config");
    assert!(running.contains("hostname vsw2"), "{running}");
    assert!(running.contains("ip address 10.20.0.1/24"), "{running}");
}

#[test]
fn vm_with_a_broken_config_drive_boots_to_a_console_with_an_empty_configuration() {
    require();
    let dir = tempfile::tempdir().unwrap();
    let disk = overlay(dir.path(), "broken.qcow2");
    let drive = config_drive(dir.path(), "broken", "hostname broken\nvlan 5000\n");
    let mut vm = Vm::boot(dir.path(), &disk, Some(&drive), &[], 1);
    let before = vm
        .console
        .expect("running with an empty configuration", BOOT_TIMEOUT);
    assert!(
        before.contains("/etc/roamer/startup-config:2: invalid command at '5000'"),
        "the console does not show FILE:LINE of the problem:\n{before}"
    );
    vm.admin_cli("boot with a broken configuration", "switch#");
    let running = vm.console.command("switch#", "show running-config");
    assert!(!running.contains("broken"), "{running}");
    // The switch stayed up: no restart loop (one roamer start on the console).
    assert_eq!(
        vm.console.text().matches("ready profile=").count(),
        1,
        "roamer restarted:\n{}",
        vm.console.text()
    );
}

/// LISP with the kernel backend inside the image: the guest's 6.1 kernel has no TCX links, so
/// the ITR and ETR programs go on as `cls_bpf` filters. The VM is the xTR of 10.10.0.0/24 (host
/// a); across its second NIC, a software-backend roamer in namespace b is the xTR of
/// 10.30.0.0/24 (host c), and the two reach each other over LISP both ways.
#[test]
fn vm_kernel_backend_xtr_carries_lisp_with_cls_bpf_filters() {
    let config = "hostname vx1\nroamer platform backend kernel\nfeature lisp\n\
        interface Ethernet1/1\n  no switchport\n  ip address 10.10.0.1/24\n\
        interface Ethernet1/2\n  no switchport\n  ip address 192.0.2.1/24\n\
        ip lisp itr-etr\n\
        ip lisp database-mapping 10.10.0.0/24 192.0.2.1 priority 1 weight 100\n\
        ip lisp map-cache 10.30.0.0/24 192.0.2.2 priority 1 weight 100\n";
    let mut lab = SwitchLab::boot(config, false);
    // Host c behind the software xTR in namespace b.
    let p = &lab.p;
    let c = Netns::new(&format!("{p}-c")).unwrap();
    let (bc, cb) = (format!("{p}bc"), format!("{p}cb"));
    let _link = support::Veth::between(&bc, &lab.b, &cb, &c).unwrap();
    c.ip(&["addr", "add", "10.30.0.10/24", "dev", &cb]).unwrap();
    c.ip(&["route", "add", "default", "via", "10.30.0.1"])
        .unwrap();
    let peer = common::Daemon::start_in_netns(
        &format!(
            "hostname px\nroamer platform backend software\n\
             roamer platform port Ethernet1/1 {tap}\nroamer platform port Ethernet1/2 {bc}\n\
             feature lisp\n\
             interface Ethernet1/1\n  no switchport\n  ip address 192.0.2.2/24\n\
             interface Ethernet1/2\n  no switchport\n  ip address 10.30.0.1/24\n\
             ip lisp itr-etr\n\
             ip lisp database-mapping 10.30.0.0/24 192.0.2.2 priority 1 weight 100\n\
             ip lisp map-cache 10.10.0.0/24 192.0.2.1 priority 1 weight 100\n",
            tap = lab.b_tap
        ),
        lab.b.name(),
    );
    for (from, to) in [(&lab.a, "10.30.0.10"), (&c, "10.10.0.10")] {
        let reached = try_until(STEP_TIMEOUT, || {
            from.exec(&["ping", "-c", "1", "-W", "1", to])
                .ok()
                .map(drop)
        });
        if reached.is_none() {
            panic!(
                "no echo reply from {to} over LISP; software xTR:\n{}\nconsole:\n{}",
                peer.exec("show forwarding counters").stdout,
                lab.vm.console.text()
            );
        }
    }
    let text = lab
        .a
        .exec(&["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.30.0.10"])
        .expect("host a pings host c over LISP");
    assert!(text.contains(" 0% packet loss"), "{text}");
    let counters = peer.exec("show forwarding counters").stdout;
    assert!(
        counters.contains("lisp-decapsulated") && counters.contains("lisp-encapsulated"),
        "{counters}"
    );
    let vm = &mut lab.vm;
    vm.console.login("root", "roamer");
    vm.console.expect("# ", STEP_TIMEOUT);
    let filters = vm.console.command("# ", "tc filter show dev eth1 ingress");
    assert!(
        filters.contains("lisp_itr") && filters.contains("lisp_etr"),
        "the programs as cls_bpf filters on the 6.1 kernel:\n{filters}"
    );
    let kernel = vm.console.command("# ", "uname -r");
    let release = kernel
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("?");
    println!("LISP over cls_bpf filters on the image's kernel {release}");
}

/// The kernel backend inside the image, whose Debian kernel has bridge VLAN filtering and
/// 802.1Q devices: roamer builds a VLAN-filtering bridge with the access ports and an SVI per
/// VLAN, and the guest kernel routes between the hosts. HSRP: the group on `interface Vlan10`
/// is Active alone, and its virtual MAC and IP live on a macvlan
/// that exists only while it is: host a's gateway is the virtual IP, answered with the virtual
/// MAC; a peer with priority 200 takes over (the device goes), and when the peer falls silent
/// roamer is Active again. On stop nothing of it is left in the guest.
#[test]
fn vm_kernel_backend_vlans_svis_and_an_hsrp_virtual_mac_only_while_active() {
    let config = format!(
        "roamer platform backend kernel\nfeature hsrp\n{}",
        SWITCH
            .replace(
                "interface Ethernet1/3\n  switchport\n  switchport access vlan 20\n",
                ""
            )
            .replace(
                "  ip address 10.10.0.1/24\n",
                "  ip address 10.10.0.2/24\n  hsrp 10\n    timers 1 3\n    ip 10.10.0.1\n"
            )
    );
    let mut lab = SwitchLab::boot(&config, true);
    // Host a's gateway 10.10.0.1 is the virtual IP: routing through it needs the group Active.
    lab.hosts_reach_each_other();
    let a_tap = format!("{}a", lab.p);
    let neigh = lab.a.ip(&["neigh", "show", "10.10.0.1"]).unwrap();
    assert!(
        neigh.contains("00:00:0c:07:ac:0a"),
        "the virtual IP answered with HSRPv1 group 10's virtual MAC: {neigh}"
    );
    // roamer's own hellos, as tshark decodes them on host a's link.
    let capture = support::Capture::start(
        &lab.a,
        &a_tap,
        "udp port 1985",
        20,
        &[
            "ip.src",
            "hsrp.state",
            "hsrp.virt_ip",
            "_ws.malformed",
            "_ws.expert",
        ],
        Duration::from_secs(20),
    )
    .expect("tshark on host a's link");
    let hello = (0..10)
        .filter_map(|_| capture.next_line(Duration::from_secs(5)))
        .find(|l| l.starts_with("10.10.0.2\t"))
        .expect("a hello from roamer decodes");
    let fields: Vec<&str> = hello.split('\t').collect();
    assert_eq!(
        fields.get(1..3),
        Some(&["16", "10.10.0.1"][..]),
        "an active hello for the virtual IP: {hello}"
    );
    assert!(
        fields.iter().skip(3).all(|f| f.trim().is_empty()),
        "malformed or expert info on roamer's hello: {hello}"
    );

    let vm = &mut lab.vm;
    vm.console.login("root", "roamer");
    vm.console.expect("# ", STEP_TIMEOUT);
    // Long command lines stay on one line (no redraw at the serial console's 80 columns).
    vm.console.command("# ", "stty cols 500");
    let running = vm
        .console
        .command("# ", "roamer exec 'show running-config'");
    assert!(running.contains("backend kernel"), "{running}");
    let macs = vm
        .console
        .command("# ", "roamer exec 'show mac address-table'");
    assert!(
        macs.lines()
            .any(|l| l.contains(" 10 ") && l.contains("Eth1/1")),
        "host a learned in VLAN 10 on Eth1/1 (by the bridge, through the HAL):\n{macs}"
    );
    let vlans = vm.console.command("# ", "bridge vlan show");
    let port_vlans = |dev: &str| -> String {
        vlans
            .lines()
            .skip_while(|l| !l.starts_with(dev))
            .take_while(|l| l.starts_with(dev) || l.starts_with(' ') || l.starts_with('\t'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let eth1 = port_vlans("eth1");
    assert!(
        eth1.contains("10 PVID") && eth1.contains("Egress Untagged"),
        "eth1 an access port of VLAN 10:\n{vlans}"
    );
    assert!(
        port_vlans("eth2").contains("20 PVID"),
        "eth2 an access port of VLAN 20:\n{vlans}"
    );
    let addrs = vm.console.command("# ", "ip -br addr show");
    assert!(
        addrs.contains("10.10.0.2/24") && addrs.contains("10.20.0.1/24"),
        "the SVI addresses on the kernel's VLAN devices:\n{addrs}"
    );
    assert!(
        addrs
            .lines()
            .any(|l| l.starts_with("rmrh") && l.contains("10.10.0.1/32")),
        "the virtual IP on the virtual MAC's macvlan:\n{addrs}"
    );
    let devices = vm.console.command("# ", "ip -o link show type macvlan");
    assert!(
        devices.contains("rmrh") && devices.contains("00:00:0c:07:ac:0a"),
        "the virtual MAC's macvlan while Active:\n{devices}"
    );
    let brief = vm.console.command("# ", "roamer exec 'show hsrp brief'");
    assert_eq!(common::hsrp_state_in(&brief), "Active", "{brief}");

    // A peer with priority 200 (hellos every 0.2 s for 8 s) takes over.
    lab.a
        .ip(&["addr", "add", "10.10.0.9/24", "dev", &a_tap])
        .unwrap();
    let peer = {
        let (ns, tap) = (lab.a.name().to_string(), a_tap.clone());
        std::thread::spawn(move || common::send_hsrp_hellos(&ns, "udp", &tap, 40))
    };
    let vm = &mut lab.vm;
    let yielded = vm.console.command(
        "# ",
        "for i in $(seq 50); do ip -o link show type macvlan | grep -q rmrh || break; sleep 0.2; \
         done; roamer exec 'show hsrp brief'; echo MACVLANS; ip -o link show type macvlan",
    );
    let (brief, devices) = yielded.split_once("MACVLANS").unwrap_or((&yielded, ""));
    let state = common::hsrp_state_in(brief);
    assert!(
        state == "Standby" || state == "Speak",
        "the peer with priority 200 is Active:\n{yielded}"
    );
    assert!(
        !devices.contains("rmrh"),
        "no virtual MAC device while Standby:\n{yielded}"
    );
    peer.join().unwrap();

    // The peer is silent: after its hold time roamer is Active again and routes for host a.
    lab.hosts_reach_each_other();
    let neigh = lab.a.ip(&["neigh", "show", "10.10.0.1"]).unwrap();
    assert!(neigh.contains("00:00:0c:07:ac:0a"), "{neigh}");

    let vm = &mut lab.vm;
    let stopped = vm.console.command(
        "# ",
        "systemctl stop roamer; ip -o link show type macvlan; ip -o link show type bridge; \
         echo STOPPED",
    );
    assert!(
        !stopped.contains("rmrh") && !stopped.contains("rmrbr0"),
        "roamer's devices left after stop:\n{stopped}"
    );
}

/// Seed 001's across-subnet mobility with every node on the kernel backend inside the guest
/// (`tests/image_vm/mobility.rs`): the mobility subnet on SVIs with HSRP sharing one virtual
/// MAC, LISP in eBPF on the SVIs and the HSRP macvlans, H moving from xTR-A to xTR-B's other
/// subnet and keeping its gateway through xTR-B's proxy-ARP, xTR-C following by SMR.
#[test]
fn vm_kernel_backend_host_moves_across_subnets_between_svis_with_hsrp() {
    let out = run_drive_scenario("mobility", &mobility::drive_files(), "MOB");
    let section = |name: &str| section(&out, name);
    assert!(
        !out.contains("MOB-FAIL") && out.contains("MOB-END"),
        "the scenario did not finish:\n{out}"
    );
    let replies: u32 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("MOB-REPLIES-AFTER-MOVE "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    println!("R's pings answered after H moved (every 200 ms for ~25 s): {replies}");
    assert!(
        replies >= 40,
        "pings did not continue after the move:\n{out}"
    );
    let gateway = out
        .lines()
        .find(|l| l.contains("H-GATEWAY-AFTER"))
        .unwrap_or("");
    assert!(
        gateway.contains("00:00:0c:07:ac:01"),
        "H's old gateway at xTR-B: the shared virtual MAC, by proxy-ARP:\n{out}"
    );
    let answered = section("counters-b")
        .lines()
        .find(|l| l.contains("proxy-arp answered"))
        .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(answered >= 1, "xTR-B answered no proxy-ARP:\n{out}");
    let site = section("site");
    assert!(
        site.lines()
            .any(|l| l.contains("10.9.0.5/32") && l.contains("192.0.2.2")),
        "H registered by xTR-B:\n{site}"
    );
    let cache = section("cache-c");
    assert!(
        cache.contains("10.9.0.5/32")
            && cache.contains(" 192.0.2.2 ")
            && !cache.contains(" 192.0.2.1 "),
        "xTR-C's map-cache follows H:\n{out}"
    );
    assert!(section("away").contains("10.9.0.5/32"), "{out}");
    assert!(
        section("bridge-b")
            .lines()
            .any(|l| l.starts_with("hb") && l.contains("10 PVID")),
        "xTR-B's host port in VLAN 10 on its bridge:\n{out}"
    );
    let trunk = section("bridge-c");
    assert!(
        trunk
            .lines()
            .any(|l| l.starts_with("hc") && l.contains(" 10"))
            && !trunk.contains("PVID"),
        "xTR-C's host port a trunk carrying VLAN 10 tagged:\n{trunk}"
    );
    assert!(section("macvlan-b").contains("rmrh"), "{out}");
    assert!(
        section("filters-b").contains("lisp_itr"),
        "the ITR on xTR-B's SVI:\n{out}"
    );
}

/// Boots the image with a config drive holding `files` (one of them `{name}.sh`), logs in on
/// the serial console and runs `bash {name}.sh` from the drive; returns what it printed up to
/// `{marker}-EXIT` (within 15 minutes).
fn run_drive_scenario(name: &str, files: &[(&'static str, String)], marker: &str) -> String {
    require();
    let dir = tempfile::tempdir().unwrap();
    let disk = overlay(dir.path(), &format!("{name}.qcow2"));
    let drive = config_drive_with(dir.path(), name, &format!("hostname v{name}\n"), files);
    let mut vm = Vm::boot(dir.path(), &disk, Some(&drive), &[], 1);
    vm.wait_ready();
    vm.console.login("root", "roamer");
    vm.console.expect("# ", STEP_TIMEOUT);
    vm.console.command("# ", "stty cols 500");
    let run = format!(
        "mount -t iso9660 -o ro $(blkid -t LABEL=ROAMER-CFG -o device) /mnt && \
         bash /mnt/{name}.sh /mnt 2>&1; echo {marker}-EXIT $?"
    );
    vm.console.line(&run);
    vm.console.expect(&run, STEP_TIMEOUT);
    vm.console
        .expect(&format!("{marker}-EXIT "), Duration::from_secs(900))
}

/// The start of a scenario script for [`run_drive_scenario`]: `$D` the drive, `$W` a work
/// directory, `pids` for the daemons it starts; on exit they are stopped and the namespaces
/// `{ns}N` for each N of `nodes` (created here) deleted. `x NODE COMMAND` runs a roamer command; `until_ok
/// SECONDS WHAT COMMAND...` runs COMMAND every 0.5 s until it succeeds and prints
/// `{marker}-OK WHAT`, or `{marker}-FAIL WHAT` when time is up; `show NAME NODE COMMAND` prints
/// a command's output under `=== NAME ===`; `underlay NODE...` joins the nodes' underlay ports
/// on a bridge in `{ns}k`.
fn script_prelude(marker: &str, ns: &str, nodes: &str) -> String {
    format!(
        r#"
D=$1
W=/run/{ns}
mkdir -p $W
pids=
cleanup() {{
    for p in $pids; do kill $p 2>/dev/null; done
    for p in $pids; do wait $p 2>/dev/null; done
    for n in {nodes}; do ip netns del {ns}$n 2>/dev/null; done
}}
trap cleanup EXIT
x() {{ roamer exec --socket $W/$1.sock "$2"; }}
until_ok() {{
    local t=$1 what=$2; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && {{ echo "{marker}-FAIL $what"; return 1; }}
        sleep 0.5
    done
    echo "{marker}-OK $what"
}}
show() {{ echo "=== $1 ==="; x $2 "$3"; }}
for n in {nodes}; do ip netns add {ns}$n; ip -n {ns}$n link set lo up; done
# underlay NODE...: each NODE's port u$NODE joined to the bridge br0 in {ns}k.
underlay() {{
    ip -n {ns}k link add br0 type bridge
    ip -n {ns}k link set br0 up
    for n in "$@"; do
        ip link add u$n netns {ns}$n type veth peer name k$n netns {ns}k
        ip -n {ns}$n link set u$n up
        ip -n {ns}k link set k$n master br0 up
    done
}}
"#
    )
}

/// What a scenario printed under `=== {name} ===` (up to the next heading).
fn section(out: &str, name: &str) -> String {
    // The console ends lines with CR LF.
    out.split(&format!("=== {name} ===\r\n"))
        .nth(1)
        .and_then(|rest| rest.split("=== ").next())
        .unwrap_or("")
        .to_string()
}

/// Host a on Ethernet1/1 and, on Ethernet1/2, a router of another data centre across a DCI
/// (both in VLAN 10); the DCI port has `hsrp hello-filter`, so each side keeps its own Active
/// gateway for the same virtual IP.
const DCI_SWITCH: &str = "hostname vsw1
roamer platform backend kernel
feature interface-vlan
feature hsrp
vlan 10
interface Ethernet1/1
  switchport
  switchport access vlan 10
interface Ethernet1/2
  switchport
  switchport access vlan 10
  hsrp hello-filter
interface Vlan10
  ip address 10.10.0.2/24
  hsrp 10
    timers 1 3
    ip 10.10.0.1
mac address-table static 0200.0000.00aa vlan 10 interface Ethernet1/2
";

/// The kernel backend's hello filter on a bridge port (TC programs inside the guest, whose
/// 6.1 kernel takes them as `cls_bpf` filters): the other data centre's hellos with priority
/// 200 neither reach roamer (still Active) nor cross the bridge to host a, and roamer's own
/// hellos do not leave through the DCI port; other traffic crosses it, which proves the DCI
/// side's capture sees what leaves. Both directions are counted in `show forwarding counters`.
/// The static MAC address of the configuration is a static entry of the kernel bridge's FDB.
#[test]
fn vm_kernel_backend_hello_filter_keeps_each_side_of_a_dci_its_own_active_gateway() {
    let mut lab = SwitchLab::boot(DCI_SWITCH, false);
    let (a_tap, b_tap) = (format!("{}a", lab.p), lab.b_tap.clone());
    lab.b
        .ip(&["addr", "add", "10.10.0.9/24", "dev", &b_tap])
        .unwrap();
    // roamer is Active alone: the virtual IP answers host a.
    let active = try_until(STEP_TIMEOUT, || {
        lab.a
            .exec(&["ping", "-c", "1", "-W", "1", "10.10.0.1"])
            .ok()
    });
    assert!(active.is_some(), "the virtual IP never answered host a");
    let fields = ["ip.src", "ip.proto", "_ws.malformed", "_ws.expert"];
    let local = support::Capture::start(
        &lab.a,
        &a_tap,
        "udp port 1985",
        200,
        &fields,
        Duration::from_secs(60),
    )
    .expect("tshark on host a's link");
    let dci = support::Capture::start(
        &lab.b,
        &b_tap,
        "udp port 1985 or icmp",
        200,
        &fields,
        Duration::from_secs(60),
    )
    .expect("tshark on the DCI link");
    // The other data centre's Active router (priority 200, a hello every 0.2 s for 8 s), and
    // traffic across the DCI while it speaks.
    let remote = {
        let (ns, tap) = (lab.b.name().to_string(), b_tap.clone());
        std::thread::spawn(move || common::send_hsrp_hellos(&ns, "udp", &tap, 40))
    };
    let crossed = lab
        .b
        .exec(&["ping", "-c", "5", "-i", "0.5", "-W", "2", "10.10.0.10"])
        .expect("the DCI router reaches host a");
    assert!(crossed.contains(" 0% packet loss"), "{crossed}");
    remote.join().unwrap();
    // roamer keeps sending hellos every second: read what came until now.
    let local_lines = local.first_lines(200, Duration::from_secs(2));
    let dci_lines = dci.first_lines(200, Duration::from_secs(2));
    assert!(
        local_lines.iter().any(|l| l.starts_with("10.10.0.2\t")),
        "roamer's hellos on host a's link: {local_lines:?}"
    );
    assert!(
        !local_lines.iter().any(|l| l.starts_with("10.10.0.9\t")),
        "the other data centre's hellos crossed the bridge to host a: {local_lines:?}"
    );
    assert!(
        dci_lines.iter().any(|l| l.starts_with("10.10.0.10\t1\t")),
        "the DCI capture saw no ICMP from host a: {dci_lines:?}"
    );
    assert!(
        !dci_lines
            .iter()
            .any(|l| l.starts_with("10.10.0.2\t17\t") || l.starts_with("10.10.0.10\t17\t")),
        "hellos left through the DCI port: {dci_lines:?}"
    );

    let vm = &mut lab.vm;
    vm.console.login("root", "roamer");
    vm.console.expect("# ", STEP_TIMEOUT);
    vm.console.command("# ", "stty cols 500");
    let brief = vm.console.command("# ", "roamer exec 'show hsrp brief'");
    assert_eq!(
        common::hsrp_state_in(&brief),
        "Active",
        "roamer heard the other data centre:\n{brief}"
    );
    let counters = vm
        .console
        .command("# ", "roamer exec 'show forwarding counters'");
    for name in [
        "drop hsrp-hello-filtered",
        "drop hsrp-hello-filtered-egress",
    ] {
        assert!(
            common::counter_in(&counters, name) >= 1,
            "{name} did not move:\n{counters}"
        );
    }
    let filters = vm.console.command("# ", "tc filter show dev eth2 ingress");
    assert!(
        filters.contains("hello_filter_in"),
        "the filter on the DCI port:\n{filters}"
    );
    let fdb = vm
        .console
        .command("# ", "bridge fdb show dev eth2 | grep 02:00:00:00:00:aa");
    assert!(
        fdb.lines()
            .any(|l| l.contains("vlan 10") && l.contains("static")),
        "the static MAC in the bridge's FDB:\n{fdb}"
    );
    let macs = vm
        .console
        .command("# ", "roamer exec 'show mac address-table'");
    let row = macs
        .lines()
        .find(|l| l.contains("0200.0000.00aa"))
        .unwrap_or_else(|| panic!("the static MAC missing:\n{macs}"));
    assert!(
        row.contains("static") && row.contains("Eth1/2") && row.contains(" 10 "),
        "{row}"
    );
}
