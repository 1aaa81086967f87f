//! Map-Request (type 1), protocols.md §3.4, §3.9, §4.
//!
//! First word, as read and written here (RFC 9301 plus the RFC 6830 bits):
//!
//! ```text
//! Type=1 |A|M|P|S|p|s|R|R| Rsvd(5) |L|D| IRC(5) | Record Count(8)
//! ```
//!
//! Bit 11 is RFC 9437's `I` (publish/subscribe): an xTR-ID (16 octets) and Site-ID (8) follow
//! the message, and the `N` bit (0x80 of an EID-record's reserved octet) asks the Map-Server to
//! notify the ITR of changes to that prefix; [`MapRequest::subscribe`] carries both (set: I=1
//! and N=1 on every record; a request with I but no N, or N without I, parses as `None`). Bits
//! 10 and 12–16 (lispers.net `m`, NAT) are ignored on receive and sent as zero (§12 #10). `M` is derived from [`MapRequest::map_reply_record`], IRC from the ITR-RLOC list,
//! Record Count from the record list. Senders send one record; receivers accept 1–255 and refuse 0.
//! Octets after the last parsed element are ignored.

use std::net::IpAddr;

use super::address::{Address, EidPrefix, ip_len, parse_ip, write_ip};
use super::bytes::{Reader, Writer, check_room, count_u8, emit_vec};
use super::map_register::XtrSiteId;
use super::record::EidRecord;
use super::{MessageType, check_type};
use crate::ControlError;

const A: u32 = 0x0800_0000;
const M: u32 = 0x0400_0000;
const P: u32 = 0x0200_0000;
const S: u32 = 0x0100_0000;
const PITR: u32 = 0x0080_0000;
const SMR_INVOKED: u32 = 0x0040_0000;
const L: u32 = 0x0000_4000;
const D: u32 = 0x0000_2000;
/// RFC 9437: xTR-ID and Site-ID appended.
const I: u32 = 0x0010_0000;
/// RFC 9437: notification requested (in an EID-record's reserved octet).
const N_RECORD: u8 = 0x80;

/// Maximum ITR-RLOCs (IRC is 5 bits, count minus one).
pub const MAX_ITR_RLOCS: usize = 32;

/// A Map-Request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRequest {
    /// A: requester wants an authoritative answer (ITRs send 0).
    pub authoritative: bool,
    /// P: RLOC-probe. Test `smr` before treating this as a probe (§4.3, §12 #11).
    pub probe: bool,
    /// S: Solicit-Map-Request.
    pub smr: bool,
    /// p: sent by a PITR.
    pub pitr: bool,
    /// s: SMR-invoked (answers an SMR).
    pub smr_invoked: bool,
    /// L: local-xTR (RFC 9301).
    pub local_xtr: bool,
    /// D: dont-map-reply (RFC 9301; set on SMRs).
    pub dont_map_reply: bool,
    pub nonce: u64,
    /// Source-EID (AFI 0 for cache refresh and RLOC probes).
    pub source_eid: Address,
    /// ITR-RLOCs: 1 to 32 addresses where the Map-Reply should go.
    pub itr_rlocs: Vec<IpAddr>,
    /// The requested EID-prefixes (1 to 255).
    pub records: Vec<EidPrefix>,
    /// The requester's own mapping (M bit set when present).
    pub map_reply_record: Option<EidRecord>,
    /// RFC 9437 subscription: the ITR's xTR-ID and Site-ID (I bit), N bit on every record.
    pub subscribe: Option<XtrSiteId>,
}

impl MapRequest {
    /// A plain query, as an ITR sends it: every flag clear, no mapping of its own, no
    /// subscription.
    pub fn query(
        nonce: u64,
        source_eid: Address,
        itr_rlocs: Vec<IpAddr>,
        records: Vec<EidPrefix>,
    ) -> MapRequest {
        MapRequest {
            authoritative: false,
            probe: false,
            smr: false,
            pitr: false,
            smr_invoked: false,
            local_xtr: false,
            dont_map_reply: false,
            nonce,
            source_eid,
            itr_rlocs,
            records,
            map_reply_record: None,
            subscribe: None,
        }
    }

    /// Octets the message takes on the wire.
    pub fn buffer_len(&self) -> usize {
        12 + self.source_eid.wire_len()
            + self.itr_rlocs.iter().map(|a| 2 + ip_len(a)).sum::<usize>()
            + self
                .records
                .iter()
                .map(|p| 2 + p.eid.wire_len())
                .sum::<usize>()
            + self
                .map_reply_record
                .as_ref()
                .map_or(0, EidRecord::wire_len)
            + self.subscribe.map_or(0, |_| XtrSiteId::WIRE_LEN)
    }

    /// Parses a Map-Request (the first octet must carry type 1).
    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(buf);
        let w0 = r.u32("Map-Request header")?;
        check_type(w0, MessageType::MapRequest)?;
        let irc = ((w0 >> 8) & 0x1F) as usize + 1;
        let rec_count = (w0 & 0xFF) as usize;
        if rec_count == 0 {
            return Err(ControlError::BadValue {
                what: "Map-Request record count",
                value: 0,
            });
        }
        let nonce = r.u64("Map-Request nonce")?;
        let source_eid = Address::parse(&mut r, "Map-Request source EID")?;
        r.check_count(irc, 6, "Map-Request ITR-RLOCs")?;
        let mut itr_rlocs = Vec::with_capacity(irc);
        for _ in 0..irc {
            itr_rlocs.push(parse_ip(&mut r, "Map-Request ITR-RLOC")?);
        }
        r.check_count(rec_count, 4, "Map-Request records")?;
        let mut records = Vec::with_capacity(rec_count);
        let mut notify_requested = false;
        for _ in 0..rec_count {
            let reserved = r.u8("Map-Request record")?;
            notify_requested |= reserved & N_RECORD != 0;
            let mask_len = r.u8("Map-Request record")?;
            let eid = Address::parse(&mut r, "Map-Request record prefix")?;
            let p = EidPrefix { eid, mask_len };
            p.validate("Map-Request record mask length")?;
            records.push(p);
        }
        let map_reply_record = if w0 & M != 0 {
            Some(EidRecord::parse(&mut r)?)
        } else {
            None
        };
        // Lenient: an I bit without the 24 octets (older senders used bit 11 otherwise) is
        // ignored, as the reserved bits are.
        let xtr = if w0 & I != 0 && r.remaining() >= XtrSiteId::WIRE_LEN {
            let xtr_id = r.array::<16>("Map-Request xTR-ID")?;
            let site_id = r.u64("Map-Request Site-ID")?;
            Some(XtrSiteId { xtr_id, site_id })
        } else {
            None
        };
        Ok(Self {
            authoritative: w0 & A != 0,
            probe: w0 & P != 0,
            smr: w0 & S != 0,
            pitr: w0 & PITR != 0,
            smr_invoked: w0 & SMR_INVOKED != 0,
            local_xtr: w0 & L != 0,
            dont_map_reply: w0 & D != 0,
            nonce,
            source_eid,
            itr_rlocs,
            records,
            map_reply_record,
            subscribe: xtr.filter(|_| notify_requested),
        })
    }

    /// Writes the message into `buf`, returning the octets written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        if self.itr_rlocs.is_empty() || self.itr_rlocs.len() > MAX_ITR_RLOCS {
            return Err(ControlError::BadValue {
                what: "Map-Request ITR-RLOC count",
                value: self.itr_rlocs.len() as u64,
            });
        }
        if self.records.is_empty() {
            return Err(ControlError::BadValue {
                what: "Map-Request record count",
                value: 0,
            });
        }
        let rec_count = count_u8("Map-Request record count", self.records.len())?;
        for p in &self.records {
            p.validate("Map-Request record mask length")?;
        }
        if let Some(rec) = &self.map_reply_record {
            rec.validate()?;
        }
        check_room(buf, self.buffer_len())?;
        let mut w = Writer::new(buf);
        let mut w0 = (MessageType::MapRequest as u32) << 28;
        for (bit, on) in [
            (A, self.authoritative),
            (M, self.map_reply_record.is_some()),
            (P, self.probe),
            (S, self.smr),
            (PITR, self.pitr),
            (SMR_INVOKED, self.smr_invoked),
            (L, self.local_xtr),
            (D, self.dont_map_reply),
            (I, self.subscribe.is_some()),
        ] {
            if on {
                w0 |= bit;
            }
        }
        w0 |= ((self.itr_rlocs.len() as u32 - 1) & 0x1F) << 8;
        w0 |= u32::from(rec_count);
        w.u32(w0)?;
        w.u64(self.nonce)?;
        self.source_eid.write(&mut w)?;
        for a in &self.itr_rlocs {
            write_ip(&mut w, a)?;
        }
        let reserved = if self.subscribe.is_some() {
            N_RECORD
        } else {
            0
        };
        for p in &self.records {
            w.u8(reserved)?;
            w.u8(p.mask_len)?;
            p.eid.write(&mut w)?;
        }
        if let Some(rec) = &self.map_reply_record {
            rec.write(&mut w)?;
        }
        if let Some(x) = &self.subscribe {
            w.put(&x.xtr_id)?;
            w.u64(x.site_id)?;
        }
        Ok(w.pos())
    }

    /// Emits into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        emit_vec(self.buffer_len(), |v| self.emit(v))
    }
}
