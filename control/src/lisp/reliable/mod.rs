//! Map-Server reliable transport sessions (TCP 4342, protocols.md §5) over a userspace TCP.
//!
//! roamer's RLOCs are not kernel addresses: the data path punts the IPv4 packets addressed to us
//! and routes the packets the control plane originates. TCP therefore runs here, in `smoltcp`,
//! over an in-memory device ([`TcpEndpoint`]). Everything is pure: time comes in as milliseconds,
//! packets come in with [`TcpEndpoint::receive_ip`] and go out with [`TcpEndpoint::drain_ip`].
//!
//! * [`EtrSessions`] — the ETR side: one session per map-server, always the TCP client (§5.1
//!   step 3). The xTR calls [`EtrSessions::open`] when a UDP Map-Register was acknowledged by a
//!   Map-Notify; a session that cannot be established within [`CONNECT_TIMEOUT_MS`] is `Down` and
//!   is tried again only on the next `open` (the ETR stays on UDP meanwhile, §5.1 step 8).
//! * [`MsSessions`] — the Map-Server side: a pool of listeners on port 4342, at most
//!   [`MAX_MS_SESSIONS`] sessions, only from ETRs whose UDP registration was acknowledged first
//!   ([`MsSessions::allow`]); a Registration-Refresh (scope 0) on every new session, the
//!   Registrations handed to the daemon, Registration-ACK/NACK back.
//! * [`render_sessions`] — `show lisp session` in the seed 003 layout.
//!
//! Framing and messages are [`crate::wire::reliable`]; a framing error resets the session.
//!
//! The driving loop of the daemon, per batch of punted packets or timer tick:
//!
//! ```text
//! for p in punted { ep.receive_ip(&p); }
//! etr.poll(&mut ep, now_ms, &mut etr_events);   // each poll runs the TCP stack before and after
//! ms.poll(&mut ep, now_ms, &mut ms_events);
//! ep.drain_ip(&mut out);                         // route every packet of `out`
//! ```
//!
//! Calls that only queue work ([`EtrSessions::open`], [`EtrSessions::send_registration`],
//! [`MsSessions::ack`], …) take effect on the next `poll`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use roamer_hal::Prefix;
use serde::Serialize;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpEndpoint, IpListenEndpoint};

use crate::lisp::map_server::REGISTRATION_LIFETIME_MS;
use crate::wire::lisp::address::EidPrefix;
use crate::wire::lisp::record::EidRecord;
use crate::wire::reliable::{
    DEFAULT_MAX_MESSAGE_LEN, Frame, RefreshScope, RejectReason, ReliableDecoder, ReliableFrame,
    ReliableMessage, TypeNumbers,
};

/// The reliable-transport port of the Map-Server (§1.1).
pub const RELIABLE_PORT: u16 = 4342;
/// An ETR session not established within this time is `Down` (retried on the next `open`).
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// After the second refused (or unanswered) connection attempt in a row, the ETR waits this
/// long before the next one, doubling with each further failure up to
/// [`RETRY_BACKOFF_MAX_MS`]. The first failure is retried at the next acknowledged UDP
/// registration (the map-server admits an ETR only after its first UDP registration, which may
/// still have been on its way).
pub const RETRY_BACKOFF_BASE_MS: u64 = 120_000;
/// The longest wait between two connection attempts to a map-server that refuses them.
pub const RETRY_BACKOFF_MAX_MS: u64 = 3_600_000;

/// How long the ETR waits after `failures` refused or unanswered attempts in a row.
pub fn retry_backoff_ms(failures: u32) -> u64 {
    match failures {
        0 | 1 => 0,
        n => RETRY_BACKOFF_BASE_MS
            .saturating_mul(1u64 << (n - 2).min(20))
            .min(RETRY_BACKOFF_MAX_MS),
    }
}
/// Sessions a Map-Server accepts at once; further connections are reset and counted.
pub const MAX_MS_SESSIONS: usize = 256;
/// Idle listening sockets kept on port 4342 (connections arriving together beyond this many in
/// one poll are reset by the TCP stack; the ETR tries again after its next UDP registration).
pub const LISTEN_POOL: usize = 8;
/// Packets held in each direction of a [`TcpEndpoint`]; beyond it packets are dropped and counted.
pub const PACKET_QUEUE_LIMIT: usize = 1024;
/// Receive and send buffer of each TCP socket.
pub const SOCKET_BUFFER_LEN: usize = 16 * 1024;
/// Octets of messages queued on a session beyond what the TCP send buffer holds.
pub const MAX_PENDING_LEN: usize = 1024 * 1024;
/// TCP keep-alive interval on established sessions (liveness = TCP, §5.1 step 7). Short, because
/// a restarted peer is only noticed when a segment reaches it (it answers with a reset): an ETR
/// must re-register with a restarted Map-Server within seconds, and a keep-alive costs one
/// small segment per session per second.
pub const KEEPALIVE_MS: u64 = 1_000;
/// A session from which nothing was heard for this long (keep-alives unanswered) is reset and
/// the ETR falls back to UDP registration.
pub const IDLE_TIMEOUT_MS: u64 = 10_000;
/// A Map-Server accepts a session from an ETR this long after acknowledging its UDP register.
pub const ALLOW_LIFETIME_MS: u64 = REGISTRATION_LIFETIME_MS;
/// ETR addresses remembered by [`MsSessions::allow`] (the oldest is forgotten beyond it).
pub const MAX_ALLOWED: usize = 4096;
/// IP MTU of the endpoint (the RLOC network; TCP segments are at most 1460 octets of data).
pub const IP_MTU: usize = 1500;
/// Closed sockets are released once their closing handshake is over, at the latest after this.
const RETIRE_MS: u64 = 60_000;
const EPHEMERAL_FIRST: u16 = 49_152;
/// Stack runs per poll while packets to our own addresses are looped back.
const LOOPBACK_ROUNDS: usize = 8;

static NEXT_ENDPOINT_ID: AtomicU64 = AtomicU64::new(1);

fn instant(ms: u64) -> Instant {
    Instant::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn ip_address(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => IpAddress::Ipv4(v4),
        IpAddr::V6(v6) => IpAddress::Ipv6(v6),
    }
}

// ---------------------------------------------------------------------------------------------
// The in-memory device
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct QueueDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    tx_dropped: u64,
}

struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

struct TxToken<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    dropped: &'a mut u64,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        if self.queue.len() < PACKET_QUEUE_LIMIT {
            self.queue.push_back(buf);
        } else {
            *self.dropped += 1;
        }
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((
            RxToken(packet),
            TxToken {
                queue: &mut self.tx,
                dropped: &mut self.tx_dropped,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        // A full queue makes the stack keep its segments for later (retransmission).
        if self.tx.len() >= PACKET_QUEUE_LIMIT {
            return None;
        }
        Some(TxToken {
            queue: &mut self.tx,
            dropped: &mut self.tx_dropped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = IP_MTU;
        caps.max_burst_size = None;
        // Compute every checksum in software on transmit and verify it on receive: the data
        // path routes our packets as they are.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

// ---------------------------------------------------------------------------------------------
// TcpEndpoint
// ---------------------------------------------------------------------------------------------

/// What a [`TcpEndpoint`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EndpointCounters {
    /// Packets queued by [`TcpEndpoint::receive_ip`].
    pub rx_packets: u64,
    /// Packets refused because the receive queue was full.
    pub rx_dropped_full: u64,
    /// Packets refused as not ours: not IPv4, not TCP, malformed, or to an address not ours.
    pub rx_dropped_not_ours: u64,
    /// Packets handed out by [`TcpEndpoint::drain_ip`].
    pub tx_packets: u64,
    /// Replies dropped because the transmit queue was full.
    pub tx_dropped_full: u64,
    /// Packets from us to one of our own addresses, delivered without leaving the endpoint.
    pub looped_back: u64,
}

/// One userspace TCP/IPv4 stack (smoltcp, `Medium::Ip`) over an in-memory device. The sockets
/// belong to the [`EtrSessions`] and [`MsSessions`] polled with it.
pub struct TcpEndpoint {
    id: u64,
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    /// Sockets of this endpoint (a handle from elsewhere is never used on it).
    owned: BTreeSet<SocketHandle>,
    /// Closed or closing sockets, released when their handshake is over or at the deadline.
    retired: Vec<(SocketHandle, u64)>,
    addresses: BTreeSet<IpAddr>,
    next_port: u16,
    now_ms: u64,
    counters: EndpointCounters,
}

impl fmt::Debug for TcpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpEndpoint")
            .field("id", &self.id)
            .field("addresses", &self.addresses)
            .field("sockets", &self.owned.len())
            .field("retired", &self.retired.len())
            .field("rx_queued", &self.device.rx.len())
            .field("tx_queued", &self.device.tx.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl TcpEndpoint {
    /// A stack without addresses. `random_seed` seeds the initial sequence numbers and the first
    /// ephemeral port: give a different value on each start (e.g. from the LISP nonce source).
    pub fn new(random_seed: u64, now_ms: u64) -> Self {
        let mut device = QueueDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            tx_dropped: 0,
        };
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = random_seed;
        let mut iface = Interface::new(config, &mut device, instant(now_ms));
        // Our addresses are any number of RLOCs: receive_ip admits only packets to them, the
        // stack takes every packet it is given and routes everything out of the one device.
        iface.set_any_ip(true);
        // The route table holds two routes; an empty one always takes a default route.
        let _ = iface
            .routes_mut()
            .add_default_ipv4_route(Ipv4Addr::new(0, 0, 0, 1));
        let _ = iface
            .routes_mut()
            .add_default_ipv6_route(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let span = u64::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        let offset = u16::try_from(random_seed % span).unwrap_or(0);
        Self {
            id: NEXT_ENDPOINT_ID.fetch_add(1, Ordering::Relaxed),
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            owned: BTreeSet::new(),
            retired: Vec::new(),
            addresses: BTreeSet::new(),
            next_port: EPHEMERAL_FIRST.saturating_add(offset),
            now_ms,
            counters: EndpointCounters::default(),
        }
    }

    /// Our local addresses (the RLOCs), IPv4 and IPv6. Sessions on an address that disappears
    /// are reset on their next poll.
    pub fn set_addresses(&mut self, addrs: &[IpAddr]) {
        self.addresses = addrs.iter().copied().collect();
    }

    /// The local addresses in use.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.addresses.iter().copied().collect()
    }

    pub fn has_address(&self, ip: IpAddr) -> bool {
        self.addresses.contains(&ip)
    }

    /// Whether [`receive_ip`](Self::receive_ip) would take `packet`: a well-formed IPv4 or IPv6
    /// TCP packet to one of our addresses. The daemon can punt exactly these.
    pub fn accepts(&self, packet: &[u8]) -> bool {
        tcp_destination(packet).is_some_and(|dst| self.addresses.contains(&dst))
    }

    /// Queues an IPv4 or IPv6 packet addressed to us (processed by the next poll). `false` (counted) when
    /// it is not ours (see [`accepts`](Self::accepts)) or the queue is full.
    pub fn receive_ip(&mut self, packet: &[u8]) -> bool {
        if !self.accepts(packet) {
            self.counters.rx_dropped_not_ours += 1;
            return false;
        }
        if self.device.rx.len() >= PACKET_QUEUE_LIMIT {
            self.counters.rx_dropped_full += 1;
            return false;
        }
        self.counters.rx_packets += 1;
        self.device.rx.push_back(packet.to_vec());
        true
    }

    /// Runs the TCP stack: received packets, timers, transmissions. The session objects call it
    /// from their own `poll`; calling it more often is harmless.
    /// Packets to one of our own addresses (an xTR registering with the Map-Server of the same
    /// switch) are delivered locally and never handed out.
    pub fn poll(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = instant(self.now_ms);
        for _ in 0..LOOPBACK_ROUNDS {
            self.iface.poll(now, &mut self.device, &mut self.sockets);
            let mut looped = false;
            let mut keep = VecDeque::new();
            for p in std::mem::take(&mut self.device.tx) {
                let ours = tcp_destination(&p).is_some_and(|d| self.addresses.contains(&d));
                if ours && self.device.rx.len() < PACKET_QUEUE_LIMIT {
                    self.device.rx.push_back(p);
                    self.counters.looped_back += 1;
                    looped = true;
                } else {
                    keep.push_back(p);
                }
            }
            self.device.tx = keep;
            if !looped {
                break;
            }
        }
        self.release_retired();
    }

    /// Moves the IPv4 and IPv6 packets to transmit (complete, checksums computed) to `out`.
    pub fn drain_ip(&mut self, out: &mut Vec<Vec<u8>>) {
        self.counters.tx_packets += self.device.tx.len() as u64;
        out.extend(self.device.tx.drain(..));
    }

    /// Milliseconds until the stack wants to be polled again (retransmissions, keep-alives);
    /// `None` when only a received packet can change anything. Sessions also have their own
    /// timers ([`CONNECT_TIMEOUT_MS`]): a periodic poll (e.g. every 100 ms) covers both.
    pub fn poll_delay_ms(&mut self, now_ms: u64) -> Option<u64> {
        self.iface
            .poll_delay(instant(now_ms), &self.sockets)
            .map(|d| d.total_millis())
    }

    pub fn counters(&self) -> EndpointCounters {
        EndpointCounters {
            tx_dropped_full: self.device.tx_dropped,
            ..self.counters
        }
    }

    /// Sockets in use (sessions, listeners and closing ones).
    pub fn socket_count(&self) -> usize {
        self.owned.len()
    }

    fn new_socket(&mut self) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER_LEN]),
            tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER_LEN]),
        );
        s.set_nagle_enabled(false);
        s.set_keep_alive(Some(Duration::from_millis(KEEPALIVE_MS)));
        s.set_timeout(Some(Duration::from_millis(IDLE_TIMEOUT_MS)));
        let h = self.sockets.add(s);
        self.owned.insert(h);
        h
    }

    fn tcp(&mut self, h: SocketHandle) -> Option<&mut tcp::Socket<'static>> {
        if self.owned.contains(&h) {
            Some(self.sockets.get_mut::<tcp::Socket<'static>>(h))
        } else {
            None
        }
    }

    fn state(&mut self, h: SocketHandle) -> tcp::State {
        self.tcp(h).map_or(tcp::State::Closed, |s| s.state())
    }

    fn next_ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            p + 1
        };
        p
    }

    /// Opens a client socket from `local` to `remote:RELIABLE_PORT`.
    fn connect(&mut self, local: IpAddr, remote: IpAddr) -> Option<SocketHandle> {
        let port = self.next_ephemeral_port();
        let h = self.new_socket();
        let remote = IpEndpoint::new(ip_address(remote), RELIABLE_PORT);
        let local = IpListenEndpoint {
            addr: Some(ip_address(local)),
            port,
        };
        let ok = self.owned.contains(&h) && {
            let s = self.sockets.get_mut::<tcp::Socket<'static>>(h);
            s.connect(self.iface.context(), remote, local).is_ok()
        };
        if ok {
            Some(h)
        } else {
            self.remove_socket(h);
            None
        }
    }

    /// A listener on port 4342 (any of our addresses) that holds its SYN-ACK until the session
    /// is admitted.
    fn listen(&mut self) -> Option<SocketHandle> {
        let h = self.new_socket();
        let ok = self.tcp(h).is_some_and(|s| {
            s.pause_synack(true);
            s.listen(IpListenEndpoint {
                addr: None,
                port: RELIABLE_PORT,
            })
            .is_ok()
        });
        if ok {
            Some(h)
        } else {
            self.remove_socket(h);
            None
        }
    }

    fn remove_socket(&mut self, h: SocketHandle) {
        if self.owned.remove(&h) {
            self.sockets.remove(h);
        }
    }

    /// Resets the connection (one RST is sent on the next poll) and releases the socket.
    fn abort(&mut self, h: SocketHandle) {
        if let Some(s) = self.tcp(h) {
            s.abort();
        }
        self.retire(h);
    }

    /// Closes our half (FIN) and releases the socket once the handshake is over.
    fn close(&mut self, h: SocketHandle) {
        if let Some(s) = self.tcp(h) {
            s.close();
        }
        self.retire(h);
    }

    fn retire(&mut self, h: SocketHandle) {
        if self.owned.contains(&h) && !self.retired.iter().any(|(r, _)| *r == h) {
            self.retired
                .push((h, self.now_ms.saturating_add(RETIRE_MS)));
        }
    }

    fn release_retired(&mut self) {
        let now = self.now_ms;
        let mut done = Vec::new();
        for (h, deadline) in &self.retired {
            let finished = self.owned.contains(h) && {
                let s = self.sockets.get::<tcp::Socket<'static>>(*h);
                s.state() == tcp::State::Closed && s.remote_endpoint().is_none()
            };
            if finished || now >= *deadline || !self.owned.contains(h) {
                done.push(*h);
            }
        }
        for h in done {
            self.retired.retain(|(r, _)| *r != h);
            self.remove_socket(h);
        }
    }
}

/// The destination of a well-formed IPv4 or IPv6 TCP packet (IPv6 without extension headers).
fn tcp_destination(packet: &[u8]) -> Option<IpAddr> {
    let first = *packet.first()?;
    if first >> 4 == 6 {
        let payload = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
        if *packet.get(6)? != 6 || payload < 20 || 40 + payload > packet.len() {
            return None;
        }
        let mut d = [0u8; 16];
        d.copy_from_slice(packet.get(24..40)?);
        return Some(IpAddr::V6(std::net::Ipv6Addr::from(d)));
    }
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if ihl < 20 || total < ihl + 20 || total > packet.len() || *packet.get(9)? != 6 {
        return None;
    }
    let d = packet.get(16..20)?;
    Some(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])))
}

// ---------------------------------------------------------------------------------------------
// Common session pieces
// ---------------------------------------------------------------------------------------------

/// State of a session as `show lisp session` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SessionState {
    Up,
    Down,
    Connecting,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "Up",
            Self::Down => "Down",
            Self::Connecting => "Connecting",
        })
    }
}

/// Why a session went (or stayed) down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DownReason {
    /// No answer to the connection attempt within [`CONNECT_TIMEOUT_MS`].
    ConnectTimeout,
    /// The connection attempt was reset (no reliable transport there, or not admitted).
    Refused,
    /// The established session was reset, or the peer stopped answering (TCP timeout).
    Reset,
    /// The peer closed the session.
    PeerClosed,
    /// The stream did not frame (§5.2): the session was reset by us.
    FramingError,
    /// The local address is not (or no longer) one of the endpoint's addresses.
    NoLocalAddress,
    /// A map-server and local address of different families, or a map-server address that is
    /// not unicast.
    Unsupported,
    /// Closed locally ([`EtrSessions::close`], [`MsSessions::set_enabled`]`(false)`).
    Closed,
    /// The session's peer was the same ETR as a newer session, which replaced it.
    Replaced,
    /// The sessions were polled with a different [`TcpEndpoint`] than before.
    EndpointChanged,
}

/// One line of `show lisp session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// The map-server (ETR side, port 4342) or the ETR (Map-Server side, its source port).
    pub peer: SocketAddr,
    pub state: SessionState,
    /// Last change between Up and Down (`None`: never established, printed `never`).
    pub since_ms: Option<u64>,
    /// Milliseconds since `since_ms` at the time of [`EtrSessions::rows`]/[`MsSessions::rows`].
    pub age_ms: Option<u64>,
    /// Messages received on the session (the current one, or the last one when down).
    pub messages_in: u64,
    /// Messages sent on the session.
    pub messages_out: u64,
    /// EID-prefixes acknowledged over the session, at least 1.
    pub users: usize,
    /// Why the session last went (or stayed) down (ETR side).
    pub last_down: Option<DownReason>,
    /// Connection attempts refused or unanswered in a row (ETR side; 0 once up).
    pub failures: u32,
    /// Milliseconds until the next connection attempt may go, when the ETR backs off.
    pub retry_in_ms: Option<u64>,
}

/// One session's message stream: the decoder of what arrives, what waits to be written.
#[derive(Debug)]
struct Stream {
    decoder: ReliableDecoder,
    pending: Vec<u8>,
    next_msg_id: u32,
    messages_in: u64,
    messages_out: u64,
}

impl Stream {
    fn new() -> Self {
        Self {
            decoder: ReliableDecoder::new(DEFAULT_MAX_MESSAGE_LEN),
            pending: Vec::new(),
            next_msg_id: 1,
            messages_in: 0,
            messages_out: 0,
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_msg_id;
        self.next_msg_id = self.next_msg_id.wrapping_add(1).max(1);
        id
    }

    /// Queues a message; `false` when it does not encode, exceeds the message maximum or the
    /// pending queue is full.
    fn queue(&mut self, msg_id: u32, message: ReliableMessage, t: &TypeNumbers) -> bool {
        let Ok(bytes) = (ReliableFrame { msg_id, message })
            .to_frame(t)
            .and_then(|f| f.to_vec())
        else {
            return false;
        };
        self.queue_raw(&bytes)
    }

    fn queue_raw(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > DEFAULT_MAX_MESSAGE_LEN
            || self.pending.len() + bytes.len() > MAX_PENDING_LEN
        {
            return false;
        }
        self.pending.extend_from_slice(bytes);
        self.messages_out += 1;
        true
    }

    /// Writes what the socket takes and reads what it has. `Err` on a framing error.
    fn pump(&mut self, s: &mut tcp::Socket<'static>) -> Result<Vec<Frame>, ()> {
        if !self.pending.is_empty()
            && s.may_send()
            && let Ok(n) = s.send_slice(&self.pending)
        {
            self.pending.drain(..n);
        }
        let mut frames = Vec::new();
        let mut buf = [0u8; 4096];
        while s.can_recv() {
            match s.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let got = self
                        .decoder
                        .feed(buf.get(..n).unwrap_or(&[]))
                        .map_err(|_| ())?;
                    frames.extend(got);
                }
            }
        }
        self.messages_in += frames.len() as u64;
        Ok(frames)
    }
}

// ---------------------------------------------------------------------------------------------
// ETR side
// ---------------------------------------------------------------------------------------------

/// What the ETR side reports from [`EtrSessions::poll`]; the `IpAddr` is the map-server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtrEvent {
    /// The session is established (the Map-Server's Registration-Refresh follows).
    Up(IpAddr),
    /// The session is down (or the attempt failed): register over UDP again.
    Down(IpAddr, DownReason),
    /// The Map-Server asks for the full state: send every record again
    /// ([`EtrSessions::send_registration`], one Map-Register per record).
    RefreshRequested(IpAddr),
    /// Registration-ACK for this EID-prefix.
    Acked(IpAddr, Prefix),
    /// Registration-NACK ("Reject") for this EID-prefix.
    Rejected(IpAddr, Prefix, RejectReason),
    /// Mapping-Notification: the Map-Server tells the mapping of a prefix.
    Notified(IpAddr, EidRecord),
}

/// What the ETR side counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EtrCounters {
    pub connects: u64,
    pub sessions_up: u64,
    pub connect_timeouts: u64,
    pub connects_refused: u64,
    /// Requests to open a session to a map-server that refused it, not acted on while the
    /// ETR backs off ([`retry_backoff_ms`]).
    pub connects_deferred: u64,
    pub resets: u64,
    pub framing_errors: u64,
    pub registrations_sent: u64,
    /// Registrations refused by [`EtrSessions::send_registration`] (no session up, the message
    /// does not encode, or the queue is full).
    pub registrations_refused: u64,
    pub acks: u64,
    pub nacks: u64,
    pub refreshes: u64,
    pub mapping_notifications: u64,
    pub error_notifications: u64,
    /// Messages that decoded to nothing an ETR expects, or did not decode.
    pub messages_ignored: u64,
}

#[derive(Debug)]
struct EtrSession {
    local: IpAddr,
    state: SessionState,
    socket: Option<SocketHandle>,
    connect_wanted: bool,
    connect_started_ms: u64,
    since_ms: Option<u64>,
    stream: Stream,
    acked: BTreeSet<Prefix>,
    last_down: Option<DownReason>,
    /// Attempts refused or unanswered in a row.
    failures: u32,
    /// No attempt before this ([`retry_backoff_ms`]).
    retry_at_ms: u64,
}

/// The ETR's sessions, one per map-server (the ETR is always the client).
#[derive(Debug)]
pub struct EtrSessions {
    sessions: BTreeMap<IpAddr, EtrSession>,
    endpoint: Option<u64>,
    types: TypeNumbers,
    counters: EtrCounters,
}

impl Default for EtrSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl EtrSessions {
    pub fn new() -> Self {
        Self {
            sessions: BTreeMap::new(),
            endpoint: None,
            types: TypeNumbers::default(),
            counters: EtrCounters::default(),
        }
    }

    /// Message type numbers of the sessions (protocols.md §12 #13).
    pub fn set_type_numbers(&mut self, t: TypeNumbers) {
        self.types = t;
    }

    /// Connects to `map_server` from `local` unless a session is up or being set up, or the
    /// map-server refused the last attempts and the back-off ([`retry_backoff_ms`]) is not
    /// over. Called after a UDP Map-Register to that map-server was acknowledged by a
    /// Map-Notify.
    pub fn open(&mut self, map_server: IpAddr, local: IpAddr, now_ms: u64) {
        let s = self
            .sessions
            .entry(map_server)
            .or_insert_with(|| EtrSession {
                local,
                state: SessionState::Down,
                socket: None,
                connect_wanted: false,
                connect_started_ms: now_ms,
                since_ms: None,
                stream: Stream::new(),
                acked: BTreeSet::new(),
                last_down: None,
                failures: 0,
                retry_at_ms: 0,
            });
        if s.state == SessionState::Down && !s.connect_wanted && now_ms < s.retry_at_ms {
            // It refused (or ignored) us several times: not a SYN every registration.
            self.counters.connects_deferred += 1;
            return;
        }
        if s.state == SessionState::Down && !s.connect_wanted {
            s.local = local;
            s.state = SessionState::Connecting;
            s.connect_wanted = true;
            s.connect_started_ms = now_ms;
        }
    }

    /// Closes the session to `map_server` (FIN) and forgets it (the map-server was removed from
    /// the configuration). No event follows.
    pub fn close(&mut self, ep: &mut TcpEndpoint, map_server: IpAddr) {
        if let Some(s) = self.sessions.remove(&map_server)
            && let Some(h) = s.socket
            && self.endpoint == Some(ep.id)
        {
            ep.close(h);
        }
    }

    pub fn state(&self, map_server: IpAddr) -> Option<SessionState> {
        self.sessions.get(&map_server).map(|s| s.state)
    }

    pub fn is_up(&self, map_server: IpAddr) -> bool {
        self.state(map_server) == Some(SessionState::Up)
    }

    /// The map-servers with an established session.
    pub fn up_map_servers(&self) -> Vec<IpAddr> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.state == SessionState::Up)
            .map(|(ms, _)| *ms)
            .collect()
    }

    /// Queues one complete, signed Map-Register (one record) as a Registration message.
    /// `false` (counted) when no session to `map_server` is up, the bytes are not a Map-Register,
    /// the message exceeds the session maximum or too much is queued already.
    pub fn send_registration(&mut self, map_server: IpAddr, map_register_bytes: &[u8]) -> bool {
        let types = self.types;
        let sent = match self.sessions.get_mut(&map_server) {
            Some(s) if s.state == SessionState::Up => {
                let id = s.stream.take_id();
                s.stream.queue(
                    id,
                    ReliableMessage::Registration {
                        map_register: map_register_bytes.to_vec(),
                    },
                    &types,
                )
            }
            _ => false,
        };
        if sent {
            self.counters.registrations_sent += 1;
        } else {
            self.counters.registrations_refused += 1;
        }
        sent
    }

    /// Runs the sessions on `ep` (the TCP stack is polled before and after) and reports what
    /// happened.
    pub fn poll(&mut self, ep: &mut TcpEndpoint, now_ms: u64, events: &mut Vec<EtrEvent>) {
        if self.endpoint != Some(ep.id) {
            if self.endpoint.is_some() {
                for (ms, s) in &mut self.sessions {
                    s.socket = None;
                    if s.state == SessionState::Up {
                        s.state = SessionState::Down;
                        s.since_ms = Some(now_ms);
                        events.push(EtrEvent::Down(*ms, DownReason::EndpointChanged));
                    } else if s.state == SessionState::Connecting && !s.connect_wanted {
                        s.state = SessionState::Down;
                        events.push(EtrEvent::Down(*ms, DownReason::EndpointChanged));
                    }
                }
            }
            self.endpoint = Some(ep.id);
        }
        ep.poll(now_ms);
        let types = self.types;
        for (ms, s) in &mut self.sessions {
            s.step(*ms, ep, now_ms, &types, &mut self.counters, events);
        }
        ep.poll(now_ms);
    }

    /// `show lisp session` rows, by map-server address.
    pub fn rows(&self, now_ms: u64) -> Vec<SessionRow> {
        self.sessions
            .iter()
            .map(|(ms, s)| SessionRow {
                peer: SocketAddr::new(*ms, RELIABLE_PORT),
                state: s.state,
                since_ms: s.since_ms,
                age_ms: s.since_ms.map(|t| now_ms.saturating_sub(t)),
                messages_in: s.stream.messages_in,
                messages_out: s.stream.messages_out,
                users: s.acked.len().max(1),
                last_down: s.last_down,
                failures: s.failures,
                retry_in_ms: (s.state == SessionState::Down && s.retry_at_ms > now_ms)
                    .then(|| s.retry_at_ms - now_ms),
            })
            .collect()
    }

    pub fn counters(&self) -> EtrCounters {
        self.counters
    }
}

impl EtrSession {
    fn down(&mut self, ms: IpAddr, reason: DownReason, now_ms: u64, events: &mut Vec<EtrEvent>) {
        if self.state == SessionState::Up {
            self.since_ms = Some(now_ms);
        }
        self.state = SessionState::Down;
        self.socket = None;
        self.connect_wanted = false;
        self.acked.clear();
        self.last_down = Some(reason);
        if matches!(reason, DownReason::Refused | DownReason::ConnectTimeout) {
            self.failures = self.failures.saturating_add(1);
            self.retry_at_ms = now_ms.saturating_add(retry_backoff_ms(self.failures));
        }
        events.push(EtrEvent::Down(ms, reason));
    }

    fn step(
        &mut self,
        ms: IpAddr,
        ep: &mut TcpEndpoint,
        now_ms: u64,
        types: &TypeNumbers,
        c: &mut EtrCounters,
        events: &mut Vec<EtrEvent>,
    ) {
        if self.connect_wanted {
            self.connect_wanted = false;
            self.connect_started_ms = now_ms;
            let (remote, local) = (ms, self.local);
            let broadcast = matches!(remote, IpAddr::V4(v4) if v4.is_broadcast());
            if remote.is_ipv4() != local.is_ipv4()
                || remote.is_unspecified()
                || remote.is_multicast()
                || broadcast
            {
                self.down(ms, DownReason::Unsupported, now_ms, events);
                return;
            }
            if !ep.has_address(self.local) {
                self.down(ms, DownReason::NoLocalAddress, now_ms, events);
                return;
            }
            c.connects += 1;
            match ep.connect(local, remote) {
                Some(h) => self.socket = Some(h),
                None => {
                    self.down(ms, DownReason::NoLocalAddress, now_ms, events);
                    return;
                }
            }
        }
        let Some(h) = self.socket else {
            return;
        };
        let tcp_state = ep.state(h);
        match self.state {
            SessionState::Connecting => match tcp_state {
                tcp::State::Established => {
                    self.state = SessionState::Up;
                    self.failures = 0;
                    self.retry_at_ms = 0;
                    self.since_ms = Some(now_ms);
                    self.stream = Stream::new();
                    self.acked.clear();
                    c.sessions_up += 1;
                    events.push(EtrEvent::Up(ms));
                }
                tcp::State::SynSent | tcp::State::SynReceived => {
                    if now_ms.saturating_sub(self.connect_started_ms) >= CONNECT_TIMEOUT_MS {
                        ep.abort(h);
                        c.connect_timeouts += 1;
                        self.down(ms, DownReason::ConnectTimeout, now_ms, events);
                    }
                    return;
                }
                _ => {
                    ep.abort(h);
                    c.connects_refused += 1;
                    self.down(ms, DownReason::Refused, now_ms, events);
                    return;
                }
            },
            SessionState::Up => {}
            SessionState::Down => return,
        }
        if !ep.has_address(self.local) {
            ep.abort(h);
            self.down(ms, DownReason::NoLocalAddress, now_ms, events);
            return;
        }
        let frames = match ep.tcp(h).map(|s| self.stream.pump(s)) {
            Some(Ok(frames)) => frames,
            Some(Err(())) => {
                ep.abort(h);
                c.framing_errors += 1;
                self.down(ms, DownReason::FramingError, now_ms, events);
                return;
            }
            None => Vec::new(),
        };
        for f in frames {
            self.handle(ms, &f, types, c, events);
        }
        match ep.state(h) {
            tcp::State::Established => {}
            tcp::State::CloseWait => {
                ep.close(h);
                self.down(ms, DownReason::PeerClosed, now_ms, events);
            }
            tcp::State::Closed => {
                ep.retire(h);
                c.resets += 1;
                self.down(ms, DownReason::Reset, now_ms, events);
            }
            _ => {
                ep.abort(h);
                self.down(ms, DownReason::Closed, now_ms, events);
            }
        }
    }

    fn handle(
        &mut self,
        ms: IpAddr,
        f: &Frame,
        types: &TypeNumbers,
        c: &mut EtrCounters,
        events: &mut Vec<EtrEvent>,
    ) {
        let Ok(rf) = ReliableFrame::from_frame(f, types) else {
            c.messages_ignored += 1;
            return;
        };
        match rf.message {
            ReliableMessage::RegistrationAck { eid } => match eid.prefix() {
                Some(p) => {
                    c.acks += 1;
                    self.acked.insert(p);
                    events.push(EtrEvent::Acked(ms, p));
                }
                None => c.messages_ignored += 1,
            },
            ReliableMessage::RegistrationNack { reason, eid } => match eid.prefix() {
                Some(p) => {
                    c.nacks += 1;
                    self.acked.remove(&p);
                    events.push(EtrEvent::Rejected(ms, p, reason));
                }
                None => c.messages_ignored += 1,
            },
            ReliableMessage::RegistrationRefresh { .. } => {
                // Every scope is answered with the full state: sending more than asked is safe.
                c.refreshes += 1;
                events.push(EtrEvent::RefreshRequested(ms));
            }
            ReliableMessage::MappingNotification { record, .. } => {
                c.mapping_notifications += 1;
                events.push(EtrEvent::Notified(ms, record));
            }
            ReliableMessage::ErrorNotification { .. } => c.error_notifications += 1,
            ReliableMessage::Registration { .. } | ReliableMessage::Other { .. } => {
                c.messages_ignored += 1
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Map-Server side
// ---------------------------------------------------------------------------------------------

/// What the Map-Server side reports from [`MsSessions::poll`]; peers are the ETRs' endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsEvent {
    /// A session is established (the Registration-Refresh is queued already).
    Up(SocketAddr),
    Down(SocketAddr, DownReason),
    /// One Registration: run `map_register` through `MapServer::register(bytes, peer, true, now)`
    /// and answer with [`MsSessions::ack`] or [`MsSessions::nack`] per EID-prefix.
    Registration {
        peer: SocketAddr,
        message_id: u32,
        map_register: Vec<u8>,
    },
}

/// What the Map-Server side counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MsCounters {
    pub sessions_accepted: u64,
    /// Connections reset because [`MAX_MS_SESSIONS`] sessions exist.
    pub refused_full: u64,
    /// Connections reset because the ETR's UDP registration was not acknowledged first.
    pub refused_not_allowed: u64,
    pub resets: u64,
    pub framing_errors: u64,
    pub registrations: u64,
    pub acks_sent: u64,
    pub nacks_sent: u64,
    /// ack/nack/notify calls refused (no such session up, or its queue is full).
    pub sends_refused: u64,
    pub error_notifications: u64,
    /// Messages that decoded to nothing a Map-Server expects, or did not decode.
    pub messages_ignored: u64,
}

#[derive(Debug)]
struct MsSession {
    socket: SocketHandle,
    state: SessionState,
    accepted_ms: u64,
    since_ms: Option<u64>,
    stream: Stream,
    prefixes: BTreeSet<Prefix>,
}

/// The Map-Server's sessions: listeners on port 4342 of every local address, admission, the
/// messages of every session.
#[derive(Debug)]
pub struct MsSessions {
    enabled: bool,
    endpoint: Option<u64>,
    listeners: Vec<SocketHandle>,
    sessions: BTreeMap<SocketAddr, MsSession>,
    /// ETR address → when its UDP registration was last acknowledged.
    allowed: BTreeMap<IpAddr, u64>,
    max_sessions: usize,
    types: TypeNumbers,
    counters: MsCounters,
}

impl Default for MsSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl MsSessions {
    /// Enabled, at most [`MAX_MS_SESSIONS`] sessions.
    pub fn new() -> Self {
        Self {
            enabled: true,
            endpoint: None,
            listeners: Vec::new(),
            sessions: BTreeMap::new(),
            allowed: BTreeMap::new(),
            max_sessions: MAX_MS_SESSIONS,
            types: TypeNumbers::default(),
            counters: MsCounters::default(),
        }
    }

    /// Lowers (or raises) the session limit (at most [`MAX_MS_SESSIONS`]).
    pub fn set_max_sessions(&mut self, n: usize) {
        self.max_sessions = n.min(MAX_MS_SESSIONS);
    }

    pub fn set_type_numbers(&mut self, t: TypeNumbers) {
        self.types = t;
    }

    /// `false`: no listener at all (a Map-Server without reliable transport: the stack resets
    /// every connection attempt); existing sessions are closed on the next poll.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The Map-Server acknowledged a UDP Map-Register from `etr` (sent a Map-Notify): a session
    /// from that address is accepted during the next [`ALLOW_LIFETIME_MS`].
    pub fn allow(&mut self, etr: IpAddr, now_ms: u64) {
        if !self.allowed.contains_key(&etr) && self.allowed.len() >= MAX_ALLOWED {
            self.allowed
                .retain(|_, t| now_ms.saturating_sub(*t) < ALLOW_LIFETIME_MS);
            if self.allowed.len() >= MAX_ALLOWED
                && let Some(oldest) = self
                    .allowed
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(a, _)| *a)
            {
                self.allowed.remove(&oldest);
            }
        }
        self.allowed.insert(etr, now_ms);
    }

    fn is_allowed(&self, etr: IpAddr, now_ms: u64) -> bool {
        self.allowed
            .get(&etr)
            .is_some_and(|t| now_ms.saturating_sub(*t) < ALLOW_LIFETIME_MS)
    }

    /// Registration-ACK for `prefix` on the session with `peer`, with the Registration's
    /// `message_id` (echoed so that the ETR can correlate; the EID-prefix says what is acked).
    pub fn ack(&mut self, peer: SocketAddr, message_id: u32, prefix: Prefix) -> bool {
        let sent = self.send(
            peer,
            Some(message_id),
            ReliableMessage::RegistrationAck {
                eid: EidPrefix::from_prefix(prefix),
            },
        );
        if sent {
            self.counters.acks_sent += 1;
            if let Some(s) = self.sessions.get_mut(&peer) {
                s.prefixes.insert(prefix);
            }
        }
        sent
    }

    /// Registration-NACK ("Reject") for `prefix` with `reason`.
    pub fn nack(
        &mut self,
        peer: SocketAddr,
        message_id: u32,
        prefix: Prefix,
        reason: RejectReason,
    ) -> bool {
        let sent = self.send(
            peer,
            Some(message_id),
            ReliableMessage::RegistrationNack {
                reason,
                eid: EidPrefix::from_prefix(prefix),
            },
        );
        if sent {
            self.counters.nacks_sent += 1;
            if let Some(s) = self.sessions.get_mut(&peer) {
                s.prefixes.remove(&prefix);
            }
        }
        sent
    }

    /// Mapping-Notification of `record` to `peer`.
    pub fn notify(
        &mut self,
        peer: SocketAddr,
        xtr_id: [u8; 16],
        site_id: u64,
        record: EidRecord,
    ) -> bool {
        self.send(
            peer,
            None,
            ReliableMessage::MappingNotification {
                xtr_id,
                site_id,
                record,
            },
        )
    }

    /// Asks `peer` for its full state again (Registration-Refresh, scope 0).
    pub fn refresh(&mut self, peer: SocketAddr) -> bool {
        self.send(peer, None, refresh_all())
    }

    fn send(&mut self, peer: SocketAddr, id: Option<u32>, message: ReliableMessage) -> bool {
        let types = self.types;
        let sent = match self.sessions.get_mut(&peer) {
            Some(s) if s.state == SessionState::Up => {
                let id = id.unwrap_or_else(|| s.stream.take_id());
                s.stream.queue(id, message, &types)
            }
            _ => false,
        };
        if !sent {
            self.counters.sends_refused += 1;
        }
        sent
    }

    /// The ETR endpoints with an established session.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.state == SessionState::Up)
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn is_up(&self, peer: SocketAddr) -> bool {
        self.sessions
            .get(&peer)
            .is_some_and(|s| s.state == SessionState::Up)
    }

    /// Runs the listeners and sessions on `ep` (polled before and after) and reports.
    pub fn poll(&mut self, ep: &mut TcpEndpoint, now_ms: u64, events: &mut Vec<MsEvent>) {
        if self.endpoint != Some(ep.id) {
            if self.endpoint.is_some() {
                self.listeners.clear();
                for (peer, s) in std::mem::take(&mut self.sessions) {
                    if s.state == SessionState::Up {
                        events.push(MsEvent::Down(peer, DownReason::EndpointChanged));
                    }
                }
            }
            self.endpoint = Some(ep.id);
        }
        ep.poll(now_ms);
        if self.enabled {
            self.admit(ep, now_ms);
        } else {
            for h in self.listeners.drain(..) {
                ep.abort(h);
            }
            for (peer, s) in std::mem::take(&mut self.sessions) {
                ep.close(s.socket);
                if s.state == SessionState::Up {
                    events.push(MsEvent::Down(peer, DownReason::Closed));
                }
            }
        }
        self.step_sessions(ep, now_ms, events);
        ep.poll(now_ms);
    }

    /// Admits (or resets) the connections the listeners took, and refills the pool.
    fn admit(&mut self, ep: &mut TcpEndpoint, now_ms: u64) {
        let mut idle = Vec::new();
        for h in std::mem::take(&mut self.listeners) {
            let Some((state, remote)) = ep.tcp(h).map(|s| (s.state(), s.remote_endpoint())) else {
                continue;
            };
            match (state, remote) {
                (tcp::State::Listen, _) => idle.push(h),
                (tcp::State::SynReceived, Some(remote)) => {
                    let peer = SocketAddr::from(remote);
                    if self.sessions.len() >= self.max_sessions {
                        self.counters.refused_full += 1;
                        ep.abort(h);
                    } else if !self.is_allowed(peer.ip(), now_ms)
                        || self.sessions.contains_key(&peer)
                    {
                        self.counters.refused_not_allowed += 1;
                        ep.abort(h);
                    } else {
                        if let Some(s) = ep.tcp(h) {
                            s.pause_synack(false);
                        }
                        self.sessions.insert(
                            peer,
                            MsSession {
                                socket: h,
                                state: SessionState::Connecting,
                                accepted_ms: now_ms,
                                since_ms: None,
                                stream: Stream::new(),
                                prefixes: BTreeSet::new(),
                            },
                        );
                    }
                }
                _ => ep.abort(h),
            }
        }
        self.listeners = idle;
        while self.listeners.len() < LISTEN_POOL {
            match ep.listen() {
                Some(h) => self.listeners.push(h),
                None => break,
            }
        }
    }

    fn step_sessions(&mut self, ep: &mut TcpEndpoint, now_ms: u64, events: &mut Vec<MsEvent>) {
        let types = self.types;
        let mut gone: Vec<(SocketAddr, Option<DownReason>)> = Vec::new();
        let mut came_up = Vec::new();
        for (peer, s) in &mut self.sessions {
            let h = s.socket;
            let local_ok = ep
                .tcp(h)
                .and_then(|t| t.local_endpoint())
                .is_none_or(|l| ep.has_address(IpAddr::from(l.addr)));
            if s.state == SessionState::Connecting {
                match ep.state(h) {
                    tcp::State::Established => {
                        s.state = SessionState::Up;
                        s.since_ms = Some(now_ms);
                        let id = s.stream.take_id();
                        s.stream.queue(id, refresh_all(), &types);
                        self.counters.sessions_accepted += 1;
                        came_up.push(*peer);
                        events.push(MsEvent::Up(*peer));
                    }
                    tcp::State::SynReceived
                        if now_ms.saturating_sub(s.accepted_ms) < CONNECT_TIMEOUT_MS =>
                    {
                        continue;
                    }
                    _ => {
                        ep.abort(h);
                        gone.push((*peer, None));
                        continue;
                    }
                }
            }
            if !local_ok {
                ep.abort(h);
                gone.push((*peer, Some(DownReason::NoLocalAddress)));
                continue;
            }
            let frames = match ep.tcp(h).map(|t| s.stream.pump(t)) {
                Some(Ok(frames)) => frames,
                Some(Err(())) => {
                    ep.abort(h);
                    self.counters.framing_errors += 1;
                    gone.push((*peer, Some(DownReason::FramingError)));
                    continue;
                }
                None => Vec::new(),
            };
            for f in frames {
                match ReliableFrame::from_frame(&f, &types).map(|rf| (rf.msg_id, rf.message)) {
                    Ok((message_id, ReliableMessage::Registration { map_register })) => {
                        self.counters.registrations += 1;
                        events.push(MsEvent::Registration {
                            peer: *peer,
                            message_id,
                            map_register,
                        });
                    }
                    Ok((_, ReliableMessage::ErrorNotification { .. })) => {
                        self.counters.error_notifications += 1
                    }
                    _ => self.counters.messages_ignored += 1,
                }
            }
            match ep.state(h) {
                tcp::State::Established => {}
                tcp::State::CloseWait => {
                    ep.close(h);
                    gone.push((*peer, Some(DownReason::PeerClosed)));
                }
                tcp::State::Closed => {
                    ep.retire(h);
                    self.counters.resets += 1;
                    gone.push((*peer, Some(DownReason::Reset)));
                }
                _ => {
                    ep.abort(h);
                    gone.push((*peer, Some(DownReason::Closed)));
                }
            }
        }
        // One session per ETR: a new one replaces the older sessions from the same address.
        for new in came_up {
            for (peer, s) in &self.sessions {
                if *peer != new
                    && peer.ip() == new.ip()
                    && s.state == SessionState::Up
                    && !gone.iter().any(|(g, _)| g == peer)
                {
                    ep.abort(s.socket);
                    gone.push((*peer, Some(DownReason::Replaced)));
                }
            }
        }
        for (peer, reason) in gone {
            if let Some(s) = self.sessions.remove(&peer)
                && s.state == SessionState::Up
                && let Some(reason) = reason
            {
                events.push(MsEvent::Down(peer, reason));
            }
        }
    }

    /// `show lisp session` rows: established sessions, oldest first.
    pub fn rows(&self, now_ms: u64) -> Vec<SessionRow> {
        let mut rows: Vec<SessionRow> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.state == SessionState::Up)
            .map(|(peer, s)| SessionRow {
                peer: *peer,
                state: s.state,
                since_ms: s.since_ms,
                age_ms: s.since_ms.map(|t| now_ms.saturating_sub(t)),
                messages_in: s.stream.messages_in,
                messages_out: s.stream.messages_out,
                users: s.prefixes.len().max(1),
                last_down: None,
                failures: 0,
                retry_in_ms: None,
            })
            .collect();
        rows.sort_by_key(|r| (r.since_ms, r.peer));
        rows
    }

    pub fn counters(&self) -> MsCounters {
        self.counters
    }
}

fn refresh_all() -> ReliableMessage {
    ReliableMessage::RegistrationRefresh {
        scope: RefreshScope::All,
        rejected_only: false,
        eid: None,
    }
}

// ---------------------------------------------------------------------------------------------
// show lisp session
// ---------------------------------------------------------------------------------------------

/// `text` left-aligned in `width` columns, always followed by at least one space.
fn column(out: &mut String, text: &str, width: usize) {
    out.push_str(text);
    let pad = width.saturating_sub(text.chars().count()).max(1);
    out.extend(std::iter::repeat_n(' ', pad));
}

/// `show lisp session` in the layout of seed 003 (IOS): peers as addresses, `Up/Down` the time
/// since the last change (`hh:mm:ss` below a day, `never` when never established), `In/Out` the
/// messages received/sent, `Users` the EID-prefixes registered over the session.
pub fn render_sessions(rows: &[SessionRow], now_ms: u64) -> String {
    let established = rows.iter().filter(|r| r.state == SessionState::Up).count();
    let mut out = format!(
        "Sessions for VRF default, total: {}, established: {established}\n",
        rows.len()
    );
    out.push_str("Peer                State    Up/Down    In/Out    Users\n");
    for r in rows {
        let updown = r.since_ms.map_or_else(
            || "never".to_string(),
            |t| crate::show::age(now_ms.saturating_sub(t) / 1000),
        );
        column(&mut out, &r.peer.ip().to_string(), 19);
        column(&mut out, &r.state.to_string(), 9);
        column(&mut out, &updown, 11);
        column(
            &mut out,
            &format!("{}/{}", r.messages_in, r.messages_out),
            10,
        );
        out.push_str(&format!("{}\n", r.users));
    }
    // Map-servers that keep refusing: why, how often, and when the ETR tries again.
    for r in rows
        .iter()
        .filter(|r| r.failures > 0 && r.state == SessionState::Down)
    {
        let why = match r.last_down {
            Some(DownReason::ConnectTimeout) => "not answered",
            _ => "refused",
        };
        let count = if r.failures == 1 {
            "once".to_string()
        } else {
            format!("{} times in a row", r.failures)
        };
        let next = r.retry_in_ms.map_or_else(
            || "at the next acknowledged registration".to_string(),
            |ms| format!("in {}", crate::show::age(ms.div_ceil(1000))),
        );
        out.push_str(&format!(
            "  {}: {why} {count}, next try {next}\n",
            r.peer.ip()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETR: &str = "203.0.113.11";
    const MS: &str = "209.165.201.31";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    struct Pair {
        now: u64,
        a: TcpEndpoint,
        b: TcpEndpoint,
        etr: EtrSessions,
        ms: MsSessions,
        etr_events: Vec<EtrEvent>,
        ms_events: Vec<MsEvent>,
    }

    impl Pair {
        fn new() -> Self {
            let mut a = TcpEndpoint::new(1, 0);
            a.set_addresses(&[ip(ETR)]);
            let mut b = TcpEndpoint::new(2, 0);
            b.set_addresses(&[ip(MS)]);
            Self {
                now: 0,
                a,
                b,
                etr: EtrSessions::new(),
                ms: MsSessions::new(),
                etr_events: Vec::new(),
                ms_events: Vec::new(),
            }
        }

        fn run(&mut self, ms: u64) {
            for _ in 0..ms / 10 {
                self.now += 10;
                self.etr.poll(&mut self.a, self.now, &mut self.etr_events);
                self.ms.poll(&mut self.b, self.now, &mut self.ms_events);
                let mut out = Vec::new();
                self.a.drain_ip(&mut out);
                for p in &out {
                    self.b.receive_ip(p);
                }
                out.clear();
                self.b.drain_ip(&mut out);
                for p in &out {
                    self.a.receive_ip(p);
                }
            }
        }

        fn up() -> (Self, SocketAddr) {
            let mut p = Self::new();
            p.ms.allow(ip(ETR), 0);
            p.etr.open(ip(MS), ip(ETR), 0);
            p.run(200);
            assert!(p.etr.is_up(ip(MS)));
            let peers = p.ms.peers();
            assert_eq!(peers.len(), 1);
            (p, peers[0])
        }
    }

    /// Type 17, Length 8, then not the end marker.
    const GARBAGE: [u8; 8] = [0x00, 0x11, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef];

    #[test]
    fn garbage_from_the_map_server_resets_the_session() {
        let (mut p, peer) = Pair::up();
        let s = p.ms.sessions.get_mut(&peer).unwrap();
        assert!(s.stream.queue_raw(&GARBAGE));
        p.run(100);
        assert_eq!(
            p.etr_events.last(),
            Some(&EtrEvent::Down(ip(MS), DownReason::FramingError))
        );
        assert_eq!(p.etr.counters().framing_errors, 1);
        assert_eq!(
            p.ms_events.last(),
            Some(&MsEvent::Down(peer, DownReason::Reset))
        );
        assert!(p.ms.rows(p.now).is_empty());
        // Next acknowledged UDP register: a new session with a fresh decoder.
        p.ms.allow(ip(ETR), p.now);
        p.etr.open(ip(MS), ip(ETR), p.now);
        p.run(200);
        assert!(p.etr.is_up(ip(MS)));
    }

    #[test]
    fn garbage_from_the_etr_resets_the_session() {
        let (mut p, peer) = Pair::up();
        let s = p.etr.sessions.get_mut(&ip(MS)).unwrap();
        assert!(s.stream.queue_raw(&GARBAGE));
        p.run(100);
        assert_eq!(
            p.ms_events.last(),
            Some(&MsEvent::Down(peer, DownReason::FramingError))
        );
        assert_eq!(p.ms.counters().framing_errors, 1);
        assert_eq!(
            p.etr_events.last(),
            Some(&EtrEvent::Down(ip(MS), DownReason::Reset))
        );
    }

    #[test]
    fn etr_close_is_seen_by_the_map_server() {
        let (mut p, peer) = Pair::up();
        p.etr.close(&mut p.a, ip(MS));
        assert_eq!(p.etr.state(ip(MS)), None);
        p.run(100);
        assert_eq!(
            p.ms_events.last(),
            Some(&MsEvent::Down(peer, DownReason::PeerClosed))
        );
        assert!(
            p.etr_events
                .iter()
                .all(|e| !matches!(e, EtrEvent::Down(..)))
        );
    }

    #[test]
    fn a_new_session_from_the_same_etr_replaces_the_old_one() {
        let (mut p, old) = Pair::up();
        // The ETR restarts: new stack, same address; the old session lingers on the MS.
        let mut a = TcpEndpoint::new(5, p.now);
        a.set_addresses(&[ip(ETR)]);
        p.a = a;
        p.etr = EtrSessions::new();
        p.ms.allow(ip(ETR), p.now);
        p.etr.open(ip(MS), ip(ETR), p.now);
        p.run(200);
        assert!(p.etr.is_up(ip(MS)));
        let peers = p.ms.peers();
        assert_eq!(peers.len(), 1);
        assert_ne!(peers[0], old);
        assert!(
            p.ms_events
                .contains(&MsEvent::Down(old, DownReason::Replaced))
        );
    }

    #[test]
    fn local_address_removed_takes_the_session_down() {
        let (mut p, _) = Pair::up();
        p.a.set_addresses(&[]);
        p.run(20);
        assert_eq!(
            p.etr_events.last(),
            Some(&EtrEvent::Down(ip(MS), DownReason::NoLocalAddress))
        );
        // Opening from an address that is not ours fails at once.
        p.etr.open(ip(MS), ip(ETR), p.now);
        p.run(20);
        assert_eq!(
            p.etr_events.last(),
            Some(&EtrEvent::Down(ip(MS), DownReason::NoLocalAddress))
        );
    }

    #[test]
    fn xtr_and_map_server_on_one_switch_talk_over_loopback() {
        let mut ep = TcpEndpoint::new(4, 0);
        ep.set_addresses(&[ip(ETR), ip(MS)]);
        let (mut etr, mut ms) = (EtrSessions::new(), MsSessions::new());
        let (mut ev, mut mev) = (Vec::new(), Vec::new());
        // The Map-Server listens before the xTR's first UDP register is acknowledged.
        ms.poll(&mut ep, 0, &mut mev);
        ms.allow(ip(ETR), 0);
        etr.open(ip(MS), ip(ETR), 0);
        let mut out = Vec::new();
        for now in 1..=20 {
            etr.poll(&mut ep, now * 10, &mut ev);
            ms.poll(&mut ep, now * 10, &mut mev);
            ep.drain_ip(&mut out);
        }
        assert!(out.is_empty());
        assert!(etr.is_up(ip(MS)), "{ev:?} {mev:?} {:?}", ms.counters());
        assert!(ev.contains(&EtrEvent::RefreshRequested(ip(MS))));
        assert_eq!(ms.peers().len(), 1);
        assert!(ep.counters().looped_back >= 4);
    }

    #[test]
    fn a_session_over_ipv6_comes_up_and_carries_registrations() {
        let (etr, ms) = (ip("2001:db8::2"), ip("2001:db8::1"));
        let mut p = Pair::new();
        p.a.set_addresses(&[ip(ETR), etr]);
        p.b.set_addresses(&[ip(MS), ms]);
        p.ms.allow(etr, 0);
        p.etr.open(ms, etr, 0);
        p.run(200);
        assert!(p.etr.is_up(ms), "{:?}", p.etr_events);
        let peers = p.ms.peers();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].ip(), etr);
        // Bytes flow both ways: the map-server acknowledges a registration.
        p.ms.ack(peers[0], 1, "10.1.0.0/24".parse().unwrap());
        p.run(100);
        assert!(
            p.etr_events
                .iter()
                .any(|e| matches!(e, EtrEvent::Acked(m, _) if *m == ms)),
            "{:?}",
            p.etr_events
        );
    }

    #[test]
    fn a_session_across_address_families_is_unsupported() {
        let mut p = Pair::new();
        p.etr.open(ip("2001:db8::1"), ip(ETR), 0);
        p.run(20);
        assert_eq!(
            p.etr_events,
            vec![EtrEvent::Down(ip("2001:db8::1"), DownReason::Unsupported)]
        );
    }

    #[test]
    fn another_endpoint_invalidates_the_sockets() {
        let (mut p, _) = Pair::up();
        let mut other = TcpEndpoint::new(9, p.now);
        other.set_addresses(&[ip(ETR)]);
        let mut ev = Vec::new();
        p.etr.poll(&mut other, p.now, &mut ev);
        assert_eq!(
            ev,
            vec![EtrEvent::Down(ip(MS), DownReason::EndpointChanged)]
        );
        let mut mev = Vec::new();
        p.ms.poll(&mut other, p.now, &mut mev);
        assert!(matches!(
            mev.as_slice(),
            [MsEvent::Down(_, DownReason::EndpointChanged)]
        ));
    }

    #[test]
    fn endpoint_takes_only_tcp_to_its_addresses() {
        let mut ep = TcpEndpoint::new(0, 0);
        ep.set_addresses(&[ip(MS), ip("2001:db8::1")]);
        assert_eq!(ep.addresses(), vec![ip(MS), ip("2001:db8::1")]);
        let mut pkt = vec![0u8; 40];
        pkt[0] = 0x45;
        pkt[2..4].copy_from_slice(&40u16.to_be_bytes());
        pkt[9] = 6;
        pkt[16..20].copy_from_slice(&[209, 165, 201, 31]);
        assert!(ep.accepts(&pkt));
        let mut udp = pkt.clone();
        udp[9] = 17;
        assert!(!ep.accepts(&udp));
        let mut other = pkt.clone();
        other[19] = 32;
        assert!(!ep.accepts(&other));
        assert!(!ep.accepts(&pkt[..30]));
        assert!(!ep.accepts(&[0x60; 40]));
        // IPv6: TCP to our IPv6 address, without extension headers.
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&20u16.to_be_bytes());
        v6[6] = 6;
        v6[24..40].copy_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        assert!(ep.accepts(&v6));
        let mut v6_other = v6.clone();
        v6_other[39] = 2;
        assert!(!ep.accepts(&v6_other));
        let mut hop_by_hop = v6.clone();
        hop_by_hop[6] = 0;
        assert!(!ep.accepts(&hop_by_hop));
        assert!(!ep.accepts(&v6[..50]));
        for _ in 0..PACKET_QUEUE_LIMIT {
            assert!(ep.receive_ip(&pkt));
        }
        assert!(!ep.receive_ip(&pkt));
        assert!(!ep.receive_ip(&udp));
        let c = ep.counters();
        assert_eq!(
            (c.rx_packets, c.rx_dropped_full, c.rx_dropped_not_ours),
            (PACKET_QUEUE_LIMIT as u64, 1, 1)
        );
    }

    #[test]
    fn allow_list_is_bounded() {
        let mut ms = MsSessions::new();
        for i in 0..=MAX_ALLOWED as u32 {
            ms.allow(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), u64::from(i));
        }
        assert_eq!(ms.allowed.len(), MAX_ALLOWED);
        assert!(!ms.is_allowed(ip("10.0.0.0"), MAX_ALLOWED as u64));
        assert!(ms.is_allowed(ip("10.0.0.1"), MAX_ALLOWED as u64));
        assert!(!ms.is_allowed(ip("10.0.0.1"), 1 + ALLOW_LIFETIME_MS));
    }

    #[test]
    fn render_pads_long_fields_with_one_space() {
        let row = SessionRow {
            peer: "[2001:db8:1234:5678::1]:4342".parse().unwrap(),
            state: SessionState::Connecting,
            since_ms: Some(0),
            age_ms: None,
            messages_in: 1_234_567,
            messages_out: 7_654_321,
            users: 1,
            last_down: None,
            failures: 0,
            retry_in_ms: None,
        };
        assert_eq!(
            render_sessions(&[row], 2 * 86_400_000),
            "Sessions for VRF default, total: 1, established: 0\n\
             Peer                State    Up/Down    In/Out    Users\n\
             2001:db8:1234:5678::1 Connecting 2d00h      1234567/7654321 1\n"
        );
    }
}
