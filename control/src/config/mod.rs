//! The configuration model: one model, read from TOML (and, later, NX-OS CLI text).

pub mod toml_file;

use roamer_hal::PlatformSpec;
use serde::{Deserialize, Serialize};

/// `feature ...` switches. Everything is off by default, as on NX-OS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    #[serde(default)]
    pub lisp: bool,
    #[serde(default)]
    pub hsrp: bool,
    #[serde(default, rename = "interface-vlan")]
    pub interface_vlan: bool,
}

/// The whole configuration of one appliance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub hostname: String,
    pub platform: PlatformSpec,
    pub features: Features,
}

/// The default host name, as on a factory-fresh Nexus.
pub const DEFAULT_HOSTNAME: &str = "switch";

/// 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
