//! Domain records. Storage maps these to rows and back; the API layers map them to wire
//! objects. Secrets appear here only sealed ([`TotpFactor::sealed_secret`]) or as digests.

use mfad_otp::Algorithm;
use time::OffsetDateTime;

use crate::ids::{ApiKeyId, ChallengeId, FactorId, TenantId, UserId};
use crate::phone::PhoneNumber;

/// The kinds of factor mfad enrolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorType {
    /// Time-based one-time passwords from an authenticator app (RFC 6238).
    Totp,
    /// Codes texted to a phone.
    Sms,
    /// Codes that mfad generates and the caller delivers however it likes.
    GenericOtp,
}

impl FactorType {
    /// The WorkOS wire name, also used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Sms => "sms",
            FactorType::GenericOtp => "generic_otp",
        }
    }

    /// Parses the wire/storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(FactorType::Totp),
            "sms" => Some(FactorType::Sms),
            "generic_otp" => Some(FactorType::GenericOtp),
            _ => None,
        }
    }
}

/// A TOTP factor's public parameters and sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// Shown by authenticator apps above the account name.
    pub issuer: String,
    /// The account name shown by authenticator apps.
    pub user: String,
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: u8,
    /// Step in seconds.
    pub period: u32,
    /// The secret, AES-GCM sealed with the factor id as associated data.
    pub sealed_secret: Vec<u8>,
    /// The last time step accepted; codes of this step or earlier never pass again.
    pub last_used_step: Option<i64>,
}

impl TotpFactor {
    /// The verification parameters, with the policy's drift window.
    pub fn params(&self, skew: u64) -> mfad_otp::Totp {
        mfad_otp::Totp {
            algorithm: self.algorithm,
            digits: self.digits,
            period: u64::from(self.period),
            skew,
        }
    }
}

/// What distinguishes one factor type from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorDetails {
    /// An authenticator app.
    Totp(TotpFactor),
    /// A phone that receives texts.
    Sms {
        /// Where codes go, E.164.
        phone: PhoneNumber,
    },
    /// Caller-delivered codes.
    GenericOtp,
}

impl FactorDetails {
    /// The factor's type.
    pub fn factor_type(&self) -> FactorType {
        match self {
            FactorDetails::Totp(_) => FactorType::Totp,
            FactorDetails::Sms { .. } => FactorType::Sms,
            FactorDetails::GenericOtp => FactorType::GenericOtp,
        }
    }
}

/// An enrolled authentication factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// Public id.
    pub id: FactorId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The application's user, when enrolled for one.
    pub user_id: Option<UserId>,
    /// Type-specific data.
    pub details: FactorDetails,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change to the public fields.
    pub updated_at: OffsetDateTime,
}

/// A challenge: one attempt to prove possession of a factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Public id.
    pub id: ChallengeId,
    /// Owning tenant (same as the factor's).
    pub tenant_id: TenantId,
    /// The factor being challenged.
    pub factor_id: FactorId,
    /// Peppered digest of the code, for SMS and generic OTP; `None` for TOTP.
    pub code_digest: Option<Vec<u8>>,
    /// After this instant no code is accepted.
    pub expires_at: OffsetDateTime,
    /// Wrong codes so far.
    pub attempts: u32,
    /// When it was verified, if it was.
    pub verified_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A tenant: an application (or environment) whose factors are isolated from all others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Public id.
    pub id: TenantId,
    /// Unique human name (`acme`).
    pub name: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// An API key as stored: only a digest of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id, embedded in the token.
    pub id: ApiKeyId,
    /// The tenant it acts for.
    pub tenant_id: TenantId,
    /// A label for humans.
    pub name: String,
    /// SHA-256 of the token's secret part.
    pub digest: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Set once revoked; a revoked key never authenticates again.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Sort order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// One page of a listing, with cursors in WorkOS's sense: `after` is set only when a
/// further page exists, `before` only when an earlier one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the requested order.
    pub data: Vec<T>,
    /// Cursor for the previous page.
    pub before: Option<String>,
    /// Cursor for the next page.
    pub after: Option<String>,
}
