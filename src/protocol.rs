//! The local control socket between `roamer cli`/`roamer exec` and the daemon: one JSON object
//! per line each way. Every connection is one CLI session with its own mode.

use serde::{Deserialize, Serialize};

/// Longest request line the daemon reads; longer ones close the session.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Most sessions open at once; a connection beyond them is answered `% too many sessions`
/// and closed at once.
pub const MAX_SESSIONS: usize = 16;

/// A session that sends no request for this long is closed (`% session idle timeout`).
pub const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// Overrides [`SESSION_IDLE`], in seconds (for tests and labs).
pub const SESSION_IDLE_ENV: &str = "ROAMER_SESSION_IDLE_SECS";

/// The idle timeout in force: `ROAMER_SESSION_IDLE_SECS` if set to a positive number, else
/// [`SESSION_IDLE`].
pub fn session_idle() -> std::time::Duration {
    std::env::var(SESSION_IDLE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(std::time::Duration::from_secs)
        .unwrap_or(SESSION_IDLE)
}

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
    /// The daemon closes the session after this response (refused, too many sessions, idle).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// The socket path: explicit flag, else `ROAMER_SOCKET`, else the default.
pub fn socket_path(flag: Option<std::path::PathBuf>) -> std::path::PathBuf {
    flag.or_else(|| std::env::var_os("ROAMER_SOCKET").map(Into::into))
        .unwrap_or_else(|| DEFAULT_SOCKET.into())
}
