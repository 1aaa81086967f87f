//! The state machine proper: a group's handlers of the protocols.md §7.6 events and actions,
//! its state changes, and the frames and table operations they emit.

use std::net::{IpAddr, Ipv4Addr};

use roamer_hal::{L3Interface, Mac, TableEntry, TableOp, VlanId};

use super::{Action, Cause, Group, Message, Peer, State, StateChange, gratuitous_arp, is_speaking};
use crate::wire::hsrp::{
    AuthText, HsrpAuth, HsrpAuthConfig, HsrpMd5Auth, HsrpOpCode, HsrpPacket, HsrpV1Repr,
    HsrpV2GroupState, HsrpV2Repr, build_hsrp_frame, hello_source_mac,
};

/// v1 carries whole seconds: rounded up, 1..=255.
fn wire_secs(ms: u32) -> u8 {
    u8::try_from(ms.div_ceil(1000).max(1)).unwrap_or(u8::MAX)
}

/// The two table entries that give the forwarding core the virtual MAC and IP.
fn vip_entries(vlan: VlanId, vmac: Mac, vip: Ipv4Addr) -> [TableEntry; 2] {
    let iface = L3Interface::Vlan(vlan);
    [
        TableEntry::RouterMac {
            iface,
            mac: vmac,
            virtual_mac: true,
        },
        TableEntry::InterfaceAddress {
            iface,
            addr: IpAddr::V4(vip),
            prefix_len: 32,
            virtual_mac: Some(vmac),
        },
    ]
}

impl Group {
    /// "Higher priority": higher priority, or equal priority and higher IP address.
    fn outranks_me(&self, priority: u32, ip: Ipv4Addr) -> bool {
        (priority, u32::from(ip)) > (u32::from(self.cfg.priority), u32::from(self.cfg.iface_ip))
    }

    fn hold_of(&self, msg: &Message) -> u64 {
        if msg.hold_ms == 0 {
            u64::from(self.cfg.hold_ms)
        } else {
            msg.hold_ms
        }
    }

    fn own_hold(&self) -> u64 {
        u64::from(self.cfg.hold_ms)
    }

    pub(super) fn on_hello(&mut self, msg: Message, now: u64, out: &mut Vec<Action>) {
        // A router heard in another role no longer holds the one we knew it in (its timer runs on).
        if msg.state != State::Active && self.active.is_some_and(|p| p.ip == msg.src) {
            self.active = None;
        }
        if msg.state != State::Standby && self.standby.is_some_and(|p| p.ip == msg.src) {
            self.standby = None;
        }
        let higher = self.outranks_me(msg.priority, msg.src);
        let peer = Peer {
            ip: msg.src,
            priority: msg.priority,
        };
        match (msg.state, higher) {
            (State::Active, true) => self.hello_higher_active(msg, peer, now, out),
            (State::Active, false) => self.hello_lower_active(msg, peer, now, out),
            (State::Standby, true) => self.hello_higher_standby(msg, peer, now, out),
            (State::Standby, false) => self.hello_lower_standby(msg, peer, now, out),
            (State::Speak, true) => {
                // Event f.
                if matches!(self.state, State::Speak | State::Standby) {
                    self.standby_timer = Some(now + self.hold_of(&msg));
                    self.set_state(State::Listen, now, out);
                }
            }
            _ => {}
        }
    }

    /// Action E: learn the virtual IP from the Active router's hello when none is configured.
    fn learn(&mut self, msg: &Message) {
        if self.cfg.virtual_ip.is_none() && self.state != State::Active && !msg.vip.is_unspecified()
        {
            self.vip = Some(msg.vip);
            self.vip_learnt = true;
        }
    }

    /// Events g and h outside Active: `peer`, the sender of `msg`, is the Active router (its
    /// virtual IP learnt, its hold timer restarted); in Learn, with a virtual IP now, to Listen.
    fn heard_active(&mut self, msg: &Message, peer: Peer, now: u64, out: &mut Vec<Action>) {
        self.learn(msg);
        self.active = Some(peer);
        self.active_timer = Some(now + self.hold_of(msg));
        if self.state == State::Learn {
            self.standby_timer = Some(now + self.own_hold());
            if self.vip.is_some() {
                self.set_state(State::Listen, now, out);
            }
        }
    }

    /// Event g.
    fn hello_higher_active(&mut self, msg: Message, peer: Peer, now: u64, out: &mut Vec<Action>) {
        self.preempt_timer = None;
        match self.state {
            State::Learn | State::Listen | State::Speak | State::Standby => {
                self.heard_active(&msg, peer, now, out);
            }
            State::Active => {
                self.active_timer = Some(now + self.hold_of(&msg));
                self.standby_timer = Some(now + self.own_hold());
                self.set_state(State::Speak, now, out);
                self.active = Some(peer);
            }
            State::Initial | State::Disabled => {}
        }
    }

    /// Event h.
    fn hello_lower_active(&mut self, msg: Message, peer: Peer, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Learn => self.heard_active(&msg, peer, now, out),
            State::Listen | State::Speak | State::Standby => {
                self.heard_active(&msg, peer, now, out);
                match self.cfg.preempt {
                    Some(0) => self.coup(now, out),
                    Some(delay) => {
                        self.preempt_timer
                            .get_or_insert(now + u64::from(delay) * 1000);
                    }
                    None => {}
                }
            }
            State::Active => self.send(HsrpOpCode::Coup, out),
            State::Initial | State::Disabled => {}
        }
    }

    /// Event k.
    fn hello_higher_standby(&mut self, msg: Message, peer: Peer, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Listen | State::Active => {
                self.standby = Some(peer);
                self.standby_timer = Some(now + self.hold_of(&msg));
            }
            State::Speak | State::Standby => {
                self.standby_timer = Some(now + self.hold_of(&msg));
                self.set_state(State::Listen, now, out);
                self.standby = Some(peer);
            }
            _ => {}
        }
    }

    /// Event l.
    fn hello_lower_standby(&mut self, msg: Message, peer: Peer, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Listen => {
                self.standby = Some(peer);
                self.standby_timer = Some(now + self.hold_of(&msg));
                self.set_state(State::Speak, now, out);
            }
            State::Speak => {
                self.standby_timer = None;
                self.become_standby(now, out);
            }
            State::Active => {
                self.standby = Some(peer);
                self.standby_timer = Some(now + self.hold_of(&msg));
            }
            _ => {}
        }
    }

    /// Event j: a Coup from a higher-priority router makes the Active resign.
    pub(super) fn on_coup(&mut self, msg: Message, now: u64, out: &mut Vec<Action>) {
        if self.state == State::Active && self.outranks_me(msg.priority, msg.src) {
            self.active_timer = Some(now + self.hold_of(&msg));
            self.standby_timer = Some(now + self.own_hold());
            self.send(HsrpOpCode::Resign, out);
            self.set_state(State::Speak, now, out);
            self.active = Some(Peer {
                ip: msg.src,
                priority: msg.priority,
            });
        }
    }

    /// Event i: the Active router resigns.
    pub(super) fn on_resign(&mut self, msg: Message, now: u64, out: &mut Vec<Action>) {
        let from_active = match self.active {
            Some(p) => p.ip == msg.src,
            None => msg.state == State::Active,
        };
        if !from_active || self.state == State::Active {
            return;
        }
        self.active = None;
        if self.standby.is_some_and(|p| p.ip == msg.src) {
            self.standby = None;
        }
        match self.state {
            State::Listen => self.listen_to_speak(now, out),
            State::Speak => self.active_timer = Some(now + self.own_hold()),
            State::Standby => {
                self.active_timer = None;
                self.set_state(State::Active, now, out);
            }
            _ => {}
        }
    }

    /// Event c.
    pub(super) fn active_expired(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Listen => self.listen_to_speak(now, out),
            State::Standby => {
                self.standby_timer = None;
                self.set_state(State::Active, now, out);
            }
            // Speak: the table is silent; the active router is forgotten (see the hsrp module doc).
            _ => {}
        }
    }

    /// Event d.
    pub(super) fn standby_expired(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Listen => {
                self.standby_timer = Some(now + self.own_hold());
                self.set_state(State::Speak, now, out);
            }
            State::Speak => self.become_standby(now, out),
            _ => {}
        }
    }

    /// Listen → Speak with the Active and Standby timers started (no Active router heard).
    fn listen_to_speak(&mut self, now: u64, out: &mut Vec<Action>) {
        self.active_timer = Some(now + self.own_hold());
        self.standby_timer = Some(now + self.own_hold());
        self.set_state(State::Speak, now, out);
    }

    /// Speak → Standby (action D done by the caller); with no Active router known and no Active
    /// timer running, event c follows at once.
    fn become_standby(&mut self, now: u64, out: &mut Vec<Action>) {
        let takeover = self.active.is_none() && self.active_timer.is_none();
        self.change_state(State::Standby, now, !takeover, out);
        if takeover {
            self.set_state(State::Active, now, out);
        }
    }

    pub(super) fn preempt_expired(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.cfg.preempt.is_some()
            && matches!(self.state, State::Listen | State::Speak | State::Standby)
            && let Some(p) = self.active
            && !self.outranks_me(p.priority, p.ip)
        {
            self.coup(now, out);
        }
    }

    /// B, G, F, I → Active: preempt a lower-priority Active router.
    fn coup(&mut self, now: u64, out: &mut Vec<Action>) {
        self.cause = Cause::Preempt {
            over: self.active.map(|p| p.ip),
        };
        self.standby_timer = Some(now + self.own_hold());
        self.send(HsrpOpCode::Coup, out);
        self.set_state(State::Active, now, out);
    }

    /// Changes state; entering Active programs the virtual MAC and IP, sends a hello and a
    /// gratuitous ARP; leaving Active withdraws them; entering Speak or Standby sends a hello.
    pub(super) fn set_state(&mut self, new: State, now: u64, out: &mut Vec<Action>) {
        self.change_state(new, now, true, out);
    }

    /// [`Group::set_state`]; `hello: false` skips the hello of a state left again at once.
    fn change_state(&mut self, new: State, now: u64, hello: bool, out: &mut Vec<Action>) {
        let old = self.state;
        if new == old {
            return;
        }
        self.state = new;
        self.state_changes += 1;
        self.last_change_ms = now;
        let change = StateChange {
            from: old,
            to: new,
            cause: self.cause,
            at_ms: now,
        };
        change.log(self.cfg.vlan, self.cfg.group);
        self.last_change = Some(change);
        if old == State::Active {
            self.withdraw(out);
        }
        match new {
            State::Active => {
                self.active = None;
                self.active_timer = None;
                self.preempt_timer = None;
                self.program(out);
            }
            State::Standby => self.standby = None,
            _ => {}
        }
        if is_speaking(new) {
            if hello {
                self.send(HsrpOpCode::Hello, out);
            }
            self.hello_timer = Some(now + u64::from(self.cfg.hello_ms));
        } else {
            self.hello_timer = None;
        }
        if new == State::Active
            && let Some((vmac, vip)) = self.programmed
        {
            out.push(Action::Send(gratuitous_arp(vmac, vip)));
        }
    }

    /// Adds the virtual MAC and IP to the tables (once).
    pub(super) fn program(&mut self, out: &mut Vec<Action>) {
        let (Some(vip), None) = (self.vip, self.programmed) else {
            return;
        };
        let vmac = self.cfg.virtual_mac;
        for e in vip_entries(self.cfg.vlan, vmac, vip) {
            out.push(Action::Table(TableOp::add(e)));
        }
        self.programmed = Some((vmac, vip));
    }

    /// Removes what [`Group::program`] added.
    pub(super) fn withdraw(&mut self, out: &mut Vec<Action>) {
        if let Some((vmac, vip)) = self.programmed.take() {
            for e in vip_entries(self.cfg.vlan, vmac, vip) {
                out.push(Action::Table(TableOp::remove(e)));
            }
        }
    }

    /// Sends a Hello, Coup or Resign carrying the current state.
    pub(super) fn send(&self, op: HsrpOpCode, out: &mut Vec<Action>) {
        if let Some(frame) = self.packet_frame(op) {
            out.push(Action::Send(frame));
        }
    }

    /// The frame of a Hello, Coup or Resign in the current state (`None` only if the wire code
    /// refuses it, which a valid configuration never causes).
    fn packet_frame(&self, op: HsrpOpCode) -> Option<Vec<u8>> {
        let cfg = &self.cfg;
        let vip = self.vip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let md5 = HsrpMd5Auth::unsigned(cfg.iface_ip, 0);
        let (auth, key) = match &self.auth {
            None => (HsrpAuth::None, None),
            Some(HsrpAuthConfig::Text(t)) => (HsrpAuth::Text(*t), None),
            Some(HsrpAuthConfig::Md5(k)) => (HsrpAuth::Md5(md5), Some(k)),
        };
        let packet = match cfg.version {
            1 => HsrpPacket::V1(HsrpV1Repr {
                op_code: op,
                state: self.state,
                hellotime: wire_secs(cfg.hello_ms),
                holdtime: wire_secs(cfg.hold_ms),
                priority: cfg.priority,
                group: u8::try_from(cfg.group).ok()?,
                auth: match auth {
                    HsrpAuth::None => HsrpAuth::Text(AuthText::from_wire([0; 8])),
                    other => other,
                },
                virtual_ip: vip,
            }),
            _ => HsrpPacket::V2(HsrpV2Repr {
                group_state: HsrpV2GroupState {
                    op_code: op,
                    state: self.state,
                    group: cfg.group,
                    identifier: cfg.iface_mac,
                    priority: u32::from(cfg.priority),
                    hellotime_ms: cfg.hello_ms,
                    holdtime_ms: cfg.hold_ms,
                    virtual_ip: IpAddr::V4(vip),
                },
                interface_state: None,
                auth,
            }),
        };
        let src_mac = hello_source_mac(self.state, cfg.virtual_mac, cfg.iface_mac);
        build_hsrp_frame(&packet, src_mac, IpAddr::V4(cfg.iface_ip), key).ok()
    }
}
