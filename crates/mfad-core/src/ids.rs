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
prefixed_id!(
    /// A tenant's JWT verification key (`jwtkey_…`).
    JwtKeyId, "jwtkey_"
);
prefixed_id!(
    /// An audit event (`event_…`), as WorkOS names them; ids of one process increase
    /// strictly (see `events::EventIds`), so id order is creation order.
    EventId, "event_"
);
prefixed_id!(
    /// A webhook endpoint (`we_…`, as WorkOS names them).
    WebhookEndpointId, "we_"
);

impl TenantId {
    /// Parses a tenant id written either as mfad writes it (`tenant_01H…`) or as the UUID
    /// with the same 128 bits (`018f3c9e-…`), which is how FusionAuth clients, whose
    /// tenant ids are UUIDs, can name it in `X-FusionAuth-TenantId`.
    pub fn parse_any(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(id) = TenantId::parse(s) {
            return Some(id);
        }
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        let dashes_ok = s.len() == 36
            && s.char_indices()
                .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
        if !dashes_ok || hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = u128::from_str_radix(&hex, 16).ok()?;
        Some(TenantId(format!("{}{}", Self::PREFIX, Ulid::from(n))))
    }

    /// The same id as a UUID (lower-case, hyphenated).
    pub fn as_uuid(&self) -> String {
        let body = self.0.trim_start_matches(Self::PREFIX);
        let n = Ulid::from_string(body).map(u128::from).unwrap_or_default();
        let h = format!("{n:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

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

/// A FusionAuth two-factor method id: 4 upper-case alphanumerics (`BD5R`), unique among
/// one user's methods. Every factor filed under a user gets one (lazily, for factors
/// enrolled through the WorkOS API), so both APIs name the same factors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MethodId(String);

impl MethodId {
    /// Length of a method id.
    pub const LEN: usize = 4;

    /// A random id from `[A-Z0-9]`, drawn from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CoreError> {
        const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut out = String::with_capacity(Self::LEN);
        while out.len() < Self::LEN {
            for b in mfad_crypto::random_bytes::<8>()? {
                // Rejection sampling keeps the symbols uniform: 252 = 7 * 36.
                if b < 252 && out.len() < Self::LEN {
                    out.push(char::from(ALPHABET[usize::from(b % 36)]));
                }
            }
        }
        Ok(MethodId(out))
    }

    /// Parses a wire id; lower case is accepted and upper-cased.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| MethodId(s.to_ascii_uppercase()))
    }

    /// Wraps a value read back from storage.
    pub fn from_trusted(s: String) -> Self {
        MethodId(s)
    }

    /// The id as written on the wire and in storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MethodId {
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
    fn tenant_ids_also_read_as_uuids() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let t = TenantId::generate(now).unwrap();
        let uuid = t.as_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(TenantId::parse_any(&uuid), Some(t.clone()));
        assert_eq!(TenantId::parse_any(&uuid.to_uppercase()), Some(t.clone()));
        assert_eq!(TenantId::parse_any(t.as_str()), Some(t));
        for bad in [
            "",
            "6b40f9d6cfd84312bff8b082ad45e93c",
            "6b40f9d6-cfd8-4312-bff8-b082ad45e93",
            "acme",
        ] {
            assert!(TenantId::parse_any(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn method_ids() {
        for _ in 0..100 {
            let m = MethodId::generate().unwrap();
            assert_eq!(m.as_str().len(), 4);
            assert!(
                m.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            );
            assert_eq!(MethodId::parse(m.as_str()), Some(m));
        }
        assert_eq!(MethodId::parse("bd5r").unwrap().as_str(), "BD5R");
        assert!(MethodId::parse("BD5").is_none() && MethodId::parse("BD-R").is_none());
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
