//! The HSRP hello filter of the kernel backend: `platforms/bpf/hello_filter.c` on TC ingress
//! and egress of every port with a `HelloFilter` row, so that hellos neither enter the bridge
//! (or the host) from that port nor leave through it, whoever sent them — the software core's
//! behaviour. Loaded when the first port needs it; a switch without hello filters runs none of
//! it. Its drops show in `show forwarding counters`.

use std::collections::BTreeMap;

use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray};
use aya::programs::{SchedClassifier, TcAttachType};
use roamer_hal::Counter;

use super::tc_hook::{self, TcLink};
use crate::PlatformError;

const IN: &str = "hello_filter_in";
const OUT: &str = "hello_filter_out";
/// Counter slots of `hello_filter.c`, and their names (the ingress one is the software core's).
const COUNTER_NAMES: [&str; 2] = [
    "drop hsrp-hello-filtered",
    "drop hsrp-hello-filtered-egress",
];

/// The programs of every hook a hello filter uses, for [`remove_leftover_filters`].
const HOOKS: [(&str, TcAttachType); 2] = [(IN, TcAttachType::Ingress), (OUT, TcAttachType::Egress)];

pub struct HelloFilter {
    ebpf: Ebpf,
    counters: PerCpuArray<MapData, u64>,
    /// The two links of each filtered interface, by ifindex.
    attached: BTreeMap<u32, Vec<TcLink>>,
}

impl std::fmt::Debug for HelloFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelloFilter")
            .field("attached", &self.attached.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn refused(what: String, e: impl std::error::Error + Send + Sync + 'static) -> PlatformError {
    PlatformError::EbpfRefused {
        object: "the HSRP hello filter",
        what,
        feature: "TC classifier programs and per-CPU array maps",
        source: Box::new(e),
    }
}

/// Removes the filters a killed run left on `device` (kernels before 6.6).
pub fn remove_leftover_filters(device: &str) -> Result<usize, PlatformError> {
    tc_hook::remove_leftovers(device, &HOOKS)
}

impl HelloFilter {
    /// Loads the programs and their counters; attaches nothing.
    pub fn load() -> Result<Self, PlatformError> {
        let bytes = crate::bpf_objects::HELLO_FILTER.map_err(|reason| {
            PlatformError::EbpfObjectMissing {
                object: "the HSRP hello filter",
                reason,
            }
        })?;
        let mut ebpf =
            Ebpf::load(bytes).map_err(|e| refused("loading the hello filter".into(), e))?;
        for (name, _) in HOOKS {
            let program: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(PlatformError::EbpfObjectIncomplete { missing: name })?
                .try_into()
                .map_err(|e| refused(format!("program {name}"), e))?;
            program
                .load()
                .map_err(|e| refused(format!("verifying {name}"), e))?;
        }
        let map = ebpf
            .take_map("hello_counters")
            .ok_or(PlatformError::EbpfObjectIncomplete {
                missing: "hello_counters",
            })?;
        let counters =
            PerCpuArray::try_from(map).map_err(|e| refused("map hello_counters".into(), e))?;
        Ok(HelloFilter {
            ebpf,
            counters,
            attached: BTreeMap::new(),
        })
    }

    /// Filters hellos on interface `iface` (both directions). Nothing is left half attached.
    pub fn attach(&mut self, iface: &str, ifindex: u32) -> Result<(), PlatformError> {
        if self.attached.contains_key(&ifindex) {
            return Ok(());
        }
        let mut links = Vec::with_capacity(HOOKS.len());
        for (program, hook) in HOOKS {
            match tc_hook::attach(&mut self.ebpf, program, iface, ifindex, hook) {
                Ok(link) => links.push(link),
                Err(e) => {
                    for link in links {
                        let _ = tc_hook::detach(&mut self.ebpf, link);
                    }
                    return Err(e);
                }
            }
        }
        self.attached.insert(ifindex, links);
        Ok(())
    }

    /// Stops filtering on `ifindex`.
    pub fn detach(&mut self, ifindex: u32) -> Result<(), PlatformError> {
        let mut first_error = None;
        for link in self.attached.remove(&ifindex).unwrap_or_default() {
            if let Err(e) = tc_hook::detach(&mut self.ebpf, link)
                && first_error.is_none()
            {
                first_error = Some(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The filtered interfaces' ifindexes.
    pub fn filtered(&self) -> Vec<u32> {
        self.attached.keys().copied().collect()
    }

    /// Hellos dropped, per direction (per-CPU counters summed).
    pub fn counters(&self) -> Vec<Counter> {
        COUNTER_NAMES
            .iter()
            .zip(0u32..)
            .map(|(name, slot)| Counter {
                name: (*name).to_string(),
                value: self
                    .counters
                    .get(&slot, 0)
                    .map(|per_cpu| per_cpu.iter().sum())
                    .unwrap_or(0),
            })
            .collect()
    }
}

impl Drop for HelloFilter {
    fn drop(&mut self) {
        for ifindex in self.filtered() {
            if let Err(e) = self.detach(ifindex) {
                tracing::warn!("hello filter: {e}");
            }
        }
    }
}
