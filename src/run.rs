//! `roamer run`: bring the platform up, serve until SIGTERM or SIGINT, stop cleanly.

use std::time::Duration;

use roamer_hal::{Accounted, Backend, BackendKind, PacketIo};
use roamer_platforms::PlatformError;
use roamer_platforms::sim::SimBackend;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{Instrument, debug, info, info_span};

use crate::error::RoamerError;
use crate::load::Loaded;

/// How often the daemon collects backend events and punts while nothing else wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

pub fn run(loaded: Loaded) -> Result<(), RoamerError> {
    let Loaded {
        config,
        syntax,
        plan,
        warnings,
    } = loaded;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut backend = match plan.spec.backend {
        BackendKind::Sim => Accounted::new(SimBackend::default(), plan.capacity_scopes()),
        other => {
            return Err(PlatformError::BackendUnavailable {
                backend: other,
                reason: "this build of roamer offers only the sim backend so far",
            }
            .into());
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RoamerError::Runtime)?;
    let span = info_span!("roamer", hostname = %config.hostname);
    runtime.block_on(
        async move {
            let mut term = signal(SignalKind::terminate()).map_err(RoamerError::Runtime)?;
            let mut int = signal(SignalKind::interrupt()).map_err(RoamerError::Runtime)?;
            let cards = plan.online_cards().count();
            info!(
                profile = %plan.spec.profile,
                backend = %backend.name(),
                cards,
                lisp = plan.lisp,
                config_syntax = ?syntax,
                "ready"
            );
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            let mut events = Vec::new();
            let mut punts = Vec::new();
            let signal_name = loop {
                tokio::select! {
                    _ = term.recv() => break "SIGTERM",
                    _ = int.recv() => break "SIGINT",
                    _ = tick.tick() => {
                        backend.drain_events(&mut events);
                        backend.drain_punts(&mut punts);
                        for e in events.drain(..) {
                            debug!(event = ?e, "backend event");
                        }
                        for p in punts.drain(..) {
                            debug!(port = %p.port, reason = ?p.reason, len = p.frame.len(), "punt");
                        }
                    }
                }
            };
            info!(signal = signal_name, "stopping");
            Ok::<(), RoamerError>(())
        }
        .instrument(span),
    )?;
    info!("stopped");
    Ok(())
}
