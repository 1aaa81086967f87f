//! What a platform is made of, as configured: profile, release, licences, backend, cards.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::SlotId;
use crate::version::{EpldVersion, Release};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileKind {
    /// A Nexus 7000 chassis with slots and line cards.
    N7k,
    /// A virtual machine image (the default for CLI-syntax files).
    #[default]
    Vm,
    /// A containerlab node.
    Clab,
    /// A whitebox switch: no cards, capacities from the backend.
    Whitebox,
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileKind::N7k => "n7k",
            ProfileKind::Vm => "vm",
            ProfileKind::Clab => "clab",
            ProfileKind::Whitebox => "whitebox",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// In-memory tables and wires, for tests.
    Sim,
    /// The forwarding core over TAP and AF_PACKET ports.
    #[default]
    Software,
    /// Linux kernel objects via netlink (switchdev offload on whiteboxes).
    Kernel,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Sim => "sim",
            BackendKind::Software => "software",
            BackendKind::Kernel => "kernel",
        })
    }
}

/// How the software backend moves a port's frames (`roamer platform port NAME DEVICE io …`,
/// `[platform.port-io]`). Without one the backend chooses: AF_XDP where the kernel and the
/// device allow it, AF_PACKET otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortIoKind {
    /// An AF_PACKET socket (vnet-hdr offloads, any MTU).
    AfPacket,
    /// An AF_XDP socket fed by an XDP program; AF_PACKET with the reason logged and shown
    /// when the device or kernel refuses.
    AfXdp,
}

impl fmt::Display for PortIoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortIoKind::AfPacket => "af-packet",
            PortIoKind::AfXdp => "af-xdp",
        })
    }
}

/// A line card as configured in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinecardSpec {
    pub slot: SlotId,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epld: Option<EpldVersion>,
}

/// The platform part of a configuration (`[platform]` in TOML).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    #[serde(default)]
    pub profile: ProfileKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default, rename = "linecard", skip_serializing_if = "Vec::is_empty")]
    pub linecards: Vec<LinecardSpec>,
    /// Which host device carries each front-panel port (`"Ethernet1/1" = "eth1"`); ports not
    /// listed use the profile's convention (`Ethernet1/N` is `ethN`).
    #[serde(
        default,
        rename = "port",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub ports: std::collections::BTreeMap<String, String>,
    /// The I/O a port's frames take in the software backend (`"Ethernet1/1" = "af-xdp"`);
    /// ports not listed choose for themselves (see [`PortIoKind`]).
    #[serde(
        default,
        rename = "port-io",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub port_io: std::collections::BTreeMap<String, PortIoKind>,
}

/// The licence NX-OS requires for LISP on a Nexus 7000.
pub const LISP_LICENSE: &str = "LAN_ENTERPRISE_SERVICES_PKG";
