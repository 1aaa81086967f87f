//! Loading a configuration file and checking all of it, with `FILE:LINE: message` diagnostics.

use std::path::{Path, PathBuf};

use roamer_control::config::validate::{Severity, validate};
use roamer_control::config::{self, Config, ConfigPath, SourceMap, Syntax};
use roamer_hal::Catalogue;
use roamer_platforms::{FeatureRequest, PlatformPlan, Subject, plan};

use crate::error::RoamerError;

/// One finding, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub warning: bool,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.warning { "warning: " } else { "" };
        write!(
            f,
            "{}:{}: {kind}{}",
            self.path.display(),
            self.line,
            self.message
        )
    }
}

/// A configuration that passed every check (warnings may remain).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub syntax: Syntax,
    pub plan: PlatformPlan,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and checks a file. `Err(Invalid)` carries every finding, warnings included.
pub fn load(path: &Path, catalogue: &Catalogue) -> Result<Loaded, RoamerError> {
    let text = read_text(path)?;
    check_text(path, &text, catalogue)
}

/// Reads a configuration file as text. A file that is not text (not UTF-8, or holding a NUL)
/// is refused with `FILE:LINE:` naming its first such line.
pub fn read_text(path: &Path) -> Result<String, RoamerError> {
    let bytes = std::fs::read(path).map_err(|source| RoamerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text_of(path, bytes)
}

/// `bytes` as text, or the `FILE:LINE:` of the first line that is not text.
pub fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, RoamerError> {
    let bad = bytes
        .split(|&b| b == b'\n')
        .position(|line| line.contains(&0) || std::str::from_utf8(line).is_err());
    match bad {
        None => String::from_utf8(bytes).map_err(|e| RoamerError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Some(index) => Err(RoamerError::Invalid {
            path: path.to_path_buf(),
            diagnostics: vec![Diagnostic {
                path: path.to_path_buf(),
                line: index + 1,
                warning: false,
                message: "not a text configuration file: binary data (a NUL byte or invalid UTF-8)"
                    .into(),
            }],
        }),
    }
}

/// Whether a configuration text holds no command: only blank lines and comments.
pub fn is_empty_config(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('!') || l.starts_with('#'))
}

/// The warning an empty configuration file gets (it is taken as an empty CLI configuration).
pub const EMPTY_CONFIG: &str = "empty startup configuration (no commands): the defaults apply, \
     and `copy running-config startup-config` writes it as CLI";

/// Checks a configuration text; `path` is only used to name it in diagnostics. An empty text
/// is an empty CLI configuration, with a warning.
pub fn check_text(path: &Path, text: &str, catalogue: &Catalogue) -> Result<Loaded, RoamerError> {
    let empty = is_empty_config(text);
    let syntax = if empty {
        Syntax::Cli
    } else {
        Syntax::detect(text)
    };
    let parsed = config::parse(text, syntax);
    let mut loaded = check_parsed(path, parsed, syntax, catalogue)?;
    if empty {
        loaded.warnings.insert(
            0,
            Diagnostic {
                path: path.to_path_buf(),
                line: 1,
                warning: true,
                message: EMPTY_CONFIG.into(),
            },
        );
    }
    Ok(loaded)
}

/// Turns a parse result into a checked configuration: validation and platform admission,
/// every finding positioned through the parse's source map.
pub fn check_parsed(
    path: &Path,
    parsed: Result<(Config, SourceMap), Vec<roamer_control::ControlError>>,
    syntax: Syntax,
    catalogue: &Catalogue,
) -> Result<Loaded, RoamerError> {
    let diag = |line: usize, warning: bool, message: String| Diagnostic {
        path: path.to_path_buf(),
        line,
        warning,
        message,
    };
    let invalid = |diagnostics: Vec<Diagnostic>| RoamerError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };
    let (config, sources) = parsed.map_err(|errors| {
        invalid(
            errors
                .iter()
                .map(|e| diag(e.line().unwrap_or(1), false, e.to_string()))
                .collect(),
        )
    })?;

    let at = |p: &ConfigPath| sources.line(p).unwrap_or(1);
    let mut diagnostics: Vec<Diagnostic> = validate(&config)
        .into_iter()
        .map(|i| {
            let mut message = i.error.to_string();
            if let Some(also) = &i.also {
                message.push_str(&format!(" (at {}:{})", path.display(), at(also)));
            }
            diag(at(&i.path), i.severity == Severity::Warning, message)
        })
        .collect();

    let features = FeatureRequest {
        lisp: config.features.lisp,
        interface_vlan: config.features.interface_vlan,
    };
    let plan = match plan(&config.platform, features, catalogue) {
        Ok(plan) => Some(plan),
        Err(problems) => {
            for p in problems {
                let line = platform_line(&config, &sources, p.subject);
                diagnostics.push(diag(line, false, p.error.to_string()));
            }
            None
        }
    };
    diagnostics.sort_by_key(|d| d.line);
    match plan {
        Some(plan) if diagnostics.iter().all(|d| d.warning) => Ok(Loaded {
            config,
            syntax,
            plan,
            warnings: diagnostics,
        }),
        _ => Err(invalid(diagnostics)),
    }
}

fn platform_line(config: &Config, sources: &SourceMap, subject: Subject) -> usize {
    let path = match subject {
        Subject::Profile => ConfigPath::platform("profile"),
        Subject::Release => ConfigPath::platform("release"),
        Subject::Backend => ConfigPath::platform("backend"),
        // A missing licence is best shown at the list, or at the feature that needs it.
        Subject::Licenses if config.platform.licenses.is_empty() => ConfigPath::feature("lisp"),
        Subject::Licenses => ConfigPath::platform("licenses"),
        Subject::FeatureLisp => ConfigPath::feature("lisp"),
        Subject::FeatureInterfaceVlan => ConfigPath::feature("interface-vlan"),
        Subject::Linecard { index, epld } => match config.platform.linecards.get(index) {
            Some(card) if epld => ConfigPath::linecard(card.slot.0).key("epld"),
            Some(card) => ConfigPath::linecard(card.slot.0).key("model"),
            None => ConfigPath::platform("linecard"),
        },
    };
    sources.line(&path).unwrap_or(1)
}

/// A sentence on what the configuration holds, for `roamer validate`.
pub fn describe(cfg: &Config) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let hsrp: usize = cfg.interfaces.values().map(|i| i.hsrp.len()).sum();
    format!(
        "Configured: {}, {}, {}, {}, {}, {}.",
        count(cfg.vlans.len(), "VLAN"),
        count(cfg.interfaces.len(), "interface"),
        count(hsrp, "HSRP group"),
        count(cfg.lisp.dynamic_eid.len(), "dynamic-EID map"),
        count(cfg.lisp.site.len(), "LISP site"),
        count(cfg.routes.len(), "static route"),
    )
}
