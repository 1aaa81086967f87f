//! The line-card catalogue (`cards.toml`, one source per number) and card admission.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::HalError;
use crate::table::TableKind;
use crate::types::SlotId;
use crate::version::{EpldVersion, Release};

/// The catalogue shipped with roamer.
pub const CATALOGUE_TOML: &str = include_str!("../cards.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    M1,
    M2,
    M3,
    F2,
    F3,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LispSupport {
    Supported,
    Unsupported,
    FromRelease,
}

/// One catalogue row, as written in `cards.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardModel {
    pub model: String,
    pub description: String,
    pub family: Family,
    pub ports: u16,
    pub port_speed_gbps: u16,
    pub l3: bool,
    pub lisp: LispSupport,
    #[serde(default)]
    pub lisp_min_epld: Option<EpldVersion>,
    #[serde(default)]
    pub lisp_min_release: Option<Release>,
    #[serde(default)]
    pub lisp_note: Option<String>,
    pub capacity: BTreeMap<String, u32>,
    pub sources: BTreeMap<String, String>,
}

impl CardModel {
    /// The card's capacity for a table kind, if the catalogue bounds it.
    pub fn capacity_of(&self, kind: TableKind) -> Option<u32> {
        kind.catalogue_key()
            .and_then(|k| self.capacity.get(k).copied())
    }
}

#[derive(Debug, Deserialize)]
struct CatalogueFile {
    card: Vec<CardModel>,
}

/// All known line-card models.
#[derive(Debug, Clone)]
pub struct Catalogue {
    models: BTreeMap<String, CardModel>,
}

/// The capacity keys every card must carry (each with a source).
const REQUIRED_CAPACITY_KEYS: [&str; 7] = [
    "mac",
    "ipv4_fib",
    "ipv6_fib",
    "adjacency",
    "vlan",
    "router_mac",
    "lisp_map_cache",
];

impl Catalogue {
    /// The catalogue compiled into roamer.
    pub fn builtin() -> Result<Self, HalError> {
        Self::from_toml(CATALOGUE_TOML)
    }

    /// Parses and checks a catalogue: every number must name its source.
    pub fn from_toml(text: &str) -> Result<Self, HalError> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| HalError::Catalogue {
            detail: e.to_string(),
        })?;
        let mut models = BTreeMap::new();
        for card in file.card {
            let missing = |what: &str| HalError::Catalogue {
                detail: format!("{}: {what}", card.model),
            };
            for key in REQUIRED_CAPACITY_KEYS {
                if !card.capacity.contains_key(key) {
                    return Err(missing(&format!("capacity.{key} missing")));
                }
            }
            for key in card
                .capacity
                .keys()
                .map(String::as_str)
                .chain(["ports", "lisp"])
            {
                if card.sources.get(key).is_none_or(|s| s.trim().is_empty()) {
                    return Err(missing(&format!("no source for '{key}'")));
                }
            }
            match card.lisp {
                LispSupport::FromRelease if card.lisp_min_release.is_none() => {
                    return Err(missing("lisp = from-release needs lisp_min_release"));
                }
                LispSupport::Unsupported if card.lisp_note.is_none() => {
                    return Err(missing("lisp = unsupported needs lisp_note"));
                }
                _ => {}
            }
            if models.insert(card.model.clone(), card).is_some() {
                return Err(HalError::Catalogue {
                    detail: "duplicate model".into(),
                });
            }
        }
        Ok(Self { models })
    }

    pub fn get(&self, model: &str) -> Option<&CardModel> {
        self.models.get(model)
    }

    pub fn models(&self) -> impl Iterator<Item = &CardModel> {
        self.models.values()
    }

    /// Admits a configured card: returns its online profile or the reason it stays offline.
    pub fn admit(&self, request: &AdmissionRequest<'_>) -> Result<CardProfile, HalError> {
        let slot = request.slot;
        let model = self
            .models
            .get(request.model)
            .ok_or_else(|| HalError::UnknownCard {
                slot,
                model: request.model.to_string(),
            })?;
        let lisp_capable = match model.lisp {
            LispSupport::Supported => true,
            LispSupport::Unsupported => false,
            LispSupport::FromRelease => model
                .lisp_min_release
                .as_ref()
                .is_some_and(|min| request.release.is_some_and(|r| r >= min)),
        };
        if request.lisp_enabled {
            check_lisp(model, request)?;
        }
        Ok(CardProfile {
            slot,
            model: model.model.clone(),
            family: model.family,
            ports: model.ports,
            port_speed_gbps: model.port_speed_gbps,
            l3: model.l3,
            lisp_capable,
            capacity: TableKind::ALL
                .iter()
                .filter_map(|k| model.capacity_of(*k).map(|c| (*k, c)))
                .collect(),
        })
    }
}

fn check_lisp(model: &CardModel, request: &AdmissionRequest<'_>) -> Result<(), HalError> {
    let slot = request.slot;
    match model.lisp {
        LispSupport::Unsupported => {
            return Err(HalError::CardRejected {
                slot,
                model: model.model.clone(),
                reason: model
                    .lisp_note
                    .clone()
                    .unwrap_or_else(|| "LISP is not supported on this module".into()),
            });
        }
        LispSupport::FromRelease => {
            if let Some(required) = &model.lisp_min_release {
                let running_ok = request.release.is_some_and(|r| r >= required);
                if !running_ok {
                    return Err(match request.release {
                        Some(running) => HalError::ReleaseTooOld {
                            slot,
                            model: model.model.clone(),
                            running: running.clone(),
                            required: required.clone(),
                        },
                        None => HalError::CardRejected {
                            slot,
                            model: model.model.clone(),
                            reason: format!(
                                "LISP on this module needs NX-OS {required} or later; set platform.release"
                            ),
                        },
                    });
                }
            }
        }
        LispSupport::Supported => {}
    }
    if let Some(required) = &model.lisp_min_epld {
        match request.epld {
            None => {
                return Err(HalError::EpldUnknown {
                    slot,
                    model: model.model.clone(),
                    required: required.clone(),
                });
            }
            Some(found) if found < required => {
                return Err(HalError::EpldTooOld {
                    slot,
                    model: model.model.clone(),
                    found: found.clone(),
                    required: required.clone(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// What admission needs to know about a configured card and its chassis.
#[derive(Debug, Clone)]
pub struct AdmissionRequest<'a> {
    pub slot: SlotId,
    pub model: &'a str,
    pub epld: Option<&'a EpldVersion>,
    pub release: Option<&'a Release>,
    pub lisp_enabled: bool,
}

/// An admitted (online) card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardProfile {
    pub slot: SlotId,
    pub model: String,
    pub family: Family,
    pub ports: u16,
    pub port_speed_gbps: u16,
    pub l3: bool,
    /// LISP can run on this card at the chassis' release.
    pub lisp_capable: bool,
    pub capacity: BTreeMap<TableKind, u32>,
}

impl CardProfile {
    /// The name used for this card in capacity errors.
    pub fn scope_name(&self) -> String {
        format!("{} ({})", self.slot, self.model)
    }
}

/// The life-cycle of a card in a slot, as `show module` would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardState {
    Inserted,
    Validating,
    Online,
    Rejected,
    EpldUpgradeRequired,
}

impl CardState {
    /// The state a card settles in after admission.
    pub fn after_admission(result: &Result<CardProfile, HalError>) -> Self {
        match result {
            Ok(_) => CardState::Online,
            Err(HalError::EpldTooOld { .. } | HalError::EpldUnknown { .. }) => {
                CardState::EpldUpgradeRequired
            }
            Err(_) => CardState::Rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        model: &'a str,
        epld: Option<&'a EpldVersion>,
        release: Option<&'a Release>,
        lisp: bool,
    ) -> AdmissionRequest<'a> {
        AdmissionRequest {
            slot: SlotId(3),
            model,
            epld,
            release,
            lisp_enabled: lisp,
        }
    }

    #[test]
    fn builtin_catalogue_loads_with_sources() {
        let cat = Catalogue::builtin().expect("catalogue");
        for m in [
            "N7K-M132XP-12",
            "N7K-M132XP-12L",
            "N7K-F248XP-25",
            "N7K-F248XP-25E",
        ] {
            assert!(cat.get(m).is_some(), "{m} missing");
        }
        assert!(cat.models().any(|m| m.family == Family::F3));
        assert!(cat.models().any(|m| m.family == Family::M3));
    }

    #[test]
    fn m1_epld_gate() {
        let cat = Catalogue::builtin().unwrap();
        let rel: Release = "6.2(2)".parse().unwrap();
        let old: EpldVersion = "186.007".parse().unwrap();
        let new: EpldVersion = "186.008".parse().unwrap();
        let err = cat
            .admit(&req("N7K-M132XP-12", Some(&old), Some(&rel), true))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("slot 3") && text.contains("186.007") && text.contains("186.008"));
        assert!(matches!(err, HalError::EpldTooOld { .. }));
        assert!(
            cat.admit(&req("N7K-M132XP-12", Some(&new), Some(&rel), true))
                .is_ok()
        );
        // Without LISP the EPLD does not matter.
        assert!(
            cat.admit(&req("N7K-M132XP-12", Some(&old), Some(&rel), false))
                .is_ok()
        );
        assert!(matches!(
            cat.admit(&req("N7K-M132XP-12L", None, Some(&rel), true)),
            Err(HalError::EpldUnknown { .. })
        ));
    }

    #[test]
    fn f2_rejected_only_with_lisp() {
        let cat = Catalogue::builtin().unwrap();
        let rel: Release = "8.2(1)".parse().unwrap();
        let err = cat
            .admit(&req("N7K-F248XP-25", None, Some(&rel), true))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "slot 3: N7K-F248XP-25: LISP is not supported on F2 Series modules"
        );
        let ok = cat
            .admit(&req("N7K-F248XP-25E", None, Some(&rel), false))
            .unwrap();
        assert!(!ok.lisp_capable);
    }

    #[test]
    fn f3_m3_need_release() {
        let cat = Catalogue::builtin().unwrap();
        let old: Release = "8.1(1)".parse().unwrap();
        let new: Release = "8.2(1)".parse().unwrap();
        for card in cat
            .models()
            .filter(|m| matches!(m.family, Family::F3 | Family::M3))
        {
            let err = cat
                .admit(&req(&card.model, None, Some(&old), true))
                .unwrap_err();
            assert!(matches!(err, HalError::ReleaseTooOld { .. }), "{err}");
            assert!(err.to_string().contains("8.2(1)") && err.to_string().contains("8.1(1)"));
            let ok = cat
                .admit(&req(&card.model, None, Some(&new), true))
                .unwrap();
            assert!(ok.lisp_capable);
        }
    }

    #[test]
    fn unknown_model_is_an_error() {
        let cat = Catalogue::builtin().unwrap();
        let err = cat
            .admit(&req("N7K-NOPE-1", None, None, false))
            .unwrap_err();
        assert!(matches!(err, HalError::UnknownCard { .. }));
    }

    #[test]
    fn catalogue_without_source_is_refused() {
        let text = CATALOGUE_TOML.replacen("\nmac = \"", "\nmac_removed = \"", 1);
        assert!(Catalogue::from_toml(&text).is_err());
    }
}
