//! `POST /api/two-factor/start` and `POST /api/two-factor/login`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use mfad_core::error::CoreError;
use mfad_core::model::Factor;
use mfad_core::service::{LoginRequest, StartRequest, UsedCode, UserRef};
use mfad_core::{FactorId, TenantId, UserId};
use serde_json::{Map, Value, json};

use super::auth::{ApiKeyTenant, TenantHint};
use super::body::FaBody;
use super::schema;
use super::wire::{instant, json_ok, method_name, methods};
use crate::error::{FusionAuthError, WireFieldError};
use crate::extract::Fields;
use crate::openapi::FusionAuthErrors;
use crate::state::AppState;

/// The cookie FusionAuth sets for a trusted computer.
const TRUST_COOKIE: &str = "fusionauth.trust";

/// `POST /api/two-factor/start`: FusionAuth's `startTwoFactorLogin` (step-up). Body:
/// `userId` or `loginId` (`userId` wins), optional `applicationId`, `code` (a code of the
/// caller's choosing, else one is generated), `state` (echoed at login); `trustChallenge`
/// and `loginIdTypes` are accepted and ignored. Answers `{"code", "methods"?,
/// "twoFactorId"}`; `methods` is left out when the user has none, and marks `lastUsed`
/// the method the user last logged in with.
///
/// mfad does not own users: a `userId` is known once it has a factor or enabled a method
/// here (else 404); a `loginId` is matched against the email addresses and phone numbers
/// of the tenant's methods, and against user ids (404 if nothing matches, 400
/// `[duplicate]loginId` if several users do).
#[utoipa::path(
    post,
    path = "/api/two-factor/start",
    tag = "FusionAuth",
    operation_id = "startTwoFactorLogin",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::StartRequest,
    responses(
        (status = 200, description = "The login in progress.", body = schema::StartResponse),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let user_id = fields.take(body.str("userId")).flatten();
    let login_id = fields.take(body.str("loginId")).flatten();
    let application_id = fields.take(body.str("applicationId")).flatten();
    let code = fields.take(body.str("code")).flatten();
    let login_state = fields.take(body.object("state")).flatten();
    let user = match (user_id, login_id) {
        (Some(u), _) => match UserId::parse(&u) {
            Some(u) => Some(UserRef::Id(u)),
            None => {
                fields.push(WireFieldError::new(
                    "userId",
                    "invalid",
                    "userId is not a valid user id",
                ));
                None
            }
        },
        (None, Some(l)) => Some(UserRef::LoginId(l)),
        (None, None) => {
            fields.push(WireFieldError::new(
                "loginId",
                "blank",
                "loginId or userId is required",
            ));
            None
        }
    };
    fields.finish()?;
    let Some(user) = user else {
        return Err(CoreError::Internal("start fields missing".into()).into());
    };
    let started = state
        .service
        .start_login(
            &tenant,
            StartRequest {
                user,
                application_id,
                code,
                state: login_state,
            },
        )
        .await?;
    let mut out = Map::new();
    out.insert("code".into(), started.code.as_str().into());
    if !started.methods.is_empty() {
        out.insert(
            "methods".into(),
            methods(&started.methods, started.last_used.as_ref()),
        );
    }
    out.insert("twoFactorId".into(), started.two_factor_id.as_str().into());
    Ok(json_ok(&Value::Object(out)))
}

/// `POST /api/two-factor/login`: FusionAuth's `twoFactorLogin` (and the ≤ 1.25 flow that
/// follows `/api/login`'s 242). No authentication: the `twoFactorId` is the credential.
/// Body: `twoFactorId`, `code` (the code from `start` or the last send, a TOTP code of any
/// authenticator, or a recovery code), optional `trustComputer`, `applicationId`,
/// `noJWT`; `ipAddress`, `metaData`, `userId` and the rest are ignored.
///
/// 200 with a LoginResponse: `user` (`id`, `tenantId` as a UUID, `twoFactor.methods` with
/// `lastUsed` on the method the user last logged in with, stored per user), `state` from
/// `start`, `twoFactorTrustId` (and the `fusionauth.trust` cookie) when trusting the computer, `token` and
/// `tokenExpirationInstant` when an HS256 signing secret is configured and `noJWT` is not
/// set, and, an mfad addition, `methodId` and `method` (`authenticator` | `sms` | `email`
/// | `recoveryCode` | `code`) saying what completed the login. 421 empty for a wrong code
/// (after `MFAD_CHALLENGE_MAX_ATTEMPTS` of them the login is gone); 404 empty for an
/// unknown, expired, used or exhausted `twoFactorId`.
#[utoipa::path(
    post,
    path = "/api/two-factor/login",
    tag = "FusionAuth",
    operation_id = "twoFactorLogin",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = schema::LoginResponse),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 421, description = "The code is not valid. Empty body."),
        (status = 409, description = "Throttled or locked after too many wrong codes; see `Retry-After`.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(())
)]
pub async fn login(
    State(state): State<AppState>,
    TenantHint(tenant): TenantHint,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let two_factor_id = fields.take(body.str("twoFactorId")).flatten();
    let code = fields.take(body.str("code")).flatten();
    let trust_computer = fields
        .take(body.bool("trustComputer"))
        .flatten()
        .unwrap_or(false);
    let no_jwt = fields.take(body.bool("noJWT")).flatten().unwrap_or(false);
    let application_id = fields.take(body.str("applicationId")).flatten();
    if two_factor_id.is_none() {
        fields.push(WireFieldError::new(
            "twoFactorId",
            "blank",
            "twoFactorId is required",
        ));
    }
    if code.is_none() {
        fields.push(WireFieldError::new("code", "blank", "code is required"));
    }
    fields.finish()?;
    let done = state
        .service
        .complete_login(LoginRequest {
            two_factor_id: two_factor_id.unwrap_or_default(),
            code: code.unwrap_or_default(),
            trust_computer,
            application_id,
            tenant,
        })
        .await?;
    let (method, method_id) = match &done.used {
        UsedCode::Method(f) => (
            method_name(f.details.factor_type()).unwrap_or("code"),
            f.method_id.as_ref().map(|m| m.as_str().to_owned()),
        ),
        UsedCode::RecoveryCode => ("recoveryCode", None),
        UsedCode::StartCode => ("code", None),
    };
    let mut used = vec![("method", Value::from(method))];
    if let Some(m) = method_id {
        used.push(("methodId", m.into()));
    }
    let mut out = LoginResponse {
        tenant: &done.tenant_id,
        user: &done.user_id,
        methods: &done.methods,
        last_used: done.last_used.as_ref(),
        used,
        login_state: done.state.as_deref(),
        application_id: done.application_id.as_deref(),
        no_jwt,
    }
    .render(&state)?;
    if let Some(trust) = &done.trust_id {
        out.insert("twoFactorTrustId".into(), trust.as_str().into());
    }
    let mut resp = json_ok(&Value::Object(out));
    if let (Some(trust), Some(expires)) = (&done.trust_id, done.trust_expires_at) {
        let max_age = (expires - state.service.now()).whole_seconds().max(0);
        let cookie = format!(
            "{TRUST_COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax",
            trust.as_str()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// The LoginResponse every FusionAuth login answers (`/api/two-factor/login`,
/// `/api/webauthn/login`), in this order: `user` (`id`, `tenantId` as a UUID,
/// `twoFactor.methods` marking `lastUsed`), what completed the login, `state` from start,
/// and `token` / `tokenExpirationInstant` when a signing key is configured and `noJWT` is
/// not set.
pub(super) struct LoginResponse<'a> {
    pub tenant: &'a TenantId,
    pub user: &'a UserId,
    pub methods: &'a [Factor],
    pub last_used: Option<&'a FactorId>,
    /// What completed the login (`method`, and `methodId` or `credentialId`).
    pub used: Vec<(&'static str, Value)>,
    pub login_state: Option<&'a str>,
    pub application_id: Option<&'a str>,
    pub no_jwt: bool,
}

impl LoginResponse<'_> {
    pub(super) fn render(self, state: &AppState) -> Result<Map<String, Value>, FusionAuthError> {
        let mut out = Map::new();
        out.insert(
            "user".into(),
            json!({
                "id": self.user.as_str(),
                "tenantId": self.tenant.as_uuid(),
                "twoFactor": {"methods": methods(self.methods, self.last_used)},
            }),
        );
        for (k, v) in self.used {
            out.insert(k.into(), v);
        }
        if let Some(s) = self
            .login_state
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            out.insert("state".into(), s);
        }
        if !self.no_jwt {
            let issued = state
                .jwt
                .issue(
                    self.tenant,
                    self.user,
                    self.application_id,
                    state.service.now(),
                )
                .map_err(|e| CoreError::Internal(format!("signing the login token: {e}")))?;
            if let Some(t) = issued {
                out.insert("token".into(), t.token.into());
                out.insert(
                    "tokenExpirationInstant".into(),
                    instant(t.expires_at).into(),
                );
            }
        }
        Ok(out)
    }
}
