//! Map-Reply (type 2), protocols.md §3.5.
//!
//! ```text
//! Type=2 |P|E|S|  Reserved (17)  | Record Count
//! Nonce (8)
//! Record Count × EID-record
//! ```
//!
//! Reserved bits are ignored on receive and zero on emit. Octets after the last record (e.g.
//! LISP-SEC data when S=1) are ignored: this code does not implement LISP-SEC. A negative
//! Map-Reply is simply a record with no locators and an [`Action`](super::Action).

use super::bytes::{Reader, Writer, check_room, count_u8, emit_vec};
use super::record::{EidRecord, parse_records, records_len};
use super::{MessageType, check_type};
use crate::ControlError;

const P: u32 = 0x0800_0000;
const E: u32 = 0x0400_0000;
const S: u32 = 0x0200_0000;

/// A Map-Reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapReply {
    /// P: answer to an RLOC-probe (every record then has A=1).
    pub probe: bool,
    /// E: sender supports echo-nonce.
    pub echo_nonce_capable: bool,
    /// S: LISP-SEC data follows the records (not interpreted here).
    pub lisp_sec: bool,
    /// Copied from the Map-Request.
    pub nonce: u64,
    pub records: Vec<EidRecord>,
}

impl MapReply {
    pub fn buffer_len(&self) -> usize {
        12 + records_len(&self.records)
    }

    pub fn parse(buf: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(buf);
        let w0 = r.u32("Map-Reply header")?;
        check_type(w0, MessageType::MapReply)?;
        let nonce = r.u64("Map-Reply nonce")?;
        let records = parse_records(&mut r, (w0 & 0xFF) as usize)?;
        Ok(Self {
            probe: w0 & P != 0,
            echo_nonce_capable: w0 & E != 0,
            lisp_sec: w0 & S != 0,
            nonce,
            records,
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ControlError> {
        let count = count_u8("Map-Reply record count", self.records.len())?;
        for rec in &self.records {
            rec.validate()?;
        }
        check_room(buf, self.buffer_len())?;
        let mut w = Writer::new(buf);
        let mut w0 = ((MessageType::MapReply as u32) << 28) | u32::from(count);
        if self.probe {
            w0 |= P;
        }
        if self.echo_nonce_capable {
            w0 |= E;
        }
        if self.lisp_sec {
            w0 |= S;
        }
        w.u32(w0)?;
        w.u64(self.nonce)?;
        for rec in &self.records {
            rec.write(&mut w)?;
        }
        Ok(w.pos())
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ControlError> {
        emit_vec(self.buffer_len(), |v| self.emit(v))
    }
}
