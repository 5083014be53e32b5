//! The one verification engine. Every code mfad accepts or refuses, through either API, is
//! judged here and nowhere else: this module is the only code that opens a TOTP secret,
//! applies the drift window and the replay rule, compares a code digest, counts an
//! attempt, and uses up a challenge, a sent code, a login or a recovery code.
//!
//! Each judgement runs in three steps:
//!
//! 1. **Admit.** The throttle ([`ThrottlePolicy`]) looks at the consecutive failures of
//!    every factor (and, on FusionAuth's routes, of the user) the code could prove. While
//!    any of them is delayed or locked the attempt is refused *unjudged*: it neither
//!    counts nor extends the delay, so a burst cannot lock a user out by itself.
//! 2. **Compare**, without side effects, in constant time.
//! 3. **Settle**, atomically in the store, *conditional on the failure count the attempt
//!    was admitted under* (compare-and-set). A wrong code adds one failure; a right code
//!    clears the count and, for TOTP, advances the last used step (only forwards, so a
//!    code is accepted once). If another request, on any node, changed the count
//!    meanwhile, nothing is written and the attempt is refused as throttled: the outcome
//!    of a guess is never revealed unless it was counted. This is what bounds parallel
//!    bursts split across nodes (the Keycloak #31726 class).
//!
//! The count is per factor, shared by challenges, sends and both APIs; a new challenge or
//! send never resets it (NIST SP 800-63B §5.2.2, see docs/SECURITY.md). FusionAuth's
//! code checks also count per user, so recovery codes and codes sent for a login are
//! bounded too.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::error::CoreError;
use crate::events::{
    ChallengeView, EventKind, EventRecord, FactorView, Failure, LoginProof, Subject,
};
use crate::ids::{ChallengeId, TenantId, UserId};
use crate::metrics::{Credential, Event, Outcome};
use crate::model::Factor;
use crate::model::{
    Challenge, FactorDetails, FactorType, FailureCount, LoginState, PendingCode, RecoveryCode,
    TotpFactor,
};
use crate::recovery;
use crate::service::Policy;
use crate::service::Service;
use crate::service::events::EventMaker;
use crate::store::{ChallengeJudge, Judgement, Settlement, Store, Verdict, Verification};
use mfad_crypto::Keyring;

/// The highest failure cap allowed: NIST SP 800-63B's 100 consecutive failures.
pub const MAX_FAILURE_CAP: u32 = 100;

/// Longest one-time code compared (`start` lets callers choose their own).
pub const MAX_CODE_LEN: usize = 64;

/// Digits of the codes mfad generates for SMS, email and generic OTP.
pub const CODE_DIGITS: u8 = 6;

/// Brute-force throttling per factor (and per FusionAuth user): a growing delay after a
/// threshold, then a hard cap that only an operator lifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Off only for load tests of the wrong-code path (`MFAD_THROTTLE=off`).
    pub enabled: bool,
    /// Consecutive failures judged before the first delay.
    pub threshold: u32,
    /// The first delay; it doubles with each further failure.
    pub delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Consecutive failures after which every code is refused (at most [`MAX_FAILURE_CAP`]).
    pub cap: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            enabled: true,
            threshold: 5,
            delay: Duration::seconds(30),
            max_delay: Duration::hours(1),
            cap: MAX_FAILURE_CAP,
        }
    }
}

/// What the throttle says about the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Judge it.
    Open,
    /// Refuse it unjudged for this long.
    Delayed(Duration),
    /// Refuse it until an operator unlocks the factor.
    Locked,
}

impl ThrottlePolicy {
    /// The wait after `consecutive` failures: none below the threshold, then `delay`,
    /// doubling per further failure, at most `max_delay`.
    pub fn delay_after(&self, consecutive: u32) -> Duration {
        if consecutive < self.threshold {
            return Duration::ZERO;
        }
        let mut d = self.delay;
        for _ in self.threshold..consecutive {
            if d >= self.max_delay {
                break;
            }
            d = d.saturating_mul(2);
        }
        d.min(self.max_delay)
    }

    /// Whether an attempt on a factor (or user) with these failures is judged at `now`.
    /// The delay runs from the last judged failure.
    pub fn gate(&self, failures: &FailureCount, now: OffsetDateTime) -> Gate {
        if !self.enabled || failures.consecutive < self.threshold.min(self.cap) {
            return Gate::Open;
        }
        if failures.consecutive >= self.cap {
            return Gate::Locked;
        }
        let last = failures.last_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let until = last + self.delay_after(failures.consecutive);
        if now < until {
            Gate::Delayed(until - now)
        } else {
            Gate::Open
        }
    }
}

/// One thing a FusionAuth code may be.
#[derive(Debug)]
pub(crate) enum Candidate<'a> {
    /// The current TOTP of one of the user's authenticator factors.
    Totp(&'a Factor),
    /// A code sent (or returned by `start`) for this scope. When it went to one of the
    /// user's factors (the scope's own, or the one its payload names), that factor counts.
    Sent {
        scope: String,
        factor: Option<&'a Factor>,
    },
    /// One of the user's recovery codes.
    Recovery,
}

/// What a FusionAuth code turned out to be, after it was used up.
#[derive(Debug)]
pub(crate) enum Judged {
    /// The TOTP of this factor.
    Totp(Box<Factor>),
    /// The code sent for this scope, with its payload.
    Sent(PendingCode),
    /// A recovery code (now used up).
    Recovery,
}

/// The candidate a code matched, before it is used up.
enum Match<'a> {
    Totp(&'a Factor, i64),
    Sent(PendingCode, Option<&'a Factor>),
    Recovery(Vec<u8>),
}

/// Digest context of the codes of a scope.
pub(crate) fn code_context(tenant: &TenantId, scope: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(tenant.as_str().len() + scope.len() + 8);
    v.extend_from_slice(b"code\0");
    v.extend_from_slice(tenant.as_str().as_bytes());
    v.push(0);
    v.extend_from_slice(scope.as_bytes());
    v
}

fn unix_secs(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp()).unwrap_or(0)
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// What an event says of a throttle refusal.
fn refusal_failure(e: &CoreError) -> Failure {
    match e {
        CoreError::Throttled { retry_after } => Failure::new(
            "throttled",
            format!(
                "Too many wrong codes; retry in {} s.",
                retry_after.whole_seconds().max(1)
            ),
        ),
        _ => Failure::new("locked", "The factor is locked after too many wrong codes."),
    }
}

fn refusal(gate: Gate) -> Result<(), CoreError> {
    match gate {
        Gate::Open => Ok(()),
        Gate::Delayed(retry_after) => Err(CoreError::Throttled { retry_after }),
        Gate::Locked => Err(CoreError::Locked),
    }
}

/// Times an attempt is admitted again after concurrent attempts moved the count first;
/// more than the threshold is rarely needed, since the gate closes at the threshold.
const SETTLE_ATTEMPTS: usize = 16;

/// A refusal for an attempt that kept losing to concurrent ones.
fn lost_race() -> CoreError {
    CoreError::Throttled {
        retry_after: Duration::seconds(1),
    }
}

/// The step at which `code` is the TOTP of `factor`, with the drift window, refusing the
/// last used step and every earlier one.
fn totp_step(
    keyring: &Keyring,
    skew: u64,
    factor: &Factor,
    totp: &TotpFactor,
    code: &str,
    now: OffsetDateTime,
) -> Result<Option<i64>, CoreError> {
    let secret = keyring.open(&totp.sealed_secret, factor.id.as_str().as_bytes())?;
    let last = totp.last_used_step.and_then(|s| u64::try_from(s).ok());
    Ok(totp
        .params(skew)
        .verify(&secret, code, unix_secs(now), last)
        .map(step_i64))
}

/// Why a challenge accepts no code, if it accepts none.
fn ensure_pending(max_attempts: u32, c: &Challenge, now: OffsetDateTime) -> Result<(), CoreError> {
    if c.verified_at.is_some() {
        Err(CoreError::ChallengePreviouslyVerified(c.id.clone()))
    } else if c.attempts >= max_attempts {
        Err(CoreError::TooManyAttempts(c.id.clone()))
    } else if now >= c.expires_at {
        Err(CoreError::ChallengeExpired(c.id.clone()))
    } else {
        Ok(())
    }
}

/// The WorkOS verification rule, as the store calls it on the rows it holds (see
/// [`Store::verify_challenge`]): admit (pending challenge, open throttle), compare in
/// constant time, and say what to record. Owns what it needs, so the store may run it on
/// a thread of its own.
struct ChallengeJudgeRule {
    keyring: Arc<Keyring>,
    policy: Policy,
    code: String,
    now: OffsetDateTime,
    /// Builds the events the settlement carries (written in its transaction).
    events: EventMaker,
}

impl ChallengeJudgeRule {
    fn judge(&self, challenge: &Challenge, factor: &Factor) -> Verdict {
        match self.try_judge(challenge, factor) {
            Ok(s) => Verdict::Settle(s),
            Err(e) => Verdict::Refuse(e),
        }
    }

    fn try_judge(&self, challenge: &Challenge, factor: &Factor) -> Result<Settlement, CoreError> {
        let (now, code) = (self.now, self.code.as_str());
        ensure_pending(self.policy.max_attempts, challenge, now)?;
        refusal(self.policy.throttle.gate(&factor.failures, now))?;
        let judgement = match (&factor.details, &challenge.code_digest) {
            (FactorDetails::Totp(totp), _) => {
                match totp_step(
                    &self.keyring,
                    self.policy.totp_skew,
                    factor,
                    totp,
                    code,
                    now,
                )? {
                    Some(step) => Judgement::Right {
                        totp_step: Some(step),
                    },
                    None => Judgement::Wrong,
                }
            }
            (_, Some(digest)) => {
                let shaped = mfad_otp::is_code_shaped(code, CODE_DIGITS);
                let matches = self.keyring.code_matches(
                    digest,
                    challenge.id.as_str().as_bytes(),
                    code.as_bytes(),
                );
                if shaped && matches {
                    Judgement::Right { totp_step: None }
                } else {
                    Judgement::Wrong
                }
            }
            (_, None) => {
                return Err(CoreError::Internal(format!(
                    "challenge {} has no code",
                    challenge.id
                )));
            }
        };
        // With the throttle off only a TOTP step is left to record on the factor.
        let on_factor = match judgement {
            Judgement::Wrong => self.policy.throttle.enabled,
            Judgement::Right { totp_step } => self.policy.throttle.enabled || totp_step.is_some(),
        };
        let attempt = |failure: Option<Failure>| Subject::Attempt {
            user_id: factor.user_id.clone(),
            factor: Some(FactorView::of(factor)),
            challenge: Some(ChallengeView::of(challenge)),
            proof: None,
            failure,
        };
        let tenant = &challenge.tenant_id;
        let events = match judgement {
            Judgement::Right { .. } => {
                self.events
                    .make(tenant, EventKind::MfaSucceeded, attempt(None), now)?
            }
            Judgement::Wrong => {
                let failure = Failure::new("invalid_code", "The code is not valid.");
                let mut events =
                    self.events
                        .make(tenant, EventKind::MfaFailed, attempt(Some(failure)), now)?;
                if reaches_cap(&self.policy.throttle, &factor.failures) {
                    let locked = Subject::Factor(FactorView::of(factor));
                    events.extend(self.events.make(
                        tenant,
                        EventKind::FactorLocked,
                        locked,
                        now,
                    )?);
                }
                events
            }
        };
        Ok(Settlement {
            judgement,
            on_factor,
            max_attempts: self.policy.max_attempts,
            events: events.into_boxed_slice(),
        })
    }
}

/// Whether one more wrong code on a factor with `seen` failures takes it to the cap.
fn reaches_cap(t: &ThrottlePolicy, seen: &FailureCount) -> bool {
    t.enabled && seen.consecutive.saturating_add(1) == t.cap
}

impl<S: Store> Service<S> {
    /// The lock event of a wrong code that took a factor's count (`seen` before it) to
    /// the cap; none otherwise.
    fn lock_events(
        &self,
        factor: &Factor,
        seen: &FailureCount,
    ) -> Result<Vec<EventRecord>, CoreError> {
        if reaches_cap(&self.policy.throttle, seen) {
            self.event(
                &factor.tenant_id,
                EventKind::FactorLocked,
                Subject::Factor(FactorView::of(factor)),
            )
        } else {
            Ok(Vec::new())
        }
    }

    /// Refuses an attempt while the throttle holds these failures.
    fn admit(&self, failures: &FailureCount, now: OffsetDateTime) -> Result<(), CoreError> {
        refusal(self.policy.throttle.gate(failures, now))
    }

    /// The step at which `code` is the TOTP of `factor`, with the drift window, refusing
    /// the last used step and every earlier one.
    fn totp_step(
        &self,
        factor: &Factor,
        totp: &TotpFactor,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, CoreError> {
        totp_step(
            &self.keyring,
            self.policy.totp_skew,
            factor,
            totp,
            code,
            now,
        )
    }

    /// Checks that `code` is the TOTP of a secret being enrolled (the fixed parameters of
    /// FusionAuth's authenticators: SHA-1, 6 digits, 30 s) and returns its step. Not
    /// throttled: the caller chose the secret, so there is nothing to guess.
    pub(crate) fn prove_new_secret(
        &self,
        secret: &[u8],
        code: &str,
        now: OffsetDateTime,
    ) -> Result<i64, CoreError> {
        mfad_otp::Totp {
            skew: self.policy.totp_skew,
            ..mfad_otp::Totp::default()
        }
        .verify(secret, code, unix_secs(now), None)
        .map(step_i64)
        .ok_or(CoreError::InvalidCode)
    }

    /// Settles a judged code on a factor under the failure count it was admitted with.
    /// Returns the judgement that stands: a right TOTP code whose step was taken meanwhile
    /// is a replay, so wrong (and counted as such). When another attempt moved the count
    /// first, the attempt is admitted again on the fresh count (so a burst is judged up to
    /// the threshold and no further), and refused if it no longer may be.
    async fn settle_factor(
        &self,
        factor: &Factor,
        mut judgement: Judgement,
        now: OffsetDateTime,
    ) -> Result<(Judgement, FailureCount), CoreError> {
        let enabled = self.policy.throttle.enabled;
        let mut seen = factor.failures;
        for _ in 0..SETTLE_ATTEMPTS {
            let nothing_to_write = match judgement {
                Judgement::Wrong => !enabled,
                Judgement::Right { totp_step } => !enabled && totp_step.is_none(),
            };
            if nothing_to_write
                || self
                    .store
                    .settle_factor_attempt(
                        &factor.tenant_id,
                        &factor.id,
                        enabled.then_some(&seen),
                        judgement,
                        now,
                    )
                    .await?
            {
                return Ok((judgement, seen));
            }
            // Nothing changed: the step was used meanwhile (a replay), or the count moved.
            let fresh = self
                .store
                .get_factor(&factor.tenant_id, &factor.id)
                .await?
                .ok_or_else(|| {
                    CoreError::not_found(crate::error::Entity::Factor, factor.id.as_str())
                })?;
            if let (
                Judgement::Right {
                    totp_step: Some(step),
                },
                FactorDetails::Totp(t),
            ) = (judgement, &fresh.details)
                && t.last_used_step.is_some_and(|last| last >= step)
            {
                judgement = Judgement::Wrong;
            }
            if enabled {
                self.admit(&fresh.failures, now)?;
            }
            seen = fresh.failures;
        }
        Err(lost_race())
    }

    /// Settles a judged FusionAuth code on the user's count, under the count it was
    /// admitted with. On a count another attempt moved, a wrong code is admitted again; a
    /// right one, already used up, clears it regardless.
    async fn settle_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
        seen: Option<&FailureCount>,
        right: bool,
        now: OffsetDateTime,
    ) -> Result<(), CoreError> {
        let Some(mut seen) = seen.copied() else {
            return Ok(());
        };
        for _ in 0..SETTLE_ATTEMPTS {
            if self
                .store
                .settle_user_attempt(tenant, user, &seen, right, now)
                .await?
            {
                return Ok(());
            }
            seen = self.store.user_failures(tenant, user).await?;
            // A right code was already used up (a recovery code, a sent code, a TOTP
            // step): it stands whatever failures raced in meanwhile, and clears them.
            // Only a wrong one is admitted again.
            if !right {
                self.admit(&seen, now)?;
            }
        }
        Err(lost_race())
    }

    // ---- WorkOS challenges -----------------------------------------------------------

    /// Judges a code against a challenge (WorkOS verify): `Ok(false)` for a wrong code,
    /// which counts against the challenge and the factor; errors for a challenge that is
    /// verified, expired or exhausted, and for a throttled or locked factor. One store
    /// call: the store runs [`ChallengeJudgeRule::judge`] on the rows it reads and
    /// commits its settlement (on SQLite inside the writer's transaction).
    pub(crate) async fn verify_challenge(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        code: &str,
    ) -> Result<(Challenge, FactorType, bool), CoreError> {
        let now = self.clock.now();
        let rule = ChallengeJudgeRule {
            keyring: self.keyring.clone(),
            policy: self.policy,
            code: code.to_owned(),
            now,
            events: self.event_maker(),
        };
        let judge: ChallengeJudge = Box::new(move |c: &Challenge, f: &Factor| rule.judge(c, f));
        // A challenge that is missing (or contended) has no factor type to count under.
        let (kind, result) = match self.store.verify_challenge(tenant, id, now, judge).await? {
            Verification::Missing => {
                return Err(CoreError::not_found(
                    crate::error::Entity::Challenge,
                    id.as_str(),
                ));
            }
            Verification::Contended => return Err(lost_race()),
            Verification::Judged {
                challenge,
                factor,
                verdict: Verdict::Refuse(e @ (CoreError::Throttled { .. } | CoreError::Locked)),
            } => {
                // Refused unjudged: nothing changed, so the event is written on its own.
                let subject = Subject::Attempt {
                    user_id: factor.user_id.clone(),
                    factor: Some(FactorView::of(&factor)),
                    challenge: Some(ChallengeView::of(&challenge)),
                    proof: None,
                    failure: Some(refusal_failure(&e)),
                };
                self.record_refusal(tenant, EventKind::MfaThrottled, subject)
                    .await?;
                (factor.details.factor_type(), Err(e))
            }
            Verification::Judged {
                factor,
                verdict: Verdict::Refuse(e),
                ..
            } => (factor.details.factor_type(), Err(e)),
            Verification::Judged {
                challenge,
                factor,
                verdict: Verdict::Settle(s),
            } => {
                let kind = factor.details.factor_type();
                let right = matches!(s.judgement, Judgement::Right { .. });
                (kind, Ok((*challenge, kind, right)))
            }
        };
        self.observe(Event::Verification {
            credential: Credential::Factor(kind),
            outcome: match &result {
                Ok((_, _, true)) => Outcome::Valid,
                Ok((_, _, false)) => Outcome::Invalid,
                Err(e) => Outcome::of_error(e),
            },
        });
        result
    }

    // ---- FusionAuth codes ------------------------------------------------------------

    /// Judges a FusionAuth code against `candidates`, then uses up the one it matched.
    /// `methods` are the user's factors, for the factor a login code was sent to. A wrong
    /// code is `Ok(None)` and counts against every factor it was judged for, the user and
    /// the open sent codes.
    pub(crate) async fn judge(
        &self,
        tenant: &TenantId,
        user: &UserId,
        candidates: Vec<Candidate<'_>>,
        methods: &[Factor],
        code: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Judged>, CoreError> {
        let result = self
            .judge_code(tenant, user, candidates, methods, code, now)
            .await;
        if let Err(e @ (CoreError::Throttled { .. } | CoreError::Locked)) = &result {
            // Refused unjudged: nothing changed, so the event is written on its own.
            let subject = Subject::Attempt {
                user_id: Some(user.clone()),
                factor: None,
                challenge: None,
                proof: None,
                failure: Some(refusal_failure(e)),
            };
            self.record_refusal(tenant, EventKind::MfaThrottled, subject)
                .await?;
        }
        let credential = match &result {
            Ok(Some(Judged::Totp(f))) => Credential::Factor(f.details.factor_type()),
            Ok(Some(Judged::Sent(_))) => Credential::SentCode,
            Ok(Some(Judged::Recovery)) => Credential::RecoveryCode,
            Ok(None) | Err(_) => Credential::Any,
        };
        let outcome = match &result {
            Ok(Some(_)) => Outcome::Valid,
            Ok(None) => Outcome::Invalid,
            Err(e) => Outcome::of_error(e),
        };
        self.observe(Event::Verification {
            credential,
            outcome,
        });
        result
    }

    async fn judge_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        candidates: Vec<Candidate<'_>>,
        methods: &[Factor],
        code: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Judged>, CoreError> {
        let user_count = match self.policy.throttle.enabled {
            true => Some(self.store.user_failures(tenant, user).await?),
            false => None,
        };
        if let Some(c) = &user_count {
            self.admit(c, now)?;
        }
        let max = self.policy.max_attempts;
        let recovery_code = recovery::canonical(code);
        // Compare every candidate (no side effects), admitting each factor first.
        let mut judged_factors: Vec<&Factor> = Vec::new();
        let mut open_codes = Vec::new();
        let mut matched = None;
        // Whether the code was compared with anything: a code with nothing left to be
        // (every sent code expired) is refused but not counted as a guess.
        let mut compared = false;
        for candidate in candidates {
            match candidate {
                Candidate::Totp(f) => {
                    let FactorDetails::Totp(totp) = &f.details else {
                        continue;
                    };
                    self.admit(&f.failures, now)?;
                    judged_factors.push(f);
                    compared = true;
                    if let (Some(step), None) = (self.totp_step(f, totp, code, now)?, &matched) {
                        matched = Some(Match::Totp(f, step));
                    }
                }
                Candidate::Sent { scope, factor } => {
                    let Some(sent) = self.store.get_code(tenant, &scope).await? else {
                        continue;
                    };
                    if sent.expires_at <= now || sent.attempts >= max {
                        continue;
                    }
                    let factor = factor.or_else(|| {
                        let by = sent.payload.as_deref()?;
                        methods
                            .iter()
                            .find(|m| m.method_id.as_ref().is_some_and(|id| id.as_str() == by))
                    });
                    if let Some(f) = factor {
                        self.admit(&f.failures, now)?;
                        judged_factors.push(f);
                    }
                    compared = true;
                    let right = code.len() <= MAX_CODE_LEN
                        && self.keyring.code_matches(
                            &sent.digest,
                            &code_context(tenant, &scope),
                            code.as_bytes(),
                        );
                    if right && matched.is_none() {
                        matched = Some(Match::Sent(sent, factor));
                    } else {
                        open_codes.push(sent);
                    }
                }
                Candidate::Recovery => {
                    if let (Some(rc), None) = (recovery_code.as_deref(), &matched) {
                        compared = true;
                        matched = self
                            .find_recovery_code(tenant, user, rc)
                            .await?
                            .map(Match::Recovery);
                    }
                }
            }
        }
        let Some(found) = matched else {
            if compared {
                self.count_wrong(
                    tenant,
                    user,
                    user_count.as_ref(),
                    &judged_factors,
                    open_codes,
                    now,
                )
                .await?;
            }
            return Ok(None);
        };
        // A right code: use it up (conditionally: of racing requests one wins), then
        // settle the user's count with the outcome that stands.
        let used = match found {
            Match::Totp(f, step) => {
                let right = Judgement::Right {
                    totp_step: Some(step),
                };
                match self.settle_factor(f, right, now).await?.0 {
                    Judgement::Right { .. } => Some(Judged::Totp(Box::new(f.clone()))),
                    Judgement::Wrong => None,
                }
            }
            Match::Sent(sent, factor) => {
                if let Some(f) = factor {
                    self.settle_factor(f, Judgement::Right { totp_step: None }, now)
                        .await?;
                }
                self.store
                    .consume_code(tenant, &sent.scope, &sent.digest, max, now)
                    .await?
                    .then_some(Judged::Sent(sent))
            }
            Match::Recovery(digest) => {
                let remaining = self.store.recovery_codes(tenant, user).await?.len();
                let subject = Subject::RecoveryCodes {
                    user_id: user.clone(),
                    count: u32::try_from(remaining.saturating_sub(1)).unwrap_or(u32::MAX),
                };
                let events = self.event(tenant, EventKind::RecoveryCodeUsed, subject)?;
                self.store
                    .consume_recovery_code(tenant, user, &digest, &events)
                    .await?
                    .then_some(Judged::Recovery)
            }
        };
        self.settle_user(tenant, user, user_count.as_ref(), used.is_some(), now)
            .await?;
        Ok(used)
    }

    /// Counts a wrong FusionAuth code everywhere it was judged.
    async fn count_wrong(
        &self,
        tenant: &TenantId,
        user: &UserId,
        user_count: Option<&FailureCount>,
        factors: &[&Factor],
        open_codes: Vec<PendingCode>,
        now: OffsetDateTime,
    ) -> Result<(), CoreError> {
        let max = self.policy.max_attempts;
        for sent in open_codes {
            self.store
                .fail_code(tenant, &sent.scope, &sent.digest, max, now)
                .await?;
        }
        for f in factors {
            let (_, seen) = self.settle_factor(f, Judgement::Wrong, now).await?;
            let locked = self.lock_events(f, &seen)?;
            if !locked.is_empty() {
                self.store.record_events(&locked).await?;
            }
        }
        self.settle_user(tenant, user, user_count, false, now).await
    }

    /// The stored digest of the user's recovery code `canonical`, if it is one. Every
    /// stored code is compared, in constant time, so digests made under an older master
    /// key match too.
    async fn find_recovery_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        canonical: &str,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        let context = recovery::digest_context(tenant, user);
        let stored: Vec<RecoveryCode> = self.store.recovery_codes(tenant, user).await?;
        let mut found = None;
        for r in stored {
            if self
                .keyring
                .code_matches(&r.digest, &context, canonical.as_bytes())
                && found.is_none()
            {
                found = Some(r.digest);
            }
        }
        Ok(found)
    }

    /// Judges a FusionAuth two-factor login's code (the login's sent code, the TOTP of any
    /// authenticator, a recovery code) and, if it is right, ends the login (single use:
    /// of two requests with right codes only one ends it). A wrong code also counts
    /// against the login, which is deleted at the attempt limit.
    pub(crate) async fn judge_login(
        &self,
        login: &LoginState,
        methods: &[Factor],
        code: &str,
        now: OffsetDateTime,
    ) -> Result<Judged, CoreError> {
        let tenant = &login.tenant_id;
        let mut candidates = vec![Candidate::Sent {
            scope: LoginState::code_scope(&login.id_digest),
            factor: None,
        }];
        candidates.extend(
            methods
                .iter()
                .filter(|m| matches!(m.details, FactorDetails::Totp(_)))
                .map(Candidate::Totp),
        );
        candidates.push(Candidate::Recovery);
        let max = self.policy.max_attempts;
        match self
            .judge(tenant, &login.user_id, candidates, methods, code, now)
            .await?
        {
            None => {
                let subject = Subject::Attempt {
                    user_id: Some(login.user_id.clone()),
                    factor: None,
                    challenge: None,
                    proof: None,
                    failure: Some(Failure::new("invalid_code", "The code is not valid.")),
                };
                let events = self.event(tenant, EventKind::LoginFailed, subject)?;
                self.store
                    .fail_login(tenant, &login.id_digest, max, now, &events)
                    .await?;
                Err(CoreError::InvalidCode)
            }
            Some(judged) => {
                let (factor, proof) = match &judged {
                    Judged::Totp(f) => (Some(FactorView::of(f)), LoginProof::Totp),
                    Judged::Sent(sent) => (
                        sent.payload.as_deref().and_then(|by| {
                            methods
                                .iter()
                                .find(|m| m.method_id.as_ref().is_some_and(|id| id.as_str() == by))
                                .map(FactorView::of)
                        }),
                        LoginProof::SentCode,
                    ),
                    Judged::Recovery => (None, LoginProof::RecoveryCode),
                };
                let subject = Subject::Attempt {
                    user_id: Some(login.user_id.clone()),
                    factor,
                    challenge: None,
                    proof: Some(proof),
                    failure: None,
                };
                let events = self.event(tenant, EventKind::LoginSucceeded, subject)?;
                if self
                    .store
                    .consume_login(tenant, &login.id_digest, max, now, &events)
                    .await?
                {
                    Ok(judged)
                } else {
                    Err(CoreError::not_found(
                        crate::error::Entity::Challenge,
                        "twoFactorId",
                    ))
                }
            }
        }
    }

    /// Uses up a code whatever its attempts (a legacy send's phone mapping, once its
    /// enable has succeeded); best effort.
    pub(crate) async fn discard_code(&self, sent: &PendingCode, now: OffsetDateTime) {
        let _ = self
            .store
            .consume_code(&sent.tenant_id, &sent.scope, &sent.digest, u32::MAX, now)
            .await;
    }

    // ---- passkeys ---------------------------------------------------------------------

    /// Judges a passkey assertion as a code: admitted only while the user's failure count
    /// lets attempts through, a failed check (bad signature, origin, rp id, counter, user
    /// verification, unknown credential) counts as a wrong code and a success clears the
    /// count, exactly as for the user's other factors.
    pub(crate) async fn judge_passkey<T>(
        &self,
        tenant: &TenantId,
        user: &UserId,
        check: impl std::future::Future<Output = Result<T, CoreError>>,
    ) -> Result<T, CoreError> {
        use crate::webauthn::Refusal;
        let now = self.clock.now();
        let count = match self.policy.throttle.enabled {
            true => Some(self.store.user_failures(tenant, user).await?),
            false => None,
        };
        if let Some(c) = &count {
            self.admit(c, now)?;
        }
        match check.await {
            Ok(v) => {
                self.settle_user(tenant, user, count.as_ref(), true, now)
                    .await?;
                Ok(v)
            }
            Err(CoreError::WebAuthn(
                r @ (Refusal::Invalid
                | Refusal::CounterRegression
                | Refusal::UserVerification
                | Refusal::Origin
                | Refusal::RpId
                | Refusal::UnknownCredential),
            )) => {
                self.settle_user(tenant, user, count.as_ref(), false, now)
                    .await?;
                Err(CoreError::WebAuthn(r))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn count(n: u32, last: i64) -> FailureCount {
        FailureCount {
            consecutive: n,
            last_at: Some(at(last)),
        }
    }

    #[test]
    fn delays_grow_from_the_threshold_and_stop_at_the_maximum() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.delay_after(4), Duration::ZERO);
        assert_eq!(p.delay_after(5), Duration::seconds(30));
        assert_eq!(p.delay_after(6), Duration::seconds(60));
        assert_eq!(p.delay_after(7), Duration::seconds(120));
        assert_eq!(p.delay_after(12), Duration::seconds(3600));
        assert_eq!(p.delay_after(99), Duration::seconds(3600));
        assert_eq!(p.delay_after(u32::MAX), Duration::seconds(3600));
    }

    #[test]
    fn the_gate_runs_from_the_last_failure_and_locks_at_the_cap() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.gate(&FailureCount::default(), at(0)), Gate::Open);
        assert_eq!(p.gate(&count(4, 0), at(0)), Gate::Open);
        assert_eq!(
            p.gate(&count(5, 0), at(10)),
            Gate::Delayed(Duration::seconds(20))
        );
        assert_eq!(p.gate(&count(5, 0), at(30)), Gate::Open);
        assert_eq!(
            p.gate(&count(6, 0), at(30)),
            Gate::Delayed(Duration::seconds(30))
        );
        assert_eq!(p.gate(&count(100, 0), at(1_000_000)), Gate::Locked);
        let off = ThrottlePolicy {
            enabled: false,
            ..p
        };
        assert_eq!(off.gate(&count(100, 0), at(0)), Gate::Open);
        let low_cap = ThrottlePolicy { cap: 3, ..p };
        assert_eq!(low_cap.gate(&count(2, 0), at(0)), Gate::Open);
        assert_eq!(low_cap.gate(&count(3, 0), at(0)), Gate::Locked);
    }
}
