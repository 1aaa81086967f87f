//! NX-OS release strings (`8.2(1)`) and EPLD versions (`186.008`), compared numerically.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::HalError;

/// The comparisons (by `key()`, not the text), the `String` conversions serde goes through
/// (parsing with `FromStr`) and the `Display` (the text as given) of a version type.
macro_rules! version_impls {
    ($version:ident) => {
        impl PartialEq for $version {
            fn eq(&self, other: &Self) -> bool {
                self.key() == other.key()
            }
        }

        impl PartialOrd for $version {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $version {
            fn cmp(&self, other: &Self) -> Ordering {
                self.key().cmp(&other.key())
            }
        }

        impl TryFrom<String> for $version {
            type Error = HalError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$version> for String {
            fn from(v: $version) -> String {
                v.text
            }
        }

        impl fmt::Display for $version {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }
    };
}

/// An NX-OS release such as `8.2(1)` or `6.2(16)`; compared by major, minor, maintenance.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Release {
    major: u32,
    minor: u32,
    maintenance: u32,
    text: String,
}

impl Release {
    fn key(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.maintenance)
    }
}

version_impls!(Release);

impl FromStr for Release {
    type Err = HalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HalError::invalid("NX-OS release", s, "MAJOR.MINOR(MAINT), e.g. 8.2(1)");
        let (head, rest) = s.split_once('(').ok_or_else(bad)?;
        let (major, minor) = head.split_once('.').ok_or_else(bad)?;
        let inner = rest.strip_suffix(')').ok_or_else(bad)?;
        // "5.0(3.lisp-80)" style engineering releases: the leading number is the maintenance.
        let digits: String = inner.chars().take_while(char::is_ascii_digit).collect();
        Ok(Release {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
            maintenance: digits.parse().map_err(|_| bad())?,
            text: s.to_string(),
        })
    }
}

/// An EPLD image version such as `186.008`; `186.8` and `186.008` are equal.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EpldVersion {
    major: u32,
    minor: u32,
    text: String,
}

impl EpldVersion {
    fn key(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

version_impls!(EpldVersion);

impl FromStr for EpldVersion {
    type Err = HalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HalError::invalid("EPLD version", s, "MAJOR.MINOR, e.g. 186.008");
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        if a.is_empty() || b.is_empty() {
            return Err(bad());
        }
        Ok(EpldVersion {
            major: a.parse().map_err(|_| bad())?,
            minor: b.parse().map_err(|_| bad())?,
            text: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_order_numerically() {
        let r = |s: &str| s.parse::<Release>().unwrap();
        assert!(r("8.1(1)") < r("8.2(1)"));
        assert!(r("6.2(16)") > r("6.2(2)"));
        assert_eq!(r("5.0(3.lisp-80)").to_string(), "5.0(3.lisp-80)");
        assert!("8.2".parse::<Release>().is_err());
        assert!("x.2(1)".parse::<Release>().is_err());
    }

    #[test]
    fn epld_orders_numerically() {
        let e = |s: &str| s.parse::<EpldVersion>().unwrap();
        assert!(e("186.007") < e("186.008"));
        assert_eq!(e("186.8"), e("186.008"));
        assert!(e("187.001") > e("186.999"));
        assert!("186".parse::<EpldVersion>().is_err());
        assert!(".5".parse::<EpldVersion>().is_err());
    }
}
