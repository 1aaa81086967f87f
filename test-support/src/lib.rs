//! What roamer's tests share, in one place (a dev-dependency only, never in the binary):
//!
//! - [`checks`]: root and tool checks that fail a test with a clear message, never skip it;
//! - [`netns`]: network namespaces and veth pairs deleted by name when their guards drop, and
//!   the helpers that run inside them (ping, sysfs, a TCP stream);
//! - [`wait`]: polling a condition with a timeout;
//! - [`capture`]: a live `tshark` capture inside a namespace;
//! - [`pcap`]: writing frames to a pcap file and decoding it with `tshark`;
//! - [`process`]: a child process killed when its guard drops;
//! - [`corpus`]: the files of a fuzz target's corpus and artifacts, for replay tests;
//! - [`hex`](mod@hex): octets from hex text;
//! - [`golden`]: comparing output with a golden file;
//! - [`rng`]: a seeded generator (SplitMix64).

pub mod capture;
pub mod checks;
pub mod corpus;
pub mod golden;
pub mod hex;
pub mod netns;
pub mod pcap;
pub mod process;
pub mod rng;
pub mod wait;

pub use capture::{Capture, Wire};
pub use checks::{have, privileged, require_root, require_tool};
pub use golden::assert_golden;
pub use hex::hex;
pub use netns::{Netns, PING_THREE, Veth, ip, ping_fragmented, run, unique_prefix};
pub use netns::{
    accept_within, connect_within, ethernet_frame, parse_mac, pattern, ping, sysfs, tcp_stream,
};
pub use process::KillOnDrop;
pub use rng::SplitMix64;
pub use wait::{wait_for, wait_until};
