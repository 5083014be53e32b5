//! Prefixed identifiers of the WorkOS surface (`auth_factor_…`, `auth_challenge_…`).
//!
//! The client checks only the prefix and that the rest is a non-empty run of ASCII letters
//! and digits (WorkOS and mfad use a 26-character ULID there). That is enough to stop a
//! challenge id being passed where a factor id belongs, and to keep ids safe inside URL
//! paths, without tying the client to one server's id format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {kind} id (expected {prefix} followed by letters and digits)")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
    input: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The wire prefix, including the trailing underscore.
            pub const PREFIX: &'static str = $prefix;

            /// Checks and wraps an id.
            ///
            /// # Errors
            /// [`IdError`] unless `id` is the prefix followed by ASCII letters and digits.
            pub fn parse(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                let ok = id
                    .strip_prefix($prefix)
                    .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
                if ok {
                    Ok($name(id))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix, input: id })
                }
            }

            /// The id as written on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, IdError> {
                $name::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;

            fn try_from(s: &str) -> Result<Self, IdError> {
                $name::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                $name::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An authentication factor id, `auth_factor_` followed by a ULID.
    FactorId, "auth_factor_", "authentication factor"
);
prefixed_id!(
    /// An authentication challenge id, `auth_challenge_` followed by a ULID.
    ChallengeId, "auth_challenge_", "authentication challenge"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_own_prefix_only() {
        let f = FactorId::parse("auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ").unwrap();
        assert_eq!(f.as_str(), "auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ");
        assert!(FactorId::parse("auth_challenge_01FVYZ5QM8N98T9ME5BCB2BBMJ").is_err());
        assert!(ChallengeId::parse("auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ").is_err());
        assert!(FactorId::parse("auth_factor_").is_err());
        assert!(FactorId::parse("auth_factor_01/../x").is_err());
        let e = FactorId::parse("nope").unwrap_err();
        assert!(e.to_string().contains("auth_factor_"), "{e}");
    }

    #[test]
    fn deserialization_checks_the_prefix() {
        let ok: ChallengeId =
            serde_json::from_str("\"auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN\"").unwrap();
        assert_eq!(ok.to_string(), "auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN");
        assert!(
            serde_json::from_str::<ChallengeId>("\"auth_factor_01FZ4WSWV2SCEDX3GKY1NA9YTN\"")
                .is_err()
        );
    }
}
