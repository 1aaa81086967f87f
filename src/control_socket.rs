//! Who may use the control socket, and for how long: the socket file is 0600, every peer's
//! credentials are checked (`SO_PEERCRED`: only root and the daemon's own user are served),
//! a session beyond [`MAX_SESSIONS`] is refused at once and an idle one is closed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use crate::protocol::{MAX_SESSIONS, Response};

/// Mode of the socket file, whatever the umask.
pub const SOCKET_MODE: u32 = 0o600;

/// How long a refused peer is given to send its request before the connection is dropped
/// (so that it reads the reason rather than a reset).
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// Sets the socket file's mode to [`SOCKET_MODE`]; called right after bind, before any
/// accept (a peer that connected in between is still checked by its credentials).
pub fn restrict(socket: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(SOCKET_MODE))
}

/// The daemon's effective uid (the owner of its /proc entry).
fn own_uid() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// Admission of control-socket peers, with its refusal counters.
#[derive(Debug)]
pub struct Gate {
    own_uid: Option<u32>,
    sessions: Arc<Semaphore>,
    pub idle: Duration,
    pub denied: AtomicU64,
    pub too_many: AtomicU64,
    pub idle_closed: AtomicU64,
}

/// Why a connection is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PermissionDenied,
    TooManySessions,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::PermissionDenied => "% permission denied\n",
            Refusal::TooManySessions => "% too many sessions\n",
        }
    }
}

impl Gate {
    pub fn new(idle: Duration) -> Gate {
        let own_uid = match own_uid() {
            Ok(uid) => Some(uid),
            Err(e) => {
                warn!(error = %e, "cannot tell the daemon's own uid: only root is served");
                None
            }
        };
        Gate {
            own_uid,
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
            idle,
            denied: AtomicU64::new(0),
            too_many: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
        }
    }

    /// Whether a peer with this uid may configure the switch.
    pub fn allowed(&self, uid: u32) -> bool {
        uid == 0 || Some(uid) == self.own_uid
    }

    /// Checks a new connection: its credentials, then a free session slot (held by the
    /// returned permit for the session's life).
    pub fn admit(&self, stream: &UnixStream) -> Result<OwnedSemaphorePermit, Refusal> {
        let cred = stream.peer_cred();
        let uid = cred.as_ref().map(|c| c.uid()).ok();
        if !uid.is_some_and(|u| self.allowed(u)) {
            let n = self.denied.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                uid = ?uid,
                pid = ?cred.ok().and_then(|c| c.pid()),
                refused = n,
                "control socket: peer not allowed, permission denied"
            );
            return Err(Refusal::PermissionDenied);
        }
        match self.sessions.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                let n = self.too_many.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(
                    max = MAX_SESSIONS,
                    refused = n,
                    "control socket: too many sessions, connection refused"
                );
                Err(Refusal::TooManySessions)
            }
        }
    }

    /// Sessions in use and refusals so far (`show users`).
    pub fn sessions(&self) -> roamer_control::show::ControlSessions {
        roamer_control::show::ControlSessions {
            in_use: MAX_SESSIONS - self.sessions.available_permits(),
            max: MAX_SESSIONS,
            refused_permission: self.denied.load(Ordering::Relaxed),
            refused_too_many: self.too_many.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            idle_secs: self.idle.as_secs(),
        }
    }

    /// Counts and logs a session closed for idleness.
    pub fn idled(&self) {
        let n = self.idle_closed.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(
            idle_secs = self.idle.as_secs(),
            closed = n,
            "control socket: idle session closed"
        );
    }
}

/// The response that ends a session: the reason, marked closed.
pub fn closing(message: &str) -> Response {
    Response {
        ok: false,
        output: message.into(),
        closed: true,
        ..Response::default()
    }
}

/// Answers a refused connection with its reason and closes it.
pub async fn refuse(mut stream: UnixStream, refusal: Refusal) {
    let mut bytes = serde_json::to_vec(&closing(refusal.message())).unwrap_or_default();
    bytes.push(b'\n');
    if stream.write_all(&bytes).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    // Let the peer's request arrive before closing, so that it reads the reason (closing
    // with unread data would reset the connection).
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
