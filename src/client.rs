//! `roamer cli` (interactive, line editing, history, `?` help, TAB completion) and
//! `roamer exec` (commands from the command line), both talking to the daemon's socket.
//!
//! Pasted text and type-ahead: every line is executed in order as it arrives, as on a switch's
//! console. rustyline keeps the bytes it has read ahead between lines (its `buffer-redux`
//! feature; without it they were dropped with each line's reader), and a bracketed paste is
//! read key by key instead of being inserted as one multi-line string (inside it `?` and TAB
//! are text). On a terminal, a failed line stops the input: the rest of its paste and any line
//! already typed ahead (arriving within [`TYPE_AHEAD`]) is not executed, each such line is
//! named (`% not applied: …`). Lines from a pipe run like a script: all of them, exit status 1
//! if any failed.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Editor, Event, EventContext, EventHandler, Helper, KeyCode,
    KeyEvent, Modifiers, RepeatCount,
};

use crate::error::RoamerError;
use crate::protocol::{Request, Response};

/// One session with the daemon.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    path: PathBuf,
}

impl Connection {
    pub fn open(path: &Path) -> Result<Self, RoamerError> {
        let err = |source| RoamerError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(err)?;
        let writer = stream.try_clone().map_err(err)?;
        Ok(Connection {
            reader: BufReader::new(stream),
            writer,
            path: path.to_path_buf(),
        })
    }

    pub fn call(&mut self, req: &Request) -> Result<Response, RoamerError> {
        let err = |source| RoamerError::Connect {
            path: self.path.clone(),
            source,
        };
        let mut bytes = serde_json::to_vec(req).map_err(|e| err(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        // A session the daemon refused is closed already, but its reason can still be read.
        let written = self.writer.write_all(&bytes);
        let mut line = String::new();
        let n = match self.reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) => return Err(err(written.err().unwrap_or(e))),
        };
        if n == 0 {
            return Err(err(written.err().unwrap_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the daemon closed the session",
                )
            })));
        }
        let resp: Response =
            serde_json::from_str(&line).map_err(|e| err(std::io::Error::other(e)))?;
        if resp.closed {
            return Err(RoamerError::SessionClosed {
                message: resp.output,
            });
        }
        Ok(resp)
    }
}

/// `roamer exec "cmd; cmd"`: runs each command in one session, printing what it prints.
pub fn exec(socket: &Path, commands: &[String]) -> Result<(), RoamerError> {
    let mut conn = Connection::open(socket)?;
    let mut failed = 0;
    let mut in_config = false;
    let lines = commands
        .iter()
        .flat_map(|c| c.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty());
    // A batch that ends in configuration mode ends with an implicit `end`, so that a block
    // still incomplete (a `lisp site` without its key) is refused to this caller, not dropped.
    let implicit_end = std::iter::once("end");
    for (cmd, implicit) in lines
        .map(|l| (l, false))
        .chain(implicit_end.map(|l| (l, true)))
    {
        if implicit && !in_config {
            continue;
        }
        let resp = conn.call(&Request::Line {
            line: cmd.to_string(),
        })?;
        in_config = resp.prompt.contains("(config");
        if resp.ok {
            if let Err(e) = write_stdout(&resp.output) {
                // The reader went away (`roamer exec … | head`): stop quietly.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(RoamerError::Output(e));
            }
        } else {
            failed += 1;
            eprint!("{}", with_newline(&resp.output));
        }
    }
    if failed > 0 {
        Err(RoamerError::CommandsFailed { failed })
    } else {
        Ok(())
    }
}

/// Prints to stdout without panicking when it is a closed pipe.
fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn with_newline(s: &str) -> String {
    if s.ends_with('\n') || s.is_empty() {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

struct CliHelper {
    conn: Rc<RefCell<Connection>>,
}

impl Completer for CliHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(' ').map(|i| i + 1).unwrap_or(0);
        let words = match self.conn.borrow_mut().call(&Request::Complete {
            line: head.to_string(),
        }) {
            Ok(r) => r.words,
            Err(_) => Vec::new(),
        };
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: format!("{w} "),
                })
                .collect(),
        ))
    }
}

impl Hinter for CliHelper {
    type Hint = String;
}
impl Highlighter for CliHelper {}
impl Validator for CliHelper {}
impl Helper for CliHelper {}

/// What the key handlers tell the read loop: a pending `?` help request, and whether the
/// keys being read come from a bracketed paste (and which one).
#[derive(Debug, Default)]
struct Keys {
    help: Option<String>,
    /// `Some(n)` between the start and the end of the n-th bracketed paste.
    paste: Option<u64>,
    pastes: u64,
}

type SharedKeys = Arc<Mutex<Keys>>;

fn keys(shared: &SharedKeys) -> std::sync::MutexGuard<'_, Keys> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// `?` accepts the line as a help request instead of inserting the character, except inside
/// a paste, where it is text. (`Cmd::Insert`, not `SelfInsert`: rustyline replays a custom
/// binding's `SelfInsert` as the last insertion.)
struct QuestionMark {
    keys: SharedKeys,
}

impl ConditionalEventHandler for QuestionMark {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext<'_>) -> Option<Cmd> {
        let mut k = keys(&self.keys);
        if k.paste.is_some() {
            return Some(Cmd::Insert(1, "?".into()));
        }
        k.help = Some(ctx.line().to_string());
        Some(Cmd::AcceptLine)
    }
}

/// TAB completes, except inside a paste, where it is a blank.
struct Tab {
    keys: SharedKeys,
}

impl ConditionalEventHandler for Tab {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext<'_>) -> Option<Cmd> {
        keys(&self.keys)
            .paste
            .is_some()
            .then(|| Cmd::Insert(1, " ".into()))
    }
}

/// The start and end of a bracketed paste. rustyline would insert the whole paste into one
/// line (newlines included) and wait for Enter; instead its keys are read one by one, so
/// every pasted line is accepted and executed as it comes, as on a switch's console.
struct Paste {
    keys: SharedKeys,
    start: bool,
}

impl ConditionalEventHandler for Paste {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext<'_>) -> Option<Cmd> {
        let mut k = keys(&self.keys);
        if self.start {
            k.pastes += 1;
            k.paste = Some(k.pastes);
        } else {
            k.paste = None;
        }
        Some(Cmd::Noop)
    }
}

/// A line that arrives sooner than this after the prompt was typed ahead or pasted: no one
/// types a command and Enter this fast.
const TYPE_AHEAD: Duration = Duration::from_millis(200);

/// After a command fails, the input that was already waiting (the rest of a paste, lines
/// typed ahead) is not executed: a paste never applies in part past an error.
#[derive(Debug)]
struct Stopped {
    /// The failed line.
    line: String,
    /// The paste it came from, if any.
    paste: Option<u64>,
    /// Lines skipped since.
    skipped: usize,
}

/// `roamer cli`: an NX-OS-style shell on the running daemon.
pub fn interactive(socket: &Path) -> Result<(), RoamerError> {
    let conn = Rc::new(RefCell::new(Connection::open(socket)?));
    let editor_err = |e: ReadlineError| RoamerError::Editor(e.to_string());
    let mut rl: Editor<CliHelper, rustyline::history::DefaultHistory> =
        Editor::new().map_err(editor_err)?;
    rl.set_helper(Some(CliHelper { conn: conn.clone() }));
    let shared: SharedKeys = Arc::default();
    rl.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(QuestionMark {
            keys: shared.clone(),
        })),
    );
    rl.bind_sequence(
        KeyEvent(KeyCode::Tab, Modifiers::NONE),
        EventHandler::Conditional(Box::new(Tab {
            keys: shared.clone(),
        })),
    );
    for (code, start) in [
        (KeyCode::BracketedPasteStart, true),
        (KeyCode::BracketedPasteEnd, false),
    ] {
        rl.bind_sequence(
            KeyEvent(code, Modifiers::NONE),
            EventHandler::Conditional(Box::new(Paste {
                keys: shared.clone(),
                start,
            })),
        );
    }
    // Lines from a pipe run like a script: every line, each error reported, exit status 1 if
    // any failed.
    let terminal = std::io::stdin().is_terminal();
    let mut prompt = conn.borrow_mut().call(&Request::Prompt)?.prompt;
    let mut initial = String::new();
    let mut stopped: Option<Stopped> = None;
    let mut failed = 0;
    loop {
        let asked = Instant::now();
        let read = if initial.is_empty() {
            rl.readline(&format!("{prompt} "))
        } else {
            rl.readline_with_initial(&format!("{prompt} "), (&initial, ""))
        };
        let waited = asked.elapsed();
        initial.clear();
        let line = match read {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            // A script (lines from a pipe) fails if any of its lines did.
            Err(ReadlineError::Eof) if !terminal && failed > 0 => {
                return Err(RoamerError::CommandsFailed { failed });
            }
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(editor_err(e)),
        };
        let (help_line, paste) = {
            let mut k = keys(&shared);
            (k.help.take(), k.paste)
        };
        if let Some(s) = stopped.as_mut() {
            let same_paste = paste.is_some() && paste == s.paste;
            if same_paste || waited < TYPE_AHEAD {
                if s.skipped == 0 {
                    eprintln!(
                        "% stopped at the failed line \"{}\": the input after it is not applied",
                        s.line
                    );
                }
                s.skipped += 1;
                eprintln!("% not applied: {line}");
                continue;
            }
            stopped = None;
        }
        // `?` typed interactively, or a line ending in `?` when input is not a terminal.
        let help_for = help_line.or_else(|| line.strip_suffix('?').map(str::to_string));
        if let Some(partial) = help_for {
            let resp = conn.borrow_mut().call(&Request::Help {
                line: partial.clone(),
            })?;
            print_help(&resp);
            initial = partial;
            continue;
        }
        // A line holding several (pasted text inserted by other means) runs line by line.
        let mut lines = line.split(['\n', '\r']).filter(|l| !l.trim().is_empty());
        for one in lines.by_ref() {
            let _ = rl.add_history_entry(one);
            // As on NX-OS: `exit` (or `quit`, `logout`) outside configuration mode ends the
            // session (a console login returns to its login prompt).
            if matches!(one.trim(), "exit" | "quit" | "logout") && !prompt.contains("(config") {
                return Ok(());
            }
            let resp = conn
                .borrow_mut()
                .call(&Request::Line { line: one.into() })?;
            prompt = resp.prompt;
            if resp.ok {
                if write_stdout(&resp.output).is_err() {
                    return Ok(()); // stdout is gone (a closed pipe)
                }
                continue;
            }
            failed += 1;
            eprint!("{}", with_newline(&resp.output));
            if terminal {
                eprintln!("% failed: {one}");
                stopped = Some(Stopped {
                    line: one.into(),
                    paste,
                    skipped: 0,
                });
                break;
            }
        }
        for rest in lines {
            eprintln!("% not applied: {rest}");
        }
    }
}

fn print_help(resp: &Response) {
    if resp.help.is_empty() {
        println!("% Invalid command");
        return;
    }
    let width = resp
        .help
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(0)
        .max(10);
    for (token, text) in &resp.help {
        println!("  {token:<width$}  {text}");
    }
}
