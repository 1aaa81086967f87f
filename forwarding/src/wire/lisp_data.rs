//! The LISP data-plane header (RFC 9300 §5.3) and LISP-GPE (RFC 9305), built and parsed in place.
//!
//! ```text
//! octet 0:   | N | L | E | V | I | P | K | K |   (P is "R, reserved" in RFC 9300; P in RFC 9305)
//! octets 1-3: Nonce (N=1) | Source Map-Version(12) Dest Map-Version(12) (V=1) | 0
//!             with P=1: octets 1-2 zero, octet 3 = Next Protocol
//! octets 4-7: Locator-Status-Bits (I=0) | Instance-ID (24) + LSBs (8) (I=1)
//! ```
//!
//! * [`LispDataHeader`] is a view over the 8 octets (getters on `AsRef<[u8]>`, setters on
//!   `AsMut<[u8]>`), [`LispDataRepr`] the representation (parse and emit apart).
//! * [`encapsulate_in_place`] writes outer IPv4/IPv6 + UDP 4341 + LISP header into the headroom in
//!   front of an inner packet; [`decapsulate`] / [`decapsulate_in_place`] validate the outer
//!   headers and return where the inner packet is. Neither allocates.
//! * [`flow_source_port`] hashes the inner 5-tuple into the UDP source port.
//!
//! Receive rules (protocols.md §2.2, §2.4): N and V both set → the field is a nonce; E without N
//! is ignored; R is sent as 0; with P=1 (LISP-GPE) N, E, V and octets 1-2 are ignored (RFC 9305
//! §3: "MUST be set to zero on transmission and MUST be ignored on receipt").

mod decap;
mod encap;
mod flow;
#[cfg(any(test, feature = "fuzz-harness"))]
#[doc(hidden)]
pub mod fuzz_harness;

pub use decap::{
    Decapsulated, InnerKind, OuterInfo, apply_outer_to_inner, decapsulate, decapsulate_in_place,
    ecn_decapsulate, udp_checksum_ok,
};
pub use encap::{EcnEncapMode, EncapParams, encapsulate_in_place};
pub use flow::{SOURCE_PORT_BASE, flow_hash, flow_source_port};

use roamer_hal::types::Iid;

use crate::ForwardingError;

/// The first `N` octets of `b` (a header), or `Truncated` (`what`).
fn header<'a, const N: usize>(
    b: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8; N], ForwardingError> {
    b.first_chunk().ok_or(ForwardingError::Truncated {
        what,
        needed: N,
        available: b.len(),
    })
}

/// [`header`], to change in place.
fn header_mut<'a, const N: usize>(
    b: &'a mut [u8],
    what: &'static str,
) -> Result<&'a mut [u8; N], ForwardingError> {
    let available = b.len();
    b.first_chunk_mut().ok_or(ForwardingError::Truncated {
        what,
        needed: N,
        available,
    })
}

/// UDP destination port of LISP data packets.
pub const LISP_DATA_PORT: u16 = 4341;
/// Length of the LISP data header.
pub const HEADER_LEN: usize = 8;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// Encapsulation overhead with an IPv4 outer header (20 + 8 + 8).
pub const OVERHEAD_IPV4: usize = 36;
/// Encapsulation overhead with an IPv6 outer header (40 + 8 + 8).
pub const OVERHEAD_IPV6: usize = 56;

/// N: nonce present.
pub const FLAG_N: u8 = 0x80;
/// L: Locator-Status-Bits in use.
pub const FLAG_L: u8 = 0x40;
/// E: echo-nonce request (only with N).
pub const FLAG_E: u8 = 0x20;
/// V: map-version present.
pub const FLAG_V: u8 = 0x10;
/// I: instance-ID present.
pub const FLAG_I: u8 = 0x08;
/// P: next-protocol present (LISP-GPE, RFC 9305); reserved "R" in RFC 9300.
pub const FLAG_P: u8 = 0x04;
/// KK: LISP-crypto key id (RFC 8061), 0 when not encrypted.
pub const KEY_ID_MASK: u8 = 0x03;

/// Largest 24-bit value (nonce, instance-ID).
pub const MAX_24: u32 = 0x00ff_ffff;
/// Largest 12-bit map-version.
pub const MAX_MAP_VERSION: u16 = 0x0fff;

const EMPTY: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// A view over a LISP data header at the start of `buffer` (the inner packet follows).
///
/// The constructor checks the length once, so the getters never fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LispDataHeader<T: AsRef<[u8]>> {
    buffer: T,
}

/// A getter for each one-bit flag of octet 0 ([`LispDataHeader::flags`]).
macro_rules! flag_bits {
    ($($(#[$doc:meta])* $name:ident: $bit:ident;)*) => {
        impl<T: AsRef<[u8]>> LispDataHeader<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> bool {
                    self.flags() & $bit != 0
                }
            )*
        }
    };
}

flag_bits! {
    /// N bit.
    nonce_present: FLAG_N;
    /// L bit.
    lsb_enabled: FLAG_L;
    /// E bit (meaningful only with N).
    echo_nonce_request: FLAG_E;
    /// V bit.
    map_version_present: FLAG_V;
    /// I bit.
    instance_id_present: FLAG_I;
    /// P bit (LISP-GPE next protocol present).
    next_protocol_present: FLAG_P;
}

impl<T: AsRef<[u8]>> LispDataHeader<T> {
    /// Wraps `buffer` after checking it holds at least [`HEADER_LEN`] octets.
    pub fn new_checked(buffer: T) -> Result<Self, ForwardingError> {
        let available = buffer.as_ref().len();
        if available < HEADER_LEN {
            return Err(ForwardingError::Truncated {
                what: "LISP data header",
                needed: HEADER_LEN,
                available,
            });
        }
        Ok(Self { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn octets(&self) -> &[u8; HEADER_LEN] {
        self.buffer.as_ref().first_chunk().unwrap_or(&EMPTY)
    }

    /// Octet 0: N L E V I P K K.
    pub fn flags(&self) -> u8 {
        self.octets()[0]
    }

    /// KK bits (LISP-crypto key id).
    pub fn key_id(&self) -> u8 {
        self.flags() & KEY_ID_MASK
    }

    /// Octets 1-3 as a 24-bit number (nonce, or both map-versions).
    pub fn nonce(&self) -> u32 {
        let o = self.octets();
        u32::from_be_bytes([0, o[1], o[2], o[3]])
    }

    /// Source map-version (high 12 bits of octets 1-3).
    pub fn source_map_version(&self) -> u16 {
        u16::try_from(self.nonce() >> 12).unwrap_or(0) & MAX_MAP_VERSION
    }

    /// Destination map-version (low 12 bits of octets 1-3).
    pub fn dest_map_version(&self) -> u16 {
        u16::try_from(self.nonce() & 0x0fff).unwrap_or(0)
    }

    /// Octet 3: LISP-GPE next protocol (when P=1).
    pub fn next_protocol(&self) -> u8 {
        self.octets()[3]
    }

    /// Octets 4-6: instance-ID (when I=1).
    pub fn instance_id(&self) -> u32 {
        let o = self.octets();
        u32::from_be_bytes([0, o[4], o[5], o[6]])
    }

    /// Octet 7: 8-bit Locator-Status-Bits (when I=1).
    pub fn lsb8(&self) -> u8 {
        self.octets()[7]
    }

    /// Octets 4-7: 32-bit Locator-Status-Bits (when I=0).
    pub fn lsb32(&self) -> u32 {
        let o = self.octets();
        u32::from_be_bytes([o[4], o[5], o[6], o[7]])
    }

    /// What follows the header.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LispDataHeader<T> {
    fn octets_mut(&mut self) -> Option<&mut [u8; HEADER_LEN]> {
        self.buffer.as_mut().first_chunk_mut()
    }

    /// Sets octet `at` of the header.
    fn set_octet(&mut self, at: usize, v: u8) {
        if let Some(o) = self.octets_mut() {
            o[at] = v;
        }
    }

    /// Sets the three octets from `at` on to the low 24 bits of `v`.
    fn set_u24(&mut self, at: usize, v: u32) {
        if let Some(o) = self.octets_mut() {
            o[at..at + 3].copy_from_slice(&v.to_be_bytes()[1..]);
        }
    }

    /// Sets octet 0.
    pub fn set_flags(&mut self, flags: u8) {
        self.set_octet(0, flags);
    }

    /// Sets octets 1-3 (low 24 bits of `value`).
    pub fn set_nonce(&mut self, value: u32) {
        self.set_u24(1, value);
    }

    /// Sets octets 1-3 to source (12 bits) and destination (12 bits) map-versions.
    pub fn set_map_versions(&mut self, source: u16, dest: u16) {
        let v = (u32::from(source & MAX_MAP_VERSION) << 12) | u32::from(dest & MAX_MAP_VERSION);
        self.set_nonce(v);
    }

    /// Sets octet 3 (LISP-GPE next protocol).
    pub fn set_next_protocol(&mut self, next: u8) {
        self.set_octet(3, next);
    }

    /// Sets octets 4-6 (low 24 bits of `iid`).
    pub fn set_instance_id(&mut self, iid: u32) {
        self.set_u24(4, iid);
    }

    /// Sets octet 7.
    pub fn set_lsb8(&mut self, lsb: u8) {
        self.set_octet(7, lsb);
    }

    /// Sets octets 4-7.
    pub fn set_lsb32(&mut self, lsb: u32) {
        if let Some(o) = self.octets_mut() {
            o[4..8].copy_from_slice(&lsb.to_be_bytes());
        }
    }

    /// What follows the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

/// Octets 1-3 of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NonceField {
    /// N=0, V=0: octets 1-3 zero (ignored on receive).
    #[default]
    None,
    /// N=1: a 24-bit nonce; `echo_request` is the E bit.
    Nonce { nonce: u32, echo_request: bool },
    /// V=1 (N=0): source and destination map-versions, 12 bits each (RFC 9302).
    MapVersion { source: u16, dest: u16 },
}

/// LISP-GPE next protocol (RFC 9305 §3, IANA "LISP-GPE Next Protocol").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpeNextProtocol(pub u8);

impl GpeNextProtocol {
    pub const IPV4: Self = Self(0x01);
    pub const IPV6: Self = Self(0x02);
    pub const ETHERNET: Self = Self(0x03);
    pub const NSH: Self = Self(0x04);
}

/// The LISP data header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LispDataRepr {
    /// Octets 1-3 (always [`NonceField::None`] when `next_protocol` is set).
    pub nonce: NonceField,
    /// I=1: the 24-bit instance-ID.
    pub instance_id: Option<Iid>,
    /// L=1: the Locator-Status-Bits (32 bits when I=0, only 8 bits when I=1).
    pub lsb: Option<u32>,
    /// KK: LISP-crypto key id, 0..=3 (0 = not encrypted).
    pub key_id: u8,
    /// P=1 (LISP-GPE): the next protocol in octet 3.
    pub next_protocol: Option<GpeNextProtocol>,
}

impl LispDataRepr {
    /// Reads a header. Never fails: every bit pattern has a meaning (see the module notes).
    pub fn parse<T: AsRef<[u8]>>(header: &LispDataHeader<T>) -> Self {
        let gpe = header.next_protocol_present();
        let nonce = if gpe {
            NonceField::None
        } else if header.nonce_present() {
            NonceField::Nonce {
                nonce: header.nonce(),
                echo_request: header.echo_nonce_request(),
            }
        } else if header.map_version_present() {
            NonceField::MapVersion {
                source: header.source_map_version(),
                dest: header.dest_map_version(),
            }
        } else {
            NonceField::None
        };
        let (instance_id, lsb) = if header.instance_id_present() {
            // A 24-bit value always fits an Iid.
            let iid = Iid::new(header.instance_id()).ok();
            let lsb = header.lsb_enabled().then(|| u32::from(header.lsb8()));
            (iid, lsb)
        } else {
            (None, header.lsb_enabled().then(|| header.lsb32()))
        };
        Self {
            nonce,
            instance_id,
            lsb,
            key_id: header.key_id(),
            next_protocol: gpe.then(|| GpeNextProtocol(header.next_protocol())),
        }
    }

    /// Parses the first 8 octets of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, ForwardingError> {
        Ok(Self::parse(&LispDataHeader::new_checked(bytes)?))
    }

    /// Checks every field fits its width and the combination can be sent.
    pub fn validate(&self) -> Result<(), ForwardingError> {
        match self.nonce {
            NonceField::None => {}
            NonceField::Nonce { nonce, .. } => {
                if nonce > MAX_24 {
                    return Err(ForwardingError::BadValue {
                        what: "LISP nonce (24 bits)",
                        value: u64::from(nonce),
                    });
                }
            }
            NonceField::MapVersion { source, dest } => {
                let worst = source.max(dest);
                if worst > MAX_MAP_VERSION {
                    return Err(ForwardingError::BadValue {
                        what: "LISP map-version (12 bits)",
                        value: u64::from(worst),
                    });
                }
            }
        }
        if self.next_protocol.is_some() && self.nonce != NonceField::None {
            return Err(ForwardingError::BadValue {
                what: "LISP-GPE header with nonce or map-version (N/E/V must be 0 with P=1)",
                value: 1,
            });
        }
        if let (Some(_), Some(lsb)) = (self.instance_id, self.lsb)
            && lsb > 0xff
        {
            return Err(ForwardingError::BadValue {
                what: "LISP locator-status-bits with an instance-ID (8 bits)",
                value: u64::from(lsb),
            });
        }
        if self.key_id > KEY_ID_MASK {
            return Err(ForwardingError::BadValue {
                what: "LISP key id (2 bits)",
                value: u64::from(self.key_id),
            });
        }
        Ok(())
    }

    /// The header octets (validates first).
    pub fn to_bytes(&self) -> Result<[u8; HEADER_LEN], ForwardingError> {
        self.validate()?;
        let mut flags = self.key_id;
        let mut w0 = 0u32;
        match self.nonce {
            NonceField::None => {}
            NonceField::Nonce {
                nonce,
                echo_request,
            } => {
                flags |= FLAG_N;
                if echo_request {
                    flags |= FLAG_E;
                }
                w0 = nonce;
            }
            NonceField::MapVersion { source, dest } => {
                flags |= FLAG_V;
                w0 = (u32::from(source) << 12) | u32::from(dest);
            }
        }
        if let Some(next) = self.next_protocol {
            flags |= FLAG_P;
            w0 = u32::from(next.0);
        }
        let w1 = match (self.instance_id, self.lsb) {
            (Some(iid), lsb) => (iid.get() << 8) | lsb.unwrap_or(0),
            (None, lsb) => lsb.unwrap_or(0),
        };
        if self.instance_id.is_some() {
            flags |= FLAG_I;
        }
        if self.lsb.is_some() {
            flags |= FLAG_L;
        }
        let mut out = [0u8; HEADER_LEN];
        out[0] = flags;
        out[1..4].copy_from_slice(&w0.to_be_bytes()[1..4]);
        out[4..8].copy_from_slice(&w1.to_be_bytes());
        Ok(out)
    }

    /// Writes all 8 octets of the header (validates first).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        header: &mut LispDataHeader<T>,
    ) -> Result<(), ForwardingError> {
        let bytes = self.to_bytes()?;
        if let Some(o) = header.octets_mut() {
            *o = bytes;
        }
        Ok(())
    }

    /// Writes the header into the first 8 octets of `buf`.
    pub fn emit_bytes(&self, buf: &mut [u8]) -> Result<(), ForwardingError> {
        let mut h = LispDataHeader::new_checked(buf)?;
        self.emit(&mut h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_header() {
        let repr = LispDataRepr {
            nonce: NonceField::Nonce {
                nonce: 0x5a3c91,
                echo_request: false,
            },
            instance_id: Iid::new(101).ok(),
            lsb: Some(1),
            ..Default::default()
        };
        let bytes = repr.to_bytes().unwrap();
        assert_eq!(bytes, [0xc8, 0x5a, 0x3c, 0x91, 0x00, 0x00, 0x65, 0x01]);
        assert_eq!(LispDataRepr::parse_bytes(&bytes).unwrap(), repr);
    }
}
