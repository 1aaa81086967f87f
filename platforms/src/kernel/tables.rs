//! Table entries as kernel objects: what each HAL row becomes, and how it goes away.

use roamer_hal::{HalError, NextHop, TableEntry, TableKind, TableOp};

use super::nl::{self, RouteKind, kernel_error};
use super::{KernelBackend, backend_err, bridge, mac_text, state, unsupported};

impl KernelBackend {
    /// Creates the kernel object of `entry` (replacing `old`'s when updating).
    pub(super) fn program(
        &mut self,
        entry: &TableEntry,
        old: Option<&TableEntry>,
    ) -> Result<(), HalError> {
        match entry {
            TableEntry::Route { prefix, next_hop } => {
                let kind = match next_hop {
                    // The kernel adds an interface's subnet with the address.
                    NextHop::Connected(i) if self.is_subnet_of(*i, prefix) => {
                        if let Some(o) = old {
                            self.unprogram(o)?;
                        }
                        return Ok(());
                    }
                    // Anything else on the link (a dynamic EID's host route across subnets).
                    NextHop::Connected(i) => RouteKind::Device {
                        oif: self.l3(*i)?.ifindex,
                    },
                    NextHop::Gateway { via, iface } => RouteKind::Unicast {
                        via: Some(*via),
                        oif: match iface {
                            Some(i) => Some(self.l3(*i)?.ifindex),
                            None => None,
                        },
                    },
                    NextHop::Lisp => RouteKind::Lisp,
                    NextHop::Discard => RouteKind::Discard,
                };
                let msg = nl::route_message(prefix.addr(), prefix.len(), kind)?;
                // Replacing only what roamer installed: an old subnet row has no route.
                let replace = matches!(
                    old,
                    Some(TableEntry::Route { next_hop, prefix }) if !matches!(next_hop, NextHop::Connected(i) if self.is_subnet_of(*i, prefix))
                );
                let what = format!("route {prefix}");
                self.nl.call("add route", move |h| async move {
                    nl::route_add(h, msg, replace)
                        .await
                        .map_err(|e| kernel_error(format!("add {what}"), e))
                })
            }
            TableEntry::InterfaceAddress {
                iface,
                addr,
                prefix_len,
                virtual_mac,
            } => {
                if let Some(o) = old {
                    self.unprogram(o)?;
                }
                // An HSRP virtual IP lives on the virtual MAC's macvlan (see `vmac.rs`).
                let ifindex = match virtual_mac {
                    Some(mac) => self.virtual_mac_device(*iface, *mac)?,
                    None => self.l3(*iface)?.ifindex,
                };
                let (addr, len) = (*addr, *prefix_len);
                self.nl.call("add address", move |h| async move {
                    nl::address_add(h, ifindex, addr, len)
                        .await
                        .map_err(|e| kernel_error(format!("add address {addr}/{len}"), e))
                })
            }
            TableEntry::Neighbor { iface, ip, mac } => {
                let ifindex = self.l3(*iface)?.ifindex;
                let (ip, mac, replace) = (*ip, mac.0, old.is_some());
                self.nl.call("add neighbour", move |h| async move {
                    nl::neighbour_add(h, ifindex, ip, mac, replace)
                        .await
                        .map_err(|e| kernel_error(format!("add neighbour {ip}"), e))
                })
            }
            TableEntry::RouterMac {
                iface,
                mac,
                virtual_mac,
            } => {
                if *virtual_mac {
                    if let Some(o) = old {
                        self.unprogram(o)?;
                    }
                    return self.virtual_mac_device(*iface, *mac).map(drop);
                }
                let port = self.l3(*iface)?;
                let links = nl::list_links(&self.nl)?;
                let current = links
                    .iter()
                    .find(|l| l.index == port.ifindex)
                    .and_then(|l| l.mac)
                    .ok_or_else(|| backend_err(format!("{} has no MAC address", port.device)))?;
                // An SVI is roamer's own device: it goes with the bridge, nothing to restore.
                if matches!(iface, roamer_hal::L3Interface::Port(_)) {
                    self.restore.remember_mac(&port.device, &mac_text(current));
                }
                let (ifindex, mac) = (port.ifindex, mac.0);
                self.nl.call("set MAC", move |h| async move {
                    nl::set_mac(h, ifindex, mac)
                        .await
                        .map_err(|e| kernel_error(format!("set MAC of ifindex {ifindex}"), e))
                })
            }
            // The sysctls follow the rows (`sync_proxy_arp` after every change): the device
            // that answers depends on the interface's virtual MACs too.
            TableEntry::ProxyArp { iface } => self.l3(*iface).map(drop),
            TableEntry::HelloFilter { port } => self.filter_hellos(*port),
            // A VLAN alone is a name: it exists on the bridge once a port or its SVI is in it
            // (the default VLAN 1 of a routed-only switch needs no bridge at all).
            TableEntry::Vlan { .. } => Ok(()),
            TableEntry::VlanMember { vlan, port, tagged } => {
                if !*tagged && let Ok(mut m) = self.shared.access_vlans.write() {
                    m.insert(*port, *vlan);
                }
                let br = self.bridge()?;
                let ifindex = self.port(*port)?.ifindex;
                let (vid, access) = (vlan.get(), !*tagged);
                self.nl.call("add VLAN member", move |h| async move {
                    bridge::enslave(h.clone(), ifindex, Some(br))
                        .await
                        .map_err(|e| {
                            kernel_error(format!("add ifindex {ifindex} to the bridge"), e)
                        })?;
                    bridge::vlan_add(h, ifindex, vid, access, false)
                        .await
                        .map_err(|e| {
                            kernel_error(format!("add vlan {vid} to ifindex {ifindex}"), e)
                        })
                })
            }
            TableEntry::Fdb {
                vlan, mac, port, ..
            } => {
                self.bridge()?;
                if let Some(o) = old {
                    self.unprogram(o)?;
                }
                let ifindex = self.port(*port)?.ifindex;
                let (vid, mac) = (vlan.get(), mac.0);
                self.nl.call("add FDB entry", move |h| async move {
                    bridge::fdb_add(h, ifindex, vid, mac)
                        .await
                        .map_err(|e| kernel_error(format!("add FDB entry vlan {vid}"), e))
                })
            }
            other => Err(unsupported(&TableOp::add(other.clone()))),
        }
    }

    /// Whether `prefix` is the subnet of one of `iface`'s addresses (the kernel's own
    /// connected route, not roamer's to add or remove).
    fn is_subnet_of(&self, iface: roamer_hal::L3Interface, prefix: &roamer_hal::Prefix) -> bool {
        self.rows
            .get(&TableKind::InterfaceAddress)
            .into_iter()
            .flat_map(|t| t.values())
            .any(|e| {
                matches!(e, TableEntry::InterfaceAddress { iface: i, addr, prefix_len, .. }
                    if *i == iface
                        && roamer_hal::Prefix::new(*addr, *prefix_len).ok().as_ref() == Some(prefix))
            })
    }

    /// Removes the kernel object of `entry`.
    pub(super) fn unprogram(&mut self, entry: &TableEntry) -> Result<(), HalError> {
        match entry {
            TableEntry::Route { prefix, next_hop } => {
                let subnet =
                    matches!(next_hop, NextHop::Connected(i) if self.is_subnet_of(*i, prefix));
                if subnet {
                    return Ok(());
                }
                let msg = nl::route_message(
                    prefix.addr(),
                    prefix.len(),
                    RouteKind::Unicast {
                        via: None,
                        oif: None,
                    },
                )?;
                let what = format!("route {prefix}");
                self.nl.call("remove route", move |h| async move {
                    nl::route_del(h, msg)
                        .await
                        .map_err(|e| kernel_error(format!("remove {what}"), e))
                })
            }
            TableEntry::InterfaceAddress {
                iface,
                addr,
                prefix_len,
                virtual_mac,
            } => {
                let ifindex = match virtual_mac {
                    Some(mac) => self.virtual_mac_index(*iface, *mac)?,
                    None => self.l3_existing(*iface)?.map(|p| p.ifindex),
                };
                let Some(ifindex) = ifindex else {
                    return Ok(());
                };
                let (addr, len) = (*addr, *prefix_len);
                self.nl.call("remove address", move |h| async move {
                    nl::address_del(h, ifindex, addr, len)
                        .await
                        .map_err(|e| kernel_error(format!("remove address {addr}/{len}"), e))
                })
            }
            TableEntry::Neighbor { iface, ip, .. } => {
                let Some(port) = self.l3_existing(*iface)? else {
                    return Ok(());
                };
                let ifindex = port.ifindex;
                let ip = *ip;
                self.nl.call("remove neighbour", move |h| async move {
                    nl::neighbour_del(h, ifindex, ip)
                        .await
                        .map_err(|e| kernel_error(format!("remove neighbour {ip}"), e))
                })
            }
            TableEntry::RouterMac {
                iface,
                mac,
                virtual_mac: true,
            } => self.remove_virtual_mac(*iface, *mac),
            TableEntry::RouterMac { iface, .. } => {
                let Some(port) = self.l3_existing(*iface)? else {
                    return Ok(());
                };
                let Some(old) = self.restore.take_mac(&port.device) else {
                    return Ok(());
                };
                let Some(mac) = state::parse_mac(&old) else {
                    return Err(backend_err(format!("remembered MAC '{old}' unreadable")));
                };
                let ifindex = port.ifindex;
                self.nl.call("restore MAC", move |h| async move {
                    nl::set_mac(h, ifindex, mac)
                        .await
                        .map_err(|e| kernel_error(format!("restore MAC of ifindex {ifindex}"), e))
                })
            }
            TableEntry::HelloFilter { port } => self.unfilter_hellos(*port),
            TableEntry::Vlan { vlan } => {
                let vid = vlan.get();
                let (Some(br), Some(svi)) = (self.bridge, self.svis.remove(&vid)) else {
                    return Ok(());
                };
                // Its HSRP macvlans go with the SVI, and the ITR with both.
                let iface = roamer_hal::L3Interface::Vlan(*vlan);
                let gone: Vec<u32> = self
                    .vmac_devs
                    .iter()
                    .filter(|((i, _), _)| *i == iface)
                    .map(|(_, index)| *index)
                    .chain([svi])
                    .collect();
                self.vmac_devs.retain(|(i, _), _| *i != iface);
                for index in gone {
                    self.forget_itr(index)?;
                }
                // The SVI, and the bridge's own membership that was made for it.
                self.nl.call("remove VLAN", move |h| async move {
                    h.link().del(svi).execute().await.map_err(|e| {
                        kernel_error(format!("remove {}", bridge::svi_name(vid)), e)
                    })?;
                    bridge::vlan_del(h, br, vid, true)
                        .await
                        .map_err(|e| kernel_error(format!("remove vlan {vid} from the bridge"), e))
                })
            }
            TableEntry::VlanMember { vlan, port, tagged } => {
                if !*tagged && let Ok(mut m) = self.shared.access_vlans.write() {
                    m.remove(port);
                }
                let ifindex = self.port(*port)?.ifindex;
                let vid = vlan.get();
                let (port, vlan) = (*port, *vlan);
                let still_member = self.rows.get(&TableKind::VlanMember).is_some_and(|t| {
                    t.values().any(|e| {
                        matches!(e, TableEntry::VlanMember { vlan: v, port: p, .. }
                            if *p == port && *v != vlan)
                    })
                });
                self.nl.call("remove VLAN member", move |h| async move {
                    bridge::vlan_del(h.clone(), ifindex, vid, false)
                        .await
                        .map_err(|e| {
                            kernel_error(format!("remove vlan {vid} from ifindex {ifindex}"), e)
                        })?;
                    if !still_member {
                        bridge::enslave(h, ifindex, None).await.map_err(|e| {
                            kernel_error(format!("release ifindex {ifindex} from the bridge"), e)
                        })?;
                    }
                    Ok(())
                })
            }
            TableEntry::Fdb {
                vlan, mac, port, ..
            } => {
                let ifindex = self.port(*port)?.ifindex;
                let (vid, mac) = (vlan.get(), mac.0);
                self.nl.call("remove FDB entry", move |h| async move {
                    bridge::fdb_del(h, ifindex, vid, mac)
                        .await
                        .map_err(|e| kernel_error(format!("remove FDB entry vlan {vid}"), e))
                })
            }
            _ => Ok(()),
        }
    }
}
