//! `show forwarding trace interface NAME [vlan N] src-mac M dst-mac M src-ip A dst-ip B
//! [ttl N]`: builds that frame (UDP, ports 1024 → 4000) and shows the pipeline's path for it.

use std::net::IpAddr;

use roamer_control::config::{Config, InterfaceName};
use roamer_control::reconcile::port_bindings;
use roamer_hal::{Mac, VlanId};

use crate::dataplane::Dataplane;

/// True for `forwarding trace …` (any unambiguous abbreviation).
pub fn is_trace(toks: &[&str]) -> bool {
    let is = |t: Option<&&str>, word: &str, min: usize| {
        t.is_some_and(|t| t.len() >= min && word.starts_with(&t.to_ascii_lowercase()))
    };
    is(toks.first(), "forwarding", 2) && is(toks.get(1), "trace", 2)
}

pub fn run(cfg: &Config, dataplane: &Dataplane, toks: &[&str]) -> Result<String, String> {
    const USAGE: &str = "usage: show forwarding trace interface NAME [vlan N] src-mac M dst-mac M src-ip A dst-ip B [ttl N]";
    let mut iface: Option<InterfaceName> = None;
    let (mut vlan, mut src_mac, mut dst_mac, mut src_ip, mut dst_ip, mut ttl) =
        (None, None, None, None, None, 64u8);
    let mut i = 2;
    while i < toks.len() {
        let key = toks[i].to_ascii_lowercase();
        let val = toks
            .get(i + 1)
            .copied()
            .ok_or_else(|| format!("'{key}' needs a value; {USAGE}"))?;
        let bad = |what: &str| format!("invalid {what} '{val}'");
        match key.as_str() {
            "interface" => {
                // `Ethernet 1/1` may come as two words.
                let (name, used) = match val.parse::<InterfaceName>() {
                    Ok(n) => (n, 2),
                    Err(_) => {
                        let joined =
                            format!("{val}{}", toks.get(i + 2).copied().unwrap_or_default());
                        (joined.parse().map_err(|_| bad("interface"))?, 3)
                    }
                };
                iface = Some(name);
                i += used;
                continue;
            }
            "vlan" => {
                vlan = Some(
                    val.parse::<u16>()
                        .ok()
                        .and_then(|v| VlanId::new(v).ok())
                        .ok_or_else(|| bad("VLAN"))?,
                )
            }
            "src-mac" => src_mac = Some(val.parse::<Mac>().map_err(|_| bad("MAC"))?),
            "dst-mac" => dst_mac = Some(val.parse::<Mac>().map_err(|_| bad("MAC"))?),
            "src-ip" => src_ip = Some(val.parse::<IpAddr>().map_err(|_| bad("address"))?),
            "dst-ip" => dst_ip = Some(val.parse::<IpAddr>().map_err(|_| bad("address"))?),
            "ttl" => ttl = val.parse().map_err(|_| bad("TTL"))?,
            other => return Err(format!("unknown keyword '{other}'; {USAGE}")),
        }
        i += 2;
    }
    let (Some(iface), Some(src_mac), Some(dst_mac), Some(src_ip), Some(dst_ip)) =
        (iface, src_mac, dst_mac, src_ip, dst_ip)
    else {
        return Err(USAGE.into());
    };
    let port = port_bindings(cfg)
        .into_iter()
        .find(|b| b.name == iface)
        .ok_or_else(|| format!("{iface} is not a port of this switch"))?
        .id;
    let frame = build(src_mac, dst_mac, src_ip, dst_ip, ttl)
        .ok_or("source and destination must be the same family")?;
    let t = dataplane
        .trace(port, vlan, frame)
        .map_err(|e| e.to_string())?;
    let mut out = format!(
        "Trace of a UDP packet {src_ip} -> {dst_ip} received on {iface}{}\n",
        vlan.map(|v| format!(" tagged {v}")).unwrap_or_default()
    );
    for (n, step) in t.steps.iter().enumerate() {
        out.push_str(&format!("  {:>2}. {step}\n", n + 1));
    }
    if let Some(r) = t.reply {
        out.push_str(&format!("  reply frame sent: {r}\n"));
    }
    Ok(out)
}

/// Ethernet + IPv4/IPv6 + UDP with 16 bytes of payload.
fn build(src_mac: Mac, dst_mac: Mac, src: IpAddr, dst: IpAddr, ttl: u8) -> Option<Vec<u8>> {
    let payload = [0u8; 16];
    let udp_len = 8 + payload.len();
    let mut f = Vec::with_capacity(96);
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&src_mac.0);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + udp_len) as u16;
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[8] = ttl;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = roamer_forwarding::wire::checksum::ipv4_header(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(udp_len as u16).to_be_bytes());
            f.extend_from_slice(&[17, ttl]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => return None,
    }
    f.extend_from_slice(&1024u16.to_be_bytes());
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    Some(f)
}
