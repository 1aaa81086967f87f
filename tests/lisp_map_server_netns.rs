//! A roamer Map-Server and an ETR in a network namespace exchanging real Map-Registers and
//! Map-Notifies over UDP 4342: the right key is acknowledged and shows in `show lisp site`,
//! a wrong key is refused silently and stores nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::Daemon;
use roamer_control::wire::lisp::{
    Address, AuthKey, Ecm, EidPrefix, EidRecord, KeyId, LispMessage, LocatorRecord, MapNotify,
    MapRegister, MapRequest,
};
use roamer_test_support::{self as support, Netns};

fn register(key: &[u8]) -> Vec<u8> {
    register_with_nonce(key, 0)
}

fn register_with_nonce(key: &[u8], nonce: u64) -> Vec<u8> {
    let record = EidRecord {
        ttl: 1440,
        prefix: EidPrefix::from_prefix("10.10.10.0/24".parse().unwrap()),
        action: Default::default(),
        authoritative: true,
        map_version: 0,
        locators: vec![LocatorRecord::local("192.0.2.11".parse().unwrap(), 1, 100)],
    };
    let mut reg = MapRegister::new(vec![record]);
    reg.want_map_notify = true;
    reg.nonce = nonce;
    reg.to_signed_vec(&AuthKey::new(KeyId::HmacSha1, key).unwrap())
        .unwrap()
}

/// Sends `msg` from 192.0.2.11:4342 inside `etr` and returns the reply, if one comes.
fn exchange(etr: &Netns, msg: Vec<u8>) -> Option<Vec<u8>> {
    etr.spawn(move || {
        let sock = UdpSocket::bind("192.0.2.11:4342").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        // The first register may be spent on ARP; try a few times, as an ETR does.
        for _ in 0..3 {
            sock.send_to(&msg, "192.0.2.1:4342").unwrap();
            let mut buf = [0u8; 2048];
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                return Some(buf[..n].to_vec());
            }
        }
        None
    })
    .join()
    .unwrap()
    .unwrap()
}

/// The map-server on Ethernet1/1 (`{prefix}m1`, 192.0.2.1/24) with site A (10.10.10.0/24, key
/// cisco), then `more_sites`.
fn ms_config(prefix: &str, more_sites: &str) -> String {
    format!(
        "hostname ms1\nroamer platform port Ethernet1/1 {prefix}m1\nfeature lisp\n\
         interface Ethernet1/1\n  no switchport\n  ip address 192.0.2.1/24\n\
         ip lisp map-server\nip lisp map-resolver\n\
         lisp site A\n  eid-prefix 10.10.10.0/24\n  authentication-key 0 cisco\n{more_sites}"
    )
}

#[test]
fn map_registers_are_verified_acknowledged_and_listed() {
    let prefix = support::unique_prefix();
    let (ms, etr, link) = common::ms_and_etr(&prefix);
    let config = ms_config(
        &prefix,
        "lisp site B\n  eid-prefix 10.30.30.0/24\n  authentication-key 0 other\n",
    );
    let d = Daemon::start_in_netns(&config, ms.name());
    let before = d.exec("show lisp site").stdout;
    assert!(
        before.contains(
            "A              never     no     --                   0        10.10.10.0/24"
        ),
        "{before}"
    );

    // A wrong key: no answer, nothing stored.
    assert_eq!(
        exchange(&etr, register(b"wrong")),
        None,
        "a register with a wrong key must not be acknowledged"
    );
    assert!(
        d.exec("show lisp site")
            .stdout
            .contains("never     no     --                   0        10.10.10.0/24")
    );

    // The right key: a Map-Notify signed with the site key, and the registration listed.
    let notify = exchange(&etr, register(b"cisco")).expect("Map-Notify");
    let key = AuthKey::new(KeyId::HmacSha1, b"cisco").unwrap();
    let parsed =
        MapNotify::parse_verified(&notify, &key).expect("a Map-Notify signed with the site key");
    assert_eq!(parsed.records.len(), 1);
    let (row, after) = d.show_row("show lisp site", "10.10.10.0/24");
    assert!(
        row.starts_with("A              00:00:0") && row.contains("yes    192.0.2.11"),
        "{after}"
    );
    assert!(after.contains("B              never     no"), "{after}");
    // The refusal is counted where an operator sees it.
    let stats = d.exec("show lisp statistics").stdout;
    let line = |label: &str| {
        stats
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string)
    };
    // (`exchange` sends the wrong register once per attempt until it gives up.)
    let refused = line("Map-Registers refused, authentication failure:")
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "{stats}");
    assert_eq!(line("Map-Registers in, accepted:").as_deref(), Some("1"));
    let json: serde_json::Value =
        serde_json::from_str(&d.exec("show lisp statistics | json").stdout).unwrap();
    assert_eq!(
        json["map_server"]["refused_authentication"], refused,
        "{json}"
    );
    assert_eq!(json["map_server"]["registers_accepted"], 1, "{json}");
    drop(link);
}

/// An Encapsulated Map-Request for `eid` from ITR 192.0.2.11.
fn map_request(eid: [u8; 4], nonce: u64) -> Vec<u8> {
    let eid = std::net::IpAddr::from(eid);
    Ecm {
        ddt: false,
        inner_src: "192.0.2.11".parse().unwrap(),
        inner_dst: eid,
        inner_ttl: 64,
        inner_src_port: 5000,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(MapRequest::query(
            nonce,
            Address::None,
            vec!["192.0.2.11".parse().unwrap()],
            vec![EidPrefix::from_prefix(roamer_hal::Prefix::host(eid))],
        ))),
    }
    .to_vec()
    .unwrap()
}

/// Map-Requests a second in the flood test.
const FLOOD_PER_SECOND: usize = 50_000;

/// Guarding the door: a Map-Request flood at full speed neither starves registrations (they
/// have their own punt queue) nor grows the map-server's memory.
#[test]
fn a_map_request_flood_does_not_starve_registrations_or_grow_memory() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let prefix = support::unique_prefix();
    let (ms, etr, link) = common::ms_and_etr(&prefix);
    let config = ms_config(&prefix, "");
    let d = Daemon::start_in_netns(&config, ms.name());
    // Resolve ARP both ways before measuring.
    assert!(exchange(&etr, register(b"cisco")).is_some());
    let rss_before = d.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let flood_started = std::time::Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        etr.spawn(move || {
            let sock = UdpSocket::bind("192.0.2.11:5000").unwrap();
            // Distinct EIDs and nonces, prebuilt. The rate is far above what the map-resolver
            // answers (2000 a second per requester) and what the control plane takes, but below
            // what the data path reads from its port: a sender faster than that fills the
            // port's socket buffer and the kernel drops what comes next, registrations and
            // requests alike, before roamer sees them — which says nothing of roamer's own
            // queues, the subject here.
            let requests: Vec<Vec<u8>> = (0..4096u32)
                .map(|i| map_request([10, 10, (i >> 8) as u8, i as u8], u64::from(i) + 1))
                .collect();
            let mut i = 0;
            let start = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // FLOOD_PER_SECOND, in bursts of 50 a millisecond.
                let due = start.elapsed().as_micros() as usize * FLOOD_PER_SECOND / 1_000_000;
                while i < due {
                    let _ = sock.send_to(&requests[i % requests.len()], "192.0.2.1:4342");
                    i += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            sent.store(i as u64, Ordering::Relaxed);
        })
    };
    // Meanwhile the ETR registers every 200 ms and counts the acknowledgements (each within
    // a second).
    let acked = etr
        .spawn(move || {
            let sock = UdpSocket::bind("192.0.2.11:4342").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut acked = 0;
            for round in 0..20u64 {
                std::thread::sleep(Duration::from_millis(200));
                let nonce = 0x5eed_0000 + round;
                sock.send_to(&register_with_nonce(b"cisco", nonce), "192.0.2.1:4342")
                    .unwrap();
                let mut buf = [0u8; 2048];
                // Starved registrations are never answered; a slow machine answers late. The
                // Map-Notify echoes the register's nonce (octets 4–11).
                let deadline = std::time::Instant::now() + Duration::from_secs(1);
                while std::time::Instant::now() < deadline {
                    if let Ok((n, _)) = sock.recv_from(&mut buf)
                        && n >= 12
                        && buf[0] >> 4 == 4
                        && buf[4..12] == nonce.to_be_bytes()
                    {
                        acked += 1;
                        break;
                    }
                }
            }
            acked
        })
        .join()
        .unwrap()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap().unwrap();
    let flood_took = flood_started.elapsed();
    let rss_after = d.rss_kib();
    let sent = sent.load(Ordering::Relaxed);
    eprintln!(
        "flood: {sent} Map-Requests in {:?}; registrations acknowledged {acked}/20; RSS {rss_before} -> {rss_after} KiB",
        flood_took
    );
    assert!(sent > 20_000, "the flood was not a flood: {sent}");
    assert!(
        acked >= 15,
        "registrations starved by the flood: {acked}/20 acknowledged"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory grew under the flood: {rss_before} -> {rss_after} KiB"
    );
    // Still answering.
    let site = d.exec("show lisp site").stdout;
    assert!(site.contains("yes    192.0.2.11"), "{site}");
    // What the per-requester limit refused is counted and shown.
    let json: serde_json::Value =
        serde_json::from_str(&d.exec("show ip lisp statistics | json").stdout).unwrap();
    let limited = json["map_resolver"]["requests_rate_limited"]
        .as_u64()
        .unwrap_or(0);
    assert!(limited > 0, "no rate-limit refusal counted: {json}");
    let text = d.exec("show lisp statistics").stdout;
    let shown: u64 = text
        .lines()
        .find(|l| l.contains("Map-Requests refused, over the rate limit:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(shown >= limited, "{text}");
    drop(link);
}
