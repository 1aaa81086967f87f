//! Capacities a switchdev driver reports as devlink resources (what `devlink resource show`
//! lists), read once at start over generic netlink for the devlink devices behind roamer's
//! ports.
//!
//! Only resources whose meaning is a HAL table's are used: `/IPv4/fib` and `/IPv6/fib` (the
//! route tables of netdevsim, the kernel's reference switchdev driver) bound the IPv4 and IPv6
//! FIBs. Other drivers' resources (mlxsw's KVD partitions, shared by several tables) have no
//! one-to-one meaning and are listed in the log only. No driver here reports devlink
//! resources (this host's kernel and the VM image's have no netdevsim), so on this machine the
//! dump finds no device and the capacities stay the kernel's.

use std::collections::BTreeMap;
use std::io;

use roamer_hal::TableKind;
use tracing::{info, warn};

const NETLINK_GENERIC: isize = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const DEVLINK_CMD_PORT_GET: u8 = 5;
const DEVLINK_CMD_RESOURCE_DUMP: u8 = 36;
const DEVLINK_ATTR_BUS_NAME: u16 = 1;
const DEVLINK_ATTR_DEV_NAME: u16 = 2;
const DEVLINK_ATTR_PORT_NETDEV_IFINDEX: u16 = 6;
const DEVLINK_ATTR_RESOURCE_LIST: u16 = 63;
const DEVLINK_ATTR_RESOURCE: u16 = 64;
const DEVLINK_ATTR_RESOURCE_NAME: u16 = 65;
const DEVLINK_ATTR_RESOURCE_SIZE: u16 = 67;
const DEVLINK_ATTR_RESOURCE_OCC: u16 = 74;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDR: usize = 16;
const GENL_HDR: usize = 4;

/// One devlink resource of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `bus/device`, as `devlink dev show` names it.
    pub device: String,
    /// The path from the top, as `devlink resource show` prints it: `/IPv4/fib`.
    pub path: String,
    pub size: u64,
    pub occupancy: Option<u64>,
}

/// The resources of the devlink devices that own the interfaces `ifindexes`. A kernel without
/// devlink, or interfaces without a devlink device (veths, virtio), give none.
pub fn resources_for(ifindexes: &[u32]) -> io::Result<Vec<Resource>> {
    let mut nl = Genl::open()?;
    let Some(family) = nl.family_id("devlink")? else {
        return Ok(Vec::new());
    };
    let mut devices: Vec<(String, String)> = Vec::new();
    for reply in nl.request(family, DEVLINK_CMD_PORT_GET, NLM_F_DUMP, &[])? {
        let mut bus = None;
        let mut dev = None;
        let mut ifindex = None;
        for (kind, value) in attributes(&reply) {
            match kind {
                DEVLINK_ATTR_BUS_NAME => bus = c_string(value),
                DEVLINK_ATTR_DEV_NAME => dev = c_string(value),
                DEVLINK_ATTR_PORT_NETDEV_IFINDEX => ifindex = u32_of(value),
                _ => {}
            }
        }
        if let (Some(bus), Some(dev), Some(i)) = (bus, dev, ifindex)
            && ifindexes.contains(&i)
            && !devices.contains(&(bus.clone(), dev.clone()))
        {
            devices.push((bus, dev));
        }
    }
    let mut out = Vec::new();
    for (bus, dev) in devices {
        let mut bus_z = bus.clone().into_bytes();
        bus_z.push(0);
        let mut dev_z = dev.clone().into_bytes();
        dev_z.push(0);
        let attrs = [
            (DEVLINK_ATTR_BUS_NAME, bus_z.as_slice()),
            (DEVLINK_ATTR_DEV_NAME, dev_z.as_slice()),
        ];
        for reply in nl.request(family, DEVLINK_CMD_RESOURCE_DUMP, NLM_F_ACK, &attrs)? {
            parse_resource_reply(&reply, &format!("{bus}/{dev}"), &mut out);
        }
    }
    Ok(out)
}

/// The tables the devlink resources of the devices behind `ifindexes` bound, with the resource
/// (none without a switchdev driver that reports them); every resource found is logged.
pub fn table_capacities(ifindexes: &[u32]) -> BTreeMap<TableKind, (u32, String)> {
    let resources = match resources_for(ifindexes) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "kernel backend: reading devlink resources");
            return BTreeMap::new();
        }
    };
    for r in &resources {
        info!(device = %r.device, resource = %r.path, size = r.size, occupancy = ?r.occupancy, "devlink resource");
    }
    capacities(&resources)
}

/// The HAL tables that resources bound, how many rows each may hold and the resource that says
/// so (`device path`; the smallest bound when several devices report one). A size that does
/// not fit a `u32` is no bound.
pub fn capacities(resources: &[Resource]) -> BTreeMap<TableKind, (u32, String)> {
    let mut out: BTreeMap<TableKind, (u32, String)> = BTreeMap::new();
    for r in resources {
        let kind = match r.path.as_str() {
            "/IPv4/fib" => TableKind::Ipv4Route,
            "/IPv6/fib" => TableKind::Ipv6Route,
            _ => continue,
        };
        let Ok(size) = u32::try_from(r.size) else {
            continue;
        };
        if out.get(&kind).is_none_or(|(n, _)| size < *n) {
            out.insert(kind, (size, format!("{} {}", r.device, r.path)));
        }
    }
    out
}

/// The resources in one `DEVLINK_CMD_RESOURCE_DUMP` reply (the attributes after the generic
/// netlink header), depth first.
fn parse_resource_reply(reply: &[u8], device: &str, out: &mut Vec<Resource>) {
    for (kind, value) in attributes(reply) {
        if kind == DEVLINK_ATTR_RESOURCE_LIST {
            parse_resource_list(value, "", device, out, 0);
        }
    }
}

fn parse_resource_list(
    list: &[u8],
    parent: &str,
    device: &str,
    out: &mut Vec<Resource>,
    depth: u8,
) {
    // Real trees are a few levels deep; a deeper one is malformed.
    if depth > 8 {
        return;
    }
    for (kind, value) in attributes(list) {
        if kind != DEVLINK_ATTR_RESOURCE {
            continue;
        }
        let mut name = None;
        let mut size = None;
        let mut occupancy = None;
        let mut children = None;
        for (k, v) in attributes(value) {
            match k {
                DEVLINK_ATTR_RESOURCE_NAME => name = c_string(v),
                DEVLINK_ATTR_RESOURCE_SIZE => size = u64_of(v),
                DEVLINK_ATTR_RESOURCE_OCC => occupancy = u64_of(v),
                DEVLINK_ATTR_RESOURCE_LIST => children = Some(v),
                _ => {}
            }
        }
        let (Some(name), Some(size)) = (name, size) else {
            continue;
        };
        let path = format!("{parent}/{name}");
        out.push(Resource {
            device: device.to_string(),
            path: path.clone(),
            size,
            occupancy,
        });
        if let Some(children) = children {
            parse_resource_list(children, &path, device, out, depth + 1);
        }
    }
}

/// The netlink attributes in `buf`: (type without the nested/byte-order flags, value). Stops
/// at the first one whose length does not fit.
fn attributes(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = buf.get(at..at + 4)?;
        let len = usize::from(u16::from_le_bytes([header[0], header[1]]));
        let kind = u16::from_le_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if len < 4 {
            return None;
        }
        let value = buf.get(at + 4..at + len)?;
        at += (len + 3) & !3;
        Some((kind, value))
    })
}

fn c_string(v: &[u8]) -> Option<String> {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    std::str::from_utf8(&v[..end]).ok().map(str::to_string)
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}

fn u64_of(v: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?))
}

fn push_attribute(msg: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    msg.extend((len as u16).to_ne_bytes());
    msg.extend(kind.to_ne_bytes());
    msg.extend(value);
    msg.resize((msg.len() + 3) & !3, 0);
}

/// A generic netlink socket that asks one question at a time.
struct Genl {
    socket: netlink_sys::Socket,
    seq: u32,
}

impl Genl {
    fn open() -> io::Result<Genl> {
        let mut socket = netlink_sys::Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        Ok(Genl { socket, seq: 0 })
    }

    /// The id of generic netlink family `name`; `None` when the kernel has no such family.
    fn family_id(&mut self, name: &str) -> io::Result<Option<u16>> {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        let replies = match self.request(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            0,
            &[(CTRL_ATTR_FAMILY_NAME, &z)],
        ) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(replies.iter().find_map(|r| {
            attributes(r)
                .find(|(k, _)| *k == CTRL_ATTR_FAMILY_ID)
                .and_then(|(_, v)| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?)))
        }))
    }

    /// Sends one request and returns the attributes of each reply message (after the generic
    /// netlink header), until the dump is done, the ACK arrives, or the single answer of a
    /// request without either. A netlink error is returned as the OS error it carries.
    fn request(
        &mut self,
        family: u16,
        cmd: u8,
        flags: u16,
        attrs: &[(u16, &[u8])],
    ) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = vec![0u8; NLMSG_HDR];
        msg.extend([cmd, 1, 0, 0]);
        for (kind, value) in attrs {
            push_attribute(&mut msg, *kind, value);
        }
        let len = msg.len() as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
        msg[4..6].copy_from_slice(&family.to_ne_bytes());
        msg[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.socket.send(&msg, 0)?;
        let multi = flags & (NLM_F_DUMP | NLM_F_ACK) != 0;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.socket.recv(&mut &mut buf[..], 0)?;
            let mut at = 0usize;
            while let Some(header) = buf
                .get(at..(at + NLMSG_HDR).min(n))
                .filter(|h| h.len() == NLMSG_HDR)
            {
                let mlen =
                    u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
                let kind = u16::from_ne_bytes([header[4], header[5]]);
                let mseq = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
                if mlen < NLMSG_HDR || at + mlen > n {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let body = &buf[at + NLMSG_HDR..at + mlen];
                at += (mlen + 3) & !3;
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(-libc::EIO);
                        return if code == 0 {
                            Ok(replies)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    _ => {
                        replies.push(body.get(GENL_HDR..).unwrap_or_default().to_vec());
                        if !multi {
                            return Ok(replies);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        let mut inner = Vec::new();
        for p in parts {
            inner.extend(p);
        }
        let mut out = Vec::new();
        push_attribute(&mut out, kind | 0x8000, &inner);
        out
    }

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_attribute(&mut out, kind, value);
        out
    }

    fn resource(name: &str, size: u64, children: &[Vec<u8>]) -> Vec<u8> {
        let mut parts = vec![
            attr(DEVLINK_ATTR_RESOURCE_NAME, format!("{name}\0").as_bytes()),
            attr(DEVLINK_ATTR_RESOURCE_SIZE, &size.to_ne_bytes()),
            attr(DEVLINK_ATTR_RESOURCE_OCC, &3u64.to_ne_bytes()),
        ];
        if !children.is_empty() {
            parts.push(nested(DEVLINK_ATTR_RESOURCE_LIST, children));
        }
        nested(DEVLINK_ATTR_RESOURCE, &parts)
    }

    /// netdevsim's tree (drivers/net/netdevsim/dev.c): IPv4 and IPv6, each with fib and
    /// fib-rules; here IPv4/fib resized to 96, the rest unlimited.
    fn netdevsim_reply() -> Vec<u8> {
        let mut reply = attr(DEVLINK_ATTR_BUS_NAME, b"netdevsim\0");
        reply.extend(attr(DEVLINK_ATTR_DEV_NAME, b"netdevsim10\0"));
        reply.extend(nested(
            DEVLINK_ATTR_RESOURCE_LIST,
            &[
                resource(
                    "IPv4",
                    u64::MAX,
                    &[
                        resource("fib", 96, &[]),
                        resource("fib-rules", u64::MAX, &[]),
                    ],
                ),
                resource(
                    "IPv6",
                    u64::MAX,
                    &[
                        resource("fib", u64::MAX, &[]),
                        resource("fib-rules", u64::MAX, &[]),
                    ],
                ),
            ],
        ));
        reply
    }

    /// The generic netlink exchange against this kernel: a family that always exists, one
    /// that does not, and the devlink dump for an interface without a devlink device.
    #[test]
    fn the_kernel_answers_family_and_devlink_questions() {
        let mut nl = Genl::open().expect("generic netlink socket");
        assert_eq!(nl.family_id("nlctrl").expect("nlctrl"), Some(GENL_ID_CTRL));
        assert_eq!(
            nl.family_id("roamer-nothing").expect("no such family"),
            None
        );
        // Interface 1 is the loopback device: no devlink device owns it.
        assert_eq!(resources_for(&[1]).expect("devlink dump"), Vec::new());
    }

    #[test]
    fn netdevsims_fib_sizes_bound_the_route_tables() {
        let mut out = Vec::new();
        parse_resource_reply(&netdevsim_reply(), "netdevsim/netdevsim10", &mut out);
        let paths: Vec<&str> = out.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/IPv4",
                "/IPv4/fib",
                "/IPv4/fib-rules",
                "/IPv6",
                "/IPv6/fib",
                "/IPv6/fib-rules"
            ]
        );
        assert_eq!(out[1].occupancy, Some(3));
        let caps = capacities(&out);
        let size = |kind| caps.get(&kind).map(|(n, _)| *n);
        assert_eq!(size(TableKind::Ipv4Route), Some(96));
        assert_eq!(size(TableKind::Ipv6Route), None, "unlimited is no bound");
    }

    #[test]
    fn the_smallest_bound_of_several_devices_holds() {
        let r = |device: &str, size| Resource {
            device: device.into(),
            path: "/IPv4/fib".into(),
            size,
            occupancy: None,
        };
        let caps = capacities(&[r("a", 500), r("b", 200)]);
        assert_eq!(caps.get(&TableKind::Ipv4Route).map(|(n, _)| *n), Some(200));
    }

    #[test]
    fn truncated_or_garbled_replies_never_panic() {
        let reply = netdevsim_reply();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for cut in 0..reply.len() {
            let mut out = Vec::new();
            parse_resource_reply(&reply[..cut], "d", &mut out);
            let mut garbled = reply.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % garbled.len();
                garbled[at] = (seed >> 32) as u8;
            }
            parse_resource_reply(&garbled, "d", &mut out);
        }
    }
}
