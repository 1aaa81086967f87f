//! Map-Server reliable transport (TCP 4342) framing, protocols.md §5 and §12 #13.
//!
//! The encoding is draft-kouvelas-lisp-map-server-reliable-transport-04 as the Wireshark
//! `lisp-tcp` dissector decodes it (the only public byte-level description available):
//!
//! ```text
//! 0: Type (2) | 2: Length (2, total incl. header and end marker, ≥ 8) | 4: Message ID (4, when Length > 8)
//! 8: data (Length − 12) | Length − 4: End Marker 0x9FACADE9
//! ```
//!
//! Two layers:
//! * **Framing** — [`Frame`] and the incremental [`ReliableDecoder`]: type, length, message id,
//!   end marker. Any framing error (Length < 8, Length 9–11, Length above the session maximum,
//!   wrong end marker) is [`ControlError::Framing`]: the stream cannot be resynchronised, the
//!   caller must reset the TCP session (the ETR then falls back to UDP registration, §5.1).
//! * **Messages** — [`ReliableMessage`] decoded from a frame's type and data. Errors here are the
//!   ordinary typed errors and do not require a reset (answer with an Error Notification).
//!
//! Type numbers are those of the Wireshark dissector (16–21) and can be changed with
//! [`TypeNumbers`] should the IETF draft renumber them.

use super::lisp::address::{Address, EidPrefix};
use super::lisp::bytes::{Reader, Writer, check_room, emit_vec, len_u16};
use super::lisp::map_register::MapRegister;
use super::lisp::record::EidRecord;
use crate::ControlError;

/// The constant that ends every message.
pub const END_MARKER: u32 = 0x9FAC_ADE9;
/// Smallest legal Length (Type, Length and End Marker only, no Message ID).
pub const MIN_FRAME_LEN: usize = 8;
/// Length of a frame with a Message ID and no data.
pub const HEADER_AND_MARKER_LEN: usize = 12;
/// Default session maximum for one message (the Length field allows 65535).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024;

/// The message type numbers in use on a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeNumbers {
    pub error_notification: u16,
    pub registration: u16,
    pub registration_ack: u16,
    pub registration_nack: u16,
    pub registration_refresh: u16,
    pub mapping_notification: u16,
}

impl TypeNumbers {
    /// draft-kouvelas-…-04 / Wireshark `lisp-tcp`.
    pub const KOUVELAS_04: Self = Self {
        error_notification: 16,
        registration: 17,
        registration_ack: 18,
        registration_nack: 19,
        registration_refresh: 20,
        mapping_notification: 21,
    };
}

impl Default for TypeNumbers {
    fn default() -> Self {
        Self::KOUVELAS_04
    }
}

/// One framed message, undecoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    pub msg_type: u16,
    /// `None` only for an 8-octet frame (then `data` is empty).
    pub msg_id: Option<u32>,
    pub data: Vec<u8>,
}

fn framing(detail: &'static str) -> ControlError {
    ControlError::Framing { detail }
}

/// Checks a Length field against the framing rules and the session maximum.
fn check_length(len: usize, max: usize) -> Result<(), ControlError> {
    if len < MIN_FRAME_LEN {
        return Err(framing("message length below 8"));
    }
    if len > MIN_FRAME_LEN && len < HEADER_AND_MARKER_LEN {
        return Err(framing("message length between 9 and 11"));
    }
    if len > max {
        return Err(framing("message length above the session maximum"));
    }
    Ok(())
}

impl Frame {
    pub fn buffer_len(&self) -> usize {
        match self.msg_id {
            Some(_) => HEADER_AND_MARKER_LEN + self.data.len(),
            None => MIN_FRAME_LEN,
        }
    }

    /// Parses exactly one frame occupying all of `buf`. Framing errors are `Framing`.
    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        let (f, used) =
            Self::parse_prefix(buf, usize::from(u16::MAX))?.ok_or(framing("incomplete message"))?;
        if used != buf.len() {
            return Err(framing("octets after the end marker"));
        }
        Ok(f)
    }

    /// Parses the frame at the start of `buf`; `Ok(None)` when more octets are needed.
    fn parse_prefix(buf: &[u8], max: usize) -> Result<Option<(Self, usize)>, ControlError> {
        let (Some(t), Some(l)) = (buf.get(0..2), buf.get(2..4)) else {
            return Ok(None);
        };
        let msg_type = u16::from_be_bytes([t[0], t[1]]);
        let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
        check_length(len, max)?;
        let Some(whole) = buf.get(..len) else {
            return Ok(None);
        };
        let marker_at = len - 4;
        let m = whole
            .get(marker_at..len)
            .ok_or(framing("message length below 8"))?;
        if u32::from_be_bytes([m[0], m[1], m[2], m[3]]) != END_MARKER {
            return Err(framing("bad end marker"));
        }
        let (msg_id, data) = if len == MIN_FRAME_LEN {
            (None, Vec::new())
        } else {
            let id = whole.get(4..8).ok_or(framing("message length below 8"))?;
            let data = whole.get(8..marker_at).unwrap_or(&[]);
            (
                Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]])),
                data.to_vec(),
            )
        };
        Ok(Some((
            Self {
                msg_type,
                msg_id,
                data,
            },
            len,
        )))
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        if self.msg_id.is_none() && !self.data.is_empty() {
            return Err(ControlError::BadValue {
                what: "reliable frame data without a message id",
                value: self.data.len() as u64,
            });
        }
        let len = len_u16("reliable message length", self.buffer_len())?;
        check_room(buf, self.buffer_len())?;
        let mut w = Writer::new(buf);
        w.u16(self.msg_type)?;
        w.u16(len)?;
        if let Some(id) = self.msg_id {
            w.u32(id)?;
            w.put(&self.data)?;
        }
        w.u32(END_MARKER)?;
        Ok(w.pos())
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        emit_vec(self.buffer_len(), |v| self.emit(v))
    }
}

/// Incremental decoder for one TCP session: feed it what the socket returned, get the complete
/// frames. It keeps at most one partial frame (≤ the session maximum). After a framing error it
/// refuses every further input until [`ReliableDecoder::reset`] (the session must be torn down).
#[derive(Debug, Clone)]
pub struct ReliableDecoder {
    buf: Vec<u8>,
    max_message_len: usize,
    failed: bool,
}

impl Default for ReliableDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl ReliableDecoder {
    /// A decoder refusing messages longer than `max_message_len` (clamped to 12..=65535).
    pub fn new(max_message_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_message_len: max_message_len.clamp(HEADER_AND_MARKER_LEN, usize::from(u16::MAX)),
            failed: false,
        }
    }

    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Octets of an incomplete frame held back.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets buffered octets and a previous failure (for a new session).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.failed = false;
    }

    /// Appends `bytes` and returns every frame now complete, in order. On a framing error the
    /// frames completed earlier in the same call are dropped with it: the session is reset and
    /// the peer re-sends its state on the next session (§5.1).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, ControlError> {
        if self.failed {
            return Err(framing("session already failed; reset required"));
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut off = 0usize;
        loop {
            let rest = self.buf.get(off..).unwrap_or(&[]);
            match Frame::parse_prefix(rest, self.max_message_len) {
                Ok(Some((f, used))) => {
                    out.push(f);
                    off += used;
                }
                Ok(None) => break,
                Err(e) => {
                    self.failed = true;
                    self.buf.clear();
                    return Err(e);
                }
            }
        }
        self.buf.drain(..off.min(self.buf.len()));
        Ok(out)
    }
}

/// Registration-NACK reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    NotValidSitePrefix,
    AuthenticationFailure,
    LocatorSetNotAllowed,
    NotDefined,
    Other(u8),
}

impl RejectReason {
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::NotValidSitePrefix,
            2 => Self::AuthenticationFailure,
            3 => Self::LocatorSetNotAllowed,
            4 => Self::NotDefined,
            o => Self::Other(o),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Self::NotValidSitePrefix => 1,
            Self::AuthenticationFailure => 2,
            Self::LocatorSetNotAllowed => 3,
            Self::NotDefined => 4,
            Self::Other(o) => o,
        }
    }
}

/// Registration-Refresh scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshScope {
    /// 0: everything (no EID-prefix follows).
    All,
    /// 1: all prefixes of one instance.
    Instance,
    /// 2: all prefixes of one address family in one instance.
    InstanceFamily,
    /// 3: all prefixes covered by the given prefix.
    Covered,
    /// 4: exactly the given prefix.
    Exact,
    Other(u8),
}

impl RefreshScope {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::All,
            1 => Self::Instance,
            2 => Self::InstanceFamily,
            3 => Self::Covered,
            4 => Self::Exact,
            o => Self::Other(o),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Self::All => 0,
            Self::Instance => 1,
            Self::InstanceFamily => 2,
            Self::Covered => 3,
            Self::Exact => 4,
            Self::Other(o) => o,
        }
    }
}

/// A decoded reliable-transport message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReliableMessage {
    /// Type 16.
    ErrorNotification {
        code: u8,
        offending_type: u16,
        offending_length: u16,
        offending_id: u32,
        offending_data: Vec<u8>,
    },
    /// Type 17: one complete Map-Register (authentication data included), kept as the exact
    /// octets so that [`verify`](super::lisp::verify) can run over them; validated as a
    /// Map-Register when decoded. Use [`ReliableMessage::map_register`] to parse it.
    Registration { map_register: Vec<u8> },
    /// Type 18.
    RegistrationAck { eid: EidPrefix },
    /// Type 19.
    RegistrationNack {
        reason: RejectReason,
        eid: EidPrefix,
    },
    /// Type 20. `eid` is present exactly when the scope is not `All`.
    RegistrationRefresh {
        scope: RefreshScope,
        rejected_only: bool,
        eid: Option<EidPrefix>,
    },
    /// Type 21.
    MappingNotification {
        xtr_id: [u8; 16],
        site_id: u64,
        record: EidRecord,
    },
    /// Any other type (22–30 RLOC-membership etc.), data kept as is.
    Other { msg_type: u16, data: Vec<u8> },
}

/// A decoded message with its Message ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReliableFrame {
    pub msg_id: u32,
    pub message: ReliableMessage,
}

/// `Prefix-length (1) AFI (2) address` (LCAF Instance-ID allowed).
fn parse_prefix(r: &mut Reader<'_>) -> Result<EidPrefix, ControlError> {
    let mask_len = r.u8("reliable EID-prefix")?;
    let eid = Address::parse(r, "reliable EID-prefix")?;
    let p = EidPrefix { eid, mask_len };
    p.validate("reliable EID-prefix length")?;
    Ok(p)
}

fn write_prefix(w: &mut Writer<'_>, p: &EidPrefix) -> Result<(), ControlError> {
    p.validate("reliable EID-prefix length")?;
    w.u8(p.mask_len)?;
    p.eid.write(w)
}

const REFRESH_REJECTED_ONLY: u16 = 0x8000;

impl ReliableMessage {
    /// The Map-Register of a Registration.
    pub fn map_register(&self) -> Option<Result<MapRegister, ControlError>> {
        match self {
            Self::Registration { map_register } => Some(MapRegister::parse(map_register)),
            _ => None,
        }
    }

    pub fn msg_type(&self, t: &TypeNumbers) -> u16 {
        match self {
            Self::ErrorNotification { .. } => t.error_notification,
            Self::Registration { .. } => t.registration,
            Self::RegistrationAck { .. } => t.registration_ack,
            Self::RegistrationNack { .. } => t.registration_nack,
            Self::RegistrationRefresh { .. } => t.registration_refresh,
            Self::MappingNotification { .. } => t.mapping_notification,
            Self::Other { msg_type, .. } => *msg_type,
        }
    }

    /// Octets of message data (between Message ID and End Marker).
    pub fn data_len(&self) -> usize {
        match self {
            Self::ErrorNotification { offending_data, .. } => 12 + offending_data.len(),
            Self::Registration { map_register } => map_register.len(),
            Self::RegistrationAck { eid } => 1 + eid.eid.wire_len(),
            Self::RegistrationNack { eid, .. } => 3 + 1 + eid.eid.wire_len(),
            Self::RegistrationRefresh { eid, .. } => 3 + eid.map_or(0, |e| 1 + e.eid.wire_len()),
            Self::MappingNotification { record, .. } => 24 + record.wire_len(),
            Self::Other { data, .. } => data.len(),
        }
    }

    /// Decodes the data of a frame of type `msg_type`. Octets after the decoded fields are
    /// ignored (except for Registration, whose data is exactly the Map-Register).
    pub fn decode(msg_type: u16, data: &[u8], t: &TypeNumbers) -> Result<Self, ControlError> {
        let mut r = Reader::new(data);
        if msg_type == t.error_notification {
            let code = r.u8("Error Notification")?;
            let _reserved = r.take(3, "Error Notification")?;
            let offending_type = r.u16("Error Notification")?;
            let offending_length = r.u16("Error Notification")?;
            let offending_id = r.u32("Error Notification")?;
            Ok(Self::ErrorNotification {
                code,
                offending_type,
                offending_length,
                offending_id,
                offending_data: r.rest().to_vec(),
            })
        } else if msg_type == t.registration {
            MapRegister::parse(data)?;
            Ok(Self::Registration {
                map_register: data.to_vec(),
            })
        } else if msg_type == t.registration_ack {
            Ok(Self::RegistrationAck {
                eid: parse_prefix(&mut r)?,
            })
        } else if msg_type == t.registration_nack {
            let reason = RejectReason::from_u8(r.u8("Registration NACK")?);
            let _reserved = r.u16("Registration NACK")?;
            Ok(Self::RegistrationNack {
                reason,
                eid: parse_prefix(&mut r)?,
            })
        } else if msg_type == t.registration_refresh {
            let scope = RefreshScope::from_u8(r.u8("Registration Refresh")?);
            let flags = r.u16("Registration Refresh")?;
            let eid = if scope == RefreshScope::All {
                None
            } else {
                Some(parse_prefix(&mut r)?)
            };
            Ok(Self::RegistrationRefresh {
                scope,
                rejected_only: flags & REFRESH_REJECTED_ONLY != 0,
                eid,
            })
        } else if msg_type == t.mapping_notification {
            let xtr_id = r.array::<16>("Mapping Notification xTR-ID")?;
            let site_id = r.u64("Mapping Notification Site-ID")?;
            let record = EidRecord::parse(&mut r)?;
            Ok(Self::MappingNotification {
                xtr_id,
                site_id,
                record,
            })
        } else {
            Ok(Self::Other {
                msg_type,
                data: data.to_vec(),
            })
        }
    }

    /// Writes the message data (not the frame header) into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        match self {
            Self::RegistrationRefresh { scope, eid, .. }
                if (*scope == RefreshScope::All) != eid.is_none() =>
            {
                return Err(ControlError::BadValue {
                    what: "Registration Refresh scope and EID-prefix disagree",
                    value: u64::from(scope.to_u8()),
                });
            }
            Self::Registration { map_register } => {
                MapRegister::parse(map_register)?;
            }
            Self::MappingNotification { record, .. } => record.validate()?,
            _ => {}
        }
        check_room(buf, self.data_len())?;
        let mut w = Writer::new(buf);
        match self {
            Self::ErrorNotification {
                code,
                offending_type,
                offending_length,
                offending_id,
                offending_data,
            } => {
                w.u8(*code)?;
                w.put(&[0, 0, 0])?;
                w.u16(*offending_type)?;
                w.u16(*offending_length)?;
                w.u32(*offending_id)?;
                w.put(offending_data)?;
            }
            Self::Registration { map_register } => w.put(map_register)?,
            Self::RegistrationAck { eid } => write_prefix(&mut w, eid)?,
            Self::RegistrationNack { reason, eid } => {
                w.u8(reason.to_u8())?;
                w.u16(0)?;
                write_prefix(&mut w, eid)?;
            }
            Self::RegistrationRefresh {
                scope,
                rejected_only,
                eid,
            } => {
                w.u8(scope.to_u8())?;
                w.u16(if *rejected_only {
                    REFRESH_REJECTED_ONLY
                } else {
                    0
                })?;
                if let Some(p) = eid {
                    write_prefix(&mut w, p)?;
                }
            }
            Self::MappingNotification {
                xtr_id,
                site_id,
                record,
            } => {
                w.put(xtr_id)?;
                w.u64(*site_id)?;
                record.write(&mut w)?;
            }
            Self::Other { data, .. } => w.put(data)?,
        }
        Ok(w.pos())
    }
}

impl ReliableFrame {
    /// Decodes the message of a raw frame (an id-less 8-octet frame is `BadLength`).
    pub fn from_frame(f: &Frame, t: &TypeNumbers) -> Result<Self, ControlError> {
        let msg_id = f.msg_id.ok_or(ControlError::BadLength {
            what: "reliable message without message id",
            declared: MIN_FRAME_LEN,
            actual: HEADER_AND_MARKER_LEN,
        })?;
        Ok(Self {
            msg_id,
            message: ReliableMessage::decode(f.msg_type, &f.data, t)?,
        })
    }

    /// The raw frame carrying this message.
    pub fn to_frame(&self, t: &TypeNumbers) -> Result<Frame, ControlError> {
        let mut data = vec![0u8; self.message.data_len()];
        let n = self.message.encode(&mut data)?;
        data.truncate(n);
        Ok(Frame {
            msg_type: self.message.msg_type(t),
            msg_id: Some(self.msg_id),
            data,
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_AND_MARKER_LEN + self.message.data_len()
    }

    /// Parses one complete frame (default type numbers): framing errors are `Framing`.
    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        Self::from_frame(&Frame::parse(buf)?, &TypeNumbers::default())
    }

    /// Emits with the default type numbers.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        self.emit_with(buf, &TypeNumbers::default())
    }

    pub fn emit_with(&self, buf: &mut [u8], t: &TypeNumbers) -> Result<usize, ControlError> {
        self.to_frame(t)?.emit(buf)
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        self.to_frame(&TypeNumbers::default())?.to_vec()
    }
}
