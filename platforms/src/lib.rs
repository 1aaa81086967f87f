//! Backends implementing the HAL, and the platform profiles that choose one.

pub mod bpf_objects;
pub mod chaos;
pub mod error;
pub mod kernel;
pub mod open;
pub mod profile;
pub mod raw;
pub mod sim;
pub mod software;

pub use error::PlatformError;
pub use open::{Opened, PortSpec, open};
pub use profile::{FeatureRequest, PlatformPlan, Problem, SlotStatus, Subject, plan};
pub use raw::send_frames;
