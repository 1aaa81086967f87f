//! VLANs on the kernel backend: one VLAN-filtering bridge `rmrbr0` (default PVID 0, so a port
//! is in no VLAN until roamer puts it there), access and trunk ports as bridge ports with
//! `bridge vlan` entries (PVID + untagged, or tagged), SVIs as 802.1Q devices `rmrvlanN` on the
//! bridge (the bridge itself carries the VLAN: `bridge vlan … self`), static FDB entries
//! (`bridge fdb … master static`), and the bridge's FDB for `show mac address-table`.
//!
//! Used only when [`super::vlan_support`] found the kernel features; this development host has
//! neither bridge VLAN filtering nor 802.1Q devices, so this module is exercised in the VM
//! image (`tests/image_vm.rs`: access ports and SVIs), not here.

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{BridgeVlanInfoFlags, InfoBridge};
use netlink_packet_route::neighbour::{
    NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgeVlan, LinkUnspec, LinkVlan};

/// The bridge roamer creates.
pub const BRIDGE: &str = "rmrbr0";

/// The SVI device of VLAN `vid`.
pub fn svi_name(vid: u16) -> String {
    format!("rmrvlan{vid}")
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, rtnetlink::Error> {
    Ok(super::nl::links(h.clone())
        .await?
        .into_iter()
        .find(|l| l.name == name)
        .map(|l| l.index))
}

/// The bridge's ifindex, creating it (VLAN filtering on, default PVID 0, up) when missing.
pub async fn ensure_bridge(h: Handle) -> Result<u32, rtnetlink::Error> {
    if let Some(i) = index_of(&h, BRIDGE).await? {
        return Ok(i);
    }
    h.link()
        .add(
            LinkBridge::new(BRIDGE)
                .append_info_data(InfoBridge::VlanFiltering(true))
                .append_info_data(InfoBridge::VlanDefaultPvid(0))
                .build(),
        )
        .execute()
        .await?;
    index_of(&h, BRIDGE)
        .await?
        .ok_or_else(|| rtnetlink::Error::InvalidNla(format!("{BRIDGE} created but not listed")))
}

/// Deletes the bridge (and with it the SVIs on it; ports are released).
pub async fn delete_bridge(h: Handle) -> Result<(), rtnetlink::Error> {
    match index_of(&h, BRIDGE).await? {
        Some(i) => h.link().del(i).execute().await,
        None => Ok(()),
    }
}

/// `bridge vlan add vid VID dev DEV [pvid untagged] [self]`.
pub async fn vlan_add(
    h: Handle,
    index: u32,
    vid: u16,
    access: bool,
    bridge_self: bool,
) -> Result<(), rtnetlink::Error> {
    let flags = if access {
        BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged
    } else {
        BridgeVlanInfoFlags::empty()
    };
    let b = LinkBridgeVlan::new(index).vlan(vid, flags);
    let b = if bridge_self { b.bridge_self() } else { b };
    h.link().set(b.build()).execute().await
}

/// `bridge vlan del vid VID dev DEV [self]`.
pub async fn vlan_del(
    h: Handle,
    index: u32,
    vid: u16,
    bridge_self: bool,
) -> Result<(), rtnetlink::Error> {
    let b = LinkBridgeVlan::new(index).vlan(vid, BridgeVlanInfoFlags::empty());
    let b = if bridge_self { b.bridge_self() } else { b };
    h.link().del_with_message(b.build()).execute().await
}

/// Makes `port` a port of the bridge (or releases it).
pub async fn enslave(h: Handle, port: u32, bridge: Option<u32>) -> Result<(), rtnetlink::Error> {
    let b = LinkUnspec::new_with_index(port);
    let b = match bridge {
        Some(br) => b.controller(br),
        None => b.nocontroller(),
    };
    h.link().set(b.build()).execute().await
}

/// The SVI of `vid` (an 802.1Q device on the bridge, up), creating it when missing; the bridge
/// itself joins the VLAN so the SVI sees its traffic.
pub async fn ensure_svi(h: Handle, bridge: u32, vid: u16) -> Result<u32, rtnetlink::Error> {
    let name = svi_name(vid);
    if let Some(i) = index_of(&h, &name).await? {
        return Ok(i);
    }
    vlan_add(h.clone(), bridge, vid, false, true).await?;
    h.link()
        .add(LinkVlan::new(&name, bridge, vid).up().build())
        .execute()
        .await?;
    index_of(&h, &name)
        .await?
        .ok_or_else(|| rtnetlink::Error::InvalidNla(format!("{name} created but not listed")))
}

fn fdb_message(port: u32, vid: u16, mac: [u8; 6]) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = port;
    m.header.state = NeighbourState::Noarp;
    m.header.flags = NeighbourFlags::Controller;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m.attributes.push(NeighbourAttribute::Vlan(vid));
    m
}

/// `bridge fdb replace MAC dev PORT vlan VID master static`.
pub async fn fdb_add(h: Handle, port: u32, vid: u16, mac: [u8; 6]) -> Result<(), rtnetlink::Error> {
    let mut req = h.neighbours().add_bridge(port, &mac).replace();
    *req.message_mut() = fdb_message(port, vid, mac);
    req.execute().await
}

/// `bridge fdb del MAC dev PORT vlan VID master`.
pub async fn fdb_del(h: Handle, port: u32, vid: u16, mac: [u8; 6]) -> Result<(), rtnetlink::Error> {
    h.neighbours()
        .del(fdb_message(port, vid, mac))
        .execute()
        .await
}

/// One FDB entry of the bridge.
#[derive(Debug, Clone)]
pub struct FdbEntry {
    pub port: u32,
    pub vid: u16,
    pub mac: [u8; 6],
    pub is_static: bool,
    /// Milliseconds since a frame from it was last seen (`NDA_CACHEINFO` updated).
    pub age_ms: u64,
}

/// The bridge's learned and static entries on its ports (its own local addresses left out).
pub async fn fdb(h: Handle, bridge: u32) -> Result<Vec<FdbEntry>, rtnetlink::Error> {
    let mut out = Vec::new();
    let mut s = h
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute();
    while let Some(n) = s.try_next().await? {
        if n.header.ifindex == bridge || n.header.state == NeighbourState::Permanent {
            continue;
        }
        let mut mac = None;
        let mut vid = None;
        let mut age_ms = 0;
        let mut master = None;
        for a in &n.attributes {
            match a {
                NeighbourAttribute::LinkLayerAddress(m) => {
                    mac = <[u8; 6]>::try_from(m.as_slice()).ok()
                }
                NeighbourAttribute::Vlan(v) => vid = Some(*v),
                NeighbourAttribute::CacheInfo(ci) => age_ms = u64::from(ci.updated) * 10,
                NeighbourAttribute::Controller(c) => master = Some(*c),
                _ => {}
            }
        }
        if let (Some(mac), Some(vid)) = (mac, vid)
            && master.is_none_or(|m| m == bridge)
        {
            let is_static = n.header.state == NeighbourState::Noarp;
            out.push(FdbEntry {
                port: n.header.ifindex,
                vid,
                mac,
                is_static,
                age_ms: if is_static { 0 } else { age_ms },
            });
        }
    }
    Ok(out)
}
