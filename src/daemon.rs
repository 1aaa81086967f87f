//! The daemon's configuration state: the running configuration, the startup file, and the
//! per-session command handling behind the control socket.
//!
//! A change is validated completely (syntax, every rule, platform admission) before it replaces
//! the running configuration; a rejected change leaves everything as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use roamer_control::config::cli::commands::Mode;
use roamer_control::config::cli::{self, Session};
use roamer_control::config::validate::{Severity, validate};
use roamer_control::config::{self, Config, SourceMap, Syntax};
use roamer_control::show::{self, CapacityRow, ModuleRow, ShowContext};
use roamer_hal::Catalogue;
use roamer_platforms::{FeatureRequest, PlatformPlan, plan};
use tracing::{info, warn};

mod block;

pub use block::CliSession;

use crate::dataplane::Dataplane;
use crate::instances::{Instances, lock};
use crate::load::{self, Loaded};
use crate::protocol::{Request, Response};

/// Everything the daemon holds, behind one lock.
#[derive(Debug)]
pub struct State {
    pub running: Config,
    pub syntax: Syntax,
    pub startup_path: PathBuf,
    pub plan: PlatformPlan,
    /// The data plane and the protocol instances, each behind its own lock: the instances'
    /// tasks run without this state's lock.
    pub instances: Instances,
    catalogue: Catalogue,
    started: Instant,
    /// The control socket's admission, for `show users` (set once the socket serves).
    pub gate: Option<std::sync::Arc<crate::control_socket::Gate>>,
    /// Set by [`State::handle_deferring`]: a `show` leaves its rendering in `deferred`.
    defer_show: bool,
    deferred: Option<ShowJob>,
}

/// A `show` command with everything it renders from, owned: rendered without the daemon's lock
/// (see [`State::show_job`]).
#[derive(Debug)]
pub struct ShowJob {
    rest: String,
    startup_path: PathBuf,
    running: Config,
    modules: Vec<ModuleRow>,
    capacity: Vec<CapacityRow>,
    /// The data plane's rows are read when the command renders (off the loop).
    dataplane: crate::show_data::DataplaneView,
    hsrp: Vec<roamer_control::hsrp::GroupStatus>,
    sites: Vec<roamer_control::lisp::map_server::SiteRow>,
    map_cache: Vec<roamer_control::show::MapCacheRow>,
    away: Vec<roamer_control::show::AwayRow>,
    dynamic_eids: Vec<roamer_control::show::DynamicEidRow>,
    sessions: Vec<roamer_control::lisp::reliable::SessionRow>,
    lisp_statistics: roamer_control::show::lisp_stats::LispStatistics,
    reliable_registration: bool,
    uptime_secs: u64,
    control_sessions: roamer_control::show::ControlSessions,
}

impl ShowJob {
    /// The command's output (only `show startup-config` reads the disk, here).
    pub fn render(self) -> Result<String, roamer_control::ControlError> {
        let rest = self.rest.as_str();
        let startup_text = show::reads_startup(rest)
            .then(|| std::fs::read_to_string(&self.startup_path).ok())
            .flatten();
        let startup_empty = startup_text.as_deref().is_some_and(load::is_empty_config);
        let startup = startup_text
            .and_then(|text| config::parse(&text, Syntax::detect(&text)).ok())
            .map(|(c, _)| c);
        let tables = &crate::show_data::collect(&self.running, &self.dataplane);
        let ctx = ShowContext {
            running: &self.running,
            startup: startup.as_ref(),
            modules: &self.modules,
            capacity: &self.capacity,
            dynamic_eids: &self.dynamic_eids,
            macs: &tables.macs,
            arp: &tables.arp,
            routes: &tables.routes,
            interfaces: &tables.interfaces,
            counters: &tables.counters,
            dataplane_error: tables.unavailable.as_deref(),
            hsrp: &self.hsrp,
            lisp_sites: &self.sites,
            map_cache: &self.map_cache,
            away: &self.away,
            sessions: &self.sessions,
            lisp_statistics: &self.lisp_statistics,
            reliable_registration: self.reliable_registration,
            uptime_secs: self.uptime_secs,
            control_sessions: self.control_sessions,
        };
        let text = show::run(&ctx, rest)?;
        // An empty startup file is not a configuration someone saved: say so.
        let title = "!Command: show startup-config\n";
        Ok(match text.find(title) {
            Some(at) if startup_empty => {
                let (head, tail) = text.split_at(at + title.len());
                format!(
                    "{head}!{}: {}\n{tail}",
                    self.startup_path.display(),
                    load::EMPTY_CONFIG
                )
            }
            _ => text,
        })
    }
}

impl State {
    pub fn new(
        loaded: Loaded,
        startup_path: PathBuf,
        dataplane: Dataplane,
        catalogue: Catalogue,
    ) -> Self {
        State {
            running: loaded.config,
            syntax: loaded.syntax,
            startup_path,
            plan: loaded.plan,
            instances: Instances::new(dataplane),
            catalogue,
            started: Instant::now(),
            gate: None,
            defer_show: false,
            deferred: None,
        }
    }

    /// As [`State::handle`], except that a `show` is not rendered: its response comes back
    /// with an empty output and the [`ShowJob`] that renders it, for the caller to run without
    /// the lock.
    pub fn handle_deferring(
        &mut self,
        cli: &mut CliSession,
        request: Request,
    ) -> (Response, Option<ShowJob>) {
        self.defer_show = true;
        let resp = self.handle(cli, request);
        self.defer_show = false;
        (resp, self.deferred.take())
    }

    pub fn prompt(&self, session: &Session) -> String {
        format!("{}{}", self.running.hostname, session.mode.prompt_suffix())
    }

    /// Handles one request of a session.
    pub fn handle(&mut self, cli: &mut CliSession, request: Request) -> Response {
        let mut resp = match request {
            Request::Prompt => Response {
                ok: true,
                ..Response::default()
            },
            Request::Line { line } => self.line(cli, &line),
            Request::Help { line } => Response {
                ok: true,
                help: help(&cli.session, &line)
                    .into_iter()
                    .map(|h| (h.token, h.help))
                    .collect(),
                ..Response::default()
            },
            Request::Complete { line } => Response {
                ok: true,
                words: complete(&cli.session, &line),
                ..Response::default()
            },
        };
        resp.prompt = self.prompt(&cli.session);
        resp
    }

    /// Validates a candidate; `Err` holds the errors as printable lines.
    fn check(
        &self,
        candidate: &Config,
        sources: Option<(&Path, &SourceMap)>,
    ) -> Result<(PlatformPlan, String), String> {
        let at = |p: &config::ConfigPath| match sources {
            Some((file, map)) => format!("{}:{}: ", file.display(), map.line(p).unwrap_or(1)),
            None => "% ".to_string(),
        };
        let mut errors = String::new();
        let mut warnings = String::new();
        // Warnings the running configuration already has were shown when they arose.
        let known = validate(&self.running);
        for issue in validate(candidate) {
            let also = match (&issue.also, sources) {
                (Some(p), Some((file, map))) => {
                    format!(" (at {}:{})", file.display(), map.line(p).unwrap_or(1))
                }
                _ => String::new(),
            };
            let text = format!("{}{}{also}\n", at(&issue.path), issue.error);
            match issue.severity {
                Severity::Error => errors.push_str(&text),
                Severity::Warning if known.contains(&issue) => {}
                Severity::Warning => warnings.push_str(&format!("warning: {text}")),
            }
        }
        match plan(
            &candidate.platform,
            FeatureRequest {
                lisp: candidate.features.lisp,
            },
            &self.catalogue,
        ) {
            Ok(plan) if errors.is_empty() => {
                let restart = restart_needed(&self.plan.spec, &plan.spec);
                if restart.is_empty() {
                    Ok((plan, warnings))
                } else {
                    let mut errors = String::new();
                    for field in restart {
                        errors.push_str(&format!(
                            "{}roamer platform {field}: the data plane takes it only at start: \
                             not applied (save it with copy running-config startup-config, then \
                             restart roamer)\n",
                            at(&config::ConfigPath::platform(field))
                        ));
                    }
                    Err(errors)
                }
            }
            Ok(_) => Err(errors),
            Err(problems) => {
                for p in problems {
                    errors.push_str(&format!("% {}\n", p.error));
                }
                Err(errors)
            }
        }
    }

    /// Makes `candidate` the running configuration and moves the tables to it; returns the
    /// table operations the backend refused, as lines for the operator.
    fn commit(&mut self, candidate: Config, plan: PlatformPlan) -> Result<String, String> {
        // In lock order: the xTR gives back rows the new configuration takes over, the tables
        // move, then HSRP and LISP follow.
        let mut hsrp = lock(&self.instances.hsrp);
        let mut lisp = lock(&self.instances.lisp);
        let mut dataplane = lock(&self.instances.dataplane);
        // Ports first: a port the data plane cannot attach or detach refuses the whole change.
        dataplane.move_ports(&self.running, &candidate)?;
        info!(hostname = %candidate.hostname, "configuration committed");
        lisp.prepare(&candidate, &mut *dataplane);
        let failures = dataplane.reconcile(&candidate);
        crate::dataplane::carry_out_hsrp(hsrp.sync(&candidate), &mut dataplane);
        lisp.sync(&candidate, &mut *dataplane);
        drop((dataplane, lisp, hsrp));
        self.running = candidate;
        self.plan = plan;
        Ok(failures.iter().map(|f| format!("{f}\n")).collect())
    }

    fn exec(&mut self, command: &str) -> Response {
        let toks: Vec<&str> = command.split_whitespace().collect();
        let first = toks
            .first()
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_default();
        if "show".starts_with(&first) && !first.is_empty() {
            let rest = toks[1..].join(" ");
            if crate::trace::is_trace(&toks[1..]) {
                return match crate::trace::run(
                    &self.running,
                    &lock(&self.instances.dataplane),
                    &toks[1..],
                ) {
                    Ok(text) => Response {
                        ok: true,
                        output: text,
                        ..Response::default()
                    },
                    Err(e) => fail(format!("% {e}\n")),
                };
            }
            if self.defer_show {
                self.deferred = Some(self.show_job(&rest));
                return Response {
                    ok: true,
                    ..Response::default()
                };
            }
            return match self.show(&rest) {
                Ok(text) => Response {
                    ok: true,
                    output: text,
                    ..Response::default()
                },
                Err(e) => fail(format!("% {e}")),
            };
        }
        match toks.as_slice() {
            [_, src, _] if "running-config".starts_with(&src.to_ascii_lowercase()) => self.save(),
            [_, file, _] if first.starts_with("cop") => self.load_file(Path::new(file), false),
            [_, _, file] => self.load_file(Path::new(file), true),
            _ => fail(format!("% cannot execute '{command}'")),
        }
    }

    fn show(&self, rest: &str) -> Result<String, roamer_control::ControlError> {
        self.show_job(rest).render()
    }

    /// What `show rest` renders, taken from the state (under the daemon's lock, so quickly:
    /// rows are copied, nothing is rendered, the disk is not read); [`ShowJob::render`] then
    /// runs without the lock, off the event loop.
    pub fn show_job(&self, rest: &str) -> ShowJob {
        let modules: Vec<ModuleRow> = self
            .plan
            .slots
            .iter()
            .map(|s| {
                let model = self.catalogue.get(&s.model);
                ModuleRow {
                    slot: s.slot.0,
                    model: s.model.clone(),
                    ports: model.map(|m| m.ports).unwrap_or(0),
                    description: model.map(|m| m.description.clone()).unwrap_or_default(),
                    status: format!("{:?}", s.state).to_lowercase(),
                }
            })
            .collect();
        let hsrp = lock(&self.instances.hsrp);
        let lisp = lock(&self.instances.lisp);
        let dataplane = lock(&self.instances.dataplane);
        let capacity: Vec<CapacityRow> = dataplane
            .usage()
            .into_iter()
            .map(|u| CapacityRow {
                scope: u.scope,
                table: u.table.name().to_string(),
                used: u.used,
                capacity: u.capacity,
            })
            .collect();
        ShowJob {
            rest: rest.to_string(),
            startup_path: self.startup_path.clone(),
            running: self.running.clone(),
            modules,
            capacity,
            dataplane: crate::show_data::DataplaneView::of(
                &dataplane,
                self.instances
                    .inbox_dropped
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            hsrp: hsrp.statuses(),
            // Only the commands that list registrations pay for their rows.
            sites: if show::reads_lisp_sites(rest) {
                lisp.site_rows(&self.running)
            } else {
                Vec::new()
            },
            map_cache: lisp.map_cache_rows(),
            away: lisp.away_rows(),
            dynamic_eids: lisp.dynamic_eid_rows(),
            sessions: lisp.session_rows(),
            lisp_statistics: lisp.statistics(),
            reliable_registration: lisp.reliable_map_server(),
            uptime_secs: self.started.elapsed().as_secs(),
            control_sessions: self.gate.as_ref().map(|g| g.sessions()).unwrap_or_default(),
        }
    }

    /// `copy running-config startup-config`, in the syntax the startup file was loaded from.
    fn save(&mut self) -> Response {
        let text = config::render(&self.running, self.syntax);
        match write_atomically(&self.startup_path, text.as_bytes()) {
            Ok(()) => {
                info!(path = %self.startup_path.display(), "startup configuration saved");
                Response {
                    ok: true,
                    output: "[########################################] 100%\nCopy complete.\n"
                        .into(),
                    ..Response::default()
                }
            }
            Err(e) => {
                warn!(path = %self.startup_path.display(), error = %e, "saving the startup configuration failed");
                fail(format!(
                    "% cannot write {}: {e}",
                    self.startup_path.display()
                ))
            }
        }
    }

    /// `copy FILE running-config` (merge) and `configure replace FILE` (replace). All or nothing.
    fn load_file(&mut self, path: &Path, replace: bool) -> Response {
        let text = match load::read_text(path) {
            Ok(t) => t,
            Err(crate::error::RoamerError::Invalid { diagnostics, .. }) => {
                return fail(diagnostics.iter().map(|d| format!("{d}\n")).collect());
            }
            Err(e) => return fail(format!("% {e}")),
        };
        let syntax = Syntax::detect(&text);
        let parsed = match (syntax, replace) {
            (Syntax::Cli, false) => cli::apply(&text, self.running.clone()),
            _ => config::parse(&text, syntax),
        };
        match load::check_parsed(path, parsed, syntax, &self.catalogue) {
            Ok(loaded) => {
                let warnings: String = loaded.warnings.iter().map(|w| format!("{w}\n")).collect();
                let refused = match self.commit(loaded.config, loaded.plan) {
                    Ok(refused) => refused,
                    Err(errors) => return fail(errors),
                };
                let warnings = warnings + &refused;
                Response {
                    // A table operation the data plane refused fails the command, with its
                    // table, card and capacity in the message.
                    ok: refused.is_empty(),
                    output: format!("{warnings}Copy complete.\n"),
                    ..Response::default()
                }
            }
            Err(crate::error::RoamerError::Invalid { diagnostics, .. }) => {
                fail(diagnostics.iter().map(|d| format!("{d}\n")).collect())
            }
            Err(e) => fail(format!("% {e}")),
        }
    }

    pub fn backend_name(&self) -> String {
        lock(&self.instances.dataplane).name().to_string()
    }
}

fn fail(output: String) -> Response {
    Response {
        ok: false,
        output,
        ..Response::default()
    }
}

fn is_show(toks: &[&str]) -> bool {
    toks.first().is_some_and(|f| {
        let f = f.to_ascii_lowercase();
        f.len() >= 2 && "show".starts_with(&f)
    })
}

/// For a partial `show …` line: the words after `show` and the word being typed.
fn show_partial<'a>(line: &str, toks: &'a [&'a str]) -> Option<(&'a [&'a str], &'a str)> {
    if !is_show(toks) || (toks.len() < 2 && !line.ends_with(' ')) {
        return None;
    }
    Some(if line.ends_with(' ') {
        (&toks[1..], "")
    } else {
        (&toks[1..toks.len() - 1], toks[toks.len() - 1])
    })
}

fn help(session: &Session, line: &str) -> Vec<roamer_control::config::cli::grammar::HelpItem> {
    let toks = cli::tokens(line);
    match show_partial(line, &toks) {
        Some((done, partial)) => show::help(done, partial),
        None => session.help(line),
    }
}

fn complete(session: &Session, line: &str) -> Vec<String> {
    let toks = cli::tokens(line);
    match show_partial(line, &toks) {
        Some((done, partial)) => show::complete(done, partial),
        None => session.complete(line),
    }
}

/// Mode of the saved startup file: it holds keys (type 7 is only obfuscation).
pub const STARTUP_MODE: u32 = 0o600;

/// The directory of `path` and the prefix of its temporary files (`.NAME.tmp-PID`).
fn temporary_prefix(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "startup".into());
    (dir, format!(".{name}.tmp-"))
}

/// Removes the temporary files a crash during [`write_atomically`] of `path` left behind:
/// only `.NAME.tmp-PID` next to it, and only when no process PID is running. Returns them.
pub fn remove_stale_temporaries(path: &Path) -> Vec<PathBuf> {
    let (dir, prefix) = temporary_prefix(path);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists();
        let file = entry.file_type().is_ok_and(|t| t.is_file());
        if file && !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Writes `path` so that a crash at any moment leaves either the old or the new file:
/// a temporary file in the same directory, fsync, rename over the target, fsync the directory.
/// The file is created with mode [`STARTUP_MODE`], whatever the umask.
///
/// A file that is a mount point (containerlab and `docker run -v` bind the startup
/// configuration as a single file) cannot be renamed over (EBUSY): it is rewritten in place
/// instead, truncated and written with one write, then fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match write_by_rename(path, bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => write_in_place(path, bytes),
        other => other,
    }
}

fn write_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn write_by_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let (dir, prefix) = temporary_prefix(path);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| {
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(STARTUP_MODE)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(STARTUP_MODE))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A fresh interactive session.
/// The platform settings of `candidate` that differ from the running ones and that the data
/// plane, opened at start, cannot follow.
fn restart_needed(
    running: &roamer_hal::PlatformSpec,
    candidate: &roamer_hal::PlatformSpec,
) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if candidate.backend != running.backend {
        fields.push("backend");
    }
    if candidate.profile != running.profile {
        fields.push("profile");
    }
    // Ports are attached and detached at run time where the data plane can
    // (`Dataplane::move_ports`); one that cannot refuses the change there.
    fields
}

pub fn new_session() -> CliSession {
    CliSession::new(Session { mode: Mode::Exec })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("startup-config");
        write_atomically(&path, b"one\n").unwrap();
        write_atomically(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, STARTUP_MODE, "{mode:o}");
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("startup-config");
        // pid_max is at most 2^22: this process does not exist.
        let stale = dir.path().join(".startup-config.tmp-4999999");
        let own = dir
            .path()
            .join(format!(".startup-config.tmp-{}", std::process::id()));
        let other = dir.path().join(".other.tmp-4999999");
        let unrelated = dir.path().join(".startup-config.tmp-x");
        for f in [&stale, &own, &other, &unrelated] {
            std::fs::write(f, "x").unwrap();
        }
        let mut removed = remove_stale_temporaries(&path);
        removed.sort();
        let mut expected = vec![stale.clone(), own.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(other.exists() && unrelated.exists());
    }
}
