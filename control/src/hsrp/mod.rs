//! One HSRP group on one SVI (protocols.md §7): the RFC 2281 state machine for HSRP v1 and v2
//! over IPv4, as a pure instance. No sockets, no clocks: the daemon passes punted frames, the
//! time (`now_ms`) and configuration changes in, and gets [`Action`]s back — frames to send into
//! the SVI's VLAN and table operations that give the forwarding core the virtual MAC and IP while
//! (and only while) the group is Active.
//!
//! The state machine is the table of protocols.md §7.6 (events a–l, actions A–I). Where the
//! table is silent or the reference vague, this is what the instance does:
//!
//! * **Timers.** The Active and Standby timers run for the hold time carried in the hello that
//!   (re)started them, otherwise for the configured hold time. Hellos are not jittered (the
//!   instance is deterministic; two routers never start in the same millisecond in practice).
//!   Configured timers are never replaced by learnt ones (the configuration cannot tell a
//!   default from a configured value, and RFC 2281 forbids mixing configured and learnt timers).
//! * **Speak with an expired Active timer.** The table has no entry for event c in Speak; the
//!   active router is then forgotten, and when the Standby timer later makes this router
//!   Standby (event d) with no active router known, it becomes Active at once (event c in
//!   Standby), so a group whose active router died while others were electing a standby does
//!   not stall.
//! * **Hellos on state changes.** A router entering Speak, Standby or Active sends a hello at
//!   once (then every hello time) rather than waiting a full hello period.
//! * **Coup and Resign** carry the sender's state at the time they are sent: a Coup the state
//!   the router is leaving (it is not yet Active, so its interface MAC is the source), a Resign
//!   `Active` (sourced from the virtual MAC it still owns). A Resign is only acted on when it
//!   comes from the router this group knows as Active (or when none is known and the Resign
//!   says Active), so a stale Resign cannot create a second Active.
//! * **Preempt delay** counts from the first hello of a lower-priority Active seen while
//!   preemption is possible; if the condition still holds when it ends, the router coups.
//! * **Authentication.** `GroupAuth::None` sends no authentication (v1: eight zero octets,
//!   v2: no authentication TLV) and accepts any hello. A hello that fails authentication is
//!   counted in `auth_failures` and ignored entirely; a frame that does not parse is counted in
//!   `malformed` and ignored; neither changes any state or timer.
//! * **Invalid configuration** (group out of range for the version, authentication text
//!   longer than 8 octets, MD5 key empty or longer than 64 octets, version not 1 or 2) leaves
//!   the group `Disabled` with a reason, sending nothing; [`GroupConfig::validate`] reports the
//!   same problems as typed errors beforehand.

pub mod change;
pub mod instances;
pub mod show;

mod machine;

pub use change::{Cause, StateChange};
pub use instances::{HsrpInstances, VlanAction, groups_from_config};

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use roamer_hal::{Mac, TableOp, VlanId};

use crate::ControlError;
use crate::wire::hsrp::{
    AuthText, HsrpAuthConfig, HsrpMd5Key, HsrpOpCode, HsrpPacket, HsrpTransport, MAX_V2_GROUP,
    parse_hsrp_frame, virtual_mac_v1, virtual_mac_v2,
};

pub use crate::wire::hsrp::HsrpState as State;

/// Default hello time (both versions), milliseconds.
pub const DEFAULT_HELLO_MS: u32 = 3000;
/// Default hold time (both versions), milliseconds.
pub const DEFAULT_HOLD_MS: u32 = 10000;
/// Default priority.
pub const DEFAULT_PRIORITY: u8 = 100;
/// Highest v1 group number.
pub const MAX_V1_GROUP: u16 = 255;

/// Ethertype of ARP.
const ETHERTYPE_ARP: u16 = 0x0806;
/// Safety bound on timer events handled by one `tick` (each one stops or moves its timer).
const MAX_TIMER_EVENTS: usize = 32;

/// How the group authenticates its hellos. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub enum GroupAuth {
    /// No authentication: nothing sent, everything accepted.
    None,
    /// Clear text, at most 8 octets (`authentication text STRING`; the default is "cisco").
    Text(Vec<u8>),
    /// Keyed MD5, 1–64 octets (`authentication md5 key-string STRING`).
    Md5(Vec<u8>),
}

impl Default for GroupAuth {
    /// NX-OS default: text "cisco".
    fn default() -> Self {
        GroupAuth::Text(b"cisco".to_vec())
    }
}

impl fmt::Debug for GroupAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupAuth::None => "GroupAuth::None",
            GroupAuth::Text(_) => "GroupAuth::Text(<redacted>)",
            GroupAuth::Md5(_) => "GroupAuth::Md5(<redacted>)",
        })
    }
}

impl GroupAuth {
    fn summary(&self) -> AuthSummary {
        match self {
            GroupAuth::None => AuthSummary::None,
            GroupAuth::Text(t) => AuthSummary::Text {
                default: t.as_slice() == b"cisco",
            },
            GroupAuth::Md5(_) => AuthSummary::Md5,
        }
    }

    /// What received hellos are checked against (`None`: not checked).
    fn to_wire(&self) -> Result<Option<HsrpAuthConfig>, ControlError> {
        match self {
            GroupAuth::None => Ok(None),
            GroupAuth::Text(t) => Ok(Some(HsrpAuthConfig::Text(AuthText::new(t)?))),
            GroupAuth::Md5(k) => Ok(Some(HsrpAuthConfig::Md5(HsrpMd5Key::new(k)?))),
        }
    }
}

/// The authentication of a group as `show hsrp` may print it: the kind only, never the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSummary {
    None,
    /// Clear text; `default` when it is NX-OS's default "cisco" (the only text ever shown).
    Text {
        default: bool,
    },
    Md5,
}

/// One group's configuration, built by the daemon from `config::{Interface, HsrpGroup}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The SVI.
    pub vlan: VlanId,
    pub group: u16,
    /// 1 or 2.
    pub version: u8,
    /// `None`: learnt from the Active router's hello (the group starts in Learn).
    pub virtual_ip: Option<Ipv4Addr>,
    /// The default for the version ([`default_virtual_mac`]) or the configured `mac-address`.
    pub virtual_mac: Mac,
    /// Default 100.
    pub priority: u8,
    /// `Some(delay_seconds)` when `preempt [delay minimum S]` is configured.
    pub preempt: Option<u32>,
    /// Default 3000 (v1 sends whole seconds on the wire, rounded up).
    pub hello_ms: u32,
    /// Default 10000.
    pub hold_ms: u32,
    pub auth: GroupAuth,
    /// The SVI's primary address (hello source).
    pub iface_ip: Ipv4Addr,
    /// The SVI's MAC (hello source when not Active; the v2 identifier).
    pub iface_mac: Mac,
}

/// The default virtual MAC of a group: v1 `0000.0c07.acXX`, v2 `0000.0c9f.fXXX`; `None` when the
/// group is out of range for the version or the version is neither 1 nor 2.
pub fn default_virtual_mac(version: u8, group: u16) -> Option<Mac> {
    match version {
        1 => u8::try_from(group).ok().map(virtual_mac_v1),
        2 => virtual_mac_v2(group).ok(),
        _ => None,
    }
}

impl GroupConfig {
    /// A group with every default (no virtual IP, priority 100, no preempt, 3 s / 10 s, text
    /// "cisco", the version's default virtual MAC — `00:00:00:00:00:00` if out of range, which
    /// [`GroupConfig::validate`] reports).
    pub fn new(vlan: VlanId, group: u16, version: u8, iface_ip: Ipv4Addr, iface_mac: Mac) -> Self {
        Self {
            vlan,
            group,
            version,
            virtual_ip: None,
            virtual_mac: default_virtual_mac(version, group).unwrap_or(Mac::ZERO),
            priority: DEFAULT_PRIORITY,
            preempt: None,
            hello_ms: DEFAULT_HELLO_MS,
            hold_ms: DEFAULT_HOLD_MS,
            auth: GroupAuth::default(),
            iface_ip,
            iface_mac,
        }
    }

    /// Problems that would leave the group `Disabled`: version, group range, timers (hello
    /// must be non-zero and shorter than hold), authentication text or key length.
    pub fn validate(&self) -> Result<(), ControlError> {
        let max = match self.version {
            1 => MAX_V1_GROUP,
            2 => MAX_V2_GROUP,
            other => {
                return Err(ControlError::BadValue {
                    what: "HSRP version (1 or 2)",
                    value: u64::from(other),
                });
            }
        };
        if self.group > max {
            return Err(ControlError::HsrpGroupRange {
                group: self.group,
                version: self.version,
                max,
            });
        }
        if self.hello_ms == 0 || self.hello_ms >= self.hold_ms {
            return Err(ControlError::TimersInvalid {
                hello_ms: self.hello_ms,
                hold_ms: self.hold_ms,
            });
        }
        self.auth.to_wire().map(|_| ())
    }

    fn is_default_mac(&self) -> bool {
        default_virtual_mac(self.version, self.group) == Some(self.virtual_mac)
    }
}

/// What the daemon must do for the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A complete, untagged Ethernet frame to send into the SVI's VLAN (hello, coup, resign,
    /// gratuitous ARP).
    Send(Vec<u8>),
    /// Program (add) or withdraw (remove) the virtual MAC and IP: `RouterMac { iface: Vlan(v),
    /// mac: vmac, virtual_mac: true }` and `InterfaceAddress { iface: Vlan(v), addr: vip,
    /// prefix_len: 32, virtual_mac: Some(vmac) }`.
    Table(TableOp),
}

/// A group's state for `show hsrp`. Addresses equal to `local_ip` are this router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub vlan: VlanId,
    pub group: u16,
    pub version: u8,
    pub state: State,
    /// Why a `Disabled` group is disabled (invalid configuration).
    pub disabled_reason: Option<&'static str>,
    pub priority: u8,
    /// `Some(delay_seconds)` when preemption is configured.
    pub preempt: Option<u32>,
    /// The virtual IP in use (configured or learnt).
    pub vip: Option<Ipv4Addr>,
    /// The virtual IP was learnt from the Active router's hello.
    pub vip_learnt: bool,
    pub vmac: Mac,
    /// `vmac` is the version's default (not a configured `mac-address`).
    pub vmac_default: bool,
    /// This router's SVI address.
    pub local_ip: Ipv4Addr,
    /// The Active router: `Some(local_ip)` when it is this router.
    pub active: Option<Ipv4Addr>,
    pub active_priority: Option<u8>,
    /// Milliseconds until the Active timer expires (a remote Active only).
    pub active_expires_ms: Option<u64>,
    /// The Standby router: `Some(local_ip)` when it is this router.
    pub standby: Option<Ipv4Addr>,
    pub standby_priority: Option<u8>,
    /// Milliseconds until the Standby timer expires (a remote Standby only).
    pub standby_expires_ms: Option<u64>,
    pub hello_ms: u32,
    pub hold_ms: u32,
    /// Milliseconds until the next hello (`None` when the state sends none).
    pub next_hello_ms: Option<u64>,
    pub auth: AuthSummary,
    /// Hellos of this group ignored because their authentication did not match.
    pub auth_failures: u64,
    /// Frames handed to this group that did not parse as HSRP.
    pub malformed: u64,
    pub state_changes: u64,
    /// `now_ms` of the last state change.
    pub last_change_ms: u64,
    /// The last state change and its cause (`None` before the first).
    pub last_change: Option<StateChange>,
    /// `now_ms` this status describes.
    pub now_ms: u64,
}

impl GroupStatus {
    /// `show hsrp` interface name, e.g. `Vlan10`.
    pub fn interface(&self) -> String {
        format!("Vlan{}", self.vlan)
    }
}

/// Another router of the group as last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    ip: Ipv4Addr,
    priority: u32,
}

/// A received HSRP message of this group, version-independent.
#[derive(Debug, Clone, Copy)]
struct Message {
    op: HsrpOpCode,
    state: State,
    priority: u32,
    hold_ms: u64,
    vip: Ipv4Addr,
    src: Ipv4Addr,
}

/// One HSRP group: the state machine, its timers and counters.
#[derive(Debug)]
pub struct Group {
    cfg: GroupConfig,
    /// What received hellos are checked against (`None`: not checked).
    auth: Option<HsrpAuthConfig>,
    disabled: Option<&'static str>,
    state: State,
    vip: Option<Ipv4Addr>,
    vip_learnt: bool,
    active: Option<Peer>,
    standby: Option<Peer>,
    active_timer: Option<u64>,
    standby_timer: Option<u64>,
    hello_timer: Option<u64>,
    preempt_timer: Option<u64>,
    /// The virtual MAC and IP currently programmed (only while Active).
    programmed: Option<(Mac, Ipv4Addr)>,
    auth_failures: u64,
    malformed: u64,
    state_changes: u64,
    last_change_ms: u64,
    /// What the event being handled is (the cause of any state change it makes).
    cause: Cause,
    last_change: Option<StateChange>,
    now_ms: u64,
}

fn disabled_reason(cfg: &GroupConfig) -> Option<&'static str> {
    match cfg.validate() {
        Ok(()) => None,
        Err(ControlError::HsrpGroupRange { .. }) => Some("Group out of range"),
        Err(ControlError::BadValue { .. }) => Some("Invalid version"),
        Err(ControlError::TimersInvalid { .. }) => Some("Invalid timers"),
        Err(_) => Some("Invalid authentication"),
    }
}

fn build_auth(cfg: &GroupConfig) -> Option<HsrpAuthConfig> {
    cfg.auth.to_wire().ok().flatten()
}

fn is_speaking(state: State) -> bool {
    matches!(state, State::Speak | State::Standby | State::Active)
}

/// A gratuitous ARP reply announcing `vip` at `vmac` (protocols.md §7.8, §12 #19): Ethernet
/// broadcast from the virtual MAC, op 2, sender = target = the virtual IP, target MAC broadcast.
pub fn gratuitous_arp(vmac: Mac, vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&Mac::BROADCAST.0);
    f.extend_from_slice(&vmac.0);
    f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
    f.extend_from_slice(&vmac.0);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&Mac::BROADCAST.0);
    f.extend_from_slice(&vip.octets());
    f
}

impl Group {
    /// A group enabled on an up SVI at `now_ms` (event a): Initial → Listen when the virtual IP
    /// is configured, Learn otherwise; Active and Standby timers started. An invalid
    /// configuration gives a `Disabled` group that does nothing.
    pub fn new(cfg: GroupConfig, now_ms: u64) -> (Group, Vec<Action>) {
        let disabled = disabled_reason(&cfg);
        let mut g = Group {
            auth: build_auth(&cfg),
            vip: cfg.virtual_ip,
            cfg,
            disabled,
            state: if disabled.is_some() {
                State::Disabled
            } else {
                State::Initial
            },
            vip_learnt: false,
            active: None,
            standby: None,
            active_timer: None,
            standby_timer: None,
            hello_timer: None,
            preempt_timer: None,
            programmed: None,
            auth_failures: 0,
            malformed: 0,
            state_changes: 0,
            last_change_ms: now_ms,
            cause: Cause::Enabled,
            last_change: None,
            now_ms,
        };
        let out = g.enable(now_ms);
        (g, out)
    }

    /// Event a again after [`Group::shutdown`] (interface back up, group re-enabled). Does
    /// nothing unless the group is Initial.
    pub fn enable(&mut self, now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if self.state != State::Initial {
            return out;
        }
        self.cause = Cause::Enabled;
        let hold = u64::from(self.cfg.hold_ms);
        self.active_timer = Some(now_ms + hold);
        self.standby_timer = Some(now_ms + hold);
        let next = if self.vip.is_some() {
            State::Listen
        } else {
            State::Learn
        };
        self.set_state(next, now_ms, &mut out);
        out
    }

    /// The group's configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    /// The last state change and its cause (`None` before the first).
    pub fn last_change(&self) -> Option<StateChange> {
        self.last_change
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Handles a punted Ethernet frame (HSRP v1 or v2 over IPv4, optionally 802.1Q-tagged).
    /// Frames of other groups, versions, VLANs or address families, and this router's own
    /// hellos, are ignored; a frame that does not parse is counted as malformed; a hello of this
    /// group that does not authenticate is counted and ignored.
    pub fn receive(&mut self, frame: &[u8], now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if matches!(self.state, State::Initial | State::Disabled) {
            return out;
        }
        let Ok(parsed) = parse_hsrp_frame(frame) else {
            self.malformed += 1;
            return out;
        };
        if parsed.vlan.is_some_and(|v| v != self.cfg.vlan.get()) {
            return out;
        }
        let IpAddr::V4(src) = parsed.src_ip else {
            return out;
        };
        let transport = parsed.transport();
        let msg = match (&parsed.packet, self.cfg.version) {
            (HsrpPacket::V1(r), 1)
                if transport == Some(HsrpTransport::V1) && u16::from(r.group) == self.cfg.group =>
            {
                Message {
                    op: r.op_code,
                    state: r.state,
                    priority: u32::from(r.priority),
                    hold_ms: u64::from(r.holdtime) * 1000,
                    vip: r.virtual_ip,
                    src,
                }
            }
            (HsrpPacket::V2(r), 2)
                if transport == Some(HsrpTransport::V2Ipv4)
                    && r.group_state.group == self.cfg.group =>
            {
                let IpAddr::V4(vip) = r.group_state.virtual_ip else {
                    return out;
                };
                Message {
                    op: r.group_state.op_code,
                    state: r.group_state.state,
                    priority: r.group_state.priority,
                    hold_ms: u64::from(r.group_state.holdtime_ms),
                    vip,
                    src,
                }
            }
            _ => return out,
        };
        if src == self.cfg.iface_ip {
            return out;
        }
        if src.is_unspecified() || src.is_multicast() || src.is_broadcast() {
            self.malformed += 1;
            return out;
        }
        if let Some(auth) = &self.auth
            && parsed
                .packet
                .authenticate(parsed.payload(frame), auth)
                .is_err()
        {
            self.auth_failures += 1;
            return out;
        }
        self.cause = match msg.op {
            HsrpOpCode::Hello => Cause::Hello {
                from: msg.src,
                state: msg.state,
                priority: msg.priority,
            },
            HsrpOpCode::Coup => Cause::Coup {
                from: msg.src,
                priority: msg.priority,
            },
            HsrpOpCode::Resign => Cause::Resign { from: msg.src },
        };
        match msg.op {
            HsrpOpCode::Hello => self.on_hello(msg, now_ms, &mut out),
            HsrpOpCode::Coup => self.on_coup(msg, now_ms, &mut out),
            HsrpOpCode::Resign => self.on_resign(msg, now_ms, &mut out),
        }
        out
    }

    /// Handles every timer due at `now_ms`: Standby timer (event d), Active timer (event c),
    /// preempt delay, hello timer (event e).
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        let due = |t: Option<u64>| t.is_some_and(|t| t <= now_ms);
        for _ in 0..MAX_TIMER_EVENTS {
            if due(self.standby_timer) {
                self.standby_timer = None;
                self.cause = Cause::StandbyHoldExpired {
                    peer: self.standby.map(|p| p.ip),
                };
                self.standby = None;
                self.standby_expired(now_ms, &mut out);
            } else if due(self.active_timer) {
                self.active_timer = None;
                self.cause = Cause::ActiveHoldExpired {
                    peer: self.active.map(|p| p.ip),
                };
                self.active = None;
                self.active_expired(now_ms, &mut out);
            } else if due(self.preempt_timer) {
                self.preempt_timer = None;
                self.preempt_expired(now_ms, &mut out);
            } else if due(self.hello_timer) {
                self.send(HsrpOpCode::Hello, &mut out);
                self.hello_timer = Some(now_ms + u64::from(self.cfg.hello_ms));
            } else {
                break;
            }
        }
        out
    }

    /// The earliest `now_ms` at which [`Group::tick`] has something to do (`u64::MAX`: none).
    pub fn next_deadline(&self) -> u64 {
        [
            self.active_timer,
            self.standby_timer,
            self.hello_timer,
            self.preempt_timer,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
    }

    /// Applies a changed configuration. A change of VLAN, group, version or validity, or the
    /// removal of the virtual IP, restarts the group (resign and withdraw first if Active).
    /// Otherwise priority, preempt, timers, authentication and interface address change in
    /// place; a new virtual MAC or IP while Active withdraws the old entries, programs the new
    /// ones and announces them with a gratuitous ARP. A changed priority is advertised at once.
    pub fn reconfigure(&mut self, cfg: GroupConfig, now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if cfg == self.cfg {
            return out;
        }
        self.cause = Cause::Config;
        let old = std::mem::replace(&mut self.cfg, cfg);
        let restart = old.vlan != self.cfg.vlan
            || old.group != self.cfg.group
            || old.version != self.cfg.version
            || disabled_reason(&old) != disabled_reason(&self.cfg)
            || (old.virtual_ip.is_some() && self.cfg.virtual_ip.is_none());
        if restart {
            let new_cfg = std::mem::replace(&mut self.cfg, old);
            // A group shut down by the daemon stays down; the daemon enables it.
            let was_down = self.state == State::Initial;
            out.extend(self.shutdown_for(now_ms, Cause::Config));
            self.cause = Cause::Config;
            self.auth = build_auth(&new_cfg);
            self.disabled = disabled_reason(&new_cfg);
            self.vip = new_cfg.virtual_ip;
            self.vip_learnt = false;
            self.cfg = new_cfg;
            if self.disabled.is_some() {
                self.set_state(State::Disabled, now_ms, &mut out);
            } else {
                self.set_state(State::Initial, now_ms, &mut out);
                if !was_down {
                    out.extend(self.enable(now_ms));
                }
            }
            return out;
        }
        if self.disabled.is_some() {
            return out;
        }
        self.auth = build_auth(&self.cfg);
        if self.cfg.preempt.is_none() {
            self.preempt_timer = None;
        }
        if let Some(vip) = self.cfg.virtual_ip {
            self.vip = Some(vip);
            self.vip_learnt = false;
        }
        if self.state == State::Learn && self.vip.is_some() {
            let hold = u64::from(self.cfg.hold_ms);
            self.active_timer.get_or_insert(now_ms + hold);
            self.standby_timer.get_or_insert(now_ms + hold);
            self.set_state(State::Listen, now_ms, &mut out);
        }
        if self.state == State::Active
            && let Some(vip) = self.vip
            && self.programmed != Some((self.cfg.virtual_mac, vip))
        {
            self.withdraw(&mut out);
            self.program(&mut out);
            out.push(Action::Send(gratuitous_arp(self.cfg.virtual_mac, vip)));
        }
        if let Some(t) = self.hello_timer {
            self.hello_timer = Some(t.min(now_ms + u64::from(self.cfg.hello_ms)));
        }
        if is_speaking(self.state)
            && (old.priority != self.cfg.priority || old.virtual_mac != self.cfg.virtual_mac)
        {
            self.send(HsrpOpCode::Hello, &mut out);
            self.hello_timer = Some(now_ms + u64::from(self.cfg.hello_ms));
        }
        out
    }

    /// Event b (group removed, interface down): resign if Active, withdraw the table entries,
    /// stop every timer, Initial. [`Group::enable`] starts it again.
    pub fn shutdown(&mut self, now_ms: u64) -> Vec<Action> {
        self.shutdown_for(now_ms, Cause::InterfaceDown)
    }

    /// [`Group::shutdown`] with the cause to log (`Config` when the group is removed).
    pub fn shutdown_for(&mut self, now_ms: u64, cause: Cause) -> Vec<Action> {
        self.now_ms = now_ms;
        self.cause = cause;
        let mut out = Vec::new();
        if matches!(self.state, State::Initial | State::Disabled) {
            return out;
        }
        if self.state == State::Active {
            self.send(HsrpOpCode::Resign, &mut out);
        }
        self.set_state(State::Initial, now_ms, &mut out);
        self.active_timer = None;
        self.standby_timer = None;
        self.preempt_timer = None;
        self.active = None;
        self.standby = None;
        out
    }

    /// The group's state as of the last call that passed a time.
    pub fn status(&self) -> GroupStatus {
        self.status_at(self.now_ms)
    }

    /// The group's state with remaining times computed at `now_ms`.
    pub fn status_at(&self, now_ms: u64) -> GroupStatus {
        let left = |t: Option<u64>| t.map(|t| t.saturating_sub(now_ms));
        let me = self.cfg.iface_ip;
        let clamp = |p: u32| u8::try_from(p).unwrap_or(u8::MAX);
        let (active, active_priority, active_expires_ms) = if self.state == State::Active {
            (Some(me), Some(self.cfg.priority), None)
        } else if let Some(p) = self.active {
            (Some(p.ip), Some(clamp(p.priority)), left(self.active_timer))
        } else {
            (None, None, None)
        };
        let (standby, standby_priority, standby_expires_ms) = if self.state == State::Standby {
            (Some(me), Some(self.cfg.priority), None)
        } else if let Some(p) = self.standby {
            (
                Some(p.ip),
                Some(clamp(p.priority)),
                left(self.standby_timer),
            )
        } else {
            (None, None, None)
        };
        GroupStatus {
            vlan: self.cfg.vlan,
            group: self.cfg.group,
            version: self.cfg.version,
            state: self.state,
            disabled_reason: self.disabled,
            priority: self.cfg.priority,
            preempt: self.cfg.preempt,
            vip: self.vip,
            vip_learnt: self.vip_learnt,
            vmac: self.cfg.virtual_mac,
            vmac_default: self.cfg.is_default_mac(),
            local_ip: me,
            active,
            active_priority,
            active_expires_ms,
            standby,
            standby_priority,
            standby_expires_ms,
            hello_ms: self.cfg.hello_ms,
            hold_ms: self.cfg.hold_ms,
            next_hello_ms: left(self.hello_timer),
            auth: self.cfg.auth.summary(),
            auth_failures: self.auth_failures,
            malformed: self.malformed,
            state_changes: self.state_changes,
            last_change_ms: self.last_change_ms,
            last_change: self.last_change,
            now_ms,
        }
    }
}
