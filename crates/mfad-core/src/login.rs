//! FusionAuth two-factor logins and status.
//!
//! A login in progress is named by its `twoFactorId`: 32 random bytes, base64url without
//! padding (43 characters). The id is the only credential of the unauthenticated
//! `/api/two-factor/send/{twoFactorId}` and `/api/two-factor/login`, so only its SHA-256
//! is stored. A login lasts `Policy::two_factor_login_ttl`, ends at its first right code
//! (single use), and is deleted after `Policy::max_attempts` wrong ones, after which its
//! id is as unknown as one never issued (404). Each login accepts the code `start`
//! returned or the last code sent for it (a new send replaces the previous code), the
//! TOTP of any of the user's authenticators, and the user's recovery codes.
//!
//! `trustComputer` grants a `twoFactorTrustId` (stored likewise as a digest) for
//! `Policy::two_factor_trust_ttl`; while it lasts, status answers "not required".

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use mfad_crypto::Zeroizing;
use time::OffsetDateTime;

use crate::error::{CoreError, Entity};
use crate::ids::{FactorId, MethodId, TenantId, UserId};
use crate::model::{Factor, FactorDetails, LoginState, Trust};
use crate::phone::PhoneNumber;
use crate::service::Service;
use crate::store::Store;
use crate::two_factor::{
    Candidate, Judged, MAX_CODE_LEN, first_deliverable, login_scope, normalize_email,
};

/// Longest accepted `twoFactorId` or `twoFactorTrustId` (they are 43 characters).
const MAX_TOKEN_LEN: usize = 128;
/// Expired rows purged per `start`.
const PURGE_BATCH: u32 = 64;

/// Who a login is for.
#[derive(Debug, Clone)]
pub enum UserRef {
    /// The application's user id.
    Id(UserId),
    /// A login id: an email address or phone number of one of the user's methods, or
    /// the user id itself.
    LoginId(String),
}

/// A `start` request.
#[derive(Debug)]
pub struct StartRequest {
    /// The user.
    pub user: UserRef,
    /// The application, echoed at login and recorded on trusts.
    pub application_id: Option<String>,
    /// A code the caller chose (for its own delivery); otherwise one is generated.
    pub code: Option<String>,
    /// The caller's `state` object as JSON text, echoed at login.
    pub state: Option<String>,
}

/// A started login.
#[derive(Debug)]
pub struct Started {
    /// The new `twoFactorId`.
    pub two_factor_id: Zeroizing<String>,
    /// The code that completes it, for the caller to deliver.
    pub code: Zeroizing<String>,
    /// The user.
    pub user_id: UserId,
    /// The user's methods.
    pub methods: Vec<Factor>,
    /// The method the user last logged in with.
    pub last_used: Option<FactorId>,
}

/// A `login` request.
#[derive(Debug)]
pub struct LoginRequest {
    /// The `twoFactorId`.
    pub two_factor_id: String,
    /// A one-time code, TOTP code or recovery code.
    pub code: String,
    /// Grant a `twoFactorTrustId`.
    pub trust_computer: bool,
    /// The application, overriding the one given at `start`.
    pub application_id: Option<String>,
    /// The tenant the caller named (`X-FusionAuth-TenantId`), which must be the login's.
    pub tenant: Option<TenantId>,
}

/// What completed a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsedCode {
    /// A method: its TOTP, or a code sent to it.
    Method(Box<Factor>),
    /// A recovery code.
    RecoveryCode,
    /// The code `start` returned to the caller.
    StartCode,
}

/// A completed login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The login's tenant.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// What the code was.
    pub used: UsedCode,
    /// The user's methods after the login.
    pub methods: Vec<Factor>,
    /// The method the user last logged in with: this one, unless a recovery code or
    /// the code from `start` completed it.
    pub last_used: Option<FactorId>,
    /// The application of the login.
    pub application_id: Option<String>,
    /// The caller's `state`, from `start`.
    pub state: Option<String>,
    /// A new `twoFactorTrustId`, when asked for.
    pub trust_id: Option<Zeroizing<String>>,
    /// Until when the trust lasts.
    pub trust_expires_at: Option<OffsetDateTime>,
}

/// A user's two-factor status.
#[derive(Debug)]
pub struct Status {
    /// The user has a method and no valid trust: a second factor is required (242).
    pub required: bool,
    /// The trust named in the request, if it is valid for this user.
    pub trust: Option<Trust>,
}

/// SHA-256 (hex) of a bearer token: 256-bit random ids need no slow hash.
fn token_digest(token: &str) -> String {
    HEXLOWER.encode(&mfad_crypto::api_key_digest(token.as_bytes()))
}

/// 32 random bytes, base64url without padding: FusionAuth's 43-character ids.
fn new_token() -> Result<Zeroizing<String>, CoreError> {
    let bytes = Zeroizing::new(mfad_crypto::random_bytes::<32>()?);
    Ok(Zeroizing::new(BASE64URL_NOPAD.encode(bytes.as_slice())))
}

fn login_not_found() -> CoreError {
    CoreError::not_found(Entity::Challenge, "twoFactorId")
}

impl<S: Store> Service<S> {
    /// Starts a login (FusionAuth's `/api/two-factor/start`).
    pub async fn start_login(
        &self,
        tenant: &TenantId,
        req: StartRequest,
    ) -> Result<Started, CoreError> {
        let user = self.resolve_user(tenant, &req.user).await?;
        if let Some(c) = &req.code {
            let ok =
                !c.is_empty() && c.len() <= MAX_CODE_LEN && c.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(CoreError::invalid(
                    "code",
                    "invalid",
                    format!("code must be 1 to {MAX_CODE_LEN} printable characters without spaces"),
                ));
            }
        }
        let methods = self.user_methods(tenant, &user).await?;
        let last_used = self.store.last_used_method(tenant, &user).await?;
        let now = self.clock.now();
        // Opportunistic cleanup, bounded, through the expiry indexes.
        self.store.purge_expired(now, PURGE_BATCH).await?;
        let two_factor_id = new_token()?;
        let login = LoginState {
            id_digest: token_digest(&two_factor_id),
            tenant_id: tenant.clone(),
            user_id: user.clone(),
            application_id: req.application_id,
            state: req.state,
            expires_at: now + self.policy.two_factor_login_ttl,
            attempts: 0,
            sends: 0,
            created_at: now,
        };
        self.store.insert_login(&login).await?;
        let scope = login_scope(&login.id_digest);
        let code = match req.code {
            Some(c) => {
                let c = Zeroizing::new(c);
                self.put_code_value(tenant, &scope, Some(&user), None, &c, login.expires_at, now)
                    .await?;
                c
            }
            None => {
                self.put_new_code(tenant, &scope, Some(&user), None, login.expires_at, now)
                    .await?
            }
        };
        Ok(Started {
            two_factor_id,
            code,
            user_id: user,
            methods,
            last_used,
        })
    }

    async fn resolve_user(&self, tenant: &TenantId, user: &UserRef) -> Result<UserId, CoreError> {
        match user {
            UserRef::Id(u) => {
                self.require_user(tenant, u).await?;
                Ok(u.clone())
            }
            UserRef::LoginId(login_id) => {
                let email = normalize_email(login_id);
                let phone = PhoneNumber::parse(login_id).ok();
                let as_user = UserId::parse(login_id.trim());
                let found = self
                    .store
                    .find_users(
                        tenant,
                        email.as_deref(),
                        phone.as_ref().map(PhoneNumber::as_str),
                        as_user.as_ref(),
                        2,
                    )
                    .await?;
                match found.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(CoreError::not_found(Entity::User, "loginId")),
                    _ => Err(CoreError::invalid(
                        "loginId",
                        "duplicate",
                        "loginId matches more than one user; send userId",
                    )),
                }
            }
        }
    }

    /// Finds an open login. Unknown, expired, exhausted, finished and other tenants'
    /// logins are all the same 404.
    async fn open_login(
        &self,
        two_factor_id: &str,
        tenant: Option<&TenantId>,
        now: OffsetDateTime,
    ) -> Result<LoginState, CoreError> {
        if two_factor_id.is_empty() || two_factor_id.len() > MAX_TOKEN_LEN {
            return Err(login_not_found());
        }
        let login = self
            .store
            .get_login(&token_digest(two_factor_id))
            .await?
            .ok_or_else(login_not_found)?;
        let open = login.expires_at > now
            && login.attempts < self.policy.max_attempts
            && tenant.is_none_or(|t| *t == login.tenant_id);
        if open {
            Ok(login)
        } else {
            Err(login_not_found())
        }
    }

    /// The open login `two_factor_id` of `user` in `tenant` (enable with `twoFactorId`).
    pub(crate) async fn login_of_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
        two_factor_id: &str,
        now: OffsetDateTime,
    ) -> Result<LoginState, CoreError> {
        let login = self.open_login(two_factor_id, Some(tenant), now).await?;
        if login.user_id == *user {
            Ok(login)
        } else {
            Err(login_not_found())
        }
    }

    /// A fresh code for a login, replacing its earlier code (enable with `twoFactorId`).
    pub(crate) async fn issue_login_code(
        &self,
        login: &LoginState,
        now: OffsetDateTime,
    ) -> Result<Zeroizing<String>, CoreError> {
        self.put_new_code(
            &login.tenant_id,
            &login_scope(&login.id_digest),
            Some(&login.user_id),
            None,
            login.expires_at,
            now,
        )
        .await
    }

    /// Sends a code for a login to one of the user's SMS or email methods (FusionAuth's
    /// `/api/two-factor/send/{twoFactorId}`); without `method_id`, to the first SMS
    /// method, else the first email method. Replaces the login's earlier code. At most
    /// `Policy::max_attempts` sends per login, so the unauthenticated route cannot be
    /// used to flood a phone.
    pub async fn send_login_code(
        &self,
        two_factor_id: &str,
        method_id: Option<&MethodId>,
        tenant: Option<&TenantId>,
    ) -> Result<(), CoreError> {
        let now = self.clock.now();
        let login = self.open_login(two_factor_id, tenant, now).await?;
        let methods = self.user_methods(&login.tenant_id, &login.user_id).await?;
        let method = match method_id {
            Some(mid) => methods
                .iter()
                .find(|m| m.method_id.as_ref() == Some(mid))
                .ok_or_else(|| {
                    CoreError::invalid(
                        "methodId",
                        "invalid",
                        "the user has no two-factor method with this id",
                    )
                })?,
            None => first_deliverable(&methods).ok_or_else(|| {
                CoreError::invalid("methodId", "invalid", "the user has no SMS or email method")
            })?,
        };
        if matches!(method.details, FactorDetails::Totp(_)) {
            return Err(CoreError::invalid(
                "methodId",
                "invalid",
                "codes cannot be sent to an authenticator method",
            ));
        }
        if !self
            .store
            .count_login_send(&login.id_digest, self.policy.max_attempts, now)
            .await?
        {
            return Err(CoreError::TooManyRequests);
        }
        let code = self
            .put_new_code(
                &login.tenant_id,
                &login_scope(&login.id_digest),
                Some(&login.user_id),
                method.method_id.as_ref().map(|m| m.as_str().to_owned()),
                login.expires_at,
                now,
            )
            .await?;
        self.deliver_to(method, &code).await
    }

    /// Completes a login (FusionAuth's `/api/two-factor/login`). A wrong code is
    /// `InvalidCode` (421) and counts against the login and the user.
    pub async fn complete_login(&self, req: LoginRequest) -> Result<LoggedIn, CoreError> {
        let now = self.clock.now();
        let login = self
            .open_login(&req.two_factor_id, req.tenant.as_ref(), now)
            .await?;
        if req.code.is_empty() {
            return Err(CoreError::invalid("code", "blank", "code is required"));
        }
        let tenant = login.tenant_id.clone();
        let user = login.user_id.clone();
        let methods = self.user_methods(&tenant, &user).await?;
        let mut candidates = vec![Candidate::Sent(login_scope(&login.id_digest))];
        for m in &methods {
            if matches!(m.details, FactorDetails::Totp(_)) {
                candidates.push(Candidate::Totp(Box::new(m.clone())));
            }
        }
        candidates.push(Candidate::Recovery);
        let used = match self
            .judge(&tenant, Some(&user), candidates, &req.code, now)
            .await?
        {
            Judged::Wrong => {
                self.store
                    .fail_login(&tenant, &login.id_digest, self.policy.max_attempts, now)
                    .await?;
                return Err(CoreError::InvalidCode);
            }
            Judged::Totp(f) => UsedCode::Method(f),
            Judged::Recovery => UsedCode::RecoveryCode,
            Judged::Sent(sent) => {
                let by = sent.payload.as_deref().and_then(MethodId::parse);
                match by.and_then(|mid| methods.iter().find(|m| m.method_id.as_ref() == Some(&mid)))
                {
                    Some(m) => UsedCode::Method(Box::new(m.clone())),
                    None => UsedCode::StartCode,
                }
            }
        };
        // Single use: of two requests with right codes, only one ends the login.
        if !self
            .store
            .consume_login(&tenant, &login.id_digest, self.policy.max_attempts, now)
            .await?
        {
            return Err(login_not_found());
        }
        let last_used = match &used {
            UsedCode::Method(f) => {
                self.store
                    .set_last_used_method(&tenant, &user, &f.id, now)
                    .await?;
                Some(f.id.clone())
            }
            _ => self.store.last_used_method(&tenant, &user).await?,
        };
        let application_id = req.application_id.or(login.application_id);
        let (trust_id, trust_expires_at) = if req.trust_computer {
            let id = new_token()?;
            let expires_at = now + self.policy.two_factor_trust_ttl;
            self.store
                .insert_trust(&Trust {
                    id_digest: token_digest(&id),
                    tenant_id: tenant.clone(),
                    user_id: user.clone(),
                    application_id: application_id.clone(),
                    created_at: now,
                    expires_at,
                })
                .await?;
            (Some(id), Some(expires_at))
        } else {
            (None, None)
        };
        // A recovery code may have been the last one; methods are unchanged either way.
        Ok(LoggedIn {
            tenant_id: tenant,
            user_id: user,
            used,
            methods,
            last_used,
            application_id,
            state: login.state,
            trust_id,
            trust_expires_at,
        })
    }

    /// Whether a user must present a second factor (FusionAuth's status): required when
    /// the user has a method and `trust_id` is not a valid trust of this user (and, when
    /// both name one, of this application). Users this tenant has never seen have no
    /// method, so need none.
    pub async fn two_factor_status(
        &self,
        tenant: &TenantId,
        user: &UserId,
        application_id: Option<&str>,
        trust_id: Option<&str>,
    ) -> Result<Status, CoreError> {
        let now = self.clock.now();
        let has_method = !self.user_methods(tenant, user).await?.is_empty();
        let trust = match trust_id.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN) {
            None => None,
            Some(t) => self.store.get_trust(&token_digest(t)).await?.filter(|tr| {
                tr.tenant_id == *tenant
                    && tr.user_id == *user
                    && tr.expires_at > now
                    && match (application_id, tr.application_id.as_deref()) {
                        (Some(asked), Some(granted)) => asked == granted,
                        _ => true,
                    }
            }),
        };
        Ok(Status {
            required: has_method && trust.is_none(),
            trust,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(*t, *new_token().unwrap());
        assert_eq!(token_digest(&t).len(), 64);
    }
}
