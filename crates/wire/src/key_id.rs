//! The one rule for key ids, shared by the API, the manager, the nodes and their stores.
//!
//! A key id names a key in every layer (URL path, registry, wire frame, node store), so it is
//! checked once, here, and carried as a type. The character set is deliberately small so that
//! ids that *look* alike cannot become two keys: lowercase ASCII letters, digits, `-`, `_` and
//! `.`; the first character a letter or a digit; 1 to [`KeyId::MAX_LEN`] bytes. That refuses
//! `"REL"` beside `"rel"`, `"rel "`, `"../rel"`, control and zero-width characters, and the
//! `~` prefix that nodes reserve for their internal records.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated key id (see the module doc for the rule).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

/// Why a string is not a key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyIdError {
    /// Empty.
    #[error("key id is empty")]
    Empty,
    /// Longer than [`KeyId::MAX_LEN`] bytes.
    #[error("key id is {0} bytes; at most {max} are allowed", max = KeyId::MAX_LEN)]
    TooLong(usize),
    /// A character outside the set.
    #[error(
        "key id has {0:?} at byte {1}; allowed: lowercase a-z, digits, '-', '_', '.', starting with a letter or digit"
    )]
    BadChar(char, usize),
}

impl KeyId {
    /// Longest key id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks `s` against the rule.
    pub fn new(s: impl Into<String>) -> Result<Self, KeyIdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(KeyIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(KeyIdError::TooLong(s.len()));
        }
        for (i, c) in s.char_indices() {
            let ok = c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || (i > 0 && matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(KeyIdError::BadChar(c, i));
            }
        }
        Ok(KeyId(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::str::FromStr for KeyId {
    type Err = KeyIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::new(s)
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        KeyId::new(s)
    }
}

impl TryFrom<&str> for KeyId {
    type Error = KeyIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        KeyId::new(s)
    }
}

impl std::ops::Deref for KeyId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for KeyId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for KeyId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for KeyId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_set() {
        for ok in [
            "rel",
            "state",
            "state-r12",
            "k-0",
            "a",
            "bridge_eth.main",
            "0x12ab",
        ] {
            assert_eq!(KeyId::new(ok).unwrap().as_str(), ok);
        }
        assert!(KeyId::new("a".repeat(KeyId::MAX_LEN)).is_ok());
    }

    #[test]
    fn refuses_lookalikes_and_reserved_ids() {
        for bad in [
            "",
            "REL",
            "Rel",
            "rel ",
            " rel",
            "../rel",
            "a/b",
            "~staged-1",
            "-rel",
            ".rel",
            "_x",
            "re\u{200b}l",
            "r\u{0}l",
            "rel\n",
            "rél",
            "a b",
        ] {
            assert!(KeyId::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            KeyId::new("a".repeat(129)).unwrap_err(),
            KeyIdError::TooLong(129)
        );
    }

    #[test]
    fn serde_validates_on_decode() {
        let k: KeyId = serde_json::from_str("\"rel\"").unwrap();
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"rel\"");
        assert!(serde_json::from_str::<KeyId>("\"REL\"").is_err());
        assert!(serde_json::from_str::<KeyId>("\"~x\"").is_err());
    }
}
