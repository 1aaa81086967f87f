//! HSRP v1 (RFC 2281), HSRP v2 and HSRP for IPv6 packets (protocols.md §7): views over bytes,
//! representation structs, parse and emit apart, keyed-MD5 authentication, and the
//! Ethernet/IP/UDP frames they travel in.
//!
//! * [`HsrpPacket::parse`] takes a UDP payload and decides the version from the first octet the
//!   way scapy does (0 → v1 fixed 20-octet packet, anything else → v2 TLVs); Wireshark decides
//!   from the destination address, which [`parse_hsrp_frame`] reports for cross-checking.
//! * v1 op code 3 (Advertise) parses to [`HsrpPacket::V1Advertise`] and is never sent
//!   (protocols.md §12 #2: ignore on receive).
//! * v2 states: Active is sent as 6 (Wireshark numbering); 16 (and 8 = Standby), the v1 codes
//!   scapy uses, are accepted on receive (protocols.md §12 #1).
//! * Authentication data never appears in `Debug` output ([`AuthText`], [`HsrpMd5Key`]); text
//!   and digests are compared in constant time.
//!
//! MD5 authentication is not in the reference beyond the TLV layout (§7.2 says the exact MD5
//! input is undocumented). roamer implements the RFC 1828 keyed-MD5 that Cisco devices use:
//! `MD5(key ‖ keyfill ‖ packet-with-zero-digest ‖ key)`, keyfill being MD5's own padding of the
//! key to a 64-octet block, the packet being the whole UDP payload with the 16 digest octets
//! zeroed; in v1-with-MD5 packets the 8-octet text field is all zero. The test vectors in
//! `control/tests/hsrp_wire_vectors.rs` are five captures from Cisco IOS images (v1 and v2)
//! published with John the Ripper's `hsrp` format, and this implementation reproduces all five.

mod frame;
mod v1;
mod v2;

pub use frame::{
    HSRP_IPV6_MCAST_MAC, HSRP_V1_MCAST_MAC, HSRP_V2_MCAST_MAC, HsrpFrame, HsrpTransport,
    build_hsrp_frame, emit_hsrp_frame, hello_source_mac, hsrp_frame_len, parse_hsrp_frame,
    virtual_link_local_ipv6, virtual_mac_ipv6, virtual_mac_v1, virtual_mac_v2,
};
pub use v1::{HsrpV1Packet, HsrpV1Repr};
pub use v2::{HsrpInterfaceState, HsrpV2GroupState, HsrpV2Repr, HsrpV2Tlv, HsrpV2Tlvs};

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::ControlError;

/// UDP port of HSRP v1 and v2 over IPv4 (source and destination).
pub const HSRP_PORT: u16 = 1985;
/// UDP port of HSRP for IPv6 (source and destination).
pub const HSRP_IPV6_PORT: u16 = 2029;
/// Destination of HSRP v1: all-routers.
pub const HSRP_V1_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
/// Destination of HSRP v2 over IPv4.
pub const HSRP_V2_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 102);
/// Destination of HSRP for IPv6.
pub const HSRP_IPV6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x66);

/// HSRP v1 packet length without MD5 (UDP length 28).
pub const V1_LEN: usize = 20;
/// HSRP v1 packet with the MD5 TLV appended.
pub const V1_MD5_LEN: usize = 50;
/// Highest v2 / IPv6 group number.
pub const MAX_V2_GROUP: u16 = 4095;

/// Default v1 hello time (s).
pub const DEFAULT_HELLO_SECS: u8 = 3;
/// Default v1 hold time (s).
pub const DEFAULT_HOLD_SECS: u8 = 10;
/// Default v2 hello time (ms).
pub const DEFAULT_HELLO_MS: u32 = 3000;
/// Default v2 hold time (ms).
pub const DEFAULT_HOLD_MS: u32 = 10000;
/// Default priority.
pub const DEFAULT_PRIORITY: u8 = 100;

/// TLV type of the MD5 authentication TLV (v2, and appended to v1).
pub const TLV_MD5_AUTH: u8 = 4;
/// Value length of the MD5 authentication TLV.
pub const MD5_TLV_LEN: u8 = 28;
/// MD5 algorithm number in the MD5 TLV.
pub const MD5_ALGORITHM: u8 = 1;

/// HSRP op code (op code 3, v1 Advertise, is [`HsrpPacket::V1Advertise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HsrpOpCode {
    Hello,
    Coup,
    Resign,
}

impl HsrpOpCode {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            HsrpOpCode::Hello => 0,
            HsrpOpCode::Coup => 1,
            HsrpOpCode::Resign => 2,
        }
    }

    /// From the code on the wire.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(HsrpOpCode::Hello),
            1 => Some(HsrpOpCode::Coup),
            2 => Some(HsrpOpCode::Resign),
            _ => None,
        }
    }
}

/// HSRP group state (one enum for both versions; the codes differ on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HsrpState {
    /// v2 only (code 0): "Disabled" — no v1 code.
    Disabled,
    Initial,
    Learn,
    Listen,
    Speak,
    Standby,
    Active,
}

impl HsrpState {
    /// v1 code: 0 Initial, 1 Learn, 2 Listen, 4 Speak, 8 Standby, 16 Active.
    pub fn v1_code(self) -> Option<u8> {
        match self {
            HsrpState::Disabled => None,
            HsrpState::Initial => Some(0),
            HsrpState::Learn => Some(1),
            HsrpState::Listen => Some(2),
            HsrpState::Speak => Some(4),
            HsrpState::Standby => Some(8),
            HsrpState::Active => Some(16),
        }
    }

    /// From a v1 code.
    pub fn from_v1_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(HsrpState::Initial),
            1 => Some(HsrpState::Learn),
            2 => Some(HsrpState::Listen),
            4 => Some(HsrpState::Speak),
            8 => Some(HsrpState::Standby),
            16 => Some(HsrpState::Active),
            _ => None,
        }
    }

    /// v2 code (Wireshark numbering): 0 Disabled, 1 Init, 2 Learn, 3 Listen, 4 Speak,
    /// 5 Standby, 6 Active.
    pub fn v2_code(self) -> u8 {
        match self {
            HsrpState::Disabled => 0,
            HsrpState::Initial => 1,
            HsrpState::Learn => 2,
            HsrpState::Listen => 3,
            HsrpState::Speak => 4,
            HsrpState::Standby => 5,
            HsrpState::Active => 6,
        }
    }

    /// From a v2 code; also accepts the unambiguous v1 codes 8 (Standby) and 16 (Active) that
    /// scapy puts in v2 packets (protocols.md §12 #1).
    pub fn from_v2_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(HsrpState::Disabled),
            1 => Some(HsrpState::Initial),
            2 => Some(HsrpState::Learn),
            3 => Some(HsrpState::Listen),
            4 => Some(HsrpState::Speak),
            5 | 8 => Some(HsrpState::Standby),
            6 | 16 => Some(HsrpState::Active),
            _ => None,
        }
    }
}

/// The 8-octet clear-text authentication data, NUL-padded. `Debug` never shows it; equality is
/// constant-time.
#[derive(Clone, Copy)]
pub struct AuthText([u8; 8]);

impl AuthText {
    /// Octets on the wire.
    pub const LEN: usize = 8;

    /// The default, "cisco".
    pub const fn cisco() -> Self {
        Self(*b"cisco\0\0\0")
    }

    /// A password of at most 8 octets, NUL-padded.
    pub fn new(text: &[u8]) -> Result<Self, ControlError> {
        let mut raw = [0u8; 8];
        let dst = raw.get_mut(..text.len()).ok_or(ControlError::TooLarge {
            what: "HSRP authentication text",
            limit: Self::LEN,
            actual: text.len(),
        })?;
        dst.copy_from_slice(text);
        Ok(Self(raw))
    }

    /// The 8 octets as received.
    pub const fn from_wire(raw: [u8; 8]) -> Self {
        Self(raw)
    }

    /// The 8 octets to send.
    pub fn as_wire(&self) -> &[u8; 8] {
        &self.0
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Default for AuthText {
    fn default() -> Self {
        Self::cisco()
    }
}

impl PartialEq for AuthText {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for AuthText {}

impl fmt::Debug for AuthText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthText(<redacted>)")
    }
}

/// An HSRP MD5 key string. `Debug` never shows it.
#[derive(Clone)]
pub struct HsrpMd5Key(Vec<u8>);

impl HsrpMd5Key {
    /// Longest key string (NX-OS / IOS `authentication md5 key-string` limit).
    pub const MAX_LEN: usize = 64;

    /// A key of 1 to 64 octets.
    pub fn new(key: &[u8]) -> Result<Self, ControlError> {
        if key.is_empty() {
            return Err(ControlError::BadValue {
                what: "HSRP MD5 key length",
                value: 0,
            });
        }
        if key.len() > Self::MAX_LEN {
            return Err(ControlError::TooLarge {
                what: "HSRP MD5 key",
                limit: Self::MAX_LEN,
                actual: key.len(),
            });
        }
        Ok(Self(key.to_vec()))
    }
}

impl fmt::Debug for HsrpMd5Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HsrpMd5Key(<redacted>)")
    }
}

/// The MD5 authentication TLV (type 4, length 28): algorithm, padding (sent 0, ignored),
/// flags, sender IPv4 address, key id, 16-octet digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HsrpMd5Auth {
    /// 1 = MD5.
    pub algorithm: u8,
    pub flags: u16,
    /// The sender's interface IPv4 address.
    pub sender_ip: Ipv4Addr,
    pub key_id: u32,
    /// As received, or to send (zero before [`sign_md5`]).
    pub digest: [u8; 16],
}

impl HsrpMd5Auth {
    /// A TLV to be signed: algorithm MD5, flags 0, zero digest.
    pub fn unsigned(sender_ip: Ipv4Addr, key_id: u32) -> Self {
        Self {
            algorithm: MD5_ALGORITHM,
            flags: 0,
            sender_ip,
            key_id,
            digest: [0; 16],
        }
    }

    pub(crate) fn parse(value: &[u8; 28]) -> Self {
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&value[12..28]);
        Self {
            algorithm: value[0],
            flags: u16::from_be_bytes([value[2], value[3]]),
            sender_ip: Ipv4Addr::new(value[4], value[5], value[6], value[7]),
            key_id: u32::from_be_bytes([value[8], value[9], value[10], value[11]]),
            digest,
        }
    }

    /// The whole TLV (type, length, value): 30 octets.
    pub(crate) fn to_tlv(self) -> [u8; 30] {
        let mut t = [0u8; 30];
        t[0] = TLV_MD5_AUTH;
        t[1] = MD5_TLV_LEN;
        t[2] = self.algorithm;
        t[4..6].copy_from_slice(&self.flags.to_be_bytes());
        t[6..10].copy_from_slice(&self.sender_ip.octets());
        t[10..14].copy_from_slice(&self.key_id.to_be_bytes());
        t[14..30].copy_from_slice(&self.digest);
        t
    }
}

/// The authentication a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsrpAuth {
    /// v2 only: no authentication TLV (accepted; the reference leaves its presence unverified).
    None,
    /// v1 text field, or v2 Text Authentication TLV (type 3).
    Text(AuthText),
    /// MD5 TLV (v1: appended after the 20 octets, whose text field is then zero).
    Md5(HsrpMd5Auth),
}

/// What a group is configured to accept.
#[derive(Debug, Clone)]
pub enum HsrpAuthConfig {
    /// Clear text (the default is "cisco").
    Text(AuthText),
    /// Keyed MD5.
    Md5(HsrpMd5Key),
}

impl Default for HsrpAuthConfig {
    fn default() -> Self {
        HsrpAuthConfig::Text(AuthText::cisco())
    }
}

/// A parsed HSRP UDP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsrpPacket {
    /// v1 Hello / Coup / Resign.
    V1(HsrpV1Repr),
    /// v1 op code 3 (interface-state Advertise): recognised, never sent, to be ignored.
    V1Advertise,
    /// v2 (IPv4 or IPv6) packet with a Group State TLV.
    V2(HsrpV2Repr),
    /// v2 packet with only an Interface State TLV (no Group State): to be ignored by a group.
    V2InterfaceState {
        state: HsrpInterfaceState,
        auth: HsrpAuth,
    },
}

impl HsrpPacket {
    /// Parses a UDP payload (version from the first octet: 0 → v1, else v2 TLVs).
    pub fn parse(payload: &[u8]) -> Result<Self, ControlError> {
        match version_octet(payload)? {
            0 => {
                let view = HsrpV1Packet::new_checked(payload)?;
                if view.op_code() == 3 {
                    return Ok(HsrpPacket::V1Advertise);
                }
                HsrpV1Repr::parse(&view).map(HsrpPacket::V1)
            }
            _ => v2::parse_packet(payload),
        }
    }

    /// Octets [`HsrpPacket::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            HsrpPacket::V1(r) => r.buffer_len(),
            HsrpPacket::V1Advertise => V1_LEN,
            HsrpPacket::V2(r) => r.buffer_len(),
            HsrpPacket::V2InterfaceState { auth, .. } => 6 + v2::auth_len(auth),
        }
    }

    /// Writes the UDP payload into `buf`, returns its length. MD5 digests are written as held in
    /// the representation; use [`sign_md5`] (or [`emit_hsrp_frame`] with a key) to sign.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        match self {
            HsrpPacket::V1(r) => r.emit(buf),
            HsrpPacket::V1Advertise => Err(ControlError::BadValue {
                what: "HSRP v1 Advertise (op code 3) is never sent",
                value: 3,
            }),
            HsrpPacket::V2(r) => r.emit(buf),
            HsrpPacket::V2InterfaceState { state, auth } => {
                v2::emit_tlvs(None, Some(state), auth, buf)
            }
        }
    }

    /// The payload as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ControlError> {
        let mut v = vec![0u8; self.buffer_len()];
        let n = self.emit(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    /// The authentication the packet carries (v1 Advertise carries none).
    pub fn auth(&self) -> HsrpAuth {
        match self {
            HsrpPacket::V1(r) => r.auth,
            HsrpPacket::V1Advertise => HsrpAuth::None,
            HsrpPacket::V2(r) => r.auth,
            HsrpPacket::V2InterfaceState { auth, .. } => *auth,
        }
    }

    /// Checks the packet against the group's authentication configuration; `payload` is the
    /// UDP payload this packet was parsed from (needed for MD5).
    ///
    /// * Text: the text must match (constant time). A v2 packet without any authentication TLV
    ///   is accepted when the configured text is the default "cisco" (protocols.md §7.4).
    /// * MD5: an MD5 TLV with algorithm 1 whose digest verifies (constant time). The key id is
    ///   not checked (one key string per group).
    ///
    /// Failure is [`ControlError::HsrpAuthFailed`]; RFC 2281 says to ignore such packets.
    pub fn authenticate(
        &self,
        payload: &[u8],
        config: &HsrpAuthConfig,
    ) -> Result<(), ControlError> {
        let fail = |reason| Err(ControlError::HsrpAuthFailed { reason });
        match (config, self.auth()) {
            (HsrpAuthConfig::Text(want), HsrpAuth::Text(got)) => {
                if want.ct_eq(&got) {
                    Ok(())
                } else {
                    fail("text mismatch")
                }
            }
            (HsrpAuthConfig::Text(want), HsrpAuth::None) => {
                if matches!(self, HsrpPacket::V1Advertise) {
                    fail("v1 Advertise carries no authentication")
                } else if want.ct_eq(&AuthText::cisco()) {
                    Ok(())
                } else {
                    fail("no authentication TLV, non-default text configured")
                }
            }
            (HsrpAuthConfig::Text(_), HsrpAuth::Md5(_)) => fail("MD5 received, text configured"),
            (HsrpAuthConfig::Md5(_), HsrpAuth::Text(_) | HsrpAuth::None) => {
                fail("no MD5 authentication TLV")
            }
            (HsrpAuthConfig::Md5(key), HsrpAuth::Md5(tlv)) => {
                if tlv.algorithm != MD5_ALGORITHM {
                    return fail("unknown MD5 TLV algorithm");
                }
                verify_md5(payload, key)
            }
        }
    }
}

/// The first `len` octets of `buf` to write into; `TooLarge` (`what`) when `buf` is shorter.
fn prefix_of<'a>(
    buf: &'a mut [u8],
    len: usize,
    what: &'static str,
) -> Result<&'a mut [u8], ControlError> {
    let available = buf.len();
    buf.get_mut(..len).ok_or(ControlError::TooLarge {
        what,
        limit: available,
        actual: len,
    })
}

/// The first octet of an HSRP UDP payload (0: v1, else v2 TLVs), or `Truncated` when empty.
fn version_octet(payload: &[u8]) -> Result<u8, ControlError> {
    payload.first().copied().ok_or(ControlError::Truncated {
        what: "HSRP packet",
        needed: 1,
        available: 0,
    })
}

/// Offset of the 16 digest octets of the MD5 TLV in an HSRP UDP payload.
fn md5_digest_offset(payload: &[u8]) -> Result<usize, ControlError> {
    let missing = ControlError::HsrpAuthFailed {
        reason: "no MD5 authentication TLV",
    };
    match version_octet(payload)? {
        0 => {
            if payload.len() >= V1_MD5_LEN
                && payload.get(V1_LEN) == Some(&TLV_MD5_AUTH)
                && payload.get(V1_LEN + 1) == Some(&MD5_TLV_LEN)
            {
                Ok(V1_LEN + 2 + 12)
            } else {
                Err(missing)
            }
        }
        _ => {
            for tlv in HsrpV2Tlvs::new(payload) {
                let tlv = tlv?;
                if tlv.tlv_type == TLV_MD5_AUTH && tlv.value.len() == usize::from(MD5_TLV_LEN) {
                    return Ok(tlv.offset + 2 + 12);
                }
            }
            Err(missing)
        }
    }
}

/// RFC 1828 keyed MD5 over `parts` (concatenated): `MD5(key ‖ keyfill ‖ data ‖ key)`.
fn keyed_md5(key: &HsrpMd5Key, parts: &[&[u8]]) -> [u8; 16] {
    let k = key.0.as_slice();
    let mut h = Md5::new();
    h.update(k);
    // keyfill: MD5's padding of the key alone (0x80, zeros to 56 mod 64, 64-bit LE bit count).
    let fill_zeros = (55usize.wrapping_sub(k.len() % 64)) % 64;
    h.update([0x80u8]);
    h.update([0u8; 64].get(..fill_zeros).unwrap_or(&[]));
    let bits = u64::try_from(k.len()).unwrap_or(0).wrapping_mul(8);
    h.update(bits.to_le_bytes());
    for p in parts {
        h.update(p);
    }
    h.update(k);
    h.finalize().into()
}

/// The digest of an HSRP payload holding an MD5 TLV (the digest octets are taken as zero).
pub fn md5_digest(payload: &[u8], key: &HsrpMd5Key) -> Result<[u8; 16], ControlError> {
    let off = md5_digest_offset(payload)?;
    let before = payload.get(..off).unwrap_or(&[]);
    let after = payload.get(off + 16..).unwrap_or(&[]);
    Ok(keyed_md5(key, &[before, &[0u8; 16], after]))
}

/// Computes and writes the MD5 digest of an emitted HSRP payload holding an MD5 TLV.
pub fn sign_md5(payload: &mut [u8], key: &HsrpMd5Key) -> Result<(), ControlError> {
    let digest = md5_digest(payload, key)?;
    let off = md5_digest_offset(payload)?;
    if let Some(d) = payload.get_mut(off..off + 16) {
        d.copy_from_slice(&digest);
    }
    Ok(())
}

/// Verifies the MD5 digest of a received HSRP payload, in constant time.
pub fn verify_md5(payload: &[u8], key: &HsrpMd5Key) -> Result<(), ControlError> {
    let expected = md5_digest(payload, key)?;
    let off = md5_digest_offset(payload)?;
    let received = payload.get(off..off + 16).unwrap_or(&[]);
    if bool::from(expected.as_slice().ct_eq(received)) {
        Ok(())
    } else {
        Err(ControlError::HsrpAuthFailed {
            reason: "MD5 digest mismatch",
        })
    }
}
