//! Who may use the control socket, and for how long: the socket file is 0600, every peer's
//! credentials are checked (`SO_PEERCRED`: only root and the daemon's own user are served),
//! a session beyond [`MAX_SESSIONS`] is refused at once and an idle one is closed.
//! With `--socket-group G` (the VM image's `admin` login) the file is 0660 owned by group G and
//! peers whose primary group is G are served too.

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

/// Mode of the socket file when a group is served as well.
pub const GROUP_SOCKET_MODE: u32 = 0o660;

/// A group whose members may use the control socket (`roamer run --socket-group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketGroup {
    pub name: String,
    pub gid: u32,
}

impl SocketGroup {
    /// Looks the group up in /etc/group (read directly: the static binary has no NSS).
    pub fn lookup(name: &str) -> Result<SocketGroup, crate::error::RoamerError> {
        let err = |reason: String| crate::error::RoamerError::SocketGroup {
            group: name.to_string(),
            reason,
        };
        let text = std::fs::read_to_string("/etc/group")
            .map_err(|e| err(format!("cannot read /etc/group: {e}")))?;
        Self::find(&text, name).ok_or_else(|| err("no such group in /etc/group".into()))
    }

    fn find(group_file: &str, name: &str) -> Option<SocketGroup> {
        group_file.lines().find_map(|line| {
            let mut fields = line.split(':');
            let (n, _, gid) = (fields.next()?, fields.next()?, fields.next()?);
            (n == name).then_some(())?;
            Some(SocketGroup {
                name: name.to_string(),
                gid: gid.trim().parse().ok()?,
            })
        })
    }
}

/// Sets the socket file's mode to [`SOCKET_MODE`] (or [`GROUP_SOCKET_MODE`] and the group's
/// ownership); called right after bind, before any accept (a peer that connected in between is
/// still checked by its credentials).
pub fn restrict(socket: &Path, group: Option<&SocketGroup>) -> std::io::Result<()> {
    match group {
        None => std::fs::set_permissions(socket, std::fs::Permissions::from_mode(SOCKET_MODE)),
        Some(g) => {
            std::os::unix::fs::chown(socket, None, Some(g.gid))?;
            std::fs::set_permissions(socket, std::fs::Permissions::from_mode(GROUP_SOCKET_MODE))
        }
    }
}

/// The daemon's effective uid (the owner of its /proc entry).
fn own_uid() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// Admission of control-socket peers, with its refusal counters.
#[derive(Debug)]
pub struct Gate {
    own_uid: Option<u32>,
    group: Option<SocketGroup>,
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
    pub fn new(idle: Duration, group: Option<SocketGroup>) -> Gate {
        let own_uid = match own_uid() {
            Ok(uid) => Some(uid),
            Err(e) => {
                warn!(error = %e, "cannot tell the daemon's own uid: only root is served");
                None
            }
        };
        Gate {
            own_uid,
            group,
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
            idle,
            denied: AtomicU64::new(0),
            too_many: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
        }
    }

    /// Whether a peer with this uid and primary gid may configure the switch.
    pub fn allowed(&self, uid: u32, gid: u32) -> bool {
        uid == 0 || Some(uid) == self.own_uid || self.group.as_ref().is_some_and(|g| g.gid == gid)
    }

    /// Checks a new connection: its credentials, then a free session slot (held by the
    /// returned permit for the session's life).
    pub fn admit(&self, stream: &UnixStream) -> Result<OwnedSemaphorePermit, Refusal> {
        let cred = stream.peer_cred();
        let uid = cred.as_ref().map(|c| c.uid()).ok();
        let gid = cred.as_ref().map(|c| c.gid()).ok();
        if !uid.zip(gid).is_some_and(|(u, g)| self.allowed(u, g)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_group_is_found_by_name_only() {
        let file = "root:x:0:\nroamer:x:990:admin\nroamers:x:991:\nbroken:x:notanumber:\n";
        assert_eq!(
            SocketGroup::find(file, "roamer"),
            Some(SocketGroup {
                name: "roamer".into(),
                gid: 990
            })
        );
        assert_eq!(SocketGroup::find(file, "roam"), None);
        assert_eq!(SocketGroup::find(file, "broken"), None);
    }

    #[test]
    fn a_group_member_is_served_others_are_not() {
        let group = SocketGroup {
            name: "roamer".into(),
            gid: 990,
        };
        let gate = Gate::new(Duration::from_secs(1), Some(group));
        assert!(gate.allowed(0, 0));
        assert!(gate.allowed(1000, 990));
        assert!(!gate.allowed(1000, 1000) || gate.own_uid == Some(1000));
        let closed = Gate::new(Duration::from_secs(1), None);
        assert!(!closed.allowed(65534, 990) || closed.own_uid == Some(65534));
    }
}
