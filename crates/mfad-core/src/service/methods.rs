//! A user's methods: the factors filed under a user that codes can prove (TOTP, SMS,
//! email), as FusionAuth's Two Factor API manages them: enabling one (with a code proving
//! possession), disabling, renaming, and the codes sent while enabling or disabling.
//! The WorkOS API sees the same factors, under the same throttle.

use data_encoding::HEXLOWER;
use mfad_crypto::Zeroizing;
use mfad_otp::Algorithm;
use time::OffsetDateTime;

use crate::email::normalize_email;
use crate::error::{CoreError, Entity, Field, Reason, StoreError};
use crate::events::{EventKind, FactorView, Subject};
use crate::ids::{FactorId, MethodId, TenantId, UserId};
use crate::model::{Factor, FactorDetails, FactorType, FailureCount, PendingCode, TotpFactor};
use crate::phone::PhoneNumber;
use crate::recovery;
use crate::send_limits::{Destination, SendRequest};
use crate::service::{MAX_LABEL_LEN, Service, random_code};
use crate::store::{FactorScan, Store};
use crate::verify::{Candidate, Judged, code_context};

/// Most methods one user may have through this API.
pub const MAX_METHODS: usize = 20;
/// Most factors read when listing a user's methods (WorkOS may file more under a user).
const MAX_SCAN: u32 = 1000;

/// What a user enables.
#[derive(Debug)]
pub enum NewMethod {
    /// An authenticator app with this key.
    Totp {
        /// The HMAC key.
        secret: Zeroizing<Vec<u8>>,
    },
    /// A phone, in any notation.
    Sms {
        /// As the caller wrote it.
        mobile_phone: String,
    },
    /// A mailbox.
    Email {
        /// As the caller wrote it.
        email: String,
    },
    /// A phone proven by the TOTP of `secret`, texted there by an earlier
    /// [`Service::send_totp_to_phone`] (FusionAuth ≤ 1.25's `TextMessage` delivery).
    SmsTextedTotp {
        /// The secret the code was computed from.
        secret: Zeroizing<Vec<u8>>,
        /// The phone, if the caller sent it again.
        mobile_phone: Option<String>,
    },
}

/// An enable request.
#[derive(Debug)]
pub struct EnableRequest {
    /// Whose method.
    pub user: UserId,
    /// The method.
    pub method: NewMethod,
    /// The code proving possession.
    pub code: String,
    /// A label.
    pub name: Option<String>,
    /// A login in progress (from `start`) to receive a fresh code for, once enabled.
    pub two_factor_id: Option<String>,
}

/// The result of enabling a method.
#[derive(Debug)]
pub struct Enabled {
    /// The new method.
    pub method: Factor,
    /// Ten recovery codes, when this was the user's first method.
    pub recovery_codes: Option<Vec<Zeroizing<String>>>,
    /// A code for the login named by `two_factor_id`.
    pub login_code: Option<Zeroizing<String>>,
}

/// Where a code sent while enabling goes.
#[derive(Debug)]
pub enum EnableDestination {
    /// A phone, in any notation.
    Sms(String),
    /// An email address.
    Email(String),
}

/// Whether a factor is a method (generic OTP factors are not: nothing proves them but a
/// WorkOS challenge).
pub fn is_method(f: &Factor) -> bool {
    matches!(
        f.details.factor_type(),
        FactorType::Totp | FactorType::Sms | FactorType::Email
    )
}

/// Scope of the code sent to enable `destination` for `user`.
fn enable_scope(user: &UserId, kind: FactorType, destination: &str) -> String {
    let kind = match kind {
        FactorType::Sms => "sms",
        _ => "email",
    };
    format!("enable:{}:{kind}:{destination}", user.as_str())
}

/// Scope of the code sent to disable `method` of `user`.
fn disable_scope(user: &UserId, method: &MethodId) -> String {
    format!("disable:{}:{}", user.as_str(), method.as_str())
}

/// The method with this id.
pub(crate) fn find_method<'a>(
    methods: &'a [Factor],
    id: &MethodId,
) -> Result<&'a Factor, CoreError> {
    methods
        .iter()
        .find(|m| m.method_id.as_ref() == Some(id))
        .ok_or_else(|| CoreError::invalid(Field::MethodId, Reason::NotFound))
}

/// The method a code is sent to: the one named, else the first SMS method, else the
/// first email method. Authenticators have nothing to send to.
pub(crate) fn deliverable<'a>(
    methods: &'a [Factor],
    id: Option<&MethodId>,
) -> Result<(&'a Factor, Destination<'a>), CoreError> {
    let not_deliverable = || CoreError::invalid(Field::MethodId, Reason::NotDeliverable);
    let method = match id {
        Some(mid) => find_method(methods, mid)?,
        None => methods
            .iter()
            .find(|m| matches!(m.details, FactorDetails::Sms { .. }))
            .or_else(|| {
                methods
                    .iter()
                    .find(|m| matches!(m.details, FactorDetails::Email { .. }))
            })
            .ok_or_else(not_deliverable)?,
    };
    let to = match &method.details {
        FactorDetails::Sms { phone } => Destination::Sms(phone),
        FactorDetails::Email { address } => Destination::Email(address),
        _ => return Err(not_deliverable()),
    };
    Ok((method, to))
}

fn reject_duplicate(existing: &[Factor], details: &FactorDetails) -> Result<(), CoreError> {
    let dup = existing.iter().any(|m| match (&m.details, details) {
        (FactorDetails::Sms { phone: a }, FactorDetails::Sms { phone: b }) => a == b,
        (FactorDetails::Email { address: a }, FactorDetails::Email { address: b }) => a == b,
        _ => false,
    });
    let field = match details {
        FactorDetails::Sms { .. } => Field::PhoneNumber,
        _ => Field::Email,
    };
    if dup {
        Err(CoreError::invalid(field, Reason::Duplicate))
    } else {
        Ok(())
    }
}

fn email_address(raw: &str) -> Result<String, CoreError> {
    normalize_email(raw).ok_or_else(|| CoreError::invalid(Field::Email, Reason::Invalid))
}

fn check_name(name: Option<&str>) -> Result<(), CoreError> {
    if name.is_some_and(|n| n.chars().count() > MAX_LABEL_LEN) {
        Err(CoreError::invalid(
            Field::Name,
            Reason::TooLong { max: MAX_LABEL_LEN },
        ))
    } else {
        Ok(())
    }
}

impl<S: Store> Service<S> {
    /// A user's methods, oldest first. A pure read: method ids are given at enrollment.
    pub async fn user_methods(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Factor>, CoreError> {
        let factors = self
            .store
            .scan_user_factors(FactorScan {
                tenant_id: tenant,
                user_id: user,
                ascending: true,
                start_after: None,
                limit: MAX_SCAN,
            })
            .await?;
        Ok(factors
            .into_iter()
            .filter(|f| is_method(f) && f.method_id.is_some())
            .collect())
    }

    /// Fails with 404 unless the user is known in this tenant: enabled a method here
    /// before, or has a factor.
    pub async fn require_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), CoreError> {
        if self.store.user_known(tenant, user).await? {
            Ok(())
        } else {
            Err(CoreError::not_found(Entity::User, user.as_str()))
        }
    }

    /// Enables a method after checking its code: the TOTP of the new secret for an
    /// authenticator (that step then counts as used), or the code sent to the phone or
    /// address. The user's first method comes with ten recovery codes.
    pub async fn enable_method(
        &self,
        tenant: &TenantId,
        req: EnableRequest,
    ) -> Result<Enabled, CoreError> {
        let kind = match &req.method {
            NewMethod::Totp { .. } => FactorType::Totp,
            NewMethod::Sms { .. } | NewMethod::SmsTextedTotp { .. } => FactorType::Sms,
            NewMethod::Email { .. } => FactorType::Email,
        };
        let result = self.enable(tenant, req).await;
        self.observe(crate::metrics::Event::Enrollment {
            kind,
            outcome: crate::metrics::Outcome::of(&result),
        });
        result
    }

    async fn enable(&self, tenant: &TenantId, req: EnableRequest) -> Result<Enabled, CoreError> {
        let now = self.clock.now();
        check_name(req.name.as_deref())?;
        if req.code.is_empty() {
            return Err(CoreError::invalid(Field::Code, Reason::Required));
        }
        let user = &req.user;
        let existing = self.user_methods(tenant, user).await?;
        if existing.len() >= MAX_METHODS {
            return Err(CoreError::invalid(
                Field::Methods,
                Reason::TooMany { max: MAX_METHODS },
            ));
        }
        // A login to receive a code once the method is on: checked before anything changes.
        let login = match req.two_factor_id.as_deref() {
            Some(tfid) => Some(self.login_of_user(tenant, user, tfid, now).await?),
            None => None,
        };
        let id = FactorId::generate(now)?;
        let details = match req.method {
            NewMethod::Totp { secret } => {
                let step = self.prove_new_secret(&secret, &req.code, now)?;
                self.authenticator(&id, user, &secret, step)?
            }
            NewMethod::Sms { mobile_phone } => {
                let details = FactorDetails::Sms {
                    phone: PhoneNumber::parse(&mobile_phone)?,
                };
                reject_duplicate(&existing, &details)?;
                let FactorDetails::Sms { phone } = &details else {
                    return Err(CoreError::Internal("not an SMS method".into()));
                };
                self.permit_country(tenant, phone).await?;
                let scope = enable_scope(user, FactorType::Sms, phone.as_str());
                self.use_sent_code(tenant, user, scope, &req.code, now)
                    .await?;
                details
            }
            NewMethod::Email { email } => {
                let address = email_address(&email)?;
                let scope = enable_scope(user, FactorType::Email, &address);
                let details = FactorDetails::Email { address };
                reject_duplicate(&existing, &details)?;
                self.use_sent_code(tenant, user, scope, &req.code, now)
                    .await?;
                details
            }
            NewMethod::SmsTextedTotp {
                secret,
                mobile_phone,
            } => {
                let scope = self.texted_totp_scope(tenant, &secret)?;
                let sent = self
                    .store
                    .get_code(tenant, &scope)
                    .await?
                    .filter(|c| c.expires_at > now);
                let phone = match (mobile_phone, sent.as_ref().and_then(|c| c.payload.clone())) {
                    (Some(p), _) | (None, Some(p)) => PhoneNumber::parse(&p)?,
                    (None, None) => {
                        return Err(CoreError::invalid(Field::PhoneNumber, Reason::Required));
                    }
                };
                self.prove_new_secret(&secret, &req.code, now)?;
                self.permit_country(tenant, &phone).await?;
                let details = FactorDetails::Sms { phone };
                reject_duplicate(&existing, &details)?;
                if let Some(c) = sent {
                    // The phone mapping has served its purpose.
                    self.discard_code(&c, now).await;
                }
                details
            }
        };
        let mut method = Factor {
            id,
            tenant_id: tenant.clone(),
            user_id: Some(user.clone()),
            details,
            method_id: None,
            name: req.name,
            created_at: now,
            updated_at: now,
            failures: FailureCount::default(),
        };
        let recovery = recovery::new_set(&self.keyring, tenant, user, now)?;
        let mut stored_codes = false;
        for attempt in 0..8 {
            method.method_id = Some(MethodId::generate()?);
            let added = self.event(
                tenant,
                EventKind::MethodAdded,
                Subject::Factor(FactorView::of(&method)),
            )?;
            let generated = self.event(
                tenant,
                EventKind::RecoveryCodesGenerated,
                Subject::RecoveryCodes {
                    user_id: user.clone(),
                    count: u32::try_from(recovery.records.len()).unwrap_or(u32::MAX),
                },
            )?;
            match self
                .store
                .insert_method(&method, &recovery.records, now, &added, &generated)
                .await
            {
                Ok(first) => {
                    stored_codes = first;
                    break;
                }
                Err(StoreError::Conflict(_)) if attempt < 7 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let login_code = match &login {
            Some(l) => Some(self.issue_login_code(l, now).await?),
            None => None,
        };
        Ok(Enabled {
            method,
            recovery_codes: stored_codes.then_some(recovery.plain),
            login_code,
        })
    }

    fn authenticator(
        &self,
        id: &FactorId,
        user: &UserId,
        secret: &[u8],
        accepted_step: i64,
    ) -> Result<FactorDetails, CoreError> {
        Ok(FactorDetails::Totp(TotpFactor {
            issuer: "mfad".into(),
            user: user.as_str().to_owned(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            sealed_secret: self.keyring.seal(secret, id.as_str().as_bytes())?,
            // The code that proved the secret is used: it must not also log in.
            last_used_step: Some(accepted_step),
        }))
    }

    /// Checks `code` against the code sent for `scope` and uses it up.
    async fn use_sent_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        scope: String,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<PendingCode, CoreError> {
        let candidates = vec![Candidate::Sent {
            scope,
            factor: None,
        }];
        match self.judge(tenant, user, candidates, &[], code, now).await? {
            Some(Judged::Sent(c)) => Ok(c),
            _ => Err(CoreError::InvalidCode),
        }
    }

    /// Disables a method (`method_id`), or, without one (FusionAuth ≤ 1.25), two-factor
    /// altogether. The code may be the method's TOTP, a code sent to disable it, or a
    /// recovery code, which removes every method.
    pub async fn disable_method(
        &self,
        tenant: &TenantId,
        user: &UserId,
        method_id: Option<&MethodId>,
        code: &str,
    ) -> Result<(), CoreError> {
        if code.is_empty() {
            return Err(CoreError::invalid(Field::Code, Reason::Required));
        }
        self.require_user(tenant, user).await?;
        let methods = self.user_methods(tenant, user).await?;
        let target = match method_id {
            Some(mid) => Some(find_method(&methods, mid)?),
            None if methods.is_empty() => {
                return Err(CoreError::invalid(Field::Methods, Reason::Required));
            }
            None => None,
        };
        let scoped: Vec<&Factor> = match target {
            Some(t) => vec![t],
            None => methods.iter().collect(),
        };
        let mut candidates = Vec::new();
        for m in scoped {
            match (&m.details, &m.method_id) {
                (FactorDetails::Totp(_), _) => candidates.push(Candidate::Totp(m)),
                (_, Some(mid)) => candidates.push(Candidate::Sent {
                    scope: disable_scope(user, mid),
                    factor: Some(m),
                }),
                (_, None) => {}
            }
        }
        candidates.push(Candidate::Recovery);
        let now = self.clock.now();
        let only = match self
            .judge(tenant, user, candidates, &methods, code, now)
            .await?
        {
            None => return Err(CoreError::InvalidCode),
            Some(Judged::Recovery) => None,
            Some(_) => target.map(|t| t.id.clone()),
        };
        let mut events = Vec::new();
        for m in methods
            .iter()
            .filter(|m| only.as_ref().is_none_or(|id| *id == m.id))
        {
            events.extend(self.event(
                tenant,
                EventKind::MethodRemoved,
                Subject::Factor(FactorView::of(m)),
            )?);
        }
        self.store
            .delete_methods(tenant, user, only.as_ref(), now, &events)
            .await?;
        Ok(())
    }

    /// Renames a method.
    pub async fn rename_method(
        &self,
        tenant: &TenantId,
        user: &UserId,
        method_id: &MethodId,
        name: Option<&str>,
    ) -> Result<(), CoreError> {
        check_name(name)?;
        self.require_user(tenant, user).await?;
        if self
            .store
            .rename_method(tenant, user, method_id, name, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(CoreError::invalid(Field::MethodId, Reason::NotFound))
        }
    }

    /// Sends a code to a phone or address the user is enabling; a later send replaces it.
    /// `end_user` is the user when they asked with their own JWT (see `send_limits`).
    pub async fn send_enable_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        destination: EnableDestination,
        end_user: Option<&UserId>,
    ) -> Result<(), CoreError> {
        let (phone, address);
        let (to, scope) = match destination {
            EnableDestination::Sms(raw) => {
                phone = PhoneNumber::parse(&raw)?;
                let scope = enable_scope(user, FactorType::Sms, phone.as_str());
                (Destination::Sms(&phone), scope)
            }
            EnableDestination::Email(raw) => {
                address = email_address(&raw)?;
                let scope = enable_scope(user, FactorType::Email, &address);
                (Destination::Email(&address), scope)
            }
        };
        self.send_user_code(tenant, user, to, &scope, end_user)
            .await
    }

    /// Sends a new code of `scope` to `to`, through the send limits.
    async fn send_user_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        to: Destination<'_>,
        scope: &str,
        end_user: Option<&UserId>,
    ) -> Result<(), CoreError> {
        let now = self.clock.now();
        let expires_at = now + self.policy.challenge_ttl;
        let req = SendRequest {
            tenant,
            to,
            end_user,
        };
        let issue = async {
            let code = self
                .put_new_code(tenant, scope, Some(user), None, expires_at, now)
                .await?;
            Ok(((), code))
        };
        self.deliver(req, None, issue).await
    }

    /// Sends a code for disabling a method (`method_id`, or without one the user's first
    /// SMS method, else first email method: FusionAuth ≤ 1.25's "send to the user's
    /// phone"). Authenticator methods have nothing to send.
    pub async fn send_disable_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        method_id: Option<&MethodId>,
        end_user: Option<&UserId>,
    ) -> Result<(), CoreError> {
        self.require_user(tenant, user).await?;
        let methods = self.user_methods(tenant, user).await?;
        let (method, to) = deliverable(&methods, method_id)?;
        let Some(mid) = method.method_id.as_ref() else {
            return Err(CoreError::Internal("method without id".into()));
        };
        let scope = disable_scope(user, mid);
        self.send_user_code(tenant, user, to, &scope, end_user)
            .await
    }

    /// Texts the current TOTP of `secret` to a phone and remembers the phone for the
    /// enable that follows (FusionAuth ≤ 1.25's "send a code to a mobile phone").
    pub async fn send_totp_to_phone(
        &self,
        tenant: &TenantId,
        mobile_phone: &str,
        secret: &[u8],
        end_user: Option<&UserId>,
    ) -> Result<(), CoreError> {
        let phone = PhoneNumber::parse(mobile_phone)?;
        let now = self.clock.now();
        let scope = self.texted_totp_scope(tenant, secret)?;
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let req = SendRequest {
            tenant,
            to: Destination::Sms(&phone),
            end_user,
        };
        let issue = async {
            let code = Zeroizing::new(mfad_otp::Totp::default().code_at(secret, unix));
            self.store
                .put_code(&PendingCode {
                    tenant_id: tenant.clone(),
                    digest: self
                        .keyring
                        .code_digest(&code_context(tenant, &scope), scope.as_bytes())?,
                    scope: scope.clone(),
                    user_id: None,
                    payload: Some(phone.as_str().to_owned()),
                    expires_at: now + self.policy.challenge_ttl,
                    attempts: 0,
                    created_at: now,
                })
                .await?;
            Ok(((), code))
        };
        self.deliver(req, None, issue).await
    }

    /// Scope of a texted TOTP: a peppered digest of the secret, so the table never holds
    /// anything that computes codes.
    fn texted_totp_scope(&self, tenant: &TenantId, secret: &[u8]) -> Result<String, CoreError> {
        let mut context = b"legacy-secret\0".to_vec();
        context.extend_from_slice(tenant.as_str().as_bytes());
        let digest = self.keyring.code_digest(&context, secret)?;
        Ok(format!("legacy:{}", HEXLOWER.encode(&digest)))
    }

    /// Stores a fresh 6-digit code for `scope` (replacing any earlier one) and returns it.
    pub(crate) async fn put_new_code(
        &self,
        tenant: &TenantId,
        scope: &str,
        user: Option<&UserId>,
        payload: Option<String>,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Zeroizing<String>, CoreError> {
        let code = random_code()?;
        self.put_code_value(tenant, scope, user, payload, &code, expires_at, now)
            .await?;
        Ok(code)
    }

    /// Stores `code` for `scope`, replacing any earlier one.
    #[expect(clippy::too_many_arguments, reason = "one row's worth of fields")]
    pub(crate) async fn put_code_value(
        &self,
        tenant: &TenantId,
        scope: &str,
        user: Option<&UserId>,
        payload: Option<String>,
        code: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), CoreError> {
        self.store
            .put_code(&PendingCode {
                tenant_id: tenant.clone(),
                scope: scope.to_owned(),
                user_id: user.cloned(),
                digest: self
                    .keyring
                    .code_digest(&code_context(tenant, scope), code.as_bytes())?,
                payload,
                expires_at,
                attempts: 0,
                created_at: now,
            })
            .await?;
        Ok(())
    }
}
