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

/// Parses a text in the given syntax. A text holding a NUL is binary, not a configuration:
/// refused at its first such line.
pub fn parse(text: &str, syntax: Syntax) -> Result<(Config, SourceMap), Vec<crate::ControlError>> {
    if let Some(index) = text.lines().position(|l| l.contains('\0')) {
        return Err(vec![crate::ControlError::ConfigSyntax {
            line: index + 1,
            message: "not a text configuration: binary data (a NUL byte)".into(),
        }]);
    }
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

#[cfg(test)]
mod binary_tests {
    use super::*;

    #[test]
    fn a_nul_byte_is_refused_at_its_line_in_either_syntax() {
        for syntax in [Syntax::Cli, Syntax::Toml] {
            let errors = parse("hostname a\n\nfeat\0ure lisp\n", syntax).unwrap_err();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].line(), Some(3), "{syntax:?}");
            assert!(errors[0].to_string().contains("binary"), "{}", errors[0]);
        }
    }
}
