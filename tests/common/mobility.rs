//! Seed 004's lab, shared by the mobility tests of both backends: a map-server/map-resolver and
//! three xTRs (roamer each, in their own network namespaces on one underlay segment), a remote
//! host R behind xTR-C and a host H that moves from xTR-A to xTR-B (its link re-attached).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use super::lisp_config as lisp;
use super::{Daemon, wait_for};
use roamer_test_support::pcap::CHECK_CHECKSUMS;
use roamer_test_support::{self as support, Capture, Netns, Veth};

/// How the xTRs are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xtrs {
    /// The software backend; each host port an access port of VLAN 10, the EIDs on the SVI
    /// Vlan10.
    Software,
    /// The kernel backend (`roamer platform backend kernel`); each host port a routed port
    /// with the EIDs' subnet (this host's kernel has no SVIs), the same gateway address on
    /// xTR-A and xTR-B.
    Kernel,
    /// [`Xtrs::Kernel`], but xTR-B's host port is in another subnet (10.2.2.0/24, `ip
    /// proxy-arp`, no extended-subnet mode): H is a dynamic EID across subnets there and gets a
    /// host route. H keeps its old gateway address, and xTR-B answers H's ARP for it by
    /// proxy-ARP (seed 001), which the kernel itself would not (the gateway is behind LISP).
    KernelAcross,
}

impl Xtrs {
    /// xTR `name`'s node and its EID-facing interface, its lines `eid_lines` (indented).
    fn node(self, p: &str, name: &str, underlay: &str, eid_lines: &[&str]) -> String {
        let mut c = match self {
            Xtrs::Software => lisp::xtr_node(p, name, 'h', &[underlay]) + "interface Vlan10\n",
            Xtrs::Kernel | Xtrs::KernelAcross => lisp::kernel_xtr_node(p, name, 'h', &[underlay]),
        };
        for l in eid_lines {
            c += &format!("  {l}\n");
        }
        c
    }

    /// xTR `n` (1 = A, 2 = B): the mobility subnet, hosts detected as dynamic EIDs.
    pub fn mobile(self, p: &str, n: u8, name: char) -> String {
        let eid_lines: &[&str] = if self == Xtrs::KernelAcross && n == 2 {
            &[
                "ip address 10.2.2.1/24",
                "ip proxy-arp",
                "lisp mobility roam",
            ]
        } else {
            &[
                "ip address 10.9.0.1/24",
                "lisp mobility roam",
                "lisp extended-subnet-mode",
            ]
        };
        format!(
            "{}ip lisp itr-etr\n{}\
             lisp dynamic-eid roam\n  database-mapping 10.9.0.0/25 192.0.2.{n} priority 1 weight 100\n",
            self.node(
                p,
                &name.to_string(),
                &format!("ip address 192.0.2.{n}/24"),
                eid_lines,
            ),
            lisp::mapping_system("ip", "192.0.2.100"),
        )
    }

    /// xTR-C: the remote site 10.3.0.0/24.
    pub fn remote(self, p: &str) -> String {
        format!(
            "{}ip lisp itr-etr\n{}\
             ip lisp database-mapping 10.3.0.0/24 192.0.2.3 priority 1 weight 100\n",
            self.node(
                p,
                "c",
                "ip address 192.0.2.3/24",
                &["ip address 10.3.0.1/24"],
            ),
            lisp::mapping_system("ip", "192.0.2.100"),
        )
    }
}

/// The map-server (on the xTRs' backend): the mobile site's dynamic range and the remote
/// site.
pub fn ms_config(p: &str, xtrs: Xtrs) -> String {
    let c = lisp::ms(
        p,
        &[
            ("mobile", &["10.9.0.0/25 accept-more-specifics"]),
            ("remote", &["10.3.0.0/24"]),
        ],
    );
    match xtrs {
        Xtrs::Software => c,
        Xtrs::Kernel | Xtrs::KernelAcross => lisp::kernel(c),
    }
}

/// The seed 004 topology.
pub struct Lab {
    // Daemons first: they stop before their namespaces go.
    pub ms: Daemon,
    pub xa: Daemon,
    pub xb: Daemon,
    pub xc: Daemon,
    pub _links: Vec<Veth>,
    pub core: Netns,
    pub h: Netns,
    pub r: Netns,
    pub nodes: Vec<Netns>,
    pub p: String,
    pub xtrs: Xtrs,
}

impl Lab {
    /// Converged: H (behind xTR-A) and R (behind xTR-C) have exchanged pings through the
    /// mapping system.
    pub fn up(xtrs: Xtrs) -> Lab {
        let lab = Lab::wired(xtrs);
        lab.warm();
        lab
    }

    /// Wired and running, the remote site registered; H and R have not talked yet.
    pub fn wired(xtrs: Xtrs) -> Lab {
        let p = support::unique_prefix();
        // Host links: H to A (attached) and to B (not yet), R to C.
        let ([core, ms_ns, a_ns, b_ns, c_ns, h, r], links) = super::three_xtrs(&p);
        let (ea, er) = (format!("{p}ea"), format!("{p}er"));
        h.addr(&ea, "10.9.0.5/24").expect("addr");
        h.ip(&["route", "add", "default", "via", "10.9.0.1", "dev", &ea])
            .expect("gw");
        r.addr(&er, "10.3.0.10/24").expect("addr");
        r.ip(&["route", "add", "default", "via", "10.3.0.1"])
            .expect("gw");

        let ms = Daemon::start_in_netns(&ms_config(&p, xtrs), ms_ns.name());
        let xa = Daemon::start_in_netns(&xtrs.mobile(&p, 1, 'a'), a_ns.name());
        let xb = Daemon::start_in_netns(&xtrs.mobile(&p, 2, 'b'), b_ns.name());
        let xc = Daemon::start_in_netns(&xtrs.remote(&p), c_ns.name());

        // The remote site registers first: asked earlier, the map-resolver would rightly answer
        // "configured, not registered" (forward-native for a minute).
        wait_for("xTR-C registered", Duration::from_secs(20), || {
            let site = ms.exec("show lisp site").stdout;
            site.lines()
                .any(|l| l.contains("10.3.0.0/24") && l.contains(" yes"))
                .then_some(site)
        });
        Lab {
            ms,
            xa,
            xb,
            xc,
            _links: links,
            core,
            h,
            r,
            nodes: vec![ms_ns, a_ns, b_ns, c_ns],
            p,
            xtrs,
        }
    }

    /// H talks first: xTR-A detects it, registers it; both ITRs resolve through the MR.
    pub fn warm(&self) {
        let warm = Instant::now();
        wait_for(
            "H reaches R through the mapping system",
            Duration::from_secs(30),
            || {
                support::ping(&self.h, Ipv4Addr::new(10, 3, 0, 10), Duration::from_secs(1))
                    .expect("ping")
                    .then(String::new)
            },
        );
        eprintln!("first exchange H -> R after {:?}", warm.elapsed());
        let site = self.ms.exec("show lisp site").stdout;
        assert!(site.contains("10.9.0.5/32"), "{site}");
        assert!(site.contains("10.3.0.0/24"), "{site}");
        let dyn_a = self.xa.exec("show lisp dynamic-eid summary").stdout;
        assert!(dyn_a.contains("10.9.0.5"), "{dyn_a}");
        wait_for("xTR-C caches H at xTR-A", Duration::from_secs(10), || {
            let _ = support::ping(&self.r, Ipv4Addr::new(10, 9, 0, 5), Duration::from_secs(1));
            let cache = self.xc.exec("show ip lisp map-cache").stdout;
            (cache.contains("10.9.0.5/32") && cache.contains("192.0.2.1")).then_some(cache)
        });
    }

    /// The daemons' logs, map-caches and counters, for a failure's diagnosis.
    pub fn dump(&self) {
        for (name, d) in [("A", &self.xa), ("B", &self.xb), ("C", &self.xc)] {
            eprintln!("--- xTR-{name} log:\n{}", d.drain_log().join("\n"));
            eprintln!("{}", d.exec("show ip lisp map-cache").stdout);
            eprintln!("{}", d.exec("show forwarding counters").stdout);
        }
    }

    /// The SMR scenario: R pings H every 100 ms while H moves from xTR-A to xTR-B. xTR-B
    /// detects and registers H, the map-server notifies xTR-A, whose next decapsulated packet
    /// for H triggers an SMR to xTR-C, whose SMR-invoked Map-Request is answered by xTR-B: the
    /// map-cache follows H and the pings continue. The control messages are captured on the
    /// underlay (the bridge port of xTR-C) and decoded by tshark, checksums checked.
    pub fn host_moves_and_the_remote_itr_follows(&self) {
        let Lab {
            ms,
            xa,
            xb,
            xc,
            core,
            h,
            r,
            p,
            ..
        } = self;
        let (ea, eb) = (format!("{p}ea"), format!("{p}eb"));
        let capture = Capture::start_with(
            core,
            &format!("{p}kc"),
            "udp port 4342",
            200,
            &[
                "ip.src",
                "ip.dst",
                "lisp.type",
                "lisp.mreq.flags.smr",
                "lisp.mreq.flags.smri",
                "_ws.malformed",
                "_ws.expert.severity",
            ],
            &CHECK_CHECKSUMS[..],
            Duration::from_secs(40),
        )
        .expect("tshark on the underlay");

        let move_thread = {
            let (h_name, ea, eb) = (h.name().to_string(), ea.clone(), eb.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(3));
                let hx = |args: &[&str]| {
                    let mut full = vec!["netns", "exec", &h_name, "ip"];
                    full.extend_from_slice(args);
                    support::run("ip", &full).expect("moving H");
                };
                let moved_at = std::time::SystemTime::now();
                hx(&["addr", "flush", "dev", &ea]);
                hx(&["link", "set", &ea, "down"]);
                hx(&["addr", "add", "10.9.0.5/24", "dev", &eb]);
                hx(&["route", "add", "default", "via", "10.9.0.1", "dev", &eb]);
                // The host's first packet at its new site (a VM sends one when it wakes up).
                let _ = support::run(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        &h_name,
                        "ping",
                        "-c",
                        "1",
                        "-W",
                        "1",
                        "10.3.0.10",
                    ],
                );
                moved_at
            })
        };
        // R pings H every 100 ms while H moves.
        let pinger = Command::new("ip")
            .args([
                "netns",
                "exec",
                r.name(),
                "ping",
                "-n",
                "-D",
                "-i",
                "0.1",
                "-W",
                "1",
                "-c",
                "150",
                "10.9.0.5",
            ])
            .output();
        let pinger = pinger.expect("ping");
        let moved_at = move_thread.join().expect("the move thread");
        let text = String::from_utf8_lossy(&pinger.stdout).to_string();

        // Replies carry "[epoch.usec]"; convergence = first reply after the move.
        let moved = moved_at
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let reply_times: Vec<f64> = text
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        let after: Vec<f64> = reply_times.iter().copied().filter(|t| *t > moved).collect();
        if after.len() < 40 {
            self.dump();
        }
        assert!(
            after.len() >= 40,
            "pings did not continue after the move ({} replies after it):\n{text}",
            after.len()
        );
        let outage = reply_times
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(0.0f64, f64::max);
        eprintln!(
            "{:?} xTRs: replies: {} of 150; longest gap between replies {:.0} ms (pings every 100 ms)",
            self.xtrs,
            reply_times.len(),
            outage * 1000.0
        );

        // The mapping system and every xTR agree on where H is now.
        let site = ms.exec("show lisp site").stdout;
        assert!(site.contains("10.9.0.5/32"), "{site}");
        assert!(
            site.contains("192.0.2.2"),
            "registered by xTR-B now:\n{site}"
        );
        // xTR-A heard of the move by a Map-Notify and acknowledged it: nothing left to resend.
        let detail = wait_for(
            "the Map-Notify to xTR-A acknowledged",
            Duration::from_secs(5),
            || {
                let d = ms.exec("show lisp site detail").stdout;
                d.contains(
                    "Map-Notify to previous RLOCs: sent 1, resent 0, acknowledged 1, given up 0",
                )
                .then_some(d)
            },
        );
        assert!(
            detail.contains("  EID-prefix: 10.9.0.5/32 instance-id 0\n")
                && detail.contains("Origin:               Dynamic, more specific of 10.9.0.0/25")
                && detail.contains("    ETR 192.0.2.2:"),
            "{detail}"
        );
        let cache = xc.exec("show ip lisp map-cache 10.9.0.5").stdout;
        assert!(
            cache.contains("10.9.0.5/32")
                && cache.contains("192.0.2.2")
                && !cache.contains("192.0.2.1 "),
            "{cache}"
        );
        let away = xa.exec("show ip lisp away").stdout;
        assert!(
            away.contains("10.9.0.5/32") && away.contains("dyn-eid"),
            "{away}"
        );
        let dyn_b = xb.exec("show lisp dynamic-eid summary").stdout;
        assert!(dyn_b.contains("10.9.0.5"), "{dyn_b}");
        if self.xtrs == Xtrs::KernelAcross {
            // H asked for its old gateway at xTR-B, and xTR-B's proxy-ARP answered.
            let counters = xb.exec("show forwarding counters").stdout;
            let answered = counters
                .lines()
                .find(|l| l.contains("proxy-arp answered"))
                .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok());
            assert!(
                answered.is_some_and(|n| n >= 1),
                "xTR-B answered no proxy-ARP:\n{counters}"
            );
        }
        let dyn_a = xa.exec("show lisp dynamic-eid summary").stdout;
        assert!(!dyn_a.contains("10.9.0.5"), "{dyn_a}");

        // On the wire: xTR-A's SMR to xTR-C, xTR-C's SMR-invoked request to the MR; all decoded.
        let wire = capture.wire_until_quiet(Duration::from_secs(2));
        wire.assert_any("no SMR from xTR-A to xTR-C", |l| {
            l.starts_with("192.0.2.1\t192.0.2.3\t1\t1\t0\t")
        });
        // Outer then inner addresses: xTR-C to the MR, asking for H; type ECM then Map-Request.
        wire.assert_any("no SMR-invoked Encapsulated Map-Request from xTR-C", |l| {
            l.starts_with("192.0.2.3,10.3.0.10\t192.0.2.100,10.9.0.5\t8,1\t0\t1\t")
        });
        wire.assert_clean(&[5, 6]);
    }
}
