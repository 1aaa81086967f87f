//! What a large routing table costs the forwarding pipeline per frame, and what warming the
//! cache for a burst ([`Pipeline::warm`], which the software data path calls for every receive
//! batch) wins back.
//!
//! A router with a routed ingress port and a routed egress port whose neighbour is resolved;
//! every frame is a 64-octet IPv4 (or 84-octet IPv6) UDP packet addressed to the router MAC and
//! routed through `Pipeline::process` in full (parse, TTL, LPM, neighbour, MAC rewrite), in
//! bursts of 64 as the data path receives them. Measured side by side in one run, per family:
//!
//! - **small table**: 16 routes, all in the cache: the pipeline's own cost, the reference;
//! - **1M routes**: 1M prefixes (`prefix_data`, lengths as in the global table), each frame to
//!   a random address inside a random one of them, one frame after another;
//! - **1M routes, warmed**: the same frames, with `Pipeline::warm` run over each burst first.
//!
//! Printed: median ns per frame of each, and each one's ratio to the small table.
//!
//! Run: `cargo bench -p roamer-forwarding --bench pipeline_routes -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed bench

use std::cell::RefCell;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::Criterion;
use roamer_forwarding::pipeline::{Frame, Pipeline, Settings, Verdict};
use roamer_forwarding::tables::{Limits, Tables};
use roamer_forwarding::wire::checksum;
use roamer_hal::{L3Interface, Mac, NextHop, PortId, Prefix, TableEntry, TableOp};

mod prefix_data;
use prefix_data::{Data, Rng, Sizes, data_v4, data_v6};

const ROUTES: usize = 1 << 20;
/// Distinct frames each case cycles through (each to a random table prefix).
const FRAMES: usize = 1 << 16;
/// Frames per burst: the software data path's receive batch.
const BURST: usize = 64;
const HEADROOM: usize = 128;
const SAMPLE_SIZE: usize = 50;

const INGRESS: PortId = PortId(1);
const EGRESS: PortId = PortId(2);
const ROUTER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);
const HOST_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const NEXT_HOP_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

/// One family's addresses: the interfaces' subnets, the next hop, the sending host.
struct Family {
    ingress: (IpAddr, u8),
    egress: (IpAddr, u8),
    next_hop: IpAddr,
    host: IpAddr,
}

fn v4() -> Family {
    Family {
        ingress: (Ipv4Addr::new(192, 0, 2, 1).into(), 24),
        egress: (Ipv4Addr::new(198, 18, 0, 1).into(), 30),
        next_hop: Ipv4Addr::new(198, 18, 0, 2).into(),
        host: Ipv4Addr::new(192, 0, 2, 10).into(),
    }
}

fn v6() -> Family {
    let a = |last| Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, last).into();
    let b = |last| Ipv6Addr::new(0x2001, 0xdb8, 0xfffe, 0, 0, 0, 0, last).into();
    Family {
        ingress: (a(1), 64),
        egress: (b(1), 64),
        next_hop: b(2),
        host: a(10),
    }
}

/// A router with `routes` behind the egress neighbour.
fn router(fam: &Family, routes: impl Iterator<Item = Prefix>) -> Pipeline {
    let mut t = Tables::new(Limits::default());
    let (up, down) = (L3Interface::Port(INGRESS), L3Interface::Port(EGRESS));
    let mut entries = Vec::new();
    for (iface, (addr, prefix_len)) in [(up, fam.ingress), (down, fam.egress)] {
        entries.push(TableEntry::RouterMac {
            iface,
            mac: ROUTER_MAC,
            virtual_mac: false,
        });
        entries.push(TableEntry::InterfaceAddress {
            iface,
            addr,
            prefix_len,
            virtual_mac: None,
        });
    }
    entries.push(TableEntry::Neighbor {
        iface: down,
        ip: fam.next_hop,
        mac: NEXT_HOP_MAC,
    });
    for e in entries {
        t.apply(&TableOp::add(e)).unwrap();
    }
    let next_hop = NextHop::Gateway {
        via: fam.next_hop,
        iface: Some(down),
    };
    for prefix in routes {
        // A random prefix equal to a connected subnet is refused; the frames skip it anyway.
        let _ = t.apply(&TableOp::add(TableEntry::Route { prefix, next_hop }));
    }
    Pipeline::new(t, Settings::default())
}

/// A UDP packet from the host to `dst`, addressed to the router.
fn frame(fam: &Family, dst: IpAddr) -> Vec<u8> {
    let mut f = Vec::with_capacity(96);
    f.extend_from_slice(&ROUTER_MAC.0);
    f.extend_from_slice(&HOST_MAC.0);
    match (fam.host, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&50u16.to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let sum = checksum::ipv4_header(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&30u16.to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&dst.octets());
        }
        _ => unreachable!("one family"),
    }
    // UDP 5001 -> 5001 without checksum (IPv4) and a payload up to 64 / 84 octets.
    f.extend_from_slice(&[0x13, 0x89, 0x13, 0x89, 0, 30, 0, 0]);
    f.resize(f.len() + 22, 0);
    f
}

struct Case {
    name: &'static str,
    pipeline: Pipeline,
    warm: bool,
}

/// Runs the burst starting at frame `first` through the pipeline; returns how many were
/// forwarded.
fn burst(
    p: &mut Pipeline,
    frames: &[Vec<u8>],
    first: usize,
    bufs: &mut [Vec<u8>],
    warm: bool,
) -> usize {
    for (k, b) in bufs.iter_mut().enumerate() {
        let f = &frames[(first + k) % frames.len()];
        b[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
    }
    let len = frames[0].len();
    if warm {
        p.warm(bufs.iter().map(|b| &b[HEADROOM..HEADROOM + len]));
    }
    let mut forwarded = 0;
    for b in bufs.iter_mut() {
        let mut f = Frame {
            buf: b,
            start: HEADROOM,
            len,
            large: false,
            gso_tcp: false,
            partial_csum: None,
        };
        let out = p.process(INGRESS, None, &mut f, 1_000);
        forwarded += usize::from(matches!(out.verdict, Verdict::Forward { .. }));
    }
    black_box(forwarded)
}

/// A random address inside `p`.
fn host_in(p: Prefix, rng: &mut Rng) -> IpAddr {
    match p.addr() {
        IpAddr::V4(a) => {
            let host = (rng.next() as u32)
                .checked_shr(u32::from(p.len()))
                .unwrap_or(0);
            Ipv4Addr::from(u32::from(a) | host).into()
        }
        IpAddr::V6(a) => {
            let host = rng.u128().checked_shr(u32::from(p.len())).unwrap_or(0);
            Ipv6Addr::from(u128::from(a) | host).into()
        }
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

fn run_family<T: Copy>(
    c: &mut Criterion,
    family: &str,
    fam: &Family,
    data: Data<T>,
    addr: impl Fn(T) -> IpAddr,
) {
    let big: Vec<Prefix> = data
        .base
        .iter()
        .map(|&(bits, len)| Prefix::new(addr(bits), len).unwrap())
        .collect();
    let dsts: Vec<IpAddr> = data.lookups.iter().map(|&a| addr(a)).collect();
    drop(data);
    let small: Vec<Prefix> = big.iter().take(16).copied().collect();
    // Frames for the small table go to random hosts of its 16 prefixes.
    let mut rng = Rng(0x534d_414c);
    let small_dsts: Vec<IpAddr> = (0..FRAMES)
        .map(|i| host_in(small[i % small.len()], &mut rng))
        .collect();
    let mut cases = [
        Case {
            name: "small table",
            pipeline: router(fam, small.into_iter()),
            warm: false,
        },
        Case {
            name: "1M routes",
            pipeline: router(fam, big.iter().copied()),
            warm: false,
        },
        Case {
            name: "1M routes, warmed",
            pipeline: router(fam, big.iter().copied()),
            warm: true,
        },
    ];
    let mut bufs = vec![vec![0u8; HEADROOM + 128]; BURST];
    let mut g = c.benchmark_group(format!("pipeline_routes/{family}"));
    g.sample_size(SAMPLE_SIZE);
    let mut results = Vec::new();
    for case in &mut cases {
        let dsts = if case.name == "small table" {
            &small_dsts
        } else {
            &dsts
        };
        // Only frames the router forwards (a random prefix may fall inside a connected subnet).
        let frames: Vec<Vec<u8>> = dsts
            .iter()
            .map(|d| frame(fam, *d))
            .filter(|f| {
                burst(
                    &mut case.pipeline,
                    std::slice::from_ref(f),
                    0,
                    &mut bufs[..1],
                    false,
                ) == 1
            })
            .collect();
        assert!(
            frames.len() * 100 >= dsts.len() * 99,
            "{}: only {} of {} frames are forwarded",
            case.name,
            frames.len(),
            dsts.len()
        );
        let samples = RefCell::new(Vec::new());
        let mut next = 0usize;
        g.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let n = burst(&mut case.pipeline, &frames, next, &mut bufs, case.warm);
                    assert_eq!(n, BURST, "every frame of a burst is forwarded");
                    next = (next + BURST) % frames.len();
                }
                let e = start.elapsed();
                samples
                    .borrow_mut()
                    .push(e.as_nanos() as f64 / (iters as f64 * BURST as f64));
                e
            })
        });
        results.push((case.name, median(&mut samples.borrow_mut())));
    }
    g.finish();
    let reference = results[0].1;
    println!("{family}: ns per routed frame (median), ratio to the small table");
    for (name, ns) in &results {
        println!("  {family} {name:<18} {ns:6.1} ns  {:.2}x", ns / reference);
    }
    if let [_, (_, cold), (_, warm)] = results[..] {
        println!(
            "  {family} warming the burst: {:.2}x the per-frame time of 1M routes without it",
            warm / cold
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let sizes = Sizes {
        prefixes: ROUTES,
        fresh: 0,
        lookups: FRAMES,
    };
    run_family(&mut c, "ipv4", &v4(), data_v4(0x5049_5034, sizes), |a| {
        Ipv4Addr::from(a).into()
    });
    run_family(&mut c, "ipv6", &v6(), data_v6(0x5049_5036, sizes), |a| {
        Ipv6Addr::from(a).into()
    });
    c.final_summary();
}
