//! The TOML syntax of the configuration, with the line of every setting kept for diagnostics.

use roamer_hal::{
    BackendKind, EpldVersion, LinecardSpec, PlatformSpec, ProfileKind, Release, SlotId,
};
use serde::Deserialize;
use toml::Spanned;

use super::{Config, DEFAULT_HOSTNAME, Features, line_of};
use crate::ControlError;

/// Where each setting was written (1-based lines), for pointing at the offending one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    pub hostname: Option<usize>,
    pub profile: Option<usize>,
    pub release: Option<usize>,
    pub licenses: Option<usize>,
    pub backend: Option<usize>,
    pub feature_lisp: Option<usize>,
    /// Per `[[platform.linecard]]`: the line of `model` and of `epld`.
    pub linecards: Vec<LinecardLines>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinecardLines {
    pub model: usize,
    pub epld: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hostname: Option<Spanned<String>>,
    #[serde(default)]
    platform: RawPlatform,
    #[serde(default)]
    features: RawFeatures,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    profile: Option<Spanned<ProfileKind>>,
    release: Option<Spanned<String>>,
    #[serde(default)]
    licenses: Option<Spanned<Vec<String>>>,
    backend: Option<Spanned<BackendKind>>,
    #[serde(default)]
    linecard: Vec<RawLinecard>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinecard {
    slot: Spanned<u8>,
    model: Spanned<String>,
    epld: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatures {
    lisp: Option<Spanned<bool>>,
    #[serde(default)]
    hsrp: bool,
    #[serde(default, rename = "interface-vlan")]
    interface_vlan: bool,
}

/// Parses the TOML syntax. Every problem found is returned, each with its line.
pub fn parse(text: &str) -> Result<(Config, Locations), Vec<ControlError>> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        vec![ControlError::ConfigSyntax {
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().to_string(),
        }]
    })?;
    let at = |span: std::ops::Range<usize>| line_of(text, span.start);
    let mut errors = Vec::new();
    let mut loc = Locations {
        hostname: raw.hostname.as_ref().map(|h| at(h.span())),
        profile: raw.platform.profile.as_ref().map(|p| at(p.span())),
        release: raw.platform.release.as_ref().map(|p| at(p.span())),
        licenses: raw.platform.licenses.as_ref().map(|p| at(p.span())),
        backend: raw.platform.backend.as_ref().map(|p| at(p.span())),
        feature_lisp: raw.features.lisp.as_ref().map(|p| at(p.span())),
        linecards: Vec::new(),
    };

    let hostname = raw
        .hostname
        .map(|h| h.into_inner())
        .unwrap_or_else(|| DEFAULT_HOSTNAME.to_string());
    if !valid_hostname(&hostname) {
        errors.push(ControlError::ConfigValue {
            line: loc.hostname.unwrap_or(1),
            what: "hostname",
            value: hostname.clone(),
            expected: "1-63 letters, digits, '-' or '_'",
        });
    }

    let release = match raw.platform.release {
        Some(r) => match r.get_ref().parse::<Release>() {
            Ok(v) => Some(v),
            Err(_) => {
                errors.push(ControlError::ConfigValue {
                    line: at(r.span()),
                    what: "platform.release",
                    value: r.into_inner(),
                    expected: "an NX-OS release such as 8.2(1)",
                });
                None
            }
        },
        None => None,
    };

    let mut linecards = Vec::new();
    for card in raw.platform.linecard {
        let lines = LinecardLines {
            model: at(card.model.span()),
            epld: card.epld.as_ref().map(|e| at(e.span())),
        };
        loc.linecards.push(lines);
        let epld = match card.epld {
            Some(e) => match e.get_ref().parse::<EpldVersion>() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(ControlError::ConfigValue {
                        line: at(e.span()),
                        what: "platform.linecard.epld",
                        value: e.into_inner(),
                        expected: "an EPLD version such as 186.008",
                    });
                    None
                }
            },
            None => None,
        };
        linecards.push(LinecardSpec {
            slot: SlotId(*card.slot.get_ref()),
            model: card.model.into_inner(),
            epld,
        });
    }

    let platform = PlatformSpec {
        profile: raw
            .platform
            .profile
            .map(Spanned::into_inner)
            .unwrap_or_default(),
        release,
        licenses: raw
            .platform
            .licenses
            .map(Spanned::into_inner)
            .unwrap_or_default(),
        backend: raw
            .platform
            .backend
            .map(Spanned::into_inner)
            .unwrap_or_default(),
        linecards,
    };
    let features = Features {
        lisp: raw.features.lisp.map(Spanned::into_inner).unwrap_or(false),
        hsrp: raw.features.hsrp,
        interface_vlan: raw.features.interface_vlan,
    };
    if errors.is_empty() {
        Ok((
            Config {
                hostname,
                platform,
                features,
            },
            loc,
        ))
    } else {
        Err(errors)
    }
}

fn valid_hostname(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (cfg, loc) = parse(EXAMPLE).unwrap();
        assert_eq!(cfg.hostname, "n7k-dc1");
        assert_eq!(cfg.platform.profile, ProfileKind::N7k);
        assert_eq!(cfg.platform.backend, BackendKind::Sim);
        assert_eq!(cfg.platform.linecards.len(), 1);
        assert!(cfg.features.lisp);
        assert_eq!(loc.licenses, Some(5));
        assert_eq!(loc.feature_lisp, Some(12));
        assert_eq!(
            loc.linecards[0],
            LinecardLines {
                model: 9,
                epld: Some(10)
            }
        );
    }

    #[test]
    fn unknown_key_names_its_line() {
        let text = EXAMPLE.replace("lisp = true", "lsip = true");
        let errs = parse(&text).unwrap_err();
        match &errs[0] {
            ControlError::ConfigSyntax { line, message } => {
                assert_eq!(*line, 12);
                assert!(message.contains("lsip"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_are_collected() {
        let text = EXAMPLE.replace("8.2(1)", "eight").replace("186.008", "new");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].line(), Some(4));
        assert_eq!(errs[1].line(), Some(10));
        assert!(errs[0].to_string().contains("eight"));
    }

    #[test]
    fn empty_file_is_a_default_vm() {
        let (cfg, _) = parse("").unwrap();
        assert_eq!(cfg.hostname, DEFAULT_HOSTNAME);
        assert_eq!(cfg.platform.profile, ProfileKind::Vm);
        assert!(!cfg.features.lisp);
    }
}
