//! Authentication of Map-Register, Map-Notify and Map-Notify-Ack (protocols.md §3.6, §3.11,
//! §12 #3, #4, #6).
//!
//! # What the digest covers
//!
//! The three authenticated messages share one layout after the first word:
//!
//! ```text
//! 0: word 0 | 4: Nonce (8) | 12: Key ID (2) | 14: Auth Data Length (2) | 16: Auth Data (len) | records… | [xTR-ID (16) Site-ID (8)]
//! ```
//!
//! `digest = HMAC(key = the password octets as configured, message = every octet of the LISP
//! message from the Type octet to the end of the UDP payload, with the Authentication Data field
//! replaced by zeros)`. SHA-1 for algorithm 1, SHA-256 for algorithm 2; the **full** 20 / 32
//! octet digest is sent (the historical `-96` / `-128` truncations are not used by any
//! implementation, §12 #3), and on receive the received Authentication Data Length must equal the
//! full digest length.
//!
//! * **Signing** ([`sign`]) covers the whole slice it is given, so when the I bit is set the
//!   xTR-ID/Site-ID trailer is included (RFC 6830/6833 and lispers.net reading, §12 #4).
//! * **Verifying** ([`verify`]) first tries the whole slice; if that fails and the I bit is set it
//!   tries again over the octets up to the end of the last record (RFC 9301 reading, trailer
//!   excluded). Either match is accepted. Comparisons are constant time (`Mac::verify_slice`).
//!
//! # Key-ID field
//!
//! Parsed as one 16-bit field (RFC 6830/6833, Wireshark); its **low octet is the algorithm** and
//! its high octet the RFC 9301 Key-ID (which of several configured keys). Cisco `key-id 1` puts
//! `00 01` on the wire; RFC 9301 reads the same bytes as key 0, algorithm 1 (§12 #6). An
//! [`AuthKey`] carries both halves and [`verify`] requires the field to equal
//! [`AuthKey::key_id_field`]. Algorithm 3 (HKDF) and anything else is refused.
//!
//! The HMAC is computed in a streaming fashion over (prefix, zeros, suffix): no copy of the
//! message is made, nothing is allocated.

use std::fmt;
use std::ops::Range;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::map_notify::MapNotify;
use super::map_register::MapRegister;
use super::{MessageType, message_type};
use crate::ControlError;

/// Offset of the 16-bit Key-ID field.
pub const KEY_ID_OFFSET: usize = 12;
/// Offset of the Authentication Data Length field.
pub const AUTH_LEN_OFFSET: usize = 14;
/// Offset of the Authentication Data.
pub const AUTH_DATA_OFFSET: usize = 16;

const ZEROS: [u8; 32] = [0u8; 32];

/// The authentication algorithm (the low octet of the Key-ID field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum KeyId {
    /// No authentication data.
    None = 0,
    /// HMAC-SHA-1, 20-octet digest sent (Cisco `key-id 1`).
    HmacSha1 = 1,
    /// HMAC-SHA-256, 32-octet digest sent.
    HmacSha256 = 2,
}

impl KeyId {
    /// Octets of Authentication Data this algorithm sends.
    pub fn digest_len(self) -> usize {
        match self {
            KeyId::None => 0,
            KeyId::HmacSha1 => 20,
            KeyId::HmacSha256 => 32,
        }
    }

    /// Decodes an algorithm number (0, 1, 2); anything else is `BadValue`.
    pub fn from_algorithm(v: u8) -> Result<Self, ControlError> {
        match v {
            0 => Ok(KeyId::None),
            1 => Ok(KeyId::HmacSha1),
            2 => Ok(KeyId::HmacSha256),
            other => Err(ControlError::BadValue {
                what: "authentication algorithm",
                value: u64::from(other),
            }),
        }
    }

    /// Decodes the 16-bit Key-ID field: the algorithm is its low octet.
    pub fn from_field(field: u16) -> Result<Self, ControlError> {
        Self::from_algorithm((field & 0xFF) as u8)
    }
}

/// The authentication part of a Map-Register / Map-Notify / Map-Notify-Ack as carried on the
/// wire. `data` is a digest, not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Authentication {
    /// The raw 16-bit Key-ID field (high octet: RFC 9301 key index; low octet: algorithm).
    pub key_id: u16,
    /// The Authentication Data (its length is the Authentication Data Length field).
    pub data: Vec<u8>,
}

impl Authentication {
    /// Key-ID 0, no data.
    pub fn none() -> Self {
        Self::default()
    }

    /// A zero-filled field of the right size for `key`, to be filled by [`sign`].
    pub fn placeholder(key: &AuthKey) -> Self {
        Self {
            key_id: key.key_id_field(),
            data: vec![0u8; key.algorithm.digest_len()],
        }
    }

    /// The algorithm named by the low octet of the Key-ID field.
    pub fn algorithm(&self) -> Result<KeyId, ControlError> {
        KeyId::from_field(self.key_id)
    }

    /// The RFC 9301 Key-ID (high octet of the field).
    pub fn key_index(&self) -> u8 {
        (self.key_id >> 8) as u8
    }
}

/// A shared secret. Its `Debug` never shows the secret; the bytes are overwritten on drop
/// (best effort).
#[derive(Clone)]
pub struct AuthKey {
    algorithm: KeyId,
    index: u8,
    secret: Box<[u8]>,
}

impl AuthKey {
    /// A key for `algorithm` (HMAC-SHA-1 or HMAC-SHA-256) with RFC 9301 key index 0.
    /// `secret` is the password exactly as configured (ASCII, no terminator).
    pub fn new(algorithm: KeyId, secret: &[u8]) -> Result<Self, ControlError> {
        if algorithm == KeyId::None {
            return Err(ControlError::BadValue {
                what: "authentication key algorithm",
                value: 0,
            });
        }
        Ok(Self {
            algorithm,
            index: 0,
            secret: secret.into(),
        })
    }

    /// Sets the RFC 9301 Key-ID (high octet of the 16-bit field).
    pub fn with_key_index(mut self, index: u8) -> Self {
        self.index = index;
        self
    }

    pub fn algorithm(&self) -> KeyId {
        self.algorithm
    }

    pub fn key_index(&self) -> u8 {
        self.index
    }

    /// The 16-bit Key-ID field messages signed with this key carry.
    pub fn key_id_field(&self) -> u16 {
        (u16::from(self.index) << 8) | self.algorithm as u16
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKey")
            .field("algorithm", &self.algorithm)
            .field("key_index", &self.index)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

impl Drop for AuthKey {
    fn drop(&mut self) {
        self.secret.fill(0);
        std::hint::black_box(&self.secret);
    }
}

/// Where the authentication fields of an authenticated message are.
struct AuthLayout {
    key_id: u16,
    data: Range<usize>,
}

fn layout(msg: &[u8]) -> Result<AuthLayout, ControlError> {
    match message_type(msg)? {
        MessageType::MapRegister | MessageType::MapNotify | MessageType::MapNotifyAck => {}
        other => {
            return Err(ControlError::BadValue {
                what: "authenticated message type",
                value: other as u64,
            });
        }
    }
    let field = |o: usize| -> Result<u16, ControlError> {
        let b = msg.get(o..o + 2).ok_or(ControlError::Truncated {
            what: "authentication header",
            needed: AUTH_DATA_OFFSET,
            available: msg.len(),
        })?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    };
    let key_id = field(KEY_ID_OFFSET)?;
    let len = usize::from(field(AUTH_LEN_OFFSET)?);
    let end = AUTH_DATA_OFFSET + len;
    if end > msg.len() {
        return Err(ControlError::Truncated {
            what: "authentication data",
            needed: end,
            available: msg.len(),
        });
    }
    Ok(AuthLayout {
        key_id,
        data: AUTH_DATA_OFFSET..end,
    })
}

/// HMAC over `msg[..end]` with `msg[auth]` read as zeros.
fn mac_over<Mc: Mac + KeyInit>(
    secret: &[u8],
    msg: &[u8],
    auth: &Range<usize>,
    end: usize,
    key_id: u16,
) -> Result<Mc, ControlError> {
    let failed = ControlError::AuthFailed { key_id };
    let mut m = <Mc as KeyInit>::new_from_slice(secret).map_err(|_| failed.clone())?;
    m.update(msg.get(..auth.start).ok_or(failed.clone())?);
    m.update(ZEROS.get(..auth.len()).ok_or(failed.clone())?);
    m.update(msg.get(auth.end..end).ok_or(failed)?);
    Ok(m)
}

fn check_key(l: &AuthLayout, key: &AuthKey) -> Result<(), ControlError> {
    let failed = ControlError::AuthFailed { key_id: l.key_id };
    if l.key_id != key.key_id_field() || l.data.len() != key.algorithm.digest_len() {
        return Err(failed);
    }
    Ok(())
}

/// Fills the Authentication Data of a Map-Register / Map-Notify / Map-Notify-Ack in place.
///
/// The message must already carry the key's Key-ID field and an Authentication Data Length equal
/// to the full digest length (see [`Authentication::placeholder`]). The digest covers the whole
/// slice (trailer included when I=1); see the module documentation.
pub fn sign(msg: &mut [u8], key: &AuthKey) -> Result<(), ControlError> {
    let l = layout(msg)?;
    if l.key_id != key.key_id_field() {
        return Err(ControlError::BadValue {
            what: "Key-ID field does not match the signing key",
            value: u64::from(l.key_id),
        });
    }
    if l.data.len() != key.algorithm.digest_len() {
        return Err(ControlError::BadLength {
            what: "authentication data length",
            declared: l.data.len(),
            actual: key.algorithm.digest_len(),
        });
    }
    let end = msg.len();
    let ro: &[u8] = msg;
    let digest: Vec<u8> = match key.algorithm {
        KeyId::HmacSha1 => mac_over::<Hmac<Sha1>>(&key.secret, ro, &l.data, end, l.key_id)?
            .finalize()
            .into_bytes()
            .to_vec(),
        KeyId::HmacSha256 => mac_over::<Hmac<Sha256>>(&key.secret, ro, &l.data, end, l.key_id)?
            .finalize()
            .into_bytes()
            .to_vec(),
        KeyId::None => {
            return Err(ControlError::BadValue {
                what: "authentication key algorithm",
                value: 0,
            });
        }
    };
    let dst = msg.get_mut(l.data.clone()).ok_or(ControlError::Truncated {
        what: "authentication data",
        needed: l.data.end,
        available: end,
    })?;
    if dst.len() != digest.len() {
        return Err(ControlError::BadLength {
            what: "authentication data length",
            declared: dst.len(),
            actual: digest.len(),
        });
    }
    dst.copy_from_slice(&digest);
    Ok(())
}

fn verify_scope(key: &AuthKey, msg: &[u8], l: &AuthLayout, end: usize) -> bool {
    let Some(tag) = msg.get(l.data.clone()) else {
        return false;
    };
    match key.algorithm {
        KeyId::HmacSha1 => mac_over::<Hmac<Sha1>>(&key.secret, msg, &l.data, end, l.key_id)
            .is_ok_and(|m| m.verify_slice(tag).is_ok()),
        KeyId::HmacSha256 => mac_over::<Hmac<Sha256>>(&key.secret, msg, &l.data, end, l.key_id)
            .is_ok_and(|m| m.verify_slice(tag).is_ok()),
        KeyId::None => false,
    }
}

/// Verifies the Authentication Data of a Map-Register / Map-Notify / Map-Notify-Ack.
///
/// `msg` is the whole LISP message (the UDP payload). Fails with
/// [`ControlError::AuthFailed`] when the Key-ID field differs from the key's, the length is not
/// the full digest length, or neither accepted scope (see the module documentation) matches.
pub fn verify(msg: &[u8], key: &AuthKey) -> Result<(), ControlError> {
    let l = layout(msg)?;
    check_key(&l, key)?;
    if verify_scope(key, msg, &l, msg.len()) {
        return Ok(());
    }
    if let Ok(Some(end)) = records_end_if_trailer(msg)
        && end < msg.len()
        && verify_scope(key, msg, &l, end)
    {
        return Ok(());
    }
    Err(ControlError::AuthFailed { key_id: l.key_id })
}

/// When the I bit is set: the offset just after the last EID-record (start of the xTR-ID).
fn records_end_if_trailer(msg: &[u8]) -> Result<Option<usize>, ControlError> {
    match message_type(msg)? {
        MessageType::MapRegister => MapRegister::parse_with_offsets(msg).map(|(_, o)| o),
        MessageType::MapNotify | MessageType::MapNotifyAck => {
            MapNotify::parse_with_offsets(msg).map(|(_, o)| o)
        }
        _ => Ok(None),
    }
}
