//! Loading a configuration file and checking all of it, with `FILE:LINE: message` diagnostics.

use std::path::{Path, PathBuf};

use roamer_control::config::{Config, toml_file};
use roamer_hal::Catalogue;
use roamer_platforms::{FeatureRequest, PlatformPlan, Subject, plan};

use crate::error::RoamerError;

/// One problem, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// A configuration that passed every check.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub plan: PlatformPlan,
}

/// Reads and checks a file; `Err(Invalid)` carries every diagnostic found.
pub fn load(path: &Path, catalogue: &Catalogue) -> Result<Loaded, RoamerError> {
    let text = std::fs::read_to_string(path).map_err(|source| RoamerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let diag = |line: usize, message: String| Diagnostic {
        path: path.to_path_buf(),
        line,
        message,
    };
    let invalid = |diagnostics: Vec<Diagnostic>| RoamerError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };

    let (config, loc) = toml_file::parse(&text).map_err(|errors| {
        invalid(
            errors
                .iter()
                .map(|e| diag(e.line().unwrap_or(1), e.to_string()))
                .collect(),
        )
    })?;

    let features = FeatureRequest {
        lisp: config.features.lisp,
    };
    let plan = plan(&config.platform, features, catalogue).map_err(|problems| {
        invalid(
            problems
                .iter()
                .map(|p| {
                    let line = match p.subject {
                        Subject::Profile => loc.profile,
                        Subject::Release => loc.release.or(loc.profile),
                        Subject::Licenses => loc.licenses.or(loc.feature_lisp),
                        Subject::Backend => loc.backend,
                        Subject::FeatureLisp => loc.feature_lisp,
                        Subject::Linecard { index, epld } => loc.linecards.get(index).map(|l| {
                            if epld {
                                l.epld.unwrap_or(l.model)
                            } else {
                                l.model
                            }
                        }),
                    };
                    diag(line.unwrap_or(1), p.error.to_string())
                })
                .collect(),
        )
    })?;
    Ok(Loaded { config, plan })
}
