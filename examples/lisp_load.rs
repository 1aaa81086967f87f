//! LISP control-plane load generator: offers signed Map-Registers or ECM Map-Requests to a
//! running map-server / map-resolver at a paced rate with `sendmmsg`, receives the answers
//! (Map-Notify / Map-Reply) with `recvmmsg`, matches them to what was sent by nonce, and prints
//! offered and answered rates, loss and p50/p99 latency. Used by `scripts/bench-lisp-e2e.sh`,
//! which runs it in a network namespace joined by a veth to the daemon's.
//!
//! ```text
//! lisp_load register --server 192.0.2.1 --source 192.0.2.11 --key bench-key \
//!     --rate 100000 --seconds 3 --first 0
//! lisp_load request  --server 192.0.2.1 --source 192.0.2.100 --sources 128 \
//!     --rate 100000 --seconds 3 --first 0 --eids 300000
//! ```
//!
//! Registers: one /32 EID each (10.0.0.0/8 from `--first` on), RLOC `--source`, HMAC-SHA-256
//! with `--key`, want-map-notify and proxy-reply set, nonce unique per message; all built and
//! signed before the clock starts. Requests: ECM Map-Requests for EIDs `--first ..
//! --first + --eids` (registered before, with proxy-reply: the map-resolver answers), from
//! `--sources` ITR addresses starting at `--source` (the map-resolver limits each requester),
//! the Map-Reply to port 61000. Latency is from the `sendmmsg` call that sent a message to the
//! `recvmmsg` call that returned its answer. The last line is one `result` line of key=value
//! pairs for scripts.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(unsafe_code)] // sendmmsg / recvmmsg / setsockopt through libc, each block commented

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roamer_control::wire::lisp::{
    Action, Address, AuthKey, Ecm, EidPrefix, EidRecord, KeyId, LispMessage, LocatorRecord,
    MapRegister, MapRequest,
};

const BATCH: usize = 64;
const REPLY_PORT: u16 = 61_000;
/// Nonces carry this tag in their top 16 bits, and the message index below it.
const TAG_SHIFT: u32 = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    Request,
}

#[derive(Debug)]
struct Args {
    kind: Kind,
    server: Ipv4Addr,
    source: Ipv4Addr,
    sources: u32,
    key: String,
    rate: u64,
    seconds: f64,
    first: u32,
    eids: u32,
    wait: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: lisp_load register|request --server ADDR --source ADDR [--sources N] \
         [--key KEY] --rate PER_SECOND --seconds S [--first I] [--eids N] [--wait S]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let kind = match it.next().as_deref() {
        Some("register") => Kind::Register,
        Some("request") => Kind::Request,
        _ => usage(),
    };
    let mut a = Args {
        kind,
        server: Ipv4Addr::new(192, 0, 2, 1),
        source: Ipv4Addr::new(192, 0, 2, 11),
        sources: 1,
        key: "bench-key".into(),
        rate: 10_000,
        seconds: 1.0,
        first: 0,
        eids: 0,
        wait: 1.0,
    };
    while let Some(flag) = it.next() {
        let Some(v) = it.next() else { usage() };
        let ok = match flag.as_str() {
            "--server" => v.parse().map(|x| a.server = x).is_ok(),
            "--source" => v.parse().map(|x| a.source = x).is_ok(),
            "--sources" => v.parse().map(|x| a.sources = x).is_ok(),
            "--key" => {
                a.key = v;
                true
            }
            "--rate" => v.parse().map(|x| a.rate = x).is_ok(),
            "--seconds" => v.parse().map(|x| a.seconds = x).is_ok(),
            "--first" => v.parse().map(|x| a.first = x).is_ok(),
            "--eids" => v.parse().map(|x| a.eids = x).is_ok(),
            "--wait" => v.parse().map(|x| a.wait = x).is_ok(),
            _ => false,
        };
        if !ok {
            usage()
        }
    }
    if a.rate == 0 || a.seconds <= 0.0 || a.sources == 0 {
        usage()
    }
    a
}

/// EID number `i`: 10.0.0.0/8 from 10.0.0.1 on.
fn eid(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | ((i + 1) & 0x00ff_ffff))
}

fn offset(a: Ipv4Addr, k: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(a).wrapping_add(k))
}

fn build(args: &Args, count: usize, tag: u64) -> Result<Vec<Vec<u8>>, String> {
    let key = AuthKey::new(KeyId::HmacSha256, args.key.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let nonce = (tag << TAG_SHIFT) | i as u64;
        let n = u32::try_from(i).map_err(|_| "too many messages")?;
        let msg = match args.kind {
            Kind::Register => {
                let record = EidRecord {
                    ttl: 1440,
                    prefix: EidPrefix {
                        eid: Address::Ip(IpAddr::V4(eid(args.first.wrapping_add(n)))),
                        mask_len: 32,
                    },
                    action: Action::NoAction,
                    authoritative: true,
                    map_version: 0,
                    locators: vec![LocatorRecord::local(IpAddr::V4(args.source), 1, 100)],
                };
                let mut reg = MapRegister::new(vec![record]);
                reg.proxy_reply = true;
                reg.want_map_notify = true;
                reg.nonce = nonce;
                reg.to_signed_vec(&key).map_err(|e| e.to_string())?
            }
            Kind::Request => {
                let itr = IpAddr::V4(offset(args.source, n % args.sources));
                let target = IpAddr::V4(eid(args.first.wrapping_add(n % args.eids.max(1))));
                let request = MapRequest::query(
                    nonce,
                    Address::None,
                    vec![itr],
                    vec![EidPrefix {
                        eid: Address::Ip(target),
                        mask_len: 32,
                    }],
                );
                Ecm {
                    ddt: false,
                    inner_src: itr,
                    inner_dst: target,
                    inner_ttl: 64,
                    inner_src_port: REPLY_PORT,
                    inner_dst_port: 4342,
                    message: Box::new(LispMessage::MapRequest(request)),
                }
                .to_vec()
                .map_err(|e| e.to_string())?
            }
        };
        out.push(msg);
    }
    Ok(out)
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn force_buffer(sock: &UdpSocket, option: libc::c_int, bytes: libc::c_int) {
    // SAFETY: setsockopt with a c_int value on a socket we own.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Sends `msgs[from..to]` from `sock` with one `sendmmsg` call; returns how many left.
fn send_batch(sock: &UdpSocket, dst: &libc::sockaddr_in, msgs: &[Vec<u8>]) -> usize {
    // SAFETY: zeroed iovec/mmsghdr are valid; every pointer set below outlives the call.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let n = msgs.len().min(BATCH);
    for k in 0..n {
        iov[k].iov_base = msgs[k].as_ptr() as *mut libc::c_void;
        iov[k].iov_len = msgs[k].len();
        hdr[k].msg_hdr.msg_iov = &raw mut iov[k];
        hdr[k].msg_hdr.msg_iovlen = 1;
        hdr[k].msg_hdr.msg_name = (dst as *const libc::sockaddr_in) as *mut libc::c_void;
        hdr[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    }
    // SAFETY: hdr[..n] is initialised as sendmmsg expects.
    let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdr.as_mut_ptr(), n as libc::c_uint, 0) };
    usize::try_from(r).unwrap_or(0)
}

/// What the receiver saw.
struct Received {
    answered: u64,
    duplicates: u64,
    foreign: u64,
    latencies_us: Vec<u32>,
}

fn receive(
    sock: &UdpSocket,
    tag: u64,
    sent_ns: &[AtomicU64],
    epoch: Instant,
    stop: &AtomicBool,
) -> Received {
    let mut seen = vec![false; sent_ns.len()];
    let mut r = Received {
        answered: 0,
        duplicates: 0,
        foreign: 0,
        latencies_us: Vec::with_capacity(sent_ns.len()),
    };
    let mut bufs = vec![[0u8; 512]; BATCH];
    // SAFETY: as in send_batch.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    while !stop.load(Ordering::Relaxed) {
        for k in 0..BATCH {
            iov[k].iov_base = bufs[k].as_mut_ptr().cast();
            iov[k].iov_len = bufs[k].len();
            hdr[k].msg_hdr.msg_iov = &raw mut iov[k];
            hdr[k].msg_hdr.msg_iovlen = 1;
            hdr[k].msg_len = 0;
        }
        // SAFETY: hdr points at live buffers; the socket has a receive timeout.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdr.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let Ok(n) = usize::try_from(n) else { continue };
        let now = epoch.elapsed().as_nanos() as u64;
        for k in 0..n {
            let len = hdr[k].msg_len as usize;
            // Map-Notify and Map-Reply carry the nonce in octets 4..12.
            let Some(nonce) = bufs[k]
                .get(4..12)
                .filter(|_| len >= 12)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
            else {
                r.foreign += 1;
                continue;
            };
            let i = (nonce & ((1 << TAG_SHIFT) - 1)) as usize;
            if nonce >> TAG_SHIFT != tag || i >= seen.len() {
                r.foreign += 1;
                continue;
            }
            if seen[i] {
                r.duplicates += 1;
                continue;
            }
            seen[i] = true;
            r.answered += 1;
            let sent = sent_ns[i].load(Ordering::Relaxed);
            r.latencies_us
                .push(u32::try_from(now.saturating_sub(sent) / 1000).unwrap_or(u32::MAX));
        }
    }
    r
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn main() {
    let args = parse_args();
    let count = (args.rate as f64 * args.seconds) as usize;
    if count == 0 || count >= 1 << TAG_SHIFT {
        usage()
    }
    let tag = u64::from(std::process::id() as u16) ^ 0x5a5a;
    let msgs = match build(&args, count, tag) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("lisp_load: cannot build the messages: {e}");
            std::process::exit(1)
        }
    };
    let server = SocketAddrV4::new(args.server, 4342);
    let dst = sockaddr(server);
    let open = |addr: SocketAddr| -> UdpSocket {
        match UdpSocket::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("lisp_load: cannot bind {addr}: {e}");
                std::process::exit(1)
            }
        }
    };
    // Registers: one ETR, answers to where it sends from. Requests: one socket per ITR
    // address, answers to port REPLY_PORT of each.
    let (senders, receiver) = match args.kind {
        Kind::Register => {
            let s = open(SocketAddr::new(IpAddr::V4(args.source), 4342));
            let r = s.try_clone().unwrap_or_else(|e| {
                eprintln!("lisp_load: {e}");
                std::process::exit(1)
            });
            (vec![s], r)
        }
        Kind::Request => {
            let r = open(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                REPLY_PORT,
            ));
            let s = (0..args.sources)
                .map(|k| open(SocketAddr::new(IpAddr::V4(offset(args.source, k)), 0)))
                .collect();
            (s, r)
        }
    };
    force_buffer(&receiver, libc::SO_RCVBUFFORCE, 64 << 20);
    for s in &senders {
        force_buffer(s, libc::SO_SNDBUFFORCE, 8 << 20);
    }
    if let Err(e) = receiver.set_read_timeout(Some(Duration::from_millis(50))) {
        eprintln!("lisp_load: {e}");
        std::process::exit(1)
    }
    let sent_ns: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let rx = {
        let (sent_ns, stop) = (sent_ns.clone(), stop.clone());
        std::thread::spawn(move || receive(&receiver, tag, &sent_ns, epoch, &stop))
    };

    // Paced: by elapsed time t, rate * t messages should have left; sent in batches of 64,
    // each batch from the next ITR socket.
    let start = Instant::now();
    let mut next = 0usize;
    let mut sender = 0usize;
    let mut short_sends = 0u64;
    while next < count {
        let due = ((start.elapsed().as_secs_f64() * args.rate as f64) as usize).min(count);
        if due <= next {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        let end = due.min(next + BATCH);
        let t = epoch.elapsed().as_nanos() as u64;
        for s in &sent_ns[next..end] {
            s.store(t, Ordering::Relaxed);
        }
        let n = send_batch(&senders[sender], &dst, &msgs[next..end]);
        if n < end - next {
            short_sends += 1;
        }
        next += n;
        if n == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        if args.kind == Kind::Request && n > 0 {
            sender = (sender + 1) % senders.len();
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(args.wait));
    stop.store(true, Ordering::Relaxed);
    let Ok(mut r) = rx.join() else {
        eprintln!("lisp_load: the receiver panicked");
        std::process::exit(1)
    };
    r.latencies_us.sort_unstable();
    let offered_rate = count as f64 / send_secs;
    let answered_rate = r.answered as f64 / send_secs;
    let loss = 100.0 * (count as f64 - r.answered as f64) / count as f64;
    let what = match args.kind {
        Kind::Register => "registrations (Map-Register -> Map-Notify)",
        Kind::Request => "Map-Requests (ECM -> Map-Reply)",
    };
    println!(
        "{what}: offered {count} in {send_secs:.2} s = {offered_rate:.0}/s, answered {} \
         = {answered_rate:.0}/s, loss {loss:.2} %, p50 {} us, p99 {} us \
         (duplicates {}, unmatched {}, short sends {short_sends})",
        r.answered,
        percentile(&r.latencies_us, 0.5),
        percentile(&r.latencies_us, 0.99),
        r.duplicates,
        r.foreign,
    );
    println!(
        "result kind={} target_rate={} offered={count} offered_rate={offered_rate:.0} \
         answered={} answered_rate={answered_rate:.0} loss_pct={loss:.2} p50_us={} p99_us={}",
        match args.kind {
            Kind::Register => "register",
            Kind::Request => "request",
        },
        args.rate,
        r.answered,
        percentile(&r.latencies_us, 0.5),
        percentile(&r.latencies_us, 0.99),
    );
}
