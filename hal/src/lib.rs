//! The hardware abstraction layer: the contract between roamer's control plane and whatever
//! forwards its frames (in-memory tables, the software switch, the Linux kernel, an ASIC).
//!
//! It knows tables, cards and capacities, never a protocol.

pub mod backend;
pub mod capacity;
pub mod cards;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod dataplane;
pub mod error;
pub mod inventory;
pub mod table;
pub mod types;
pub mod version;

pub use backend::{
    Backend, Capabilities, Features, HalEvent, InjectTarget, PacketIo, Punt, PuntReason,
};
pub use capacity::{Accounted, CapacityScope, Usage};
pub use cards::{
    AdmissionRequest, CardModel, CardProfile, CardState, Catalogue, Family, LispSupport,
};
pub use dataplane::{
    CopiedReader, Counter, DataPlane, DataPlaneReader, Learned, LearnedMac, LearnedNeighbor,
    LinkState, Notifier, PortAttach, PortIoInfo, PortLink, Trace,
};
pub use error::HalError;
pub use inventory::{
    BackendKind, LISP_LICENSE, LinecardSpec, PlatformSpec, PortIoKind, ProfileKind,
};
pub use table::{
    L3Interface, Locator, NegativeAction, NextHop, OpAction, TableEntry, TableKey, TableKind,
    TableOp,
};
pub use types::{Iid, Mac, PortId, Prefix, SlotId, VlanId};
pub use version::{EpldVersion, Release};
