//! The Map-Server side of the reliable transport: sessions accepted from allowed ETRs.

use super::*;

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
pub(super) struct MsSession {
    pub(super) socket: SocketHandle,
    pub(super) state: SessionState,
    pub(super) accepted_ms: u64,
    pub(super) since_ms: Option<u64>,
    pub(super) stream: Stream,
    pub(super) prefixes: BTreeSet<Prefix>,
}

/// The Map-Server's sessions: listeners on port 4342 of every local address, admission, the
/// messages of every session.
#[derive(Debug)]
pub struct MsSessions {
    pub(super) enabled: bool,
    pub(super) endpoint: Option<u64>,
    pub(super) listeners: Vec<SocketHandle>,
    pub(super) sessions: BTreeMap<SocketAddr, MsSession>,
    /// ETR address → when its UDP registration was last acknowledged.
    pub(super) allowed: BTreeMap<IpAddr, u64>,
    pub(super) max_sessions: usize,
    pub(super) types: TypeNumbers,
    pub(super) counters: MsCounters,
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

    pub(super) fn is_allowed(&self, etr: IpAddr, now_ms: u64) -> bool {
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

    pub(super) fn send(
        &mut self,
        peer: SocketAddr,
        id: Option<u32>,
        message: ReliableMessage,
    ) -> bool {
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
    pub(super) fn admit(&mut self, ep: &mut TcpEndpoint, now_ms: u64) {
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

    pub(super) fn step_sessions(
        &mut self,
        ep: &mut TcpEndpoint,
        now_ms: u64,
        events: &mut Vec<MsEvent>,
    ) {
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

pub(super) fn refresh_all() -> ReliableMessage {
    ReliableMessage::RegistrationRefresh {
        scope: RefreshScope::All,
        rejected_only: false,
        eid: None,
    }
}
