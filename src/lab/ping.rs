//! `roamer lab ping` (hidden): ICMP echoes of roamer's own, so that the lab and its demo need no
//! `ping` (iputils-ping) on the machine. It runs in a node's namespace under `ip netns exec`
//! and prints what `ping -n -D` prints for what the lab reads: one line per reply
//! (`[EPOCH] 64 bytes from ADDR: icmp_seq=N ttl=T time=X ms`) and the closing
//! `N packets transmitted, M received` line. A raw ICMP socket (root, as the lab is), IPv4.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::lab_err;
use crate::error::RoamerError;

/// Echo data after the ICMP header: 56 octets, as ping's default (64 octets of ICMP).
const PAYLOAD: usize = 56;

#[derive(Debug, Args)]
pub struct PingArgs {
    /// The IPv4 address to ping.
    pub to: Ipv4Addr,
    /// Stop after this many echo requests (and their replies, or `--wait`).
    #[arg(short = 'c', long)]
    pub count: Option<u32>,
    /// Seconds between echo requests.
    #[arg(short = 'i', long, default_value_t = 1.0)]
    pub interval: f64,
    /// Seconds to wait for the last reply.
    #[arg(short = 'W', long, default_value_t = 1.0)]
    pub wait: f64,
    /// Stop after this many seconds whatever happened.
    #[arg(short = 'w', long)]
    pub deadline: Option<f64>,
    /// Stop (and print the summary) when standard input is closed: how the lab stops it.
    #[arg(long)]
    pub until_stdin_closes: bool,
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(1))
}

/// Runs the pinger; Ok(true) when at least one reply came back (ping's exit status 0).
pub fn run(args: &PingArgs) -> Result<bool, RoamerError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| lab_err(format!("ping {}: {what}: {e}", args.to))
    };
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(io("raw ICMP socket (needs root)"))?;
    let dest = SockAddr::from(SocketAddrV4::new(args.to, 0));
    let stop = Arc::new(AtomicBool::new(false));
    if args.until_stdin_closes {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            stop.store(true, Ordering::SeqCst);
        });
    }
    let ident = (std::process::id() & 0xffff) as u16;
    let interval = secs(args.interval);
    let start = Instant::now();
    let deadline = args.deadline.map(|d| start + secs(d));
    let mut sent: u32 = 0;
    let mut received: u32 = 0;
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut next_send = start;
    let mut last_wait_until: Option<Instant> = None;
    let mut out = std::io::stdout();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        let all_sent = args.count.is_some_and(|c| sent >= c);
        if all_sent {
            let answered_all = args.count.is_some_and(|c| received >= c);
            if answered_all || last_wait_until.is_some_and(|w| now >= w) {
                break;
            }
        } else if now >= next_send {
            sent += 1;
            let seq = sent as u16;
            let packet = echo_request(ident, seq);
            sent_at.push(now);
            // A send that fails (no route yet) counts as sent and unanswered, as with ping.
            let _ = socket.send_to(&packet, &dest);
            next_send += interval;
            if args.count.is_some_and(|c| sent >= c) {
                last_wait_until = Some(now + secs(args.wait));
            }
        }
        let mut until = if all_sent {
            last_wait_until.unwrap_or(now)
        } else {
            next_send
        };
        if let Some(d) = deadline {
            until = until.min(d);
        }
        // Short waits, so that a closed stdin is noticed soon.
        let timeout = until
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket
            .set_read_timeout(Some(timeout))
            .map_err(io("SO_RCVTIMEO"))?;
        let n = match (&socket).read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(io("receive")(e)),
        };
        let packet = &buf[..n];
        if let Some((from, seq, ttl)) = parse_echo_reply(packet, ident)
            && from == args.to
        {
            let Some(at) = sent_at.get(usize::from(seq).wrapping_sub(1)) else {
                continue;
            };
            received += 1;
            let rtt = at.elapsed().as_secs_f64() * 1000.0;
            let epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "[{epoch:.6}] {} bytes from {from}: icmp_seq={seq} ttl={ttl} time={rtt:.2} ms",
                PAYLOAD + 8
            );
            let _ = out.flush();
        }
    }
    let _ = writeln!(
        out,
        "\n--- {} ping statistics ---\n{sent} packets transmitted, {received} received",
        args.to
    );
    let _ = out.flush();
    Ok(received > 0)
}

/// An ICMP echo request: type 8, identifier, sequence number, 56 octets of data.
pub fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = 8;
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    roamer_forwarding::wire::checksum::finish(roamer_forwarding::wire::checksum::add(0, data))
}

/// An IPv4 packet holding an echo reply with our identifier: (source, sequence, TTL).
pub fn parse_echo_reply(ip: &[u8], ident: u16) -> Option<(Ipv4Addr, u16, u8)> {
    if ip.first()? >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let ttl = *ip.get(8)?;
    let src = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
    let icmp = ip.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != 0 || icmp[1] != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != ident {
        return None;
    }
    Some((src, u16::from_be_bytes([icmp[6], icmp[7]]), ttl))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn echo_request_has_a_valid_checksum_and_a_reply_is_recognised() {
        let req = echo_request(0x1234, 7);
        assert_eq!(req.len(), 64);
        assert_eq!(checksum(&req), 0, "a packet with its checksum sums to zero");
        // The reply: IPv4 header (20 octets, TTL 63, from 10.1.1.5) and the echo as type 0.
        let mut ip = vec![
            0x45, 0, 0, 84, 0, 0, 0, 0, 63, 1, 0, 0, 10, 1, 1, 5, 10, 3, 3, 10,
        ];
        let mut reply = req.clone();
        reply[0] = 0;
        ip.extend_from_slice(&reply);
        assert_eq!(
            parse_echo_reply(&ip, 0x1234),
            Some((Ipv4Addr::new(10, 1, 1, 5), 7, 63))
        );
        assert_eq!(parse_echo_reply(&ip, 0x4321), None, "another pinger's");
        ip[20] = 8;
        assert_eq!(parse_echo_reply(&ip, 0x1234), None, "a request is no reply");
        assert_eq!(parse_echo_reply(&ip[..24], 0x1234), None);
    }
}
