//! The LISP data path in eBPF (`roamer_platforms::kernel::lisp_offload`) between two "xTR"
//! namespaces joined by an underlay veth, each with a host namespace behind an EID-facing veth.
//! The test stands in for the kernel backend: it sets addresses, forwarding and the blackhole
//! routes of the remote EID prefixes with `ip`, then loads the offload inside each xTR namespace,
//! attaches it and programs map-cache, database and addresses. Real frames from real sockets.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use roamer_forwarding::wire::lisp_data::flow_source_port;
use roamer_hal::{HalEvent, Iid, NegativeAction, TableEntry, TableOp};
use roamer_platforms::kernel::lisp_offload::LispOffload;
use roamer_test_support::{self as support, Capture, Netns, Veth};

mod lisp_ops;

use lisp_ops::{EID_IFACE, database, linked, map_cache, prefix};

/// One side: an xTR namespace with its host namespace and its loaded offload.
struct Side {
    host: Netns,
    xtr: Netns,
    eid_dev: String,
    underlay_dev: String,
    host_dev: String,
    offload: Option<LispOffload>,
}

impl Side {
    fn offload(&mut self) -> &mut LispOffload {
        self.offload.as_mut().expect("offload loaded")
    }

    fn apply(&mut self, op: TableOp) {
        self.offload()
            .apply(&op)
            .unwrap_or_else(|e| panic!("{op}: {e}"));
    }

    fn ifindex(&self, dev: &str) -> u32 {
        support::sysfs(&self.xtr, dev, "ifindex")
            .expect("ifindex")
            .parse()
            .expect("ifindex number")
    }

    /// Events drained until `want` matches one, or `timeout`.
    fn wait_event(&mut self, timeout: Duration, want: impl Fn(&HalEvent) -> bool) -> Vec<HalEvent> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.offload().drain_events(&mut seen);
            if seen.iter().any(&want) {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    }

    /// The non-zero counters, for failure messages.
    fn counters_text(&self) -> String {
        self.offload
            .as_ref()
            .map(|o| {
                o.counters()
                    .into_iter()
                    .filter(|c| c.value != 0)
                    .map(|c| format!("{} {}", c.name, c.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    fn counter(&self, name: &str) -> u64 {
        let offload = self.offload.as_ref().expect("offload loaded");
        offload
            .counters()
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

struct Lab {
    prefix: String,
    a: Side,
    b: Side,
    _veths: Vec<Veth>,
}

fn run_in(ns: &Netns, args: &[&str]) {
    ns.exec(args)
        .unwrap_or_else(|e| panic!("{} {}: {e}", ns.name(), args.join(" ")));
}

/// Builds both sides: hosts 10.{1,2}0.0.5/24 and fd{1,2}0::5/64, xTRs 192.0.2.{1,2} and
/// 2001:db8::{1,2} on the underlay, the blackhole routes of the remote EID prefixes, and the
/// offload loaded, attached and programmed in each xTR namespace.
fn lab() -> Lab {
    support::require_root("the LISP eBPF test loads BPF programs and creates namespaces");
    support::require_tool("ping", "iputils-ping");
    support::require_tool("bpftool", "bpftool");
    support::require_tool("python3", "python3");
    let prefix = support::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{prefix}{n}")).expect("netns");
    let (x1, x2, h1, h2) = (ns("x1"), ns("x2"), ns("h1"), ns("h2"));
    let ul1 = format!("{prefix}u1");
    let ul2 = format!("{prefix}u2");
    let (e1, e2) = (format!("{prefix}e1"), format!("{prefix}e2"));
    let mut veths = Vec::new();
    veths.push(Veth::between(&ul1, &x1, &ul2, &x2).expect("underlay veth"));
    let (hd1, hd2) = (format!("{prefix}h1"), format!("{prefix}h2"));
    veths.push(Veth::between(&e1, &x1, &hd1, &h1).expect("EID veth 1"));
    veths.push(Veth::between(&e2, &x2, &hd2, &h2).expect("EID veth 2"));

    let mut sides = Vec::new();
    for (me, peer, xtr, host, eid_dev, ul, hdev) in
        [(1, 2, x1, h1, e1, ul1, hd1), (2, 1, x2, h2, e2, ul2, hd2)]
    {
        for args in [
            vec!["sysctl", "-qw", "net.ipv4.ip_forward=1"],
            vec!["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
            vec!["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
            vec!["sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"],
        ] {
            run_in(&xtr, &args);
        }
        let addrs = [
            (eid_dev.as_str(), format!("10.{me}0.0.1/24")),
            (eid_dev.as_str(), format!("fd{me}0::1/64")),
            (ul.as_str(), format!("192.0.2.{me}/24")),
            (ul.as_str(), format!("2001:db8::{me}/64")),
        ];
        for (dev, cidr) in &addrs {
            xtr.ip(&["addr", "add", cidr, "dev", dev, "nodad"])
                .expect("xTR address");
            xtr.ip(&["link", "set", dev, "up"]).expect("link up");
        }
        // What the kernel backend installs for NextHop::Lisp routes: blackholes.
        for route in [
            format!("10.{peer}0.0.0/24"),
            "10.30.0.0/24".into(),
            "10.99.0.0/16".into(),
        ] {
            xtr.ip(&["route", "add", "blackhole", &route, "proto", "254"])
                .expect("blackhole route");
        }
        xtr.ip(&[
            "-6",
            "route",
            "add",
            "blackhole",
            &format!("fd{peer}0::/64"),
        ])
        .expect("blackhole route v6");
        host.ip(&["addr", "add", &format!("10.{me}0.0.5/24"), "dev", &hdev])
            .expect("host address");
        host.ip(&[
            "addr",
            "add",
            &format!("fd{me}0::5/64"),
            "dev",
            &hdev,
            "nodad",
        ])
        .expect("host v6 address");
        host.ip(&["link", "set", &hdev, "up"]).expect("host up");
        host.ip(&["route", "add", "default", "via", &format!("10.{me}0.0.1")])
            .expect("host default");
        host.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &format!("fd{me}0::1"),
        ])
        .expect("host v6 default");

        let mut side = Side {
            host,
            xtr,
            eid_dev: eid_dev.clone(),
            underlay_dev: ul.clone(),
            host_dev: hdev.clone(),
            offload: None,
        };
        let (eid_ifx, ul_ifx) = (side.ifindex(&eid_dev), side.ifindex(&ul));
        let mut offload = side
            .xtr
            .enter(move || -> Result<LispOffload, String> {
                let mut o = LispOffload::load().map_err(|e| e.to_string())?;
                o.attach_eid_facing(eid_ifx, EID_IFACE)
                    .map_err(|e| e.to_string())?;
                o.attach_underlay(ul_ifx).map_err(|e| e.to_string())?;
                Ok(o)
            })
            .expect("thread in the xTR namespace")
            .unwrap_or_else(|e| panic!("loading the LISP offload: {e}"));
        let own: Vec<(u32, IpAddr)> = [
            (eid_ifx, format!("10.{me}0.0.1")),
            (eid_ifx, format!("fd{me}0::1")),
            (ul_ifx, format!("192.0.2.{me}")),
            (ul_ifx, format!("2001:db8::{me}")),
        ]
        .into_iter()
        .map(|(i, a)| (i, a.parse().expect("address")))
        .collect();
        offload.set_addresses(&own).expect("set_addresses");
        offload
            .set_subnets(&[
                (eid_ifx, lisp_ops::prefix(&format!("10.{me}0.0.0/24"))),
                (eid_ifx, lisp_ops::prefix(&format!("fd{me}0::/64"))),
            ])
            .expect("set_subnets");
        let rloc = format!("192.0.2.{me}");
        let peer_rloc = format!("192.0.2.{peer}");
        for op in [
            database(&format!("10.{me}0.0.0/24"), &rloc),
            database(&format!("fd{me}0::/64"), &rloc),
            map_cache(&format!("10.{peer}0.0.0/24"), &peer_rloc),
            map_cache(&format!("fd{peer}0::/64"), &peer_rloc),
        ] {
            offload.apply(&op).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
        side.offload = Some(offload);
        sides.push(side);
    }
    let b = sides.pop().expect("side b");
    let a = sides.pop().expect("side a");
    Lab {
        prefix,
        a,
        b,
        _veths: veths,
    }
}

/// tshark on xTR A's underlay device, checksums verified: up to 8 packets of `filter`, each
/// with `fields`, then `_ws.malformed` and `_ws.expert.severity`.
fn underlay_capture(lab: &Lab, filter: &str, fields: &[&str]) -> Capture {
    let fields = [fields, &["_ws.malformed", "_ws.expert.severity"]].concat();
    Capture::start_with(
        &lab.a.xtr,
        &lab.a.underlay_dev,
        filter,
        8,
        &fields,
        &support::pcap::CHECK_CHECKSUMS,
        Duration::from_secs(30),
    )
    .expect("tshark on the underlay")
}

/// The two hosts ping each other, IPv4 and IPv6, every ping answered (`over`: the path, for
/// the failure messages): host 1 → host 2 until `capture` has 8 lines, then host 2 → host 1.
/// The captured lines.
fn ping_both_ways(lab: &Lab, capture: &Capture, over: &str) -> Vec<String> {
    let (h1, h2) = (&lab.a.host, &lab.b.host);
    let ping4 = |from: &Netns, to: [u8; 4]| {
        support::ping(from, Ipv4Addr::from(to), Duration::from_secs(5)).expect("ping")
    };
    let lines = capture.lines_while(8, Duration::from_secs(20), || {
        assert!(ping4(h1, [10, 20, 0, 5]), "IPv4 host 1 → host 2 {over}");
        assert!(ping6(h1, "fd20::5"), "IPv6 host 1 → host 2 {over}");
    });
    assert!(ping4(h2, [10, 10, 0, 5]), "IPv4 host 2 → host 1 {over}");
    assert!(ping6(h2, "fd10::5"), "IPv6 host 2 → host 1 {over}");
    lines
}

fn ping6(from: &Netns, to: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if from.exec(&["ping", "-6", "-c", "1", "-W", "1", to]).is_ok() {
            return true;
        }
    }
    false
}

/// `ping -c N` summary: the average round-trip time in ms.
fn rtt_ms(from: &Netns, to: &str) -> f64 {
    let out = from
        .exec(&["ping", "-c", "20", "-i", "0.01", "-q", to])
        .expect("ping for RTT");
    out.lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// TCP throughput from `from` to `to:port` in `server`, in Mbit/s: 256 MiB through python3
/// sockets (sendall/recv_into run in C: a debug-built test harness would measure itself).
fn throughput_mbps(from: &Netns, server: &Netns, to: &str, port: u16) -> f64 {
    let total = 256usize << 20;
    let serve = format!(
        "import socket\ns=socket.socket({family})\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{to}',{port}))\ns.listen(1)\ns.settimeout(20)\nc,_=s.accept()\n\
         c.settimeout(20)\nb=bytearray(1<<20)\nn=0\nwhile True:\n m=c.recv_into(b)\n \
         if m==0: break\n n+=m\nprint(n)\n",
        family = if to.contains(':') {
            "socket.AF_INET6"
        } else {
            "socket.AF_INET"
        }
    );
    let send = format!(
        "import socket,time\nd=time.time()+10\nwhile True:\n try:\n  c=socket.create_connection(\
         ('{to}',{port}),timeout=20)\n  break\n except OSError:\n  time.sleep(0.05)\n  \
         assert time.time()<d\nb=bytes(1<<20)\nt=time.time()\nfor _ in range({mib}):\n \
         c.sendall(b)\nc.shutdown(socket.SHUT_WR)\nc.recv(1)\nprint(time.time()-t)\n",
        mib = total >> 20
    );
    let server_proc = std::process::Command::new("ip")
        .args(["netns", "exec", server.name(), "python3", "-c", &serve])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 server");
    let secs: f64 = from
        .exec(&["python3", "-c", &send])
        .expect("python3 client")
        .trim()
        .parse()
        .expect("seconds");
    let out = server_proc
        .wait_with_output()
        .expect("python3 server output");
    let received: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bytes received");
    assert_eq!(received, total, "bytes received by the python3 server");
    total as f64 * 8.0 / secs / 1e6
}

#[test]
fn ebpf_xtrs_carry_ipv4_and_ipv6_eids_both_ways_and_a_tcp_stream_byte_for_byte() {
    let mut lab = lab();
    let (h1, h2) = (&lab.a.host, &lab.b.host);

    // LISP packets on the underlay, as tshark decodes them with checksums verified.
    let capture = underlay_capture(
        &lab,
        "udp port 4341",
        &[
            "ip.src",
            "ip.dst",
            "udp.srcport",
            "udp.dstport",
            "frame.protocols",
            "lisp-data.flags.nonce",
            "ip.checksum.status",
            "udp.checksum.status",
        ],
    );
    let lines = ping_both_ways(&lab, &capture, "over the eBPF xTRs");
    let text = lines.join("\n");
    assert!(lines.len() >= 4, "too few LISP packets captured:\n{text}");
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        assert_eq!(get(3), "4341", "{l}");
        let sport: u16 = get(2).parse().expect("source port");
        assert!(
            sport >= 49152,
            "flow-hashed source port in 49152-65535: {l}"
        );
        assert!(
            get(4).contains("udp:lisp-data:ip"),
            "LISP data decoded: {l}"
        );
        assert_eq!(get(5), "1", "N bit (nonce present): {l}");
        // Checksum status 1 = good (every IPv4 header: outer and inner); the outer UDP checksum
        // is 0 (not computed, RFC 9300 §5.3, as the software core sends it): 3 = not present.
        assert!(
            get(6).split(',').all(|s| s == "1"),
            "IP checksums good: {l}"
        );
        assert!(get(7).starts_with('3'), "outer UDP checksum zero: {l}");
        assert!(get(8).is_empty(), "malformed: {l}");
        assert!(get(9).is_empty(), "expert info: {l}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.0.2.1,10.10.0.5\t192.0.2.2,10.20.0.5\t")),
        "IPv4 in IPv4 from xTR 1 to xTR 2:\n{text}"
    );
    // The source port is the software core's flow_source_port of the inner packet (an ICMP
    // echo hashes its addresses and protocol only).
    let mut inner = [0u8; 20];
    inner[0] = 0x45;
    inner[9] = 1;
    inner[12..16].copy_from_slice(&[10, 10, 0, 5]);
    inner[16..20].copy_from_slice(&[10, 20, 0, 5]);
    let expected = flow_source_port(&inner, 0x9e37_79b9).to_string();
    let v4_ping: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("192.0.2.1,10.10.0.5\t192.0.2.2,10.20.0.5\t"))
        .collect();
    assert!(
        v4_ping
            .iter()
            .all(|l| l.split('\t').nth(2) == Some(expected.as_str())),
        "source port {expected} (the software core's flow hash) expected: {v4_ping:?}"
    );

    // Without DF and larger than the tunnel: the host's 1500-octet fragment is cut again to fit
    // (RFC 9300 §7.1, as the software core), the far host reassembles; the same way back.
    let big = support::ping_fragmented(h1, "10.20.0.5").expect("2000-octet pings without DF");
    assert!(big.contains(" 0% packet loss"), "{big}");
    assert!(lab.a.counter("fragmented") > 0 && lab.b.counter("fragmented") > 0);

    // A TCP stream, byte for byte, through the eBPF path; and through plain routing between
    // the same hosts for comparison (the LISP routes replaced by ordinary ones: informational).
    let total = 2 << 20;
    let stream_failed = |e: std::io::Error, lab: &Lab| -> ! {
        panic!(
            "TCP stream: {e}; xTR 1: {}; xTR 2: {}",
            lab.a.counters_text(),
            lab.b.counters_text()
        )
    };
    let (good, took) = support::tcp_stream(h1, h2, Ipv4Addr::new(10, 20, 0, 5), 5001, total)
        .unwrap_or_else(|e| stream_failed(e, &lab));
    assert_eq!(good, total, "TCP stream through the eBPF xTRs");
    // IPv6 EIDs over the IPv4 underlay: TCP GSO packets change family on encapsulation.
    let v6_mbps = throughput_mbps(h1, h2, "fd20::5", 5004);
    let lisp_rtt = rtt_ms(h1, "10.20.0.5");
    let lisp_mbps = throughput_mbps(h1, h2, "10.20.0.5", 5002);

    assert!(lab.a.counter("lisp-encapsulated") > 0);
    assert!(lab.b.counter("lisp-decapsulated") > 0);
    assert!(lab.a.counter("lisp-decapsulated") > 0);
    assert_eq!(lab.a.counter("drop map-cache-miss"), 0);

    // Plain routing for the same numbers.
    for (side, peer, me) in [(&lab.a, 2, 1), (&lab.b, 1, 2)] {
        side.xtr
            .ip(&[
                "route",
                "replace",
                &format!("10.{peer}0.0.0/24"),
                "via",
                &format!("192.0.2.{peer}"),
            ])
            .expect("plain route");
        let _ = me;
    }
    let plain_rtt = rtt_ms(h1, "10.20.0.5");
    let plain_mbps = throughput_mbps(h1, h2, "10.20.0.5", 5003);
    eprintln!(
        "figures: ping RTT LISP/eBPF {lisp_rtt:.3} ms, plain routing {plain_rtt:.3} ms; \
         TCP (python3, 256 MiB) LISP/eBPF {lisp_mbps:.0} Mbit/s (IPv6 EIDs {v6_mbps:.0}), plain \
         routing {plain_mbps:.0} Mbit/s; 2 MiB byte-for-byte stream in {took:?}"
    );

    // Detach and drop: nothing of ours stays attached or loaded.
    let ids = lab.a.offload().program_ids();
    assert_eq!(ids.len(), 2, "two programs loaded");
    assert!(
        ids.iter().all(|id| linked(&id.to_string())),
        "ITR and ETR attached (TCX links): {ids:?}"
    );
    for side in [&mut lab.a, &mut lab.b] {
        side.offload().detach_all().expect("detach_all");
        side.offload = None;
        for dev in [&side.eid_dev, &side.underlay_dev] {
            let tc = side
                .xtr
                .exec(&["tc", "filter", "show", "dev", dev, "ingress"])
                .unwrap_or_default();
            assert!(!tc.contains("lisp_"), "tc filter on {dev} after stop: {tc}");
        }
    }
    for id in &ids {
        assert!(
            !linked(&id.to_string()),
            "program {id} still linked after detach_all"
        );
    }
    // Programs are freed once their last reference goes (RCU): wait for it.
    for id in ids {
        let gone = support::wait_until(Duration::from_secs(5), || {
            support::run("bpftool", &["prog", "show", "id", &id.to_string()]).is_err()
        });
        assert!(gone, "program {id} still loaded after drop");
    }
    drop(lab.prefix);
}

#[test]
fn ebpf_xtrs_report_misses_eids_not_here_no_route_and_dynamic_eids() {
    let mut lab = lab();
    // A destination behind a LISP (blackhole) route without a map-cache entry.
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 99, 0, 5),
        Duration::from_millis(600),
    );
    let seen = lab.a.wait_event(Duration::from_secs(5), |e| {
        matches!(e, HalEvent::MapCacheMiss { dest, source, .. }
            if *dest == IpAddr::from([10, 99, 0, 5]) && *source == IpAddr::from([10, 10, 0, 5]))
    });
    assert!(
        seen.iter()
            .any(|e| matches!(e, HalEvent::MapCacheMiss { .. })),
        "MapCacheMiss for 10.99.0.5: {seen:?}"
    );
    assert!(lab.a.counter("drop map-cache-miss") > 0);
    // Rate-limited: a second burst within the interval adds no event.
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 99, 0, 5),
        Duration::from_millis(300),
    );
    let mut again = Vec::new();
    lab.a.offload().drain_events(&mut again);
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, HalEvent::MapCacheMiss { .. })),
        "a second miss event within the interval: {again:?}"
    );

    // Negative map-cache entries: send-map-request reports a miss (with the entry's IID) and
    // drops; drop drops; both counted as the software core counts them.
    let negative = |eid: &str, iid: u32, action| {
        TableOp::add(TableEntry::LispMapCache {
            iid: Iid::new(iid).expect("iid"),
            eid: prefix(eid),
            locators: Vec::new(),
            negative: action,
        })
    };
    lab.a
        .apply(negative("10.99.1.0/24", 7, NegativeAction::SendMapRequest));
    lab.a
        .apply(negative("10.99.2.0/24", 0, NegativeAction::Drop));
    let before = lab.a.counter("drop negative-map-cache");
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 99, 1, 5),
        Duration::from_millis(300),
    );
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 99, 2, 5),
        Duration::from_millis(300),
    );
    let seen = lab.a.wait_event(Duration::from_secs(5), |e| {
        matches!(e, HalEvent::MapCacheMiss { iid, dest, .. }
            if iid.get() == 7 && *dest == IpAddr::from([10, 99, 1, 5]))
    });
    assert!(
        seen.iter()
            .any(|e| matches!(e, HalEvent::MapCacheMiss { iid, .. } if iid.get() == 7)),
        "MapCacheMiss with IID 7 for a send-map-request entry: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, HalEvent::MapCacheMiss { dest, .. }
            if *dest == IpAddr::from([10, 99, 2, 5]))),
        "a drop entry reports nothing: {seen:?}"
    );
    assert!(lab.a.counter("drop negative-map-cache") >= before + 2);

    // An EID xTR 2 does not have (no database prefix, no route): the SMR trigger.
    lab.a.apply(map_cache("10.30.0.0/24", "192.0.2.2"));
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 30, 0, 5),
        Duration::from_millis(600),
    );
    let seen = lab.b.wait_event(Duration::from_secs(5), |e| {
        matches!(e, HalEvent::EidNotHere { eid, source_rloc, inner_source, .. }
            if *eid == IpAddr::from([10, 30, 0, 5])
                && *source_rloc == IpAddr::from([192, 0, 2, 1])
                && *inner_source == IpAddr::from([10, 10, 0, 5]))
    });
    assert!(
        seen.iter()
            .any(|e| matches!(e, HalEvent::EidNotHere { .. })),
        "EidNotHere for 10.30.0.5 at xTR 2: {seen:?}"
    );
    assert!(lab.b.counter("drop eid-not-here") > 0);

    // A local EID prefix without a route: generalized SMR (NoRoute).
    lab.b.apply(database("10.30.0.0/24", "192.0.2.2"));
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 30, 0, 6),
        Duration::from_millis(600),
    );
    let seen = lab.b.wait_event(
        Duration::from_secs(5),
        |e| matches!(e, HalEvent::NoRoute { eid, .. } if *eid == IpAddr::from([10, 30, 0, 6])),
    );
    assert!(
        seen.iter().any(|e| matches!(e, HalEvent::NoRoute { .. })),
        "NoRoute for 10.30.0.6 at xTR 2: {seen:?}"
    );

    // A source inside a dynamic-EID range of the EID-facing interface, outside its subnet.
    lab.a.apply(TableOp::add(TableEntry::DynamicEidRange {
        iface: EID_IFACE,
        map: "roamers".into(),
        eid: prefix("10.50.0.0/24"),
        extended_subnet: false,
        notify_group: None,
    }));
    lab.a
        .host
        .ip(&["addr", "add", "10.50.0.7/32", "dev", &lab.a.host_dev])
        .expect("roaming host address");
    let _ = lab.a.host.exec(&[
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "1",
        "-I",
        "10.50.0.7",
        "10.20.0.5",
    ]);
    let seen = lab.a.wait_event(Duration::from_secs(5), |e| {
        matches!(e, HalEvent::DynamicEidSeen { iface, eid, map }
            if *iface == EID_IFACE && *eid == IpAddr::from([10, 50, 0, 7]) && map == "roamers")
    });
    assert!(
        seen.iter()
            .any(|e| matches!(e, HalEvent::DynamicEidSeen { .. })),
        "DynamicEidSeen for 10.50.0.7: {seen:?}"
    );
    // A host of the interface's own subnet is at home: no event.
    lab.a.apply(TableOp::add(TableEntry::DynamicEidRange {
        iface: EID_IFACE,
        map: "home".into(),
        eid: prefix("10.10.0.0/24"),
        extended_subnet: false,
        notify_group: None,
    }));
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 20, 0, 5),
        Duration::from_secs(2),
    );
    let mut home = Vec::new();
    std::thread::sleep(Duration::from_millis(200));
    lab.a.offload().drain_events(&mut home);
    assert!(
        !home
            .iter()
            .any(|e| matches!(e, HalEvent::DynamicEidSeen { eid, .. }
            if *eid == IpAddr::from([10, 10, 0, 5]))),
        "a host at home reported as a dynamic EID: {home:?}"
    );

    // A TTL that ends at a LISP route: time exceeded from the xTR (the kernel alone would drop
    // it at the blackhole route without a word).
    for (family, dst, says) in [
        ("-4", "10.20.0.5", "Time to live exceeded"),
        ("-6", "fd20::5", "Time exceeded"),
    ] {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", lab.a.host.name(), "ping", family])
            .args(["-c", "1", "-W", "2", "-t", "1", dst])
            .output()
            .expect("ping -t 1");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(says), "{family} TTL 1 towards {dst}: {text}");
    }
    assert!(lab.a.counter("drop ttl-expired") >= 2);

    // Too big for the underlay once encapsulated, DF set / IPv6: ICMP fragmentation-needed and
    // ICMPv6 packet-too-big with S = L - H = 1500 - 36 (H of the IPv4 outer header, whatever the
    // inner family), which the host's path-MTU cache takes.
    let capture = Capture::start_with(
        &lab.a.xtr,
        &lab.a.eid_dev,
        "icmp[0] == 3 or (ip6 and ip6[40] == 2)",
        2,
        &[
            "frame.protocols",
            "icmp.checksum.status",
            "icmpv6.checksum.status",
            "icmp.mtu",
            "icmpv6.mtu",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        &["-o", "ip.check_checksum:TRUE"],
        Duration::from_secs(20),
    )
    .expect("tshark on the EID-facing interface");
    let before = lab.a.counter("drop too-big-to-encapsulate");
    // Until the capture has one of each (tshark reports it captures a little before it does):
    // the host's path-MTU cache is flushed so that it sends full-size packets again.
    let mut replies: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while replies.len() < 2 && Instant::now() < deadline {
        for (family, size, dst) in [("-4", "1472", "10.20.0.5"), ("-6", "1452", "fd20::5")] {
            let _ = lab.a.host.ip(&[family, "route", "flush", "cache"]);
            let _ = lab.a.host.exec(&[
                "ping", family, "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", size, dst,
            ]);
        }
        while let Some(l) = capture.next_line(Duration::from_millis(500)) {
            replies.push(l);
        }
    }
    let mtu4 = lab
        .a
        .host
        .ip(&["-4", "route", "get", "10.20.0.5"])
        .expect("route get");
    assert!(mtu4.contains("mtu 1464"), "no path MTU 1464 learnt: {mtu4}");
    let mtu6 = lab
        .a
        .host
        .ip(&["-6", "route", "get", "fd20::5"])
        .expect("route get");
    assert!(mtu6.contains("mtu 1464"), "no path MTU 1464 learnt: {mtu6}");
    assert!(lab.a.counter("drop too-big-to-encapsulate") > before);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies.iter().any(|l| l.contains(":icmpv6:"))
            && replies.iter().any(|l| l.contains(":icmp:")),
        "one ICMP and one ICMPv6 error: {replies:?}"
    );
    for l in &replies {
        let f: Vec<&str> = l.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        let (status, mtu) = if get(0).contains("icmpv6") {
            (get(2), get(4))
        } else {
            (get(1), get(3))
        };
        // The first value is the error's own checksum (the quoted packet's is unverifiable).
        assert_eq!(
            status.split(',').next(),
            Some("1"),
            "ICMP checksum good: {l}"
        );
        assert_eq!(mtu, "1464", "MTU S = L - H: {l}");
        assert!(
            get(5).is_empty() && get(6).is_empty(),
            "malformed or expert: {l}"
        );
    }

    // A map-cache entry with an instance-ID: I bit and the IID in the header, still delivered.
    let old = map_cache("10.20.0.0/24", "192.0.2.2");
    lab.a.apply(TableOp::remove(old.entry.clone()));
    let TableEntry::LispMapCache {
        eid,
        locators,
        negative,
        ..
    } = old.entry
    else {
        unreachable!("a map-cache entry")
    };
    lab.a.apply(TableOp::add(TableEntry::LispMapCache {
        iid: Iid::new(5).expect("iid"),
        eid,
        locators,
        negative,
    }));
    let capture = Capture::start(
        &lab.a.xtr,
        &lab.a.underlay_dev,
        "udp dst port 4341 and src host 192.0.2.1",
        1,
        &[
            "lisp-data.flags.iid",
            "lisp-data.iid",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
        Duration::from_secs(20),
    )
    .expect("tshark on the underlay");
    let mut line = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while line.is_none() && Instant::now() < deadline {
        assert!(
            support::ping(
                &lab.a.host,
                Ipv4Addr::new(10, 20, 0, 5),
                Duration::from_secs(3)
            )
            .expect("ping"),
            "ping with IID 5"
        );
        line = capture.next_line(Duration::from_millis(500));
    }
    assert_eq!(line.as_deref(), Some("1\t5\t\t"), "I bit and IID 5");

    // TCP 4342 to our RLOC is counted and left to the kernel, whose local delivery hands it to
    // the daemon's raw socket (here, with no daemon and no listener, the kernel refuses it: the
    // program did not drop it).
    let before = lab.a.counter("punt lisp-control");
    let refused = lab.b.xtr.enter(|| {
        std::net::TcpStream::connect_timeout(
            &"192.0.2.1:4342".parse().expect("address"),
            Duration::from_secs(3),
        )
        .map_err(|e| e.kind())
    });
    assert!(
        matches!(refused, Ok(Err(std::io::ErrorKind::ConnectionRefused))),
        "TCP 4342 to the RLOC must reach the kernel: {refused:?}"
    );
    assert!(lab.a.counter("punt lisp-control") > before);

    // A host that moved away from xTR 2, whose new locator (here xTR 1's RLOC, not xTR 2's) is
    // in xTR 2's map-cache: xTR 2 reports the SMR trigger and sends the packet on there.
    for op in [
        TableOp::add(TableEntry::AwayEntry {
            iid: Iid::default(),
            eid: prefix("10.20.0.5/32"),
        }),
        map_cache("10.20.0.5/32", "192.0.2.1"),
    ] {
        lab.b.apply(op);
    }
    let _ = support::ping(
        &lab.a.host,
        Ipv4Addr::new(10, 20, 0, 5),
        Duration::from_millis(600),
    );
    assert!(
        lab.b.counter("lisp-relayed-away") > 0,
        "{}",
        lab.b.counters_text()
    );
    // xTR 1 does not have the host either (its route there is a LISP one): its own SMR trigger,
    // towards xTR 2.
    let seen = lab.a.wait_event(Duration::from_secs(5), |e| {
        matches!(e, HalEvent::EidNotHere { eid, source_rloc, .. }
            if *eid == IpAddr::from([10, 20, 0, 5]) && *source_rloc == IpAddr::from([192, 0, 2, 2]))
    });
    assert!(
        seen.iter()
            .any(|e| matches!(e, HalEvent::EidNotHere { source_rloc, .. }
            if *source_rloc == IpAddr::from([192, 0, 2, 2]))),
        "the relayed packet did not reach xTR 1: {seen:?}; xTR 1: {}; xTR 2: {}",
        lab.a.counters_text(),
        lab.b.counters_text()
    );
}

#[test]
fn ebpf_xtrs_carry_eids_over_an_ipv6_underlay_with_udp_checksums() {
    let mut lab = lab();
    // The remote EIDs now map to the peer's IPv6 RLOC.
    for (side, peer) in [(&mut lab.a, 2), (&mut lab.b, 1)] {
        for eid in [format!("10.{peer}0.0.0/24"), format!("fd{peer}0::/64")] {
            let v4 = map_cache(&eid, &format!("192.0.2.{peer}"));
            side.apply(TableOp::remove(v4.entry));
            side.apply(map_cache(&eid, &format!("2001:db8::{peer}")));
        }
    }
    let capture = underlay_capture(
        &lab,
        "ip6 and udp port 4341",
        &[
            "ipv6.src",
            "ipv6.dst",
            "frame.protocols",
            "udp.checksum.status",
            "lisp-data.flags.nonce",
        ],
    );
    let lines = ping_both_ways(&lab, &capture, "over the IPv6 underlay");
    let text = lines.join("\n");
    assert!(lines.len() >= 4, "too few LISP packets captured:\n{text}");
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        assert!(get(0).starts_with("2001:db8::"), "IPv6 outer: {l}");
        assert!(
            get(2).contains("ipv6:udp:lisp-data:ip"),
            "LISP data decoded: {l}"
        );
        // 1 = good: the outer UDP checksum is computed, as the software core does.
        assert_eq!(
            get(3).split(',').next(),
            Some("1"),
            "UDP checksum good: {l}"
        );
        assert_eq!(get(4), "1", "N bit: {l}");
        assert!(
            get(5).is_empty() && get(6).is_empty(),
            "malformed or expert: {l}"
        );
    }
    assert!(
        text.contains("udp:lisp-data:ip:icmp") && text.contains("udp:lisp-data:ipv6:icmpv6"),
        "IPv4 and IPv6 EIDs in IPv6:\n{text}"
    );
    let total = 2 << 20;
    let (good, _) = support::tcp_stream(
        &lab.a.host,
        &lab.b.host,
        Ipv4Addr::new(10, 20, 0, 5),
        5001,
        total,
    )
    .expect("TCP");
    assert_eq!(good, total, "TCP stream over the IPv6 underlay");
}
