//! FusionAuth's Two Factor API over mfad's one domain model: a FusionAuth *method* is a
//! factor filed under a user (`authenticator` = TOTP, `sms`, `email`), so the WorkOS and
//! FusionAuth APIs see the same factors under the same guarantees.
//!
//! This module holds secrets in FusionAuth's format, method listing, enabling, disabling,
//! renaming and the codes sent while enabling or disabling. Recovery codes are in
//! [`crate::recovery`], logins and status in [`crate::login`].
//!
//! Codes are judged in one place, [`Service::judge`]: every candidate (the TOTP of each
//! authenticator, the code sent for this purpose, a recovery code) is compared first,
//! without side effects; then only the match is used up, atomically in the store (a TOTP
//! step advanced, a sent code deleted, a recovery code deleted), so a code is accepted at
//! most once however many requests race. Wrong codes count against the sent code and
//! against the user (at most [`Service::user_failure_limit`] per window), so guessing
//! through the API is bounded even for TOTP, which has no challenge of its own.

use data_encoding::{BASE32_NOPAD, BASE64, BASE64_NOPAD, HEXLOWER};
use mfad_crypto::Zeroizing;
use mfad_otp::Algorithm;
use time::OffsetDateTime;

use crate::enrollment;
use crate::error::{CoreError, Entity, FieldError};
use crate::ids::{FactorId, MethodId, TenantId, UserId};
use crate::model::{Factor, FactorDetails, PendingCode, TotpFactor};
use crate::phone::PhoneNumber;
use crate::recovery;
use crate::send_limits::{Destination, SendRequest};
use crate::service::{MAX_LABEL_LEN, Service, random_code};
use crate::store::{FactorScan, Store};

/// Most methods one user may have through this API.
pub const MAX_METHODS: usize = 20;
/// Most factors read when listing a user's methods (WorkOS may file more under a user).
const MAX_SCAN: u32 = 1000;
/// Longest caller-supplied one-time code (`start` with `code`).
pub const MAX_CODE_LEN: usize = 64;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A FusionAuth method type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// An authenticator app (TOTP).
    Authenticator,
    /// Codes texted to a phone.
    Sms,
    /// Codes emailed to an address.
    Email,
}

impl MethodKind {
    /// FusionAuth's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Authenticator => "authenticator",
            MethodKind::Sms => "sms",
            MethodKind::Email => "email",
        }
    }

    /// Parses FusionAuth's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authenticator" => Some(MethodKind::Authenticator),
            "sms" => Some(MethodKind::Sms),
            "email" => Some(MethodKind::Email),
            _ => None,
        }
    }

    /// The method type of a factor, if it is one (generic OTP factors are not).
    pub fn of(f: &Factor) -> Option<Self> {
        match f.details {
            FactorDetails::Totp(_) => Some(MethodKind::Authenticator),
            FactorDetails::Sms { .. } => Some(MethodKind::Sms),
            FactorDetails::Email { .. } => Some(MethodKind::Email),
            FactorDetails::GenericOtp => None,
        }
    }
}

/// A TOTP secret as FusionAuth hands it out: `secret` is 20 characters of standard
/// base64 (15 bytes); `secret_base32_encoded` is the unpadded base32 of the same bytes,
/// which is what authenticator apps take.
#[derive(Debug)]
pub struct FusionSecret {
    /// Base64, 20 characters.
    pub secret: Zeroizing<String>,
    /// Base32, 24 characters, no padding.
    pub secret_base32_encoded: Zeroizing<String>,
}

/// A fresh secret made exactly as FusionAuth's `TwoFactor.generateBase64EncodedSecret`
/// does: base64 of 20 random bytes, characters 1 to 20. Those 20 characters decode to
/// 15 bytes (120 bits), the HMAC key.
pub fn generate_secret() -> Result<FusionSecret, CoreError> {
    let raw = Zeroizing::new(mfad_crypto::random_bytes::<20>()?);
    let b64 = Zeroizing::new(BASE64.encode(raw.as_slice()));
    let secret = Zeroizing::new(b64.get(1..21).unwrap_or_default().to_owned());
    let key = Zeroizing::new(
        BASE64_NOPAD
            .decode(secret.as_bytes())
            .map_err(|_| CoreError::Internal("generated secret is not base64".into()))?,
    );
    Ok(FusionSecret {
        secret,
        secret_base32_encoded: Zeroizing::new(BASE32_NOPAD.encode(&key)),
    })
}

/// Reads a caller's secret: `secret` (standard base64, padding optional) wins over
/// `secretBase32Encoded`. The key must be 10 to 128 bytes.
pub fn decode_secret(
    base64: Option<&str>,
    base32: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    let range = enrollment::MIN_IMPORTED_SECRET_BYTES..=enrollment::MAX_IMPORTED_SECRET_BYTES;
    match (base64, base32) {
        (Some(text), _) => {
            let trimmed = text.trim().trim_end_matches('=');
            BASE64_NOPAD
                .decode(trimmed.as_bytes())
                .ok()
                .map(Zeroizing::new)
                .filter(|k| range.contains(&k.len()))
                .ok_or_else(|| {
                    CoreError::invalid(
                        "secret",
                        "invalid",
                        "secret must be base64 of 10 to 128 bytes",
                    )
                })
        }
        (None, Some(text)) => enrollment::parse_base32_secret(text).ok_or_else(|| {
            CoreError::invalid(
                "secretBase32Encoded",
                "invalid",
                "secretBase32Encoded must be base32 of 10 to 128 bytes",
            )
        }),
        (None, None) => Err(CoreError::invalid(
            "secret",
            "blank",
            "secret or secretBase32Encoded is required for the authenticator method",
        )),
    }
}

/// Normalises an email address (trimmed, lower-cased) after a conservative syntax check
/// that also keeps header-breaking characters out of the SMTP layer.
pub fn normalize_email(input: &str) -> Option<String> {
    let s = input.trim().to_ascii_lowercase();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = s.len() <= MAX_EMAIL_LEN
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        })
        && !domain.contains('@');
    ok.then_some(s)
}

/// What a user enables.
#[derive(Debug)]
pub enum NewMethod {
    /// An authenticator app with this key.
    Authenticator {
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
    /// FusionAuth ≤ 1.25 `delivery: "TextMessage"`: the code is the TOTP of `secret`,
    /// texted by an earlier legacy send to a phone this request may repeat.
    LegacyTextMessage {
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

/// One thing a code may be.
#[derive(Debug)]
pub(crate) enum Candidate {
    /// The current TOTP of an authenticator method.
    Totp(Box<Factor>),
    /// A code sent (or returned by `start`) for this scope.
    Sent(String),
    /// One of the user's recovery codes.
    Recovery,
}

/// What a code turned out to be.
#[derive(Debug)]
pub(crate) enum Judged {
    /// The TOTP of this method.
    Totp(Box<Factor>),
    /// The code sent for this scope, with its payload.
    Sent(PendingCode),
    /// A recovery code (now used up).
    Recovery,
    /// Nothing: a wrong, expired or used code.
    Wrong,
}

/// Digest context for codes of a scope.
fn code_context(tenant: &TenantId, scope: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(tenant.as_str().len() + scope.len() + 8);
    v.extend_from_slice(b"code\0");
    v.extend_from_slice(tenant.as_str().as_bytes());
    v.push(0);
    v.extend_from_slice(scope.as_bytes());
    v
}

/// Scope of the code sent to enable `destination` for `user`.
fn enable_scope(user: &UserId, kind: MethodKind, destination: &str) -> String {
    format!("enable:{}:{}:{destination}", user.as_str(), kind.as_str())
}

/// Scope of the code sent to disable `method` of `user`.
fn disable_scope(user: &UserId, method: &MethodId) -> String {
    format!("disable:{}:{}", user.as_str(), method.as_str())
}

/// The message carrying a code.
pub(crate) fn code_message(code: &str) -> Zeroizing<String> {
    Zeroizing::new(format!("Your verification code is {code}."))
}

/// Subject of emails carrying a code.
pub(crate) const EMAIL_SUBJECT: &str = "Your verification code";

impl<S: Store> Service<S> {
    /// How many wrong codes a user may send in one window before every code is refused
    /// until the window ends: twice the per-challenge limit, so one exhausted login does
    /// not lock the user out, but guessing across many logins does.
    pub fn user_failure_limit(&self) -> u32 {
        self.policy.max_attempts.saturating_mul(2)
    }

    /// A user's methods (their totp, sms and email factors), oldest first, each with a
    /// method id: factors enrolled through the WorkOS API get theirs here, on first sight.
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
        let mut methods = Vec::with_capacity(factors.len());
        for mut f in factors.into_iter().filter(|f| MethodKind::of(f).is_some()) {
            if f.method_id.is_none() {
                f.method_id = Some(self.assign_method_id(tenant, &f.id).await?);
            }
            methods.push(f);
        }
        Ok(methods)
    }

    async fn assign_method_id(
        &self,
        tenant: &TenantId,
        factor: &FactorId,
    ) -> Result<MethodId, CoreError> {
        // 36^4 ids per user: a collision is rare and simply retried.
        for _ in 0..8 {
            let candidate = MethodId::generate()?;
            match self.store.set_method_id(tenant, factor, &candidate).await {
                Ok(true) => return Ok(candidate),
                // Another request assigned one first: use it.
                Ok(false) => {
                    return self
                        .store
                        .get_factor(tenant, factor)
                        .await?
                        .and_then(|f| f.method_id)
                        .ok_or_else(|| CoreError::not_found(Entity::Factor, factor.as_str()));
                }
                Err(crate::error::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Internal("could not allocate a method id".into()))
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
        let now = self.clock.now();
        let name = match req.name {
            Some(n) if n.chars().count() > MAX_LABEL_LEN => {
                return Err(CoreError::invalid(
                    "name",
                    "tooLong",
                    format!("name must be at most {MAX_LABEL_LEN} characters"),
                ));
            }
            other => other,
        };
        if req.code.is_empty() {
            return Err(CoreError::invalid("code", "blank", "code is required"));
        }
        let existing = self.user_methods(tenant, &req.user).await?;
        if existing.len() >= MAX_METHODS {
            return Err(CoreError::invalid(
                "method",
                "tooMany",
                format!("a user may have at most {MAX_METHODS} two-factor methods"),
            ));
        }
        // A login to receive a code once the method is on: checked before anything changes.
        let login = match req.two_factor_id.as_deref() {
            Some(tfid) => Some(self.login_of_user(tenant, &req.user, tfid, now).await?),
            None => None,
        };
        let id = FactorId::generate(now)?;
        let details = match req.method {
            NewMethod::Authenticator { secret } => {
                let step = self
                    .totp_step_of(&secret, &req.code, now)
                    .ok_or(CoreError::InvalidCode)?;
                self.authenticator(&id, &req.user, &secret, step)?
            }
            NewMethod::Sms { mobile_phone } => {
                let phone = parse_phone(&mobile_phone)?;
                reject_duplicate(&existing, MethodKind::Sms, phone.as_str())?;
                self.permit_country(tenant, &phone).await?;
                let scope = enable_scope(&req.user, MethodKind::Sms, phone.as_str());
                self.use_sent_code(tenant, &scope, &req.code, now).await?;
                FactorDetails::Sms { phone }
            }
            NewMethod::Email { email } => {
                let address = normalize_email(&email).ok_or_else(|| {
                    CoreError::invalid("email", "invalid", "email must be a valid email address")
                })?;
                reject_duplicate(&existing, MethodKind::Email, &address)?;
                let scope = enable_scope(&req.user, MethodKind::Email, &address);
                self.use_sent_code(tenant, &scope, &req.code, now).await?;
                FactorDetails::Email { address }
            }
            NewMethod::LegacyTextMessage {
                secret,
                mobile_phone,
            } => {
                let scope = self.legacy_scope(tenant, &secret)?;
                let sent = self
                    .store
                    .get_code(tenant, &scope)
                    .await?
                    .filter(|c| c.expires_at > now);
                let phone = match (mobile_phone, sent.as_ref().and_then(|c| c.payload.clone())) {
                    (Some(p), _) | (None, Some(p)) => parse_phone(&p)?,
                    (None, None) => {
                        return Err(CoreError::invalid(
                            "mobilePhone",
                            "blank",
                            "mobilePhone is required: send a code with mobilePhone and secret first",
                        ));
                    }
                };
                self.totp_step_of(&secret, &req.code, now)
                    .ok_or(CoreError::InvalidCode)?;
                reject_duplicate(&existing, MethodKind::Sms, phone.as_str())?;
                self.permit_country(tenant, &phone).await?;
                if let Some(c) = sent {
                    // Best effort: the phone mapping has served its purpose.
                    let _ = self
                        .store
                        .consume_code(tenant, &scope, &c.digest, u32::MAX, now)
                        .await;
                }
                FactorDetails::Sms { phone }
            }
        };
        let mut method = Factor {
            id,
            tenant_id: tenant.clone(),
            user_id: Some(req.user.clone()),
            details,
            method_id: None,
            name,
            created_at: now,
            updated_at: now,
        };
        let recovery = recovery::new_set(&self.keyring, tenant, &req.user, now)?;
        let mut stored_codes = false;
        for attempt in 0..8 {
            method.method_id = Some(MethodId::generate()?);
            match self
                .store
                .insert_method(&method, &recovery.records, now)
                .await
            {
                Ok(first) => {
                    stored_codes = first;
                    break;
                }
                Err(crate::error::StoreError::Conflict(_)) if attempt < 7 => {}
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
        accepted_step: u64,
    ) -> Result<FactorDetails, CoreError> {
        Ok(FactorDetails::Totp(TotpFactor {
            issuer: "mfad".into(),
            user: user.as_str().to_owned(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            sealed_secret: self.keyring.seal(secret, id.as_str().as_bytes())?,
            // The code that proved the secret is used: it must not also log in.
            last_used_step: Some(i64::try_from(accepted_step).unwrap_or(i64::MAX)),
        }))
    }

    /// The step at which `code` is the TOTP of `secret` (FusionAuth's fixed HmacSHA1, 6
    /// digits, 30 s, with the policy's window).
    fn totp_step_of(&self, secret: &[u8], code: &str, now: OffsetDateTime) -> Option<u64> {
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        mfad_otp::Totp {
            skew: self.policy.totp_skew,
            ..mfad_otp::Totp::default()
        }
        .verify(secret, code, unix, None)
    }

    /// Checks `code` against the code sent for `scope` and uses it up.
    async fn use_sent_code(
        &self,
        tenant: &TenantId,
        scope: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<PendingCode, CoreError> {
        match self
            .judge(
                tenant,
                None,
                vec![Candidate::Sent(scope.to_owned())],
                code,
                now,
            )
            .await?
        {
            Judged::Sent(c) => Ok(c),
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
            return Err(CoreError::invalid("code", "blank", "code is required"));
        }
        self.require_user(tenant, user).await?;
        let methods = self.user_methods(tenant, user).await?;
        let target = match method_id {
            Some(mid) => Some(
                methods
                    .iter()
                    .find(|m| m.method_id.as_ref() == Some(mid))
                    .cloned()
                    .ok_or_else(|| invalid_method_id(mid.as_str()))?,
            ),
            None if methods.is_empty() => {
                return Err(CoreError::invalid(
                    "methodId",
                    "invalid",
                    "the user has no two-factor methods",
                ));
            }
            None => None,
        };
        let mut candidates = Vec::new();
        let scoped: Vec<&Factor> = match &target {
            Some(t) => vec![t],
            None => methods.iter().collect(),
        };
        for m in scoped {
            match (&m.details, &m.method_id) {
                (FactorDetails::Totp(_), _) => {
                    candidates.push(Candidate::Totp(Box::new(m.clone())))
                }
                (_, Some(mid)) => candidates.push(Candidate::Sent(disable_scope(user, mid))),
                (_, None) => {}
            }
        }
        candidates.push(Candidate::Recovery);
        let now = self.clock.now();
        let only = match self
            .judge(tenant, Some(user), candidates, code, now)
            .await?
        {
            Judged::Wrong => return Err(CoreError::InvalidCode),
            Judged::Recovery => None,
            Judged::Totp(_) | Judged::Sent(_) => target.as_ref().map(|t| t.id.clone()),
        };
        self.store
            .delete_methods(tenant, user, only.as_ref(), now)
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
        if name.is_some_and(|n| n.chars().count() > MAX_LABEL_LEN) {
            return Err(CoreError::invalid(
                "name",
                "tooLong",
                format!("name must be at most {MAX_LABEL_LEN} characters"),
            ));
        }
        self.require_user(tenant, user).await?;
        // Listing first gives WorkOS-enrolled factors their ids.
        self.user_methods(tenant, user).await?;
        if self
            .store
            .rename_method(tenant, user, method_id, name, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(invalid_method_id(method_id.as_str()))
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
        let now = self.clock.now();
        let (kind, phone, address) = match destination {
            EnableDestination::Sms(raw) => (MethodKind::Sms, Some(parse_phone(&raw)?), None),
            EnableDestination::Email(raw) => {
                let address = normalize_email(&raw).ok_or_else(|| {
                    CoreError::invalid("email", "invalid", "email must be a valid email address")
                })?;
                (MethodKind::Email, None, Some(address))
            }
        };
        let to = match (&phone, &address) {
            (Some(p), _) => Destination::Sms(p),
            (None, Some(a)) => Destination::Email(a),
            (None, None) => return Err(CoreError::Internal("no destination".into())),
        };
        let scope = match to {
            Destination::Sms(p) => enable_scope(user, kind, p.as_str()),
            Destination::Email(a) => enable_scope(user, kind, a),
        };
        let req = SendRequest {
            tenant,
            to,
            end_user,
        };
        self.limited_send(req, async {
            let code = self
                .put_new_code(
                    tenant,
                    &scope,
                    Some(user),
                    None,
                    now + self.policy.challenge_ttl,
                    now,
                )
                .await?;
            self.deliver(to, &code).await
        })
        .await
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
        let method = match method_id {
            Some(mid) => methods
                .iter()
                .find(|m| m.method_id.as_ref() == Some(mid))
                .ok_or_else(|| invalid_method_id(mid.as_str()))?,
            None => first_deliverable(&methods).ok_or_else(|| {
                CoreError::invalid("methodId", "invalid", "the user has no SMS or email method")
            })?,
        };
        let Some(mid) = method.method_id.as_ref() else {
            return Err(CoreError::Internal("method without id".into()));
        };
        if matches!(method.details, FactorDetails::Totp(_)) {
            return Err(CoreError::invalid(
                "methodId",
                "invalid",
                "codes cannot be sent to an authenticator method",
            ));
        }
        let now = self.clock.now();
        let scope = disable_scope(user, mid);
        let to = Destination::of(method).ok_or(CoreError::WrongFactorType(method.id.clone()))?;
        let req = SendRequest {
            tenant,
            to,
            end_user,
        };
        self.limited_send(req, async {
            let code = self
                .put_new_code(
                    tenant,
                    &scope,
                    Some(user),
                    None,
                    now + self.policy.challenge_ttl,
                    now,
                )
                .await?;
            self.deliver(to, &code).await
        })
        .await
    }

    /// FusionAuth ≤ 1.25 "send a code to a mobile phone": texts the current TOTP of
    /// `secret` and remembers the phone for the legacy enable that follows.
    pub async fn legacy_send_to_phone(
        &self,
        tenant: &TenantId,
        mobile_phone: &str,
        secret: &[u8],
        end_user: Option<&UserId>,
    ) -> Result<(), CoreError> {
        let phone = parse_phone(mobile_phone)?;
        let now = self.clock.now();
        let scope = self.legacy_scope(tenant, secret)?;
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let code = Zeroizing::new(mfad_otp::Totp::default().code_at(secret, unix));
        let req = SendRequest {
            tenant,
            to: Destination::Sms(&phone),
            end_user,
        };
        self.limited_send(req, async {
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
            self.deliver_sms(&phone, &code).await
        })
        .await
    }

    /// Scope of a legacy send: a peppered digest of the secret, so the table never holds
    /// anything that computes codes.
    fn legacy_scope(&self, tenant: &TenantId, secret: &[u8]) -> Result<String, CoreError> {
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

    /// Sends `code` to a phone or mailbox.
    pub(crate) async fn deliver(&self, to: Destination<'_>, code: &str) -> Result<(), CoreError> {
        match to {
            Destination::Sms(phone) => self.deliver_sms(phone, code).await,
            Destination::Email(address) => self.deliver_email(address, code).await,
        }
    }

    async fn deliver_sms(&self, phone: &PhoneNumber, code: &str) -> Result<(), CoreError> {
        self.sms
            .send(phone, &code_message(code))
            .await
            .map_err(|e| {
                tracing::warn!(to = %phone.redacted(), error = %e, "SMS delivery failed");
                CoreError::Delivery(e)
            })
    }

    async fn deliver_email(&self, address: &str, code: &str) -> Result<(), CoreError> {
        self.email
            .send(address, EMAIL_SUBJECT, &code_message(code))
            .await
            .map_err(|e| {
                let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
                tracing::warn!(to_domain = %domain, error = %e, "email delivery failed");
                CoreError::Delivery(e)
            })
    }

    /// Judges `code` against `candidates`, then uses up the one it matched. With `user`,
    /// the attempt is first reserved against the user's failure limit (a user at the
    /// limit gets `Wrong` for every code) and a right code clears the count.
    pub(crate) async fn judge(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        candidates: Vec<Candidate>,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<Judged, CoreError> {
        if let Some(u) = user {
            let window_end = now + self.policy.challenge_ttl;
            let allowed = self
                .store
                .reserve_user_attempt(tenant, u, self.user_failure_limit(), window_end, now)
                .await?;
            if !allowed {
                tracing::info!(user = %u, "code refused: the user is at the failure limit");
                return Ok(Judged::Wrong);
            }
        }
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let max = self.policy.max_attempts;
        let mut open_codes = Vec::new();
        let mut matched = None;
        let recovery_code = recovery::canonical(code);
        for candidate in candidates {
            match candidate {
                Candidate::Totp(f) => {
                    let FactorDetails::Totp(totp) = &f.details else {
                        continue;
                    };
                    let secret = self
                        .keyring
                        .open(&totp.sealed_secret, f.id.as_str().as_bytes())?;
                    let last = totp.last_used_step.and_then(|s| u64::try_from(s).ok());
                    let step = totp
                        .params(self.policy.totp_skew)
                        .verify(&secret, code, unix, last);
                    if let (Some(step), None) = (step, &matched) {
                        matched = Some(Match::Totp(f, i64::try_from(step).unwrap_or(i64::MAX)));
                    }
                }
                Candidate::Sent(scope) => {
                    let Some(sent) = self.store.get_code(tenant, &scope).await? else {
                        continue;
                    };
                    if sent.expires_at <= now || sent.attempts >= max {
                        continue;
                    }
                    let right = code.len() <= MAX_CODE_LEN
                        && self.keyring.code_matches(
                            &sent.digest,
                            &code_context(tenant, &scope),
                            code.as_bytes(),
                        );
                    if right && matched.is_none() {
                        matched = Some(Match::Sent(sent));
                    } else {
                        open_codes.push(sent);
                    }
                }
                Candidate::Recovery => {
                    let (Some(u), Some(rc)) = (user, recovery_code.as_deref()) else {
                        continue;
                    };
                    if matched.is_none()
                        && let Some(digest) =
                            recovery::find(&self.keyring, &self.store, tenant, u, rc).await?
                    {
                        matched = Some(Match::Recovery(digest));
                    }
                }
            }
        }
        let used = match matched {
            Some(Match::Totp(f, step)) => self
                .store
                .advance_totp_step(tenant, &f.id, step, now)
                .await?
                .then_some(Judged::Totp(f)),
            Some(Match::Sent(sent)) => self
                .store
                .consume_code(tenant, &sent.scope, &sent.digest, max, now)
                .await?
                .then_some(Judged::Sent(sent)),
            Some(Match::Recovery(digest)) => match user {
                Some(u) => self
                    .store
                    .consume_recovery_code(tenant, u, &digest)
                    .await?
                    .then_some(Judged::Recovery),
                None => None,
            },
            None => None,
        };
        match used {
            Some(judged) => {
                if let Some(u) = user {
                    self.store.reset_user_attempts(tenant, u).await?;
                }
                Ok(judged)
            }
            None => {
                for sent in open_codes {
                    self.store
                        .fail_code(tenant, &sent.scope, &sent.digest, max, now)
                        .await?;
                }
                Ok(Judged::Wrong)
            }
        }
    }
}

/// The candidate a code matched, before it is used up.
enum Match {
    Totp(Box<Factor>, i64),
    Sent(PendingCode),
    Recovery(Vec<u8>),
}

/// Scope of the codes of a login (re-exported for `login`).
pub(crate) fn login_scope(id_digest: &str) -> String {
    crate::model::LoginState::code_scope(id_digest)
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, CoreError> {
    PhoneNumber::parse(raw).map_err(|_| {
        CoreError::invalid(
            "mobilePhone",
            "invalid",
            "mobilePhone must be a valid phone number",
        )
    })
}

fn invalid_method_id(mid: &str) -> CoreError {
    CoreError::Validation(vec![FieldError::new(
        "methodId",
        "invalid",
        format!(
            "the user has no two-factor method with id [{}]",
            mid.chars().take(16).collect::<String>()
        ),
    )])
}

fn reject_duplicate(
    existing: &[Factor],
    kind: MethodKind,
    destination: &str,
) -> Result<(), CoreError> {
    let dup = existing.iter().any(|m| match (&m.details, kind) {
        (FactorDetails::Sms { phone }, MethodKind::Sms) => phone.as_str() == destination,
        (FactorDetails::Email { address }, MethodKind::Email) => address == destination,
        _ => false,
    });
    if !dup {
        return Ok(());
    }
    let field = match kind {
        MethodKind::Sms => "mobilePhone",
        _ => "email",
    };
    Err(CoreError::invalid(
        field,
        "duplicate",
        format!("the user already has a method with this {field}"),
    ))
}

/// The first SMS method, else the first email method.
pub(crate) fn first_deliverable(methods: &[Factor]) -> Option<&Factor> {
    methods
        .iter()
        .find(|m| matches!(m.details, FactorDetails::Sms { .. }))
        .or_else(|| {
            methods
                .iter()
                .find(|m| matches!(m.details, FactorDetails::Email { .. }))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_match_fusionauths_format() {
        for _ in 0..50 {
            let s = generate_secret().unwrap();
            assert_eq!(s.secret.len(), 20);
            assert_eq!(s.secret_base32_encoded.len(), 24);
            let key = BASE64_NOPAD.decode(s.secret.as_bytes()).unwrap();
            assert_eq!(key.len(), 15);
            assert_eq!(BASE32_NOPAD.encode(&key), *s.secret_base32_encoded);
        }
    }

    #[test]
    fn reference_secret_pairs_decode_to_the_same_key() {
        // Real FusionAuth secret responses (quoted in the Elixir client's documentation):
        // base32(base64decode(secret)), `docs/contracts/fusionauth.md` §5.
        for (b64, b32) in [
            ("SP2m6K2Dg/x2JN9DyQvZ", "JD62N2FNQOB7Y5RE35B4SC6Z"),
            ("D90sYs5aPN51Z+ubdQt7", "B7OSYYWOLI6N45LH5ONXKC33"),
            ("EgLthMnIgHaQot7sgloI", "CIBO3BGJZCAHNEFC33WIEWQI"),
            ("ZlaRg5hfQ5/cF25tYHKU", "MZLJDA4YL5BZ7XAXNZWWA4UU"),
        ] {
            let a = decode_secret(Some(b64), None).unwrap();
            let b = decode_secret(None, Some(b32)).unwrap();
            assert_eq!(*a, *b, "{b64}");
            assert_eq!(a.len(), 15);
        }
        assert!(decode_secret(Some("not base64!"), None).is_err());
        assert!(decode_secret(None, None).is_err());
    }

    #[test]
    fn reference_totp_vectors() {
        // Computed with a plain RFC 4226 HOTP: key = base64decode("SP2m6K2Dg/x2JN9DyQvZ"),
        // codes at t-1, t, t+1.
        let key = decode_secret(Some("SP2m6K2Dg/x2JN9DyQvZ"), None).unwrap();
        let t = mfad_otp::Totp::default();
        assert_eq!(t.code_at(&key, 1_700_000_000 - 30), "844552");
        assert_eq!(t.code_at(&key, 1_700_000_000), "983894");
        assert_eq!(t.code_at(&key, 1_700_000_030), "428153");
        assert_eq!(t.code_at(&key, 1_700_000_060), "604508");
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Richard@PiedPiper.com ").as_deref(),
            Some("richard@piedpiper.com")
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@.com",
            "a b@c.com",
            "a@b.com>",
            "a@b.com\r\nBcc: x@y.z",
        ] {
            assert!(normalize_email(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn method_kinds_round_trip() {
        for k in [
            MethodKind::Authenticator,
            MethodKind::Sms,
            MethodKind::Email,
        ] {
            assert_eq!(MethodKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MethodKind::parse("totp"), None);
    }
}
