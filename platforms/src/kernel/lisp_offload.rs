//! PLACEHOLDER for the LISP eBPF data path (built on the `kbpf` branch, replaced at merge):
//! the API the kernel backend codes against, where every method says the offload is not built.

use std::net::IpAddr;
use std::os::fd::RawFd;

use roamer_hal::{Counter, HalError, HalEvent, L3Interface, TableEntry, TableKind, TableOp};

use crate::PlatformError;

const NOT_BUILT: &str = "LISP offload not built yet";

/// The loaded LISP TC programs and their maps.
#[derive(Debug)]
pub struct LispOffload {
    _private: (),
}

fn not_built() -> HalError {
    HalError::NotSupported {
        operation: "LISP offload",
        backend: "kernel".into(),
        reason: NOT_BUILT,
    }
}

impl LispOffload {
    pub fn load() -> Result<Self, PlatformError> {
        Err(PlatformError::Hal(not_built()))
    }

    pub fn attach_eid_facing(
        &mut self,
        _ifindex: u32,
        _iface: L3Interface,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Hal(not_built()))
    }

    pub fn attach_underlay(&mut self, _ifindex: u32) -> Result<(), PlatformError> {
        Err(PlatformError::Hal(not_built()))
    }

    pub fn detach_all(&mut self) -> Result<(), PlatformError> {
        Err(PlatformError::Hal(not_built()))
    }

    pub fn set_addresses(&mut self, _addrs: &[(u32, IpAddr)]) -> Result<(), HalError> {
        Err(not_built())
    }

    pub fn apply(&mut self, _op: &TableOp) -> Result<(), HalError> {
        Err(not_built())
    }

    pub fn entries(&self, _kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        Err(not_built())
    }

    pub fn drain_events(&mut self, _out: &mut Vec<HalEvent>) {}

    pub fn counters(&self) -> Vec<Counter> {
        Vec::new()
    }

    pub fn event_fd(&self) -> RawFd {
        -1
    }

    pub fn program_ids(&self) -> Vec<u32> {
        Vec::new()
    }
}
