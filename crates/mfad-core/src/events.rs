//! Audit events: what the domain records about every security-relevant change.
//!
//! The service decides which event a change makes and builds it here, as a typed
//! [`Event`]; an [`EventEncoder`] (the server's, which knows the wire shapes) turns it
//! into an [`EventRecord`]; the store writes that record in the same transaction as the
//! change, so there is no event without its change and no change without its event.
//! Events carry no secret, no code and no full destination: a factor appears as a
//! [`FactorView`], whose phone number or address is already redacted.
//!
//! The catalogue with each event's payload is `docs/EVENTS.md`.

use std::future::Future;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::error::CoreError;
use crate::ids::{ApiKeyId, ChallengeId, EventId, FactorId, JwtKeyId, MethodId, TenantId, UserId};
use crate::model::{Challenge, Factor, FactorDetails, FactorType};

/// Every kind of event mfad records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A factor was enrolled (WorkOS API).
    FactorCreated,
    /// A factor was deleted (WorkOS API).
    FactorDeleted,
    /// A factor reached the failure cap: it refuses every code until unlocked.
    FactorLocked,
    /// An operator cleared a factor's (or a user's) failures.
    FactorUnlocked,
    /// A challenge was opened.
    ChallengeCreated,
    /// A code proved a factor (WorkOS verify).
    MfaSucceeded,
    /// A wrong code was counted (WorkOS verify).
    MfaFailed,
    /// An attempt was refused unjudged by the throttle (either API).
    MfaThrottled,
    /// A send (SMS or email) was refused by a send limit.
    SendRefused,
    /// A FusionAuth two-factor method was enabled.
    MethodAdded,
    /// A FusionAuth two-factor method was disabled.
    MethodRemoved,
    /// A FusionAuth two-factor login completed.
    LoginSucceeded,
    /// A wrong code was counted against a FusionAuth two-factor login.
    LoginFailed,
    /// A user's recovery codes were (re)generated.
    RecoveryCodesGenerated,
    /// A recovery code was used up.
    RecoveryCodeUsed,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A JWT verification key was added.
    JwtKeyAdded,
    /// A JWT verification key was removed.
    JwtKeyRemoved,
}

impl EventKind {
    /// Every kind, in catalogue order.
    pub const ALL: [EventKind; 19] = [
        EventKind::FactorCreated,
        EventKind::FactorDeleted,
        EventKind::FactorLocked,
        EventKind::FactorUnlocked,
        EventKind::ChallengeCreated,
        EventKind::MfaSucceeded,
        EventKind::MfaFailed,
        EventKind::MfaThrottled,
        EventKind::SendRefused,
        EventKind::MethodAdded,
        EventKind::MethodRemoved,
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::RecoveryCodesGenerated,
        EventKind::RecoveryCodeUsed,
        EventKind::ApiKeyCreated,
        EventKind::ApiKeyRevoked,
        EventKind::JwtKeyAdded,
        EventKind::JwtKeyRemoved,
    ];

    /// The event's name: WorkOS's where WorkOS has one, else one in the same style.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::FactorCreated => "authentication_factor.created",
            EventKind::FactorDeleted => "authentication_factor.deleted",
            EventKind::FactorLocked => "authentication_factor.locked",
            EventKind::FactorUnlocked => "authentication_factor.unlocked",
            EventKind::ChallengeCreated => "authentication_challenge.created",
            EventKind::MfaSucceeded => "authentication.mfa_succeeded",
            EventKind::MfaFailed => "authentication.mfa_failed",
            EventKind::MfaThrottled => "authentication.mfa_throttled",
            EventKind::SendRefused => "authentication_challenge.send_refused",
            EventKind::MethodAdded => "two_factor.method_added",
            EventKind::MethodRemoved => "two_factor.method_removed",
            EventKind::LoginSucceeded => "two_factor.login_succeeded",
            EventKind::LoginFailed => "two_factor.login_failed",
            EventKind::RecoveryCodesGenerated => "recovery_codes.generated",
            EventKind::RecoveryCodeUsed => "recovery_code.used",
            EventKind::ApiKeyCreated => "api_key.created",
            EventKind::ApiKeyRevoked => "api_key.revoked",
            EventKind::JwtKeyAdded => "jwt_key.added",
            EventKind::JwtKeyRemoved => "jwt_key.removed",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The request a change came from, as the server saw it. Set by the server around each
/// request ([`with_request`]); empty for operator commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The `X-Request-Id` the response carries.
    pub request_id: Option<String>,
    /// The client address, when a trusted proxy header gives it (else the peer's).
    pub ip_address: Option<String>,
    /// The caller's `User-Agent`.
    pub user_agent: Option<String>,
}

tokio::task_local! {
    // Scoped to one request's task, not global: nothing outside `with_request` sees it.
    static REQUEST: RequestMeta;
}

/// Runs `f` (one request) with `meta` as the request every event it records names.
pub async fn with_request<F: Future>(meta: RequestMeta, f: F) -> F::Output {
    REQUEST.scope(meta, f).await
}

/// The request being served, if any.
pub fn current_request() -> RequestMeta {
    REQUEST.try_with(Clone::clone).unwrap_or_default()
}

/// A factor as events show it: public fields only, the destination redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorView {
    /// The factor id.
    pub id: FactorId,
    /// Its type.
    pub factor_type: FactorType,
    /// The user it is filed under.
    pub user_id: Option<UserId>,
    /// Its FusionAuth method id.
    pub method_id: Option<MethodId>,
    /// Its label.
    pub name: Option<String>,
    /// TOTP issuer and account name.
    pub totp: Option<(String, String)>,
    /// The phone number or address, redacted (`+14…89`, `…@example.com`).
    pub destination: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// The redacted form of an email address: only its domain.
pub fn redact_email(address: &str) -> String {
    format!("…@{}", address.rsplit_once('@').map_or("", |(_, d)| d))
}

impl FactorView {
    /// The view of `f`.
    pub fn of(f: &Factor) -> Self {
        let (totp, destination) = match &f.details {
            FactorDetails::Totp(t) => (Some((t.issuer.clone(), t.user.clone())), None),
            FactorDetails::Sms { phone } => (None, Some(phone.redacted())),
            FactorDetails::Email { address } => (None, Some(redact_email(address))),
            FactorDetails::GenericOtp => (None, None),
        };
        FactorView {
            id: f.id.clone(),
            factor_type: f.details.factor_type(),
            user_id: f.user_id.clone(),
            method_id: f.method_id.clone(),
            name: f.name.clone(),
            totp,
            destination,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// A challenge as events show it (never its code or digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeView {
    /// The challenge id.
    pub id: ChallengeId,
    /// The challenged factor.
    pub factor_id: FactorId,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this no code is accepted.
    pub expires_at: OffsetDateTime,
}

impl ChallengeView {
    /// The view of `c`.
    pub fn of(c: &Challenge) -> Self {
        ChallengeView {
            id: c.id.clone(),
            factor_id: c.factor_id.clone(),
            created_at: c.created_at,
            expires_at: c.expires_at,
        }
    }
}

/// Why an attempt failed or was refused: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable, machine-readable (`invalid_code`, `throttled`, `send_limit`, …).
    pub code: &'static str,
    /// For humans.
    pub message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// How a FusionAuth login's code was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProof {
    /// An authenticator app's code.
    Totp,
    /// A code sent by SMS or email (or returned by `start`).
    SentCode,
    /// A recovery code.
    RecoveryCode,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A factor (enrolled, deleted, locked, unlocked, a method added or removed).
    Factor(FactorView),
    /// All of a user's factors (an operator unlock of a user).
    User(UserId),
    /// A challenge of a factor.
    Challenge {
        /// The challenge.
        challenge: ChallengeView,
        /// Its factor.
        factor: FactorView,
    },
    /// A judged or refused attempt on a factor, or a user's login.
    Attempt {
        /// The user, when known.
        user_id: Option<UserId>,
        /// The factor the code was for, when one.
        factor: Option<FactorView>,
        /// The challenge, on the WorkOS API.
        challenge: Option<ChallengeView>,
        /// How a login's code was proved.
        proof: Option<LoginProof>,
        /// Why it failed, if it did.
        failure: Option<Failure>,
    },
    /// A refused send.
    Send {
        /// The user, when known.
        user_id: Option<UserId>,
        /// The factor the code was for, when one.
        factor: Option<FactorView>,
        /// Where it would have gone, redacted.
        destination: String,
        /// The limit that refused it.
        failure: Failure,
    },
    /// A user's recovery codes.
    RecoveryCodes {
        /// The user.
        user_id: UserId,
        /// How many codes now remain (after a use) or were generated.
        count: u32,
    },
    /// An API key (never its secret).
    ApiKey {
        /// Public id.
        id: ApiKeyId,
        /// Label.
        name: String,
        /// Creation time.
        created_at: OffsetDateTime,
    },
    /// A JWT verification key (never its material).
    JwtKey {
        /// Public id.
        id: JwtKeyId,
        /// Its `kid`.
        kid: Option<String>,
        /// Its algorithm.
        alg: String,
        /// Creation time.
        created_at: OffsetDateTime,
    },
}

/// One event, as the domain builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Public id; ids increase with creation.
    pub id: EventId,
    /// The tenant whose Events API lists it.
    pub tenant_id: TenantId,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub created_at: OffsetDateTime,
    /// To what.
    pub subject: Subject,
    /// Through which request.
    pub request: RequestMeta,
}

/// An event as stored and served: its encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Public id.
    pub id: EventId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The event name ([`EventKind::name`]).
    pub name: String,
    /// When.
    pub created_at: OffsetDateTime,
    /// The payload, JSON text (the encoder's).
    pub data: String,
}

/// Turns events into stored records: the server's, which renders the wire payload.
pub trait EventEncoder: Send + Sync + std::fmt::Debug {
    /// The JSON text of `event`'s payload.
    fn encode(&self, event: &Event) -> String;
}

/// The encoder of a service built without one (unit tests): an empty payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyPayload;

impl EventEncoder for EmptyPayload {
    fn encode(&self, _: &Event) -> String {
        "{}".to_owned()
    }
}

/// Event ids that increase strictly within a process, even within one millisecond, so
/// the events of one change (and of quick successive ones) list in the order they were
/// made. The ULID's time part is the event's time; within a millisecond the random part
/// is incremented.
#[derive(Debug, Default)]
pub struct EventIds {
    last: Mutex<(u64, u128)>,
}

impl EventIds {
    /// The next id at `now`.
    pub fn next(&self, now: OffsetDateTime) -> Result<EventId, CoreError> {
        let ms = u64::try_from(crate::clock::unix_ms(now)).unwrap_or(0);
        let fresh = u128::from_be_bytes({
            let mut b = [0u8; 16];
            b[6..].copy_from_slice(&mfad_crypto::random_bytes::<10>()?);
            b
        });
        let mut last = self
            .last
            .lock()
            .map_err(|_| CoreError::Internal("event id generator poisoned".into()))?;
        // 80 random bits: the increment never realistically overflows; if it would, the
        // millisecond moves on instead.
        let (ms, random) = if ms > last.0 {
            (ms, fresh)
        } else if last.1 < (1u128 << 80) - 1 {
            (last.0, last.1 + 1)
        } else {
            (last.0 + 1, fresh)
        };
        *last = (ms, random);
        let ulid = ulid::Ulid::from_parts(ms, random);
        Ok(EventId::from_trusted(format!("{}{ulid}", EventId::PREFIX)))
    }
}

/// What a listing of events asks the store for: one keyset scan of a tenant's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventScan<'a> {
    /// The tenant.
    pub tenant_id: &'a TenantId,
    /// Only events with one of these names.
    pub names: &'a [&'static str],
    /// Only events at or after this instant.
    pub range_start: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub range_end: Option<OffsetDateTime>,
    /// Scan direction (by id, which is creation order).
    pub ascending: bool,
    /// Exclusive start.
    pub start_after: Option<&'a EventId>,
    /// Most rows.
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.name()), Some(k));
            assert!(seen.insert(k.name()), "{}", k.name());
        }
        assert_eq!(EventKind::parse("authentication.unknown"), None);
    }

    #[test]
    fn ids_increase_within_a_millisecond() {
        let ids = EventIds::default();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a = ids.next(now).unwrap();
        let b = ids.next(now).unwrap();
        let c = ids.next(now - time::Duration::seconds(5)).unwrap();
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(EventId::parse(a.as_str()).is_some());
    }

    #[test]
    fn views_redact_destinations() {
        assert_eq!(redact_email("alice@example.com"), "…@example.com");
    }
}
