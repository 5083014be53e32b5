//! Domain records. Storage maps these to rows and back; the API layers map them to wire
//! objects. Secrets appear here only sealed ([`TotpFactor::sealed_secret`]) or as digests.

use mfad_otp::Algorithm;
use time::OffsetDateTime;

use crate::ids::{ApiKeyId, ChallengeId, FactorId, MethodId, TenantId, UserId};
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
    /// Codes emailed to an address (FusionAuth's `email` method). Not a WorkOS type: the
    /// WorkOS API shows these factors as `generic_otp`.
    Email,
}

impl FactorType {
    /// The WorkOS wire name, also used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Sms => "sms",
            FactorType::GenericOtp => "generic_otp",
            FactorType::Email => "email",
        }
    }

    /// Parses the wire/storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(FactorType::Totp),
            "sms" => Some(FactorType::Sms),
            "generic_otp" => Some(FactorType::GenericOtp),
            "email" => Some(FactorType::Email),
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
    /// A mailbox that receives codes.
    Email {
        /// Where codes go, trimmed and lower-cased.
        address: String,
    },
}

impl FactorDetails {
    /// The factor's type.
    pub fn factor_type(&self) -> FactorType {
        match self {
            FactorDetails::Totp(_) => FactorType::Totp,
            FactorDetails::Sms { .. } => FactorType::Sms,
            FactorDetails::GenericOtp => FactorType::GenericOtp,
            FactorDetails::Email { .. } => FactorType::Email,
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
    /// The per-user method id (FusionAuth's), given to every factor filed under a user
    /// when it is enrolled, through either API.
    pub method_id: Option<MethodId>,
    /// A label for humans (FusionAuth's method `name`).
    pub name: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change to the public fields.
    pub updated_at: OffsetDateTime,
    /// Consecutive wrong codes, across challenges, sends and both APIs (the throttle's input).
    pub failures: FailureCount,
}

/// Consecutive wrong codes on one factor (or one user), as the throttle sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureCount {
    /// Wrong codes since the last right one (or the last operator unlock).
    pub consecutive: u32,
    /// When the last of them was judged; `None` when there is none.
    pub last_at: Option<OffsetDateTime>,
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

// ---- FusionAuth two-factor records --------------------------------------------------

/// A recovery code as stored: a peppered digest (to check a code) and the code sealed
/// under the keyring (only so FusionAuth's deprecated "retrieve recovery codes" can show
/// the remaining ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCode {
    /// `Keyring::code_digest` of the canonical code, context = tenant and user.
    pub digest: Vec<u8>,
    /// `Keyring::seal` of the canonical code, bound to tenant, user and digest.
    pub sealed: Vec<u8>,
    /// When the set was generated.
    pub created_at: OffsetDateTime,
}

/// A one-time code sent by SMS or email (or returned by `start`), waiting to be used.
/// At most one per `(tenant, scope)`: a new send replaces, and so invalidates, the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// What the code unlocks (`enable:…`, `disable:…`, `login:…`, `legacy:…`).
    pub scope: String,
    /// The user it was sent for, when known.
    pub user_id: Option<UserId>,
    /// Peppered digest of the code, context = tenant and scope.
    pub digest: Vec<u8>,
    /// Scope-specific data: the method id a login code went to, or the phone number of a
    /// legacy (≤ 1.25) send.
    pub payload: Option<String>,
    /// After this instant the code is refused.
    pub expires_at: OffsetDateTime,
    /// Wrong codes so far.
    pub attempts: u32,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A two-factor login in progress (FusionAuth's `twoFactorId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginState {
    /// SHA-256 (hex) of the `twoFactorId`; the id itself is never stored.
    pub id_digest: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The user logging in.
    pub user_id: UserId,
    /// The application the login is for, if the caller said.
    pub application_id: Option<String>,
    /// The caller's `state` object (JSON text), echoed in the login response.
    pub state: Option<String>,
    /// After this instant the login is gone.
    pub expires_at: OffsetDateTime,
    /// Wrong codes so far; at the limit the login is deleted.
    pub attempts: u32,
    /// Codes sent so far through `/api/two-factor/send/{twoFactorId}`.
    pub sends: u32,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl LoginState {
    /// The [`PendingCode::scope`] of the codes sent for the login whose id digest is
    /// `id_digest` (so storage can delete them with the login).
    pub fn code_scope(id_digest: &str) -> String {
        format!("login:{id_digest}")
    }
}

/// A trusted computer (FusionAuth's `twoFactorTrustId`): while it lasts, the status
/// endpoint says no second factor is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// SHA-256 (hex) of the `twoFactorTrustId`.
    pub id_digest: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The user who logged in.
    pub user_id: UserId,
    /// The application of that login, if any.
    pub application_id: Option<String>,
    /// When it was granted.
    pub created_at: OffsetDateTime,
    /// When it ends.
    pub expires_at: OffsetDateTime,
}
