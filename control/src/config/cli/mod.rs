//! The NX-OS CLI syntax: a mode-aware parser that accepts pasted sessions (prompts included),
//! abbreviations and `no` forms, and a canonical renderer.

pub mod commands;
pub mod grammar;
pub mod render;

use std::collections::BTreeMap;

use commands::{COMMANDS, Ctx, Effect, Mode, grammar};
use grammar::{HelpItem, MatchError, Matched};

use super::model::Config;
use super::path::{ConfigPath, SourceMap};
use crate::ControlError;

pub use render::render;

/// Removes a pasted prompt such as `switch(config-if)# `, `switch((config-lisp-dynamic-eid)#`,
/// `switch # ` or `switch(config-if) ` (a prompt whose `#` was lost in the document).
pub fn strip_prompt(line: &str) -> &str {
    let trimmed = line.trim_start();
    let host_end = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .unwrap_or(trimmed.len());
    if host_end == 0 {
        return trimmed;
    }
    let mut rest = trimmed[host_end..].trim_start_matches(' ');
    let mut had_mode = false;
    if rest.starts_with('(') {
        let open = rest.len() - rest.trim_start_matches('(').len();
        let body = &rest[open..];
        let Some(close) = body.find(')') else {
            return trimmed;
        };
        let mode = &body[..close];
        if !mode.starts_with("config")
            || !mode.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return trimmed;
        }
        rest = body[close..].trim_start_matches(')');
        had_mode = true;
    }
    let rest_trimmed = rest.trim_start_matches(' ');
    if let Some(after) = rest_trimmed.strip_prefix('#') {
        return after.trim_start();
    }
    if had_mode && rest.starts_with(' ') {
        return rest_trimmed;
    }
    trimmed
}

/// The words of a line, after removing a prompt and a `!` comment line.
pub fn tokens(line: &str) -> Vec<&str> {
    let body = strip_prompt(line);
    if body.starts_with('!') {
        return Vec::new();
    }
    body.split_whitespace().collect()
}

/// A CLI session: the current mode, applied to a configuration one line at a time.
#[derive(Debug, Clone)]
pub struct Session {
    pub mode: Mode,
}

/// What executing a line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub effect: Effect,
    /// The element the line created or changed.
    pub touched: Option<ConfigPath>,
}

impl Session {
    /// An interactive session starts in exec mode.
    pub fn exec() -> Self {
        Session { mode: Mode::Exec }
    }

    /// A configuration file is read in configuration mode.
    pub fn file() -> Self {
        Session { mode: Mode::Config }
    }

    /// Applies one line to `cfg`. On error neither `cfg` nor the mode changes.
    pub fn execute(&mut self, cfg: &mut Config, line: &str) -> Result<Outcome, ControlError> {
        self.run_line(cfg, line, true)
    }

    /// Like [`Session::execute`], but a failing line may leave `cfg` partly changed: for
    /// reading whole files, where any error discards the result (and copying the whole
    /// configuration per line would make reading quadratic).
    pub fn execute_in_place(
        &mut self,
        cfg: &mut Config,
        line: &str,
    ) -> Result<Outcome, ControlError> {
        self.run_line(cfg, line, false)
    }

    fn run_line(
        &mut self,
        cfg: &mut Config,
        line: &str,
        atomic: bool,
    ) -> Result<Outcome, ControlError> {
        let toks = tokens(line);
        if toks.is_empty() {
            return Ok(Outcome {
                effect: Effect::None,
                touched: None,
            });
        }
        let (negated, body) = match toks.first() {
            Some(first) if first.eq_ignore_ascii_case("no") => (true, &toks[1..]),
            _ => (false, &toks[..]),
        };
        if body.is_empty() {
            return Err(ControlError::IncompleteCommand {
                command: toks.join(" "),
            });
        }
        // Try the current mode, then each parent (NX-OS leaves a sub-mode for a command that
        // belongs to an enclosing one, which is what makes pasted configurations work).
        let mut best_err: Option<(usize, ControlError)> = None;
        let mut mode = Some(self.mode.clone());
        while let Some(m) = mode {
            match grammar(m.kind()).matches(body, negated) {
                Ok(Matched { command, args }) => {
                    let text = strip_prompt(line).trim().to_string();
                    let mut scratch = if atomic { Some(cfg.clone()) } else { None };
                    let target = match scratch.as_mut() {
                        Some(copy) => copy,
                        None => &mut *cfg,
                    };
                    let mut ctx = Ctx {
                        cfg: target,
                        mode: m,
                        args: &args,
                        negated,
                        line: &text,
                        touched: None,
                        effect: Effect::None,
                    };
                    (COMMANDS[command].action)(&mut ctx)?;
                    let (new_mode, touched, effect) = (ctx.mode, ctx.touched, ctx.effect);
                    if let Some(copy) = scratch {
                        *cfg = copy;
                    }
                    self.mode = new_mode;
                    return Ok(Outcome { effect, touched });
                }
                Err(e) => {
                    let (depth, err) = describe(e, body, &m);
                    if best_err.as_ref().is_none_or(|(d, _)| depth > *d) {
                        best_err = Some((depth, err));
                    }
                }
            }
            mode = m.parent();
        }
        Err(best_err
            .map(|(_, e)| e)
            .unwrap_or_else(|| ControlError::IncompleteCommand {
                command: toks.join(" "),
            }))
    }

    /// `?` help for a partial line in the current mode.
    pub fn help(&self, partial_line: &str) -> Vec<HelpItem> {
        let (done, partial) = split_partial(partial_line);
        let body = strip_no(&done);
        grammar(self.mode.kind()).help(&body, partial)
    }

    /// TAB completion: the keywords that complete the last word.
    pub fn complete(&self, partial_line: &str) -> Vec<String> {
        let (done, partial) = split_partial(partial_line);
        let body = strip_no(&done);
        grammar(self.mode.kind()).complete(&body, partial)
    }
}

fn split_partial(line: &str) -> (Vec<&str>, &str) {
    let toks = tokens(line);
    if line.ends_with(' ') || toks.is_empty() {
        (toks, "")
    } else {
        let (last, rest) = toks
            .split_last()
            .map(|(l, r)| (*l, r.to_vec()))
            .unwrap_or(("", Vec::new()));
        (rest, last)
    }
}

fn strip_no<'a>(toks: &[&'a str]) -> Vec<&'a str> {
    match toks.first() {
        Some(f) if f.eq_ignore_ascii_case("no") => toks[1..].to_vec(),
        _ => toks.to_vec(),
    }
}

fn mode_name(m: &Mode) -> &'static str {
    match m {
        Mode::Exec => "exec",
        Mode::Config => "configuration",
        Mode::Interface(_) => "interface",
        Mode::Hsrp(..) => "HSRP group",
        Mode::DynamicEid(_) => "dynamic-EID",
        Mode::Site(_) => "LISP site",
        Mode::Vlan(_) => "VLAN",
    }
}

/// Turns a match failure into an operator error, ranked by how far the line got.
fn describe(e: MatchError, body: &[&str], mode: &Mode) -> (usize, ControlError) {
    match e {
        MatchError::Invalid { at, expected } => {
            let token = body.get(at).copied().unwrap_or_default().to_string();
            let suggestion = closest(&token, &expected);
            (
                at,
                ControlError::UnknownKeyword {
                    token,
                    mode: mode_name(mode),
                    suggestion,
                },
            )
        }
        MatchError::Ambiguous { at, candidates } => (
            at + 1,
            ControlError::AmbiguousKeyword {
                token: body.get(at).copied().unwrap_or_default().to_string(),
                candidates,
            },
        ),
        MatchError::Incomplete => (
            body.len(),
            ControlError::IncompleteCommand {
                command: body.join(" "),
            },
        ),
    }
}

/// The expected keyword nearest to a mistyped one (edit distance at most 2).
fn closest(token: &str, expected: &[String]) -> Option<String> {
    expected
        .iter()
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(|w| (edit_distance(&token.to_ascii_lowercase(), w), w))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, w)| w.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads a CLI-syntax configuration text. Every bad line is reported with its line number;
/// exec commands (`show …`, `copy …`) in a file are accepted and skipped.
pub fn parse(text: &str) -> Result<(Config, SourceMap), Vec<ControlError>> {
    apply(text, Config::default())
}

/// Applies a CLI-syntax text on top of `base` (NX-OS `copy FILE running-config` merges).
pub fn apply(text: &str, base: Config) -> Result<(Config, SourceMap), Vec<ControlError>> {
    let mut cfg = base;
    let mut session = Session::file();
    let mut lines = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match session.execute_in_place(&mut cfg, line) {
            Ok(outcome) => {
                if let Some(path) = outcome.touched {
                    lines.entry(path).or_insert(i + 1);
                }
            }
            Err(e) => errors.push(ControlError::AtLine {
                line: i + 1,
                error: Box::new(e),
            }),
        }
        // A file never leaves configuration mode: `end` in a pasted session means "done".
        if session.mode == Mode::Exec {
            session.mode = Mode::Config;
        }
    }
    if errors.is_empty() {
        cfg.normalize();
        Ok((cfg, SourceMap::Cli(lines)))
    } else {
        Err(errors)
    }
}

/// True when a text looks like CLI syntax rather than TOML (for startup files of either).
pub fn looks_like_cli(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'));
    match first {
        None => false,
        Some(l) => {
            !(l.starts_with('[')
                || l.contains(" = ")
                || l.contains("=\"")
                || l.split_whitespace().nth(1) == Some("="))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_stripped() {
        let cases = [
            ("switch# configure terminal", "configure terminal"),
            (
                "switch(config)# lisp dynamic-eid Roamer-1",
                "lisp dynamic-eid Roamer-1",
            ),
            ("switch((config-lisp-dynamic-eid)#", ""),
            (
                "switch(config-lisp-dynamic-eid)# map-server 10.1.1.1 key 3 1c27564ab1212434",
                "map-server 10.1.1.1 key 3 1c27564ab1212434",
            ),
            (
                "switch # show lisp dynamic-eid summary",
                "show lisp dynamic-eid summary",
            ),
            ("switch(config-if) exit", "exit"),
            ("  ip address 10.1.1.1/24", "ip address 10.1.1.1/24"),
            ("description uplink #1", "description uplink #1"),
            ("n7k-dc1(config-if-hsrp)# ip 10.3.3.1", "ip 10.3.3.1"),
        ];
        for (input, out) in cases {
            assert_eq!(strip_prompt(input), out, "{input}");
        }
    }

    #[test]
    fn modes_nest_and_parents_take_over() {
        let text = "feature lisp\nfeature interface-vlan\nfeature hsrp\nlisp dynamic-eid Roamer-1\n  database-mapping 172.16.1.0/24 10.1.1.1 priority 1 weight 100\n  map-notify-group 239.1.1.254\ninterface VLAN 10\n  ip 10.3.3.5/24\n  lisp mobility Roamer-1\n  hsrp 100\n    ip 10.3.3.1\n  ip proxy-arp\n";
        let (cfg, map) = parse(text).unwrap();
        let map_cfg = &cfg.lisp.dynamic_eid["Roamer-1"];
        assert_eq!(map_cfg.database_mapping.len(), 1);
        assert_eq!(
            map_cfg.map_notify_group,
            Some("239.1.1.254".parse().unwrap())
        );
        let vlan10 = &cfg.interfaces[&"Vlan10".parse().unwrap()];
        assert!(
            vlan10.proxy_arp,
            "ip proxy-arp after hsrp mode belongs to the interface"
        );
        assert_eq!(vlan10.hsrp[0].ip, Some("10.3.3.1".parse().unwrap()));
        assert_eq!(
            map.line(&ConfigPath::hsrp("Vlan10", 100).key("ip")),
            Some(11)
        );
    }

    #[test]
    fn errors_name_line_token_and_suggestion() {
        let text = "feature lisp\nip lisp itr-etr\nip lisp databse-mapping 1.0.0.0/8 1.1.1.1 priority 1 weight 1\n";
        let errs = parse(text).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line(), Some(3));
        let msg = errs[0].to_string();
        assert!(
            msg.contains("databse-mapping") && msg.contains("did you mean 'database-mapping'"),
            "{msg}"
        );
    }

    #[test]
    fn no_forms_undo() {
        let mut cfg = Config::default();
        let mut s = Session::file();
        for line in [
            "feature lisp",
            "lisp dynamic-eid R",
            "map-server 10.1.1.1 key 0 cisco",
            "map-server 10.1.1.1 proxy-reply",
        ] {
            s.execute(&mut cfg, line).unwrap();
        }
        assert_eq!(cfg.lisp.dynamic_eid["R"].map_server.len(), 1);
        s.execute(&mut cfg, "no map-server 10.1.1.1 proxy-reply")
            .unwrap();
        assert!(!cfg.lisp.dynamic_eid["R"].map_server[0].proxy_reply);
        s.execute(&mut cfg, "no map-server 10.1.1.1 key 0 cisco")
            .unwrap();
        assert!(cfg.lisp.dynamic_eid["R"].map_server.is_empty());
        s.execute(&mut cfg, "exit").unwrap();
        s.execute(&mut cfg, "no lisp dynamic-eid R").unwrap();
        assert!(cfg.lisp.dynamic_eid.is_empty());
        assert!(s.execute(&mut cfg, "no lisp dynamic-eid R").is_err());
    }

    #[test]
    fn failed_line_changes_nothing() {
        let mut cfg = Config::default();
        let mut s = Session::file();
        s.execute(&mut cfg, "interface Ethernet1/1").unwrap();
        let before = cfg.clone();
        assert!(
            s.execute(&mut cfg, "ip address 10.0.0.1/24").is_err(),
            "switched port"
        );
        assert_eq!(cfg, before);
        assert_eq!(s.mode, Mode::Interface("Ethernet1/1".parse().unwrap()));
    }

    #[test]
    fn syntax_detection() {
        assert!(looks_like_cli("hostname a\nfeature lisp\n"));
        assert!(looks_like_cli("switch# configure terminal\n"));
        assert!(!looks_like_cli("hostname = \"a\"\n"));
        assert!(!looks_like_cli("# comment\n[platform]\n"));
    }
}
