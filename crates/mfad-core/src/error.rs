//! The domain's one error type. Each API surface maps it to its own wire shape in one
//! place (the server's `error` module); messages here never contain secrets or codes.

use crate::ids::{ChallengeId, FactorId};

/// What kind of object a lookup failed to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// An authentication factor.
    Factor,
    /// An authentication challenge.
    Challenge,
    /// A user.
    User,
    /// An API key.
    ApiKey,
    /// A tenant.
    Tenant,
    /// A tenant's JWT verification key.
    JwtKey,
    /// A WebAuthn passkey.
    Passkey,
    /// A webhook endpoint.
    WebhookEndpoint,
}

/// The input a validation error is about, in the domain's words. Each API adapter maps it
/// to its own wire name (`totp_issuer` on WorkOS, `mobilePhone` on FusionAuth, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A tenant's name (operator commands).
    TenantName,
    /// A JWT verification key being added (operator command).
    JwtKey,
    /// An HS256 secret of a JWT key.
    JwtSecret,
    /// A JWT key's `kid`.
    Kid,
    /// A TOTP factor's issuer.
    TotpIssuer,
    /// A TOTP factor's account name.
    TotpUser,
    /// An imported TOTP secret.
    TotpSecret,
    /// The text of an SMS carrying a code.
    SmsTemplate,
    /// A page size.
    Limit,
    /// A factor's label.
    Name,
    /// A one-time code, TOTP code or recovery code.
    Code,
    /// A phone number.
    PhoneNumber,
    /// An email address.
    Email,
    /// A factor's per-user method id.
    MethodId,
    /// A user's factors as a whole (none, or too many).
    Methods,
    /// A user named by one of their addresses or numbers.
    LoginId,
    /// A WebAuthn origin.
    Origin,
    /// A WebAuthn relying party id.
    RpId,
    /// A WebAuthn attestation trust store.
    TrustStore,
    /// A passkey's display name.
    DisplayName,
    /// A browser's user agent string.
    UserAgent,
    /// A webhook endpoint's delivery URL.
    WebhookUrl,
    /// The event names a webhook endpoint subscribes to (`NotDeliverable`: one its format
    /// has no wire event for).
    WebhookEvents,
}

/// Why a field is invalid, in the domain's words; adapters choose the wire code and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Missing or blank.
    Required,
    /// Malformed.
    Invalid,
    /// Longer than `max` characters.
    TooLong {
        /// The longest accepted.
        max: usize,
    },
    /// Outside `min..=max`.
    OutOfRange {
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
    },
    /// Already taken by another of the user's factors.
    Duplicate,
    /// More than `max` of them.
    TooMany {
        /// Most allowed.
        max: usize,
    },
    /// Names nothing the user has.
    NotFound,
    /// Names something codes cannot be sent to (an authenticator, or nothing deliverable).
    NotDeliverable,
    /// Matches more than one user.
    Ambiguous,
    /// A message template without the code placeholder.
    MissingPlaceholder,
    /// A message template with a link in it.
    ContainsUrl,
    /// Shorter than `min` bytes.
    TooShort {
        /// The fewest accepted.
        min: usize,
    },
    /// Control characters (a line break aside) or bidirectional overrides, which make a
    /// message read differently from what it says.
    UnsafeCharacters,
    /// A URL whose scheme is not `https` where only `https` is allowed.
    InsecureScheme,
    /// A URL carrying a user name or password.
    Credentials,
    /// A URL whose host is an address (or a name) deliveries may not be sent to:
    /// loopback, private, link-local and the like (server-side request forgery).
    ForbiddenAddress,
}

/// One invalid input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    /// What is wrong.
    pub field: Field,
    /// Why.
    pub reason: Reason,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: Field, reason: Reason) -> Self {
        FieldError { field, reason }
    }
}

/// Failures of the storage port. `Unavailable` means "try again later" (503); anything
/// else is a bug or corruption (500). Messages are for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else.
    #[error("database error: {0}")]
    Other(String),
}

/// Every way a domain operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The object does not exist, or belongs to another tenant (indistinguishable by design).
    #[error("{entity:?} not found: {id}")]
    NotFound {
        /// Kind of object.
        entity: Entity,
        /// The id the caller asked for.
        id: String,
    },
    /// The request is malformed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The phone number is not a valid, dialable number.
    #[error("invalid phone number")]
    InvalidPhoneNumber {
        /// What the caller sent (echoed to the caller only; never logged).
        input: String,
    },
    /// The factor cannot be challenged this way (e.g. a method that needs a phone).
    #[error("factor {0} cannot be used for this operation")]
    WrongFactorType(FactorId),
    /// The challenge was already verified once.
    #[error("challenge {0} was already verified")]
    ChallengePreviouslyVerified(ChallengeId),
    /// The challenge is past its expiry.
    #[error("challenge {0} has expired")]
    ChallengeExpired(ChallengeId),
    /// The challenge used up its attempts.
    #[error("challenge {0} has had too many attempts")]
    TooManyAttempts(ChallengeId),
    /// A one-time code, TOTP code or recovery code is wrong, expired or used up
    /// (FusionAuth answers 421 with an empty body; WorkOS never reports this).
    #[error("invalid code")]
    InvalidCode,
    /// The caller did something too often (codes sent for one login); retry later.
    #[error("too many requests")]
    TooManyRequests,
    /// The factor (or user) failed too many codes in a row: attempts are refused, unjudged,
    /// until `retry_after` has passed (see [`crate::verify::ThrottlePolicy`]).
    #[error("too many failed attempts; retry in {retry_after}")]
    Throttled {
        /// How long until an attempt is judged again.
        retry_after: time::Duration,
    },
    /// The factor (or user) reached the failure cap: every code is refused until an
    /// operator unlocks it (`mfad factor unlock`) or the factor is enrolled again.
    #[error("locked after too many failed attempts")]
    Locked,
    /// A send limit refused to send a code (SMS-pumping defence); nothing was sent.
    #[error("send refused: {}", limit.describe())]
    SendLimited {
        /// Which limit.
        limit: crate::send_limits::SendLimit,
        /// When a retry can succeed, in whole seconds.
        retry_after_secs: u64,
    },
    /// Codes may not be texted to this number's country (deployment or tenant rules).
    #[error("SMS to this country is not allowed")]
    SmsCountryNotAllowed {
        /// The number's ISO 3166 alpha-2 region, if the numbering plan names one.
        country: Option<String>,
    },
    /// Missing, malformed, unknown or revoked credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// The SMS (or email) provider refused or failed.
    #[error("message delivery failed: {0}")]
    Delivery(String),
    /// A WebAuthn ceremony was refused (see [`crate::webauthn`]).
    #[error("WebAuthn refused: {0:?}")]
    WebAuthn(crate::webauthn::Refusal),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys or randomness failed, or stored ciphertext does not open.
    #[error(transparent)]
    Crypto(#[from] mfad_crypto::CryptoError),
    /// An invariant broke (corrupt row, impossible state).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FieldError> for CoreError {
    fn from(e: FieldError) -> Self {
        CoreError::Validation(vec![e])
    }
}

impl CoreError {
    /// Shorthand for a single-field validation error.
    pub fn invalid(field: Field, reason: Reason) -> Self {
        CoreError::Validation(vec![FieldError::new(field, reason)])
    }

    /// Shorthand for a not-found error.
    pub fn not_found(entity: Entity, id: impl Into<String>) -> Self {
        CoreError::NotFound {
            entity,
            id: id.into(),
        }
    }
}
