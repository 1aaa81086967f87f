//! Rows for the forwarding show commands, from the running configuration and the data path.

use std::collections::BTreeMap;

use roamer_control::config::{Config, InterfaceName, PortMode};
use roamer_control::reconcile::port_bindings;
use roamer_control::show::{ArpRow, InterfaceRow, MacRow, RouteRow};
use roamer_hal::{
    DataPlaneReader, L3Interface, Learned, LinkState, NextHop, PortId, Prefix, TableEntry,
    TableKind,
};

use crate::dataplane::Dataplane;

#[derive(Debug, Default)]
pub struct ShowTables {
    pub macs: Vec<MacRow>,
    pub arp: Vec<ArpRow>,
    pub routes: Vec<RouteRow>,
    pub interfaces: Vec<InterfaceRow>,
    pub counters: Vec<(String, u64)>,
    /// The data plane did not give its rows (the first error): the commands that show them
    /// print it instead of an empty table.
    pub unavailable: Option<String>,
}

fn short(name: &InterfaceName) -> String {
    match name {
        InterfaceName::Ethernet { slot, port } => format!("Eth{slot}/{port}"),
        other => other.to_string(),
    }
}

/// What the forwarding show commands read from the data plane, taken under the daemon's lock
/// (quickly: a reader, not its rows) and read off the loop when the command renders.
pub struct DataplaneView {
    pub reader: Box<dyn DataPlaneReader>,
    /// Refused table operations still to retry, and the retry rounds run (the daemon's own).
    pub pending: u64,
    pub retry_rounds: u64,
    /// Punts and events dropped because an instance's inbox was full.
    pub inbox_dropped: u64,
    /// How each port moves its frames (AF_XDP, AF_PACKET with the fallback reason, TAP).
    pub port_io: std::collections::BTreeMap<PortId, roamer_hal::PortIoInfo>,
}

impl std::fmt::Debug for DataplaneView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataplaneView")
            .field("pending", &self.pending)
            .field("retry_rounds", &self.retry_rounds)
            .finish_non_exhaustive()
    }
}

impl DataplaneView {
    pub fn of(dataplane: &Dataplane, inbox_dropped: u64) -> Self {
        DataplaneView {
            reader: dataplane.reader(),
            pending: dataplane.pending().len() as u64,
            retry_rounds: dataplane.retry_rounds(),
            inbox_dropped,
            port_io: dataplane.port_io_reports().clone(),
        }
    }
}

/// The rows, read through the view's reader (round trips to a data path happen here, off the
/// daemon's loop).
pub fn collect(cfg: &Config, view: &DataplaneView) -> ShowTables {
    let dataplane = &*view.reader;
    let names: BTreeMap<PortId, InterfaceName> = port_bindings(cfg)
        .into_iter()
        .map(|b| (b.id, b.name))
        .collect();
    let port_name = |p: PortId| names.get(&p).map(short).unwrap_or_else(|| p.to_string());
    let iface_name = |i: L3Interface| match i {
        L3Interface::Vlan(v) => format!("Vlan{v}"),
        L3Interface::Port(p) => port_name(p),
    };
    let mut out = ShowTables::default();
    let learned = dataplane.learned().unwrap_or_else(|e| {
        out.unavailable.get_or_insert_with(|| e.to_string());
        Learned::default()
    });
    let mut macs = learned.macs.clone();
    macs.sort_by_key(|m| (m.vlan, m.mac));
    for m in macs {
        out.macs.push(MacRow {
            vlan: m.vlan.get(),
            mac: m.mac.to_string(),
            dynamic: !m.is_static,
            age_secs: m.age_ms / 1000,
            port: port_name(m.port),
            gateway: false,
        });
    }
    let mut neighbors = learned.neighbors.clone();
    neighbors.sort_by_key(|n| (n.ip, n.iface));
    for n in neighbors {
        out.arp.push(ArpRow {
            address: n.ip,
            age_secs: n.age_ms / 1000,
            mac: n.mac.to_string(),
            interface: iface_name(n.iface),
        });
    }
    out.counters = learned
        .counters
        .iter()
        .map(|c| (c.name.clone(), c.value))
        .collect();
    // The daemon's own: refused table operations still to retry, and the retry rounds run.
    out.counters
        .push(("table-ops-pending".into(), view.pending));
    out.counters
        .push(("table-retry-rounds".into(), view.retry_rounds));
    out.counters
        .push(("drop instance-inbox-full".into(), view.inbox_dropped));
    let rows = |kind: TableKind, out: &mut ShowTables| {
        dataplane.entries(kind).unwrap_or_else(|e| {
            out.unavailable.get_or_insert_with(|| e.to_string());
            Vec::new()
        })
    };
    for e in rows(TableKind::RouterMac, &mut out) {
        if let TableEntry::RouterMac {
            iface: L3Interface::Vlan(v),
            mac,
            ..
        } = e
        {
            out.macs.push(MacRow {
                vlan: v.get(),
                mac: mac.to_string(),
                dynamic: false,
                age_secs: 0,
                port: "sup-eth1(R)".into(),
                gateway: true,
            });
        }
    }

    // Routes: connected and local from the interfaces, then what the tables hold.
    for (name, iface) in &cfg.interfaces {
        if iface.shutdown {
            continue;
        }
        for a in iface.ipv4.iter().chain(&iface.ipv6) {
            out.routes.push(RouteRow {
                prefix: a.subnet().to_string(),
                via: a.addr.to_string(),
                interface: name.to_string(),
                source: "direct".into(),
            });
            out.routes.push(RouteRow {
                prefix: Prefix::host(a.addr).to_string(),
                via: a.addr.to_string(),
                interface: name.to_string(),
                source: "local".into(),
            });
        }
    }
    for kind in [TableKind::Ipv4Route, TableKind::Ipv6Route] {
        for e in rows(kind, &mut out) {
            let TableEntry::Route { prefix, next_hop } = e else {
                continue;
            };
            let (via, interface, source) = match next_hop {
                NextHop::Gateway { via, iface } => (
                    via.to_string(),
                    iface.map(iface_name).unwrap_or_default(),
                    "static",
                ),
                NextHop::Connected(i) => ("0.0.0.0".into(), iface_name(i), "direct"),
                NextHop::Lisp => ("LISP".into(), String::new(), "lisp"),
                NextHop::Discard => ("Null0".into(), String::new(), "static"),
            };
            out.routes.push(RouteRow {
                prefix: prefix.to_string(),
                via,
                interface,
                source: source.into(),
            });
        }
    }
    out.routes.sort_by(|a, b| {
        a.prefix
            .parse::<Prefix>()
            .ok()
            .cmp(&b.prefix.parse::<Prefix>().ok())
    });

    for b in port_bindings(cfg) {
        let iface = cfg.interfaces.get(&b.name).cloned().unwrap_or_default();
        let (vlan, mode) = match iface.switchport.clone().unwrap_or_default() {
            PortMode::Access { vlan } => (vlan.to_string(), "access"),
            PortMode::Trunk { .. } => ("1".into(), "trunk"),
            PortMode::Routed => ("--".into(), "routed"),
        };
        let (status, reason) = match (iface.shutdown, learned.link(b.id)) {
            (true, _) => ("down", "Administratively down"),
            (false, Some(LinkState::Gone)) => ("down", "Link not present"),
            (false, Some(LinkState::NoCarrier)) => ("down", "Link not connected"),
            (false, Some(LinkState::AdminDown)) => ("down", "Administratively down"),
            (false, _) => ("up", "none"),
        };
        let io = match view.port_io.get(&b.id) {
            Some(r) => match &r.fallback {
                Some(why) => format!("{} (AF_XDP not used: {why})", r.io),
                None => r.io.clone(),
            },
            None => String::new(),
        };
        out.interfaces.push(InterfaceRow {
            name: short(&b.name),
            io,
            vlan,
            mode: mode.into(),
            status: status.into(),
            reason: reason.into(),
            address: iface
                .ipv4
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        });
    }
    for (name, iface) in &cfg.interfaces {
        if !name.is_svi() {
            continue;
        }
        let (status, reason) = if iface.shutdown {
            ("down", "Administratively down")
        } else {
            ("up", "--")
        };
        out.interfaces.push(InterfaceRow {
            name: name.to_string(),
            io: String::new(),
            vlan: "--".into(),
            mode: "--".into(),
            status: status.into(),
            reason: reason.into(),
            address: iface
                .ipv4
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        });
    }
    out
}
