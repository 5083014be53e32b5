//! `POST /api/two-factor/send` and `POST /api/two-factor/send/{twoFactorId}`.

use axum::extract::{Path, State};
use axum::response::Response;
use mfad_core::model::FactorType;
use mfad_core::service::EnableDestination;
use mfad_crypto::Zeroizing;

use super::auth::{Caller, TenantHint};
use super::body::{FaBody, method_id};
use super::schema;
use super::secret::decode_secret;
use super::wire::{empty_ok, parse_method};
use crate::error::FusionAuthError;
use crate::extract::Fields;
use crate::openapi::FusionAuthErrors;
use crate::state::AppState;

/// `POST /api/two-factor/send`: every "send a code" that is not for a login.
///
/// * `{method: "sms", mobilePhone}` / `{method: "email", email}` (with `userId`, or a
///   JWT): FusionAuth's `sendTwoFactorCodeForEnableDisable` while **enabling**: a fresh
///   code to that phone or address, which the enable request then presents.
/// * `{methodId}` (with `userId`, or a JWT): while **disabling**: a code to that method.
/// * `{userId}` alone, or `{}` with a JWT: Elixir's `send_two_factor_code_by_user_id` /
///   `send_two_factor_code_by_jwt` (≤ 1.25): a code to the user's phone (first SMS
///   method, else first email method), good for disabling.
/// * `{mobilePhone, secret}`: Elixir's `send_two_factor_code_to_mobile_phone` (≤ 1.25):
///   texts the current TOTP of `secret`, for a legacy `TextMessage` enable.
///
/// `messageType: "Voice"` is accepted but the code still goes as a text. A new code
/// replaces the previous one for the same purpose. 200 empty. A send refused by a send
/// limit (`mfad_core::send_limits`; with a JWT, also at most 3 distinct numbers a day) is
/// 429 with `Retry-After` and nothing is sent.
#[utoipa::path(
    post,
    path = "/api/two-factor/send",
    tag = "FusionAuth",
    operation_id = "sendTwoFactorCodeForEnableDisable",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::SendRequest,
    responses(
        (status = 200, description = "Done. Empty body."),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 502, description = "The provider refused the message.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []), ("jwt" = []))
)]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let tenant = caller.tenant.clone();
    let mut fields = Fields::default();
    let method = fields.take(body.str("method")).flatten();
    let mid = fields.take(body.str("methodId")).flatten();
    let mid = method_id(&mut fields, mid, false);
    let phone = fields.take(body.str("mobilePhone")).flatten();
    let email = fields.take(body.str("email")).flatten();
    let secret = fields
        .take(body.str("secret"))
        .flatten()
        .map(Zeroizing::new);
    let user_id = fields.take(body.str("userId")).flatten();
    fields.finish()?;

    if let (None, Some(phone), Some(secret)) = (&method, &phone, &secret) {
        let key = decode_secret(Some(secret), None)?;
        state
            .service
            .send_totp_to_phone(&tenant, phone, &key, caller.jwt_user.as_ref())
            .await?;
        return Ok(empty_ok());
    }
    let user = caller.user(user_id.as_deref())?;
    match method.as_deref().map(parse_method) {
        Some(Some(FactorType::Sms)) => {
            let phone = phone.ok_or_else(|| {
                FusionAuthError::field("mobilePhone", "blank", "mobilePhone is required")
            })?;
            state
                .service
                .send_enable_code(
                    &tenant,
                    &user,
                    EnableDestination::Sms(phone),
                    caller.jwt_user.as_ref(),
                )
                .await?;
        }
        Some(Some(FactorType::Email)) => {
            let email = email
                .ok_or_else(|| FusionAuthError::field("email", "blank", "email is required"))?;
            state
                .service
                .send_enable_code(
                    &tenant,
                    &user,
                    EnableDestination::Email(email),
                    caller.jwt_user.as_ref(),
                )
                .await?;
        }
        Some(_) => {
            return Err(FusionAuthError::field(
                "method",
                "invalid",
                "codes are sent for the sms and email methods only",
            ));
        }
        None => {
            state
                .service
                .send_disable_code(&tenant, &user, mid.as_ref(), caller.jwt_user.as_ref())
                .await?
        }
    }
    Ok(empty_ok())
}

/// `POST /api/two-factor/send/{twoFactorId}`: FusionAuth's
/// `sendTwoFactorCodeForLoginUsingMethod` (`{methodId}`) and the deprecated
/// `sendTwoFactorCodeForLogin` (no body, `text/plain`), and Elixir's
/// `send_two_factor_code_to_complete_login` (`{}`). No authentication: the
/// `twoFactorId` is the credential (a key, if sent, is ignored). Sends a new code for the
/// login to the method (default: first SMS, else email method), replacing the login's
/// earlier code. 200 empty; 404 empty for an unknown or expired `twoFactorId`; 429 after
/// too many sends for one login.
#[utoipa::path(
    post,
    path = "/api/two-factor/send/{twoFactorId}",
    tag = "FusionAuth",
    operation_id = "sendTwoFactorCodeForLoginUsingMethod",
    params(("twoFactorId" = String, Path, description = "The login in progress."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body(content = schema::SendForLoginRequest, description = "Optional."),
    responses(
        (status = 200, description = "Done. Empty body."),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 502, description = "The provider refused the message.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(())
)]
pub async fn send_for_login(
    State(state): State<AppState>,
    TenantHint(tenant): TenantHint,
    Path(two_factor_id): Path<String>,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let mid = fields.take(body.str("methodId")).flatten();
    let mid = method_id(&mut fields, mid, false);
    fields.finish()?;
    state
        .service
        .send_login_code(&two_factor_id, mid.as_ref(), tenant.as_ref())
        .await?;
    Ok(empty_ok())
}
