//! `roamer run`: bring the platform up, serve the control socket, stop cleanly on SIGTERM or
//! SIGINT.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use roamer_hal::Catalogue;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::control_socket::{self, Gate};
use crate::daemon::{self, State};
use crate::dataplane::Dataplane;
use crate::error::RoamerError;
use crate::instances::lock as lock_shared;
use crate::load::Loaded;
use crate::protocol::{MAX_REQUEST_BYTES, Request, Response};

/// How often the daemon runs its timers (and collects backend events and punts, which
/// otherwise wake it as soon as the data path queues them).
const POLL_INTERVAL: Duration = Duration::from_millis(10);

pub fn run(
    loaded: Loaded,
    startup: PathBuf,
    socket: PathBuf,
    socket_group: Option<control_socket::SocketGroup>,
    catalogue: Catalogue,
) -> Result<(), RoamerError> {
    for w in &loaded.warnings {
        warn!("{w}");
    }
    for tmp in daemon::remove_stale_temporaries(&startup) {
        warn!(file = %tmp.display(), "removed a temporary file left by an interrupted save");
    }
    let mut dataplane = Dataplane::open(
        loaded.plan.spec.backend,
        &loaded.config,
        loaded.plan.capacity_scopes(),
    )?;
    for failure in dataplane.reconcile(&loaded.config) {
        warn!("{failure}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RoamerError::Runtime)?;
    let span = info_span!("roamer", hostname = %loaded.config.hostname);
    let syntax = loaded.syntax;
    let state = State::new(loaded, startup, dataplane, catalogue);
    {
        let running = &state.running;
        let mut hsrp = lock_shared(&state.instances.hsrp);
        let mut lisp = lock_shared(&state.instances.lisp);
        let mut dataplane = lock_shared(&state.instances.dataplane);
        crate::dataplane::carry_out_hsrp(hsrp.sync(running), &mut dataplane);
        lisp.sync(running, &mut *dataplane);
    }
    let state = Arc::new(Mutex::new(state));
    runtime.block_on(serve(state, socket, socket_group, syntax).instrument(span))
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking session must not take the daemon down with it.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(
    state: Arc<Mutex<State>>,
    socket: PathBuf,
    socket_group: Option<control_socket::SocketGroup>,
    syntax: roamer_control::config::Syntax,
) -> Result<(), RoamerError> {
    let listener = bind(&socket, socket_group.as_ref()).await?;
    let mut term = signal(SignalKind::terminate()).map_err(RoamerError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RoamerError::Runtime)?;
    let gate = Arc::new(Gate::new(crate::protocol::session_idle(), socket_group));
    {
        let mut s = lock(&state);
        s.gate = Some(gate.clone());
        info!(
            profile = %s.plan.spec.profile,
            backend = %s.backend_name(),
            cards = s.plan.online_cards().count(),
            lisp = s.plan.lisp,
            config_syntax = ?syntax,
            socket = %socket.display(),
            "ready"
        );
    }
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    let queued = Arc::new(tokio::sync::Notify::new());
    let instances = lock(&state).instances.clone();
    let dataplane = instances.dataplane.clone();
    {
        let queued = queued.clone();
        lock_shared(&dataplane).set_notifier(Arc::new(move || queued.notify_one()));
    }
    // One task per protocol instance; this loop only routes to their inboxes.
    let router = instances.spawn();
    let mut events = Vec::new();
    let mut punts = Vec::new();
    let signal_name = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    let gate = gate.clone();
                    tokio::spawn(async move {
                        let _permit = match gate.admit(&stream) {
                            Ok(permit) => permit,
                            Err(refusal) => return control_socket::refuse(stream, refusal).await,
                        };
                        if let Err(e) = session(stream, state, &gate).await {
                            debug!(error = %e, "session ended");
                        }
                    }.in_current_span());
                }
                Err(e) => warn!(error = %e, "accept failed"),
            },
            _ = async { tokio::select! { _ = tick.tick() => {}, _ = queued.notified() => {} } } => {
                {
                    let mut dp = lock_shared(&dataplane);
                    dp.drain(&mut events, &mut punts);
                    // Table operations the backend refused are tried again until the tables
                    // match the configuration (one log line per round, in `retry_due`).
                    dp.retry_due(std::time::Instant::now());
                }
                for p in &punts {
                    debug!(port = %p.port, reason = ?p.reason, len = p.frame.len(), "punt");
                }
                router.route(&mut punts, &events, &dataplane);
                for e in events.drain(..) {
                    match &e {
                        // What the LISP control plane acts on: worth a line in the log.
                        roamer_hal::HalEvent::EidNotHere { .. }
                        | roamer_hal::HalEvent::NoRoute { .. }
                        | roamer_hal::HalEvent::DynamicEidSeen { .. }
                        | roamer_hal::HalEvent::MapCacheMiss { .. } => info!(event = ?e, "data-plane event"),
                        roamer_hal::HalEvent::PortUp(_) | roamer_hal::HalEvent::PortDown(_) => {
                            info!(event = ?e, "port state")
                        }
                        _ => debug!(event = ?e, "backend event"),
                    }
                }
            }
        }
    };
    info!(signal = signal_name, "stopping");
    let _ = std::fs::remove_file(&socket);
    info!("stopped");
    Ok(())
}

/// Binds the control socket; a stale socket file is replaced, a live one is an error.
async fn bind(
    socket: &Path,
    group: Option<&control_socket::SocketGroup>,
) -> Result<UnixListener, RoamerError> {
    let io = |source: std::io::Error| RoamerError::Socket {
        path: socket.to_path_buf(),
        source,
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).await.is_ok() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another roamer is serving this socket",
            )));
        }
        std::fs::remove_file(socket).map_err(io)?;
    }
    let listener = UnixListener::bind(socket).map_err(io)?;
    control_socket::restrict(socket, group).map_err(io)?;
    Ok(listener)
}

/// One CLI session: requests in, responses out, one JSON object per line.
async fn session(stream: UnixStream, state: Arc<Mutex<State>>, gate: &Gate) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut cli = daemon::new_session();
    let mut line = String::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_REQUEST_BYTES as u64 + 1);
        let n = match tokio::time::timeout(gate.idle, limited.read_line(&mut line)).await {
            Ok(n) => n?,
            Err(_) => {
                gate.idled();
                let resp = control_socket::closing("% session idle timeout\n");
                return write_response(&mut write, &resp).await;
            }
        };
        if n == 0 {
            return Ok(());
        }
        if n > MAX_REQUEST_BYTES {
            let resp = Response {
                ok: false,
                output: "% request too long\n".into(),
                ..Response::default()
            };
            write_response(&mut write, &resp).await?;
            return Ok(());
        }
        let (resp, job) = match serde_json::from_str::<Request>(&line) {
            Ok(req) => lock(&state).handle_deferring(&mut cli, req),
            Err(e) => (
                Response {
                    ok: false,
                    output: format!("% bad request: {e}\n"),
                    ..Response::default()
                },
                None,
            ),
        };
        let Some(job) = job else {
            write_response(&mut write, &resp).await?;
            continue;
        };
        // A `show`: its rows were taken under the lock; rendering them (a large table is many
        // megabytes of text or JSON) runs on a blocking thread, so the event loop keeps
        // forwarding punts and answering the data path meanwhile.
        let bytes = tokio::task::spawn_blocking(move || {
            let mut resp = resp;
            match job.render() {
                Ok(text) => resp.output = text,
                Err(e) => {
                    resp.ok = false;
                    resp.output = format!("% {e}");
                }
            }
            response_bytes(&resp)
        })
        .await
        .map_err(std::io::Error::other)??;
        let large = bytes.len() >= LARGE_RESPONSE;
        write.write_all(&bytes).await?;
        drop(bytes);
        if large {
            // The allocator keeps the freed rows, text and JSON of a large show in its heap;
            // give them back to the system (off the event loop: trimming takes a while).
            tokio::task::spawn_blocking(crate::memory::trim);
        }
    }
}

/// A response at least this large has its memory returned to the system once written.
const LARGE_RESPONSE: usize = 1 << 20;

fn response_bytes(resp: &Response) -> std::io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(resp).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

async fn write_response(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    resp: &Response,
) -> std::io::Result<()> {
    let bytes = response_bytes(resp)?;
    write.write_all(&bytes).await
}
