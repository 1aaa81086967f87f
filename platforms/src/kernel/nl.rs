//! The netlink side of the kernel backend: one dedicated thread runs `rtnetlink` on a
//! current-thread tokio runtime; callers hand it jobs over a channel and wait for the answer
//! (bounded by [`NL_TIMEOUT`]), so `KernelBackend::apply` stays synchronous and works
//! when called from inside the daemon's own tokio runtime.
//!
//! Every request carries `NLM_F_ACK`: the kernel's answer (or its error, with the errno text)
//! comes back to the caller; nothing is fire-and-forget.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressProtocol;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use roamer_hal::HalError;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use tokio::sync::mpsc;

use super::BACKEND;

/// The route protocol number (`ip route show proto 194`), the address protocol (`IFA_PROTO`)
/// and the neighbour protocol (`NDA_PROTOCOL`) that mark what roamer created. 194 is not
/// assigned in `linux/rtnetlink.h` (186–192 are the routing daemons).
pub const ROAMER_PROTO: u8 = 194;
/// How long a caller waits for the netlink thread.
pub const NL_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(Handle) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The handle on the netlink thread.
pub struct Netlink {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Netlink")
    }
}

/// A kernel error as the operator sees it: which operation on what, and the kernel's text.
pub fn kernel_error(what: String, e: rtnetlink::Error) -> HalError {
    let detail = match e {
        rtnetlink::Error::NetlinkError(m) => format!("{what}: the kernel says: {}", m.to_io()),
        other => format!("{what}: {other}"),
    };
    HalError::Backend {
        backend: BACKEND.into(),
        detail,
    }
}

impl Netlink {
    pub fn start() -> std::io::Result<Netlink> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std_mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("roamer-netlink".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (conn, handle, _) = match rtnetlink::new_connection() {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::spawn(conn);
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = rx.recv().await {
                        job(handle.clone()).await;
                    }
                });
            })?;
        match ready_rx.recv_timeout(NL_TIMEOUT) {
            Ok(Ok(())) => Ok(Netlink {
                jobs: Some(tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "netlink thread did not start",
            )),
        }
    }

    /// Runs `f` on the netlink thread and waits for its result.
    pub fn call<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, HalError>
    where
        T: Send + 'static,
        F: FnOnce(Handle) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, HalError>> + Send + 'static,
    {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let job: Job = Box::new(move |h| {
            Box::pin(async move {
                let r = f(h).await;
                let _ = tx.send(r);
            })
        });
        let not_answering = |detail| HalError::NotAnswering {
            backend: BACKEND.into(),
            operation,
            detail,
        };
        self.jobs
            .as_ref()
            .ok_or_else(|| not_answering("netlink thread stopped"))?
            .send(job)
            .map_err(|_| not_answering("netlink thread stopped"))?;
        rx.recv_timeout(NL_TIMEOUT)
            .map_err(|_| not_answering("netlink request timed out"))?
    }
}

impl Netlink {
    /// Runs blocking `f` on the netlink thread: in the namespace the backend was opened in
    /// (sysctls under /proc/sys/net, state files, `ip` helpers), whichever thread calls.
    pub fn run<T, F>(&self, operation: &'static str, f: F) -> Result<T, HalError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.call(operation, move |_| async move { Ok(f()) })
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a route does, in kernel terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Through a gateway and/or out of an interface.
    Unicast {
        via: Option<IpAddr>,
        oif: Option<u32>,
    },
    /// Out of an interface, no gateway (`ip route add P dev D`: scope link), e.g. the host
    /// route of a dynamic EID outside the interface's subnets.
    Device { oif: u32 },
    /// LISP: a blackhole route, which the ITR program reads as "look up the map-cache".
    Lisp,
    /// Discard (Null0): an `unreachable` route, so the ITR never mistakes it for LISP.
    Discard,
}

fn bad_route<E: std::fmt::Display>(e: E) -> HalError {
    HalError::InvalidValue {
        what: "route",
        value: e.to_string(),
        expected: "a valid prefix and next hop",
    }
}

pub fn route_message(dest: IpAddr, len: u8, kind: RouteKind) -> Result<RouteMessage, HalError> {
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dest, len)
        .map_err(bad_route)?
        .protocol(RouteProtocol::Other(ROAMER_PROTO));
    match kind {
        RouteKind::Unicast { via, oif } => {
            if let Some(via) = via {
                b = b.gateway(via).map_err(bad_route)?;
            }
            if let Some(oif) = oif {
                b = b.output_interface(oif);
            }
        }
        RouteKind::Device { oif } => {
            b = b
                .output_interface(oif)
                .scope(netlink_packet_route::route::RouteScope::Link)
        }
        RouteKind::Lisp => b = b.kind(RouteType::BlackHole),
        RouteKind::Discard => b = b.kind(RouteType::Unreachable),
    }
    Ok(b.build())
}

/// Adds (or, with `replace`, replaces) a route.
pub async fn route_add(
    h: Handle,
    msg: RouteMessage,
    replace: bool,
) -> Result<(), rtnetlink::Error> {
    let req = h.route().add(msg);
    let req = if replace { req.replace() } else { req };
    req.execute().await
}

/// Deletes a route; type and scope are left open, as `ip route del` does.
pub async fn route_del(h: Handle, mut msg: RouteMessage) -> Result<(), rtnetlink::Error> {
    msg.header.kind = RouteType::Unspec;
    msg.header.scope = netlink_packet_route::route::RouteScope::NoWhere;
    h.route().del(msg).execute().await
}

/// Every route (both families, main table) carrying roamer's protocol.
pub async fn our_routes(h: Handle) -> Result<Vec<RouteMessage>, rtnetlink::Error> {
    let mut out = Vec::new();
    for family in [
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
    ] {
        let mut s = h.route().get(family).execute();
        while let Some(r) = s.try_next().await? {
            if r.header.protocol == RouteProtocol::Other(ROAMER_PROTO) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The destination of a route message, for logs.
pub fn route_dest(r: &RouteMessage) -> String {
    let dest = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
        RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    });
    match dest {
        Some(d) => format!("{d}/{}", r.header.destination_prefix_length),
        None => format!("default/{}", r.header.destination_prefix_length),
    }
}

pub fn address_message(ifindex: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.prefix_len = prefix_len;
    m.header.index = ifindex;
    m.attributes.push(AddressAttribute::Local(addr));
    m.attributes.push(AddressAttribute::Address(addr));
    m
}

/// Adds an address marked as roamer's (`IFA_PROTO`); IPv6 without duplicate address detection
/// (the address is usable at once, as on a router interface).
pub async fn address_add(
    h: Handle,
    ifindex: u32,
    addr: IpAddr,
    prefix_len: u8,
) -> Result<(), rtnetlink::Error> {
    let mut req = h.address().add(ifindex, addr, prefix_len);
    let m = req.message_mut();
    m.attributes
        .push(AddressAttribute::Protocol(AddressProtocol::Other(
            ROAMER_PROTO,
        )));
    if addr.is_ipv6() {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await
}

pub async fn address_del(
    h: Handle,
    ifindex: u32,
    addr: IpAddr,
    prefix_len: u8,
) -> Result<(), rtnetlink::Error> {
    h.address()
        .del(address_message(ifindex, addr, prefix_len))
        .execute()
        .await
}

/// Every address carrying roamer's `IFA_PROTO`.
pub async fn our_addresses(h: Handle) -> Result<Vec<AddressMessage>, rtnetlink::Error> {
    let mut out = Vec::new();
    let mut s = h.address().get().execute();
    while let Some(a) = s.try_next().await? {
        if a.attributes
            .contains(&AddressAttribute::Protocol(AddressProtocol::Other(
                ROAMER_PROTO,
            )))
        {
            out.push(a);
        }
    }
    Ok(out)
}

/// Every local address of the namespace with its interface (for punt filtering and the
/// LISP offload's outer sources).
pub async fn all_addresses(h: Handle) -> Result<Vec<(u32, IpAddr)>, rtnetlink::Error> {
    let mut out = Vec::new();
    let mut s = h.address().get().execute();
    while let Some(a) = s.try_next().await? {
        let ip = a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let ip = ip.or_else(|| {
            a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let Some(ip) = ip {
            out.push((a.header.index, ip));
        }
    }
    Ok(out)
}

/// A permanent neighbour marked as roamer's (`NDA_PROTOCOL`).
pub async fn neighbour_add(
    h: Handle,
    ifindex: u32,
    ip: IpAddr,
    mac: [u8; 6],
    replace: bool,
) -> Result<(), rtnetlink::Error> {
    let mut req = h
        .neighbours()
        .add(ifindex, ip)
        .link_layer_address(&mac)
        .state(NeighbourState::Permanent);
    req.message_mut()
        .attributes
        .push(NeighbourAttribute::Protocol(RouteProtocol::Other(
            ROAMER_PROTO,
        )));
    let req = if replace { req.replace() } else { req };
    req.execute().await
}

pub fn neighbour_message(ifindex: u32, ip: IpAddr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.ifindex = ifindex;
    m.attributes.push(NeighbourAttribute::Destination(match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }));
    m
}

pub async fn neighbour_del(h: Handle, ifindex: u32, ip: IpAddr) -> Result<(), rtnetlink::Error> {
    h.neighbours()
        .del(neighbour_message(ifindex, ip))
        .execute()
        .await
}

/// One neighbour as the kernel holds it.
#[derive(Debug, Clone)]
pub struct KernelNeighbour {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub mac: Option<[u8; 6]>,
    pub state: NeighbourState,
    /// Milliseconds since last confirmed (`NDA_CACHEINFO`).
    pub confirmed_ms: u64,
    pub ours: bool,
}

pub async fn neighbours(h: Handle) -> Result<Vec<KernelNeighbour>, rtnetlink::Error> {
    let mut out = Vec::new();
    let mut s = h.neighbours().get().execute();
    while let Some(n) = s.try_next().await? {
        let mut k = KernelNeighbour {
            ifindex: n.header.ifindex,
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            mac: None,
            state: n.header.state,
            confirmed_ms: 0,
            ours: false,
        };
        let mut have_ip = false;
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                    k.ip = IpAddr::V4(*ip);
                    have_ip = true;
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                    k.ip = IpAddr::V6(*ip);
                    have_ip = true;
                }
                NeighbourAttribute::LinkLayerAddress(mac) => {
                    k.mac = <[u8; 6]>::try_from(mac.as_slice()).ok();
                }
                // Clock ticks of USER_HZ (100 per second).
                NeighbourAttribute::CacheInfo(ci) => k.confirmed_ms = u64::from(ci.confirmed) * 10,
                NeighbourAttribute::Protocol(RouteProtocol::Other(p)) => {
                    k.ours = *p == ROAMER_PROTO
                }
                _ => {}
            }
        }
        if have_ip {
            out.push(k);
        }
    }
    Ok(out)
}

/// Sets an interface's MAC address.
pub async fn set_mac(h: Handle, ifindex: u32, mac: [u8; 6]) -> Result<(), rtnetlink::Error> {
    h.link()
        .set(
            LinkUnspec::new_with_index(ifindex)
                .address(mac.to_vec())
                .build(),
        )
        .execute()
        .await
}

/// One interface as the kernel reports it (netlink, so it is right in any namespace the
/// calling thread is in, which sysfs is not).
#[derive(Debug, Clone, Default)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub carrier: bool,
    pub mac: Option<[u8; 6]>,
    /// rx packets, tx packets, rx dropped, tx dropped.
    pub stats: [u64; 4],
}

pub async fn links(h: Handle) -> Result<Vec<LinkInfo>, rtnetlink::Error> {
    use netlink_packet_route::link::{LinkAttribute, LinkFlags};
    let mut out = Vec::new();
    let mut s = h.link().get().execute();
    while let Some(l) = s.try_next().await? {
        let mut info = LinkInfo {
            index: l.header.index,
            up: l.header.flags.contains(LinkFlags::Up),
            carrier: l.header.flags.contains(LinkFlags::LowerUp),
            ..Default::default()
        };
        for a in &l.attributes {
            match a {
                LinkAttribute::IfName(n) => info.name = n.clone(),
                LinkAttribute::Address(m) => info.mac = <[u8; 6]>::try_from(m.as_slice()).ok(),
                LinkAttribute::Stats64(st) => {
                    info.stats = [st.rx_packets, st.tx_packets, st.rx_dropped, st.tx_dropped]
                }
                _ => {}
            }
        }
        out.push(info);
    }
    Ok(out)
}

/// All interfaces, through the netlink thread.
pub fn list_links(nl: &Netlink) -> Result<Vec<LinkInfo>, HalError> {
    nl.call("list interfaces", |h| async move {
        links(h)
            .await
            .map_err(|e| kernel_error("list interfaces".into(), e))
    })
}

/// Whether this kernel can hold roamer's VLANs: a VLAN-filtering bridge and an 802.1Q device
/// on it. Tried once with throw-away devices (`rmrprobe…`, deleted at once); `Err` names the
/// missing feature with the kernel's answer.
pub async fn probe_vlans(h: Handle) -> Result<(), String> {
    use netlink_packet_route::link::InfoBridge;
    use rtnetlink::{LinkBridge, LinkVlan};
    let n = std::process::id() % 100_000;
    let (br, vl) = (format!("rmrprobe{n}"), format!("rmrprobv{n}"));
    let made = h
        .link()
        .add(
            LinkBridge::new(&br)
                .append_info_data(InfoBridge::VlanFiltering(true))
                .build(),
        )
        .execute()
        .await;
    if let Err(e) = made {
        return Err(format!(
            "a VLAN-filtering bridge (CONFIG_BRIDGE_VLAN_FILTERING): {}",
            short(e)
        ));
    }
    let index = links(h.clone())
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|l| l.name == br).map(|l| l.index));
    let vlan = match index {
        Some(i) => h
            .link()
            .add(LinkVlan::new(&vl, i, 10).build())
            .execute()
            .await
            .map_err(|e| format!("802.1Q VLAN devices (CONFIG_VLAN_8021Q): {}", short(e))),
        None => Err("a VLAN-filtering bridge: created but not listed".into()),
    };
    // Deleting the bridge deletes the VLAN device on it.
    if let Some(i) = index {
        let _ = h.link().del(i).execute().await;
    }
    vlan
}

fn short(e: rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
        other => other.to_string(),
    }
}
