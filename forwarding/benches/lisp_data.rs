//! LISP data plane: in-place encapsulation and decapsulation of a 64- and a 1400-octet inner IPv4
//! packet (IPv4 outer; IPv6 outer for encapsulation too, which also computes the UDP checksum).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roamer_forwarding::wire::checksum;
use roamer_forwarding::wire::lisp_data::{
    EncapParams, LispDataRepr, NonceField, OVERHEAD_IPV4, OVERHEAD_IPV6, decapsulate,
    decapsulate_in_place, encapsulate_in_place, flow_source_port,
};
use roamer_hal::Iid;

fn inner_ipv4(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    let total = u16::try_from(len).unwrap();
    p[..20].copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 63, 17, 0, 0, 172, 16, 2, 20, 172, 16, 1, 10,
    ]);
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum::ipv4_header(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..24].copy_from_slice(&[0xc3, 0x50, 0x00, 0x35]);
    p
}

fn header() -> LispDataRepr {
    LispDataRepr {
        nonce: NonceField::Nonce {
            nonce: 0x5a3c91,
            echo_request: false,
        },
        instance_id: Iid::new(101).ok(),
        lsb: Some(1),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    for len in [64usize, 1400] {
        let inner = inner_ipv4(len);
        let port = flow_source_port(&inner, 0);
        let p4 = EncapParams::new(v4(10, 2, 2, 2), v4(10, 3, 3, 3), port, header());
        let p6 = EncapParams::new(
            "2001:db8:1::1".parse().unwrap(),
            "2001:db8:2::2".parse().unwrap(),
            port,
            header(),
        );
        let mut g = c.benchmark_group(format!("lisp_data/{len}B"));
        g.throughput(Throughput::Elements(1));

        let mut buf = vec![0u8; OVERHEAD_IPV6 + len];
        buf[OVERHEAD_IPV6..].copy_from_slice(&inner);
        g.bench_function("encap_ipv4_outer", |b| {
            b.iter(|| {
                encapsulate_in_place(black_box(&mut buf), OVERHEAD_IPV6, len, black_box(&p4))
                    .unwrap()
            })
        });
        g.bench_function("encap_ipv6_outer", |b| {
            b.iter(|| {
                encapsulate_in_place(black_box(&mut buf), OVERHEAD_IPV6, len, black_box(&p6))
                    .unwrap()
            })
        });
        g.bench_function("flow_source_port", |b| {
            b.iter(|| flow_source_port(black_box(&inner), 0))
        });

        let mut pkt = vec![0u8; OVERHEAD_IPV4 + len];
        pkt[OVERHEAD_IPV4..].copy_from_slice(&inner);
        encapsulate_in_place(&mut pkt, OVERHEAD_IPV4, len, &p4).unwrap();
        g.bench_function("decap_ipv4_outer", |b| {
            b.iter(|| decapsulate(black_box(&pkt)).unwrap())
        });
        // In place: TTL / DSCP / ECN onto the inner header; idempotent, so the same buffer is
        // reused on every iteration.
        let mut work = pkt.clone();
        g.bench_function("decap_in_place_ipv4_outer", |b| {
            b.iter(|| decapsulate_in_place(black_box(&mut work)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(group, benches);
criterion_main!(group);
