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
}
