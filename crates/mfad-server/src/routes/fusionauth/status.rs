//! `GET /api/two-factor/status[/{twoFactorTrustId}]` and `POST /api/two-factor/status`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use mfad_core::error::CoreError;
use mfad_core::{TenantId, UserId};
use serde_json::{Map, Value, json};

use super::auth::ApiKeyTenant;
use super::body::{FaBody, FaQuery};
use super::schema;
use super::wire::instant;
use crate::error::{FusionAuthError, WireFieldError, json_response};
use crate::extract::Fields;
use crate::openapi::FusionAuthErrors;
use crate::state::AppState;

/// FusionAuth's "two-factor required" status, and the reason phrase it is sent with.
const REQUIRED: u16 = 242;
const REQUIRED_REASON: hyper::ext::ReasonPhrase =
    hyper::ext::ReasonPhrase::from_static(b"Two Factor Required");

async fn status(
    state: &AppState,
    tenant: &TenantId,
    user: Option<UserId>,
    application_id: Option<String>,
    trust_id: Option<String>,
) -> Result<Response, FusionAuthError> {
    let Some(user) = user else {
        return Err(FusionAuthError::field(
            "userId",
            "blank",
            "userId is required",
        ));
    };
    let s = state
        .service
        .two_factor_status(
            tenant,
            &user,
            application_id.as_deref(),
            trust_id.as_deref(),
        )
        .await?;
    let mut out = Map::new();
    let trusts: Vec<Value> = s
        .trust
        .iter()
        .map(|t| {
            json!({
                "applicationId": t.application_id,
                "expiration": instant(t.expires_at),
                "startInstant": instant(t.created_at),
                "expired": false,
            })
        })
        .collect();
    out.insert("trusts".into(), Value::Array(trusts));
    if s.trust.is_some()
        && let Some(t) = trust_id
    {
        out.insert("twoFactorTrustId".into(), t.into());
    }
    if !s.required {
        return Ok(json_response(StatusCode::OK, &Value::Object(out)));
    }
    let code = StatusCode::from_u16(REQUIRED).map_err(|e| CoreError::Internal(e.to_string()))?;
    let mut resp = json_response(code, &Value::Object(out));
    // 242 has no registered reason phrase: without one the status line ends in `<none>`.
    resp.extensions_mut().insert(REQUIRED_REASON);
    Ok(resp)
}

fn user_param(fields: &mut Fields, raw: Option<String>) -> Option<UserId> {
    let raw = raw?;
    let user = UserId::parse(&raw);
    if user.is_none() {
        fields.push(WireFieldError::new(
            "userId",
            "invalid",
            "userId is not a valid user id",
        ));
    }
    user
}

/// `GET /api/two-factor/status?userId=&applicationId=[&twoFactorTrustId=]`: FusionAuth's
/// `retrieveTwoFactorStatus` without a trust id. **242** when the user has a method and
/// no valid trust (a second factor is required), **200** otherwise, including for users
/// mfad has never seen (they have no method). Body `{"trusts": […], "twoFactorTrustId"?}`.
/// The TypeScript client's `undefined`/`null` values count as absent.
#[utoipa::path(
    get,
    path = "/api/two-factor/status",
    tag = "FusionAuth",
    operation_id = "retrieveTwoFactorStatus",
    params(schema::StatusQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "No second factor needed (no method, or a valid trust).", body = schema::StatusResponse),
        (status = 242, description = "A second factor is required.", body = schema::StatusResponse),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    query: FaQuery,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let user = user_param(&mut fields, query.get("userId"));
    fields.finish()?;
    status(
        &state,
        &tenant,
        user,
        query.get("applicationId"),
        query.get("twoFactorTrustId"),
    )
    .await
}

/// `GET /api/two-factor/status/{twoFactorTrustId}?userId=&applicationId=`: the same, for
/// a trusted computer: 200 while the trust is valid for this user (and application).
#[utoipa::path(
    get,
    path = "/api/two-factor/status/{twoFactorTrustId}",
    tag = "FusionAuth",
    operation_id = "retrieveTwoFactorStatusWithTrust",
    params(("twoFactorTrustId" = String, Path, description = "The trust to check."), schema::StatusQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "No second factor needed (no method, or a valid trust).", body = schema::StatusResponse),
        (status = 242, description = "A second factor is required.", body = schema::StatusResponse),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn get_with_trust(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(trust_id): Path<String>,
    query: FaQuery,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let user = user_param(&mut fields, query.get("userId"));
    fields.finish()?;
    status(
        &state,
        &tenant,
        user,
        query.get("applicationId"),
        Some(trust_id),
    )
    .await
}

/// `POST /api/two-factor/status`: FusionAuth's `retrieveTwoFactorStatusWithRequest`
/// (1.62+): `{userId, applicationId, twoFactorTrustId, action}`; instead of `userId`, an
/// `accessToken` (a JWT verified like a Bearer token) may name the user.
#[utoipa::path(
    post,
    path = "/api/two-factor/status",
    tag = "FusionAuth",
    operation_id = "retrieveTwoFactorStatusWithRequest",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::StatusRequest,
    responses(
        (status = 200, description = "No second factor needed (no method, or a valid trust).", body = schema::StatusResponse),
        (status = 242, description = "A second factor is required.", body = schema::StatusResponse),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn post(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let user = fields.take(body.str("userId")).flatten();
    let user = user_param(&mut fields, user);
    let application_id = fields.take(body.str("applicationId")).flatten();
    let trust_id = fields.take(body.str("twoFactorTrustId")).flatten();
    let access_token = fields.take(body.str("accessToken")).flatten();
    fields.finish()?;
    let user = match (user, access_token) {
        (Some(u), _) => Some(u),
        (None, Some(token)) => Some(
            state
                .jwt
                .verify(&token, state.service.now())
                .map(|j| j.user)
                .ok_or(CoreError::Unauthorized)?,
        ),
        (None, None) => None,
    };
    status(&state, &tenant, user, application_id, trust_id).await
}
