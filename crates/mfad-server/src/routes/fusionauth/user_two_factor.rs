//! `/api/user/two-factor[/{userId}]`: enable (POST), disable (DELETE), rename (PUT).

use axum::extract::{Path, State};
use axum::response::Response;
use mfad_core::error::{CoreError, Entity};
use mfad_core::model::FactorType;
use mfad_core::service::{EnableRequest, NewMethod};
use mfad_core::{TenantId, UserId};
use mfad_crypto::Zeroizing;
use serde_json::{Map, Value};

use super::auth::{ApiKeyTenant, Caller};
use super::body::{FaBody, FaQuery, method_id, param};
use super::schema;
use super::secret::decode_secret;
use super::wire::{codes, empty_ok, json_ok, parse_method};
use crate::error::{FusionAuthError, WireFieldError};
use crate::extract::Fields;
use crate::openapi::FusionAuthErrors;
use crate::state::AppState;

fn path_user(raw: &str) -> Result<UserId, FusionAuthError> {
    UserId::parse(raw).ok_or_else(|| CoreError::not_found(Entity::User, raw).into())
}

/// Reads the method to enable, in the current (`method`) or legacy (`delivery`) shape.
fn new_method(body: &FaBody, fields: &mut Fields) -> Option<NewMethod> {
    let method = fields.take(body.str("method")).flatten();
    let delivery = fields.take(body.str("delivery")).flatten();
    let secret = fields
        .take(body.str("secret"))
        .flatten()
        .map(Zeroizing::new);
    let secret32 = fields
        .take(body.str("secretBase32Encoded"))
        .flatten()
        .map(Zeroizing::new);
    let phone = fields.take(body.str("mobilePhone")).flatten();
    let email = fields.take(body.str("email")).flatten();
    let key = |fields: &mut Fields| {
        fields.take(decode_secret(
            secret.as_deref().map(String::as_str),
            secret32.as_deref().map(String::as_str),
        ))
    };
    let kind = match (method.as_deref(), delivery.as_deref()) {
        (Some(m), _) => match parse_method(m) {
            Some(k) => k,
            None => {
                fields.push(WireFieldError::new(
                    "method",
                    "invalid",
                    "method must be one of: authenticator, email, sms",
                ));
                return None;
            }
        },
        // FusionAuth ≤ 1.25: `delivery` "None" is an authenticator app, "TextMessage" an
        // SMS whose code is the TOTP of `secret`.
        (None, Some("TextMessage")) => {
            return key(fields).map(|secret| NewMethod::SmsTextedTotp {
                secret,
                mobile_phone: phone,
            });
        }
        (None, Some("None")) => FactorType::Totp,
        (None, Some(_)) => {
            fields.push(WireFieldError::new(
                "delivery",
                "invalid",
                "delivery must be None or TextMessage",
            ));
            return None;
        }
        (None, None) if secret.is_some() || secret32.is_some() => FactorType::Totp,
        (None, None) => {
            fields.push(WireFieldError::new("method", "blank", "method is required"));
            return None;
        }
    };
    match kind {
        FactorType::Totp => key(fields).map(|secret| NewMethod::Totp { secret }),
        FactorType::Sms => match phone {
            Some(mobile_phone) => Some(NewMethod::Sms { mobile_phone }),
            None => {
                fields.push(WireFieldError::new(
                    "mobilePhone",
                    "blank",
                    "mobilePhone is required for the sms method",
                ));
                None
            }
        },
        FactorType::GenericOtp => None,
        FactorType::Email => match email {
            Some(email) => Some(NewMethod::Email { email }),
            None => {
                fields.push(WireFieldError::new(
                    "email",
                    "blank",
                    "email is required for the email method",
                ));
                None
            }
        },
    }
}

async fn enable(
    state: &AppState,
    tenant: &TenantId,
    user: UserId,
    body: &FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let method = new_method(body, &mut fields);
    let code = fields.take(body.str("code")).flatten();
    if code.is_none() {
        fields.push(WireFieldError::new("code", "blank", "code is required"));
    }
    let name = fields.take(body.str("name")).flatten();
    let two_factor_id = fields.take(body.str("twoFactorId")).flatten();
    fields.finish()?;
    let (Some(method), Some(code)) = (method, code) else {
        return Err(CoreError::Internal("enable fields missing".into()).into());
    };
    let enabled = state
        .service
        .enable_method(
            tenant,
            EnableRequest {
                user,
                method,
                code,
                name,
                two_factor_id,
            },
        )
        .await?;
    let mut out = Map::new();
    if let Some(c) = &enabled.login_code {
        out.insert("code".into(), c.as_str().into());
    }
    if let Some(list) = &enabled.recovery_codes {
        out.insert("recoveryCodes".into(), codes(list));
    }
    Ok(if out.is_empty() {
        empty_ok()
    } else {
        json_ok(&Value::Object(out))
    })
}

/// `POST /api/user/two-factor/{userId}`: FusionAuth's `enableTwoFactor` and Elixir's
/// `enable_two_factor_by_user_id`. Current shape: `method` (`authenticator` with `secret`
/// or `secretBase32Encoded`; `sms` with `mobilePhone`; `email` with `email`), `code`,
/// optional `name` and `twoFactorId`. Legacy shape (≤ 1.25): `code`, `delivery`
/// (`None` | `TextMessage`), `secret`. 200 with `{"recoveryCodes": [10]}` for the first
/// method (plus `"code"` for `twoFactorId`), else an empty 200; 421 empty for a wrong
/// code; 400 Errors for bad input.
#[utoipa::path(
    post,
    path = "/api/user/two-factor/{userId}",
    tag = "FusionAuth",
    operation_id = "enableTwoFactor",
    params(("userId" = String, Path, description = "The user id."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::EnableRequest,
    responses(
        (status = 200, description = "Enabled: the recovery codes for the first method (JSON), else an empty body.", body = schema::RecoveryCodes),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 421, description = "The code is not valid. Empty body."),
        (status = 409, description = "Throttled or locked after too many wrong codes; see `Retry-After`.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn enable_for_user(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(user): Path<String>,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let user = path_user(&user)?;
    enable(&state, &tenant, user, &body).await
}

/// `POST /api/user/two-factor`: the JWT form of enable (Elixir's
/// `enable_two_factor_by_jwt`, which also sends its API key): the user is the JWT's. An
/// API key alone may name the user with `?userId=` (FusionAuth ≤ 1.26 clients).
#[utoipa::path(
    post,
    path = "/api/user/two-factor",
    tag = "FusionAuth",
    operation_id = "enableTwoFactorUsingJWT",
    params(schema::UserQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::EnableRequest,
    responses(
        (status = 200, description = "Enabled: the recovery codes for the first method (JSON), else an empty body.", body = schema::RecoveryCodes),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 421, description = "The code is not valid. Empty body."),
        (status = 409, description = "Throttled or locked after too many wrong codes; see `Retry-After`.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []), ("jwt" = []))
)]
pub async fn enable_self(
    State(state): State<AppState>,
    caller: Caller,
    query: FaQuery,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let tenant = caller.tenant.clone();
    let user = caller.user(param(&body, &query, "userId")?.as_deref())?;
    enable(&state, &tenant, user, &body).await
}

async fn disable(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
    query: &FaQuery,
    body: &FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let code = fields.take(param(body, query, "code")).flatten();
    let raw_method = fields.take(param(body, query, "methodId")).flatten();
    if code.is_none() {
        fields.push(WireFieldError::new("code", "blank", "code is required"));
    }
    let method_id = method_id(&mut fields, raw_method, false);
    fields.finish()?;
    let code = code.unwrap_or_default();
    state
        .service
        .disable_method(tenant, user, method_id.as_ref(), &code)
        .await?;
    Ok(empty_ok())
}

/// `DELETE /api/user/two-factor/{userId}`: FusionAuth's `disableTwoFactor`
/// (`?methodId=&code=`) and `disableTwoFactorWithRequest` (JSON body `{methodId, code}` on
/// the DELETE), and Elixir's `disable_two_factor_by_user_id` (`?code=` only, which turns
/// two-factor off altogether, as ≤ 1.25 did). A recovery code removes every method.
/// 200 empty; 421 empty for a wrong code; 404 for an unknown user.
#[utoipa::path(
    delete,
    path = "/api/user/two-factor/{userId}",
    tag = "FusionAuth",
    operation_id = "disableTwoFactor",
    params(("userId" = String, Path, description = "The user id."), schema::DisableQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body(content = schema::DisableRequest, description = "Optional: `disableTwoFactorWithRequest`."),
    responses(
        (status = 200, description = "Done. Empty body."),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 421, description = "The code is not valid. Empty body."),
        (status = 409, description = "Throttled or locked after too many wrong codes; see `Retry-After`.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn disable_for_user(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(user): Path<String>,
    query: FaQuery,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let user = path_user(&user)?;
    disable(&state, &tenant, &user, &query, &body).await
}

/// `DELETE /api/user/two-factor`: the JWT form of disable (Elixir's
/// `disable_two_factor_by_jwt`), and FusionAuth ≤ 1.26 clients' `?userId=&code=` with an
/// API key.
#[utoipa::path(
    delete,
    path = "/api/user/two-factor",
    tag = "FusionAuth",
    operation_id = "disableTwoFactorUsingJWT",
    params(schema::DisableQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body(content = schema::DisableRequest, description = "Optional."),
    responses(
        (status = 200, description = "Done. Empty body."),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        (status = 421, description = "The code is not valid. Empty body."),
        (status = 409, description = "Throttled or locked after too many wrong codes; see `Retry-After`.", body = schema::FusionAuthErrors),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []), ("jwt" = []))
)]
pub async fn disable_self(
    State(state): State<AppState>,
    caller: Caller,
    query: FaQuery,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let tenant = caller.tenant.clone();
    let user = caller.user(param(&body, &query, "userId")?.as_deref())?;
    disable(&state, &tenant, &user, &query, &body).await
}

async fn update(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
    body: &FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let raw_method = fields.take(body.str("methodId")).flatten();
    let name = fields.take(body.str("name")).flatten();
    let method_id = method_id(&mut fields, raw_method, true);
    fields.finish()?;
    let Some(method_id) = method_id else {
        return Err(CoreError::Internal("methodId missing".into()).into());
    };
    state
        .service
        .rename_method(tenant, user, &method_id, name.as_deref())
        .await?;
    Ok(empty_ok())
}

/// `PUT /api/user/two-factor/{userId}`: FusionAuth's `updateTwoFactor`, body
/// `{methodId, name}`: renames a method (a blank name clears it). 200 empty.
#[utoipa::path(
    put,
    path = "/api/user/two-factor/{userId}",
    tag = "FusionAuth",
    operation_id = "updateTwoFactor",
    params(("userId" = String, Path, description = "The user id."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::UpdateRequest,
    responses(
        (status = 200, description = "Done. Empty body."),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn update_for_user(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(user): Path<String>,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let user = path_user(&user)?;
    update(&state, &tenant, &user, &body).await
}

/// `PUT /api/user/two-factor`: rename, for the JWT's user.
#[utoipa::path(
    put,
    path = "/api/user/two-factor",
    tag = "FusionAuth",
    operation_id = "updateTwoFactorUsingJWT",
    params(schema::UserQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = schema::UpdateRequest,
    responses(
        (status = 200, description = "Done. Empty body."),
        (status = 404, description = "Unknown user, method or login. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []), ("jwt" = []))
)]
pub async fn update_self(
    State(state): State<AppState>,
    caller: Caller,
    query: FaQuery,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let tenant = caller.tenant.clone();
    let user = caller.user(param(&body, &query, "userId")?.as_deref())?;
    update(&state, &tenant, &user, &body).await
}
