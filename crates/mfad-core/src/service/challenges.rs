//! Challenges: one attempt at proving a factor, issued and then verified once. Issuing
//! is not an attempt: a throttled factor still accepts new challenges (and a new
//! challenge never resets its failure count).

use mfad_crypto::Zeroizing;

use crate::error::{CoreError, Entity, Field, Reason};
use crate::events::{ChallengeView, EventKind, EventRecord, FactorView, Subject};
use crate::ids::{ChallengeId, TenantId};
use crate::metrics::{Event, Outcome};
use crate::model::{Challenge, Factor, FactorDetails};
use crate::send_limits::{Destination, SendRequest};
use crate::service::{Service, random_code};
use crate::store::Store;

/// Longest SMS template accepted.
pub const MAX_SMS_TEMPLATE_LEN: usize = 320;
/// The placeholder an SMS template must contain.
pub const CODE_PLACEHOLDER: &str = "{{code}}";

/// A newly issued challenge.
#[derive(Debug)]
pub struct Issued {
    /// The stored challenge.
    pub challenge: Challenge,
    /// The code, for generic OTP only (the caller delivers it).
    pub code: Option<Zeroizing<String>>,
}

/// The outcome of a verification that was judged (as opposed to refused).
#[derive(Debug)]
pub struct Verification {
    /// The challenge as it was issued.
    pub challenge: Challenge,
    /// Whether the code was right and accepted.
    pub valid: bool,
    /// The challenged factor's type (WorkOS echoes a generic OTP's code).
    pub factor_type: crate::model::FactorType,
}

impl<S: Store> Service<S> {
    pub(crate) fn new_challenge(
        &self,
        factor: &Factor,
        code: Option<&str>,
    ) -> Result<Challenge, CoreError> {
        let now = self.clock.now();
        let id = ChallengeId::generate(now)?;
        let code_digest = match code {
            Some(c) => Some(
                self.keyring
                    .code_digest(id.as_str().as_bytes(), c.as_bytes())?,
            ),
            None => None,
        };
        Ok(Challenge {
            id,
            tenant_id: factor.tenant_id.clone(),
            factor_id: factor.id.clone(),
            code_digest,
            expires_at: now + self.policy.challenge_ttl,
            attempts: 0,
            verified_at: None,
            created_at: now,
        })
    }

    /// The event of a new challenge.
    fn challenge_events(
        &self,
        factor: &Factor,
        challenge: &Challenge,
    ) -> Result<Vec<EventRecord>, CoreError> {
        self.event(
            &factor.tenant_id,
            EventKind::ChallengeCreated,
            Subject::Challenge {
                challenge: ChallengeView::of(challenge),
                factor: FactorView::of(factor),
            },
        )
    }

    /// Opens a challenge on a factor: texts a code for SMS, returns it for generic OTP
    /// (and email factors, which the WorkOS API shows as generic OTP), and expects the
    /// authenticator's code for TOTP.
    pub async fn challenge(
        &self,
        tenant: &TenantId,
        factor_id: &str,
        sms_template: Option<&str>,
    ) -> Result<Issued, CoreError> {
        let factor = self.get_factor(tenant, factor_id).await?;
        let kind = factor.details.factor_type();
        let result = self.open_challenge(tenant, &factor, sms_template).await;
        self.observe(Event::Challenge {
            kind,
            outcome: Outcome::of(&result),
        });
        result
    }

    async fn open_challenge(
        &self,
        tenant: &TenantId,
        factor: &Factor,
        sms_template: Option<&str>,
    ) -> Result<Issued, CoreError> {
        if let (FactorDetails::Sms { .. }, Some(t)) = (&factor.details, sms_template) {
            validate_sms_template(t)?;
        }
        if let FactorDetails::Sms { phone } = &factor.details {
            let req = SendRequest {
                tenant,
                to: Destination::Sms(phone),
                end_user: None,
            };
            let issue = async {
                let code = random_code()?;
                let challenge = self.new_challenge(factor, Some(&code))?;
                let events = self.challenge_events(factor, &challenge)?;
                self.store.insert_challenge(&challenge, &events).await?;
                Ok((challenge, code))
            };
            let challenge = self.deliver(req, sms_template, issue).await?;
            return Ok(Issued {
                challenge,
                code: None,
            });
        }
        let code = match &factor.details {
            FactorDetails::Totp(_) => None,
            _ => Some(random_code()?),
        };
        let challenge = self.new_challenge(factor, code.as_deref().map(String::as_str))?;
        let events = self.challenge_events(factor, &challenge)?;
        self.store.insert_challenge(&challenge, &events).await?;
        Ok(Issued { challenge, code })
    }

    /// Judges a code against a challenge. A wrong code is `valid: false` and counts an
    /// attempt; a verified, expired or exhausted challenge is an error, and so is a
    /// throttled or locked factor.
    pub async fn verify(
        &self,
        tenant: &TenantId,
        challenge_id: &str,
        code: &str,
    ) -> Result<Verification, CoreError> {
        let cid = ChallengeId::parse(challenge_id)
            .ok_or_else(|| CoreError::not_found(Entity::Challenge, challenge_id))?;
        let (challenge, factor_type, valid) = self.verify_challenge(tenant, &cid, code).await?;
        Ok(Verification {
            challenge,
            valid,
            factor_type,
        })
    }
}

/// Characters an SMS template must not carry: NUL and other controls (a line break
/// aside), and the bidirectional overrides and isolates that make a message read
/// differently from what it says (Trojan Source, CVE-2021-42574).
fn unsafe_in_sms(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn validate_sms_template(t: &str) -> Result<(), CoreError> {
    let lower = t.to_ascii_lowercase();
    let reason = if !t.contains(CODE_PLACEHOLDER) {
        Some(Reason::MissingPlaceholder)
    } else if t.len() > MAX_SMS_TEMPLATE_LEN {
        Some(Reason::TooLong {
            max: MAX_SMS_TEMPLATE_LEN,
        })
    } else if t.chars().any(unsafe_in_sms) {
        Some(Reason::UnsafeCharacters)
    } else if lower.contains("http://") || lower.contains("https://") || lower.contains("www.") {
        Some(Reason::ContainsUrl)
    } else {
        None
    };
    match reason {
        Some(r) => Err(CoreError::invalid(Field::SmsTemplate, r)),
        None => Ok(()),
    }
}
