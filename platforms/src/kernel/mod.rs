//! The `kernel` backend: roamer's tables become Linux objects over netlink, and the kernel (or
//! a switchdev ASIC under it) forwards. See docs/kernel-backend.md.
//!
//! - Routed ports are existing interfaces in roamer's namespace (`PortSpec::device`).
//! - `InterfaceAddress` → `ip addr` with `IFA_PROTO` 194; `Route` → kernel routes with
//!   protocol 194 (an interface's subnet comes from the kernel with the address, so that
//!   `Connected` route is only recorded; any other `Connected` route, such as a dynamic EID's
//!   host route across subnets, is a scope-link device route); `Gateway` → `via`, `Lisp` → `blackhole` (what the ITR program
//!   reads as "look up the map-cache"), `Discard` → `unreachable` (never mistaken for LISP);
//!   `Neighbor` → permanent neighbours with `NDA_PROTOCOL` 194; `RouterMac` on a routed port →
//!   the port's MAC (the old one is restored); an HSRP virtual MAC and IP → a macvlan with
//!   the virtual MAC holding the virtual IP (`vmac.rs`); `ProxyArp` → the `proxy_arp` sysctl
//!   of the interface, or of its virtual MAC's macvlan while it has one; `HelloFilter` → the
//!   HSRP hello filter of `hello_filter.rs` (TC programs on that port, both directions).
//!   Forwarding sysctls are switched on
//!   and restored on stop.
//! - LISP tables go to [`lisp_offload::LispOffload`] (TC programs on every port while LISP has
//!   tables: the ITR and ETR programs are no-ops for traffic that is not theirs).
//! - VLANs, SVIs and the FDB ([`bridge`]) need a VLAN-filtering bridge and 802.1Q devices; a
//!   kernel without them refuses those operations with [`HalError::NotSupported`] naming the
//!   missing feature (and the daemon refuses `feature interface-vlan` at startup).
//! - Table rows → kernel objects: `tables.rs`; kernel errors come back typed with the kernel's
//!   words.
//! - On open, whatever carries roamer's marks (a previous run that crashed) is removed first;
//!   on drop, everything roamer created is removed and what it changed is restored.

pub mod bridge;
mod control_rx;
mod devlink;
pub mod hello_filter;
pub mod io;
pub mod lisp_offload;
pub mod nl;
mod programs;
mod proxy_arp;
pub mod state;
mod sys;
mod tables;
pub mod tc_hook;
mod trace;
mod vmac;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use roamer_hal::{
    Backend, Capabilities, Counter, DataPlane, Features, HalError, HalEvent, InjectTarget,
    L3Interface, Learned, LearnedMac, LearnedNeighbor, LinkState, Mac, Notifier, OpAction,
    PacketIo, PortId, PortLink, Punt, TableEntry, TableKey, TableKind, TableOp, Trace, VlanId,
};
use tracing::{info, warn};

use crate::PlatformError;
use crate::open::PortSpec;
use hello_filter::HelloFilter;
use io::{ControlIo, IoPort, Shared};
use lisp_offload::LispOffload;
use nl::{Netlink, kernel_error};
use programs::{attach_lisp, routed_devices};
use state::Restore;

pub const BACKEND: &str = "kernel";

const IPV4_FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";
const IPV6_FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/forwarding";
/// Neither tested nor offered by this host's kernel: the feature names in errors.
const NO_VLAN_FILTERING: &str =
    "a VLAN-filtering bridge (CONFIG_BRIDGE_VLAN_FILTERING) and 802.1Q devices (CONFIG_VLAN_8021Q)";

const LISP_KINDS: [TableKind; 4] = [
    TableKind::LispDatabase,
    TableKind::LispMapCache,
    TableKind::DynamicEidRange,
    TableKind::AwayEntry,
];

/// Whether this kernel can hold VLANs (probed once per process, in the namespace of the calling
/// thread, for the startup check): `Err` names the missing feature.
pub fn vlan_support() -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let nl = Netlink::start().map_err(|e| format!("netlink: {e}"))?;
            probe_with(&nl)
        })
        .clone()
}

fn probe_with(nl: &Netlink) -> Result<(), String> {
    nl.call("probe VLAN support", |h| async move {
        Ok(nl::probe_vlans(h).await)
    })
    .map_err(|e| e.to_string())?
}

#[derive(Debug, Clone)]
struct Port {
    id: PortId,
    device: String,
    ifindex: u32,
}

/// The kernel backend.
pub struct KernelBackend {
    ports: Vec<Port>,
    nl: Arc<Netlink>,
    io: ControlIo,
    shared: Arc<Shared>,
    offload: Option<LispOffload>,
    /// The HSRP hello filter's programs, once a port needed them.
    hello_filter: Option<HelloFilter>,
    /// Why there is no LISP offload (its error), for the operator's LISP table operations.
    offload_unavailable: Option<String>,
    /// Every row roamer programmed, by table and key (the kernel holds the objects).
    rows: BTreeMap<TableKind, BTreeMap<TableKey, TableEntry>>,
    restore: Restore,
    /// `Shared::address_changes` when the offload last got our addresses.
    offload_addresses_seen: u64,
    /// The VLAN-filtering bridge, once a VLAN needed it.
    bridge: Option<u32>,
    /// SVI devices by VLAN.
    svis: BTreeMap<u16, u32>,
    /// HSRP's virtual-MAC devices (macvlans) by interface and MAC.
    vmac_devs: BTreeMap<(L3Interface, Mac), u32>,
    vlan_probe: std::sync::OnceLock<Result<(), String>>,
    /// Tables a switchdev driver bounds with a devlink resource: capacity and the resource.
    devlink_capacity: BTreeMap<TableKind, (u32, String)>,
}

impl std::fmt::Debug for KernelBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelBackend")
            .field("ports", &self.ports)
            .field("offload", &self.offload.is_some())
            .finish()
    }
}

fn link_state(l: Option<&nl::LinkInfo>) -> LinkState {
    match l {
        None => LinkState::Gone,
        Some(l) if !l.up => LinkState::AdminDown,
        Some(l) if !l.carrier => LinkState::NoCarrier,
        Some(_) => LinkState::Up,
    }
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn backend_err(detail: String) -> HalError {
    HalError::Backend {
        backend: BACKEND.into(),
        detail,
    }
}

fn io_err(operation: &'static str, source: std::io::Error) -> HalError {
    HalError::Io {
        backend: BACKEND.into(),
        operation,
        source,
    }
}

impl KernelBackend {
    /// Opens the backend over existing interfaces: removes leftovers of a crashed run, switches
    /// forwarding on, opens the control sockets and loads the LISP offload (a backend without
    /// it still routes; its LISP tables are then unsupported, and the reason is logged).
    pub fn open(specs: &[PortSpec]) -> Result<KernelBackend, PlatformError> {
        let nl = Arc::new(Netlink::start().map_err(|source| PlatformError::PortIo {
            port: "netlink".into(),
            op: "connect",
            source,
        })?);
        let links = nl::list_links(&nl)?;
        let mut ports = Vec::new();
        for s in specs {
            if s.device.starts_with("tap:") {
                return Err(PlatformError::BackendUnavailable {
                    backend: roamer_hal::BackendKind::Kernel,
                    reason: "the kernel backend takes existing interfaces, not tap: devices",
                });
            }
            let ifindex = links
                .iter()
                .find(|l| l.name == s.device)
                .map(|l| l.index)
                .ok_or_else(|| PlatformError::NoSuchInterface {
                    port: format!("{} ({})", s.name, s.device),
                    source: std::io::ErrorKind::NotFound.into(),
                })?;
            ports.push(Port {
                id: s.id,
                device: s.device.clone(),
                ifindex,
            });
        }
        let (mut restore, restored) = Restore::recover(nl.clone())?;
        if !restored.is_empty() {
            info!(
                ?restored,
                "kernel backend: restored what a previous run changed"
            );
        }
        remove_leftovers(&nl)?;
        for p in &ports {
            if lisp_offload::remove_leftover_filters(&p.device)? > 0 {
                info!(device = %p.device, "kernel backend: removed a previous run's LISP filters");
            }
            if hello_filter::remove_leftover_filters(&p.device)? > 0 {
                info!(device = %p.device, "kernel backend: removed a previous run's hello filters");
            }
        }
        for path in [IPV4_FORWARDING, IPV6_FORWARDING] {
            restore
                .set_sysctl(path, "1")
                .map_err(|source| PlatformError::PortIo {
                    port: path.into(),
                    op: "enable forwarding",
                    source,
                })?;
        }
        let shared = Arc::new(Shared::default());
        let io_ports = ports
            .iter()
            .map(|p| IoPort {
                id: p.id,
                device: p.device.clone(),
                ifindex: p.ifindex as i32,
            })
            .collect();

        // Without its LISP data path (no eBPF object in this build, a kernel without TCX links
        // (before 6.6) or that refuses the programs) the backend still routes; LISP table
        // operations are refused with the reason.
        let mut offload_unavailable = None;
        // The programs are attached once, here, to prove the kernel takes them, and then
        // only while LISP has tables: a switch that only routes keeps the kernel's own speed.
        let offload = match LispOffload::load() {
            Ok(mut o) => {
                let attached = attach_lisp(&mut o, &ports, None).and_then(|()| o.detach_all());
                match attached {
                    Ok(()) => Some(o),
                    Err(e) => {
                        let _ = o.detach_all();
                        warn!(error = %e, "kernel backend: LISP data path not attached; LISP tables unsupported");
                        offload_unavailable = Some(e.to_string());
                        None
                    }
                }
            }
            Err(e) => {
                offload_unavailable = Some(e.to_string());
                warn!(error = %e, "kernel backend: no LISP offload; LISP tables unsupported");
                None
            }
        };
        let io = ControlIo::start(
            io_ports,
            shared.clone(),
            nl.clone(),
            offload.as_ref().map_or(-1, |o| o.event_fd()),
        )
        .map_err(|source| PlatformError::PortIo {
            port: "control sockets".into(),
            op: "open",
            source,
        })?;
        let mut b = KernelBackend {
            ports,
            nl,
            io,
            shared,
            offload,
            hello_filter: None,
            offload_unavailable,
            rows: BTreeMap::new(),
            restore,
            offload_addresses_seen: 0,
            bridge: None,
            svis: BTreeMap::new(),
            vmac_devs: BTreeMap::new(),
            vlan_probe: std::sync::OnceLock::new(),
            devlink_capacity: BTreeMap::new(),
        };
        b.devlink_capacity =
            devlink::table_capacities(&b.ports.iter().map(|p| p.ifindex).collect::<Vec<_>>());
        b.refresh_addresses();
        Ok(b)
    }

    fn port(&self, id: PortId) -> Result<&Port, HalError> {
        self.ports
            .iter()
            .find(|p| p.id == id)
            .ok_or(HalError::NoSuchPort {
                port: id.0,
                backend: BACKEND.into(),
            })
    }

    fn no_vlans(operation: &'static str) -> HalError {
        HalError::NotSupported {
            operation,
            backend: BACKEND.into(),
            reason: NO_VLAN_FILTERING,
        }
    }

    /// Whether this kernel can hold VLANs: probed once, in the backend's namespace, through its
    /// netlink thread.
    fn vlans(&self) -> Result<(), String> {
        self.vlan_probe.get_or_init(|| probe_with(&self.nl)).clone()
    }

    /// The bridge's ifindex, creating it on first use; VLANs need the kernel features.
    fn bridge(&mut self) -> Result<u32, HalError> {
        if self.vlans().is_err() {
            return Err(Self::no_vlans("VLANs and the MAC address table"));
        }
        if let Some(b) = self.bridge {
            return Ok(b);
        }
        let b = self.nl.call("create bridge", |h| async move {
            bridge::ensure_bridge(h)
                .await
                .map_err(|e| kernel_error(format!("create bridge {}", bridge::BRIDGE), e))
        })?;
        self.bridge = Some(b);
        Ok(b)
    }

    /// The device of a layer-3 interface: a routed port, or an SVI (created when missing).
    fn l3(&mut self, iface: L3Interface) -> Result<Port, HalError> {
        match iface {
            L3Interface::Port(p) => self.port(p).cloned(),
            L3Interface::Vlan(v) => {
                if self.vlans().is_err() {
                    return Err(Self::no_vlans("SVI (interface Vlan)"));
                }
                let br = self.bridge()?;
                let vid = v.get();
                let ifindex = match self.svis.get(&vid) {
                    Some(i) => *i,
                    None => {
                        let i = self.nl.call("create SVI", move |h| async move {
                            bridge::ensure_svi(h, br, vid).await.map_err(|e| {
                                kernel_error(format!("create {}", bridge::svi_name(vid)), e)
                            })
                        })?;
                        self.svis.insert(vid, i);
                        self.attach_itr(i, iface)?;
                        i
                    }
                };
                Ok(Port {
                    id: PortId(0),
                    device: bridge::svi_name(vid),
                    ifindex,
                })
            }
        }
    }

    /// The device of a layer-3 interface if it exists (an SVI never created has nothing to
    /// remove).
    fn l3_existing(&mut self, iface: L3Interface) -> Result<Option<Port>, HalError> {
        match iface {
            L3Interface::Vlan(v) if !self.svis.contains_key(&v.get()) => Ok(None),
            _ => self.l3(iface).map(Some),
        }
    }

    fn iface_of(&self, ifindex: u32) -> Option<L3Interface> {
        if let Some(p) = self.ports.iter().find(|p| p.ifindex == ifindex) {
            return Some(L3Interface::Port(p.id));
        }
        self.svis
            .iter()
            .find(|(_, i)| **i == ifindex)
            .and_then(|(v, _)| VlanId::new(*v).ok())
            .map(L3Interface::Vlan)
    }

    /// Our addresses for the control thread and the LISP offload.
    fn refresh_addresses(&mut self) {
        match self.nl.call("list addresses", |h| async move {
            nl::all_addresses(h)
                .await
                .map_err(|e| kernel_error("list addresses".into(), e))
        }) {
            Ok(all) => {
                let set: HashSet<IpAddr> = all.iter().map(|(_, a)| *a).collect();
                if let Ok(mut l) = self.shared.local.write() {
                    *l = set;
                    self.shared.local_epoch.fetch_add(1, Ordering::AcqRel);
                }
                if let Some(o) = self.offload.as_mut()
                    && let Err(e) = o.set_addresses(&all)
                {
                    warn!(error = %e, "kernel backend: LISP offload addresses");
                }
            }
            Err(e) => warn!(error = %e, "kernel backend: listing addresses"),
        }
    }

    fn apply_one(&mut self, op: &TableOp) -> Result<(), HalError> {
        let kind = op.kind();
        let key = op.entry.key();
        if LISP_KINDS.contains(&kind) {
            let Some(o) = self.offload.as_mut() else {
                return Err(match &self.offload_unavailable {
                    Some(why) => HalError::Backend {
                        backend: BACKEND.into(),
                        detail: format!("{op}: the LISP data path is unavailable: {why}"),
                    },
                    None => unsupported(op),
                });
            };
            if !o.is_attached() {
                let routed = routed_devices(&self.svis, &self.vmac_devs);
                let present: Option<Vec<u32>> = nl::list_links(&self.nl)
                    .ok()
                    .map(|links| links.iter().map(|l| l.index).collect());
                attach_lisp(o, &self.ports, present.as_deref())
                    .and_then(|()| {
                        routed
                            .into_iter()
                            .try_for_each(|(i, iface)| o.attach_eid_facing(i, iface))
                    })
                    .map_err(|e| {
                        let _ = o.detach_all();
                        HalError::Backend {
                            backend: BACKEND.into(),
                            detail: format!("{op}: attaching the LISP data path: {e}"),
                        }
                    })?;
            }
            let applied = o.apply(op);
            if o.is_empty()
                && let Err(e) = o.detach_all()
            {
                warn!(error = %e, "kernel backend: detaching the LISP programs");
            }
            return applied;
        }
        if matches!(kind, TableKind::VlanMember | TableKind::Fdb) && self.vlans().is_err() {
            return Err(Self::no_vlans("VLANs and the MAC address table"));
        }
        let old = self.rows.get(&kind).and_then(|t| t.get(&key)).cloned();
        if let (OpAction::Add, None, Some((capacity, resource))) =
            (op.action, &old, self.devlink_capacity.get(&kind))
            && self.rows.get(&kind).map_or(0, BTreeMap::len) >= *capacity as usize
        {
            return Err(HalError::TableFull {
                table: kind,
                scope: format!("devlink resource {resource}"),
                capacity: *capacity,
            });
        }
        match (op.action, &old) {
            (OpAction::Add, Some(_)) => return Err(HalError::Exists { table: kind, key }),
            (OpAction::Update | OpAction::Remove, None) => {
                return Err(HalError::NotFound { table: kind, key });
            }
            _ => {}
        }
        match op.action {
            OpAction::Add => self.program(&op.entry, None)?,
            OpAction::Update => self.program(&op.entry, old.as_ref())?,
            OpAction::Remove => {
                if let Some(old) = &old {
                    self.unprogram(old)?;
                }
            }
        }
        let table = self.rows.entry(kind).or_default();
        match op.action {
            OpAction::Add | OpAction::Update => {
                table.insert(key, op.entry.clone());
            }
            OpAction::Remove => {
                table.remove(&key);
            }
        }
        let proxy_iface = match &op.entry {
            TableEntry::ProxyArp { iface } => Some(*iface),
            TableEntry::RouterMac {
                iface,
                virtual_mac: true,
                ..
            } => Some(*iface),
            _ => None,
        };
        if let Some(iface) = proxy_iface {
            self.sync_proxy_arp(iface)?;
        }
        if kind == TableKind::InterfaceAddress {
            self.refresh_addresses();
        }
        Ok(())
    }

    fn port_counters(&self, links: &[nl::LinkInfo]) -> Vec<Counter> {
        let mut out = Vec::new();
        for p in &self.ports {
            let stats = links
                .iter()
                .find(|l| l.index == p.ifindex)
                .map(|l| l.stats)
                .unwrap_or_default();
            for (name, v) in ["rx packets", "tx packets", "rx dropped", "tx dropped"]
                .iter()
                .zip(stats)
            {
                out.push(Counter {
                    name: format!("{} {name}", p.device),
                    value: v,
                });
            }
        }
        out
    }
}

/// `frame` with an 802.1Q tag of `vid` after its MAC addresses.
fn with_tag(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&frame[..frame.len().min(12)]);
    out.extend_from_slice(&[0x81, 0x00]);
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(frame.get(12..).unwrap_or_default());
    out
}

fn unsupported(op: &TableOp) -> HalError {
    HalError::Unsupported {
        action: op.action,
        table: op.kind(),
        backend: BACKEND.into(),
    }
}

/// Removes every route, address and neighbour carrying roamer's marks (a previous run that
/// did not stop cleanly).
fn remove_leftovers(nl: &Netlink) -> Result<(), PlatformError> {
    let removed = nl.call("remove leftovers", |h| async move {
        let mut removed = Vec::new();
        let routes = nl::our_routes(h.clone())
            .await
            .map_err(|e| kernel_error("list routes".into(), e))?;
        for r in routes {
            let what = nl::route_dest(&r);
            nl::route_del(h.clone(), r)
                .await
                .map_err(|e| kernel_error(format!("remove leftover route {what}"), e))?;
            removed.push(format!("route {what}"));
        }
        let addrs = nl::our_addresses(h.clone())
            .await
            .map_err(|e| kernel_error("list addresses".into(), e))?;
        for a in addrs {
            h.address()
                .del(a)
                .execute()
                .await
                .map_err(|e| kernel_error("remove leftover address".into(), e))?;
            removed.push("address".into());
        }
        // HSRP's virtual-MAC devices, then the bridge (its SVIs go with it): roamer's by name.
        let vmacs = vmac::delete(h.clone(), None)
            .await
            .map_err(|e| kernel_error("remove leftover virtual MAC devices".into(), e))?;
        removed.extend(vmacs);
        if nl::links(h.clone())
            .await
            .map_err(|e| kernel_error("list interfaces".into(), e))?
            .iter()
            .any(|l| l.name == bridge::BRIDGE)
        {
            bridge::delete_bridge(h.clone())
                .await
                .map_err(|e| kernel_error(format!("remove leftover {}", bridge::BRIDGE), e))?;
            removed.push(bridge::BRIDGE.to_string());
        }
        let neigh = nl::neighbours(h.clone())
            .await
            .map_err(|e| kernel_error("list neighbours".into(), e))?;
        for n in neigh.into_iter().filter(|n| n.ours) {
            nl::neighbour_del(h.clone(), n.ifindex, n.ip)
                .await
                .map_err(|e| kernel_error(format!("remove leftover neighbour {}", n.ip), e))?;
            removed.push(format!("neighbour {}", n.ip));
        }
        Ok(removed)
    })?;
    if !removed.is_empty() {
        info!(
            ?removed,
            "kernel backend: removed what a previous run left behind"
        );
    }
    Ok(())
}

impl Drop for KernelBackend {
    fn drop(&mut self) {
        if let Some(mut o) = self.offload.take()
            && let Err(e) = o.detach_all()
        {
            warn!(error = %e, "kernel backend: detaching the LISP programs");
        }
        let mut rows: Vec<TableEntry> = self
            .rows
            .values()
            .flat_map(|t| t.values().cloned())
            .collect();
        // Routes before addresses (a gateway route may depend on an address).
        rows.sort_by_key(|e| !matches!(e, TableEntry::Route { .. }));
        for e in rows {
            if let Err(err) = self.unprogram(&e) {
                warn!(error = %err, entry = ?e.key(), "kernel backend: removing on stop");
            }
        }
        self.rows.clear();
        if self.bridge.take().is_some()
            && let Err(e) = self.nl.call("remove bridge", |h| async move {
                bridge::delete_bridge(h)
                    .await
                    .map_err(|e| kernel_error(format!("remove {}", bridge::BRIDGE), e))
            })
        {
            warn!(error = %e, "kernel backend: removing the bridge on stop");
        }
        let restored = self.restore.restore_all();
        info!(
            ?restored,
            "kernel backend: stopped; restored what it changed"
        );
    }
}

impl Backend for KernelBackend {
    fn name(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut supported: std::collections::BTreeSet<TableKind> = [
            // A VLAN alone needs no kernel object (see `tables.rs`).
            TableKind::Vlan,
            TableKind::RouterMac,
            TableKind::InterfaceAddress,
            TableKind::Neighbor,
            TableKind::Ipv4Route,
            TableKind::Ipv6Route,
            TableKind::ProxyArp,
            TableKind::HelloFilter,
        ]
        .into_iter()
        .collect();
        if self.offload.is_some() {
            supported.extend(LISP_KINDS);
        }
        if self.vlans().is_ok() {
            supported.extend([TableKind::VlanMember, TableKind::Fdb]);
        }
        Capabilities {
            features: Features {
                l3: true,
                proxy_arp: true,
                lisp_encap: self.offload.is_some(),
                // One macvlan each: the kernel sets no limit of its own.
                virtual_macs: 4096,
            },
            supported,
            // What the kernel bounds: the LISP tables are eBPF maps of fixed size. Routes,
            // neighbours and the FDB have no per-namespace limit to report, unless a switchdev
            // driver reports a devlink resource for them (devlink.rs).
            capacity: {
                let mut c: BTreeMap<TableKind, u32> = if self.offload.is_some() {
                    lisp_offload::capacities().into_iter().collect()
                } else {
                    BTreeMap::new()
                };
                c.extend(self.devlink_capacity.iter().map(|(k, (n, _))| (*k, *n)));
                c
            },
        }
    }

    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
        let results = batch.iter().map(|op| self.apply_one(op)).collect();
        // Once per batch: the view reads several tables.
        if batch.iter().any(|op| {
            matches!(
                op.kind(),
                TableKind::ProxyArp
                    | TableKind::InterfaceAddress
                    | TableKind::Ipv4Route
                    | TableKind::RouterMac
                    | TableKind::VlanMember
                    | TableKind::DynamicEidRange
            )
        }) {
            self.refresh_proxy_arp();
        }
        if batch
            .iter()
            .any(|op| op.kind() == TableKind::DynamicEidRange)
        {
            self.refresh_notify_groups();
        }
        results
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        if LISP_KINDS.contains(&kind) {
            return match &self.offload {
                Some(o) => o.entries(kind),
                None => Ok(Vec::new()),
            };
        }
        Ok(self
            .rows
            .get(&kind)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default())
    }

    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        if let Ok(mut ev) = self.shared.events.lock() {
            out.append(&mut ev);
        }
        if let Some(o) = self.offload.as_mut() {
            // Addresses that appeared or went without roamer (IPv6 link-local, an operator's):
            // the ETR decapsulates only to ours.
            let changes = self.shared.address_changes.load(Ordering::Relaxed);
            if changes != self.offload_addresses_seen {
                self.offload_addresses_seen = changes;
                let all = self
                    .shared
                    .by_interface
                    .read()
                    .map(|a| a.clone())
                    .unwrap_or_default();
                if let Err(e) = o.set_addresses(&all) {
                    warn!(error = %e, "kernel backend: LISP offload addresses");
                }
            }
            o.drain_events(out);
        }
    }
}

impl PacketIo for KernelBackend {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        match target {
            InjectTarget::Routed => self
                .io
                .send_routed(frame)
                .map_err(|e| io_err("send routed packet", e)),
            InjectTarget::Port(p) => {
                let ifindex = self.port(p)?.ifindex as i32;
                self.io
                    .send_port(ifindex, frame)
                    .map_err(|e| io_err("send frame", e))
            }
            InjectTarget::PortInVlan(p, v) => {
                let ifindex = self.port(p)?.ifindex as i32;
                let tagged = self.rows.get(&TableKind::VlanMember).is_some_and(|t| {
                    t.values().any(|e| {
                        matches!(e, TableEntry::VlanMember { vlan, port, tagged: true }
                            if *vlan == v && *port == p)
                    })
                });
                let sent = if tagged {
                    self.io.send_port(ifindex, &with_tag(frame, v.get()))
                } else {
                    self.io.send_port(ifindex, frame)
                };
                sent.map_err(|e| io_err("send frame", e))
            }
            // Into the bridge through the VLAN's SVI device: the bridge floods it in the VLAN
            // (tagged on trunks, untagged on access ports).
            InjectTarget::Vlan(v) => match self.svis.get(&v.get()) {
                Some(i) => self
                    .io
                    .send_port(*i as i32, frame)
                    .map_err(|e| io_err("send frame into a VLAN", e)),
                None if self.vlans().is_err() => Err(Self::no_vlans("sending into a VLAN")),
                None => Err(HalError::NotSupported {
                    operation: "sending into a VLAN",
                    backend: BACKEND.into(),
                    reason: "the kernel backend sends into a VLAN through its SVI, and this VLAN has none",
                }),
            },
        }
    }

    fn drain_punts(&mut self, out: &mut Vec<Punt>) {
        if let Ok(mut q) = self.shared.punts.lock() {
            out.append(&mut q);
        }
    }
}

impl DataPlane for KernelBackend {
    fn learned(&self) -> Result<Learned, HalError> {
        let neigh = self.nl.call("list neighbours", |h| async move {
            nl::neighbours(h)
                .await
                .map_err(|e| kernel_error("list neighbours".into(), e))
        })?;
        use netlink_packet_route::neighbour::NeighbourState as S;
        let neighbors = neigh
            .into_iter()
            .filter(|n| !matches!(n.state, S::Incomplete | S::Failed | S::Noarp | S::None))
            .filter_map(|n| {
                Some(LearnedNeighbor {
                    iface: self.iface_of(n.ifindex)?,
                    ip: n.ip,
                    mac: Mac(n.mac?),
                    age_ms: n.confirmed_ms,
                })
            })
            .collect();
        let macs = match self.bridge {
            None => Vec::new(),
            Some(br) => self
                .nl
                .call("list FDB", move |h| async move {
                    bridge::fdb(h, br)
                        .await
                        .map_err(|e| kernel_error("list the bridge FDB".into(), e))
                })?
                .into_iter()
                .filter_map(|f| {
                    Some(LearnedMac {
                        vlan: VlanId::new(f.vid).ok()?,
                        mac: Mac(f.mac),
                        port: self.ports.iter().find(|p| p.ifindex == f.port)?.id,
                        is_static: f.is_static,
                        age_ms: f.age_ms,
                    })
                })
                .collect(),
        };
        let all = nl::list_links(&self.nl)?;
        let links = self
            .ports
            .iter()
            .map(|p| PortLink {
                port: p.id,
                link: link_state(all.iter().find(|l| l.index == p.ifindex)),
            })
            .collect();
        let mut counters = vec![
            Counter {
                name: "punted".into(),
                value: self.shared.punted.load(Ordering::Relaxed),
            },
            Counter {
                name: "drop punt-queue-full".into(),
                value: self.shared.punt_drops.load(Ordering::Relaxed),
            },
            Counter {
                name: "proxy-arp answered".into(),
                value: self.shared.proxy_arp_answered.load(Ordering::Relaxed),
            },
            Counter {
                name: "drop proxy-arp send-error".into(),
                value: self.shared.proxy_arp_send_errors.load(Ordering::Relaxed),
            },
        ];
        counters.extend(self.hello_filter.iter().flat_map(HelloFilter::counters));
        counters.extend(self.port_counters(&all));
        if let Some(o) = &self.offload {
            counters.extend(o.counters());
        }
        Ok(Learned {
            macs,
            neighbors,
            counters,
            links,
        })
    }

    fn trace(&self, port: PortId, tag: Option<VlanId>, frame: Vec<u8>) -> Result<Trace, HalError> {
        if tag.is_some() {
            return Err(HalError::NotSupported {
                operation: "forwarding trace",
                backend: BACKEND.into(),
                reason: NO_VLAN_FILTERING,
            });
        }
        let p = self.port(port)?;
        let filtered = self
            .hello_filter
            .as_ref()
            .is_some_and(|f| f.filtered().contains(&p.ifindex));
        if filtered && roamer_forwarding::pipeline::is_hsrp_hello(&frame) {
            // The TC program drops it before the kernel's lookup: nothing to ask the FIB.
            return Ok(Trace {
                verdict: "Drop(HelloFiltered)".into(),
                reply: None,
                steps: vec![
                    format!("received on {} (ifindex {})", p.device, p.ifindex),
                    "HSRP hello on a port with hsrp hello-filter: dropped by the TC program \
                     hello_filter_in (counter drop hsrp-hello-filtered)"
                        .into(),
                ],
            });
        }
        trace::trace(&self.nl, p.ifindex, &p.device, &frame)
    }

    fn set_notifier(&mut self, notify: Notifier) -> Result<bool, HalError> {
        if let Ok(mut n) = self.shared.notifier.lock() {
            *n = Some(notify);
        }
        Ok(true)
    }
}
