//! The TOML syntax of the configuration: the model's serde form, with lines kept for diagnostics.

use super::line_of;
use super::model::Config;
use super::path::SourceMap;
use crate::ControlError;

/// Parses the TOML syntax.
pub fn parse(text: &str) -> Result<(Config, SourceMap), Vec<ControlError>> {
    let mut cfg: Config = toml::from_str(text).map_err(|e| {
        vec![ControlError::ConfigSyntax {
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        }]
    })?;
    cfg.normalize();
    Ok((cfg, SourceMap::Toml(text.to_string())))
}

/// Renders the canonical TOML form.
pub fn render(cfg: &Config) -> String {
    // Serializing plain data with string keys cannot fail; keep the error visible if it does.
    toml::to_string(cfg).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::path::ConfigPath;
    use roamer_hal::{BackendKind, ProfileKind};

    const EXAMPLE: &str = r#"hostname = "n7k-dc1"
[platform]
profile = "n7k"            # n7k | vm | clab | whitebox
release = "8.2(1)"
licenses = ["LAN_ENTERPRISE_SERVICES_PKG"]
backend = "sim"            # sim | software | kernel
[[platform.linecard]]
slot = 1
model = "N7K-M132XP-12"
epld = "186.008"
[features]
lisp = true
"#;

    #[test]
    fn parses_the_foundation_example_with_lines() {
        let (cfg, map) = parse(EXAMPLE).unwrap();
        assert_eq!(cfg.hostname, "n7k-dc1");
        assert_eq!(cfg.platform.profile, ProfileKind::N7k);
        assert_eq!(cfg.platform.backend, BackendKind::Sim);
        assert_eq!(cfg.platform.linecards.len(), 1);
        assert!(cfg.features.lisp);
        assert_eq!(map.line(&ConfigPath::platform("licenses")), Some(5));
        assert_eq!(map.line(&ConfigPath::feature("lisp")), Some(12));
        assert_eq!(map.line(&ConfigPath::linecard(1).key("epld")), Some(10));
    }

    #[test]
    fn unknown_key_names_its_line() {
        let text = EXAMPLE.replace("lisp = true", "lsip = true");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs[0].line(), Some(12));
        assert!(errs[0].to_string().contains("lsip"), "{}", errs[0]);
    }

    #[test]
    fn bad_values_name_their_line() {
        let errs = parse(&EXAMPLE.replace("8.2(1)", "eight")).unwrap_err();
        assert_eq!(errs[0].line(), Some(4));
        assert!(errs[0].to_string().contains("eight"));
    }

    #[test]
    fn empty_file_is_a_default_vm() {
        let (cfg, _) = parse("").unwrap();
        assert_eq!(cfg.hostname, crate::config::DEFAULT_HOSTNAME);
        assert_eq!(cfg.platform.profile, ProfileKind::Vm);
        assert!(!cfg.features.lisp);
    }
}
