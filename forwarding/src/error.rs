//! The one error type of the forwarding crate.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ForwardingError {
    /// A frame or header ended before a field it needs.
    #[error("{what}: truncated, needs {needed} octets, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },

    /// A field holds a value this implementation does not accept.
    #[error("{what}: unsupported value {value}")]
    BadValue { what: &'static str, value: u64 },

    /// Not enough room in a buffer to build a header in place.
    #[error("{what}: needs {needed} octets of headroom, {available} available")]
    NoHeadroom {
        what: &'static str,
        needed: usize,
        available: usize,
    },

    /// A length field disagrees with the data it describes.
    #[error("{what}: length field says {declared}, data has {actual}")]
    BadLength {
        what: &'static str,
        declared: usize,
        actual: usize,
    },

    /// A checksum did not verify.
    #[error("{what}: bad checksum {found:#06x}, expected {expected:#06x}")]
    BadChecksum {
        what: &'static str,
        found: u16,
        expected: u16,
    },

    /// An IP fragment where a whole datagram is required (the caller reassembles first).
    #[error("{what}: is a fragment (offset {offset}, more-fragments {more_fragments})")]
    Fragmented {
        what: &'static str,
        offset: u16,
        more_fragments: bool,
    },

    /// An address that may not be used in this position.
    #[error("{what}: address {addr} not allowed")]
    BadAddress {
        what: &'static str,
        addr: std::net::IpAddr,
    },

    /// RFC 6040 decapsulation: outer CE over an inner Not-ECT packet; the packet must be dropped.
    #[error("ECN: outer CE on an inner Not-ECT packet (RFC 6040 drop)")]
    EcnCeOnNotEct,
}
