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
    let text = std::fs::read_to_string(path).map_err(|source| RoamerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_text(path, &text, catalogue)
}

/// Checks a configuration text; `path` is only used to name it in diagnostics.
pub fn check_text(path: &Path, text: &str, catalogue: &Catalogue) -> Result<Loaded, RoamerError> {
    let syntax = Syntax::detect(text);
    let parsed = config::parse(text, syntax);
    check_parsed(path, parsed, syntax, catalogue)
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
