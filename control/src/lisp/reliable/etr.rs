//! The ETR side of the reliable transport: one session to each map-server.

use super::*;

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
pub(super) struct EtrSession {
    pub(super) local: IpAddr,
    pub(super) state: SessionState,
    pub(super) socket: Option<SocketHandle>,
    pub(super) connect_wanted: bool,
    pub(super) connect_started_ms: u64,
    pub(super) since_ms: Option<u64>,
    pub(super) stream: Stream,
    pub(super) acked: BTreeSet<Prefix>,
    pub(super) last_down: Option<DownReason>,
    /// Attempts refused or unanswered in a row.
    pub(super) failures: u32,
    /// No attempt before this ([`retry_backoff_ms`]).
    pub(super) retry_at_ms: u64,
}

/// The ETR's sessions, one per map-server (the ETR is always the client).
#[derive(Debug)]
pub struct EtrSessions {
    pub(super) sessions: BTreeMap<IpAddr, EtrSession>,
    pub(super) endpoint: Option<u64>,
    pub(super) types: TypeNumbers,
    pub(super) counters: EtrCounters,
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
    pub(super) fn down(
        &mut self,
        ms: IpAddr,
        reason: DownReason,
        now_ms: u64,
        events: &mut Vec<EtrEvent>,
    ) {
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

    pub(super) fn step(
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

    pub(super) fn handle(
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
