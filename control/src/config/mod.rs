//! The configuration: one model ([`model::Config`]), two syntaxes ([`toml_file`] and [`cli`]),
//! and validation that points at the offending line in either.

pub mod cli;
pub mod model;
pub mod path;
pub mod secret;
pub mod toml_file;
pub mod validate;

pub use model::*;
pub use path::{ConfigPath, SourceMap};

/// The default host name, as on a factory-fresh Nexus.
pub const DEFAULT_HOSTNAME: &str = "switch";

/// 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The syntax a configuration text is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Toml,
    Cli,
}

impl Syntax {
    /// Recognises the syntax from the content (startup files carry no extension rules).
    pub fn detect(text: &str) -> Self {
        if cli::looks_like_cli(text) {
            Syntax::Cli
        } else {
            Syntax::Toml
        }
    }
}

/// Parses a text in the given syntax.
pub fn parse(text: &str, syntax: Syntax) -> Result<(Config, SourceMap), Vec<crate::ControlError>> {
    match syntax {
        Syntax::Toml => toml_file::parse(text),
        Syntax::Cli => cli::parse(text),
    }
}

/// Renders a configuration in the given syntax (canonical form).
pub fn render(cfg: &Config, syntax: Syntax) -> String {
    match syntax {
        Syntax::Toml => toml_file::render(cfg),
        Syntax::Cli => cli::render(cfg),
    }
}
