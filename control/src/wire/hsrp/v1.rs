//! HSRP v1: the fixed 20-octet packet (RFC 2281 §5.1, protocols.md §7.2), optionally followed by
//! the 30-octet MD5 TLV.

use std::net::Ipv4Addr;

use super::{
    AuthText, HsrpAuth, HsrpMd5Auth, HsrpOpCode, HsrpState, MD5_TLV_LEN, TLV_MD5_AUTH, V1_LEN,
    V1_MD5_LEN,
};
use crate::ControlError;

const EMPTY: [u8; V1_LEN] = [0; V1_LEN];

/// A view over an HSRP v1 packet (at least 20 octets, checked once by the constructor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsrpV1Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HsrpV1Packet<T> {
    /// Wraps `buffer` after checking its length.
    pub fn new_checked(buffer: T) -> Result<Self, ControlError> {
        let available = buffer.as_ref().len();
        if available < V1_LEN {
            return Err(ControlError::Truncated {
                what: "HSRP v1 packet",
                needed: V1_LEN,
                available,
            });
        }
        Ok(Self { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn octets(&self) -> &[u8; V1_LEN] {
        self.buffer.as_ref().first_chunk().unwrap_or(&EMPTY)
    }

    pub fn auth_data(&self) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.octets()[8..16]);
        a
    }
    pub fn virtual_ip(&self) -> Ipv4Addr {
        let o = self.octets();
        Ipv4Addr::new(o[16], o[17], o[18], o[19])
    }

    /// The 28-octet value of the MD5 TLV following the 20 octets, when there is one (type 4,
    /// length 28, at least 50 octets in all — the test Wireshark applies, with `>=`).
    pub fn md5_tlv(&self) -> Option<&[u8; 28]> {
        let b = self.buffer.as_ref();
        if b.len() >= V1_MD5_LEN
            && b.get(V1_LEN) == Some(&TLV_MD5_AUTH)
            && b.get(V1_LEN + 1) == Some(&MD5_TLV_LEN)
        {
            b.get(V1_LEN + 2..).and_then(|v| v.first_chunk())
        } else {
            None
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HsrpV1Packet<T> {
    fn octets_mut(&mut self) -> Option<&mut [u8; V1_LEN]> {
        self.buffer.as_mut().first_chunk_mut()
    }

    fn set(&mut self, i: usize, v: u8) {
        if let Some(b) = self.octets_mut().and_then(|o| o.get_mut(i)) {
            *b = v;
        }
    }

    pub fn set_auth_data(&mut self, a: &[u8; 8]) {
        if let Some(o) = self.octets_mut() {
            o[8..16].copy_from_slice(a);
        }
    }
    pub fn set_virtual_ip(&mut self, ip: Ipv4Addr) {
        if let Some(o) = self.octets_mut() {
            o[16..20].copy_from_slice(&ip.octets());
        }
    }
}

/// A getter and a setter for each one-octet field, at its offset in the 20 octets.
macro_rules! octet_fields {
    ($($get:ident, $set:ident: $at:literal;)*) => {
        impl<T: AsRef<[u8]>> HsrpV1Packet<T> {
            $(
                pub fn $get(&self) -> u8 {
                    self.octets()[$at]
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> HsrpV1Packet<T> {
            $(
                pub fn $set(&mut self, v: u8) {
                    self.set($at, v);
                }
            )*
        }
    };
}

octet_fields! {
    version, set_version: 0;
    op_code, set_op_code: 1;
    state, set_state: 2;
    hellotime, set_hellotime: 3;
    holdtime, set_holdtime: 4;
    priority, set_priority: 5;
    group, set_group: 6;
    reserved, set_reserved: 7;
}

/// An HSRP v1 Hello, Coup or Resign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsrpV1Repr {
    pub op_code: HsrpOpCode,
    pub state: HsrpState,
    /// Seconds.
    pub hellotime: u8,
    /// Seconds.
    pub holdtime: u8,
    pub priority: u8,
    pub group: u8,
    /// Text (the 8-octet field) or MD5 (the appended TLV; the text field is then sent as zero).
    /// [`HsrpAuth::None`] cannot be sent in v1.
    pub auth: HsrpAuth,
    /// 0.0.0.0 when not configured (Learn).
    pub virtual_ip: Ipv4Addr,
}

impl HsrpV1Repr {
    /// Reads a v1 packet. The reserved octet is ignored, and so are octets after the 20 unless
    /// they form an MD5 TLV. Op code 3 is refused here ([`super::HsrpPacket::parse`] maps it to
    /// `V1Advertise`).
    pub fn parse<T: AsRef<[u8]>>(p: &HsrpV1Packet<T>) -> Result<Self, ControlError> {
        if p.version() != 0 {
            return Err(ControlError::BadValue {
                what: "HSRP v1 version",
                value: u64::from(p.version()),
            });
        }
        let op_code = HsrpOpCode::from_code(p.op_code()).ok_or(ControlError::BadValue {
            what: "HSRP v1 op code",
            value: u64::from(p.op_code()),
        })?;
        let state = HsrpState::from_v1_code(p.state()).ok_or(ControlError::BadValue {
            what: "HSRP v1 state",
            value: u64::from(p.state()),
        })?;
        let auth = match p.md5_tlv() {
            Some(v) => HsrpAuth::Md5(HsrpMd5Auth::parse(v)),
            None => HsrpAuth::Text(AuthText::from_wire(p.auth_data())),
        };
        Ok(Self {
            op_code,
            state,
            hellotime: p.hellotime(),
            holdtime: p.holdtime(),
            priority: p.priority(),
            group: p.group(),
            auth,
            virtual_ip: p.virtual_ip(),
        })
    }

    /// Parses a v1 payload.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, ControlError> {
        Self::parse(&HsrpV1Packet::new_checked(bytes)?)
    }

    /// 20, or 50 with MD5.
    pub fn buffer_len(&self) -> usize {
        match self.auth {
            HsrpAuth::Md5(_) => V1_MD5_LEN,
            _ => V1_LEN,
        }
    }

    /// Writes the packet, returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        let state = self.state.v1_code().ok_or(ControlError::BadValue {
            what: "HSRP v1 state (Disabled has no v1 code)",
            value: 0,
        })?;
        let len = self.buffer_len();
        let out = super::prefix_of(buf, len, "HSRP v1 packet for the buffer")?;
        let text = match self.auth {
            HsrpAuth::Text(t) => *t.as_wire(),
            HsrpAuth::Md5(_) => [0u8; 8],
            HsrpAuth::None => {
                return Err(ControlError::BadValue {
                    what: "HSRP v1 without authentication data",
                    value: 0,
                });
            }
        };
        let mut p = HsrpV1Packet::new_checked(&mut *out)?;
        p.set_version(0);
        p.set_op_code(self.op_code.code());
        p.set_state(state);
        p.set_hellotime(self.hellotime);
        p.set_holdtime(self.holdtime);
        p.set_priority(self.priority);
        p.set_group(self.group);
        p.set_reserved(0);
        p.set_auth_data(&text);
        p.set_virtual_ip(self.virtual_ip);
        if let HsrpAuth::Md5(m) = self.auth
            && let Some(t) = out.get_mut(V1_LEN..V1_MD5_LEN)
        {
            t.copy_from_slice(&m.to_tlv());
        }
        Ok(len)
    }
}
