//! Attaching the kernel backend's eBPF classifiers (LISP, the HSRP hello filter) to a TC hook
//! of an interface, and removing what a killed run left there.
//!
//! Linux 6.6 and later: TCX links, with no qdisc to create or leave behind, which the kernel
//! detaches by itself when the process dies (SIGKILL leaves nothing attached). Before 6.6:
//! `cls_bpf` filters on a `clsact` qdisc, which outlive a killed process; the next start
//! removes them by program name ([`remove_leftovers`]). A `clsact` qdisc, ours or not, is left
//! in place: without filters it does nothing.

use aya::Ebpf;
use aya::programs::tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions};
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType};

use crate::PlatformError;

/// Set to `netlink`, the programs are attached as classic `cls_bpf` filters on a `clsact`
/// qdisc even where the kernel has TCX links (for tests of the path kernels before 6.6 take).
pub const TC_ATTACH_ENV: &str = "ROAMER_TC_ATTACH";

/// Whether the programs go on as `cls_bpf` filters: kernels before 6.6 have no TCX links.
fn netlink_attach() -> bool {
    std::env::var(TC_ATTACH_ENV).is_ok_and(|v| v == "netlink")
        || aya::util::KernelVersion::current()
            .is_ok_and(|v| v < aya::util::KernelVersion::new(6, 6, 0))
}

fn hook_name(hook: TcAttachType) -> &'static str {
    match hook {
        TcAttachType::Ingress => "ingress",
        TcAttachType::Egress => "egress",
        TcAttachType::Custom(_) => "a custom parent",
    }
}

/// One program on one hook of one interface.
pub struct TcLink {
    pub program: &'static str,
    pub ifindex: u32,
    pub hook: TcAttachType,
    link: SchedClassifierLinkId,
}

impl std::fmt::Debug for TcLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcLink")
            .field("program", &self.program)
            .field("ifindex", &self.ifindex)
            .field("hook", &hook_name(self.hook))
            .finish_non_exhaustive()
    }
}

/// Attaches the loaded classifier `program` of `ebpf` to `hook` of interface `iface`.
pub fn attach(
    ebpf: &mut Ebpf,
    program: &'static str,
    iface: &str,
    ifindex: u32,
    hook: TcAttachType,
) -> Result<TcLink, PlatformError> {
    let error = |source: Box<dyn std::error::Error + Send + Sync>| PlatformError::TcAttach {
        program,
        hook: hook_name(hook),
        iface: iface.to_string(),
        source,
    };
    let classifier: &mut SchedClassifier = ebpf
        .program_mut(program)
        .ok_or(PlatformError::EbpfObjectIncomplete { missing: program })?
        .try_into()
        .map_err(|e| error(Box::new(e)))?;
    let options = if netlink_attach() {
        match tc::qdisc_add_clsact(iface) {
            Ok(()) | Err(tc::TcError::AlreadyAttached) => {}
            Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(error(Box::new(e))),
        }
        TcAttachOptions::Netlink(NlOptions::default())
    } else {
        TcAttachOptions::TcxOrder(LinkOrder::default())
    };
    let link = classifier
        .attach_with_options(iface, hook, options)
        .map_err(|e| error(Box::new(e)))?;
    Ok(TcLink {
        program,
        ifindex,
        hook,
        link,
    })
}

/// Detaches `link` (a device that is already gone took its programs with it: not an error).
pub fn detach(ebpf: &mut Ebpf, link: TcLink) -> Result<(), PlatformError> {
    let program = link.program;
    let ifindex = link.ifindex;
    let Some(classifier) = ebpf
        .program_mut(program)
        .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
    else {
        return Ok(());
    };
    classifier
        .detach(link.link)
        .map_err(|e| PlatformError::TcDetach {
            program,
            ifindex,
            source: Box::new(e),
        })
}

/// Removes the `cls_bpf` filters named `programs` that a killed run left on `device` (TCX
/// links go with the process; these stay). Returns how many were found.
pub fn remove_leftovers(
    device: &str,
    programs: &[(&'static str, TcAttachType)],
) -> Result<usize, PlatformError> {
    let mut removed = 0;
    for &(program, hook) in programs {
        match tc::qdisc_detach_program(device, hook, program) {
            Ok(()) => removed += 1,
            Err(tc::TcError::IoError(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            // No clsact qdisc (or no such device): nothing of ours there.
            Err(tc::TcError::NetlinkError(e))
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOENT | libc::ENODEV)
                ) => {}
            Err(e) => {
                return Err(PlatformError::TcDetach {
                    program,
                    ifindex: 0,
                    source: Box::new(e),
                });
            }
        }
    }
    Ok(removed)
}
