//! Why an HSRP group changed state, and the log line every change gives.
//!
//! Each change is logged once, by the group itself, at the moment it happens. `tracing` has no
//! NOTICE level (syslog 5, where NX-OS puts `%HSRP_ENGINE-5-STATECHANGE`), so:
//!
//! * a change that takes the Active role away from this router *by another router* — a Coup,
//!   or a hello from a higher-priority Active — is a `WARN`: a foreign router (legitimate or
//!   not) now owns the virtual IP, which an operator must see even with INFO filtered out;
//! * every other change is an `INFO` line with the field `notice = true` (the NOTICE of
//!   NX-OS), so it can be selected with a field filter.
//!
//! Every line carries the VLAN, group, old and new state and the cause, with the other
//! router's address where there is one.

use std::fmt;
use std::net::Ipv4Addr;

use roamer_hal::VlanId;
use tracing::{info, warn};

use super::State;

/// What made a group change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The group was configured, or its interface came up.
    Enabled,
    /// A configuration change (group, version, virtual IP, validity).
    Config,
    /// The group's interface went down.
    InterfaceDown,
    /// A hello from another router: its address, state and priority.
    Hello {
        from: Ipv4Addr,
        state: State,
        priority: u32,
    },
    /// A Coup from another router.
    Coup { from: Ipv4Addr, priority: u32 },
    /// The Active router resigned.
    Resign { from: Ipv4Addr },
    /// This router preempted the Active router (`None`: none was known any more).
    Preempt { over: Option<Ipv4Addr> },
    /// The Active router's hold time ran out (`None`: no Active router was heard).
    ActiveHoldExpired { peer: Option<Ipv4Addr> },
    /// The Standby router's hold time ran out (`None`: no Standby router was heard).
    StandbyHoldExpired { peer: Option<Ipv4Addr> },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Enabled => f.write_str("group enabled"),
            Cause::Config => f.write_str("configuration changed"),
            Cause::InterfaceDown => f.write_str("interface down"),
            Cause::Hello {
                from,
                state,
                priority,
            } => write!(f, "hello from {from}, {state:?} priority {priority}"),
            Cause::Coup { from, priority } => write!(f, "coup from {from}, priority {priority}"),
            Cause::Resign { from } => write!(f, "resign from Active {from}"),
            Cause::Preempt { over: Some(a) } => write!(f, "preempted lower-priority Active {a}"),
            Cause::Preempt { over: None } => f.write_str("preempted"),
            Cause::ActiveHoldExpired { peer: Some(p) } => {
                write!(f, "Active router {p} hold time expired")
            }
            Cause::ActiveHoldExpired { peer: None } => {
                f.write_str("no Active router heard within the hold time")
            }
            Cause::StandbyHoldExpired { peer: Some(p) } => {
                write!(f, "Standby router {p} hold time expired")
            }
            Cause::StandbyHoldExpired { peer: None } => {
                f.write_str("no Standby router heard within the hold time")
            }
        }
    }
}

impl Cause {
    /// The cause as a short word for JSON (`sh_last_state_change_reason`).
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::Enabled => "enabled",
            Cause::Config => "config",
            Cause::InterfaceDown => "interface-down",
            Cause::Hello { .. } => "priority",
            Cause::Coup { .. } => "coup",
            Cause::Resign { .. } => "resign",
            Cause::Preempt { .. } => "preempt",
            Cause::ActiveHoldExpired { .. } | Cause::StandbyHoldExpired { .. } => "hold-expired",
        }
    }

    /// The other router involved, if any.
    pub fn peer(&self) -> Option<Ipv4Addr> {
        match *self {
            Cause::Hello { from, .. } | Cause::Coup { from, .. } | Cause::Resign { from } => {
                Some(from)
            }
            Cause::Preempt { over: p }
            | Cause::ActiveHoldExpired { peer: p }
            | Cause::StandbyHoldExpired { peer: p } => p,
            Cause::Enabled | Cause::Config | Cause::InterfaceDown => None,
        }
    }
}

/// One state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub from: State,
    pub to: State,
    pub cause: Cause,
    /// `now_ms` of the change.
    pub at_ms: u64,
}

impl StateChange {
    /// Another router took the Active role from this one.
    pub fn is_takeover(&self) -> bool {
        self.from == State::Active
            && matches!(
                self.cause,
                Cause::Coup { .. }
                    | Cause::Hello {
                        state: State::Active,
                        ..
                    }
            )
    }

    /// Logs the change (see the module documentation for the levels).
    pub fn log(&self, vlan: VlanId, group: u16) {
        let (from, to) = (self.from, self.to);
        let peer = self.cause.peer().map(|p| p.to_string()).unwrap_or_default();
        if self.is_takeover() {
            warn!(
                %vlan, group, ?from, ?to, cause = self.cause.kind(), %peer,
                "HSRP Vlan{vlan} Grp {group} state {from:?} -> {to:?}: Active taken over by another router ({})",
                self.cause
            );
        } else {
            info!(
                notice = true, %vlan, group, ?from, ?to, cause = self.cause.kind(), %peer,
                "HSRP Vlan{vlan} Grp {group} state {from:?} -> {to:?} ({})",
                self.cause
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 1, 10, last)
    }

    #[test]
    fn causes_name_the_other_router() {
        let coup = Cause::Coup {
            from: ip(3),
            priority: 120,
        };
        assert_eq!(coup.to_string(), "coup from 10.1.10.3, priority 120");
        assert_eq!(coup.peer(), Some(ip(3)));
        assert_eq!(
            Cause::ActiveHoldExpired { peer: Some(ip(2)) }.to_string(),
            "Active router 10.1.10.2 hold time expired"
        );
        assert_eq!(
            Cause::StandbyHoldExpired { peer: None }.to_string(),
            "no Standby router heard within the hold time"
        );
    }

    #[test]
    fn only_losing_active_to_another_router_is_a_takeover() {
        let change = |from, cause| StateChange {
            from,
            to: State::Speak,
            cause,
            at_ms: 0,
        };
        let coup = Cause::Coup {
            from: ip(3),
            priority: 120,
        };
        let higher_active = Cause::Hello {
            from: ip(3),
            state: State::Active,
            priority: 120,
        };
        assert!(change(State::Active, coup).is_takeover());
        assert!(change(State::Active, higher_active).is_takeover());
        assert!(!change(State::Standby, coup).is_takeover());
        assert!(!change(State::Active, Cause::Config).is_takeover());
        assert!(!change(State::Active, Cause::InterfaceDown).is_takeover());
    }
}
