//! The container images as users get them (issue 18): a Docker engine started by this test
//! (dockerd by hand, `--iptables=false --bridge=none`) loads `target/images/roamer-oci.tar` and
//! `roamer-host-oci.tar` (built by `scripts/build-images.sh container`, which CI's test script
//! runs before `cargo test`), and the across-subnet scenario runs with `roamer lab up --runtime
//! docker`: real containers of roamer:latest, linked as containerlab links them. The host moves,
//! the remote host's pings reach it again, the map-cache and `show lisp site` show the new
//! locator; `docker stop` of a roamer node ends it by its own SIGTERM handling.
//!
//! Needs root, dockerd and docker; fails (never skips) when one of them or an image is missing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod lab_common;
use lab_common::*;

/// The size limit of the roamer image (issue 18).
const MAX_IMAGE_BYTES: u64 = 30 * 1000 * 1000;

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/images")
}

/// A Docker engine of this test's own: its data root, exec root, PID file and socket are named
/// after the test's PID; stopped by its PID (SIGTERM, then SIGKILL) when dropped, also after a
/// failed assertion.
struct Dockerd {
    child: Child,
    host: String,
    data_root: PathBuf,
    exec_root: PathBuf,
    log: PathBuf,
}

impl Dockerd {
    fn start() -> Dockerd {
        let tag = format!("it{}", std::process::id());
        let run_dir = Path::new("/run/roamer-test-docker");
        std::fs::create_dir_all(run_dir).unwrap();
        let data_root = Path::new("/var/lib/roamer-test-docker").join(&tag);
        std::fs::create_dir_all(&data_root).unwrap();
        let exec_root = run_dir.join(format!("{tag}-exec"));
        let socket = run_dir.join(format!("{tag}.sock"));
        let log = run_dir.join(format!("{tag}.log"));
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--bridge=none", "--ip-masq=false"])
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(run_dir.join(format!("{tag}.pid")))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start dockerd ({e}): this test needs docker.io (apt-get install docker.io)")
            });
        let d = Dockerd {
            child,
            host: format!("unix://{}", socket.display()),
            data_root,
            exec_root,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = run(&mut d.docker(&["version", "--format", "{{.Server.Version}}"]));
            if v.ok {
                eprintln!("dockerd {} at {}", v.stdout.trim(), d.host);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 30 s: {}\n{}",
                v.stderr,
                std::fs::read_to_string(&d.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args).env("DOCKER_HOST", &self.host);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = run(&mut self.docker(args));
        assert!(out.ok, "docker {}: {}", args.join(" "), out.stderr);
        out.stdout.trim().to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.data_root);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn need_root_and_tools() {
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        uid.stdout.trim(),
        "0",
        "tests/image_container.rs needs root (dockerd, network namespaces)"
    );
    for tool in ["dockerd", "docker", "ip"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not on PATH: this test needs docker.io and iproute2"
        );
    }
    for archive in ["roamer-oci.tar", "roamer-host-oci.tar"] {
        let p = images_dir().join(archive);
        assert!(
            p.is_file(),
            "{} is missing: run scripts/build-images.sh container first (CI's test script does)",
            p.display()
        );
    }
}

#[test]
fn the_container_image_runs_the_across_subnet_scenario_under_docker() {
    let started = Instant::now();
    need_root_and_tools();
    let archive = images_dir().join("roamer-oci.tar");
    let archive_bytes = std::fs::metadata(&archive).unwrap().len();
    eprintln!(
        "roamer-oci.tar: {archive_bytes} bytes, roamer-host-oci.tar: {} bytes",
        std::fs::metadata(images_dir().join("roamer-host-oci.tar"))
            .unwrap()
            .len()
    );
    assert!(
        archive_bytes <= MAX_IMAGE_BYTES,
        "roamer-oci.tar is {archive_bytes} bytes, more than {MAX_IMAGE_BYTES}"
    );

    let d = Dockerd::start();
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    // Errors that say what to do: no engine there, the images not loaded.
    let tiny = scratch.path().join("tiny.clab.yml");
    let lab = format!("icx{}", std::process::id());
    std::fs::write(
        &tiny,
        format!(
            "name: {lab}\ntopology:\n  nodes:\n    a: {{kind: linux, image: alpine:3}}\n    b:\n      kind: linux\n      exec:\n        - ip link set eth1 up\n        - exit 3\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
        ),
    )
    .unwrap();
    let up_tiny = |docker_host: &str| {
        run(roamer(&state)
            .env("DOCKER_HOST", docker_host)
            .args(["lab", "up", "--runtime", "docker"])
            .arg(&tiny))
    };
    let no_engine = up_tiny("unix:///run/roamer-test-docker/nothing-here.sock");
    assert!(
        !no_engine.ok && no_engine.stderr.contains("Docker engine is not running"),
        "{no_engine:?}"
    );
    let no_image = up_tiny(&d.host);
    assert!(
        !no_image.ok
            && no_image.stderr.contains("roamer-host:latest")
            && no_image.stderr.contains("not loaded")
            && no_image
                .stderr
                .contains("scripts/build-images.sh container"),
        "{no_image:?}"
    );
    for a in ["roamer-oci.tar", "roamer-host-oci.tar"] {
        let p = images_dir().join(a);
        let loaded = d.ok(&["load", "-i", p.to_str().unwrap()]);
        assert!(loaded.contains("Loaded image: "), "{loaded}");
    }
    // The image as Docker sees it: size, entrypoint, stop signal, healthcheck.
    let size: u64 = d
        .ok(&["image", "inspect", "--format", "{{.Size}}", "roamer:latest"])
        .parse()
        .unwrap();
    eprintln!("roamer:latest: {size} bytes in the engine");
    assert!(size <= MAX_IMAGE_BYTES, "roamer:latest is {size} bytes");
    let config: serde_json::Value = serde_json::from_str(&d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        "roamer:latest",
    ]))
    .unwrap();
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/bin/roamer", "run"]),
        "{config}"
    );
    assert_eq!(config["StopSignal"], "SIGTERM", "{config}");
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "roamer", "exec", "show version"]),
        "{config}"
    );
    assert_eq!(
        config["Healthcheck"]["Interval"], 5_000_000_000u64,
        "{config}"
    );
    let host_cmd = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        "roamer-host:latest",
    ]);
    assert!(host_cmd.contains("sleep infinity"), "{host_cmd}");

    // A lab that fails halfway (an exec line fails after the containers and the link exist)
    // leaves nothing behind.
    let half = up_tiny(&d.host);
    assert!(
        !half.ok && half.stderr.contains("exec \"exit 3\" failed"),
        "{half:?}"
    );
    assert!(
        half.stdout
            .contains("a: image alpine:3 is not loaded; using roamer-host:latest"),
        "{half:?}"
    );
    let left = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=containerlab={lab}"),
        "-q",
    ]);
    assert!(left.is_empty(), "containers left after a failed up: {left}");
    assert!(
        !netns_list().contains(&format!("clab-{lab}-")),
        "{}",
        netns_list()
    );
    assert!(!state.join(&lab).exists(), "state left after a failed up");

    let lab = Lab::up_with(
        "across-subnet",
        "ic",
        &["--runtime", "docker"],
        &[("DOCKER_HOST", &d.host)],
    );
    let label = format!("label=containerlab={}", lab.name);
    let containers = d.ok(&["ps", "--filter", &label, "--format", "{{.Names}}"]);
    assert_eq!(
        containers.lines().count(),
        8,
        "one running container per node:\n{containers}"
    );
    assert!(
        lab.up_output().contains(" using roamer-host:latest"),
        "{}",
        lab.up_output()
    );
    // The linux nodes are the host image: Debian's ip, not busybox's.
    let ip = lab.exec("host", "ip -V");
    assert!(ip.ok && ip.stdout.contains("iproute2"), "{ip:?}");

    wait_for("the sites registered", Duration::from_secs(30), || {
        let site = lab.show("ms", "show lisp site");
        (registered(&site, "10.3.3.0/24", "192.0.2.3")
            && registered(&site, "10.1.1.0/24", "192.0.2.1"))
        .then_some(site)
    });
    wait_for("remote -> host at home", Duration::from_secs(30), || {
        let _ = lab.ping("host", "10.3.3.10");
        lab.ping("remote", "10.1.1.5").then(String::new)
    });
    let cache = lab.show("xtr-c", "show ip lisp map-cache 10.1.1.5");
    assert!(cache.contains("192.0.2.1 "), "{cache}");

    lab.move_host("host", "xtr-b:eth2");
    let moved = Instant::now();
    // The VM resumes: its next packet is the new site's first sight of it.
    let _ = lab.ping("host", "10.3.3.10");
    wait_for(
        "remote -> host after the move",
        Duration::from_secs(20),
        || lab.ping("remote", "10.1.1.5").then(String::new),
    );
    eprintln!(
        "remote reaches the moved host {:.1} s after the move",
        moved.elapsed().as_secs_f64()
    );
    let cache = wait_for(
        "xtr-c's map-cache follows the host",
        Duration::from_secs(10),
        || {
            let cache = lab.show("xtr-c", "show ip lisp map-cache 10.1.1.5");
            (cache.contains("10.1.1.5/32") && cache.contains("192.0.2.2 ")).then_some(cache)
        },
    );
    assert!(!cache.contains("192.0.2.1 "), "{cache}");
    let site = lab.show("ms", "show lisp site");
    assert!(registered(&site, "10.1.1.5/32", "192.0.2.2"), "{site}");

    // The startup configuration is bound read-write, as containerlab binds it: saving works.
    let startup = lab.file.parent().unwrap().join("across-subnet/xtr-a.cfg");
    let saved = lab.exec(
        "xtr-a",
        "configure terminal ; hostname xtr-a-saved ; end ; copy running-config startup-config",
    );
    assert!(saved.ok, "{saved:?}");
    let text = std::fs::read_to_string(&startup).unwrap();
    assert!(text.contains("hostname xtr-a-saved"), "{text}");

    // The healthcheck asks the daemon.
    let ms = format!("clab-{}-ms", lab.name);
    wait_for("ms healthy", Duration::from_secs(30), || {
        let s = d.ok(&["inspect", "--format", "{{.State.Health.Status}}", &ms]);
        (s == "healthy").then_some(s)
    });

    // `docker stop`: SIGTERM, handled (exit 0, or 143 for a shell-style death by SIGTERM), not
    // SIGKILL after the grace period (137).
    let xtr_c = format!("clab-{}-xtr-c", lab.name);
    let t = Instant::now();
    d.ok(&["stop", "-t", "10", &xtr_c]);
    let stop = t.elapsed();
    let code = d.ok(&["inspect", "--format", "{{.State.ExitCode}}", &xtr_c]);
    eprintln!("docker stop of a roamer node: {stop:?}, exit code {code}");
    assert!(
        code == "0" || code == "143",
        "roamer did not stop by itself on SIGTERM: exit code {code} after {stop:?}"
    );

    let name = lab.name.clone();
    drop(lab);
    let left = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=containerlab={name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(left.is_empty(), "containers left after lab down:\n{left}");
    let netns = netns_list();
    assert!(
        !netns.contains(&format!("clab-{name}-")),
        "namespace links left: {netns}"
    );
    eprintln!("image_container: {:.1} s", started.elapsed().as_secs_f64());
}
