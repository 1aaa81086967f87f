//! Fuzzes the forwarding pipeline (roamer_forwarding::pipeline::Pipeline::process, trace,
//! originate) of a switch configured like a real one with arbitrary frames on arbitrary ports:
//! no panic, the frame stays inside its buffer, memory stays bounded (see
//! roamer_forwarding::pipeline::fuzz_harness).
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use roamer_forwarding::pipeline::fuzz_harness::PipelineHarness;

static HARNESS: Mutex<Option<PipelineHarness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut h = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
    if h.is_none() {
        *h = PipelineHarness::new();
    }
    h.as_mut()
        .expect("the switch configuration applies")
        .feed(data);
});
