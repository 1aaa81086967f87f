//! The four scenarios of `images/containerlab/`, run end to end by `roamer lab` on network
//! namespaces, asserting on show output and on traffic; and `roamer lab` itself (the demo).
//! Each test runs its own copy of a topology under a lab name of its own (namespaces
//! `clab-NAME-NODE`), so the tests run in parallel without clashing.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod lab_common;
use lab_common::*;

/// The remote host pings the host (10.1.1.5) while the host moves to `to` and, as a resumed
/// VM, sends its first packet there (to 10.3.3.10); the figures are printed under `what`.
fn remote_pings_across_the_move(lab: &Lab, to: &str, what: &str) -> Pings {
    let pings = lab.ping_across("remote", "10.1.1.5", || {
        lab.move_host("host", to);
        // The VM resumes: its next packet is the new site's first sight of it.
        let _ = lab.ping("host", "10.3.3.10");
    });
    eprintln!(
        "{what}: {} replies after the move, longest outage {:?}",
        pings.after(),
        pings.outage()
    );
    pings
}

/// The pings went on after the move: 40 replies or more, no silence of 3 s.
fn pings_continued(pings: &Pings) -> bool {
    pings.after() >= 40 && pings.outage() < Duration::from_secs(3)
}

/// (a) Seeds 001 and 004 across subnets: the host moves from its home site (xtr-a,
/// 10.1.1.0/24) to another subnet's site (xtr-b, 10.2.2.0/24) keeping its address and its
/// gateway 10.1.1.1. xtr-b answers its ARP for the old gateway with the shared HSRP virtual
/// MAC (proxy-ARP), detects it as a dynamic EID and registers it; the map-server notifies
/// xtr-a, whose away entry makes it SMR the remote ITR xtr-c on its next packet: xtr-c's
/// map-cache follows the host and the remote host's pings continue.
#[test]
fn scenario_a_across_subnets_the_remote_itr_follows_the_host_after_an_smr() {
    let lab = Lab::up("across-subnet", "sa");
    let sites = [("10.3.3.0/24", "192.0.2.3"), ("10.1.1.0/24", "192.0.2.1")];
    lab.wait_registered("the sites registered", 30, "ms", &sites);
    lab.wait_hsrp_active("HSRP active at both sites", &["xtr-a", "xtr-b"]);
    wait_for("host -> remote", Duration::from_secs(30), || {
        lab.ping("host", "10.3.3.10").then(String::new)
    });
    // Before the move the home site answers for its whole subnet.
    let cache = wait_for(
        "xtr-c caches the home subnet at xtr-a",
        Duration::from_secs(20),
        || {
            let ok = lab.ping("remote", "10.1.1.5");
            let cache = lab.show("xtr-c", "show ip lisp map-cache 10.1.1.5");
            (ok && cache.contains("192.0.2.1 ")).then_some(cache)
        },
    );
    assert!(cache.contains("10.1.1.0/24"), "{cache}");

    let pings = remote_pings_across_the_move(&lab, "xtr-b:eth2", "across subnets");
    assert!(
        pings_continued(&pings),
        "the remote host's pings did not continue after the move:\n{}\nxtr-b:\n{}{}",
        pings.text,
        lab.show("xtr-b", "show ip arp"),
        lab.show("xtr-b", "show forwarding counters")
    );
    // The host kept its gateway: xtr-b answered it with the shared HSRP virtual MAC.
    let neigh = lab.exec("host", "ip neigh show 10.1.1.1").stdout;
    assert!(neigh.contains("00:00:0c:07:ac:01"), "{neigh}");
    let (row, dynamic) = lab.dynamic_eid("xtr-b", " 10.1.1.5 ");
    assert!(row.contains("Vlan20"), "{dynamic}");
    let route = lab.show("xtr-b", "show ip route");
    assert!(
        route.contains("10.1.1.5/32"),
        "host route on xtr-b:\n{route}"
    );
    let site = lab.show("ms", "show lisp site");
    assert!(registered(&site, "10.1.1.5/32", "192.0.2.2"), "{site}");
    // The home site learned it from the map-server: away (remote EID).
    let away = lab.show("xtr-a", "show ip lisp away");
    assert!(away.lines().any(|l| l.starts_with("10.1.1.5/32")), "{away}");
    let cache = lab.show("xtr-c", "show ip lisp map-cache 10.1.1.5");
    assert!(
        cache.contains("10.1.1.5/32")
            && cache.contains("192.0.2.2 ")
            && !cache.contains("192.0.2.1 "),
        "{cache}"
    );

    // Back home: xtr-a detects it again and the remote host reaches it there.
    lab.move_host("host", "xtr-a:eth2");
    let _ = lab.ping("host", "10.3.3.10");
    wait_for("remote -> host back home", Duration::from_secs(15), || {
        lab.ping("remote", "10.1.1.5").then(String::new)
    });
    let home = [("10.1.1.5/32", "192.0.2.1")];
    let site = lab.wait_registered("the map-server has the host at home", 10, "ms", &home);
    assert!(!registered(&site, "10.1.1.5/32", "192.0.2.2"), "{site}");
}

/// (b) Seed 001 with a LAN extension: two data centres of one site share VLAN 10, each its
/// own active HSRP gateway (hellos filtered on the extension). The host moves from dc1 to dc2:
/// dc2 detects and registers it and tells dc1 on the map-notify-group; dc1 lists it with '*';
/// the remote host's pings continue.
#[test]
fn scenario_b_extended_subnet_the_data_centres_agree_through_the_map_notify_group() {
    let lab = Lab::up("extended-subnet", "sb");
    let remote = [("10.3.3.0/24", "192.0.2.3")];
    lab.wait_registered("remote site registered", 30, "ms", &remote);
    // With the hello filter each data centre is active for the same group.
    lab.wait_hsrp_active("HSRP active in both data centres", &["dc1", "dc2"]);
    wait_for("host -> remote", Duration::from_secs(30), || {
        lab.ping("host", "10.3.3.10").then(String::new)
    });
    let (row, s1) = lab.dynamic_eid("dc1", " 10.1.1.5 ");
    assert!(
        !row.is_empty() && !row.contains('*'),
        "dc1 detected the host:\n{s1}"
    );
    let s2 = lab.wait_show(
        "dc2 learns the host from dc1's announcement",
        10,
        ("dc2", "show lisp dynamic-eid summary"),
        |s| s.contains("*10.1.1.5"),
    );
    assert!(s2.contains("dc-hosts"), "{s2}");
    wait_for("remote -> host", Duration::from_secs(20), || {
        lab.ping("remote", "10.1.1.5").then(String::new)
    });

    let pings = remote_pings_across_the_move(&lab, "dc2:eth2", "extended subnet");
    assert!(pings_continued(&pings), "{}", pings.text);
    lab.assert_dc2_holds_the_host();
    let at_dc2 = [("10.1.1.5/32", "192.0.2.2")];
    let site = lab.wait_registered("the map-server has the host at dc2", 10, "ms", &at_dc2);
    assert!(!registered(&site, "10.1.1.5/32", "192.0.2.1"), "{site}");
    // Still one site: dc1 keeps no away entry for it.
    let away = lab.show("dc1", "show ip lisp away");
    assert!(away.contains("Entries: 0"), "{away}");
    // Both gateways stay active: the filter keeps each data centre's hellos at home.
    assert!(hsrp_active(&lab.show("dc1", "show hsrp brief")));
    assert!(hsrp_active(&lab.show("dc2", "show hsrp brief")));
}

/// With the hello filter on the LAN extension each data centre has its own active gateway for
/// the same virtual IP and MAC; a host's ARP for its gateway, flooded over the extension, is
/// answered by its own data centre only (the other one would otherwise take the host for one
/// of its own dynamic EIDs).
#[test]
fn extended_subnet_only_the_local_gateway_answers_a_host() {
    roamer_test_support::require_tool("tshark", "tshark");
    let lab = Lab::up("extended-subnet", "sx");
    lab.wait_hsrp_active("HSRP active in both data centres", &["dc1", "dc2"]);
    let host_mac = lab.exec("host", "cat /sys/class/net/eth1/address").stdout;
    let host_mac = host_mac.trim().to_string();
    // Every ARP frame on dc2's side of the LAN extension, as tshark sees it, line by line.
    let mut tshark = Command::new("ip")
        .args(["netns", "exec", &lab.netns("dc2")])
        .args(["tshark", "-l", "-n", "-i", "eth3", "-f", "arp"])
        .args([
            "-a",
            "duration:60",
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "eth.dst",
            "-e",
            "arp.opcode",
            "-e",
            "arp.src.proto_ipv4",
            "-e",
            "arp.dst.proto_ipv4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tshark.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader};
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // The host asks for its gateway again and again (its neighbour entry flushed each time)
    // until the capture has seen two of its requests flooded over the extension: the capture
    // works, and any answer dc2 gave the first request had time to be seen.
    let mut seen = Vec::new();
    let mut requests = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while requests < 2 {
        assert!(
            Instant::now() < deadline,
            "the capture on dc2's extension port never saw the host's ARP request: {seen:?}"
        );
        let _ = lab.exec("host", "ip neigh flush dev eth1");
        assert!(lab.ping("host", "10.1.1.1"), "the host reaches its gateway");
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if l == "ff:ff:ff:ff:ff:ff,1,10.1.1.5,10.1.1.1" {
                requests += 1;
            }
            seen.push(l);
        }
    }
    let _ = tshark.kill();
    let _ = tshark.wait();
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let from_dc2: Vec<&String> = seen
        .iter()
        .filter(|l| l.starts_with(&format!("{host_mac},2,10.1.1.1,")))
        .collect();
    assert!(
        from_dc2.is_empty(),
        "dc2 answered the host's ARP for its gateway across the LAN extension: {from_dc2:?}\n{}{}",
        lab.show("dc1", "show lisp dynamic-eid summary"),
        lab.show("dc2", "show lisp dynamic-eid summary")
    );
}

/// (c) Seed 002, generalized SMR on no-route: host B talks to host A; Ethernet1/2 of xtr1
/// (host A's port) is shut down; xtr1 decapsulates the next packet for host A without a route,
/// puts 172.16.0.0/24 in its away table (local EID), withdraws it and SMRs xtr2, whose
/// SMR-invoked request is answered negatively: forward-native for a minute.
#[test]
fn scenario_c_no_route_on_the_etr_makes_the_itr_cache_forward_native() {
    let lab = Lab::up("gsmr-no-route", "sc");
    let sites = [
        ("172.16.0.0/24", "203.0.113.11"),
        ("192.168.0.0/24", "198.51.100.21"),
    ];
    lab.wait_registered("both sites registered", 30, "msmr", &sites);
    wait_for("host-b -> host-a", Duration::from_secs(30), || {
        lab.ping("host-b", "172.16.0.12").then(String::new)
    });
    let cache = lab.show("xtr2", "show ip lisp map-cache");
    assert!(
        cache.contains("172.16.0.0/24, uptime:") && cache.contains("via map-reply, complete"),
        "{cache}"
    );
    assert!(cache.contains("203.0.113.11"), "{cache}");
    assert!(lab.ping("host-a", "192.168.0.22"), "host-a -> host-b");

    let shut = lab.exec(
        "xtr1",
        "configure terminal ; interface Ethernet1/2 ; shutdown ; end",
    );
    assert!(shut.ok, "{shut:?}");
    let cache = lab.wait_show(
        "xtr2 caches 172.16.0.0/24 as forward-native",
        15,
        ("xtr2", "show ip lisp map-cache"),
        |cache| {
            let found = cache.contains("Negative cache entry, action: forward-native");
            if !found {
                // host-b's next packet to host-a makes xtr1 SMR xtr2.
                let _ = lab.ping("host-b", "172.16.0.12");
            }
            found
        },
    );
    let line = cache
        .lines()
        .find(|l| l.starts_with("172.16.0.0/24"))
        .unwrap_or_default();
    assert!(line.contains("via map-reply, forward-native"), "{cache}");
    let expires = line
        .split("expires: ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap_or_default();
    assert!(
        expires.starts_with("00:00:") || expires == "00:01:00",
        "one minute: {cache}"
    );
    let away = lab.show("xtr1", "show ip lisp away");
    assert!(
        away.lines()
            .any(|l| l.starts_with("172.16.0.0/24") && l.ends_with("local EID")),
        "{away}"
    );
    let site = lab.show("msmr", "show lisp site");
    let row = site
        .lines()
        .find(|l| l.contains("172.16.0.0/24"))
        .unwrap_or_default();
    assert!(
        row.contains(" no "),
        "withdrawn from the map-server:\n{site}"
    );
    assert!(!lab.ping("host-b", "172.16.0.12"), "host A is unreachable");
}

/// (d) Seed 003, reliable registration: both xTRs register to a new map-server over TCP
/// (session Up, `yes#`) and to an old one, configured without reliable registration, over UDP
/// (session Down, never up); the sites reach each other through the map-resolver.
#[test]
fn scenario_d_reliable_registration_to_the_new_map_server_and_udp_to_the_old_one() {
    let lab = Lab::up("reliable-registration", "sd");
    let line = |text: &str, peer: &str| {
        text.lines()
            .find(|l| l.starts_with(peer))
            .unwrap_or_default()
            .to_string()
    };
    for xtr in ["xtr1", "xtr2"] {
        let s = wait_for(
            &format!("{xtr}: session Up to the new map-server"),
            Duration::from_secs(30),
            || {
                let s = lab.show(xtr, "show lisp session");
                (line(&s, "209.165.201.31").contains(" Up ")
                    && line(&s, "209.165.201.41").contains("Down"))
                .then_some(s)
            },
        );
        assert!(
            s.starts_with("Sessions for VRF default, total: 2, established: 1\n"),
            "{s}"
        );
        assert!(line(&s, "209.165.201.41").contains("never"), "{s}");
    }
    let site = lab.wait_show(
        "registrations over the sessions",
        15,
        ("new-msmr", "show lisp site"),
        |s| s.matches("yes#").count() == 2,
    );
    assert!(registered(&site, "172.16.0.0/24", "203.0.113.11"), "{site}");
    assert!(
        registered(&site, "192.168.0.0/24", "198.51.100.21"),
        "{site}"
    );
    assert!(
        site.contains("# = Some registrations are sourced by reliable transport"),
        "{site}"
    );
    let sessions = lab.show("new-msmr", "show lisp session");
    assert!(
        sessions.starts_with("Sessions for VRF default, total: 2, established: 2\n"),
        "{sessions}"
    );
    let old = lab.wait_show(
        "UDP registrations at the old one",
        15,
        ("old-msmr", "show lisp site"),
        |s| s.matches(" yes ").count() == 2,
    );
    assert!(!old.contains('#'), "{old}");
    wait_for("host-b -> host-a", Duration::from_secs(30), || {
        lab.ping("host-b", "172.16.0.12").then(String::new)
    });
    assert!(lab.ping("host-a", "192.168.0.22"), "host-a -> host-b");
}

/// Seed 003 after a crash: `kill -9` of the map-server and its restart. The ETRs notice at
/// once (their 1-second TCP keep-alive meets the new TCP stack, which resets it), register over
/// UDP at once and re-open their sessions: every site is registered again within 5 s, and a
/// flow between the sites that starts right after the restart works within 5 s (a site not
/// yet re-registered is answered with TTL 0 while the table refills, never cached for a minute).
#[test]
fn scenario_d_a_map_server_killed_and_restarted_is_refilled_within_five_seconds() {
    let lab = Lab::up("reliable-registration", "sk");
    let both_reliable = || {
        let s = lab.show("new-msmr", "show lisp site");
        (s.matches("yes#").count() == 2).then_some(s)
    };
    wait_for(
        "registrations over the sessions",
        Duration::from_secs(30),
        both_reliable,
    );
    let state = lab_state(&lab.state, &lab.name);
    let daemon = state_entry(&state, "daemons", "node", "new-msmr");
    let pid = daemon["pid"].as_u64().unwrap().to_string();
    let socket = PathBuf::from(daemon["socket"].as_str().unwrap());
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success(), "kill -9 {pid}");
    wait_for("the map-server gone", Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        .then(String::new)
    });
    let config = lab
        .file
        .parent()
        .unwrap()
        .join("reliable-registration/new-msmr.cfg");
    let log = std::fs::File::create(lab.file.parent().unwrap().join("restarted.log")).unwrap();
    let _ = std::fs::remove_file(&socket);
    // The restarted map-server, killed when dropped.
    let restarted = roamer_test_support::KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", &lab.netns("new-msmr")])
            .arg(env!("CARGO_BIN_EXE_roamer"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for(
        "the map-server serving again",
        Duration::from_secs(30),
        || {
            std::os::unix::net::UnixStream::connect(&socket)
                .is_ok()
                .then(String::new)
        },
    );
    let started = Instant::now();
    // A new flow between the sites starts right after the restart, while the sites'
    // registrations are watched.
    let (first_reply, (registered_after, site)) = std::thread::scope(|scope| {
        let flow = scope.spawn(|| {
            // A packet every half second, as a connecting application retries.
            while started.elapsed() < Duration::from_secs(10) {
                let ping = "ping -n -c 1 -W 0.5 192.168.0.22";
                if lab.exec("host-a", ping).ok {
                    return Some(started.elapsed());
                }
            }
            None
        });
        let sites = [
            ("172.16.0.0/24", "203.0.113.11"),
            ("192.168.0.0/24", "198.51.100.21"),
        ];
        let site = lab.wait_registered("both sites registered again", 10, "new-msmr", &sites);
        let registered_after = started.elapsed();
        (flow.join().unwrap(), (registered_after, site))
    });
    assert!(
        registered_after <= Duration::from_secs(5),
        "registered again {registered_after:?} after the restart:\n{site}"
    );
    let first_reply = first_reply.expect("host-a reaches host-b after the restart");
    assert!(
        first_reply <= Duration::from_secs(5),
        "the first reply of a new flow came {first_reply:?} after the restart"
    );
    // The sessions come back: registrations over TCP again.
    wait_for(
        "registrations over the new sessions",
        Duration::from_secs(15),
        both_reliable,
    );
    eprintln!(
        "map-server restart: sites registered again after {registered_after:?}, \
         first reply of a new flow after {first_reply:?}"
    );
    drop(restarted);
}

/// `roamer lab`: the across-subnet scenario from its built-in copy, start to finish; the
/// before/after map-cache and sites, a convergence figure, and nothing left behind.
#[test]
fn roamer_lab_runs_the_demo_and_leaves_nothing_behind() {
    let (tmp, name, mut cmd) = demo("demo");
    let out = run(&mut cmd);
    assert_no_namespaces_of(&name);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(out.ok, "{text}");
    let before = text.split("── After the move").next().unwrap_or_default();
    let after = text.split("── After the move").nth(1).unwrap_or_default();
    assert!(before.contains("── Before the move"), "{text}");
    for part in [before, after] {
        assert!(part.contains("xtr-c# show ip lisp map-cache"), "{text}");
        assert!(part.contains("ms# show lisp site"), "{text}");
    }
    assert!(before.contains("192.0.2.1 "), "{text}");
    let cache_after = after.split("ms# show lisp site").next().unwrap_or_default();
    assert!(
        cache_after.contains("10.1.1.5/32") && cache_after.contains("192.0.2.2 "),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("Convergence: "))
        .unwrap_or_else(|| panic!("no convergence figure:\n{text}"));
    assert!(
        line.contains(" ms ") && line.contains("pings lost"),
        "{line}"
    );
    assert!(text.contains("no namespace left behind"), "{text}");
    // Its files are gone too.
    let files = lab_files(tmp.path());
    assert!(files.is_empty(), "{files:?}");
}

/// The README's first command on a machine without `ping` (iputils-ping): the demo pings with
/// roamer's own ICMP echoes. `ping` is hidden in a mount namespace of the demo's own (every
/// `ping` on the PATH has /dev/null bound over it), which the daemons and `ip netns exec` inherit.
#[test]
fn roamer_lab_runs_the_demo_on_a_machine_without_ping() {
    roamer_test_support::require_tool("unshare", "util-linux");
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("noping{}", std::process::id());
    let script = r#"set -e
for d in $(echo "$PATH" | tr ':' ' '); do
    if [ -e "$d/ping" ]; then readlink -f "$d/ping"; fi
done | sort -u | while read -r p; do mount --bind /dev/null "$p"; done
if ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1; then echo "ping still runs" >&2; exit 99; fi
echo "ping hidden"
exec "$ROAMER" lab --name "$NAME"
"#;
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("ROAMER", env!("CARGO_BIN_EXE_roamer"))
        .env("NAME", &name)
        .env("ROAMER_LAB_DIR", tmp.path().join("state"))
        .env("TMPDIR", tmp.path()));
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.starts_with("ping hidden"), "{text}");
    assert!(out.ok, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("Convergence: ")),
        "no convergence line:\n{text}"
    );
    assert!(text.contains("no namespace left behind"), "{text}");
    assert_no_namespaces_of(&name);
}

/// The demo, `roamer lab --name TAG<pid>`, with its state and scratch files in a temporary
/// directory of its own, its output piped: that directory, the lab's name, the command.
fn demo(tag: &str) -> (tempfile::TempDir, String, Command) {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{tag}{}", std::process::id());
    let mut demo = roamer(&tmp.path().join("state"));
    demo.env("TMPDIR", tmp.path())
        .args(["lab", "--name", &name])
        .stdout(Stdio::piped());
    (tmp, name, demo)
}

/// The demo's scratch directories left in `dir`.
fn lab_files(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("roamer-lab-"))
        .collect()
}

/// A Ctrl-C while the demo runs tears the lab down.
#[test]
fn roamer_lab_is_torn_down_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let (tmp, name, mut cmd) = demo("intr");
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    // Its output is read to the end (a closed pipe is another test: see below).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("[1/6]") {
            break;
        }
    }
    assert!(
        netns_list().contains(&format!("clab-{name}-")),
        "the lab is up: {seen}"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter().map(|l| l + "\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(seen.contains("no namespace left behind"), "{seen}");
    assert_no_namespaces_of(&name);
    assert!(!tmp.path().join("state").join(&name).exists(), "state left");
    let files = lab_files(tmp.path());
    assert!(files.is_empty(), "files left after a Ctrl-C: {files:?}");
}

/// With its output gone (`roamer lab | head -3`), the demo still tears its lab down.
#[test]
fn roamer_lab_tears_down_when_its_output_is_closed() {
    use std::io::{BufRead, BufReader};
    let (_tmp, name, mut cmd) = demo("pipe");
    let mut child = cmd.stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("roamer lab"), "{first}");
    drop(lines);
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_no_namespaces_of(&name);
}
