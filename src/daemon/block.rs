//! Configuration blocks of an interactive session: a sub-mode such as `lisp site NAME` whose
//! object cannot be valid after its first line (the site needs its `authentication-key`, which
//! can only be typed inside the sub-mode).
//!
//! As on NX-OS, such a block is validated when it is complete: a line of a block sub-mode that
//! leaves the candidate configuration invalid is kept in the session's pending block rather than
//! refused; the block is committed as soon as it is valid, and checked when the session leaves
//! the sub-mode (`exit`, `end`, or a command of another mode). If it is still invalid then,
//! nothing of it is applied and every error names the line of the block it comes from. Errors
//! in any other mode are still reported at once, and a line that does not parse is refused at
//! once in every mode.
//!
//! A session that ends (the client closes the connection) inside an incomplete block applies
//! nothing of it, and the daemon logs a warning.

use roamer_control::config::cli::Session;
use roamer_control::config::cli::commands::{Effect, Mode};
use roamer_control::config::validate::{Severity, validate};
use roamer_control::config::{Config, ConfigPath};
use tracing::warn;

use super::{State, fail};
use crate::protocol::Response;

/// A session of the control socket: the parser's session and the block in progress.
#[derive(Debug)]
pub struct CliSession {
    pub session: Session,
    pending: Option<Pending>,
}

/// A block not valid yet.
#[derive(Debug)]
struct Pending {
    /// The mode the block is in (`Site(NAME)` …).
    mode: Mode,
    /// The session's mode before the block's first line.
    start_mode: Mode,
    /// The block's lines since it became invalid, with the element each one touched.
    lines: Vec<(String, Option<ConfigPath>)>,
}

impl CliSession {
    pub fn new(session: Session) -> Self {
        CliSession {
            session,
            pending: None,
        }
    }
}

impl Drop for CliSession {
    fn drop(&mut self) {
        if let Some(p) = &self.pending {
            warn!(
                block = ?p.mode,
                lines = p.lines.len(),
                "session ended inside an incomplete configuration block: nothing of it applied"
            );
        }
    }
}

/// Modes whose lines are validated as one block.
fn is_block_mode(mode: &Mode) -> bool {
    matches!(mode, Mode::Site(_) | Mode::DynamicEid(_))
}

/// `mode` is the block's mode (or one of its sub-modes).
fn inside(block: &Mode, mode: &Mode) -> bool {
    mode == block || mode.parent().as_ref() == Some(block)
}

impl State {
    /// The running configuration with the pending block's lines applied again: the block is
    /// kept as lines, not as a copy of the configuration, so that what other sessions commit
    /// meanwhile is not overwritten when the block is.
    fn replay(&self, p: &Pending) -> Result<Config, String> {
        let mut candidate = self.running.clone();
        let mut session = Session {
            mode: p.start_mode.clone(),
        };
        for (text, _) in &p.lines {
            session
                .execute(&mut candidate, text)
                .map_err(|e| format!("% '{text}': {e}\n"))?;
        }
        candidate.normalize();
        Ok(candidate)
    }

    /// One configuration or exec line of an interactive session.
    pub(super) fn line(&mut self, cli: &mut CliSession, line: &str) -> Response {
        let saved_mode = cli.session.mode.clone();
        let base = match cli.pending.as_ref().map(|p| self.replay(p)) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                // Another session changed what the block builds on.
                let p = cli.pending.take();
                if let Some(p) = p {
                    cli.session.mode = p.mode.parent().unwrap_or(Mode::Config);
                }
                return fail(format!(
                    "{e}% the configuration changed under the block: not applied\n"
                ));
            }
        };
        let mut candidate = base.clone().unwrap_or_else(|| self.running.clone());
        let outcome = match cli.session.execute(&mut candidate, line) {
            Ok(o) => o,
            Err(e) => return fail(format!("% {e}")),
        };
        if let Effect::Exec(command) = outcome.effect {
            return self.exec(&command);
        }
        let text = line.trim().to_string();
        candidate.normalize();
        if let (Some(mut p), Some(base)) = (cli.pending.take(), base) {
            if inside(&p.mode, &cli.session.mode) {
                p.lines.push((text, outcome.touched));
                return match self.check(&candidate, None) {
                    Ok((plan, warnings)) => match self.commit(candidate, plan) {
                        Ok(refused) => committed(warnings + &refused, &refused),
                        Err(errors) => fail(errors),
                    },
                    Err(_) => {
                        cli.pending = Some(p);
                        ok(String::new())
                    }
                };
            }
            // The line leaves the block: the block is complete.
            return match self.check(&base, None) {
                Ok((plan, warnings)) => {
                    let refused = match self.commit(base, plan) {
                        Ok(refused) => refused,
                        Err(errors) => return fail(errors),
                    };
                    // The leaving line again, on the new running configuration.
                    cli.session.mode = saved_mode;
                    let mut resp = self.line(cli, line);
                    resp.output = warnings + &refused + &resp.output;
                    resp.ok &= refused.is_empty();
                    resp
                }
                Err(errors) => {
                    let changed = candidate != base;
                    let mut out = block_errors(&p, &base, &errors);
                    if changed {
                        out.push_str(&format!("% '{text}' not applied either\n"));
                    }
                    if changed || cli.session.mode != Mode::Exec {
                        cli.session.mode = p.mode.parent().unwrap_or(Mode::Config);
                    }
                    fail(out)
                }
            };
        }
        if candidate == self.running {
            return ok(String::new());
        }
        match self.check(&candidate, None) {
            Ok((plan, warnings)) => match self.commit(candidate, plan) {
                Ok(refused) => committed(warnings + &refused, &refused),
                Err(errors) => {
                    cli.session.mode = saved_mode;
                    fail(errors)
                }
            },
            Err(_) if is_block_mode(&cli.session.mode) => {
                cli.pending = Some(Pending {
                    mode: cli.session.mode.clone(),
                    start_mode: saved_mode,
                    lines: vec![(text, outcome.touched)],
                });
                ok(String::new())
            }
            Err(errors) => {
                cli.session.mode = saved_mode;
                fail(errors)
            }
        }
    }
}

fn ok(output: String) -> Response {
    Response {
        ok: true,
        output,
        ..Response::default()
    }
}

/// The errors of an invalid block, each with the command of the block it is about: the last
/// line that touched the element (or one of its ancestors), else the block's first line.
fn block_errors(p: &Pending, candidate: &Config, fallback: &str) -> String {
    let issues: Vec<_> = validate(candidate)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    let block = match &p.mode {
        Mode::Site(name) => format!("lisp site {name}"),
        Mode::DynamicEid(name) => format!("lisp dynamic-eid {name}"),
        other => format!("{other:?}"),
    };
    let mut out = format!("% {block}: not valid when its block ended, not applied:\n");
    if issues.is_empty() {
        out.push_str(fallback);
        return out;
    }
    for issue in issues {
        let mut at = None;
        let mut path = Some(issue.path.clone());
        while at.is_none()
            && let Some(cur) = path
        {
            at = p
                .lines
                .iter()
                .enumerate()
                .rev()
                .find(|(_, (_, touched))| touched.as_ref() == Some(&cur));
            path = cur.parent();
        }
        match at.or_else(|| p.lines.first().map(|l| (0, l))) {
            Some((_, (text, _))) => out.push_str(&format!("% '{text}': {}\n", issue.error)),
            None => out.push_str(&format!("% {}\n", issue.error)),
        }
    }
    out
}

/// The response to a committed change: failed when the data plane refused some of its table
/// operations (they are in `output`, with table, card and capacity).
fn committed(output: String, refused: &str) -> Response {
    if refused.is_empty() {
        ok(output)
    } else {
        fail(output)
    }
}
