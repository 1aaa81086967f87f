//! The one error type of the `roamer` binary.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RoamerError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The configuration has problems, each positioned as `FILE:LINE: message`.
    #[error("{}: {} problem(s) found", path.display(), diagnostics.len())]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<crate::load::Diagnostic>,
    },

    #[error(transparent)]
    Hal(#[from] roamer_hal::HalError),

    #[error(transparent)]
    Platform(#[from] roamer_platforms::PlatformError),

    #[error("control socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `roamer run --socket-group` names a group that cannot be used.
    #[error("--socket-group {group}: {reason}")]
    SocketGroup { group: String, reason: String },

    #[error("cannot reach the roamer daemon at {}: {source} (is `roamer run` started, with the same --socket?)", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The daemon refused or ended the session (`% permission denied`, `% too many sessions`,
    /// `% session idle timeout`).
    #[error("{}", message.trim_end())]
    SessionClosed { message: String },

    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),

    #[error("{failed} command(s) failed")]
    CommandsFailed { failed: usize },

    #[error("line editor: {0}")]
    Editor(String),

    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),

    /// A containerlab topology file `roamer lab` cannot run.
    #[error("{}: {message}", path.display())]
    LabTopology { path: PathBuf, message: String },

    /// `roamer lab` could not build, reach or remove a lab.
    #[error("lab: {0}")]
    Lab(String),
}

impl RoamerError {
    /// Exit status: 2 for anything wrong with the operator's input, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            RoamerError::Invalid { .. } | RoamerError::Read { .. } => 2,
            RoamerError::Platform(roamer_platforms::PlatformError::BackendUnavailable {
                ..
            }) => 2,
            _ => 1,
        }
    }
}
