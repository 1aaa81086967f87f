//! The TCP endpoint: smoltcp over an in-memory device that the daemon feeds with IP packets.

use super::*;

// ---------------------------------------------------------------------------------------------
// The in-memory device
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
pub(super) struct QueueDevice {
    pub(super) rx: VecDeque<Vec<u8>>,
    pub(super) tx: VecDeque<Vec<u8>>,
    pub(super) tx_dropped: u64,
}

pub(super) struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

pub(super) struct TxToken<'a> {
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
    pub(super) id: u64,
    pub(super) iface: Interface,
    pub(super) device: QueueDevice,
    pub(super) sockets: SocketSet<'static>,
    /// Sockets of this endpoint (a handle from elsewhere is never used on it).
    pub(super) owned: BTreeSet<SocketHandle>,
    /// Closed or closing sockets, released when their handshake is over or at the deadline.
    pub(super) retired: Vec<(SocketHandle, u64)>,
    pub(super) addresses: BTreeSet<IpAddr>,
    pub(super) next_port: u16,
    pub(super) now_ms: u64,
    pub(super) counters: EndpointCounters,
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

    pub(super) fn new_socket(&mut self) -> SocketHandle {
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

    pub(super) fn tcp(&mut self, h: SocketHandle) -> Option<&mut tcp::Socket<'static>> {
        if self.owned.contains(&h) {
            Some(self.sockets.get_mut::<tcp::Socket<'static>>(h))
        } else {
            None
        }
    }

    pub(super) fn state(&mut self, h: SocketHandle) -> tcp::State {
        self.tcp(h).map_or(tcp::State::Closed, |s| s.state())
    }

    pub(super) fn next_ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            p + 1
        };
        p
    }

    /// Opens a client socket from `local` to `remote:RELIABLE_PORT`.
    pub(super) fn connect(&mut self, local: IpAddr, remote: IpAddr) -> Option<SocketHandle> {
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
    pub(super) fn listen(&mut self) -> Option<SocketHandle> {
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

    pub(super) fn remove_socket(&mut self, h: SocketHandle) {
        if self.owned.remove(&h) {
            self.sockets.remove(h);
        }
    }

    /// Resets the connection (one RST is sent on the next poll) and releases the socket.
    pub(super) fn abort(&mut self, h: SocketHandle) {
        if let Some(s) = self.tcp(h) {
            s.abort();
        }
        self.retire(h);
    }

    /// Closes our half (FIN) and releases the socket once the handshake is over.
    pub(super) fn close(&mut self, h: SocketHandle) {
        if let Some(s) = self.tcp(h) {
            s.close();
        }
        self.retire(h);
    }

    pub(super) fn retire(&mut self, h: SocketHandle) {
        if self.owned.contains(&h) && !self.retired.iter().any(|(r, _)| *r == h) {
            self.retired
                .push((h, self.now_ms.saturating_add(RETIRE_MS)));
        }
    }

    pub(super) fn release_retired(&mut self) {
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
pub(super) fn tcp_destination(packet: &[u8]) -> Option<IpAddr> {
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
