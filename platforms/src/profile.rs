//! Platform profiles: what a configuration's `[platform]` part turns into.
//!
//! `n7k` is a chassis with slots and line cards admitted against the catalogue; `vm`, `clab` and
//! `whitebox` have no cards and take their capacities from the backend.

use roamer_hal::{
    AdmissionRequest, BackendKind, CapacityScope, CardProfile, CardState, Catalogue, LISP_LICENSE,
    LinecardSpec, PlatformSpec, ProfileKind, SlotId,
};
use serde::Serialize;

use crate::PlatformError;

/// The largest chassis (N7K-C7018) has 18 slots.
pub const N7K_MAX_SLOT: u8 = 18;

/// Which part of the platform configuration a problem is about (to point at its line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Profile,
    Release,
    Licenses,
    Backend,
    /// The n-th `[[platform.linecard]]`, and whether the EPLD value is at fault.
    Linecard {
        index: usize,
        epld: bool,
    },
    FeatureLisp,
    /// `feature interface-vlan` (VLANs, SVIs), on a backend that cannot hold them.
    FeatureInterfaceVlan,
}

#[derive(Debug)]
pub struct Problem {
    pub subject: Subject,
    pub error: PlatformError,
}

/// The features the platform must check (the rest of the configuration does not matter here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureRequest {
    pub lisp: bool,
    /// `feature interface-vlan`: VLANs and SVIs (the kernel backend needs a VLAN-filtering
    /// bridge and 802.1Q devices for them).
    pub interface_vlan: bool,
}

/// A card in a slot after admission.
#[derive(Debug, Clone, Serialize)]
pub struct SlotStatus {
    pub slot: SlotId,
    pub model: String,
    pub state: CardState,
    pub profile: Option<CardProfile>,
}

/// A checked platform: every card admitted, every licence present.
#[derive(Debug, Clone)]
pub struct PlatformPlan {
    pub spec: PlatformSpec,
    pub slots: Vec<SlotStatus>,
    pub lisp: bool,
}

impl PlatformPlan {
    pub fn online_cards(&self) -> impl Iterator<Item = &CardProfile> {
        self.slots.iter().filter_map(|s| s.profile.as_ref())
    }

    /// One capacity scope per online card (empty on card-less profiles).
    pub fn capacity_scopes(&self) -> Vec<CapacityScope> {
        self.online_cards().map(CapacityScope::for_card).collect()
    }

    /// A one-paragraph description for `roamer validate`.
    pub fn summary(&self, hostname: &str) -> String {
        let spec = &self.spec;
        let release = spec
            .release
            .as_ref()
            .map(|r| format!(", NX-OS {r}"))
            .unwrap_or_default();
        let cards = if spec.profile == ProfileKind::N7k {
            let list: Vec<String> = self
                .online_cards()
                .map(|c| {
                    format!(
                        "slot {} {} ({} x {}G{})",
                        c.slot.0,
                        c.model,
                        c.ports,
                        c.port_speed_gbps,
                        if c.lisp_capable { ", LISP" } else { "" }
                    )
                })
                .collect();
            format!(
                " {} line card{} online: {}.",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                list.join("; ")
            )
        } else {
            String::new()
        };
        let licences = if spec.licenses.is_empty() {
            "none".to_string()
        } else {
            spec.licenses.join(", ")
        };
        format!(
            "{hostname}: {} profile{release}, {} backend.{cards} Feature lisp {}. Licenses: {licences}.",
            spec.profile,
            spec.backend,
            if self.lisp { "enabled" } else { "disabled" },
        )
    }
}

/// Checks a platform specification: admission of every card, licences, profile rules.
/// Returns every problem found, not only the first.
pub fn plan(
    spec: &PlatformSpec,
    features: FeatureRequest,
    catalogue: &Catalogue,
) -> Result<PlatformPlan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut slots = Vec::new();
    let n7k = spec.profile == ProfileKind::N7k;

    if n7k && spec.release.is_none() {
        problems.push(Problem {
            subject: Subject::Release,
            error: PlatformError::ReleaseRequired {
                profile: spec.profile,
            },
        });
    }
    if !n7k && !spec.linecards.is_empty() {
        problems.push(Problem {
            subject: Subject::Linecard {
                index: 0,
                epld: false,
            },
            error: PlatformError::CardsNotOnProfile {
                profile: spec.profile,
            },
        });
    }
    if n7k {
        admit_cards(spec, features, catalogue, &mut slots, &mut problems);
        if features.lisp {
            if !spec.licenses.iter().any(|l| l == LISP_LICENSE) {
                problems.push(Problem {
                    subject: Subject::Licenses,
                    error: PlatformError::LicenseMissing {
                        feature: "lisp",
                        license: LISP_LICENSE,
                    },
                });
            }
            if spec.linecards.is_empty() {
                problems.push(Problem {
                    subject: Subject::FeatureLisp,
                    error: PlatformError::NoLispCard,
                });
            }
        }
    }
    if spec.backend == BackendKind::Kernel
        && features.interface_vlan
        && let Err(missing) = crate::kernel::vlan_support()
    {
        problems.push(Problem {
            subject: Subject::FeatureInterfaceVlan,
            error: PlatformError::KernelFeatureMissing {
                needed_by: "feature interface-vlan",
                missing,
            },
        });
    }
    if problems.is_empty() {
        Ok(PlatformPlan {
            spec: spec.clone(),
            slots,
            lisp: features.lisp,
        })
    } else {
        Err(problems)
    }
}

fn admit_cards(
    spec: &PlatformSpec,
    features: FeatureRequest,
    catalogue: &Catalogue,
    slots: &mut Vec<SlotStatus>,
    problems: &mut Vec<Problem>,
) {
    let mut seen = std::collections::BTreeSet::new();
    for (index, card) in spec.linecards.iter().enumerate() {
        let LinecardSpec { slot, model, epld } = card;
        let at = |epld| Subject::Linecard { index, epld };
        if slot.0 == 0 || slot.0 > N7K_MAX_SLOT {
            problems.push(Problem {
                subject: at(false),
                error: PlatformError::SlotOutOfRange {
                    slot: *slot,
                    max: N7K_MAX_SLOT,
                },
            });
            continue;
        }
        if !seen.insert(*slot) {
            problems.push(Problem {
                subject: at(false),
                error: PlatformError::DuplicateSlot { slot: *slot },
            });
            continue;
        }
        let result = catalogue.admit(&AdmissionRequest {
            slot: *slot,
            model,
            epld: epld.as_ref(),
            release: spec.release.as_ref(),
            lisp_enabled: features.lisp,
        });
        let state = CardState::after_admission(&result);
        match result {
            Ok(profile) => slots.push(SlotStatus {
                slot: *slot,
                model: model.clone(),
                state,
                profile: Some(profile),
            }),
            Err(e) => {
                slots.push(SlotStatus {
                    slot: *slot,
                    model: model.clone(),
                    state,
                    profile: None,
                });
                let epld_fault = matches!(
                    e,
                    roamer_hal::HalError::EpldTooOld { .. }
                        | roamer_hal::HalError::EpldUnknown { .. }
                );
                problems.push(Problem {
                    subject: at(epld_fault && epld.is_some()),
                    error: e.into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roamer_hal::{BackendKind, EpldVersion, Release};

    fn n7k(release: &str, cards: &[(u8, &str, Option<&str>)], licensed: bool) -> PlatformSpec {
        PlatformSpec {
            profile: ProfileKind::N7k,
            release: Some(release.parse::<Release>().unwrap()),
            licenses: if licensed {
                vec![LISP_LICENSE.to_string()]
            } else {
                vec![]
            },
            backend: BackendKind::Sim,
            linecards: cards
                .iter()
                .map(|(s, m, e)| LinecardSpec {
                    slot: SlotId(*s),
                    model: m.to_string(),
                    epld: e.map(|e| e.parse::<EpldVersion>().unwrap()),
                })
                .collect(),
            ports: Default::default(),
            port_io: Default::default(),
        }
    }

    const LISP: FeatureRequest = FeatureRequest {
        lisp: true,
        interface_vlan: false,
    };
    const NO_LISP: FeatureRequest = FeatureRequest {
        lisp: false,
        interface_vlan: false,
    };

    #[test]
    fn licensed_m1_with_new_epld_plans() {
        let cat = Catalogue::builtin().unwrap();
        let spec = n7k("8.2(1)", &[(1, "N7K-M132XP-12", Some("186.008"))], true);
        let plan = plan(&spec, LISP, &cat).unwrap();
        assert_eq!(plan.online_cards().count(), 1);
        assert_eq!(plan.capacity_scopes().len(), 1);
        assert!(plan.summary("n7k-dc1").contains("slot 1 N7K-M132XP-12"));
    }

    #[test]
    fn all_problems_reported_together() {
        let cat = Catalogue::builtin().unwrap();
        let spec = n7k(
            "8.1(1)",
            &[
                (1, "N7K-M132XP-12", Some("186.007")),
                (2, "N7K-F248XP-25", None),
                (2, "N7K-F348XP-25", None),
            ],
            false,
        );
        let problems = plan(&spec, LISP, &cat).unwrap_err();
        let texts: Vec<String> = problems.iter().map(|p| p.error.to_string()).collect();
        assert_eq!(problems.len(), 4, "{texts:#?}");
        assert!(texts[0].contains("186.007"));
        assert!(texts[1].contains("F2"));
        assert!(texts[2].contains("twice"));
        assert!(texts[3].contains(LISP_LICENSE));
    }

    #[test]
    fn without_lisp_f2_is_fine_and_no_licence_needed() {
        let cat = Catalogue::builtin().unwrap();
        let spec = n7k("6.2(2)", &[(3, "N7K-F248XP-25", None)], false);
        assert!(plan(&spec, NO_LISP, &cat).is_ok());
    }

    #[test]
    fn cardless_profiles_need_no_licence_but_refuse_cards() {
        let cat = Catalogue::builtin().unwrap();
        let mut spec = PlatformSpec {
            profile: ProfileKind::Vm,
            ..PlatformSpec::default()
        };
        assert!(plan(&spec, LISP, &cat).is_ok());
        spec.linecards.push(LinecardSpec {
            slot: SlotId(1),
            model: "N7K-M132XP-12".into(),
            epld: None,
        });
        let problems = plan(&spec, LISP, &cat).unwrap_err();
        assert!(matches!(
            problems[0].error,
            PlatformError::CardsNotOnProfile { .. }
        ));
    }

    #[test]
    fn lisp_on_an_empty_chassis_is_refused() {
        let cat = Catalogue::builtin().unwrap();
        let spec = n7k("8.2(1)", &[], true);
        let problems = plan(&spec, LISP, &cat).unwrap_err();
        assert!(matches!(problems[0].error, PlatformError::NoLispCard));
    }
}
