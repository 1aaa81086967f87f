//! The one error type of the platforms crate.

use roamer_hal::{BackendKind, HalError, ProfileKind, SlotId};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error(transparent)]
    Hal(#[from] HalError),

    #[error("feature {feature} requires the {license} license, which is not installed")]
    LicenseMissing {
        feature: &'static str,
        license: &'static str,
    },

    #[error(
        "feature lisp needs at least one online line card that supports LISP; none is configured"
    )]
    NoLispCard,

    #[error("line cards can only be configured on the n7k profile, not on {profile}")]
    CardsNotOnProfile { profile: ProfileKind },

    #[error("{slot} is configured twice")]
    DuplicateSlot { slot: SlotId },

    #[error("{slot} does not exist: an n7k chassis has slots 1-{max}")]
    SlotOutOfRange { slot: SlotId, max: u8 },

    #[error("platform.release is required on the {profile} profile (e.g. release = \"8.2(1)\")")]
    ReleaseRequired { profile: ProfileKind },

    #[error("the {backend} backend is not available: {reason}")]
    BackendUnavailable {
        backend: BackendKind,
        reason: &'static str,
    },

    #[error("port {port}: no such interface: {source}")]
    NoSuchInterface {
        port: String,
        #[source]
        source: std::io::Error,
    },

    #[error("port {port}: {op} failed: {source}")]
    PortIo {
        port: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("port {port}: the kernel does not support {feature}: {source}")]
    PortFeatureUnsupported {
        port: String,
        feature: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{needed_by} needs a kernel feature this kernel lacks: {missing}")]
    KernelFeatureMissing {
        needed_by: &'static str,
        /// The missing feature and the kernel's answer.
        missing: String,
    },

    /// An AF_XDP port cannot be opened on this interface (kernel, driver, MTU, queues, or this
    /// build has no XDP program); the reason is what `show interface` reports for the fallback.
    #[error("port {port}: AF_XDP unavailable: {reason}")]
    AfXdpUnavailable { port: String, reason: String },

    #[error("ROAMER_CHAOS '{spec}': {reason}")]
    ChaosSpec { spec: String, reason: String },

    #[error("{object} is not in this build: {reason}")]
    EbpfObjectMissing {
        object: &'static str,
        reason: &'static str,
    },

    #[error("the eBPF object has no {missing} (build and loader disagree)")]
    EbpfObjectIncomplete { missing: &'static str },

    #[error("the kernel refused {object} ({what}); it needs {feature}: {source}")]
    EbpfRefused {
        object: &'static str,
        what: String,
        feature: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error(
        "cannot attach the eBPF program {program} to TC {hook} of {iface} (TCX links from Linux 6.6, cls_bpf filters before): {source}"
    )]
    TcAttach {
        program: &'static str,
        hook: &'static str,
        iface: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("cannot detach the eBPF program {program} from ifindex {ifindex}: {source}")]
    TcDetach {
        program: &'static str,
        ifindex: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
