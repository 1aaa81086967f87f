//! A map-server with many registrations lists them all (`show lisp site | json`) while a
//! stream of new registrations arrives: every one of the stream is acknowledged (its
//! Map-Notify, matched by nonce, arrives), none is lost to the show. Not timed: the stream is
//! sent in chunks, each started while a `show` of the whole table is running.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Daemon;
use roamer_control::wire::lisp::{
    Action, Address, AuthKey, EidPrefix, EidRecord, KeyId, LocatorRecord, MapRegister,
};
use roamer_test_support as testkit;

/// Registrations in the table before the stream.
const TABLE: u32 = 10_000;
/// Registrations of the stream, sent while `show` runs.
const STREAM: u32 = 4_000;
/// The stream goes in chunks of this many, each started while a show is running.
const CHUNK: u32 = 500;
const KEY: &[u8] = b"load-key";
const ETR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);

fn register(i: u32) -> Vec<u8> {
    let record = EidRecord {
        ttl: 1440,
        prefix: EidPrefix {
            eid: Address::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i))),
            mask_len: 32,
        },
        action: Action::NoAction,
        authoritative: true,
        map_version: 0,
        locators: vec![LocatorRecord::local(IpAddr::V4(ETR), 1, 100)],
    };
    let mut reg = MapRegister::new(vec![record]);
    reg.want_map_notify = true;
    reg.nonce = u64::from(i) + 1;
    reg.to_signed_vec(&AuthKey::new(KeyId::HmacSha256, KEY).unwrap())
        .unwrap()
}

/// The nonce of a Map-Notify (octets 4..12), as the index of its registration.
fn notified(buf: &[u8]) -> Option<u32> {
    let nonce = u64::from_be_bytes(buf.get(4..12)?.try_into().ok()?);
    u32::try_from(nonce.checked_sub(1)?).ok()
}

/// Sends `msgs`, paced by the socket (blocking sends), a short pause every 256.
fn send_all(sock: &UdpSocket, msgs: &[Vec<u8>]) {
    for (k, m) in msgs.iter().enumerate() {
        sock.send_to(m, "192.0.2.1:4342").unwrap();
        if k % 256 == 255 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn a_show_of_a_large_site_table_loses_none_of_a_stream_of_registrations() {
    testkit::require_root("network namespaces");
    let prefix = testkit::unique_prefix();
    let (ms, etr, link) = common::ms_and_etr(&prefix);
    let config = format!(
        "hostname ms1\nroamer platform port Ethernet1/1 {prefix}m1\nfeature lisp\n\
         interface Ethernet1/1\n  no switchport\n  ip address 192.0.2.1/24\n\
         ip lisp map-server\n\
         lisp site DC\n  eid-prefix 10.0.0.0/8 accept-more-specifics\n  \
         authentication-key 0 load-key\n  roamer max-registrations 100000\n"
    );
    let d = Daemon::start_in_netns(&config, ms.name());
    let sock = etr
        .enter(|| UdpSocket::bind((ETR, 4342)))
        .expect("enter")
        .expect("bind");
    let sock2 = socket2::SockRef::from(&sock);
    let _ = sock2.set_recv_buffer_size(16 << 20);
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    // The receiver: every Map-Notify's registration, once.
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let done = Arc::new(AtomicBool::new(false));
    let rx = {
        let (sock, seen, done) = (sock.try_clone().unwrap(), seen.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !done.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf)
                    && let Some(i) = notified(&buf[..n])
                {
                    seen.lock().unwrap().insert(i);
                }
            }
        })
    };
    let acked = |range: std::ops::Range<u32>| {
        let s = seen.lock().unwrap();
        range.filter(|i| s.contains(i)).count() as u32
    };

    // The table: TABLE registrations, sent again until each is acknowledged (the first ones
    // may be spent on ARP). This is set-up, not what the test checks.
    let table: Vec<Vec<u8>> = (0..TABLE).map(register).collect();
    for _round in 0..10 {
        let missing: Vec<Vec<u8>> = {
            let s = seen.lock().unwrap();
            (0..TABLE)
                .filter(|i| !s.contains(i))
                .map(|i| table[i as usize].clone())
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        send_all(&sock, &missing);
        testkit::wait_until(Duration::from_secs(5), || acked(0..TABLE) == TABLE);
    }
    assert_eq!(acked(0..TABLE), TABLE, "the table was not set up");

    // Shows of the whole table in a loop, on another thread; `showing` counts shows begun.
    let socket = d.socket.clone();
    let showing = Arc::new(AtomicUsize::new(0));
    let shows_done = Arc::new(AtomicUsize::new(0));
    let stop_shows = Arc::new(AtomicBool::new(false));
    let shows = {
        let (showing, shows_done, stop) = (showing.clone(), shows_done.clone(), stop_shows.clone());
        std::thread::spawn(move || {
            let mut largest = 0usize;
            while !stop.load(Ordering::Relaxed) {
                showing.fetch_add(1, Ordering::SeqCst);
                let out = common::run(
                    common::roamer()
                        .arg("exec")
                        .arg("--socket")
                        .arg(&socket)
                        .arg("show lisp site | json"),
                );
                assert_eq!(out.code, 0, "{}", out.stderr);
                let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                let rows = json["TABLE_site"]["ROW_site"]
                    .as_array()
                    .map_or(0, Vec::len);
                largest = largest.max(rows);
                shows_done.fetch_add(1, Ordering::SeqCst);
            }
            largest
        })
    };

    // The stream: each chunk starts after a show has begun that had not when the last did.
    let stream: Vec<Vec<u8>> = (TABLE..TABLE + STREAM).map(register).collect();
    let mut last = 0;
    for chunk in stream.chunks(CHUNK as usize) {
        while showing.load(Ordering::SeqCst) == last {
            std::thread::sleep(Duration::from_millis(1));
        }
        last = showing.load(Ordering::SeqCst);
        send_all(&sock, chunk);
    }
    // Waits (bounded) for the stream's Map-Notifies; the assertion is on the count.
    testkit::wait_until(Duration::from_secs(20), || {
        acked(TABLE..TABLE + STREAM) == STREAM
    });
    stop_shows.store(true, Ordering::Relaxed);
    let largest = shows.join().unwrap();
    done.store(true, Ordering::Relaxed);
    rx.join().unwrap();

    let got = acked(TABLE..TABLE + STREAM);
    let completed = shows_done.load(Ordering::SeqCst);
    eprintln!("stream: {got}/{STREAM} acknowledged; {completed} shows, the largest {largest} rows");
    assert!(
        completed >= (STREAM / CHUNK) as usize,
        "fewer shows than chunks: {completed}"
    );
    assert!(largest >= TABLE as usize, "a show listed {largest} rows");
    assert_eq!(got, STREAM, "registrations of the stream lost during show");
    let stats: serde_json::Value =
        serde_json::from_str(&d.exec("show lisp statistics | json").stdout).unwrap();
    assert!(
        stats["map_server"]["registers_accepted"].as_u64() >= Some(u64::from(TABLE + STREAM)),
        "{stats}"
    );
    drop(link);
}
