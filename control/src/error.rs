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

    /// An interface name roamer does not know.
    #[error(
        "invalid interface name '{name}': expected Ethernet<slot>/<port>, Vlan<1-4094> or loopback<n>"
    )]
    BadInterface { name: String },

    /// A VLAN list such as `10,20-30` that does not parse.
    #[error("invalid VLAN list '{list}': expected numbers 1-4094 and ranges, e.g. 10,20-30")]
    BadVlanList { list: String },

    /// An address with prefix length that does not parse.
    #[error("invalid address '{text}': expected A.B.C.D/LEN or X:X::X/LEN")]
    BadAddress { text: String },

    /// A CLI keyword that no command in this mode (or its parents) accepts.
    #[error("invalid command at '{token}' in {mode} mode{}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnknownKeyword {
        token: String,
        mode: &'static str,
        suggestion: Option<String>,
    },

    /// An abbreviation that matches more than one keyword.
    #[error("ambiguous command at '{token}': could be {}", candidates.join(", "))]
    AmbiguousKeyword {
        token: String,
        candidates: Vec<String>,
    },

    /// A command that stops before its required parts.
    #[error("incomplete command: '{command}'")]
    IncompleteCommand { command: String },

    /// A command used outside the mode it belongs to.
    #[error("'{command}' is not valid in this mode")]
    WrongMode { command: String },

    /// An interface-mode command the interface type does not take.
    #[error("'{command}' is not valid on {interface}")]
    NotOnInterface { command: String, interface: String },

    /// An address on a switched port.
    #[error("'{command}': {interface} is a switched port; configure 'no switchport' first")]
    NeedsRoutedPort { command: String, interface: String },

    /// IPv4 and IPv6 mixed in one command.
    #[error("'{command}': address family mismatch")]
    FamilyMismatch { command: String },

    /// A `no` form naming something that is not configured.
    #[error("{what} {name} is not configured")]
    NoSuchItem { what: &'static str, name: String },

    /// A `show` that needs the data plane's tables, when the data plane did not give them
    /// (`detail` is the backend's error, e.g. `data path not answering: …`).
    #[error("{detail}")]
    DataPlane { detail: String },

    /// `[platform.port-io]` names a port that `[platform.port]` does not map to a device (the
    /// I/O is part of `roamer platform port NAME DEVICE io …`).
    #[error(
        "port-io for '{port}': the port needs a device in [platform.port] (roamer platform port {port} DEVICE io …)"
    )]
    PortIoWithoutDevice { port: String },

    /// An error on a line of a configuration text.
    #[error("{error}")]
    AtLine {
        line: usize,
        error: Box<ControlError>,
    },

    /// A configuration element that needs a `feature` first.
    #[error("{what} requires 'feature {feature}'")]
    FeatureRequired { feature: &'static str, what: String },

    /// A dynamic-EID range that is not more specific than a prefix it overlaps.
    #[error("dynamic-EID prefix {dynamic} must be more specific than {other} ({context})")]
    NotMoreSpecific {
        dynamic: String,
        other: String,
        context: &'static str,
    },

    /// A static MAC address that cannot be in the MAC table as configured.
    #[error("mac address-table static {mac} vlan {vlan} interface {interface}: {problem}")]
    StaticMacInvalid {
        mac: String,
        vlan: u16,
        interface: String,
        problem: &'static str,
    },

    /// An HSRP virtual IP outside every subnet of its interface.
    #[error("HSRP virtual IP {vip} is not in a subnet of {interface}")]
    VipOutsideSubnet { vip: String, interface: String },

    /// `lisp mobility` naming a map that does not exist.
    #[error("lisp mobility names '{name}', but no 'lisp dynamic-eid {name}' is configured")]
    UndefinedMap { name: String },

    /// A map-server configured without a key.
    #[error("map-server {address} needs a key (map-server {address} key <type> <key>)")]
    MapServerWithoutKey { address: String },

    /// A map-server site configured without a key.
    #[error("lisp site {site} needs an authentication-key")]
    SiteWithoutKey { site: String },

    /// One EID prefix in two map-server sites: registrations for it would be taken from
    /// either site's key, and `show lisp site` could not say whose it is.
    #[error("eid-prefix {prefix} of lisp site {site} is already configured in lisp site {other}")]
    EidPrefixInTwoSites {
        prefix: String,
        site: String,
        other: String,
    },

    /// A type-3 key roamer cannot decrypt.
    #[error(
        "the type-3 key of {peer} is encrypted with another device's master key: registrations cannot be authenticated until it is re-entered as type 0 or 7"
    )]
    Type3KeyUnusable { peer: String },

    /// An HSRP group number beyond the version's range.
    #[error("HSRP group {group} is out of range for version {version} (0-{max})")]
    HsrpGroupRange { group: u16, version: u8, max: u16 },

    /// Hello not shorter than hold.
    #[error("HSRP hello time ({hello_ms} ms) must be shorter than the hold time ({hold_ms} ms)")]
    TimersInvalid { hello_ms: u32, hold_ms: u32 },

    /// A map-notify-group that is not a multicast address.
    #[error("map-notify-group {group} is not an IPv4 multicast address")]
    NotMulticast { group: String },

    /// A host name NX-OS would refuse.
    #[error("invalid hostname '{name}': 1-63 letters, digits, '-' or '_'")]
    InvalidHostname { name: String },

    /// An authentication key string that cannot be used.
    #[error("invalid type-{key_type} key: {problem}")]
    BadKey { key_type: u8, problem: &'static str },

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
            ControlError::ConfigSyntax { line, .. }
            | ControlError::ConfigValue { line, .. }
            | ControlError::AtLine { line, .. } => Some(*line),
            _ => None,
        }
    }
}
