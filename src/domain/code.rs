use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

/// A stable ASCII identifier such as `GRDP_GROWTH` or `HCM`.
///
/// Codes travel through URLs, metric labels and file names, so they are restricted to
/// `A-Z`, `0-9` and `_`, start with a letter and are at most 64 bytes long.
///
/// Shared, not copied: every validated row names its indicator and unit by the catalogue's own
/// codes, so a clone is a count, not an allocation, and two clones of one code compare equal
/// without reading their text.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, pattern = "^[A-Z][A-Z0-9_]{0,63}$", example = "GRDP_GROWTH")]
pub struct Code(Arc<str>);

impl Code {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("code is empty".into());
        }
        if raw.len() > Self::MAX_LEN {
            return Err(format!("code is longer than {} characters", Self::MAX_LEN));
        }
        let mut chars = raw.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        let rest_valid = raw
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !starts_with_letter || !rest_valid {
            return Err(format!(
                "`{raw}` is not a code: use A-Z, 0-9 and _ and start with a letter"
            ));
        }
        Ok(Self(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Code {}

/// As the text's, so that a map keyed by codes can be looked up by `&str` ([`Borrow`]).
///
/// [`Borrow`]: std::borrow::Borrow
impl Hash for Code {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Code {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Code {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Code::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A multiply-and-rotate hash (as rustc's FxHash) for maps keyed by catalogue codes, looked up
/// several times per row on the way in. The keys of such a map come from the catalogue or
/// have passed validation against it, and a sender's text is only ever looked up, never
/// inserted, so a sender cannot build colliding chains; SipHash's resistance to that is not
/// needed, and its cost per row was a tenth of the server's time in an append.
#[derive(Default, Clone, Copy)]
pub struct CodeHasher(u64);

impl std::hash::Hasher for CodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.write(&[byte]);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type CodeHash = std::hash::BuildHasherDefault<CodeHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_upper_snake_codes() {
        assert!(Code::parse("GRDP_GROWTH").is_ok());
        assert!(Code::parse("P_BEN_THANH2").is_ok());
    }

    #[test]
    fn rejects_lowercase_leading_digit_and_empty() {
        assert!(Code::parse("grdp").is_err());
        assert!(Code::parse("1ABC").is_err());
        assert!(Code::parse("").is_err());
        assert!(Code::parse("A-B").is_err());
        assert!(Code::parse(&"A".repeat(65)).is_err());
    }
}
