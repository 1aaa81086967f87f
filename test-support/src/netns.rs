//! Real hosts in network namespaces (needs root).
//!
//! Everything a test creates carries a name from [`unique_prefix`] (`rmr` + process + counter,
//! so concurrent tests and test binaries never collide) and is deleted by name when its guard
//! drops, also when the test panics: [`Netns`] deletes the namespace (and with it every
//! interface inside), [`Veth`] the pair, [`crate::Capture`] ends the capture process it
//! started, by its id. Traffic stays inside the namespaces a test made.
//!
//! [`Netns::enter`] runs a closure on a thread that has joined the namespace, so a test can
//! open sockets (and ports) "inside the host" without a helper program; a socket keeps its
//! namespace when the thread ends.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name prefix unique to this process and call: `rmr`, five digits of the process id, two of
/// a counter (10 characters), which leaves 5 for a suffix within the 15 of an interface name.
pub fn unique_prefix() -> String {
    let pid = std::process::id() % 100_000;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 100;
    format!("rmr{pid:05}{n:02}")
}

/// Runs `program args…`; its standard output, or an error with its standard error.
pub fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(program).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip args…` in the root namespace.
pub fn ip(args: &[&str]) -> io::Result<String> {
    run("ip", args)
}

/// A network namespace, deleted (with everything in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` with its loopback up.
    pub fn new(name: &str) -> io::Result<Netns> {
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's handle file.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n NAME args…`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `ip netns exec NAME args…`.
    pub fn exec(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `f` on a thread inside the namespace and returns its result.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let path = self.path();
        thread::scope(|scope| {
            scope
                .spawn(move || {
                    enter_netns(&path)?;
                    Ok(f())
                })
                .join()
                .map_err(|_| io::Error::other("thread inside the namespace panicked"))?
        })
    }

    /// Starts `f` on a thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<io::Result<T>> {
        let path = self.path();
        thread::spawn(move || {
            enter_netns(&path)?;
            Ok(f())
        })
    }

    /// Puts `addr/prefix` on `dev` inside the namespace and brings `dev` up.
    pub fn addr(&self, dev: &str, cidr: &str) -> io::Result<()> {
        self.ip(&["addr", "add", cidr, "dev", dev])?;
        self.ip(&["link", "set", dev, "up"]).map(drop)
    }

    /// A dual-stack host's addresses on `dev` (brought up): `v4`, and `v6` without duplicate
    /// address detection (usable at once), with default routes via `gw4` and `gw6`.
    pub fn dual_stack(
        &self,
        dev: &str,
        v4: &str,
        gw4: &str,
        v6: &str,
        gw6: &str,
    ) -> io::Result<()> {
        self.addr(dev, v4)?;
        self.ip(&["-6", "addr", "add", v6, "dev", dev, "nodad"])?;
        self.ip(&["route", "add", "default", "via", gw4])?;
        self.ip(&["-6", "route", "add", "default", "via", gw6])
            .map(drop)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!(
                "test-support: could not delete namespace {}: {e}",
                self.name
            );
        }
    }
}

/// A veth pair created in the root namespace, deleted on drop (if an end was moved into a
/// namespace, deleting that namespace deletes the pair too).
#[derive(Debug)]
pub struct Veth {
    pub a: String,
    pub b: String,
}

impl Veth {
    /// Creates `a`—`b`, both up.
    pub fn new(a: &str, b: &str) -> io::Result<Veth> {
        ip(&["link", "add", a, "type", "veth", "peer", "name", b])?;
        let pair = Veth {
            a: a.to_string(),
            b: b.to_string(),
        };
        ip(&["link", "set", a, "up"])?;
        ip(&["link", "set", b, "up"])?;
        Ok(pair)
    }

    /// Creates `a`—`b` with `a` in `a_ns` and `b` in `b_ns`, both up.
    pub fn between(a: &str, a_ns: &Netns, b: &str, b_ns: &Netns) -> io::Result<Veth> {
        let pair = Veth::new(a, b)?;
        pair.move_to(a, a_ns)?;
        pair.move_to(b, b_ns)?;
        Ok(pair)
    }

    /// Moves the end `dev` into `ns` and brings it up there.
    pub fn move_to(&self, dev: &str, ns: &Netns) -> io::Result<()> {
        ip(&["link", "set", dev, "netns", ns.name()])?;
        ns.ip(&["link", "set", dev, "up"]).map(drop)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for end in [&self.a, &self.b] {
            // Deleting either end deletes the pair; an end not here any more is fine.
            if ip(&["link", "show", "dev", end]).is_ok() {
                if let Err(e) = ip(&["link", "del", "dev", end]) {
                    eprintln!("test-support: could not delete {end}: {e}");
                }
                return;
            }
        }
    }
}

/// Three pings of 2000 octets from `ns` to `dst` without DF (`-M dont`), so that they are
/// fragmented on the way: ping's output (an error when ping fails, e.g. no reply at all).
pub fn ping_fragmented(ns: &Netns, dst: &str) -> io::Result<String> {
    ns.exec(&[
        "ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "2000", dst,
    ])
}

/// The arguments of an iputils `ping` of three echo requests 200 ms apart, each given a second
/// (the destination, and any further option, follow).
pub const PING_THREE: [&str; 7] = ["ping", "-c", "3", "-i", "0.2", "-W", "1"];

/// Sends ICMP echo requests to `dst` from inside `ns` (a raw socket, no `ping` binary needed),
/// one every 200 ms, until a reply comes back or `timeout` passes. Whether one came back.
pub fn ping(ns: &Netns, dst: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    ns.enter(move || -> io::Result<bool> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let to: SocketAddr = (IpAddr::V4(dst), 0).into();
        let ident = (std::process::id() & 0xffff) as u16;
        let deadline = Instant::now() + timeout;
        let mut seq: u16 = 0;
        let mut next_send = Instant::now();
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if Instant::now() >= next_send {
                seq = seq.wrapping_add(1);
                let mut req = [0u8; 16];
                req[0] = 8;
                req[4..6].copy_from_slice(&ident.to_be_bytes());
                req[6..8].copy_from_slice(&seq.to_be_bytes());
                req[8..16].copy_from_slice(b"roamer!!");
                let sum = !ones_complement_sum(&req);
                req[2..4].copy_from_slice(&sum.to_be_bytes());
                // A send can fail while the neighbour is unresolved; the next one retries.
                let _ = sock.send_to(&req, &to.into());
                next_send = Instant::now() + Duration::from_millis(200);
            }
            match (&sock).read(&mut buf) {
                Ok(n) if n >= 20 => {
                    let ihl = usize::from(buf[0] & 0x0f) * 4;
                    let icmp = &buf[ihl.min(n)..n];
                    let from = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
                    if icmp.len() >= 8
                        && icmp[0] == 0
                        && from == dst
                        && icmp[4..6] == ident.to_be_bytes()
                    {
                        return Ok(true);
                    }
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    })?
}

/// An Ethernet frame: `dst`, `src`, an optional 802.1Q tag, `ethertype`, `payload` (padded to
/// the 60-byte minimum).
pub fn ethernet_frame(
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<u16>,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(64 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(vid) = vlan {
        f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// Reads a file of `/sys/class/net/DEV/` inside `ns` (e.g. `address`).
pub fn sysfs(ns: &Netns, dev: &str, file: &str) -> io::Result<String> {
    let path = format!("/sys/class/net/{dev}/{file}");
    ns.exec(&["cat", &path]).map(|s| s.trim().to_string())
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The byte at offset `i` of a test stream (detects reordering and loss).
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 12)) as u8
}

/// The first connection `listener` accepts within `within` (a blocking stream), or the
/// `WouldBlock` error once that time has passed.
pub fn accept_within(
    listener: &std::net::TcpListener,
    within: Duration,
) -> io::Result<std::net::TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + within;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(e);
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A TCP connection to `to`, retried (the listener may not be up yet) for up to `within`.
pub fn connect_within(to: SocketAddr, within: Duration) -> io::Result<std::net::TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        match std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5)) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Streams `total` bytes over TCP from `ns1` to `to:port` (an address of `ns2`); returns how
/// many arrived matching [`pattern`], and how long it took.
pub fn tcp_stream(
    ns1: &Netns,
    ns2: &Netns,
    to: Ipv4Addr,
    port: u16,
    total: usize,
) -> io::Result<(usize, Duration)> {
    let server = ns2.spawn(move || -> std::io::Result<usize> {
        let listener = std::net::TcpListener::bind((to, port))?;
        let mut stream = accept_within(&listener, Duration::from_secs(20))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut good = 0;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(good);
            }
            for &b in &buf[..n] {
                if b != pattern(good) {
                    return Ok(good);
                }
                good += 1;
            }
        }
    });
    let started = Instant::now();
    let client = ns1.spawn(move || -> std::io::Result<()> {
        let mut stream = connect_within(SocketAddr::from((to, port)), Duration::from_secs(20))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let data: Vec<u8> = (0..total).map(pattern).collect();
        stream.write_all(&data)?;
        stream.shutdown(std::net::Shutdown::Write)
    });
    client
        .join()
        .map_err(|_| io::Error::other("client thread panicked"))???;
    let good = server
        .join()
        .map_err(|_| io::Error::other("server thread panicked"))???;
    Ok((good, started.elapsed()))
}

/// The 802.1Q tag protocol identifier.
const ETH_P_8021Q: u16 = 0x8100;

/// The 16-bit one's complement sum of `data` (big-endian words, odd byte padded), folded.
fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Moves the calling thread into the network namespace whose handle file is `path`
/// (e.g. `/run/netns/NAME`). Only this thread changes namespace; sockets it opens afterwards
/// belong to that namespace for their whole life.
#[allow(unsafe_code)] // setns(2) has no safe wrapper in std
fn enter_netns(path: &std::path::Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // SAFETY: `file` is an open namespace handle for the duration of the call; setns only
    // changes the calling thread's namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request() {
        // RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            ones_complement_sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(ones_complement_sum(&[0xff]), 0xff00);
    }
}
