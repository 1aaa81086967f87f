//! The minimal frame copier (`software::copier::run`) between two interfaces, as a program for
//! `scripts/bench-forwarding.sh`: the yardstick the switch's throughput is compared with.
//!
//! ```text
//! copier --a DEV --b DEV [--seconds S] [--no-vnet-hdr] [--io af-packet|af-xdp]
//!        [--xdp-mode native|generic]
//! ```
//!
//! `--io af-xdp` opens both interfaces as AF_XDP ports instead (an XDP program on each for as
//! long as the copier runs): the yardstick of roamer over AF_XDP ports. `--xdp-mode
//! native|generic` tries that attach mode first (default: the port's own choice).
//!
//! Opens both interfaces as AF_PACKET ports (in the calling process's network namespace; run it
//! with `ip netns exec NS`), with `PACKET_VNET_HDR` unless `--no-vnet-hdr`, prints `ready`, and
//! copies frames both ways for `S` seconds (default: an hour; stop it earlier by its process
//! id). Then it prints what it moved.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use roamer_platforms::software::copier;
use roamer_platforms::software::{AfPacketConfig, AfPacketPort, PortIo, XdpAttach, XdpPort};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copier: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let (mut a, mut b, mut seconds, mut vnet_hdr) = (None, None, 3600.0f64, true);
    let mut xdp = false;
    let mut attach = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-vnet-hdr" {
            vnet_hdr = false;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--a" => a = Some(value),
            "--b" => b = Some(value),
            "--io" => {
                xdp = match value.as_str() {
                    "af-packet" => false,
                    "af-xdp" => true,
                    _ => return Err(format!("--io {value}: af-packet or af-xdp")),
                }
            }
            "--xdp-mode" => {
                attach = match value.as_str() {
                    "native" => Some(XdpAttach::Driver),
                    "generic" => Some(XdpAttach::Generic),
                    _ => return Err(format!("--xdp-mode {value}: native or generic")),
                }
            }
            "--seconds" => {
                seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds {value}: not a number"))?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let (Some(a), Some(b)) = (a, b) else {
        return Err(
            "usage: copier --a DEV --b DEV [--seconds S] [--no-vnet-hdr] [--io af-packet|af-xdp]"
                .into(),
        );
    };
    let config = AfPacketConfig {
        vnet_hdr,
        ..AfPacketConfig::default()
    };
    let open = |dev: &str| -> Result<(Box<dyn PortIo>, String), String> {
        if xdp {
            let port = XdpPort::open_preferring(dev, attach).map_err(|e| format!("{dev}: {e}"))?;
            let io = port.info().to_string();
            return Ok((Box::new(port), io));
        }
        let port = AfPacketPort::open_with(dev, &config).map_err(|e| format!("{dev}: {e}"))?;
        Ok((Box::new(port), "af-packet".into()))
    };
    let (mut pa, io) = open(&a)?;
    let (mut pb, _) = open(&b)?;
    println!(
        "ready a={a} b={b} vnet_hdr={} io={io}",
        pa.features().vnet_hdr && pb.features().vnet_hdr
    );
    let _ = std::io::stdout().flush();
    let stop = AtomicBool::new(false);
    let stats = std::thread::scope(|scope| {
        let worker = scope.spawn(|| copier::run(pa.as_mut(), pb.as_mut(), &stop));
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        worker.join()
    })
    .map_err(|_| "the copier thread panicked".to_string())?
    .map_err(|e| format!("copier: {e}"))?;
    println!(
        "copied a_to_b={} b_to_a={} dropped={} largest_frame={}",
        stats.a_to_b, stats.b_to_a, stats.dropped, stats.largest_frame
    );
    for (dev, port) in [(&a, &pa), (&b, &pb)] {
        println!("port {dev} {:?}", port.stats());
    }
    Ok(())
}
