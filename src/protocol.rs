//! The local control socket between `roamer cli`/`roamer exec` and the daemon: one JSON object
//! per line each way. Every connection is one CLI session with its own mode.

use serde::{Deserialize, Serialize};

/// Longest request line the daemon reads; longer ones close the session.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Most sessions open at once; more connections wait.
pub const MAX_SESSIONS: usize = 16;

/// Where the daemon listens unless told otherwise (`--socket` or `ROAMER_SOCKET`).
pub const DEFAULT_SOCKET: &str = "/run/roamer/roamer.sock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Execute one command line.
    Line { line: String },
    /// `?`: what may follow this partial line.
    Help { line: String },
    /// TAB: the keywords completing the last word.
    Complete { line: String },
    /// The current prompt.
    Prompt,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// What to print (command output, or the error text).
    pub output: String,
    pub prompt: String,
    /// Help items: (token, description).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub help: Vec<(String, String)>,
    /// Completions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
}

/// The socket path: explicit flag, else `ROAMER_SOCKET`, else the default.
pub fn socket_path(flag: Option<std::path::PathBuf>) -> std::path::PathBuf {
    flag.or_else(|| std::env::var_os("ROAMER_SOCKET").map(Into::into))
        .unwrap_or_else(|| DEFAULT_SOCKET.into())
}
