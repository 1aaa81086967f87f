//! The LISP control plane in the daemon: the Map-Server fed by Map-Registers the data plane
//! punts (UDP 4342 to one of our addresses), answering with Map-Notify out of the port the
//! register came in on.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use roamer_control::config::Config;
use roamer_control::lisp::map_server::{MapServer, SiteRow};
use roamer_forwarding::wire::checksum;
use roamer_hal::{InjectTarget, Punt, PuntReason};
use tracing::{debug, info, warn};

use crate::dataplane::Dataplane;

const ETH_LEN: usize = 14;
const LISP_CONTROL_PORT: u16 = 4342;
const MAP_REGISTER: u8 = 3;

/// The LISP instances the configuration asks for.
#[derive(Debug)]
pub struct Lisp {
    map_server: Option<MapServer>,
    epoch: Instant,
    last_expiry_ms: u64,
}

impl Default for Lisp {
    fn default() -> Self {
        Lisp {
            map_server: None,
            epoch: Instant::now(),
            last_expiry_ms: 0,
        }
    }
}

impl Lisp {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Starts, changes or stops the Map-Server with `ip lisp map-server`.
    pub fn sync(&mut self, cfg: &Config) {
        let wanted = cfg.features.lisp && (cfg.lisp.ipv4.map_server || cfg.lisp.ipv6.map_server);
        match (&mut self.map_server, wanted) {
            (Some(ms), true) => ms.reconfigure(cfg),
            (None, true) => {
                info!(sites = cfg.lisp.site.len(), "map-server started");
                self.map_server = Some(MapServer::new(cfg));
            }
            (Some(_), false) => {
                info!("map-server stopped");
                self.map_server = None;
            }
            (None, false) => {}
        }
    }

    /// A punted LISP control frame.
    pub fn punt(&mut self, punt: &Punt, dataplane: &mut Dataplane) {
        if punt.reason != PuntReason::LispControl {
            return;
        }
        let now = self.now_ms();
        let Some(ms) = self.map_server.as_mut() else {
            return;
        };
        let Some((src, sport, payload)) = udp_v4(&punt.frame) else {
            return;
        };
        if payload.first().map(|b| b >> 4) != Some(MAP_REGISTER) {
            return;
        }
        let from = SocketAddr::new(IpAddr::V4(src), sport);
        match ms.register(payload, from, false, now) {
            Ok(accepted) => {
                debug!(%from, site = %accepted.site, prefixes = accepted.prefixes.len(), "Map-Register accepted");
                if let Some(notify) = accepted.notify {
                    let Some(reply) = reply_frame(&punt.frame, &notify) else {
                        return;
                    };
                    let target = match punt.vlan {
                        Some(v) => InjectTarget::PortInVlan(punt.port, v),
                        None => InjectTarget::Port(punt.port),
                    };
                    if let Err(e) = dataplane.inject(target, &reply) {
                        warn!(%from, error = %e, "Map-Notify not sent");
                    }
                }
            }
            Err(refusal) => info!(%from, ?refusal, "Map-Register refused"),
        }
    }

    /// Expires registrations once a second.
    pub fn tick(&mut self) {
        let now = self.now_ms();
        if now.saturating_sub(self.last_expiry_ms) < 1000 {
            return;
        }
        self.last_expiry_ms = now;
        if let Some(ms) = self.map_server.as_mut() {
            for prefix in ms.expire(now) {
                info!(%prefix, "registration expired");
            }
        }
    }

    /// Rows of `show lisp site` (empty without a Map-Server).
    pub fn site_rows(&self, cfg: &Config) -> Vec<SiteRow> {
        let now = self.now_ms();
        self.map_server
            .as_ref()
            .map(|ms| ms.rows(now, cfg.instance_id()))
            .unwrap_or_default()
    }
}

/// Source address, source port and payload of an Ethernet/IPv4/UDP frame to port 4342.
fn udp_v4(frame: &[u8]) -> Option<(Ipv4Addr, u16, &[u8])> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(ETH_LEN..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    if ip.get(9)? != &17 || ihl < 20 || total > ip.len() {
        return None;
    }
    let udp = ip.get(ihl..total)?;
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    if dport != LISP_CONTROL_PORT {
        return None;
    }
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    Some((src, sport, udp.get(8..)?))
}

/// A reply to the frame `to`: MAC and IP addresses swapped, from UDP 4342 to the sender's port.
fn reply_frame(to: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let ip_in = to.get(ETH_LEN..ETH_LEN + 20)?;
    let sport_in = {
        let ihl = usize::from(ip_in[0] & 0x0f) * 4;
        let udp = to.get(ETH_LEN + ihl..ETH_LEN + ihl + 2)?;
        u16::from_be_bytes([udp[0], udp[1]])
    };
    let udp_len = u16::try_from(8 + payload.len()).ok()?;
    let total = udp_len.checked_add(20)?;
    let mut f = Vec::with_capacity(ETH_LEN + usize::from(total));
    f.extend_from_slice(to.get(6..12)?);
    f.extend_from_slice(to.get(0..6)?);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&ip_in[16..20]);
    ip[16..20].copy_from_slice(&ip_in[12..16]);
    let c = checksum::ipv4_header(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&LISP_CONTROL_PORT.to_be_bytes());
    f.extend_from_slice(&sport_in.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    Some(f)
}
