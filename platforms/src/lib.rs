//! Backends implementing the HAL, and the platform profiles that choose one.

pub mod error;
pub mod profile;
pub mod sim;
pub mod software;

pub use error::PlatformError;
pub use profile::{FeatureRequest, PlatformPlan, Problem, SlotStatus, Subject, plan};
