//! `show forwarding trace` on the kernel backend: the kernel forwards, so the trace is what the
//! kernel's FIB answers for the packet (`ip route get DST from SRC iif PORT`), said as such.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use roamer_hal::{HalError, Trace};
use rtnetlink::RouteMessageBuilder;

use super::nl::{Netlink, ROAMER_PROTO, kernel_error};

/// The kernel's answer for one lookup.
struct Answer {
    kind: RouteType,
    gateway: Option<IpAddr>,
    oif: Option<u32>,
}

fn ip_addrs(frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let pkt = frame.get(14..)?;
    match ethertype {
        0x0800 => {
            let s: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        0x86dd => {
            let s: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()))
        }
        _ => None,
    }
}

/// Traces `frame` as received on interface `iif` (`dev` for the text).
pub fn trace(nl: &Netlink, iif: u32, dev: &str, frame: &[u8]) -> Result<Trace, HalError> {
    let mut steps = vec![format!("received on {dev} (ifindex {iif})")];
    let Some((src, dst)) = ip_addrs(frame) else {
        let ethertype = frame
            .get(12..14)
            .map(|b| format!("0x{:02x}{:02x}", b[0], b[1]))
            .unwrap_or_else(|| "none".into());
        steps.push(format!(
            "not an IP packet (ethertype {ethertype}): the kernel handles it itself (ARP/ND for \
             its own addresses); there is no FIB lookup to show"
        ));
        return Ok(Trace {
            verdict: "handled by the kernel".into(),
            reply: None,
            steps,
        });
    };
    let len = if dst.is_ipv4() { 32 } else { 128 };
    let slen = len;
    let looked_up = nl.call("forwarding trace", move |h| async move {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst, len)
            .map_err(|e| {
                kernel_error(
                    format!("route get {dst}"),
                    rtnetlink::Error::InvalidNla(e.to_string()),
                )
            })?;
        if !src.is_unspecified() {
            b = b
                .source_prefix(src, slen)
                .map_err(|e| {
                    kernel_error(
                        format!("route get {dst}"),
                        rtnetlink::Error::InvalidNla(e.to_string()),
                    )
                })?
                .input_interface(iif);
        }
        let mut s = h.route().get(b.build()).execute();
        let r = s
            .try_next()
            .await
            .map_err(|e| kernel_error(format!("route get {dst} from {src}"), e))?;
        Ok(r.map(|r| Answer {
            kind: r.header.kind,
            gateway: r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => Some(IpAddr::V6(*g)),
                _ => None,
            }),
            oif: r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            }),
        }))
    });
    let what = format!("kernel FIB lookup: ip route get {dst} from {src} iif {dev}");
    let answer = match looked_up {
        Ok(Some(a)) => a,
        Ok(None) => {
            steps.push(format!("{what}: no answer"));
            return Ok(Trace {
                verdict: "no route (the kernel gave no answer)".into(),
                reply: None,
                steps,
            });
        }
        Err(HalError::Backend { detail, .. }) => {
            steps.push(format!("{what}: {detail}"));
            return Ok(Trace {
                verdict: "dropped by the kernel (see the FIB answer)".into(),
                reply: None,
                steps,
            });
        }
        Err(e) => return Err(e),
    };
    let via = answer
        .gateway
        .map(|g| format!(" via {g}"))
        .unwrap_or_default();
    let names = super::nl::list_links(nl).unwrap_or_default();
    let out = answer
        .oif
        .map(|o| match names.iter().find(|l| l.index == o) {
            Some(l) => format!(" dev {}", l.name),
            None => format!(" oif {o}"),
        })
        .unwrap_or_default();
    steps.push(format!("{what}: {:?}{via}{out}", answer.kind));
    let verdict_step = steps.len();
    let verdict = match answer.kind {
        RouteType::Unicast => format!("routed{via}{out} (the kernel resolves the neighbour)"),
        RouteType::Local => "delivered locally (an address of this switch)".into(),
        RouteType::BlackHole => {
            steps.push(format!(
                "a blackhole route (roamer marks LISP routes this way, protocol {ROAMER_PROTO}): \
                 the ITR program at TC ingress encapsulates per the map-cache before the kernel \
                 would drop it"
            ));
            "LISP encapsulation (eBPF ITR)".into()
        }
        RouteType::Unreachable | RouteType::Prohibit => "dropped: unreachable (Null0)".into(),
        other => format!("{other:?}"),
    };
    steps.insert(verdict_step, format!("verdict: {verdict}"));
    Ok(Trace {
        verdict,
        reply: None,
        steps,
    })
}
