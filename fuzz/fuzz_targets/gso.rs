//! Fuzzes software segmentation (roamer_platforms::software::gso): arbitrary frames with
//! arbitrary offload metadata (a `virtio_net_hdr` a local host chooses) through every public
//! function; no panic, pieces within their slots carrying the original payload, refused appends
//! change nothing (see roamer_platforms::software::fuzz_harness).
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use roamer_platforms::software::fuzz_harness::GsoHarness;

// The slots are allocated once (about 1 MiB), not per input.
static HARNESS: Mutex<Option<GsoHarness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut h = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
    h.get_or_insert_with(GsoHarness::new).feed(data);
});
