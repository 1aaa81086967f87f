//! HSRP v2 and HSRP for IPv6: a sequence of Type(1) Length(1) Value TLVs (protocols.md §7.4).
//!
//! Known TLVs must have their defined length (1 Group State: 40, 2 Interface State: 4,
//! 3 Text Authentication: 8, 4 MD5 Authentication: 28); unknown TLV types are skipped; fewer than
//! 2 trailing octets are ignored. At most one Group State, one Interface State and one
//! authentication TLV per packet. Emitted order: Group State, Interface State, authentication.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_hal::types::Mac;

use super::{
    AuthText, HsrpAuth, HsrpMd5Auth, HsrpOpCode, HsrpPacket, HsrpState, MAX_V2_GROUP, MD5_TLV_LEN,
    TLV_MD5_AUTH,
};
use crate::ControlError;

/// TLV type 1.
pub const TLV_GROUP_STATE: u8 = 1;
/// TLV type 2.
pub const TLV_INTERFACE_STATE: u8 = 2;
/// TLV type 3.
pub const TLV_TEXT_AUTH: u8 = 3;

const GROUP_STATE_LEN: usize = 40;
const INTERFACE_STATE_LEN: usize = 4;
const TEXT_AUTH_LEN: usize = 8;
const VERSION: u8 = 2;

/// One TLV of a v2 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsrpV2Tlv<'a> {
    /// Offset of the type octet in the payload.
    pub offset: usize,
    pub tlv_type: u8,
    pub value: &'a [u8],
}

/// Iterator over the TLVs of a v2 payload; yields an error (then stops) on a TLV that runs past
/// the end.
#[derive(Debug, Clone)]
pub struct HsrpV2Tlvs<'a> {
    payload: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> HsrpV2Tlvs<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            payload,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for HsrpV2Tlvs<'a> {
    type Item = Result<HsrpV2Tlv<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.payload.get(self.offset..).unwrap_or(&[]);
        let Some(&[tlv_type, len]) = rest.first_chunk::<2>() else {
            self.done = true;
            return None;
        };
        let len = usize::from(len);
        let Some(value) = rest.get(2..2 + len) else {
            self.done = true;
            return Some(Err(ControlError::Truncated {
                what: "HSRP v2 TLV",
                needed: 2 + len,
                available: rest.len(),
            }));
        };
        let tlv = HsrpV2Tlv {
            offset: self.offset,
            tlv_type,
            value,
        };
        self.offset += 2 + len;
        Some(Ok(tlv))
    }
}

/// The Group State TLV (type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HsrpV2GroupState {
    pub op_code: HsrpOpCode,
    pub state: HsrpState,
    /// 0..=4095.
    pub group: u16,
    /// The sender's interface MAC.
    pub identifier: Mac,
    /// 32 bits on the wire, 0..=255 in practice.
    pub priority: u32,
    /// Milliseconds.
    pub hellotime_ms: u32,
    /// Milliseconds.
    pub holdtime_ms: u32,
    /// IPv4 (IP version 4, then 12 zero octets) or IPv6 (IP version 6). HSRP for IPv6 is a v2
    /// packet with an IPv6 virtual address.
    pub virtual_ip: IpAddr,
}

impl HsrpV2GroupState {
    fn parse(v: &[u8; GROUP_STATE_LEN]) -> Result<Self, ControlError> {
        if v[0] != VERSION {
            return Err(ControlError::BadValue {
                what: "HSRP v2 Group State version",
                value: u64::from(v[0]),
            });
        }
        let op_code = HsrpOpCode::from_code(v[1]).ok_or(ControlError::BadValue {
            what: "HSRP v2 op code",
            value: u64::from(v[1]),
        })?;
        let state = HsrpState::from_v2_code(v[2]).ok_or(ControlError::BadValue {
            what: "HSRP v2 state",
            value: u64::from(v[2]),
        })?;
        let group = u16::from_be_bytes([v[4], v[5]]);
        if group > MAX_V2_GROUP {
            return Err(ControlError::BadValue {
                what: "HSRP v2 group (0-4095)",
                value: u64::from(group),
            });
        }
        let virtual_ip = match v[3] {
            4 => IpAddr::V4(Ipv4Addr::new(v[24], v[25], v[26], v[27])),
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&v[24..40]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            other => {
                return Err(ControlError::UnsupportedAfi {
                    what: "HSRP v2 IP version",
                    afi: u16::from(other),
                });
            }
        };
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&v[6..12]);
        let be32 = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        Ok(Self {
            op_code,
            state,
            group,
            identifier: Mac(mac),
            priority: be32(12),
            hellotime_ms: be32(16),
            holdtime_ms: be32(20),
            virtual_ip,
        })
    }

    fn to_tlv(self) -> Result<[u8; 2 + GROUP_STATE_LEN], ControlError> {
        if self.group > MAX_V2_GROUP {
            return Err(ControlError::BadValue {
                what: "HSRP v2 group (0-4095)",
                value: u64::from(self.group),
            });
        }
        let mut t = [0u8; 2 + GROUP_STATE_LEN];
        t[0] = TLV_GROUP_STATE;
        t[1] = 40;
        t[2] = VERSION;
        t[3] = self.op_code.code();
        t[4] = self.state.v2_code();
        t[6..8].copy_from_slice(&self.group.to_be_bytes());
        t[8..14].copy_from_slice(&self.identifier.0);
        t[14..18].copy_from_slice(&self.priority.to_be_bytes());
        t[18..22].copy_from_slice(&self.hellotime_ms.to_be_bytes());
        t[22..26].copy_from_slice(&self.holdtime_ms.to_be_bytes());
        match self.virtual_ip {
            IpAddr::V4(a) => {
                t[5] = 4;
                t[26..30].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                t[5] = 6;
                t[26..42].copy_from_slice(&a.octets());
            }
        }
        Ok(t)
    }
}

/// The Interface State TLV (type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HsrpInterfaceState {
    pub active_groups: u16,
    pub passive_groups: u16,
}

/// A v2 packet: Group State, optional Interface State, authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsrpV2Repr {
    pub group_state: HsrpV2GroupState,
    pub interface_state: Option<HsrpInterfaceState>,
    /// A Hello is sent with a text TLV ("cisco" by default) or an MD5 TLV.
    pub auth: HsrpAuth,
}

impl HsrpV2Repr {
    /// Octets [`HsrpV2Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        42 + if self.interface_state.is_some() { 6 } else { 0 } + auth_len(&self.auth)
    }

    /// Writes the TLVs, returns the length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        emit_tlvs(
            Some(&self.group_state),
            self.interface_state.as_ref(),
            &self.auth,
            buf,
        )
    }

    /// Parses a v2 payload that must hold a Group State TLV.
    pub fn parse_bytes(payload: &[u8]) -> Result<Self, ControlError> {
        match parse_packet(payload)? {
            HsrpPacket::V2(r) => Ok(r),
            _ => Err(ControlError::BadValue {
                what: "HSRP v2 packet without a Group State TLV",
                value: 0,
            }),
        }
    }
}

pub(super) fn auth_len(auth: &HsrpAuth) -> usize {
    match auth {
        HsrpAuth::None => 0,
        HsrpAuth::Text(_) => 2 + TEXT_AUTH_LEN,
        HsrpAuth::Md5(_) => 2 + usize::from(MD5_TLV_LEN),
    }
}

/// The value of `tlv`, which must be exactly `N` octets (`BadLength`, `len_what`) and the first
/// TLV of its kind (`seen`: one came before; `BadValue`, `dup_what`).
fn tlv_value<'a, const N: usize>(
    tlv: &HsrpV2Tlv<'a>,
    seen: bool,
    len_what: &'static str,
    dup_what: &'static str,
) -> Result<&'a [u8; N], ControlError> {
    let value = tlv
        .value
        .first_chunk::<N>()
        .filter(|_| tlv.value.len() == N)
        .ok_or(ControlError::BadLength {
            what: len_what,
            declared: tlv.value.len(),
            actual: N,
        })?;
    if seen {
        return Err(ControlError::BadValue {
            what: dup_what,
            value: u64::from(tlv.tlv_type),
        });
    }
    Ok(value)
}

pub(super) fn parse_packet(payload: &[u8]) -> Result<HsrpPacket, ControlError> {
    let mut group_state = None;
    let mut interface_state = None;
    let mut auth = None;
    for tlv in HsrpV2Tlvs::new(payload) {
        let tlv = tlv?;
        match tlv.tlv_type {
            TLV_GROUP_STATE => {
                let v = tlv_value::<GROUP_STATE_LEN>(
                    &tlv,
                    group_state.is_some(),
                    "HSRP v2 Group State TLV length (must be 40)",
                    "HSRP v2 duplicate Group State TLV",
                )?;
                group_state = Some(HsrpV2GroupState::parse(v)?);
            }
            TLV_INTERFACE_STATE => {
                let &[a0, a1, p0, p1] = tlv_value::<INTERFACE_STATE_LEN>(
                    &tlv,
                    interface_state.is_some(),
                    "HSRP v2 Interface State TLV length (must be 4)",
                    "HSRP v2 duplicate Interface State TLV",
                )?;
                interface_state = Some(HsrpInterfaceState {
                    active_groups: u16::from_be_bytes([a0, a1]),
                    passive_groups: u16::from_be_bytes([p0, p1]),
                });
            }
            TLV_TEXT_AUTH => {
                let t = tlv_value::<TEXT_AUTH_LEN>(
                    &tlv,
                    auth.is_some(),
                    "HSRP v2 Text Authentication TLV length (must be 8)",
                    "HSRP v2 second authentication TLV",
                )?;
                auth = Some(HsrpAuth::Text(AuthText::from_wire(*t)));
            }
            TLV_MD5_AUTH => {
                let v = tlv_value::<{ MD5_TLV_LEN as usize }>(
                    &tlv,
                    auth.is_some(),
                    "HSRP v2 MD5 Authentication TLV length (must be 28)",
                    "HSRP v2 second authentication TLV",
                )?;
                auth = Some(HsrpAuth::Md5(HsrpMd5Auth::parse(v)));
            }
            _ => {} // unknown TLV: skipped
        }
    }
    let auth = auth.unwrap_or(HsrpAuth::None);
    match (group_state, interface_state) {
        (Some(group_state), interface_state) => Ok(HsrpPacket::V2(HsrpV2Repr {
            group_state,
            interface_state,
            auth,
        })),
        (None, Some(state)) => Ok(HsrpPacket::V2InterfaceState { state, auth }),
        (None, None) => Err(ControlError::BadValue {
            what: "HSRP v2 packet without Group State or Interface State TLV",
            value: 0,
        }),
    }
}

pub(super) fn emit_tlvs(
    group_state: Option<&HsrpV2GroupState>,
    interface_state: Option<&HsrpInterfaceState>,
    auth: &HsrpAuth,
    buf: &mut [u8],
) -> Result<usize, ControlError> {
    let len = group_state.map_or(0, |_| 2 + GROUP_STATE_LEN)
        + interface_state.map_or(0, |_| 2 + INTERFACE_STATE_LEN)
        + auth_len(auth);
    let out = super::prefix_of(buf, len, "HSRP v2 packet for the buffer")?;
    let mut at = 0usize;
    let mut put = |bytes: &[u8]| {
        if let Some(dst) = out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        at += bytes.len();
    };
    if let Some(g) = group_state {
        put(&g.to_tlv()?);
    }
    if let Some(s) = interface_state {
        let mut t = [TLV_INTERFACE_STATE, 4, 0, 0, 0, 0];
        t[2..4].copy_from_slice(&s.active_groups.to_be_bytes());
        t[4..6].copy_from_slice(&s.passive_groups.to_be_bytes());
        put(&t);
    }
    match auth {
        HsrpAuth::None => {}
        HsrpAuth::Text(text) => {
            put(&[TLV_TEXT_AUTH, 8]);
            put(text.as_wire());
        }
        HsrpAuth::Md5(m) => put(&m.to_tlv()),
    }
    Ok(len)
}
