//! The HSRP instances of a running configuration: one [`Group`] per configured group, created
//! and changed from the configuration, fed punted hellos and timer ticks. Sans-IO: every call
//! returns the actions (frames to send in a VLAN, table operations for the virtual MAC/IP) for
//! the daemon to route to the data plane.

use std::collections::BTreeMap;
use std::time::Instant;

use roamer_hal::{Mac, Punt, PuntReason, VlanId};
use tracing::info;

use super::{
    Action, Cause, DEFAULT_HELLO_MS, DEFAULT_HOLD_MS, DEFAULT_PRIORITY, Group, GroupAuth,
    GroupConfig, GroupStatus, default_virtual_mac,
};
use crate::config::{Config, HsrpAuth, InterfaceName};
use crate::reconcile::system_mac;

/// An action of one group, with the VLAN of its SVI (where its frames are sent).
pub type VlanAction = (VlanId, Action);

/// The HSRP groups of the running configuration.
pub struct HsrpInstances {
    groups: BTreeMap<(VlanId, u16), (GroupConfig, Group)>,
    epoch: Instant,
}

impl std::fmt::Debug for HsrpInstances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsrpInstances")
            .field("hsrp_groups", &self.groups.len())
            .finish()
    }
}

impl Default for HsrpInstances {
    fn default() -> Self {
        HsrpInstances {
            groups: BTreeMap::new(),
            epoch: Instant::now(),
        }
    }
}

/// Every HSRP group a configuration asks for.
pub fn groups_from_config(cfg: &Config) -> BTreeMap<(VlanId, u16), GroupConfig> {
    let mut out = BTreeMap::new();
    if !cfg.features.hsrp {
        return out;
    }
    let iface_mac = system_mac(&cfg.hostname);
    for (name, iface) in &cfg.interfaces {
        let InterfaceName::Vlan(vlan) = name else {
            continue;
        };
        if iface.shutdown {
            continue;
        }
        // HSRP speaks from the SVI's primary IPv4 address; without one there is nothing to run.
        let Some(iface_ip) = iface.ipv4.first().and_then(|a| match a.addr {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        }) else {
            continue;
        };
        let version = iface.hsrp_version.unwrap_or(1);
        for g in &iface.hsrp {
            // Validation keeps v1 groups within 0-255 and v2 within 0-4095.
            let default_mac = default_virtual_mac(version, g.group).unwrap_or(Mac::ZERO);
            // A key roamer cannot decrypt fails closed: an empty MD5 key disables the group
            // rather than accepting every hello.
            let auth = match &g.authentication {
                None => GroupAuth::Text(b"cisco".to_vec()),
                Some(HsrpAuth::Text(k)) => k
                    .secret()
                    .map(|s| GroupAuth::Text(s.expose().to_vec()))
                    .unwrap_or(GroupAuth::Md5(Vec::new())),
                Some(HsrpAuth::Md5(k)) => k
                    .secret()
                    .map(|s| GroupAuth::Md5(s.expose().to_vec()))
                    .unwrap_or(GroupAuth::Md5(Vec::new())),
            };
            out.insert(
                (*vlan, g.group),
                GroupConfig {
                    vlan: *vlan,
                    group: g.group,
                    version,
                    virtual_ip: g.ip,
                    virtual_mac: g.mac_address.unwrap_or(default_mac),
                    priority: g.priority.unwrap_or(DEFAULT_PRIORITY),
                    preempt: g.preempt.map(u32::from),
                    hello_ms: g.timers.map(|t| t.hello_ms).unwrap_or(DEFAULT_HELLO_MS),
                    hold_ms: g.timers.map(|t| t.hold_ms).unwrap_or(DEFAULT_HOLD_MS),
                    auth,
                    iface_ip,
                    iface_mac,
                },
            );
        }
    }
    out
}

impl HsrpInstances {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Starts, changes and stops groups to match `cfg`.
    pub fn sync(&mut self, cfg: &Config) -> Vec<VlanAction> {
        let now = self.now_ms();
        let wanted = groups_from_config(cfg);
        let mut actions = Vec::new();
        let gone: Vec<(VlanId, u16)> = self
            .groups
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            if let Some((_, mut group)) = self.groups.remove(&key) {
                info!(vlan = %key.0, group = key.1, "HSRP group removed");
                // The state change is logged with its cause: the SVI shut, or the group gone.
                let svi_down = cfg
                    .interfaces
                    .get(&InterfaceName::Vlan(key.0))
                    .is_some_and(|i| i.shutdown);
                let cause = if svi_down {
                    Cause::InterfaceDown
                } else {
                    Cause::Config
                };
                actions.extend(
                    group
                        .shutdown_for(now, cause)
                        .into_iter()
                        .map(|a| (key.0, a)),
                );
            }
        }
        for (key, config) in wanted {
            match self.groups.get_mut(&key) {
                Some((current, group)) if *current != config => {
                    actions.extend(
                        group
                            .reconfigure(config.clone(), now)
                            .into_iter()
                            .map(|a| (key.0, a)),
                    );
                    *current = config;
                }
                Some(_) => {}
                None => {
                    info!(vlan = %key.0, group = key.1, "HSRP group started");
                    let (group, first) = Group::new(config.clone(), now);
                    actions.extend(first.into_iter().map(|a| (key.0, a)));
                    self.groups.insert(key, (config, group));
                }
            }
        }
        actions
    }

    /// A punted frame: HSRP hellos go to the groups of their VLAN.
    pub fn punt(&mut self, punt: &Punt) -> Vec<VlanAction> {
        if punt.reason != PuntReason::Hsrp {
            return Vec::new();
        }
        let Some(vlan) = punt.vlan else {
            return Vec::new();
        };
        let now = self.now_ms();
        let mut actions = Vec::new();
        for ((v, _), (_, group)) in self.groups.iter_mut().filter(|((v, _), _)| *v == vlan) {
            actions.extend(group.receive(&punt.frame, now).into_iter().map(|a| (*v, a)));
        }
        actions
    }

    /// Timers: hellos, hold times, preempt delays.
    pub fn tick(&mut self) -> Vec<VlanAction> {
        self.tick_at(self.now_ms())
    }

    /// [`HsrpInstances::tick`] at `now` milliseconds since the instances were created.
    pub fn tick_at(&mut self, now: u64) -> Vec<VlanAction> {
        let mut actions = Vec::new();
        for ((v, _), (_, group)) in self.groups.iter_mut() {
            if group.next_deadline() <= now {
                actions.extend(group.tick(now).into_iter().map(|a| (*v, a)));
            }
        }
        actions
    }

    pub fn statuses(&self) -> Vec<GroupStatus> {
        let now = self.now_ms();
        self.groups
            .values()
            .map(|(_, g)| g.status_at(now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};

    const TWO_GROUPS: &str = "hostname r1\nfeature interface-vlan\nfeature hsrp\nvlan 10,20\n\
        interface Vlan10\n  ip address 10.10.0.2/24\n  hsrp 10\n    timers 1 3\n    ip 10.10.0.1\n\
        interface Vlan20\n  ip address 10.20.0.2/24\n  hsrp 20\n    ip 10.20.0.1\n";

    fn cfg(text: &str) -> Config {
        config::parse(text, Syntax::Cli).expect("parses").0
    }

    #[test]
    fn groups_follow_the_configuration_and_speak_only_through_their_actions() {
        let mut hsrp = HsrpInstances::default();
        let c = cfg(TWO_GROUPS);
        assert_eq!(groups_from_config(&c).len(), 2);
        hsrp.sync(&c);
        assert_eq!(hsrp.statuses().len(), 2);
        // Alone on its LAN, a group speaks within a few hold times: frames for its VLAN.
        let mut sent: Vec<VlanId> = Vec::new();
        for now in (0..15_000).step_by(100) {
            sent.extend(
                hsrp.tick_at(now)
                    .into_iter()
                    .filter(|(_, a)| matches!(a, Action::Send(_)))
                    .map(|(v, _)| v),
            );
        }
        assert!(sent.contains(&VlanId::new(10).expect("vlan")), "{sent:?}");
        // Without feature hsrp, every group goes.
        let off = cfg("hostname r1\nfeature interface-vlan\nvlan 10\n");
        assert!(groups_from_config(&off).is_empty());
        hsrp.sync(&off);
        assert!(hsrp.statuses().is_empty());
    }
}
