//! The MFA service: every operation of the product, independent of wire protocol and
//! database. API adapters call these methods; storage and delivery come in as ports.

use std::sync::Arc;

use mfad_crypto::{Keyring, Zeroizing};
use mfad_otp::Algorithm;
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::email::{EmailSender, NoEmail};
use crate::enrollment;
use crate::error::{CoreError, Entity, FieldError};
use crate::ids::{ApiKeyId, ChallengeId, FactorId, TenantId, UserId};
use crate::model::{ApiKey, Challenge, Factor, FactorDetails, Order, Page, Tenant, TotpFactor};
use crate::phone::PhoneNumber;
use crate::send_limits::{Destination, SendRequest};
use crate::sms::SmsSender;
use crate::store::{AttemptOutcome, Store, SuccessOutcome};

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
        }
    }
}

/// Digits of SMS and generic OTP codes.
pub const CODE_DIGITS: u8 = 6;
/// Longest issuer, account name or key label accepted.
pub const MAX_LABEL_LEN: usize = 256;
/// Longest SMS template accepted.
pub const MAX_SMS_TEMPLATE_LEN: usize = 320;
/// The placeholder an SMS template must contain.
pub const CODE_PLACEHOLDER: &str = "{{code}}";

/// What to enroll.
#[derive(Debug, Clone)]
pub enum NewFactor {
    /// An authenticator app; `secret` imports an existing base32 secret.
    Totp {
        /// Issuer shown by the app.
        issuer: String,
        /// Account name shown by the app.
        user: String,
        /// Caller-supplied base32 secret, if importing.
        secret: Option<Zeroizing<String>>,
    },
    /// A phone number, in any international notation.
    Sms {
        /// The number as the caller wrote it.
        phone_number: String,
    },
    /// Codes the caller delivers.
    GenericOtp,
}

/// Secrets returned once, at enrollment, and never again.
#[derive(Debug)]
pub struct TotpSecrets {
    /// Unpadded base32.
    pub secret: Zeroizing<String>,
    /// `otpauth://` Key URI.
    pub uri: Zeroizing<String>,
    /// `data:image/png;base64,…` QR code of `uri`.
    pub qr_code: Zeroizing<String>,
}

/// A newly enrolled factor.
#[derive(Debug)]
pub struct Enrolled {
    /// The stored factor.
    pub factor: Factor,
    /// For TOTP, what the authenticator app needs.
    pub totp: Option<TotpSecrets>,
}

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

/// A listing request in WorkOS's cursor terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Sort order by creation time.
    pub order: Order,
    /// Return items that come before this id in `order`.
    pub before: Option<FactorId>,
    /// Return items that come after this id in `order`.
    pub after: Option<FactorId>,
}

/// A freshly created API key: the token is shown once.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// Its tenant.
    pub tenant: Tenant,
    /// The bearer token (`sk_…`), never stored.
    pub token: Zeroizing<String>,
}

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
            policy,
        }
    }

    /// Delivers email codes (FusionAuth's `email` method) through `email`; without it,
    /// sending an email code fails as a delivery error.
    pub fn with_email(mut self, email: Arc<dyn EmailSender>) -> Self {
        self.email = email;
        self
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

    // ---- API keys -------------------------------------------------------------------

    /// Creates an API key for the tenant named `tenant_name`, creating the tenant if needed.
    pub async fn create_api_key(
        &self,
        tenant_name: &str,
        label: Option<&str>,
    ) -> Result<CreatedKey, CoreError> {
        let tenant = self.tenant_by_name(tenant_name).await?;
        let now = self.clock.now();
        let id = ApiKeyId::generate(now)?;
        let secret =
            Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&mfad_crypto::random_bytes::<32>()?));
        let secret = Zeroizing::new(secret.to_ascii_lowercase());
        let ulid_part = id
            .as_str()
            .trim_start_matches(ApiKeyId::PREFIX)
            .to_ascii_lowercase();
        let token = Zeroizing::new(format!("sk_{ulid_part}_{}", *secret));
        let key = ApiKey {
            id,
            tenant_id: tenant.id.clone(),
            name: label
                .unwrap_or("default")
                .chars()
                .take(MAX_LABEL_LEN)
                .collect(),
            digest: mfad_crypto::api_key_digest(secret.as_bytes()).to_vec(),
            created_at: now,
            revoked_at: None,
        };
        self.store.insert_api_key(&key).await?;
        Ok(CreatedKey { key, tenant, token })
    }

    /// The tenant named `tenant_name`, created if new.
    pub async fn tenant_by_name(&self, tenant_name: &str) -> Result<Tenant, CoreError> {
        let valid_name = !tenant_name.is_empty()
            && tenant_name.len() <= 64
            && tenant_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(CoreError::invalid(
                "tenant",
                "invalid",
                "tenant names are 1-64 characters of letters, digits, '-', '_' and '.'",
            ));
        }
        let now = self.clock.now();
        Ok(self
            .store
            .ensure_tenant(&Tenant {
                id: TenantId::generate(now)?,
                name: tenant_name.to_owned(),
                created_at: now,
            })
            .await?)
    }

    /// All API keys with their tenants.
    pub async fn list_api_keys(&self) -> Result<Vec<(ApiKey, Tenant)>, CoreError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key by id; it stops authenticating at once.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), CoreError> {
        let key_id = ApiKeyId::parse(id).ok_or_else(|| CoreError::not_found(Entity::ApiKey, id))?;
        if self.store.revoke_api_key(&key_id, self.clock.now()).await? {
            self.keys.remove(&key_id);
            Ok(())
        } else {
            Err(CoreError::not_found(Entity::ApiKey, id))
        }
    }

    /// Resolves a bearer token to its tenant. Every failure is the same `Unauthorized`.
    pub async fn authenticate(&self, token: &str) -> Result<TenantId, CoreError> {
        let rest = token.strip_prefix("sk_").ok_or(CoreError::Unauthorized)?;
        let (ulid_part, secret) = rest.split_once('_').ok_or(CoreError::Unauthorized)?;
        let id = ApiKeyId::parse(&format!(
            "{}{}",
            ApiKeyId::PREFIX,
            ulid_part.to_ascii_uppercase()
        ))
        .ok_or(CoreError::Unauthorized)?;
        let now = self.clock.now();
        let (tenant, stored) = match self.keys.get(&id, now) {
            Some(hit) => hit,
            None => {
                let key = self
                    .store
                    .get_api_key(&id)
                    .await?
                    .ok_or(CoreError::Unauthorized)?;
                if key.revoked_at.is_some() {
                    return Err(CoreError::Unauthorized);
                }
                self.keys.put(&id, &key.tenant_id, &key.digest, now);
                (key.tenant_id, key.digest)
            }
        };
        // Every request proves its secret, cached key or not.
        let digest = mfad_crypto::api_key_digest(secret.as_bytes());
        if mfad_crypto::ct_eq(&stored, &digest) {
            Ok(tenant)
        } else {
            Err(CoreError::Unauthorized)
        }
    }

    // ---- factors --------------------------------------------------------------------

    /// Enrolls a factor, optionally for a user. TOTP secrets are returned only here.
    pub async fn enroll(
        &self,
        tenant: &TenantId,
        user_id: Option<UserId>,
        new: NewFactor,
    ) -> Result<Enrolled, CoreError> {
        let (factor, totp) = self.build_factor(tenant, user_id, new)?;
        if let FactorDetails::Sms { phone } = &factor.details {
            self.permit_country(tenant, phone).await?;
        }
        self.store.insert_factor(&factor, None).await?;
        Ok(Enrolled { factor, totp })
    }

    /// Enrolls a TOTP factor for a user and opens its first challenge in one transaction
    /// (WorkOS's user-management enrollment).
    pub async fn enroll_with_challenge(
        &self,
        tenant: &TenantId,
        user_id: UserId,
        new: NewFactor,
    ) -> Result<(Enrolled, Challenge), CoreError> {
        let (factor, totp) = self.build_factor(tenant, Some(user_id), new)?;
        let challenge = self.new_challenge(&factor, None)?;
        self.store.insert_factor(&factor, Some(&challenge)).await?;
        Ok((Enrolled { factor, totp }, challenge))
    }

    fn build_factor(
        &self,
        tenant: &TenantId,
        user_id: Option<UserId>,
        new: NewFactor,
    ) -> Result<(Factor, Option<TotpSecrets>), CoreError> {
        let now = self.clock.now();
        let id = FactorId::generate(now)?;
        let (details, secrets) = match new {
            NewFactor::Totp {
                issuer,
                user,
                secret,
            } => {
                let mut errors = Vec::new();
                for (field, value) in [("totp_issuer", &issuer), ("totp_user", &user)] {
                    if value.trim().is_empty() {
                        errors.push(FieldError::new(
                            field,
                            "required",
                            format!("{field} is required for TOTP factors"),
                        ));
                    } else if value.len() > MAX_LABEL_LEN {
                        errors.push(FieldError::new(
                            field,
                            "too_long",
                            format!("{field} must be at most {MAX_LABEL_LEN} characters"),
                        ));
                    }
                }
                let secret = match secret {
                    Some(text) => match enrollment::parse_base32_secret(&text) {
                        Some(s) => Some(s),
                        None => {
                            errors.push(FieldError::new(
                                "totp_secret",
                                "invalid",
                                "totp_secret must be base32 of 10 to 128 bytes",
                            ));
                            None
                        }
                    },
                    None => None,
                };
                if !errors.is_empty() {
                    return Err(CoreError::Validation(errors));
                }
                let secret = match secret {
                    Some(s) => s,
                    None => enrollment::generate_secret()?,
                };
                let mut totp = TotpFactor {
                    issuer,
                    user,
                    algorithm: Algorithm::Sha1,
                    digits: 6,
                    period: 30,
                    sealed_secret: Vec::new(),
                    last_used_step: None,
                };
                totp.sealed_secret = self.keyring.seal(&secret, id.as_str().as_bytes())?;
                let b32 = enrollment::base32(&secret);
                let uri = enrollment::key_uri(&totp, &b32);
                let qr_code = enrollment::qr_data_uri(&uri)?;
                (
                    FactorDetails::Totp(totp),
                    Some(TotpSecrets {
                        secret: b32,
                        uri,
                        qr_code,
                    }),
                )
            }
            NewFactor::Sms { phone_number } => (
                FactorDetails::Sms {
                    phone: PhoneNumber::parse(&phone_number)?,
                },
                None,
            ),
            NewFactor::GenericOtp => (FactorDetails::GenericOtp, None),
        };
        Ok((
            Factor {
                id,
                tenant_id: tenant.clone(),
                user_id,
                details,
                // Method ids are assigned on first use by the FusionAuth API (see
                // `two_factor`), so WorkOS enrollment never fails on an id collision.
                method_id: None,
                name: None,
                created_at: now,
                updated_at: now,
            },
            secrets,
        ))
    }

    /// A factor of this tenant.
    pub async fn get_factor(&self, tenant: &TenantId, id: &str) -> Result<Factor, CoreError> {
        let fid = FactorId::parse(id).ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        self.store
            .get_factor(tenant, &fid)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Factor, id))
    }

    /// Deletes a factor and its challenges.
    pub async fn delete_factor(&self, tenant: &TenantId, id: &str) -> Result<(), CoreError> {
        let fid = FactorId::parse(id).ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        if self.store.delete_factor(tenant, &fid).await? {
            Ok(())
        } else {
            Err(CoreError::not_found(Entity::Factor, id))
        }
    }

    /// One page of a user's factors.
    pub async fn list_user_factors(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        req: &ListRequest,
    ) -> Result<Page<Factor>, CoreError> {
        if !(1..=100).contains(&req.limit) {
            return Err(CoreError::invalid(
                "limit",
                "invalid",
                "limit must be between 1 and 100",
            ));
        }
        let plan = crate::pagination::plan(
            req.order,
            req.before.as_ref(),
            req.after.as_ref(),
            req.limit,
        );
        let rows = self
            .store
            .scan_user_factors(plan.scan(tenant, user_id))
            .await?;
        Ok(plan.page(rows, |f| &f.id))
    }

    // ---- challenges -----------------------------------------------------------------

    fn new_challenge(&self, factor: &Factor, code: Option<&str>) -> Result<Challenge, CoreError> {
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

    /// Opens a challenge on a factor: texts a code for SMS, returns it for generic OTP,
    /// and expects the authenticator's code for TOTP.
    pub async fn challenge(
        &self,
        tenant: &TenantId,
        factor_id: &str,
        sms_template: Option<&str>,
    ) -> Result<Issued, CoreError> {
        let factor = self.get_factor(tenant, factor_id).await?;
        if let (FactorDetails::Sms { .. }, Some(t)) = (&factor.details, sms_template) {
            validate_sms_template(t)?;
        }
        match &factor.details {
            FactorDetails::Totp(_) => {
                let challenge = self.new_challenge(&factor, None)?;
                self.store.insert_challenge(&challenge).await?;
                Ok(Issued {
                    challenge,
                    code: None,
                })
            }
            // Email factors come from the FusionAuth API; WorkOS shows them as generic OTP,
            // so a WorkOS challenge returns the code to the (trusted) API caller and sends
            // nothing, exactly as for generic OTP.
            FactorDetails::GenericOtp | FactorDetails::Email { .. } => {
                let code = random_code()?;
                let challenge = self.new_challenge(&factor, Some(&code))?;
                self.store.insert_challenge(&challenge).await?;
                Ok(Issued {
                    challenge,
                    code: Some(code),
                })
            }
            FactorDetails::Sms { phone } => {
                let to = SendRequest {
                    tenant,
                    to: Destination::Sms(phone),
                    end_user: None,
                };
                self.limited_send(to, async {
                    let code = random_code()?;
                    let challenge = self.new_challenge(&factor, Some(&code))?;
                    self.store.insert_challenge(&challenge).await?;
                    let body = Zeroizing::new(match sms_template {
                        Some(t) => t.replace(CODE_PLACEHOLDER, &code),
                        None => format!("Your verification code is {}.", *code),
                    });
                    self.sms.send(phone, &body).await.map_err(|e| {
                        tracing::warn!(factor = %factor.id, to = %phone.redacted(), error = %e, "SMS delivery failed");
                        CoreError::Delivery(e)
                    })?;
                    Ok(Issued {
                        challenge,
                        code: None,
                    })
                })
                .await
            }
        }
    }

    /// Judges a code against a challenge. A wrong code is `valid: false` and counts an
    /// attempt; a verified, expired or exhausted challenge is an error.
    pub async fn verify(
        &self,
        tenant: &TenantId,
        challenge_id: &str,
        code: &str,
    ) -> Result<Verification, CoreError> {
        let cid = ChallengeId::parse(challenge_id)
            .ok_or_else(|| CoreError::not_found(Entity::Challenge, challenge_id))?;
        let (challenge, factor) = self
            .store
            .get_challenge(tenant, &cid)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Challenge, challenge_id))?;
        let now = self.clock.now();
        self.ensure_pending(&challenge, now)?;

        let accepted_step = match (&factor.details, &challenge.code_digest) {
            (FactorDetails::Totp(totp), _) => {
                let secret = self
                    .keyring
                    .open(&totp.sealed_secret, factor.id.as_str().as_bytes())?;
                let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
                let last = totp.last_used_step.and_then(|s| u64::try_from(s).ok());
                totp.params(self.policy.totp_skew)
                    .verify(&secret, code, unix, last)
                    .map(|step| Some(i64::try_from(step).unwrap_or(i64::MAX)))
            }
            (_, Some(digest)) => {
                let shaped = mfad_otp::is_code_shaped(code, CODE_DIGITS);
                let matches =
                    self.keyring
                        .code_matches(digest, cid.as_str().as_bytes(), code.as_bytes());
                (shaped && matches).then_some(None)
            }
            (_, None) => return Err(CoreError::Internal(format!("challenge {cid} has no code"))),
        };

        let max = self.policy.max_attempts;
        if let Some(step) = accepted_step {
            let totp_step = step.map(|s| (&factor.id, s));
            match self
                .store
                .record_success(tenant, &cid, max, now, totp_step)
                .await?
            {
                SuccessOutcome::Verified => {
                    return Ok(Verification {
                        challenge,
                        valid: true,
                        factor_type: factor.details.factor_type(),
                    });
                }
                SuccessOutcome::NotPending => {
                    return Err(self.why_not_pending(tenant, &cid, now).await);
                }
                // A concurrent verification took this step first: treat as a wrong code.
                SuccessOutcome::StepAlreadyUsed => {}
            }
        }
        match self.store.record_failure(tenant, &cid, max, now).await? {
            AttemptOutcome::Counted => Ok(Verification {
                challenge,
                valid: false,
                factor_type: factor.details.factor_type(),
            }),
            AttemptOutcome::NotPending => Err(self.why_not_pending(tenant, &cid, now).await),
        }
    }

    fn ensure_pending(&self, c: &Challenge, now: OffsetDateTime) -> Result<(), CoreError> {
        if c.verified_at.is_some() {
            Err(CoreError::ChallengePreviouslyVerified(c.id.clone()))
        } else if c.attempts >= self.policy.max_attempts {
            Err(CoreError::TooManyAttempts(c.id.clone()))
        } else if now >= c.expires_at {
            Err(CoreError::ChallengeExpired(c.id.clone()))
        } else {
            Ok(())
        }
    }

    /// After an atomic update found the challenge no longer pending, says why.
    async fn why_not_pending(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        now: OffsetDateTime,
    ) -> CoreError {
        match self.store.get_challenge(tenant, id).await {
            Ok(Some((c, _))) => match self.ensure_pending(&c, now) {
                Err(e) => e,
                Ok(()) => CoreError::Internal(format!("challenge {id} changed state concurrently")),
            },
            Ok(None) => CoreError::not_found(Entity::Challenge, id.as_str()),
            Err(e) => e.into(),
        }
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

/// Characters an SMS template must not carry: NUL and other controls (a line break
/// aside), and the bidirectional overrides and isolates that make a message read
/// differently from what it says (Trojan Source, CVE-2021-42574).
fn unsafe_in_sms(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn validate_sms_template(t: &str) -> Result<(), CoreError> {
    let lower = t.to_ascii_lowercase();
    let msg = if !t.contains(CODE_PLACEHOLDER) {
        Some("sms_template must contain {{code}}")
    } else if t.len() > MAX_SMS_TEMPLATE_LEN {
        Some("sms_template is too long")
    } else if t.chars().any(unsafe_in_sms) {
        Some("sms_template must not contain control or bidirectional-override characters")
    } else if lower.contains("http://") || lower.contains("https://") || lower.contains("www.") {
        Some("sms_template must not contain URLs")
    } else {
        None
    };
    match msg {
        Some(m) => Err(CoreError::invalid("sms_template", "invalid", m)),
        None => Ok(()),
    }
}
