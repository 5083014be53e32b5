//! Row shapes shared by the backends, and their mapping to domain records. Both schemas
//! use the same column names and 64-bit integers, so one mapping serves both.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::ids::{ApiKeyId, ChallengeId, FactorId, MethodId, TenantId, UserId};
use mfad_core::model::{ApiKey, Challenge, Factor, FactorDetails, FactorType, Tenant, TotpFactor};
use mfad_core::phone::PhoneNumber;

/// The factor columns, qualified by the alias `f` (a macro, so queries can be `concat!`ed
/// into static strings).
macro_rules! factor_columns {
    () => {
        "f.id, f.tenant_id, f.user_id, f.type, f.totp_issuer, f.totp_user, \
     f.totp_algorithm, f.totp_digits, f.totp_period, f.totp_secret, f.totp_last_step, \
     f.phone_number, f.email, f.method_id, f.name, f.created_at, f.updated_at, \
     f.failures, f.last_failure_at"
    };
}
pub(crate) use factor_columns;

/// The challenge columns, qualified by `c` and prefixed `ch_` so they can sit beside a factor's.
macro_rules! challenge_columns {
    () => {
        "c.id AS ch_id, c.tenant_id AS ch_tenant_id, \
     c.factor_id AS ch_factor_id, c.code_digest AS ch_code_digest, c.expires_at AS ch_expires_at, \
     c.attempts AS ch_attempts, c.verified_at AS ch_verified_at, c.created_at AS ch_created_at"
    };
}
pub(crate) use challenge_columns;

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
        let kind = FactorType::parse(&r.kind).ok_or_else(|| corrupt("type", &r.id))?;
        let details = match kind {
            FactorType::Totp => FactorDetails::Totp(TotpFactor {
                issuer: r.totp_issuer.unwrap_or_default(),
                user: r.totp_user.unwrap_or_default(),
                algorithm: r
                    .totp_algorithm
                    .as_deref()
                    .and_then(mfad_otp_algorithm)
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

fn mfad_otp_algorithm(s: &str) -> Option<mfad_otp::Algorithm> {
    mfad_otp::Algorithm::parse(s)
}

/// Column values of a factor, in the order of [`FACTOR_INSERT`].
pub(crate) struct FactorValues<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub user_id: Option<&'a str>,
    pub kind: &'static str,
    pub totp_issuer: Option<&'a str>,
    pub totp_user: Option<&'a str>,
    pub totp_algorithm: Option<&'static str>,
    pub totp_digits: Option<i64>,
    pub totp_period: Option<i64>,
    pub totp_secret: Option<&'a [u8]>,
    pub totp_last_step: Option<i64>,
    pub phone_number: Option<&'a str>,
    pub email: Option<&'a str>,
    pub method_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const FACTOR_INSERT: &str = "INSERT INTO factors (id, tenant_id, user_id, type, \
     totp_issuer, totp_user, totp_algorithm, totp_digits, totp_period, totp_secret, totp_last_step, \
     phone_number, email, method_id, name, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

impl<'a> From<&'a Factor> for FactorValues<'a> {
    fn from(f: &'a Factor) -> Self {
        let mut v = FactorValues {
            id: f.id.as_str(),
            tenant_id: f.tenant_id.as_str(),
            user_id: f.user_id.as_ref().map(UserId::as_str),
            kind: f.details.factor_type().as_str(),
            totp_issuer: None,
            totp_user: None,
            totp_algorithm: None,
            totp_digits: None,
            totp_period: None,
            totp_secret: None,
            totp_last_step: None,
            phone_number: None,
            email: None,
            method_id: f.method_id.as_ref().map(MethodId::as_str),
            name: f.name.as_deref(),
            created_at: unix_ms(f.created_at),
            updated_at: unix_ms(f.updated_at),
        };
        match &f.details {
            FactorDetails::Totp(t) => {
                v.totp_issuer = Some(&t.issuer);
                v.totp_user = Some(&t.user);
                v.totp_algorithm = Some(t.algorithm.uri_name());
                v.totp_digits = Some(i64::from(t.digits));
                v.totp_period = Some(i64::from(t.period));
                v.totp_secret = Some(&t.sealed_secret);
                v.totp_last_step = t.last_used_step;
            }
            FactorDetails::Sms { phone } => v.phone_number = Some(phone.as_str()),
            FactorDetails::GenericOtp => {}
            FactorDetails::Email { address } => v.email = Some(address),
        }
        v
    }
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
