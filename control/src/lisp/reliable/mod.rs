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

mod endpoint;
mod etr;
mod ms;
mod render;
pub use endpoint::{EndpointCounters, TcpEndpoint};
pub use etr::{EtrCounters, EtrEvent, EtrSessions};
pub use ms::{MsCounters, MsEvent, MsSessions};
pub use render::render_sessions;

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

#[cfg(test)]
mod tests;
