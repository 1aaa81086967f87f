//! EID-records and locator-records (protocols.md §3.3), shared by Map-Reply, Map-Register,
//! Map-Notify, Map-Notify-Ack, the Map-Request map-data record and the reliable-transport
//! Mapping-Notification.
//!
//! Reserved bits (the 12 bits after ACT/A, the 4 bits before Map-Version, the 13 unused locator
//! flag bits) are ignored on receive and sent as zero.

use std::net::IpAddr;

use roamer_hal::table::{Locator, NegativeAction};

use super::address::{Address, EidPrefix, ip_len, parse_ip, write_ip};
use super::bytes::{Reader, Writer, count_u8};
use crate::ControlError;

/// Minimum octets of one locator-record (8 fixed, Loc-AFI included, + IPv4).
pub const LOCATOR_MIN_LEN: usize = 8 + 4;
/// Minimum octets of one EID-record (12 fixed with an AFI-0 EID).
pub const EID_RECORD_MIN_LEN: usize = 12;

/// Negative Map-Reply action (the ACT field, 3 bits). Values 6 and 7 are implementation
/// extensions (§12 #17): never send them; a receiver should treat them as drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Action {
    #[default]
    NoAction = 0,
    NativelyForward = 1,
    SendMapRequest = 2,
    DropNoReason = 3,
    DropPolicyDenied = 4,
    DropAuthFailure = 5,
    Unassigned6 = 6,
    Unassigned7 = 7,
}

impl Action {
    /// Decodes the 3-bit field (higher bits are masked off).
    pub fn from_bits(v: u8) -> Self {
        match v & 0x7 {
            0 => Action::NoAction,
            1 => Action::NativelyForward,
            2 => Action::SendMapRequest,
            3 => Action::DropNoReason,
            4 => Action::DropPolicyDenied,
            5 => Action::DropAuthFailure,
            6 => Action::Unassigned6,
            _ => Action::Unassigned7,
        }
    }

    pub fn bits(self) -> u8 {
        self as u8
    }

    /// The HAL negative action this maps to (6/7 and the three drops → `Drop`).
    pub fn to_hal(self) -> NegativeAction {
        match self {
            Action::NoAction => NegativeAction::NoAction,
            Action::NativelyForward => NegativeAction::NativelyForward,
            Action::SendMapRequest => NegativeAction::SendMapRequest,
            _ => NegativeAction::Drop,
        }
    }
}

/// One locator-record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocatorRecord {
    pub priority: u8,
    pub weight: u8,
    pub m_priority: u8,
    pub m_weight: u8,
    /// L: the locator belongs to the sender (0x0004).
    pub local: bool,
    /// p: the locator that was RLOC-probed (0x0002).
    pub probed: bool,
    /// R: the sender has a route to the locator (0x0001).
    pub reachable: bool,
    pub rloc: IpAddr,
}

impl LocatorRecord {
    /// A Cisco-style own locator: M-priority 255, M-weight 0, L=1, R=1.
    pub fn local(rloc: IpAddr, priority: u8, weight: u8) -> Self {
        Self {
            priority,
            weight,
            m_priority: 255,
            m_weight: 0,
            local: true,
            probed: false,
            reachable: true,
            rloc,
        }
    }

    /// The HAL view (RLOC, priority, weight).
    pub fn to_hal(&self) -> Locator {
        Locator {
            rloc: self.rloc,
            priority: self.priority,
            weight: self.weight,
        }
    }

    pub fn wire_len(&self) -> usize {
        8 + ip_len(&self.rloc)
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, ControlError> {
        let priority = r.u8("locator-record")?;
        let weight = r.u8("locator-record")?;
        let m_priority = r.u8("locator-record")?;
        let m_weight = r.u8("locator-record")?;
        let flags = r.u16("locator-record")?;
        let rloc = parse_ip(r, "locator-record address")?;
        Ok(Self {
            priority,
            weight,
            m_priority,
            m_weight,
            local: flags & 0x0004 != 0,
            probed: flags & 0x0002 != 0,
            reachable: flags & 0x0001 != 0,
            rloc,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), ControlError> {
        w.u8(self.priority)?;
        w.u8(self.weight)?;
        w.u8(self.m_priority)?;
        w.u8(self.m_weight)?;
        let flags = (u16::from(self.local) << 2)
            | (u16::from(self.probed) << 1)
            | u16::from(self.reachable);
        w.u16(flags)?;
        write_ip(w, &self.rloc)
    }
}

/// One EID-record with its locator set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EidRecord {
    /// Record TTL in minutes (0 = withdraw, 0xFFFF_FFFF = receiver decides).
    pub ttl: u32,
    pub prefix: EidPrefix,
    /// ACT; meaningful only when there are no locators (send `NoAction` otherwise).
    pub action: Action,
    /// A: authoritative (set only by the ETR that owns the prefix).
    pub authoritative: bool,
    /// Map-Version (12 bits, RFC 9302); 0 = none.
    pub map_version: u16,
    pub locators: Vec<LocatorRecord>,
}

impl EidRecord {
    /// Largest map-version that fits the 12-bit field.
    pub const MAX_MAP_VERSION: u16 = 0x0FFF;

    /// An authoritative record of `prefix` with `locators` for `ttl` minutes: no action, map
    /// version 0 (what an ETR registers and answers with).
    pub fn authoritative(prefix: EidPrefix, ttl: u32, locators: Vec<LocatorRecord>) -> EidRecord {
        EidRecord {
            ttl,
            prefix,
            action: Action::NoAction,
            authoritative: true,
            map_version: 0,
            locators,
        }
    }

    /// The HAL view of the mapping: its usable locators (reachable, priority not 255) and, when
    /// there is none, the negative action.
    pub fn hal_mapping(&self) -> (Vec<Locator>, Option<NegativeAction>) {
        let locators: Vec<Locator> = self
            .locators
            .iter()
            .filter(|l| l.reachable && l.priority != 255)
            .map(|l| l.to_hal())
            .collect();
        let action = locators.is_empty().then(|| self.action.to_hal());
        (locators, action)
    }

    pub fn wire_len(&self) -> usize {
        10 + self.prefix.eid.wire_len()
            + self
                .locators
                .iter()
                .map(LocatorRecord::wire_len)
                .sum::<usize>()
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, ControlError> {
        let ttl = r.u32("EID-record")?;
        let loc_count = usize::from(r.u8("EID-record")?);
        let mask_len = r.u8("EID-record")?;
        let act_a = r.u16("EID-record")?;
        let version = r.u16("EID-record")?;
        let eid = Address::parse(r, "EID-record prefix")?;
        let prefix = EidPrefix { eid, mask_len };
        prefix.validate("EID-record mask length")?;
        r.check_count(loc_count, LOCATOR_MIN_LEN, "EID-record locators")?;
        let mut locators = Vec::with_capacity(loc_count);
        for _ in 0..loc_count {
            locators.push(LocatorRecord::parse(r)?);
        }
        Ok(Self {
            ttl,
            prefix,
            action: Action::from_bits((act_a >> 13) as u8),
            authoritative: act_a & 0x1000 != 0,
            map_version: version & Self::MAX_MAP_VERSION,
            locators,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), ControlError> {
        self.validate()?;
        w.u32(self.ttl)?;
        w.u8(count_u8("EID-record locator count", self.locators.len())?)?;
        w.u8(self.prefix.mask_len)?;
        let act_a = (u16::from(self.action.bits()) << 13) | (u16::from(self.authoritative) << 12);
        w.u16(act_a)?;
        w.u16(self.map_version)?;
        self.prefix.eid.write(w)?;
        for l in &self.locators {
            l.write(w)?;
        }
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<(), ControlError> {
        self.prefix.validate("EID-record mask length")?;
        count_u8("EID-record locator count", self.locators.len())?;
        if self.map_version > Self::MAX_MAP_VERSION {
            return Err(ControlError::BadValue {
                what: "EID-record map-version",
                value: u64::from(self.map_version),
            });
        }
        Ok(())
    }
}

/// Parses `count` EID-records, refusing counts that cannot fit in the remaining bytes before
/// allocating.
pub(crate) fn parse_records(
    r: &mut Reader<'_>,
    count: usize,
) -> Result<Vec<EidRecord>, ControlError> {
    r.check_count(count, EID_RECORD_MIN_LEN, "EID-records")?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(EidRecord::parse(r)?);
    }
    Ok(out)
}

pub(crate) fn records_len(records: &[EidRecord]) -> usize {
    records.iter().map(EidRecord::wire_len).sum()
}
