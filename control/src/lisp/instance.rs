//! The LISP instance: the Map-Server/Map-Resolver and the xTR with their reliable-registration
//! sessions, fed by the LISP control frames the data plane punts (UDP 4342 and TCP 4342 to one of
//! our addresses), by its events (dynamic EID seen, map-cache miss, EID not here, no route) and by
//! timer ticks: one [`LispInput`] at a time through [`LispInstance::handle`]. What it sends leaves
//! through an [`Outbox`] as IPv4/UDP or IPv6/UDP packets that the data plane routes; what it
//! learns goes into the data plane's tables through the same outbox. Sans-IO: the daemon runs it
//! as one task with one inbox; tests drive it with recorded inputs.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use roamer_hal::{HalEvent, InjectTarget, Mac, Punt, PuntReason};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::lisp::frames::{
    Datagram, ETH_LEN, site_notify_frame, udp_frame_into, udp_to_control_port,
};
use crate::lisp::map_server::{MapServer, Resolution, SiteRow};
use crate::lisp::nonce::Nonces;
use crate::lisp::reliable::{
    EtrEvent, EtrSessions, MsEvent, MsSessions, SessionRow, SessionState, TcpEndpoint,
};
use crate::lisp::request_limit::RequestLimit;
use crate::lisp::xtr::{self, Xtr};
use crate::outbox::Outbox;
use crate::reconcile::system_mac;
use crate::show::{AwayRow, DynamicEidRow, MapCacheRow};
use crate::wire::lisp::MapRegister;
use crate::wire::lisp::{LISP_CONTROL_PORT, MessageType};

/// One message in the LISP instance's inbox (borrowed: punt buffers go back to the data plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LispInput<'a> {
    /// A punted frame (LISP control, reliable-registration TCP).
    Punt(&'a Punt),
    /// A data-plane event (dynamic EID seen, map-cache miss, EID not here, no route).
    Event(&'a HalEvent),
    /// The timers are due: registrations, retransmissions, expiry, TCP.
    Tick,
}

/// The LISP roles the configuration asks for, as one instance.
#[derive(Debug)]
pub struct LispInstance {
    map_server: Option<MapServer>,
    /// `ip lisp map-resolver`: Encapsulated Map-Requests are answered or forwarded here.
    resolver: bool,
    xtr: Option<Xtr>,
    epoch: Instant,
    last_expiry_ms: u64,
    out: Vec<xtr::Output>,
    /// Our SVIs' MAC (source of site-based Map-Notify frames).
    router_mac: Mac,
    /// Reliable registration (TCP 4342) over a userspace TCP stack: our addresses are not
    /// the kernel's.
    tcp: TcpEndpoint,
    etr_sessions: EtrSessions,
    ms_sessions: MsSessions,
    etr_events: Vec<EtrEvent>,
    ms_events: Vec<MsEvent>,
    ip_out: Vec<Vec<u8>>,
    request_limit: RequestLimit,
}

impl Default for LispInstance {
    fn default() -> Self {
        LispInstance {
            map_server: None,
            resolver: false,
            xtr: None,
            epoch: Instant::now(),
            last_expiry_ms: 0,
            out: Vec::new(),
            router_mac: Mac([0; 6]),
            tcp: TcpEndpoint::new(Nonces::default().fresh(), 0),
            etr_sessions: EtrSessions::new(),
            ms_sessions: MsSessions::new(),
            etr_events: Vec::new(),
            ms_events: Vec::new(),
            ip_out: Vec::new(),
            request_limit: RequestLimit::default(),
        }
    }
}

impl LispInstance {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Handles one input of the inbox.
    pub fn handle(&mut self, input: LispInput<'_>, out: &mut dyn Outbox) {
        match input {
            LispInput::Punt(p) => self.punt(p, out),
            LispInput::Event(e) => self.event(e, out),
            LispInput::Tick => self.tick(out),
        }
    }

    /// Before the forwarding core moves to `cfg`: table rows the xTR holds that `cfg` gives
    /// back to the configuration are released first.
    pub fn prepare(&mut self, cfg: &Config, out: &mut dyn Outbox) {
        if let Some(x) = self.xtr.as_mut() {
            x.release_remapped(cfg, &mut self.out);
            self.carry_out(out);
        }
    }

    /// Starts, changes or stops the Map-Server and the xTR as the configuration says (after
    /// the forwarding core moved to it).
    pub fn sync(&mut self, cfg: &Config, out: &mut dyn Outbox) {
        let now = self.now_ms();
        self.router_mac = system_mac(&cfg.hostname);
        self.tcp.set_addresses(&cfg.live_addresses());
        let wanted = cfg.features.lisp && (cfg.lisp.ipv4.map_server || cfg.lisp.ipv6.map_server);
        self.resolver =
            cfg.features.lisp && (cfg.lisp.ipv4.map_resolver || cfg.lisp.ipv6.map_resolver);
        match (&mut self.map_server, wanted) {
            (Some(ms), true) => ms.reconfigure(cfg),
            (None, true) => {
                info!(sites = cfg.lisp.site.len(), "map-server started");
                let mut ms = MapServer::new(cfg);
                ms.started(now);
                self.map_server = Some(ms);
            }
            (Some(_), false) => {
                info!("map-server stopped");
                self.map_server = None;
            }
            (None, false) => {}
        }
        self.ms_sessions
            .set_enabled(self.map_server.is_some() && !cfg.lisp.reliable_registration_disabled);
        match (&mut self.xtr, Xtr::wanted(cfg)) {
            (Some(x), true) => x.reconfigure(cfg, now, &mut self.out),
            (None, true) => {
                info!("xTR started");
                self.xtr = Some(Xtr::new(cfg, now));
            }
            (Some(_), false) => {
                info!("xTR stopped");
                self.xtr = None;
            }
            (None, false) => {}
        }
        self.carry_out(out);
    }

    /// A punted LISP control frame.
    fn punt(&mut self, punt: &Punt, out: &mut dyn Outbox) {
        if matches!(punt.reason, PuntReason::LispControl | PuntReason::ForUs)
            && let Some(ip) = punt.frame.get(ETH_LEN..)
            && self.tcp.accepts(ip)
        {
            // A segment of a reliable registration session (to 4342, or from it to an ETR).
            self.tcp.receive_ip(ip);
            self.poll_sessions(out);
            return;
        }
        if punt.reason != PuntReason::LispControl {
            return;
        }
        let now = self.now_ms();
        let Some(Datagram {
            src,
            dst,
            sport,
            payload,
        }) = udp_to_control_port(&punt.frame)
        else {
            return;
        };
        let from = SocketAddr::new(src, sport);
        if let IpAddr::V4(dst) = dst
            && dst.is_multicast()
        {
            // A site-based Map-Notify from another xTR of our site (map-notify-group).
            if let Some(x) = self.xtr.as_mut() {
                x.site_notify(payload, dst, punt.vlan, now, &mut self.out);
                self.carry_out(out);
            }
            return;
        }
        let kind = payload.first().map(|b| b >> 4);
        match kind {
            Some(k) if k == MessageType::MapRegister as u8 => {
                let Some(ms) = self.map_server.as_mut() else {
                    return;
                };
                match ms.register(payload, from, false, now) {
                    Ok(accepted) => {
                        debug!(%from, site = %accepted.site, prefixes = accepted.prefixes.len(), "Map-Register accepted");
                        // Proven the key: may now open a reliable session (§5.1 step 2).
                        self.ms_sessions.allow(from.ip(), now);
                        if let Some(notify) = accepted.notify {
                            send(out, from, LISP_CONTROL_PORT, &notify);
                        }
                        for (previous, notify) in accepted.moved {
                            info!(site = %accepted.site, %previous, "EID moved: Map-Notify to the previous RLOC");
                            let to = SocketAddr::new(previous, LISP_CONTROL_PORT);
                            send(out, to, LISP_CONTROL_PORT, &notify);
                        }
                        for (subscriber, notify) in accepted.published {
                            debug!(%subscriber, "mapping changed: Map-Notify to a subscriber");
                            let to = SocketAddr::new(subscriber, LISP_CONTROL_PORT);
                            send(out, to, LISP_CONTROL_PORT, &notify);
                        }
                    }
                    Err(refusal) => {
                        if log_allowed() {
                            info!(%from, ?refusal, "Map-Register refused (counted; at most one such line a second)");
                        }
                    }
                }
            }
            Some(k) if k == MessageType::MapNotifyAck as u8 => {
                if let Some(ms) = self.map_server.as_mut() {
                    ms.notify_ack(payload, from.ip());
                }
            }
            Some(k) if k == MessageType::Ecm as u8 && self.resolver => {
                let Some(ms) = self.map_server.as_mut() else {
                    return;
                };
                // One requester cannot have the map-resolver answer more than its share: a flood
                // would otherwise fill the way out that Map-Notifies take too.
                if !self.request_limit.allow(from.ip(), now) {
                    if log_allowed() {
                        info!(%from, refused = self.request_limit.refused, "Map-Requests over the per-requester limit: not answered (counted; at most one such line a second)");
                    }
                    return;
                }
                match ms.resolve(payload, now) {
                    Ok(Resolution::Forward { etr, ecm }) => {
                        debug!(%from, %etr, "Map-Request forwarded to the ETR");
                        let to = SocketAddr::new(etr, LISP_CONTROL_PORT);
                        send(out, to, LISP_CONTROL_PORT, &ecm);
                    }
                    Ok(Resolution::Reply { to, map_reply }) => {
                        debug!(%from, %to, "Map-Reply from the map-resolver");
                        send(out, to, LISP_CONTROL_PORT, &map_reply);
                    }
                    Err(refusal) => debug!(%from, ?refusal, "Map-Request refused"),
                }
            }
            _ => {
                if let Some(x) = self.xtr.as_mut() {
                    x.receive(payload, from, now, &mut self.out);
                    self.carry_out(out);
                }
            }
        }
    }

    /// A data-plane event the xTR acts on.
    fn event(&mut self, event: &HalEvent, out: &mut dyn Outbox) {
        let now = self.now_ms();
        let Some(x) = self.xtr.as_mut() else {
            return;
        };
        match event {
            HalEvent::DynamicEidSeen { iface, eid, map } => {
                x.dynamic_eid_seen(*iface, *eid, map, now, &mut self.out)
            }
            HalEvent::MapCacheMiss { dest, source, .. } => {
                x.map_cache_miss(*dest, *source, now, &mut self.out)
            }
            HalEvent::EidNotHere {
                eid,
                source_rloc,
                inner_source,
                ..
            } => x.eid_not_here(*eid, *source_rloc, *inner_source, now, &mut self.out),
            HalEvent::NoRoute {
                eid,
                source_rloc,
                inner_source,
                ..
            } => x.local_eid_no_route(*eid, *source_rloc, *inner_source, now, &mut self.out),
            _ => return,
        }
        self.carry_out(out);
    }

    /// Timers: registrations, retransmissions, expiry, TCP.
    fn tick(&mut self, out: &mut dyn Outbox) {
        let now = self.now_ms();
        if let Some(x) = self.xtr.as_mut() {
            x.tick(now, &mut self.out);
            self.carry_out(out);
        }
        self.poll_sessions(out);
        if now.saturating_sub(self.last_expiry_ms) < 1000 {
            return;
        }
        self.last_expiry_ms = now;
        if let Some(ms) = self.map_server.as_mut() {
            for prefix in ms.expire(now) {
                // The site lost this registration: its EIDs are unreachable until it registers
                // again, which an operator must hear about.
                warn!(%prefix, "registration expired");
            }
            for (etr, notify) in ms.resend_notifies(now) {
                debug!(%etr, "Map-Notify not acknowledged: sent again");
                send(
                    out,
                    SocketAddr::new(etr, LISP_CONTROL_PORT),
                    LISP_CONTROL_PORT,
                    &notify,
                );
            }
        }
    }

    /// Runs the reliable sessions: TCP timers and segments, their events, what they send.
    fn poll_sessions(&mut self, out: &mut dyn Outbox) {
        let now = self.now_ms();
        self.etr_sessions
            .poll(&mut self.tcp, now, &mut self.etr_events);
        self.ms_sessions
            .poll(&mut self.tcp, now, &mut self.ms_events);
        for e in std::mem::take(&mut self.etr_events) {
            let Some(x) = self.xtr.as_mut() else { continue };
            match e {
                EtrEvent::Up(ms) => {
                    info!(map_server = %ms, "reliable registration session up");
                    x.session_up(ms);
                }
                EtrEvent::Down(ms, why) => {
                    use crate::lisp::reliable::DownReason as R;
                    let was_up = !matches!(
                        why,
                        R::Refused | R::ConnectTimeout | R::Unsupported | R::NoLocalAddress
                    );
                    if was_up {
                        info!(map_server = %ms, ?why, "reliable registration session down: UDP registration");
                    } else {
                        debug!(map_server = %ms, ?why, "no reliable registration here: UDP registration");
                    }
                    x.session_down(ms, was_up, now);
                }
                EtrEvent::RefreshRequested(ms) => x.refresh_requested(ms, now),
                EtrEvent::Acked(ms, prefix) => {
                    debug!(map_server = %ms, %prefix, "registration acknowledged")
                }
                EtrEvent::Rejected(ms, prefix, reason) => {
                    warn!(map_server = %ms, %prefix, ?reason, "registration rejected")
                }
                EtrEvent::Notified(ms, record) => {
                    debug!(map_server = %ms, ?record.prefix, "mapping notification")
                }
            }
        }
        for e in std::mem::take(&mut self.ms_events) {
            match e {
                MsEvent::Up(peer) => {
                    info!(%peer, "reliable registration session up");
                    if let Some(ms) = self.map_server.as_mut() {
                        ms.session_up(peer);
                    }
                }
                MsEvent::Down(peer, why) => {
                    info!(%peer, ?why, "reliable registration session down");
                    if let Some(ms) = self.map_server.as_mut() {
                        ms.session_down(peer, now);
                    }
                }
                MsEvent::Registration {
                    peer,
                    message_id,
                    map_register,
                } => self.reliable_register(peer, message_id, &map_register, out),
            }
        }
        self.carry_out(out);
        self.etr_sessions
            .poll(&mut self.tcp, now, &mut self.etr_events);
        self.ms_sessions
            .poll(&mut self.tcp, now, &mut self.ms_events);
        self.tcp.drain_ip(&mut self.ip_out);
        for packet in self.ip_out.drain(..) {
            let mut frame = Vec::with_capacity(ETH_LEN + packet.len());
            frame.extend_from_slice(&[0u8; 12]);
            let ethertype = if packet.first().is_some_and(|b| b >> 4 == 6) {
                [0x86, 0xdd]
            } else {
                [0x08, 0x00]
            };
            frame.extend_from_slice(&ethertype);
            frame.extend_from_slice(&packet);
            if let Err(e) = out.inject(InjectTarget::Routed, &frame)
                && log_allowed()
            {
                warn!(error = %e, "reliable registration segment not sent");
            }
        }
    }

    /// A Map-Register received over a reliable session: the Map-Server decides, the session
    /// acknowledges (or rejects) each prefix.
    fn reliable_register(
        &mut self,
        peer: SocketAddr,
        message_id: u32,
        bytes: &[u8],
        out: &mut dyn Outbox,
    ) {
        let now = self.now_ms();
        let Some(ms) = self.map_server.as_mut() else {
            return;
        };
        let prefixes: Vec<roamer_hal::Prefix> = MapRegister::parse(bytes)
            .map(|r| {
                r.records
                    .iter()
                    .filter_map(|rec| rec.prefix.prefix())
                    .collect()
            })
            .unwrap_or_default();
        match ms.register(bytes, peer, true, now) {
            Ok(accepted) => {
                for p in &accepted.prefixes {
                    self.ms_sessions.ack(peer, message_id, *p);
                }
                for (previous, notify) in accepted.moved.into_iter().chain(accepted.published) {
                    info!(site = %accepted.site, %previous, "mapping changed: Map-Notify (previous RLOC or subscriber)");
                    let to = SocketAddr::new(previous, LISP_CONTROL_PORT);
                    send(out, to, LISP_CONTROL_PORT, &notify);
                }
            }
            Err(refusal) => {
                info!(%peer, ?refusal, "reliable Map-Register refused");
                let reason = crate::wire::reliable::RejectReason::from_u8(1);
                for p in prefixes {
                    self.ms_sessions.nack(peer, message_id, p, reason);
                }
            }
        }
    }

    /// Rows of `show lisp session`: our sessions to map-servers and, on a map-server, the
    /// ETRs' sessions to us.
    pub fn session_rows(&self) -> Vec<SessionRow> {
        let now = self.now_ms();
        let mut rows = self.etr_sessions.rows(now);
        rows.extend(self.ms_sessions.rows(now));
        rows
    }

    /// The counters of `show lisp statistics`, for the roles that run.
    pub fn statistics(&self) -> crate::show::lisp_stats::LispStatistics {
        let ms = self.map_server.as_ref();
        crate::show::lisp_stats::LispStatistics {
            map_server: ms.map(|m| m.counters),
            map_resolver: self.resolver && ms.is_some(),
            map_requests_rate_limited: self.request_limit.refused,
            xtr: self.xtr.as_ref().map(|x| x.counters),
            etr_sessions: self.xtr.as_ref().map(|_| self.etr_sessions.counters()),
            ms_sessions: ms.map(|_| self.ms_sessions.counters()),
            tcp: (ms.is_some() || self.xtr.is_some()).then(|| self.tcp.counters()),
        }
    }

    /// Whether this map-server takes registrations over TCP (the `#` legend of `show lisp site`).
    pub fn reliable_map_server(&self) -> bool {
        self.map_server.is_some() && self.ms_sessions.is_enabled()
    }

    fn carry_out(&mut self, out: &mut dyn Outbox) {
        for o in self.out.drain(..) {
            match o {
                xtr::Output::OpenSession { map_server, local } => {
                    if !matches!(
                        self.etr_sessions.state(map_server),
                        Some(SessionState::Up | SessionState::Connecting)
                    ) {
                        debug!(%map_server, "opening the reliable registration session");
                        self.etr_sessions.open(
                            map_server,
                            local,
                            self.epoch.elapsed().as_millis() as u64,
                        );
                    }
                }
                xtr::Output::SendReliable {
                    map_server,
                    payload,
                } => {
                    if !self.etr_sessions.send_registration(map_server, &payload) {
                        // The session just went away: the register still goes, over UDP.
                        let to = SocketAddr::new(map_server, LISP_CONTROL_PORT);
                        send(out, to, LISP_CONTROL_PORT, &payload);
                    }
                }
                xtr::Output::Send {
                    to,
                    from_port,
                    payload,
                } => send(out, to, from_port, &payload),
                xtr::Output::SiteNotify {
                    vlan,
                    source,
                    group,
                    payload,
                } => {
                    let Some(frame) = site_notify_frame(self.router_mac, source, group, &payload)
                    else {
                        continue;
                    };
                    if let Err(e) = out.inject(InjectTarget::Vlan(vlan), &frame) {
                        warn!(%group, %vlan, error = %e, "site Map-Notify not sent");
                    }
                }
                xtr::Output::Table(op) => match out.apply(&op) {
                    Ok(()) => debug!(op = %op, "LISP table update"),
                    Err(e) => warn!(op = %op, error = %e, "LISP table update failed"),
                },
            }
        }
    }

    /// Rows of `show lisp site` (empty without a Map-Server).
    pub fn site_rows(&self, cfg: &Config) -> Vec<SiteRow> {
        let now = self.now_ms();
        self.map_server
            .as_ref()
            .map(|ms| ms.rows(now, cfg.instance_id()))
            .unwrap_or_default()
    }

    /// Rows of `show ip lisp map-cache`.
    pub fn map_cache_rows(&self) -> Vec<MapCacheRow> {
        self.xtr_rows(|x, now| {
            x.map_cache()
                .map(|c| MapCacheRow {
                    prefix: c.prefix,
                    uptime_secs: now.saturating_sub(c.created_ms) / 1000,
                    expires_secs: Some(c.expires_ms.saturating_sub(now) / 1000),
                    via: c.source.name().into(),
                    action: c.action,
                    locators: c.locators.clone(),
                    locators_uptime_secs: now.saturating_sub(c.modified_ms) / 1000,
                    map_source: Some(c.map_source),
                    locator_status: x.locator_status(&c.prefix, now),
                })
                .collect()
        })
    }

    /// Rows of `show ip lisp away`.
    pub fn away_rows(&self) -> Vec<AwayRow> {
        self.xtr_rows(|x, now| {
            x.away()
                .map(|(p, a)| AwayRow {
                    prefix: *p,
                    producer: a.producer.name().to_string(),
                    created_secs: now.saturating_sub(a.created_ms) / 1000,
                })
                .collect()
        })
    }

    /// Rows of `show lisp dynamic-eid`.
    pub fn dynamic_eid_rows(&self) -> Vec<DynamicEidRow> {
        self.xtr_rows(|x, now| {
            x.dynamic_eids()
                .map(|(eid, d)| DynamicEidRow {
                    map: d.map.clone(),
                    eid: *eid,
                    interface: d.iface.to_string(),
                    uptime_secs: now.saturating_sub(d.first_ms) / 1000,
                    last_packet_secs: now.saturating_sub(d.last_seen_ms) / 1000,
                    via_map_notify: d.via_map_notify,
                    pending_pings: 0,
                })
                .collect()
        })
    }

    /// The rows `rows` makes of the xTR at the current time; none without an xTR.
    fn xtr_rows<R>(&self, rows: impl FnOnce(&Xtr, u64) -> Vec<R>) -> Vec<R> {
        let now = self.now_ms();
        self.xtr.as_ref().map(|x| rows(x, now)).unwrap_or_default()
    }
}

/// Lines about what remote input causes (refusals, messages that could not be sent under a
/// flood) are limited to one a second: a flood must not become a log flood.
fn log_allowed() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(u64::MAX);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.swap(now, Ordering::Relaxed) != now
}

/// Sends a UDP datagram from our address (the forwarding core picks the egress interface's),
/// over IPv4 or IPv6 as `to` is.
/// The frame is built in one buffer kept for the purpose (the data path copies it).
fn send(out: &mut dyn Outbox, to: SocketAddr, from_port: u16, payload: &[u8]) {
    thread_local! {
        static FRAME: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    FRAME.with_borrow_mut(|frame| {
        if udp_frame_into(frame, None, to.ip(), from_port, to.port(), payload).is_none() {
            return;
        }
        if let Err(e) = out.inject(InjectTarget::Routed, frame)
            && log_allowed()
        {
            warn!(%to, error = %e, "LISP control message not sent (counted; at most one such line a second)");
        }
    });
}
