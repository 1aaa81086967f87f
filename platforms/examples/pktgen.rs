//! Packet generator and counter for `scripts/bench-forwarding.sh`: small IPv4/UDP frames blasted
//! through an AF_PACKET port in batches (`sendmmsg`), and counted on the far side.
//!
//! ```text
//! pktgen send  --dev D --dst-mac M [--src-ip A] [--dst-ip B] [--size 64] [--seconds S]
//!              [--port P] [--count N]
//! pktgen count --dev D [--seconds S] [--port P] [--wait S] [--warmup S] [--hold S]
//!              [--cpu-pids P1,P2]
//! (both: [--io af-packet|af-xdp])
//! ```
//!
//! `--io af-xdp` moves the frames through an AF_XDP port instead of AF_PACKET (an XDP program
//! attached to `D` for as long as pktgen runs): the receive side then has no skb per frame, and
//! the sender's per-frame cost is the kernel's copy-mode transmit alone.
//!
//! `send` opens `D` in the calling process's network namespace (run it with
//! `ip netns exec NS`), fills one batch of identical frames once and sends that batch again and
//! again for `S` seconds (or `N` frames): the only per-frame work is the kernel's. `--size` is
//! the frame size on the wire including the 4-byte FCS (64 = a 60-byte frame handed to the
//! kernel), at least 64. It prints one `sent …` line with the rate the kernel accepted.
//!
//! `count` waits (at most `--wait` seconds) for the first frame `send` made (IPv4, UDP
//! destination port `P`, a marker in the payload), lets `--warmup` seconds pass, then counts
//! the generator's frames for `S` seconds and prints one `received …` line with the rate, and
//! the interface's own receive counter over the same window (which also counts anything else
//! that arrived). It sleeps briefly when nothing is queued, so an idle counter costs nothing.
//! While it runs, a UDP socket bound to `P` that is never read makes the host drop the
//! datagrams right after the socket lookup (see [`udp_sink`]); `--hold` keeps that socket for
//! as many seconds after the result is printed, while the sender finishes. With `--cpu-pids`, it also
//! reports how much CPU time those processes (all their threads; e.g. the switch under test)
//! used over the window, as a fraction of one CPU (`switch_cpu`), from
//! `/proc/PID/task/*/schedstat`; the kernel's work done on their behalf in softirq context may
//! or may not be included, depending on the kernel's IRQ time accounting.
//!
//! Both print machine-readable `key=value` pairs, e.g. `received frames=… pps=…`.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use roamer_platforms::software::{
    AfPacketConfig, AfPacketPort, FRAME_ROOM, FrameSlot, PortIo, XdpAttach, XdpPort,
};

/// The marker in the first payload bytes of every generated frame.
const MAGIC: [u8; 4] = *b"RBNC";
/// Frames per `sendmmsg`/`recvmmsg` (the ports' batch size).
const BATCH: usize = roamer_platforms::software::BATCH;
/// Ethernet + IPv4 + UDP headers.
const HEADERS: usize = 14 + 20 + 8;
/// Offset of the UDP destination port and of the payload in a generated frame.
const UDP_DPORT_AT: usize = 14 + 20 + 2;
const PAYLOAD_AT: usize = HEADERS;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("send") => Opts::parse(&args[1..]).and_then(|o| send(&o)),
        Some("count") => Opts::parse(&args[1..]).and_then(|o| count(&o)),
        _ => Err("usage: pktgen send|count --dev DEV [options] (see the source)".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pktgen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
struct Opts {
    dev: String,
    dst_mac: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    size: usize,
    seconds: f64,
    count: u64,
    port: u16,
    wait: f64,
    warmup: f64,
    hold: f64,
    cpu_pids: Vec<u32>,
    /// `--io af-packet` (default) or `af-xdp`.
    xdp: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            dev: String::new(),
            dst_mac: [0xff; 6],
            src_ip: [10, 0, 0, 1],
            dst_ip: [10, 0, 0, 2],
            size: 64,
            seconds: 3.0,
            count: u64::MAX,
            port: 9,
            wait: 10.0,
            warmup: 0.5,
            hold: 0.0,
            cpu_pids: Vec::new(),
            xdp: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str();
            let bad = |what: &str| format!("{flag} {value}: not {what}");
            match flag.as_str() {
                "--dev" => o.dev = value.to_string(),
                "--dst-mac" => o.dst_mac = parse_mac(value).ok_or_else(|| bad("a MAC address"))?,
                "--src-ip" => o.src_ip = parse_ip(value).ok_or_else(|| bad("an IPv4 address"))?,
                "--dst-ip" => o.dst_ip = parse_ip(value).ok_or_else(|| bad("an IPv4 address"))?,
                "--size" => o.size = value.parse().map_err(|_| bad("a size"))?,
                "--seconds" => o.seconds = value.parse().map_err(|_| bad("seconds"))?,
                "--count" => o.count = value.parse().map_err(|_| bad("a count"))?,
                "--port" => o.port = value.parse().map_err(|_| bad("a UDP port"))?,
                "--wait" => o.wait = value.parse().map_err(|_| bad("seconds"))?,
                "--warmup" => o.warmup = value.parse().map_err(|_| bad("seconds"))?,
                "--hold" => o.hold = value.parse().map_err(|_| bad("seconds"))?,
                "--io" => {
                    o.xdp = match value {
                        "af-packet" => false,
                        "af-xdp" => true,
                        _ => return Err(bad("af-packet or af-xdp")),
                    }
                }
                "--cpu-pids" => {
                    o.cpu_pids = value
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().map_err(|_| bad("process ids")))
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if o.dev.is_empty() {
            return Err("--dev is required".into());
        }
        if !(64..=1518).contains(&o.size) {
            return Err(format!("--size {}: 64 to 1518 bytes", o.size));
        }
        Ok(o)
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn parse_ip(text: &str) -> Option<[u8; 4]> {
    text.trim()
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|a| a.octets())
}

/// One IPv4/UDP frame of `size - 4` bytes (the FCS is the wire's), UDP checksum 0 (none).
fn frame(o: &Opts, src_mac: [u8; 6]) -> Vec<u8> {
    let len = o.size - 4;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&o.dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&o.src_ip);
    ip[16..20].copy_from_slice(&o.dst_ip);
    let sum = !fold(
        ip.chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum(),
    );
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&9999u16.to_be_bytes());
    udp[2..4].copy_from_slice(&o.port.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f[PAYLOAD_AT..PAYLOAD_AT + 4].copy_from_slice(&MAGIC);
    f
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The port on `dev`: AF_XDP (an XDP program on `dev` takes every frame it receives) or
/// AF_PACKET without vnet-hdr.
fn open(dev: &str, xdp: bool) -> Result<Box<dyn PortIo>, String> {
    if xdp {
        // Native XDP where the driver has it: the generator's frames are small.
        let port = XdpPort::open_preferring(dev, Some(XdpAttach::Driver))
            .map_err(|e| format!("{dev}: {e}"))?;
        return Ok(Box::new(port));
    }
    let config = AfPacketConfig {
        promiscuous: false,
        vnet_hdr: false,
        ..AfPacketConfig::default()
    };
    let port = AfPacketPort::open_with(dev, &config).map_err(|e| format!("{dev}: {e}"))?;
    Ok(Box::new(port))
}

fn send(o: &Opts) -> Result<(), String> {
    let mut port = open(&o.dev, o.xdp)?;
    let template = frame(o, port.mac());
    let mut slots = FrameSlot::batch(BATCH, FRAME_ROOM);
    for s in &mut slots {
        s.set_frame(&template)
            .map_err(|e| format!("frame does not fit a slot: {e:?}"))?;
    }
    let limit = Duration::from_secs_f64(o.seconds);
    let started = Instant::now();
    let (mut sent, mut full) = (0u64, 0u64);
    while sent < o.count {
        let want = usize::try_from(o.count - sent).map_or(BATCH, |left| left.min(BATCH));
        match port.send_batch(&mut slots[..want]) {
            Ok(0) => {
                // The socket's send buffer is full: give the kernel a moment.
                full += 1;
                std::thread::yield_now();
            }
            Ok(n) => sent += n as u64,
            Err(e) => return Err(format!("send on {}: {e}", o.dev)),
        }
        if started.elapsed() >= limit {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = port.stats();
    println!(
        "sent frames={sent} seconds={secs:.3} pps={:.0} size={} tx_dropped={} full={full} io={}",
        sent as f64 / secs,
        o.size,
        stats.tx_dropped,
        if o.xdp { "af-xdp" } else { "af-packet" }
    );
    Ok(())
}

/// Whether `f` is one of the generator's frames for UDP port `port`.
fn generated(f: &[u8], port: u16) -> bool {
    f.len() >= PAYLOAD_AT + 4
        && f[12..14] == 0x0800u16.to_be_bytes()
        && f[14] == 0x45
        && f[23] == 17
        && f[UDP_DPORT_AT..UDP_DPORT_AT + 2] == port.to_be_bytes()
        && f[PAYLOAD_AT..PAYLOAD_AT + 4] == MAGIC
}

fn rx_packets(dev: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/statistics/rx_packets"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A UDP socket on the generator's port that is never read, with the smallest receive buffer:
/// the host stack drops the generated datagrams as soon as it has looked the socket up, instead
/// of answering each with an ICMP port-unreachable (which would cost the forwarding path under
/// test, whose CPU delivers them, more than the switching itself).
fn udp_sink(port: u16) -> Result<socket2::Socket, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sink = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| format!("UDP socket: {e}"))?;
    sink.set_recv_buffer_size(1)
        .map_err(|e| format!("UDP socket: SO_RCVBUF: {e}"))?;
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], port));
    sink.bind(&addr.into())
        .map_err(|e| format!("UDP socket: bind to port {port}: {e}"))?;
    Ok(sink)
}

/// CPU time (ns) the threads of `pids` have run so far (`/proc/PID/task/TID/schedstat`, first
/// field). Processes or threads that are gone count 0.
fn cpu_ns(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            total += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

fn count(o: &Opts) -> Result<(), String> {
    let _sink = udp_sink(o.port)?;
    let mut port = open(&o.dev, o.xdp)?;
    let mut slots = FrameSlot::batch(BATCH, FRAME_ROOM);
    let idle = Duration::from_micros(50);
    let mut recv = |port: &mut Box<dyn PortIo>| -> Result<(usize, bool), String> {
        let n = port
            .recv_batch(&mut slots)
            .map_err(|e| format!("receive on {}: {e}", o.dev))?;
        let mine = slots[..n]
            .iter()
            .filter(|s| generated(s.frame(), o.port))
            .count();
        if n == 0 {
            std::thread::sleep(idle);
        }
        Ok((mine, n == BATCH))
    };

    // The first generated frame, then the warm-up, then the measured window.
    let deadline = Instant::now() + Duration::from_secs_f64(o.wait);
    loop {
        if recv(&mut port)?.0 > 0 {
            break;
        }
        if Instant::now() > deadline {
            println!("received frames=0 seconds=0 pps=0 (nothing arrived within --wait)");
            return Ok(());
        }
    }
    let warm_until = Instant::now() + Duration::from_secs_f64(o.warmup);
    while Instant::now() < warm_until {
        recv(&mut port)?;
    }
    let window = Duration::from_secs_f64(o.seconds);
    let kernel_before = rx_packets(&o.dev);
    let cpu_before = cpu_ns(&o.cpu_pids);
    let started = Instant::now();
    let mut frames = 0u64;
    let mut full_batches = 0u64;
    let mut batches = 0u64;
    while started.elapsed() < window {
        let (mine, full) = recv(&mut port)?;
        frames += mine as u64;
        batches += 1;
        full_batches += u64::from(full);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = cpu_ns(&o.cpu_pids);
    let switch_cpu = if o.cpu_pids.is_empty() {
        String::new()
    } else {
        let used = cpu_after.saturating_sub(cpu_before) as f64 / 1e9;
        format!(" switch_cpu={:.3}", used / secs)
    };
    let kernel = match (kernel_before, rx_packets(&o.dev)) {
        (Some(a), Some(b)) => format!("{:.0}", b.saturating_sub(a) as f64 / secs),
        _ => "?".into(),
    };
    println!(
        "received frames={frames} seconds={secs:.3} pps={:.0} kernel_rx_pps={kernel} batches={batches} full_batches={full_batches} rx_kernel_dropped={}{switch_cpu} io={}",
        frames as f64 / secs,
        port.stats().rx_kernel_dropped,
        if o.xdp { "af-xdp" } else { "af-packet" }
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::thread::sleep(Duration::from_secs_f64(o.hold));
    Ok(())
}
