//! Row shapes shared by the backends, and their mapping to and from domain records. Both
//! schemas use the same column names and 64-bit integers, so one mapping serves both.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::ids::{ApiKeyId, ChallengeId, FactorId, MethodId, TenantId, UserId};
use mfad_core::model::{ApiKey, Challenge, Factor, FactorDetails, FactorType, Tenant, TotpFactor};
use mfad_core::phone::PhoneNumber;

use crate::sql::{Sql, sql};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct FactorRow {
    id: String,
    tenant_id: String,
    user_id: Option<String>,
    #[sqlx(rename = "type")]
    kind: String,
    totp_issuer: Option<String>,
    totp_user: Option<String>,
    totp_algorithm: Option<String>,
    totp_digits: Option<i64>,
    totp_period: Option<i64>,
    totp_secret: Option<Vec<u8>>,
    totp_last_step: Option<i64>,
    phone_number: Option<String>,
    email: Option<String>,
    method_id: Option<String>,
    name: Option<String>,
    created_at: i64,
    updated_at: i64,
    failures: i64,
    last_failure_at: i64,
}

fn corrupt(what: &str, id: &str) -> StoreError {
    StoreError::Other(format!("corrupt row {id}: {what}"))
}

impl TryFrom<FactorRow> for Factor {
    type Error = StoreError;

    fn try_from(r: FactorRow) -> Result<Self, StoreError> {
        let kind = type_from_code(&r.kind).ok_or_else(|| corrupt("type", &r.id))?;
        let details = match kind {
            FactorType::Totp => FactorDetails::Totp(TotpFactor {
                issuer: r.totp_issuer.unwrap_or_default(),
                user: r.totp_user.unwrap_or_default(),
                algorithm: r
                    .totp_algorithm
                    .as_deref()
                    .and_then(mfad_otp::Algorithm::parse)
                    .ok_or_else(|| corrupt("totp_algorithm", &r.id))?,
                digits: r
                    .totp_digits
                    .and_then(|d| u8::try_from(d).ok())
                    .ok_or_else(|| corrupt("totp_digits", &r.id))?,
                period: r
                    .totp_period
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| corrupt("totp_period", &r.id))?,
                sealed_secret: r.totp_secret.ok_or_else(|| corrupt("totp_secret", &r.id))?,
                last_used_step: r.totp_last_step,
            }),
            FactorType::Sms => FactorDetails::Sms {
                phone: PhoneNumber::from_trusted(
                    r.phone_number
                        .ok_or_else(|| corrupt("phone_number", &r.id))?,
                ),
            },
            FactorType::GenericOtp => FactorDetails::GenericOtp,
            FactorType::Email => FactorDetails::Email {
                address: r.email.ok_or_else(|| corrupt("email", &r.id))?,
            },
        };
        Ok(Factor {
            id: FactorId::from_trusted(r.id),
            tenant_id: TenantId::from_trusted(r.tenant_id),
            user_id: r.user_id.map(UserId::from_trusted),
            details,
            method_id: r.method_id.map(MethodId::from_trusted),
            name: r.name,
            created_at: from_unix_ms(r.created_at),
            updated_at: from_unix_ms(r.updated_at),
            failures: crate::throttle::failure_count(r.failures, r.last_failure_at),
        })
    }
}

/// The storage encoding of factor types: fixed strings of our own, independent of either
/// API's wire names (they happen to match WorkOS's today, which keeps existing rows valid).
pub(crate) fn type_code(t: FactorType) -> &'static str {
    match t {
        FactorType::Totp => "totp",
        FactorType::Sms => "sms",
        FactorType::GenericOtp => "generic_otp",
        FactorType::Email => "email",
    }
}

/// The factor type a stored code names.
pub(crate) fn type_from_code(s: &str) -> Option<FactorType> {
    [
        FactorType::Totp,
        FactorType::Sms,
        FactorType::GenericOtp,
        FactorType::Email,
    ]
    .into_iter()
    .find(|t| type_code(*t) == s)
}

/// The factor types that are FusionAuth methods.
pub(crate) const METHOD_TYPES: [FactorType; 3] =
    [FactorType::Totp, FactorType::Sms, FactorType::Email];

/// Binds [`METHOD_TYPES`] to the next three placeholders (a query's `type IN ($n, …)`).
pub(crate) fn bind_method_types(q: Sql<'_>) -> Sql<'_> {
    METHOD_TYPES
        .into_iter()
        .fold(q, |q, t| q.bind(type_code(t)))
}

/// The insert of a whole factor row, every column bound.
pub(crate) fn insert_factor(f: &Factor) -> Sql<'_> {
    let totp = match &f.details {
        FactorDetails::Totp(t) => Some(t),
        _ => None,
    };
    let (phone, email) = match &f.details {
        FactorDetails::Sms { phone } => (Some(phone.as_str()), None),
        FactorDetails::Email { address } => (None, Some(address.as_str())),
        FactorDetails::Totp(_) | FactorDetails::GenericOtp => (None, None),
    };
    sql(
        "INSERT INTO factors (id, tenant_id, user_id, type, totp_issuer, totp_user, \
         totp_algorithm, totp_digits, totp_period, totp_secret, totp_last_step, phone_number, \
         email, method_id, name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(f.id.as_str())
    .bind(f.tenant_id.as_str())
    .bind(f.user_id.as_ref().map(UserId::as_str))
    .bind(type_code(f.details.factor_type()))
    .bind(totp.map(|t| t.issuer.as_str()))
    .bind(totp.map(|t| t.user.as_str()))
    .bind(totp.map(|t| t.algorithm.uri_name()))
    .bind(totp.map(|t| i64::from(t.digits)))
    .bind(totp.map(|t| i64::from(t.period)))
    .bind(totp.map(|t| t.sealed_secret.as_slice()))
    .bind(totp.and_then(|t| t.last_used_step))
    .bind(phone)
    .bind(email)
    .bind(f.method_id.as_ref().map(MethodId::as_str))
    .bind(f.name.as_deref())
    .bind(unix_ms(f.created_at))
    .bind(unix_ms(f.updated_at))
}

/// The insert of a challenge row.
pub(crate) fn insert_challenge(c: &Challenge) -> Sql<'_> {
    sql(
        "INSERT INTO challenges (id, tenant_id, factor_id, code_digest, expires_at, attempts, \
         verified_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.id.as_str())
    .bind(c.tenant_id.as_str())
    .bind(c.factor_id.as_str())
    .bind(c.code_digest.as_deref())
    .bind(unix_ms(c.expires_at))
    .bind(i64::from(c.attempts))
    .bind(c.verified_at.map(unix_ms))
    .bind(unix_ms(c.created_at))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ChallengeRow {
    ch_id: String,
    ch_tenant_id: String,
    ch_factor_id: String,
    ch_code_digest: Option<Vec<u8>>,
    ch_expires_at: i64,
    ch_attempts: i64,
    ch_verified_at: Option<i64>,
    ch_created_at: i64,
}

impl From<ChallengeRow> for Challenge {
    fn from(r: ChallengeRow) -> Self {
        Challenge {
            id: ChallengeId::from_trusted(r.ch_id),
            tenant_id: TenantId::from_trusted(r.ch_tenant_id),
            factor_id: FactorId::from_trusted(r.ch_factor_id),
            code_digest: r.ch_code_digest,
            expires_at: from_unix_ms(r.ch_expires_at),
            attempts: u32::try_from(r.ch_attempts).unwrap_or(u32::MAX),
            verified_at: r.ch_verified_at.map(from_unix_ms),
            created_at: from_unix_ms(r.ch_created_at),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ChallengeWithFactorRow {
    #[sqlx(flatten)]
    pub challenge: ChallengeRow,
    #[sqlx(flatten)]
    pub factor: FactorRow,
}

/// The columns of [`crate::challenges::get_sql`], in its order (a test holds the two
/// together).
pub(crate) const CHALLENGE_WITH_FACTOR_COLUMNS: [&str; 27] = [
    "ch_id",
    "ch_tenant_id",
    "ch_factor_id",
    "ch_code_digest",
    "ch_expires_at",
    "ch_attempts",
    "ch_verified_at",
    "ch_created_at",
    "id",
    "tenant_id",
    "user_id",
    "type",
    "totp_issuer",
    "totp_user",
    "totp_algorithm",
    "totp_digits",
    "totp_period",
    "totp_secret",
    "totp_last_step",
    "phone_number",
    "email",
    "method_id",
    "name",
    "created_at",
    "updated_at",
    "failures",
    "last_failure_at",
];

/// The position of `name` in [`CHALLENGE_WITH_FACTOR_COLUMNS`]; used in `const` blocks
/// only, so a name that is not there fails the build.
#[expect(
    clippy::panic,
    reason = "evaluated at compile time only: an unknown column fails the build"
)]
const fn column(name: &str) -> usize {
    let mut i = 0;
    while i < CHALLENGE_WITH_FACTOR_COLUMNS.len() {
        if CHALLENGE_WITH_FACTOR_COLUMNS[i].eq_ignore_ascii_case(name) {
            return i;
        }
        i += 1;
    }
    panic!("not a column of challenges::get_sql")
}

impl ChallengeWithFactorRow {
    /// Decodes the row of [`crate::challenges::get_sql`] on the SQLite writer's own
    /// connection (rusqlite), by the same column names as sqlx's `FromRow`, each turned
    /// into its position when this is compiled: rusqlite finds a name by comparing it with
    /// every column's, which for 27 columns was a tenth of the writer thread's time
    /// (docs/BENCHMARKS.md).
    pub(crate) fn from_rusqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ChallengeWithFactorRow {
            challenge: ChallengeRow {
                ch_id: r.get(const { column("ch_id") })?,
                ch_tenant_id: r.get(const { column("ch_tenant_id") })?,
                ch_factor_id: r.get(const { column("ch_factor_id") })?,
                ch_code_digest: r.get(const { column("ch_code_digest") })?,
                ch_expires_at: r.get(const { column("ch_expires_at") })?,
                ch_attempts: r.get(const { column("ch_attempts") })?,
                ch_verified_at: r.get(const { column("ch_verified_at") })?,
                ch_created_at: r.get(const { column("ch_created_at") })?,
            },
            factor: FactorRow {
                id: r.get(const { column("id") })?,
                tenant_id: r.get(const { column("tenant_id") })?,
                user_id: r.get(const { column("user_id") })?,
                kind: r.get(const { column("type") })?,
                totp_issuer: r.get(const { column("totp_issuer") })?,
                totp_user: r.get(const { column("totp_user") })?,
                totp_algorithm: r.get(const { column("totp_algorithm") })?,
                totp_digits: r.get(const { column("totp_digits") })?,
                totp_period: r.get(const { column("totp_period") })?,
                totp_secret: r.get(const { column("totp_secret") })?,
                totp_last_step: r.get(const { column("totp_last_step") })?,
                phone_number: r.get(const { column("phone_number") })?,
                email: r.get(const { column("email") })?,
                method_id: r.get(const { column("method_id") })?,
                name: r.get(const { column("name") })?,
                created_at: r.get(const { column("created_at") })?,
                updated_at: r.get(const { column("updated_at") })?,
                failures: r.get(const { column("failures") })?,
                last_failure_at: r.get(const { column("last_failure_at") })?,
            },
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: String,
    name: String,
    created_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: TenantId::from_trusted(r.id),
            name: r.name,
            created_at: from_unix_ms(r.created_at),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    digest: Vec<u8>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: ApiKeyId::from_trusted(r.id),
            tenant_id: TenantId::from_trusted(r.tenant_id),
            name: r.name,
            digest: r.digest,
            created_at: from_unix_ms(r.created_at),
            revoked_at: r.revoked_at.map(from_unix_ms),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ApiKeyWithTenantRow {
    #[sqlx(flatten)]
    pub key: ApiKeyRow,
    pub tenant_name: String,
    pub tenant_created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_type_codes_round_trip_and_keep_the_stored_strings() {
        // Rows written before the encoding was the store's own used these strings.
        let stored = [
            (FactorType::Totp, "totp"),
            (FactorType::Sms, "sms"),
            (FactorType::GenericOtp, "generic_otp"),
            (FactorType::Email, "email"),
        ];
        for (t, code) in stored {
            assert_eq!(type_code(t), code);
            assert_eq!(type_from_code(code), Some(t));
        }
        assert_eq!(type_from_code("TOTP"), None);
        assert_eq!(type_from_code(""), None);
    }
}
