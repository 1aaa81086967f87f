//! LISP control messages (RFC 9301 / RFC 6833) and their authentication.
//!
//! Every message kind is a representation struct with `parse(&[u8]) -> Result<Self, _>`,
//! `emit(&self, &mut [u8]) -> Result<usize, _>`, `buffer_len()` and `to_vec()`; parsing and
//! emitting are separate and neither can panic on any input. [`parse_message`] dispatches on the
//! type nibble.
//!
//! Conventions (protocols.md §3, §12):
//! * unknown / reserved flag bits are ignored on receive and sent as zero;
//! * octets after the last element a message defines are ignored on receive (extensions such as
//!   LISP-SEC data, NAT-draft MS-RTR blocks); authentication still covers them;
//! * counts read from the wire are checked against the remaining octets before allocating;
//! * only AFI 0, 1, 2 and the Instance-ID LCAF are accepted (`UnsupportedAfi` otherwise);
//! * errors are [`ControlError`] values with static field names and numbers.
//!
//! | type | struct |
//! |---|---|
//! | 1 Map-Request | [`MapRequest`] |
//! | 2 Map-Reply | [`MapReply`] |
//! | 3 Map-Register | [`MapRegister`] |
//! | 4 Map-Notify, 5 Map-Notify-Ack | [`MapNotify`] (`ack`) |
//! | 8 Encapsulated Control Message | [`Ecm`] |
//!
//! Authentication: [`auth::sign`], [`auth::verify`], [`AuthKey`].

pub mod address;
pub mod auth;
pub(crate) mod bytes;
pub mod ecm;
pub mod map_notify;
pub mod map_register;
pub mod map_reply;
pub mod map_request;
pub mod record;

pub use address::{AFI_IPV4, AFI_IPV6, AFI_LCAF, AFI_NONE, Address, EidPrefix};
pub use auth::{AuthKey, Authentication, KeyId, sign, verify};
pub use ecm::Ecm;
pub use map_notify::MapNotify;
pub use map_register::{MapRegister, XtrSiteId};
pub use map_reply::MapReply;
pub use map_request::MapRequest;
pub use record::{Action, EidRecord, LocatorRecord};

use crate::ControlError;
use bytes::emit_vec;

/// UDP port of the LISP control plane (and TCP port of reliable registration).
pub const LISP_CONTROL_PORT: u16 = 4342;

/// The message types this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageType {
    MapRequest = 1,
    MapReply = 2,
    MapRegister = 3,
    MapNotify = 4,
    MapNotifyAck = 5,
    Ecm = 8,
}

impl MessageType {
    /// Decodes a type number; 6 (Map-Referral), 7 (Info), 15 and unassigned values are
    /// `BadValue`.
    pub fn from_u8(v: u8) -> Result<Self, ControlError> {
        match v {
            1 => Ok(Self::MapRequest),
            2 => Ok(Self::MapReply),
            3 => Ok(Self::MapRegister),
            4 => Ok(Self::MapNotify),
            5 => Ok(Self::MapNotifyAck),
            8 => Ok(Self::Ecm),
            other => Err(ControlError::BadValue {
                what: "LISP message type",
                value: u64::from(other),
            }),
        }
    }
}

/// The type of the message in `buf` (high nibble of the first octet).
pub fn message_type(buf: &[u8]) -> Result<MessageType, ControlError> {
    let b = buf.first().ok_or(ControlError::Truncated {
        what: "LISP message type",
        needed: 1,
        available: 0,
    })?;
    MessageType::from_u8(b >> 4)
}

/// Errors unless the first word carries type `t`.
pub(crate) fn check_type(w0: u32, t: MessageType) -> Result<(), ControlError> {
    let got = (w0 >> 28) as u8;
    if got != t as u8 {
        return Err(ControlError::BadValue {
            what: "LISP message type",
            value: u64::from(got),
        });
    }
    Ok(())
}

/// Any LISP control message roamer parses or emits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LispMessage {
    MapRequest(MapRequest),
    MapReply(MapReply),
    MapRegister(MapRegister),
    /// Map-Notify (type 4) or Map-Notify-Ack (type 5, `ack == true`).
    MapNotify(MapNotify),
    Ecm(Ecm),
}

/// Parses one LISP control message (a UDP 4342 payload), dispatching on its type.
pub fn parse_message(buf: &[u8]) -> Result<LispMessage, ControlError> {
    Ok(match message_type(buf)? {
        MessageType::MapRequest => LispMessage::MapRequest(MapRequest::parse(buf)?),
        MessageType::MapReply => LispMessage::MapReply(MapReply::parse(buf)?),
        MessageType::MapRegister => LispMessage::MapRegister(MapRegister::parse(buf)?),
        MessageType::MapNotify | MessageType::MapNotifyAck => {
            LispMessage::MapNotify(MapNotify::parse(buf)?)
        }
        MessageType::Ecm => LispMessage::Ecm(Ecm::parse(buf)?),
    })
}

impl LispMessage {
    pub fn message_type(&self) -> MessageType {
        match self {
            LispMessage::MapRequest(_) => MessageType::MapRequest,
            LispMessage::MapReply(_) => MessageType::MapReply,
            LispMessage::MapRegister(_) => MessageType::MapRegister,
            LispMessage::MapNotify(m) => m.message_type(),
            LispMessage::Ecm(_) => MessageType::Ecm,
        }
    }

    /// The nonce (for an ECM, the nonce of the encapsulated message).
    pub fn nonce(&self) -> u64 {
        match self {
            LispMessage::MapRequest(m) => m.nonce,
            LispMessage::MapReply(m) => m.nonce,
            LispMessage::MapRegister(m) => m.nonce,
            LispMessage::MapNotify(m) => m.nonce,
            LispMessage::Ecm(m) => m.message.nonce(),
        }
    }

    /// Same as [`parse_message`].
    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        parse_message(buf)
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            LispMessage::MapRequest(m) => m.buffer_len(),
            LispMessage::MapReply(m) => m.buffer_len(),
            LispMessage::MapRegister(m) => m.buffer_len(),
            LispMessage::MapNotify(m) => m.buffer_len(),
            LispMessage::Ecm(m) => m.buffer_len(),
        }
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        match self {
            LispMessage::MapRequest(m) => m.emit(buf),
            LispMessage::MapReply(m) => m.emit(buf),
            LispMessage::MapRegister(m) => m.emit(buf),
            LispMessage::MapNotify(m) => m.emit(buf),
            LispMessage::Ecm(m) => m.emit(buf),
        }
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        emit_vec(self.buffer_len(), |v| self.emit(v))
    }
}
