//! Protocol instances the daemon runs beside the data plane (HSRP groups for now): created and
//! changed from the running configuration, fed punted frames and timer ticks, and their actions
//! (frames to send, virtual MAC/IP to own) carried out on the data plane.

use std::collections::BTreeMap;
use std::time::Instant;

use roamer_control::config::{Config, HsrpAuth, InterfaceName};
use roamer_control::hsrp::{
    Action, Cause, Group, GroupAuth, GroupConfig, GroupStatus, default_virtual_mac,
};
use roamer_control::reconcile::system_mac;
use roamer_hal::{InjectTarget, Mac, Punt, PuntReason, VlanId};
use tracing::{info, warn};

use crate::dataplane::Dataplane;

use roamer_control::hsrp::{DEFAULT_HELLO_MS, DEFAULT_HOLD_MS, DEFAULT_PRIORITY};

/// The HSRP groups of the running configuration.
pub struct Protocols {
    groups: BTreeMap<(VlanId, u16), (GroupConfig, Group)>,
    epoch: Instant,
}

impl std::fmt::Debug for Protocols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protocols")
            .field("hsrp_groups", &self.groups.len())
            .finish()
    }
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols {
            groups: BTreeMap::new(),
            epoch: Instant::now(),
        }
    }
}

/// Every HSRP group a configuration asks for.
pub fn hsrp_groups(cfg: &Config) -> BTreeMap<(VlanId, u16), GroupConfig> {
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

impl Protocols {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Starts, changes and stops groups to match `cfg`.
    pub fn sync(&mut self, cfg: &Config, dataplane: &mut Dataplane) {
        let now = self.now_ms();
        let wanted = hsrp_groups(cfg);
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
        carry_out(actions, dataplane);
    }

    /// A punted frame: HSRP hellos go to the groups of their VLAN.
    pub fn punt(&mut self, punt: &Punt, dataplane: &mut Dataplane) {
        if punt.reason != PuntReason::Hsrp {
            return;
        }
        let Some(vlan) = punt.vlan else { return };
        let now = self.now_ms();
        let mut actions = Vec::new();
        for ((v, _), (_, group)) in self.groups.iter_mut().filter(|((v, _), _)| *v == vlan) {
            actions.extend(group.receive(&punt.frame, now).into_iter().map(|a| (*v, a)));
        }
        carry_out(actions, dataplane);
    }

    /// Timers: hellos, hold times, preempt delays.
    pub fn tick(&mut self, dataplane: &mut Dataplane) {
        let now = self.now_ms();
        let mut actions = Vec::new();
        for ((v, _), (_, group)) in self.groups.iter_mut() {
            if group.next_deadline() <= now {
                actions.extend(group.tick(now).into_iter().map(|a| (*v, a)));
            }
        }
        carry_out(actions, dataplane);
    }

    pub fn statuses(&self) -> Vec<GroupStatus> {
        let now = self.now_ms();
        self.groups
            .values()
            .map(|(_, g)| g.status_at(now))
            .collect()
    }
}

fn carry_out(actions: Vec<(VlanId, Action)>, dataplane: &mut Dataplane) {
    for (vlan, action) in actions {
        match action {
            Action::Send(frame) => {
                if let Err(e) = dataplane.inject(InjectTarget::Vlan(vlan), &frame) {
                    warn!(%vlan, error = %e, "HSRP frame not sent");
                }
            }
            Action::Table(op) => {
                for r in dataplane.backend().apply(std::slice::from_ref(&op)) {
                    if let Err(e) = r {
                        warn!(op = %op, error = %e, "HSRP table operation failed");
                    }
                }
            }
        }
    }
}
