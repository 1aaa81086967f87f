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
use super::map_register::{Body, MapRegister, XtrSiteId, body_message_methods};
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

    body_message_methods!("Map-Notify", I);

    /// A type 4 or type 5 message.
    fn check_first_word(w0: u32) -> Result<(), ControlError> {
        check_type(w0, MessageType::MapNotify)
            .or_else(|e| check_type(w0, MessageType::MapNotifyAck).map_err(|_| e))
    }

    fn with_body(w0: u32, body: Body) -> Self {
        Self {
            ack: w0 >> 28 == MessageType::MapNotifyAck as u32,
            nonce: body.nonce,
            auth: body.auth,
            records: body.records,
            xtr: body.xtr,
        }
    }

    fn first_word(&self) -> u32 {
        let mut w0 = (self.message_type() as u32) << 28;
        if self.xtr.is_some() {
            w0 |= I;
        }
        w0
    }
}
