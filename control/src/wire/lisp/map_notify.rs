//! Map-Notify (type 4) and Map-Notify-Ack (type 5), protocols.md §3.7, §6.
//!
//! ```text
//! Type=4/5 |I|R|  Reserved (18)  | Record Count
//! Nonce (8) | Key ID (2) | Auth Data Length (2) | Auth Data | EID-records | [xTR-ID Site-ID]
//! ```
//!
//! `I` (0x0800_0000, NAT-traversal draft / Wireshark `lisp.mnot.flags.xtrid`) says an
//! xTR-ID/Site-ID trailer follows the records; set it only when echoing a register that had one
//! (NX-OS never does). The NAT-draft `R` bit (0x0400_0000) is ignored and sent as zero (§12 #9);
//! the MS-RTR block it announces is left among the ignored trailing octets.
//!
//! Wireshark 4.0 does not decode type 5 ("Unknown LISP Control Packet (5)").

use super::auth::{AuthKey, Authentication, verify};
use super::bytes::{Reader, emit_vec};
use super::map_register::{Body, MapRegister, XtrSiteId};
use super::record::EidRecord;
use super::{MessageType, check_type};
use crate::ControlError;

const I: u32 = 0x0800_0000;

/// A Map-Notify or (with `ack`) a Map-Notify-Ack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapNotify {
    /// `true`: type 5 Map-Notify-Ack; `false`: type 4 Map-Notify.
    pub ack: bool,
    pub nonce: u64,
    pub auth: Authentication,
    pub records: Vec<EidRecord>,
    /// Present ⇔ I bit.
    pub xtr: Option<XtrSiteId>,
}

impl MapNotify {
    /// The Map-Notify acknowledging `reg` (nonce, records and trailer copied; sign it with
    /// [`MapNotify::to_signed_vec`]).
    pub fn acknowledging(reg: &MapRegister) -> Self {
        Self {
            ack: false,
            nonce: reg.nonce,
            auth: Authentication::none(),
            records: reg.records.clone(),
            xtr: reg.xtr,
        }
    }

    /// The Map-Notify-Ack answering `notify` (a copy with the type changed).
    pub fn ack_of(notify: &MapNotify) -> Self {
        Self {
            ack: true,
            ..notify.clone()
        }
    }

    pub fn message_type(&self) -> MessageType {
        if self.ack {
            MessageType::MapNotifyAck
        } else {
            MessageType::MapNotify
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + Body::wire_len(&self.auth, &self.records, self.xtr.is_some())
    }

    /// Parses a type 4 or type 5 message.
    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        Self::parse_with_offsets(buf).map(|(m, _)| m)
    }

    /// Verifies the authentication with `key` and then parses.
    pub fn parse_verified(buf: &[u8], key: &AuthKey) -> Result<Self, ControlError> {
        verify(buf, key)?;
        Self::parse(buf)
    }

    pub(crate) fn parse_with_offsets(buf: &[u8]) -> Result<(Self, Option<usize>), ControlError> {
        let mut r = Reader::new(buf);
        let w0 = r.u32("Map-Notify header")?;
        let ack = match check_type(w0, MessageType::MapNotify) {
            Ok(()) => false,
            Err(e) => {
                check_type(w0, MessageType::MapNotifyAck).map_err(|_| e)?;
                true
            }
        };
        let (body, records_end) = Body::parse(
            &mut r,
            (w0 & 0xFF) as usize,
            w0 & I != 0,
            "Map-Notify header",
        )?;
        Ok((
            Self {
                ack,
                nonce: body.nonce,
                auth: body.auth,
                records: body.records,
                xtr: body.xtr,
            },
            records_end,
        ))
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        let mut w0 = (self.message_type() as u32) << 28;
        if self.xtr.is_some() {
            w0 |= I;
        }
        Body::emit(
            buf,
            w0,
            self.nonce,
            &self.auth,
            &self.records,
            self.xtr.as_ref(),
            "Map-Notify record count",
        )
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        emit_vec(self.buffer_len(), |v| self.emit(v))
    }

    /// Emits with `auth` replaced by a placeholder for `key` and signs; `self.auth` is ignored.
    pub fn to_signed_vec(&self, key: &AuthKey) -> Result<Vec<u8>, ControlError> {
        Body::signed_vec(self, key, |m| &mut m.auth, Self::to_vec)
    }
}
