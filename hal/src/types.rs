//! Identifiers and value types shared by every layer.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::HalError;

/// Implements serde's `Serialize` and `Deserialize` for types through their `Display` and
/// `FromStr`: a value is its text (in JSON as in the configuration), refused as `FromStr` refuses it.
#[macro_export]
macro_rules! serde_via_str {
    ($($t:ty),+ $(,)?) => {$(
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    )+};
}

/// A data port of the appliance (front-panel port, TAP or AF_PACKET device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortId(pub u32);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

/// A line-card slot in a chassis (1-based, as printed on the chassis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotId(pub u8);

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {}", self.0)
    }
}

/// `new` (`$what` in `$range`, `$expected` saying which), `get`, the conversions from and to
/// `$raw` (checked by `new`; serde goes through them) and the decimal `Display` of an id kept
/// in a range.
macro_rules! checked_id {
    ($id:ident, $raw:ty, $range:expr, $what:literal, $expected:literal) => {
        impl $id {
            pub fn new(id: $raw) -> Result<Self, HalError> {
                if ($range).contains(&id) {
                    Ok(Self(id))
                } else {
                    Err(HalError::invalid($what, &id.to_string(), $expected))
                }
            }

            pub fn get(self) -> $raw {
                self.0
            }
        }

        impl TryFrom<$raw> for $id {
            type Error = HalError;
            fn try_from(v: $raw) -> Result<Self, Self::Error> {
                Self::new(v)
            }
        }

        impl From<$id> for $raw {
            fn from(v: $id) -> $raw {
                v.0
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

/// An 802.1Q VLAN id, 1..=4094.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct VlanId(u16);

impl VlanId {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = 4094;
}

checked_id!(VlanId, u16, VlanId::MIN..=VlanId::MAX, "VLAN id", "1-4094");

/// A LISP instance-ID (24 bits on the wire).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Iid(u32);

impl Iid {
    pub const MAX: u32 = 0x00ff_ffff;
}

checked_id!(Iid, u32, 0..=Iid::MAX, "LISP instance-id", "0-16777215");

/// An Ethernet MAC address. Displays in the NX-OS dotted form `0000.0c07.ac0a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    pub const ZERO: Mac = Mac([0; 6]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Colon form, as Linux tools print it.
    pub fn to_colon_string(&self) -> String {
        let o = self.0;
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl FromStr for Mac {
    type Err = HalError;

    /// Accepts `0000.0c07.ac0a`, `00:00:0c:07:ac:0a` and `00-00-0c-07-ac-0a`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HalError::invalid("MAC address", s, "EEEE.EEEE.EEEE or EE:EE:EE:EE:EE:EE");
        let hex: String = if s.len() == 14 && s.as_bytes()[4] == b'.' && s.as_bytes()[9] == b'.' {
            s.split('.').collect()
        } else if s.len() == 17 {
            let sep = s.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return Err(bad());
            }
            let parts: Vec<&str> = s.split(sep as char).collect();
            if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                return Err(bad());
            }
            parts.concat()
        } else {
            return Err(bad());
        };
        if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
        }
        Ok(Mac(out))
    }
}

crate::serde_via_str!(Mac);

/// An IPv4 or IPv6 prefix, always stored with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Builds a prefix, clearing host bits; errors when `len` exceeds the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, HalError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            let expected = if addr.is_ipv4() { "0-32" } else { "0-128" };
            return Err(HalError::invalid(
                "prefix length",
                &len.to_string(),
                expected,
            ));
        }
        Ok(Self {
            addr: mask(addr, len),
            len,
        })
    }

    /// A host route (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }

    /// True when `other` lies entirely inside `self` (equal counts as covered).
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// True when the two prefixes share any address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.covers(other) || other.covers(self)
    }
}

/// `addr` with the bits after the first `len` cleared (a shift by the whole width, `len` 0,
/// leaves no mask bits).
fn mask(addr: IpAddr, len: u8) -> IpAddr {
    let len = u32::from(len);
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = HalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HalError::invalid("prefix", s, "A.B.C.D/LEN or X:X::X/LEN");
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        Prefix::new(addr, len)
    }
}

crate::serde_via_str!(Prefix);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        let m: Mac = "0000.0E1D.010C".parse().unwrap();
        assert_eq!(m.to_string(), "0000.0e1d.010c");
        assert_eq!("00:00:0e:1d:01:0c".parse::<Mac>().unwrap(), m);
        assert_eq!("00-00-0e-1d-01-0c".parse::<Mac>().unwrap(), m);
        assert!("0000.0e1d.010".parse::<Mac>().is_err());
        assert!("zz:00:0e:1d:01:0c".parse::<Mac>().is_err());
        assert!("".parse::<Mac>().is_err());
    }

    #[test]
    fn prefix_masks_and_covers() {
        let p: Prefix = "172.16.1.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "172.16.1.0/24");
        let wide: Prefix = "172.16.0.0/16".parse().unwrap();
        assert!(wide.covers(&p));
        assert!(!p.covers(&wide));
        assert!(p.overlaps(&wide));
        assert!(!p.contains("172.16.2.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        let v6: Prefix = "2001:db8:bb::1/48".parse().unwrap();
        assert_eq!(v6.to_string(), "2001:db8:bb::/48");
        assert!(!v6.contains("172.16.1.1".parse().unwrap()));
        // The edges of the mask: none of the address kept, all of it.
        for (text, masked) in [
            ("10.1.2.3/0", "0.0.0.0/0"),
            ("10.1.2.3/32", "10.1.2.3/32"),
            ("2001:db8::1/0", "::/0"),
            ("2001:db8::1/128", "2001:db8::1/128"),
        ] {
            assert_eq!(text.parse::<Prefix>().unwrap().to_string(), masked);
        }
    }

    #[test]
    fn vlan_and_iid_ranges() {
        assert!(VlanId::new(0).is_err());
        assert!(VlanId::new(4095).is_err());
        assert_eq!(VlanId::new(10).unwrap().get(), 10);
        assert!(Iid::new(1 << 24).is_err());
    }
}
