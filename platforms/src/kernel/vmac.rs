//! HSRP's virtual MAC and IP on the kernel backend, the way keepalived and FRR's vrrpd do it: a
//! macvlan device with the virtual MAC on the group's interface (`rmrh<lower ifindex>-<last two
//! MAC octets>`), holding the virtual IP as a /32. The device exists only while the group is
//! Active (the control plane adds the `RouterMac { virtual_mac: true }` and the virtual
//! `InterfaceAddress` rows then, and removes them on leaving Active).
//!
//! - Frames to the virtual MAC reach the macvlan (its MAC is in the lower device's unicast
//!   filter; a bridge under an SVI goes promiscuous for it) and are routed from there.
//! - ARP: the lower device gets `arp_ignore 1`, so only the macvlan answers for the virtual IP,
//!   with the virtual MAC; and `arp_announce 2`, so the ARP requests the lower device sends
//!   carry its own address, never the virtual IP (a host would otherwise move the virtual IP
//!   to the lower device's MAC). The macvlan gets `arp_ignore 1` too, so it does not answer
//!   for the lower device's addresses.
//! - Proxy-ARP (seed 001: the answer carries the virtual MAC): while the interface has both,
//!   `proxy_arp` moves from the lower device to the macvlan, and both get the same
//!   `medium_id`, so the macvlan answers only for targets routed out of *other* interfaces (the
//!   kernel's rule), not for hosts on the segment itself. The kernel's proxy-ARP answers only
//!   for destinations with a unicast route: not for LISP destinations (a `blackhole` route).
//!
//! The lower device's sysctls go back to their old values with the last virtual MAC
//! ([`super::state::Restore`]); the macvlan is roamer's by name and removed on stop and, after
//! a crash, at the next start.

use roamer_hal::{HalError, L3Interface, Mac, TableEntry, TableKind};
use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::{Handle, LinkMacVlan};

use super::nl::{self, kernel_error};
use super::{KernelBackend, io_err};

/// The name prefix of roamer's virtual-MAC devices.
pub const PREFIX: &str = "rmrh";

/// Every SVI and routed port with proxy-ARP and a virtual MAC shares this `medium_id` with its
/// macvlans (any nonzero value: only equality between the two devices matters).
const MEDIUM_ID: &str = "1";

/// The macvlan of virtual MAC `mac` on the device with `lower` ifindex (at most 14 octets:
/// Linux allows 15).
pub fn device_name(lower: u32, mac: Mac) -> String {
    format!("{PREFIX}{lower}-{:02x}{:02x}", mac.0[4], mac.0[5])
}

fn sysctl(device: &str, name: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{device}/{name}")
}

/// Creates the macvlan (bridge mode, the virtual MAC, up) unless it exists; its ifindex.
async fn ensure(h: Handle, lower: u32, name: String, mac: Mac) -> Result<u32, rtnetlink::Error> {
    let existing = |links: Vec<nl::LinkInfo>| links.into_iter().find(|l| l.name == name);
    if let Some(l) = existing(nl::links(h.clone()).await?) {
        return Ok(l.index);
    }
    h.link()
        .add(
            LinkMacVlan::new(&name, lower, MacVlanMode::Bridge)
                .address(mac.0.to_vec())
                .up()
                .build(),
        )
        .execute()
        .await?;
    existing(nl::links(h).await?)
        .map(|l| l.index)
        .ok_or_else(|| rtnetlink::Error::InvalidNla(format!("{name} created but not listed")))
}

/// Deletes roamer's virtual-MAC devices whose names are in `names` (all of them with `None`).
pub async fn delete(h: Handle, names: Option<&[String]>) -> Result<Vec<String>, rtnetlink::Error> {
    let mut removed = Vec::new();
    for l in nl::links(h.clone()).await? {
        let wanted = match names {
            Some(n) => n.contains(&l.name),
            None => l.name.starts_with(PREFIX),
        };
        if wanted {
            h.link().del(l.index).execute().await?;
            removed.push(l.name);
        }
    }
    Ok(removed)
}

/// Whether a write or restore of a sysctl failed only because its device is gone (an SVI
/// removed before its virtual MAC on stop).
fn device_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

impl KernelBackend {
    /// The virtual MACs programmed on `iface` (from the rows, `except` left out).
    fn virtual_macs_of(&self, iface: L3Interface, except: Option<Mac>) -> Vec<Mac> {
        self.rows
            .get(&TableKind::RouterMac)
            .into_iter()
            .flat_map(|t| t.values())
            .filter_map(|e| match e {
                TableEntry::RouterMac {
                    iface: i,
                    mac,
                    virtual_mac: true,
                } if *i == iface && Some(*mac) != except => Some(*mac),
                _ => None,
            })
            .collect()
    }

    /// The macvlan of `mac` on `iface`, created (with its sysctls and the lower device's) when
    /// missing; its ifindex.
    pub(super) fn virtual_mac_device(
        &mut self,
        iface: L3Interface,
        mac: Mac,
    ) -> Result<u32, HalError> {
        let lower = self.l3(iface)?;
        let name = device_name(lower.ifindex, mac);
        let (lower_index, n) = (lower.ifindex, name.clone());
        let index = self
            .nl
            .call("create virtual MAC device", move |h| async move {
                ensure(h, lower_index, n.clone(), mac)
                    .await
                    .map_err(|e| kernel_error(format!("create macvlan {n} for {mac}"), e))
            })?;
        let mut set = |path: String, value: &str| -> Result<(), HalError> {
            self.restore
                .set_sysctl(&path, value)
                .map_err(|e| io_err("set an ARP sysctl for HSRP", e))
        };
        set(sysctl(&lower.device, "arp_ignore"), "1")?;
        set(sysctl(&lower.device, "arp_announce"), "2")?;
        set(sysctl(&lower.device, "medium_id"), MEDIUM_ID)?;
        self.vmac_devs.insert((iface, mac), index);
        self.attach_itr(index, iface)?;
        // The macvlan is roamer's own device: its values need no restoring.
        for (key, value) in [("arp_ignore", "1"), ("medium_id", MEDIUM_ID)] {
            let path = sysctl(&name, key);
            self.nl
                .run("write sysctl", move || std::fs::write(&path, value))?
                .map_err(|e| io_err("set an ARP sysctl of the virtual MAC device", e))?;
        }
        Ok(index)
    }

    /// The ifindex of the macvlan of `mac` on `iface`, if it exists.
    pub(super) fn virtual_mac_index(
        &mut self,
        iface: L3Interface,
        mac: Mac,
    ) -> Result<Option<u32>, HalError> {
        let Some(lower) = self.l3_existing(iface)? else {
            return Ok(None);
        };
        let name = device_name(lower.ifindex, mac);
        Ok(nl::list_links(&self.nl)?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index))
    }

    /// Removes the macvlan of `mac` on `iface`; with the interface's last virtual MAC, the
    /// lower device's sysctls go back to their old values.
    pub(super) fn remove_virtual_mac(
        &mut self,
        iface: L3Interface,
        mac: Mac,
    ) -> Result<(), HalError> {
        let Some(lower) = self.l3_existing(iface)? else {
            return Ok(());
        };
        if let Some(index) = self.vmac_devs.remove(&(iface, mac)) {
            self.forget_itr(index)?;
        }
        let names = [device_name(lower.ifindex, mac)];
        self.nl
            .call("remove virtual MAC device", move |h| async move {
                delete(h, Some(&names))
                    .await
                    .map(drop)
                    .map_err(|e| kernel_error(format!("remove macvlan {}", names[0]), e))
            })?;
        if self.virtual_macs_of(iface, Some(mac)).is_empty() {
            for key in ["arp_ignore", "arp_announce", "medium_id"] {
                match self.restore.restore_sysctl(&sysctl(&lower.device, key)) {
                    Err(e) if !device_gone(&e) => {
                        return Err(io_err("restore an ARP sysctl after HSRP", e));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Puts `proxy_arp` where it answers with the right MAC: on the lower device when the
    /// interface has no virtual MAC, on its macvlans (and off the lower device) when it has.
    /// Run after the rows changed.
    pub(super) fn sync_proxy_arp(&mut self, iface: L3Interface) -> Result<(), HalError> {
        let Some(lower) = self.l3_existing(iface)? else {
            return Ok(());
        };
        let wanted = self
            .rows
            .get(&TableKind::ProxyArp)
            .is_some_and(|t| t.contains_key(&TableEntry::ProxyArp { iface }.key()));
        let macs = self.virtual_macs_of(iface, None);
        let lower_path = sysctl(&lower.device, "proxy_arp");
        let lower_set = match (wanted, macs.is_empty()) {
            (true, true) => self.restore.set_sysctl(&lower_path, "1"),
            (true, false) => self.restore.set_sysctl(&lower_path, "0"),
            (false, _) => self.restore.restore_sysctl(&lower_path),
        };
        match lower_set {
            Err(e) if !device_gone(&e) => return Err(io_err("set proxy_arp", e)),
            _ => {}
        }
        let value = if wanted { "1" } else { "0" };
        for mac in macs {
            let path = sysctl(&device_name(lower.ifindex, mac), "proxy_arp");
            match self
                .nl
                .run("write sysctl", move || std::fs::write(&path, value))?
            {
                Err(e) if !device_gone(&e) => {
                    return Err(io_err("set proxy_arp of the virtual MAC device", e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
