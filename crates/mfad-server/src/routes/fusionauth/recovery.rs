//! `/api/user/two-factor/recovery-code/{userId}`.

use axum::extract::{Path, State};
use axum::response::Response;
use mfad_core::UserId;
use mfad_core::error::{CoreError, Entity};
use serde_json::json;

use super::auth::ApiKeyTenant;
use super::schema;
use super::wire::{codes, json_ok};
use crate::error::FusionAuthError;
use crate::openapi::FusionAuthErrors;
use crate::state::AppState;

fn path_user(raw: &str) -> Result<UserId, FusionAuthError> {
    UserId::parse(raw).ok_or_else(|| CoreError::not_found(Entity::User, raw).into())
}

/// `POST /api/user/two-factor/recovery-code/{userId}`: FusionAuth's
/// `generateTwoFactorRecoveryCodes`. Replaces every recovery code of the user with ten
/// new ones and returns them: `{"recoveryCodes": [10]}`. The TypeScript client sends
/// `Content-Type: text/plain` with no body; no body is read. 404 for an unknown user,
/// 400 `[TwoFactorNotEnabled]` for a user without a method.
#[utoipa::path(
    post,
    path = "/api/user/two-factor/recovery-code/{userId}",
    tag = "FusionAuth",
    operation_id = "generateTwoFactorRecoveryCodes",
    params(("userId" = String, Path, description = "The user id."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "The recovery codes.", body = schema::RecoveryCodes),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn generate(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(user): Path<String>,
) -> Result<Response, FusionAuthError> {
    let user = path_user(&user)?;
    let fresh = state
        .service
        .regenerate_recovery_codes(&tenant, &user)
        .await?;
    Ok(json_ok(&json!({"recoveryCodes": codes(&fresh)})))
}

/// `GET /api/user/two-factor/recovery-code/{userId}`: FusionAuth's (deprecated)
/// `retrieveTwoFactorRecoveryCodes`: the codes not yet used, `{"recoveryCodes": [0..10]}`.
/// mfad checks codes against peppered digests; to answer this call it also keeps each
/// code sealed under the master key (see `mfad_core::recovery`).
#[utoipa::path(
    get,
    path = "/api/user/two-factor/recovery-code/{userId}",
    tag = "FusionAuth",
    operation_id = "retrieveTwoFactorRecoveryCodes",
    params(("userId" = String, Path, description = "The user id."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "The recovery codes.", body = schema::RecoveryCodes),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn retrieve(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(user): Path<String>,
) -> Result<Response, FusionAuthError> {
    let user = path_user(&user)?;
    let left = state
        .service
        .remaining_recovery_codes(&tenant, &user)
        .await?;
    Ok(json_ok(&json!({"recoveryCodes": codes(&left)})))
}
