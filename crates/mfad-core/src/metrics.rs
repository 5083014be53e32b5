//! The port the domain reports its outcomes to: enrollments, challenges, verifications
//! and sends, each with the factor type (or channel) and how it ended. The server
//! implements it on a Prometheus recorder it owns (`mfad-server/src/metrics.rs`); there is
//! no global recorder, so several services in one process count apart.
//!
//! Every label is from a closed set (no ids, users or numbers): the cardinality of what
//! is exported is bounded by these enums.

use crate::error::CoreError;
use crate::model::FactorType;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: enrolled, challenged, or the code was right.
    Valid,
    /// Bad input, an unknown factor, or a wrong code.
    Invalid,
    /// The challenge or code had expired.
    Expired,
    /// Refused by the brute-force throttle (delayed or locked).
    Throttled,
    /// Refused by a limit: a challenge used up or already verified, a send limit, a
    /// country rule.
    Refused,
    /// A server-side failure (database, provider, internal).
    Error,
}

impl Outcome {
    /// The outcome a failure stands for.
    pub fn of_error(e: &CoreError) -> Outcome {
        match e {
            CoreError::ChallengeExpired(_) => Outcome::Expired,
            CoreError::Throttled { .. } | CoreError::Locked => Outcome::Throttled,
            CoreError::TooManyAttempts(_)
            | CoreError::ChallengePreviouslyVerified(_)
            | CoreError::SendLimited { .. }
            | CoreError::SmsCountryNotAllowed { .. }
            | CoreError::TooManyRequests => Outcome::Refused,
            CoreError::Validation(_)
            | CoreError::InvalidPhoneNumber { .. }
            | CoreError::WrongFactorType(_)
            | CoreError::InvalidCode
            | CoreError::NotFound { .. }
            | CoreError::Unauthorized => Outcome::Invalid,
            _ => Outcome::Error,
        }
    }

    /// The outcome of `result`, whose success is `Valid`.
    pub fn of<T>(result: &Result<T, CoreError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Valid,
            Err(e) => Outcome::of_error(e),
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Expired => "expired",
            Outcome::Throttled => "throttled",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// What a code was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A factor of this type (a WorkOS challenge, a TOTP method).
    Factor(FactorType),
    /// A code mfad sent (SMS or email) for a FusionAuth login, enable or disable.
    SentCode,
    /// A recovery code.
    RecoveryCode,
    /// Several candidates and none matched (a wrong FusionAuth code).
    Any,
}

impl Credential {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Factor(t) => factor_label(t),
            Credential::SentCode => "sent_code",
            Credential::RecoveryCode => "recovery_code",
            Credential::Any => "any",
        }
    }
}

/// The label of a factor type (the metrics' own vocabulary, not a wire name).
pub fn factor_label(t: FactorType) -> &'static str {
    match t {
        FactorType::Totp => "totp",
        FactorType::Sms => "sms",
        FactorType::Email => "email",
        FactorType::GenericOtp => "generic_otp",
    }
}

/// Where a code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A text message.
    Sms,
    /// An email.
    Email,
}

impl Channel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

/// How a send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider accepted the message.
    Sent,
    /// The provider failed or refused it.
    Failed,
    /// A send limit or country rule refused it; nothing was sent.
    Refused,
}

impl SendOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SendOutcome::Sent => "sent",
            SendOutcome::Failed => "failed",
            SendOutcome::Refused => "refused",
        }
    }
}

/// One outcome the domain reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A factor enrolled (WorkOS) or a method enabled (FusionAuth), or the attempt.
    Enrollment {
        /// The factor type.
        kind: FactorType,
        /// How it ended.
        outcome: Outcome,
    },
    /// A WorkOS challenge opened, or the attempt.
    Challenge {
        /// The factor type.
        kind: FactorType,
        /// How it ended.
        outcome: Outcome,
    },
    /// A code judged.
    Verification {
        /// What it was judged against.
        credential: Credential,
        /// How it ended.
        outcome: Outcome,
    },
    /// A code sent, or refused before sending.
    Send {
        /// SMS or email.
        channel: Channel,
        /// The provider's name (`twilio`, `smtp`, …).
        provider: &'static str,
        /// How it ended.
        outcome: SendOutcome,
    },
}

/// How one webhook delivery attempt ended (see `crate::webhooks::dispatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Not delivered; it will be retried.
    Retried,
    /// Not delivered, and that was the last attempt: the delivery is marked failed.
    Failed,
}

impl WebhookOutcome {
    /// The label value (`failed` is also the delivery's state in `mfad webhook deliveries`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Delivered => "delivered",
            WebhookOutcome::Retried => "retried",
            WebhookOutcome::Failed => "failed",
        }
    }
}

/// Where the domain reports outcomes.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// Counts one event.
    fn record(&self, event: Event);

    /// Counts one webhook delivery attempt. (A default, so recorders that count no
    /// webhooks need not say so.)
    fn webhook_delivery(&self, outcome: WebhookOutcome) {
        let _ = outcome;
    }
}

/// Counts nothing: the service's metrics until one is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _event: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_the_outcome_they_stand_for() {
        use time::Duration;
        let id = crate::ChallengeId::parse("auth_challenge_01FVYZ5QM8N98T9ME5BCB2BBMJ").unwrap();
        assert_eq!(
            Outcome::of_error(&CoreError::ChallengeExpired(id.clone())),
            Outcome::Expired
        );
        assert_eq!(
            Outcome::of_error(&CoreError::Throttled {
                retry_after: Duration::seconds(1)
            }),
            Outcome::Throttled
        );
        assert_eq!(Outcome::of_error(&CoreError::Locked), Outcome::Throttled);
        assert_eq!(
            Outcome::of_error(&CoreError::TooManyAttempts(id)),
            Outcome::Refused
        );
        assert_eq!(Outcome::of_error(&CoreError::InvalidCode), Outcome::Invalid);
        assert_eq!(
            Outcome::of_error(&CoreError::Internal("x".into())),
            Outcome::Error
        );
        assert_eq!(Outcome::of::<()>(&Ok(())), Outcome::Valid);
    }
}
