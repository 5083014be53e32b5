//! Prefixed ULID identifiers, as WorkOS writes them (`auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ`).
//! Each newtype checks its prefix and ULID body on parse, so a malformed id is rejected
//! before it reaches storage.

use time::OffsetDateTime;
use ulid::Ulid;

use crate::error::CoreError;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The wire prefix, including the trailing underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id whose time part is `now` and whose rest is random.
            pub fn generate(now: OffsetDateTime) -> Result<Self, CoreError> {
                Ok($name(format!("{}{}", $prefix, new_ulid(now)?)))
            }

            /// Parses a wire id; `None` unless it is the prefix followed by a valid ULID.
            pub fn parse(s: &str) -> Option<Self> {
                let body = s.strip_prefix($prefix)?;
                (body.len() == 26 && Ulid::from_string(body).is_ok()).then(|| $name(s.to_owned()))
            }

            /// Wraps a value read back from storage, which was validated when written.
            pub fn from_trusted(s: String) -> Self {
                $name(s)
            }

            /// The id as written on the wire and in storage.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An authentication factor (`auth_factor_…`).
    FactorId, "auth_factor_"
);
prefixed_id!(
    /// An authentication challenge (`auth_challenge_…`).
    ChallengeId, "auth_challenge_"
);
prefixed_id!(
    /// A tenant: the unit of isolation every API key belongs to (`tenant_…`).
    TenantId, "tenant_"
);
prefixed_id!(
    /// An API key's public identifier (`key_…`); the secret part is never stored.
    ApiKeyId, "key_"
);

fn new_ulid(now: OffsetDateTime) -> Result<Ulid, CoreError> {
    let ms = u64::try_from(crate::clock::unix_ms(now)).unwrap_or(0);
    let random: [u8; 10] = mfad_crypto::random_bytes()?;
    let mut r = [0u8; 16];
    r[6..].copy_from_slice(&random);
    Ok(Ulid::from_parts(ms, u128::from_be_bytes(r)))
}

/// The application's own user identifier (WorkOS `user_…`, a FusionAuth UUID, or any
/// opaque id): mfad does not own users, it only files factors under them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Longest accepted user id.
    pub const MAX_LEN: usize = 128;

    /// Accepts 1–128 printable ASCII characters other than `/`, `?`, `#` and space.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#'));
        ok.then(|| UserId(s.to_owned()))
    }

    /// Wraps a value read back from storage.
    pub fn from_trusted(s: String) -> Self {
        UserId(s)
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_wrong_prefix() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let f = FactorId::generate(now).unwrap();
        assert!(f.as_str().starts_with("auth_factor_"));
        assert_eq!(f.as_str().len(), "auth_factor_".len() + 26);
        assert_eq!(FactorId::parse(f.as_str()), Some(f.clone()));
        assert_eq!(ChallengeId::parse(f.as_str()), None);
        assert_eq!(FactorId::parse("auth_factor_invalid"), None);
        assert_eq!(FactorId::parse(""), None);
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a = FactorId::generate(t0).unwrap();
        let b = FactorId::generate(t0 + time::Duration::milliseconds(1)).unwrap();
        assert!(a < b);
    }

    #[test]
    fn user_ids() {
        assert!(UserId::parse("user_01E4ZCR3C56J083X43JQXF3JK5").is_some());
        assert!(UserId::parse("2f6c6f9e-2a8e-4c7b-9d0e-0c1d2e3f4a5b").is_some());
        for bad in ["", "a/b", "a b", "a?b", &"x".repeat(129)] {
            assert!(UserId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
