//! The configuration model. Both syntaxes (TOML, NX-OS CLI) read into it and render from it.
//!
//! Lists are kept sorted and free of duplicates by [`Config::normalize`], so rendering is
//! canonical: equal models render to equal text.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use roamer_hal::{Mac, PlatformSpec, Prefix, VlanId};
use serde::{Deserialize, Serialize};

use super::secret::AuthKey;
use crate::ControlError;

/// `feature ...` switches. Everything is off by default, as on NX-OS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Features {
    #[serde(default)]
    pub lisp: bool,
    #[serde(default)]
    pub hsrp: bool,
    #[serde(default)]
    pub interface_vlan: bool,
}

/// The whole configuration of one appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default)]
    pub platform: PlatformSpec,
    #[serde(default)]
    pub features: Features,
    #[serde(default, rename = "vlan", skip_serializing_if = "Vec::is_empty")]
    pub vlans: Vec<Vlan>,
    #[serde(
        default,
        rename = "interface",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub interfaces: BTreeMap<InterfaceName, Interface>,
    #[serde(default, rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<StaticRoute>,
    /// `mac address-table static MAC vlan V interface I`
    #[serde(default, rename = "static-mac", skip_serializing_if = "Vec::is_empty")]
    pub static_macs: Vec<StaticMac>,
    #[serde(default, skip_serializing_if = "Lisp::is_empty")]
    pub lisp: Lisp,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: default_hostname(),
            platform: PlatformSpec::default(),
            features: Features::default(),
            vlans: Vec::new(),
            interfaces: BTreeMap::new(),
            routes: Vec::new(),
            static_macs: Vec::new(),
            lisp: Lisp::default(),
        }
    }
}

fn default_hostname() -> String {
    super::DEFAULT_HOSTNAME.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vlan {
    pub id: VlanId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An interface name in canonical NX-OS form: `Ethernet1/1`, `Vlan10`, `loopback0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InterfaceName {
    Ethernet { slot: u8, port: u16 },
    Vlan(VlanId),
    Loopback(u16),
}

impl InterfaceName {
    pub fn is_svi(&self) -> bool {
        matches!(self, InterfaceName::Vlan(_))
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfaceName::Ethernet { slot, port } => write!(f, "Ethernet{slot}/{port}"),
            InterfaceName::Vlan(v) => write!(f, "Vlan{v}"),
            InterfaceName::Loopback(n) => write!(f, "loopback{n}"),
        }
    }
}

impl FromStr for InterfaceName {
    type Err = ControlError;

    /// Accepts any unambiguous abbreviation of the type, any case, with or without a space:
    /// `Ethernet1/1`, `ethernet 2/0`, `e1/1`, `VLAN 10`, `int vlan10`, `lo0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ControlError::BadInterface {
            name: s.to_string(),
        };
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let split = compact.find(|c: char| c.is_ascii_digit()).ok_or_else(bad)?;
        let (kind, num) = compact.split_at(split);
        let kind = kind.to_ascii_lowercase();
        if kind.is_empty() {
            return Err(bad());
        }
        let is = |full: &str| full.starts_with(&kind);
        if is("ethernet") {
            let (slot, port) = num.split_once('/').ok_or_else(bad)?;
            Ok(InterfaceName::Ethernet {
                slot: slot.parse().map_err(|_| bad())?,
                port: port.parse().map_err(|_| bad())?,
            })
        } else if is("vlan") {
            let id: u16 = num.parse().map_err(|_| bad())?;
            Ok(InterfaceName::Vlan(VlanId::new(id).map_err(|_| bad())?))
        } else if is("loopback") && kind.len() >= 2 {
            Ok(InterfaceName::Loopback(num.parse().map_err(|_| bad())?))
        } else {
            Err(bad())
        }
    }
}

roamer_hal::serde_via_str!(InterfaceName);

/// How a physical port forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum PortMode {
    /// `switchport mode access` + `switchport access vlan N` (VLAN 1 by default).
    Access {
        #[serde(default = "vlan_one")]
        vlan: VlanId,
    },
    /// `switchport mode trunk` + `switchport trunk allowed vlan LIST` (all by default).
    Trunk {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            rename = "allowed-vlans"
        )]
        allowed: Option<VlanList>,
        #[serde(default = "vlan_one", rename = "native-vlan")]
        native: VlanId,
    },
    /// `no switchport`: a routed port (the underlay side of an xTR).
    Routed,
}

fn vlan_one() -> VlanId {
    // VLAN 1 is always within range.
    VlanId::new(1).unwrap_or_else(|_| unreachable!("VLAN 1 is valid"))
}

impl Default for PortMode {
    fn default() -> Self {
        PortMode::Access { vlan: vlan_one() }
    }
}

/// A VLAN list such as `10,20,30-40`, kept sorted as ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VlanList(Vec<(u16, u16)>);

impl VlanList {
    pub fn contains(&self, vlan: VlanId) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&vlan.get()))
    }

    pub fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().flat_map(|(a, b)| *a..=*b)
    }

    fn from_ids(mut ids: Vec<u16>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for id in ids {
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == id => *end = id,
                _ => ranges.push((id, id)),
            }
        }
        VlanList(ranges)
    }

    /// Adds (`add`) or removes (`remove`) the VLANs of another list.
    pub fn merge(&self, other: &VlanList, remove: bool) -> VlanList {
        let mut ids: Vec<u16> = self.ids().collect();
        if remove {
            ids.retain(|id| !other.ids().any(|o| o == *id));
        } else {
            ids.extend(other.ids());
        }
        VlanList::from_ids(ids)
    }
}

impl fmt::Display for VlanList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for VlanList {
    type Err = ControlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ControlError::BadVlanList {
            list: s.to_string(),
        };
        let mut ids = Vec::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part.trim(), part.trim()),
            };
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if a > b || VlanId::new(a).is_err() || VlanId::new(b).is_err() {
                return Err(bad());
            }
            ids.extend(a..=b);
        }
        Ok(VlanList::from_ids(ids))
    }
}

roamer_hal::serde_via_str!(VlanList);

/// An interface address with its prefix length (`10.3.3.5/24`), host bits kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub len: u8,
}

impl IfAddr {
    pub fn subnet(&self) -> Prefix {
        // len was validated on parse, so Prefix::new cannot fail here.
        Prefix::new(self.addr, self.len).unwrap_or_else(|_| Prefix::host(self.addr))
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IfAddr {
    type Err = ControlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ControlError::BadAddress {
            text: s.to_string(),
        };
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max || len == 0 {
            return Err(bad());
        }
        Ok(IfAddr { addr, len })
    }
}

roamer_hal::serde_via_str!(IfAddr);

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Interface {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub shutdown: bool,
    /// Physical ports only; SVIs and loopbacks are always layer 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchport: Option<PortMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4: Vec<IfAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<IfAddr>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_arp: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lisp_mobility: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lisp_extended_subnet_mode: bool,
    /// Drop HSRP hellos in and out of this port (the LAN-extension link between sites).
    #[serde(default, skip_serializing_if = "is_false")]
    pub hsrp_hello_filter: bool,
    /// `hsrp version 2` (version 1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsrp_version: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hsrp: Vec<HsrpGroup>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Interface {
    pub fn hsrp_group(&self, group: u16) -> Option<&HsrpGroup> {
        self.hsrp.iter().find(|g| g.group == group)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HsrpGroup {
    pub group: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// `preempt [delay minimum S]`: Some(delay seconds) when preemption is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preempt: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timers: Option<HsrpTimers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<HsrpAuth>,
}

impl HsrpGroup {
    pub fn new(group: u16) -> Self {
        HsrpGroup {
            group,
            ip: None,
            mac_address: None,
            priority: None,
            preempt: None,
            timers: None,
            authentication: None,
        }
    }
}

/// Hello and hold times in milliseconds (`timers 3 10` = 3000/10000, `timers msec 250 msec 750`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HsrpTimers {
    pub hello_ms: u32,
    pub hold_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HsrpAuth {
    /// `authentication text STRING`
    Text(AuthKey),
    /// `authentication md5 key-string [0|7] STRING`
    Md5(AuthKey),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticRoute {
    pub prefix: Prefix,
    pub next_hop: IpAddr,
}

/// A MAC address the switch sends out of one interface in one VLAN, never learned elsewhere
/// and never aged out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticMac {
    pub mac: Mac,
    pub vlan: VlanId,
    pub interface: InterfaceName,
}

/// `database-mapping EID-PREFIX LOCATOR priority P weight W`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseMapping {
    pub eid_prefix: Prefix,
    pub locator: IpAddr,
    pub priority: u8,
    pub weight: u8,
}

/// `ip lisp etr map-server ADDR key TYPE KEY`, or a dynamic-EID map's `map-server` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MapServerRef {
    pub address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<AuthKey>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_reply: bool,
}

/// Global LISP settings for one address family (`ip lisp ...` or `ipv6 lisp ...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LispAf {
    #[serde(default, skip_serializing_if = "is_false")]
    pub itr: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub etr: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub map_server: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub map_resolver: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itr_map_resolver: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub etr_map_server: Vec<MapServerRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_mapping: Vec<DatabaseMapping>,
    /// Static map-cache entries (`ip lisp map-cache EID-PREFIX RLOC priority P weight W`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub map_cache: Vec<DatabaseMapping>,
    /// `ip lisp itr subscribe`: the ITR subscribes to the mappings it asks for (RFC 9437
    /// publish/subscribe): the map-server then notifies it of every change. Off by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub itr_subscribe: bool,
}

impl LispAf {
    fn is_empty(&self) -> bool {
        *self == LispAf::default()
    }
}

/// `lisp site NAME` on a map-server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LispSite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_key: Option<AuthKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eid_prefix: Vec<SiteEid>,
    /// `roamer max-registrations N`: registrations the site may hold (the Map-Server's default
    /// when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_registrations: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SiteEid {
    pub prefix: Prefix,
    #[serde(default, skip_serializing_if = "is_false")]
    pub accept_more_specifics: bool,
}

/// `lisp dynamic-eid NAME`: a mobility policy applied to SVIs with `lisp mobility NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DynamicEid {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_mapping: Vec<DatabaseMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_notify_group: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub map_server: Vec<MapServerRef>,
}

/// Everything LISP outside interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lisp {
    /// `lisp instance-id N`: the instance-ID of the default EID table (0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<u32>,
    /// `roamer lisp reliable-registration disable`: this map-server does not accept TCP
    /// registration sessions (an "old" map-server, seed 003); ETRs stay on UDP.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reliable_registration_disabled: bool,
    /// `lisp loc-reach-algorithm rloc-probing` (NX-OS; disabled by default): the ITR probes the
    /// locators of its map-cache entries (RFC 9301 §7.1).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rloc_probing: bool,
    /// `roamer lisp rloc-probe interval SECONDS` (60 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rloc_probe_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "LispAf::is_empty")]
    pub ipv4: LispAf,
    #[serde(default, skip_serializing_if = "LispAf::is_empty")]
    pub ipv6: LispAf,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site: BTreeMap<String, LispSite>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_eid: BTreeMap<String, DynamicEid>,
}

impl Lisp {
    pub fn is_empty(&self) -> bool {
        *self == Lisp::default()
    }

    /// True when any LISP command is configured (`feature lisp` is then required).
    pub fn configured(&self) -> bool {
        !self.is_empty()
    }
}

impl Config {
    /// Sorts and de-duplicates every list so equal configurations render identically.
    pub fn normalize(&mut self) {
        self.vlans.sort();
        self.vlans.dedup_by_key(|v| v.id);
        self.routes.sort();
        self.routes.dedup();
        self.static_macs.sort();
        self.static_macs.dedup_by_key(|m| (m.mac, m.vlan));
        self.platform.linecards.sort_by_key(|c| c.slot);
        self.platform.licenses.sort();
        self.platform.licenses.dedup();
        for iface in self.interfaces.values_mut() {
            iface.ipv4.dedup();
            iface.ipv6.dedup();
            iface.hsrp.sort_by_key(|g| g.group);
            iface.hsrp.dedup_by_key(|g| g.group);
        }
        for af in [&mut self.lisp.ipv4, &mut self.lisp.ipv6] {
            af.itr_map_resolver.dedup();
            af.database_mapping.sort();
            af.database_mapping.dedup();
            af.map_cache.sort();
            af.map_cache.dedup();
            af.etr_map_server.sort_by_key(|m| m.address);
            af.etr_map_server.dedup_by_key(|m| m.address);
        }
        for site in self.lisp.site.values_mut() {
            site.eid_prefix.sort();
            site.eid_prefix.dedup_by_key(|e| e.prefix);
        }
        for map in self.lisp.dynamic_eid.values_mut() {
            map.database_mapping.sort();
            map.database_mapping.dedup();
            map.map_server.sort_by_key(|m| m.address);
            map.map_server.dedup_by_key(|m| m.address);
        }
    }

    /// The instance-ID of the default EID table.
    pub fn instance_id(&self) -> u32 {
        self.lisp.instance_id.unwrap_or(0)
    }

    /// The IPv4 and IPv6 addresses of the interfaces that are not shut down.
    pub fn live_addresses(&self) -> Vec<IpAddr> {
        self.interfaces
            .values()
            .filter(|i| !i.shutdown)
            .flat_map(|i| i.ipv4.iter().chain(&i.ipv6).map(|a| a.addr))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_accept_the_documents_spellings() {
        let cases = [
            ("Ethernet 2/0", "Ethernet2/0"),
            ("ethernet1/1", "Ethernet1/1"),
            ("e1/1", "Ethernet1/1"),
            ("Eth3/12", "Ethernet3/12"),
            ("VLAN 10", "Vlan10"),
            ("vlan10", "Vlan10"),
            ("lo0", "loopback0"),
        ];
        for (input, canonical) in cases {
            let name: InterfaceName = input.parse().unwrap();
            assert_eq!(name.to_string(), canonical, "{input}");
        }
        for bad in [
            "",
            "Vlan",
            "Vlan0",
            "Vlan4095",
            "Serial0/0",
            "Ethernet1",
            "l0",
        ] {
            assert!(bad.parse::<InterfaceName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn vlan_lists_normalize() {
        let l: VlanList = "30,10-12,11,20".parse().unwrap();
        assert_eq!(l.to_string(), "10-12,20,30");
        assert!(l.contains(VlanId::new(11).unwrap()));
        let m = l.merge(&"12,20".parse().unwrap(), true);
        assert_eq!(m.to_string(), "10-11,30");
        assert!("0".parse::<VlanList>().is_err());
        assert!("5-2".parse::<VlanList>().is_err());
    }

    #[test]
    fn interface_addresses_keep_host_bits() {
        let a: IfAddr = "10.3.3.5/24".parse().unwrap();
        assert_eq!(a.to_string(), "10.3.3.5/24");
        assert_eq!(a.subnet().to_string(), "10.3.3.0/24");
        assert!("10.3.3.5".parse::<IfAddr>().is_err());
        assert!("10.3.3.5/33".parse::<IfAddr>().is_err());
    }
}
