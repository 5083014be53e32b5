//! The MFA service: every operation of the product, independent of wire protocol and
//! database. API adapters call these methods; storage and delivery come in as ports.
//!
//! Split by concept, not by the API that calls it: [`keys`] (API keys), [`factors`]
//! (enrollment, listing, operator state), [`challenges`] (issuing and verifying them),
//! [`methods`] (a user's factors: enabling, disabling, codes sent for that), [`logins`]
//! (two-factor logins, trusts, status), [`recovery`] (recovery codes) and [`delivery`]
//! (the one path every SMS and email takes). Every code is judged by [`crate::verify`].

pub mod challenges;
pub mod delivery;
pub mod events;
pub mod factors;
pub mod keys;
pub mod logins;
pub mod methods;
pub mod recovery;
pub mod webhooks;

use std::sync::Arc;

use mfad_crypto::{Keyring, Zeroizing};
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::email::{EmailSender, NoEmail};
use crate::error::CoreError;
use crate::sms::SmsSender;
use crate::store::Store;
use crate::verify::ThrottlePolicy;

pub use challenges::{Issued, Verification};
pub use factors::{Enrolled, ListRequest, NewFactor, TotpSecrets};
pub use keys::CreatedKey;
pub use logins::{LoggedIn, LoginRequest, StartRequest, Started, Status, UsedCode, UserRef};
pub use methods::{EnableDestination, EnableRequest, Enabled, NewMethod};

/// Tunable security policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a challenge accepts codes.
    pub challenge_ttl: Duration,
    /// Wrong codes a challenge tolerates; after that it refuses every code.
    pub max_attempts: u32,
    /// TOTP steps accepted either side of now.
    pub totp_skew: u64,
    /// How long a validated API key is trusted without rereading it (revocation delay
    /// across processes); zero rereads on every request.
    pub api_key_cache_ttl: Duration,
    /// How long a FusionAuth two-factor login (`twoFactorId`) lasts.
    pub two_factor_login_ttl: Duration,
    /// How long a trusted computer (`twoFactorTrustId`) is trusted.
    pub two_factor_trust_ttl: Duration,
    /// Brute-force throttling per factor and per user.
    pub throttle: ThrottlePolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            challenge_ttl: Duration::minutes(10),
            max_attempts: 5,
            totp_skew: 1,
            api_key_cache_ttl: Duration::seconds(2),
            two_factor_login_ttl: Duration::minutes(5),
            two_factor_trust_ttl: Duration::days(30),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// Longest issuer, account name or label accepted.
pub const MAX_LABEL_LEN: usize = 256;

/// The MFA service over a store `S`.
#[derive(Debug)]
pub struct Service<S> {
    pub(crate) store: S,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sms: Arc<dyn SmsSender>,
    pub(crate) email: Arc<dyn EmailSender>,
    pub(crate) policy: Policy,
    pub(crate) keys: crate::key_cache::KeyCache,
    pub(crate) send_limits: crate::send_limits::SendLimits,
    pub(crate) event_ids: Arc<crate::events::EventIds>,
    pub(crate) event_encoder: Arc<dyn crate::events::EventEncoder>,
    pub(crate) events_enabled: bool,
    pub(crate) metrics: Arc<dyn crate::metrics::Metrics>,
    pub(crate) idempotency: crate::idempotency::IdempotencyPolicy,
    pub(crate) webhook_encoder: Option<Arc<dyn crate::webhooks::WebhookEncoder>>,
}

impl<S: Store> Service<S> {
    /// Wires the service to its ports.
    pub fn new(
        store: S,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        sms: Arc<dyn SmsSender>,
        policy: Policy,
    ) -> Self {
        Service {
            store,
            keyring,
            clock,
            sms,
            email: Arc::new(NoEmail),
            keys: crate::key_cache::KeyCache::new(policy.api_key_cache_ttl),
            send_limits: crate::send_limits::SendLimits::default(),
            event_ids: Arc::new(crate::events::EventIds::default()),
            event_encoder: Arc::new(crate::events::EmptyPayload),
            events_enabled: true,
            metrics: Arc::new(crate::metrics::NoMetrics),
            idempotency: crate::idempotency::IdempotencyPolicy::default(),
            webhook_encoder: None,
            policy,
        }
    }

    /// Delivers email codes through `email`; without it, sending an email code fails as
    /// a delivery error.
    pub fn with_email(mut self, email: Arc<dyn EmailSender>) -> Self {
        self.email = email;
        self
    }

    /// Reports outcomes (enrollments, challenges, verifications, sends) to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts one outcome.
    pub(crate) fn observe(&self, event: crate::metrics::Event) {
        self.metrics.record(event);
    }

    /// Keeps idempotent responses as `policy` says (default: 24 h).
    pub fn with_idempotency(mut self, policy: crate::idempotency::IdempotencyPolicy) -> Self {
        self.idempotency = policy;
        self
    }

    /// The keyring's loaded keys as `(name, id)`, the active one first.
    pub fn master_keys(&self) -> Vec<(String, mfad_crypto::KeyId)> {
        self.keyring
            .keys()
            .map(|(n, id)| (n.to_owned(), id))
            .collect()
    }

    /// The store, for health checks.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The current time on the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// A uniformly random 6-digit code from the operating system's CSPRNG.
pub fn random_code() -> Result<Zeroizing<String>, CoreError> {
    // Rejection sampling: 4_294_000_000 is the largest multiple of 10^6 below 2^32.
    loop {
        let n = u32::from_be_bytes(mfad_crypto::random_bytes::<4>()?);
        if n < 4_294_000_000 {
            return Ok(Zeroizing::new(format!("{:06}", n % 1_000_000)));
        }
    }
}
