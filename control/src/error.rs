//! The one error type of the control crate.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// A message ended before a field it needs.
    #[error("{what}: truncated, needs {needed} octets, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },

    /// A field holds a value this implementation does not accept.
    #[error("{what}: unsupported value {value}")]
    BadValue { what: &'static str, value: u64 },

    /// A length field disagrees with the data.
    #[error("{what}: length field says {declared}, data has {actual}")]
    BadLength {
        what: &'static str,
        declared: usize,
        actual: usize,
    },

    /// An address family we cannot carry in this position.
    #[error("{what}: unsupported AFI {afi}")]
    UnsupportedAfi { what: &'static str, afi: u16 },

    /// A message or record exceeds a hard limit (bounded memory on hostile input).
    #[error("{what}: {actual} exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        limit: usize,
        actual: usize,
    },

    /// An HMAC did not verify.
    #[error("authentication failed (key-id {key_id})")]
    AuthFailed { key_id: u16 },

    /// A framing error on a reliable-transport session; the session must be reset.
    #[error("reliable transport framing: {detail}")]
    Framing { detail: &'static str },

    /// The configuration text is not valid TOML or has an unknown key.
    #[error("{message}")]
    ConfigSyntax { line: usize, message: String },

    /// A configuration value is out of range or malformed.
    #[error("invalid {what} '{value}': expected {expected}")]
    ConfigValue {
        line: usize,
        what: &'static str,
        value: String,
        expected: &'static str,
    },

    /// An HSRP packet that does not authenticate (text mismatch, missing or wrong MD5 digest);
    /// RFC 2281: the packet is ignored.
    #[error("HSRP authentication failed: {reason}")]
    HsrpAuthFailed { reason: &'static str },

    /// A checksum that does not verify.
    #[error("{what}: bad checksum {found:#06x}, expected {expected:#06x}")]
    BadChecksum {
        what: &'static str,
        found: u16,
        expected: u16,
    },
}

impl ControlError {
    /// The configuration line an error is about, where it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ControlError::ConfigSyntax { line, .. } | ControlError::ConfigValue { line, .. } => {
                Some(*line)
            }
            _ => None,
        }
    }
}
