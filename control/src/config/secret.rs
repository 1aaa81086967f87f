//! Keys and passwords: kept as bytes, printed only as Cisco type 7 or redacted, never in clear.

use std::fmt;
use std::str::FromStr;

use crate::ControlError;

/// The 53-character Cisco type-7 translation key (public; protocols.md §9).
const TYPE7_XLAT: &[u8; 53] = b"dsfd;kfoA,.iyewrkldJKDHSUBsgvca69834ncxv9873254k;fg87";

/// The seed used when roamer writes a type-7 string; fixed so rendering is canonical.
const TYPE7_SEED: usize = 2;

/// Longest secret accepted (NX-OS limits LISP keys to well under this).
pub const MAX_SECRET_LEN: usize = 64;

/// A secret whose `Debug` and `Display` never reveal it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The key material, for HMAC computation only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The type-7 obfuscated form (two decimal seed digits, then hex).
    pub fn to_type7(&self) -> String {
        let mut out = format!("{TYPE7_SEED:02}");
        for (i, b) in self.0.iter().enumerate() {
            let x = b ^ TYPE7_XLAT[(TYPE7_SEED + i) % TYPE7_XLAT.len()];
            out.push_str(&format!("{x:02X}"));
        }
        out
    }

    /// Decodes a type-7 string; any seed 0-52 is accepted.
    pub fn from_type7(s: &str) -> Result<Self, ControlError> {
        let bad = |what| ControlError::BadKey {
            key_type: 7,
            problem: what,
        };
        if s.len() < 2 || !s.is_ascii() {
            return Err(bad("too short"));
        }
        let seed: usize = s[..2]
            .parse()
            .map_err(|_| bad("seed is not two decimal digits"))?;
        if seed >= TYPE7_XLAT.len() {
            return Err(bad("seed out of range 0-52"));
        }
        let hex = &s[2..];
        if !hex.len().is_multiple_of(2) {
            return Err(bad("odd number of hex digits"));
        }
        if hex.len() / 2 > MAX_SECRET_LEN {
            return Err(bad("longer than 64 characters"));
        }
        let mut out = Vec::with_capacity(hex.len() / 2);
        for i in 0..hex.len() / 2 {
            let byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
                .map_err(|_| bad("not hexadecimal"))?;
            out.push(byte ^ TYPE7_XLAT[(seed + i) % TYPE7_XLAT.len()]);
        }
        Ok(Secret(out))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An authentication key as configured with `key <type> <string>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthKey {
    /// Entered as type 0 (clear) or type 7; usable for HMAC.
    Known(Secret),
    /// Entered as type 3 (encrypted with the originating device's master key): kept as given,
    /// unusable for authentication until re-entered as type 0 or 7.
    Type3(String),
}

impl AuthKey {
    /// Parses the `<type> <string>` pair; `key_type` None means the type was left out (clear).
    pub fn from_parts(key_type: Option<u8>, text: &str) -> Result<Self, ControlError> {
        if text.is_empty() {
            return Err(ControlError::BadKey {
                key_type: key_type.unwrap_or(0),
                problem: "empty",
            });
        }
        match key_type.unwrap_or(0) {
            0 => {
                if text.len() > MAX_SECRET_LEN {
                    return Err(ControlError::BadKey {
                        key_type: 0,
                        problem: "longer than 64 characters",
                    });
                }
                Ok(AuthKey::Known(Secret(text.as_bytes().to_vec())))
            }
            7 => Secret::from_type7(text).map(AuthKey::Known),
            3 => {
                if text.len() > 2 * MAX_SECRET_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ControlError::BadKey {
                        key_type: 3,
                        problem: "not a printable string of at most 128 characters",
                    });
                }
                Ok(AuthKey::Type3(text.to_string()))
            }
            other => Err(ControlError::BadKey {
                key_type: other,
                problem: "unknown key type (use 0, 3 or 7)",
            }),
        }
    }

    /// The key for HMAC computation; None for a type-3 key roamer cannot decrypt.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            AuthKey::Known(s) => Some(s),
            AuthKey::Type3(_) => None,
        }
    }
}

/// `<type> <string>` as written in configuration: known keys always as type 7.
impl fmt::Display for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthKey::Known(s) => write!(f, "7 {}", s.to_type7()),
            AuthKey::Type3(t) => write!(f, "3 {t}"),
        }
    }
}

impl FromStr for AuthKey {
    type Err = ControlError;

    /// `"7 0822455D0A16"`, `"3 1c27..."`, `"0 cisco"`, or a bare clear-text `"cisco"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(' ') {
            Some((t, rest)) if t.len() == 1 && t.as_bytes()[0].is_ascii_digit() => {
                AuthKey::from_parts(Some(t.as_bytes()[0] - b'0'), rest.trim())
            }
            _ => AuthKey::from_parts(None, s),
        }
    }
}

roamer_hal::serde_via_str!(AuthKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type7_reference_vectors() {
        assert_eq!(
            Secret::from_type7("02050D480809").unwrap().expose(),
            b"cisco"
        );
        assert_eq!(
            Secret::from_type7("070C285F4D06").unwrap().expose(),
            b"cisco"
        );
        let s = Secret::new(b"cisco".to_vec());
        assert_eq!(s.to_type7(), "02050D480809");
    }

    #[test]
    fn type7_rejects_garbage() {
        for bad in ["", "0", "xx0D", "02050D48080", "02ZZ", "99050D"] {
            assert!(Secret::from_type7(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_never_display_clear_text() {
        let k: AuthKey = "0 some-password".parse().unwrap();
        assert!(!format!("{k}").contains("some-password"));
        assert!(!format!("{k:?}").contains("some-password"));
        let bare: AuthKey = "some-password".parse().unwrap();
        assert_eq!(k, bare);
        let again: AuthKey = k.to_string().parse().unwrap();
        assert_eq!(again, k);
        let t3: AuthKey = "3 1c27564ab1212434".parse().unwrap();
        assert!(t3.secret().is_none());
        assert_eq!(t3.to_string(), "3 1c27564ab1212434");
        assert!("5 abc".parse::<AuthKey>().is_err());
    }
}
