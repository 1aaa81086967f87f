//! Map-Register (type 3), protocols.md §3.6, §3.11.
//!
//! First word as read and written (RFC 9301 plus the reliable-transport draft r bit):
//!
//! ```text
//! Type=3 |P|S|I|R|  Reserved (10)  |r|E|T|a|R|M| Record Count
//! ```
//!
//! Bit 7 (NAT-draft "RTR", 0x0100_0000) and bit 22 (0x0000_0200) are ignored on receive and sent
//! as zero (§12 #9). `I` is derived from [`MapRegister::xtr`].
//!
//! The body (nonce, Key-ID, authentication, records, optional xTR-ID/Site-ID) is shared with
//! Map-Notify and Map-Notify-Ack ([`super::map_notify`]). Octets after the last parsed element are
//! ignored (they are still covered by the HMAC, which is computed over the whole message).
//!
//! To build a signed register use [`MapRegister::to_signed_vec`] (or fill `auth` with
//! [`Authentication::placeholder`], emit, then [`sign`](super::auth::sign)); to accept one use
//! [`verify`](super::auth::verify) on the received bytes and then [`MapRegister::parse`].

use super::auth::{AuthKey, Authentication, sign, verify};
use super::bytes::{Reader, Writer, check_room, count_u8, emit_vec, len_u16};
use super::record::{EidRecord, parse_records, records_len};
use super::{MessageType, check_type};
use crate::ControlError;

const P: u32 = 0x0800_0000;
const S: u32 = 0x0400_0000;
const I: u32 = 0x0200_0000;
const RELIABLE: u32 = 0x0000_2000;
const E: u32 = 0x0000_1000;
const T: u32 = 0x0000_0800;
const MERGE: u32 = 0x0000_0400;
const M: u32 = 0x0000_0100;

/// The 16-octet xTR-ID and 8-octet Site-ID appended when the I bit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct XtrSiteId {
    pub xtr_id: [u8; 16],
    pub site_id: u64,
}

impl XtrSiteId {
    pub const WIRE_LEN: usize = 24;
}

/// A Map-Register.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRegister {
    /// P: the Map-Server should proxy-reply.
    pub proxy_reply: bool,
    /// S: LISP-SEC capable.
    pub lisp_sec: bool,
    /// r: reliable-transport capable (draft-ietf-lisp-map-server-reliable-transport, §5.1).
    pub reliable_transport: bool,
    /// E: EID-notify (RFC 9301).
    pub eid_notify: bool,
    /// T: time out by the record TTL instead of 3 minutes.
    pub ttl_timeout: bool,
    /// a: merge request.
    pub merge: bool,
    /// M: want a Map-Notify.
    pub want_map_notify: bool,
    pub nonce: u64,
    pub auth: Authentication,
    pub records: Vec<EidRecord>,
    /// Present ⇔ I bit.
    pub xtr: Option<XtrSiteId>,
}

/// The part shared by Map-Register, Map-Notify and Map-Notify-Ack after the first word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub nonce: u64,
    pub auth: Authentication,
    pub records: Vec<EidRecord>,
    pub xtr: Option<XtrSiteId>,
}

/// The methods Map-Register and Map-Notify(-Ack) share through [`Body`]: sizing, parsing,
/// emitting and signing. `$name` names the message in errors, `$i` is its I bit (xTR-ID and
/// Site-ID follow the records). The type has the fields `nonce`, `auth`, `records` and `xtr`
/// and provides `check_first_word(w0)` (the message type), `with_body(w0, body)` (the message
/// from its first word and body) and `first_word(&self)` (type and flags, I bit included, record
/// count not).
macro_rules! body_message_methods {
    ($name:literal, $i:expr) => {
        pub fn buffer_len(&self) -> usize {
            4 + Body::wire_len(&self.auth, &self.records, self.xtr.is_some())
        }

        pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
            Self::parse_with_offsets(buf).map(|(m, _)| m)
        }

        /// Verifies the authentication with `key` ([`verify`]) and then parses.
        pub fn parse_verified(buf: &[u8], key: &AuthKey) -> Result<Self, ControlError> {
            verify(buf, key)?;
            Self::parse(buf)
        }

        pub(crate) fn parse_with_offsets(
            buf: &[u8],
        ) -> Result<(Self, Option<usize>), ControlError> {
            let mut r = Reader::new(buf);
            let w0 = r.u32(concat!($name, " header"))?;
            Self::check_first_word(w0)?;
            let (body, records_end) = Body::parse(
                &mut r,
                (w0 & 0xFF) as usize,
                w0 & $i != 0,
                concat!($name, " header"),
            )?;
            Ok((Self::with_body(w0, body), records_end))
        }

        pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
            Body::emit(
                buf,
                self.first_word(),
                self.nonce,
                &self.auth,
                &self.records,
                self.xtr.as_ref(),
                concat!($name, " record count"),
            )
        }

        pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
            emit_vec(self.buffer_len(), |v| self.emit(v))
        }

        /// Emits with `auth` replaced by a placeholder for `key` and signs; `self.auth` is
        /// ignored.
        pub fn to_signed_vec(&self, key: &AuthKey) -> Result<Vec<u8>, ControlError> {
            Body::signed_vec(self, key, |m| &mut m.auth, Self::to_vec)
        }
    };
}
pub(super) use body_message_methods;

impl Body {
    pub(crate) fn wire_len(auth: &Authentication, records: &[EidRecord], xtr: bool) -> usize {
        12 + auth.data.len() + records_len(records) + if xtr { XtrSiteId::WIRE_LEN } else { 0 }
    }

    /// Parses the body after the first word. Returns the body and, when `has_xtr`, the offset of
    /// the xTR-ID (= end of the last record).
    pub(crate) fn parse(
        r: &mut Reader<'_>,
        rec_count: usize,
        has_xtr: bool,
        what: &'static str,
    ) -> Result<(Self, Option<usize>), ControlError> {
        let nonce = r.u64(what)?;
        let key_id = r.u16(what)?;
        let auth_len = usize::from(r.u16(what)?);
        let data = r.take(auth_len, "authentication data")?.to_vec();
        let records = parse_records(r, rec_count)?;
        let records_end = r.pos();
        let xtr = if has_xtr {
            let xtr_id = r.array::<16>("xTR-ID")?;
            let site_id = r.u64("Site-ID")?;
            Some(XtrSiteId { xtr_id, site_id })
        } else {
            None
        };
        Ok((
            Self {
                nonce,
                auth: Authentication { key_id, data },
                records,
                xtr,
            },
            has_xtr.then_some(records_end),
        ))
    }

    pub(crate) fn write(
        w: &mut Writer<'_>,
        nonce: u64,
        auth: &Authentication,
        records: &[EidRecord],
        xtr: Option<&XtrSiteId>,
    ) -> Result<(), ControlError> {
        w.u64(nonce)?;
        w.u16(auth.key_id)?;
        w.u16(len_u16("authentication data length", auth.data.len())?)?;
        w.put(&auth.data)?;
        for rec in records {
            rec.write(w)?;
        }
        if let Some(x) = xtr {
            w.put(&x.xtr_id)?;
            w.u64(x.site_id)?;
        }
        Ok(())
    }

    /// Emits a whole message: the first word `w0` (the record count is added here) and the body.
    pub(crate) fn emit(
        buf: &mut [u8],
        w0: u32,
        nonce: u64,
        auth: &Authentication,
        records: &[EidRecord],
        xtr: Option<&XtrSiteId>,
        what: &'static str,
    ) -> Result<usize, ControlError> {
        let count = Self::validate(auth, records, what)?;
        check_room(buf, 4 + Self::wire_len(auth, records, xtr.is_some()))?;
        let mut w = Writer::new(buf);
        w.u32(w0 | u32::from(count))?;
        Self::write(&mut w, nonce, auth, records, xtr)?;
        Ok(w.pos())
    }

    /// `msg` emitted (`to_vec`) with its authentication data (`auth`) replaced by a placeholder
    /// for `key`, then signed.
    pub(crate) fn signed_vec<M: Clone>(
        msg: &M,
        key: &AuthKey,
        auth: fn(&mut M) -> &mut Authentication,
        to_vec: fn(&M) -> Result<Vec<u8>, ControlError>,
    ) -> Result<Vec<u8>, ControlError> {
        let mut m = msg.clone();
        *auth(&mut m) = Authentication::placeholder(key);
        let mut v = to_vec(&m)?;
        sign(&mut v, key)?;
        Ok(v)
    }

    pub(crate) fn validate(
        auth: &Authentication,
        records: &[EidRecord],
        what: &'static str,
    ) -> Result<u8, ControlError> {
        len_u16("authentication data length", auth.data.len())?;
        for rec in records {
            rec.validate()?;
        }
        count_u8(what, records.len())
    }
}

impl MapRegister {
    /// An NX-OS-style register: M=1, nonce 0, no authentication yet, no xTR-ID.
    pub fn new(records: Vec<EidRecord>) -> Self {
        Self {
            proxy_reply: false,
            lisp_sec: false,
            reliable_transport: false,
            eid_notify: false,
            ttl_timeout: false,
            merge: false,
            want_map_notify: true,
            nonce: 0,
            auth: Authentication::none(),
            records,
            xtr: None,
        }
    }

    body_message_methods!("Map-Register", I);

    fn check_first_word(w0: u32) -> Result<(), ControlError> {
        check_type(w0, MessageType::MapRegister)
    }

    fn with_body(w0: u32, body: Body) -> Self {
        Self {
            proxy_reply: w0 & P != 0,
            lisp_sec: w0 & S != 0,
            reliable_transport: w0 & RELIABLE != 0,
            eid_notify: w0 & E != 0,
            ttl_timeout: w0 & T != 0,
            merge: w0 & MERGE != 0,
            want_map_notify: w0 & M != 0,
            nonce: body.nonce,
            auth: body.auth,
            records: body.records,
            xtr: body.xtr,
        }
    }

    fn first_word(&self) -> u32 {
        let mut w0 = (MessageType::MapRegister as u32) << 28;
        for (bit, on) in [
            (P, self.proxy_reply),
            (S, self.lisp_sec),
            (I, self.xtr.is_some()),
            (RELIABLE, self.reliable_transport),
            (E, self.eid_notify),
            (T, self.ttl_timeout),
            (MERGE, self.merge),
            (M, self.want_map_notify),
        ] {
            if on {
                w0 |= bit;
            }
        }
        w0
    }
}
