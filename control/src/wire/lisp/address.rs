//! AFI-prefixed addresses (AFI 0, 1, 2) and the Instance-ID LCAF (AFI 16387, type 2).
//!
//! Reference: protocols.md §3.2, RFC 8060 §4.1. Any other AFI (MAC, distinguished name, other LCAF
//! types, nested LCAFs) is refused with [`ControlError::UnsupportedAfi`] or
//! [`ControlError::BadValue`]: "unknown AFI inside a control message → drop and log" (§3.1).
//!
//! On receive the LCAF `Rsvd1` and `Flags` octets are ignored; on emit they are zero.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_hal::types::{Iid, Prefix};

use super::bytes::{Reader, Writer};
use crate::ControlError;

/// AFI 0: no address (zero octets follow).
pub const AFI_NONE: u16 = 0;
/// AFI 1: IPv4 (4 octets).
pub const AFI_IPV4: u16 = 1;
/// AFI 2: IPv6 (16 octets).
pub const AFI_IPV6: u16 = 2;
/// AFI 16387 (0x4003): LISP Canonical Address Format.
pub const AFI_LCAF: u16 = 16387;
/// LCAF type 2: Instance-ID.
pub const LCAF_TYPE_INSTANCE_ID: u8 = 2;

/// An address as carried in a LISP control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    /// AFI 0, no address bytes (e.g. "no source EID").
    None,
    /// AFI 1 or 2.
    Ip(IpAddr),
    /// Instance-ID LCAF wrapping AFI 0, 1 or 2. `iid` is the full 32-bit wire field (only the low
    /// 24 bits fit in the data-plane header); `mask_len` is the LCAF IID mask-length octet
    /// (0 for an ordinary EID; non-zero only with `addr: None`, an IID range).
    InstanceId {
        iid: u32,
        mask_len: u8,
        addr: Option<IpAddr>,
    },
}

impl Address {
    /// The IP address, if any, with or without an instance-ID wrapper.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Address::None => None,
            Address::Ip(a) => Some(a),
            Address::InstanceId { addr, .. } => addr,
        }
    }

    /// The instance-ID if the address is wrapped in an Instance-ID LCAF.
    pub fn iid(&self) -> Option<u32> {
        match *self {
            Address::InstanceId { iid, .. } => Some(iid),
            _ => None,
        }
    }

    /// The AFI that appears first on the wire.
    pub fn afi(&self) -> u16 {
        match self {
            Address::None => AFI_NONE,
            Address::Ip(a) => ip_afi(a),
            Address::InstanceId { .. } => AFI_LCAF,
        }
    }

    /// Octets on the wire including the AFI.
    pub fn wire_len(&self) -> usize {
        match self {
            Address::None => 2,
            Address::Ip(a) => 2 + ip_len(a),
            Address::InstanceId { addr, .. } => 8 + 4 + 2 + addr.as_ref().map_or(0, ip_len),
        }
    }

    /// The widest prefix length that makes sense for this address (32, 128; 0 for AFI 0).
    pub fn max_mask_len(&self) -> u8 {
        match self.ip() {
            Some(IpAddr::V4(_)) => 32,
            Some(IpAddr::V6(_)) => 128,
            None => 0,
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>, what: &'static str) -> Result<Self, ControlError> {
        let afi = r.u16(what)?;
        match afi {
            AFI_NONE => Ok(Address::None),
            AFI_IPV4 | AFI_IPV6 => Ok(Address::Ip(parse_ip_body(r, afi, what)?)),
            AFI_LCAF => {
                let _rsvd1 = r.u8("LCAF header")?;
                let _flags = r.u8("LCAF header")?;
                let lcaf_type = r.u8("LCAF header")?;
                let mask_len = r.u8("LCAF header")?;
                let length = usize::from(r.u16("LCAF header")?);
                if lcaf_type != LCAF_TYPE_INSTANCE_ID {
                    return Err(ControlError::BadValue {
                        what: "LCAF type",
                        value: u64::from(lcaf_type),
                    });
                }
                if length > r.remaining() {
                    return Err(ControlError::Truncated {
                        what: "Instance-ID LCAF",
                        needed: length,
                        available: r.remaining(),
                    });
                }
                let start = r.pos();
                let iid = r.u32("Instance-ID LCAF")?;
                let inner_afi = r.u16("Instance-ID LCAF")?;
                let addr = match inner_afi {
                    AFI_NONE => None,
                    AFI_IPV4 | AFI_IPV6 => Some(parse_ip_body(r, inner_afi, "Instance-ID LCAF")?),
                    other => {
                        return Err(ControlError::UnsupportedAfi {
                            what: "Instance-ID LCAF inner address",
                            afi: other,
                        });
                    }
                };
                let used = r.pos().saturating_sub(start);
                if used != length {
                    return Err(ControlError::BadLength {
                        what: "Instance-ID LCAF length",
                        declared: length,
                        actual: used,
                    });
                }
                Ok(Address::InstanceId {
                    iid,
                    mask_len,
                    addr,
                })
            }
            other => Err(ControlError::UnsupportedAfi { what, afi: other }),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), ControlError> {
        match self {
            Address::None => w.u16(AFI_NONE),
            Address::Ip(a) => write_ip(w, a),
            Address::InstanceId {
                iid,
                mask_len,
                addr,
            } => {
                let inner = 4 + 2 + addr.as_ref().map_or(0, ip_len);
                w.u16(AFI_LCAF)?;
                w.u8(0)?;
                w.u8(0)?;
                w.u8(LCAF_TYPE_INSTANCE_ID)?;
                w.u8(*mask_len)?;
                w.u16(inner as u16)?;
                w.u32(*iid)?;
                match addr {
                    Some(a) => write_ip(w, a),
                    None => w.u16(AFI_NONE),
                }
            }
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::None => f.write_str("(none)"),
            Address::Ip(a) => write!(f, "{a}"),
            Address::InstanceId {
                iid, addr: Some(a), ..
            } => write!(f, "[{iid}] {a}"),
            Address::InstanceId {
                iid,
                mask_len,
                addr: None,
            } => write!(f, "[{iid}/{mask_len}]"),
        }
    }
}

impl From<IpAddr> for Address {
    fn from(a: IpAddr) -> Self {
        Address::Ip(a)
    }
}

/// An EID-prefix: an address plus a mask length (Map-Request records, EID-records, the
/// reliable-transport ACK/NACK/Refresh prefixes).
///
/// The address is kept exactly as received (host bits are not cleared) so that
/// `parse(emit(x)) == x`; [`EidPrefix::prefix`] gives the normalised HAL [`Prefix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EidPrefix {
    pub eid: Address,
    pub mask_len: u8,
}

impl EidPrefix {
    /// An EID-prefix without instance-ID.
    pub fn from_prefix(p: Prefix) -> Self {
        Self {
            eid: Address::Ip(p.addr()),
            mask_len: p.len(),
        }
    }

    /// An EID-prefix inside an Instance-ID LCAF.
    pub fn with_iid(iid: Iid, p: Prefix) -> Self {
        Self {
            eid: Address::InstanceId {
                iid: iid.get(),
                mask_len: 0,
                addr: Some(p.addr()),
            },
            mask_len: p.len(),
        }
    }

    /// The HAL prefix (host bits cleared), or `None` for AFI 0 / IID ranges.
    pub fn prefix(&self) -> Option<Prefix> {
        self.eid
            .ip()
            .and_then(|a| Prefix::new(a, self.mask_len).ok())
    }

    /// The HAL instance-ID (`None` without LCAF, or when the 32-bit IID exceeds 24 bits).
    pub fn hal_iid(&self) -> Option<Iid> {
        self.eid.iid().and_then(|i| Iid::new(i).ok())
    }

    /// Checks the mask length against the address family.
    pub(crate) fn validate(&self, what: &'static str) -> Result<(), ControlError> {
        if self.eid.ip().is_some() && self.mask_len > self.eid.max_mask_len() {
            return Err(ControlError::BadValue {
                what,
                value: u64::from(self.mask_len),
            });
        }
        Ok(())
    }
}

impl fmt::Display for EidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.eid, self.mask_len)
    }
}

pub(crate) fn ip_afi(a: &IpAddr) -> u16 {
    match a {
        IpAddr::V4(_) => AFI_IPV4,
        IpAddr::V6(_) => AFI_IPV6,
    }
}

pub(crate) fn ip_len(a: &IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

fn parse_ip_body(r: &mut Reader<'_>, afi: u16, what: &'static str) -> Result<IpAddr, ControlError> {
    match afi {
        AFI_IPV4 => Ok(IpAddr::V4(Ipv4Addr::from(r.array::<4>(what)?))),
        AFI_IPV6 => Ok(IpAddr::V6(Ipv6Addr::from(r.array::<16>(what)?))),
        other => Err(ControlError::UnsupportedAfi { what, afi: other }),
    }
}

/// Reads an AFI-prefixed IP address (AFI 1 or 2 only): locators and ITR-RLOCs.
pub(crate) fn parse_ip(r: &mut Reader<'_>, what: &'static str) -> Result<IpAddr, ControlError> {
    let afi = r.u16(what)?;
    parse_ip_body(r, afi, what)
}

/// Writes an AFI-prefixed IP address.
pub(crate) fn write_ip(w: &mut Writer<'_>, a: &IpAddr) -> Result<(), ControlError> {
    w.u16(ip_afi(a))?;
    match a {
        IpAddr::V4(v4) => w.put(&v4.octets()),
        IpAddr::V6(v6) => w.put(&v6.octets()),
    }
}
