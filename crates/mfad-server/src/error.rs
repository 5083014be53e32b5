//! Where domain errors become wire errors: one function per emulated API. Server-side
//! failures are logged here with their cause and answered with an opaque body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mfad_core::error::{CoreError, Entity, FieldError, StoreError};
use serde_json::json;

/// A [`CoreError`] rendered in the WorkOS error shape (`{code, message, …}`).
#[derive(Debug)]
pub struct WorkosError(pub CoreError);

impl<E: Into<CoreError>> From<E> for WorkosError {
    fn from(e: E) -> Self {
        WorkosError(e.into())
    }
}

fn entity_name(e: Entity) -> &'static str {
    match e {
        Entity::Factor => "Authentication Factor",
        Entity::Challenge => "Authentication Challenge",
        Entity::User => "User",
        Entity::ApiKey => "API Key",
        Entity::Tenant => "Tenant",
        Entity::JwtKey => "JWT Key",
    }
}

/// Logs a server-side failure and returns the status it deserves.
fn server_failure(e: &CoreError) -> (StatusCode, &'static str, &'static str) {
    match e {
        CoreError::Store(StoreError::Unavailable(cause)) => {
            tracing::warn!(%cause, "database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable. Retry shortly.",
            )
        }
        CoreError::Delivery(_) => (
            StatusCode::BAD_GATEWAY,
            "delivery_failed",
            "The message could not be delivered by the SMS provider.",
        ),
        other => {
            tracing::error!(error = %other, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An internal error occurred.",
            )
        }
    }
}

impl IntoResponse for WorkosError {
    fn into_response(self) -> Response {
        let (status, body) = match &self.0 {
            CoreError::NotFound { entity, id } => (
                StatusCode::NOT_FOUND,
                json!({
                    "message": format!("{} not found: '{}'.", entity_name(*entity), id),
                    "code": "entity_not_found",
                    "entity_id": id,
                }),
            ),
            CoreError::Validation(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "code": "invalid_request_parameters",
                    "message": "Validation failed",
                    // WorkOS's older item shape puts the sentence in `code` (Node shows it);
                    // `message` repeats it and `reason` keeps the machine-readable reason.
                    "errors": fields.iter().map(|f| json!({
                        "field": f.field, "code": f.message, "message": f.message, "reason": f.code,
                    })).collect::<Vec<_>>(),
                }),
            ),
            CoreError::InvalidPhoneNumber { input } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("Phone number is invalid: '{input}'"), "code": "invalid_phone_number"}),
            ),
            CoreError::WrongFactorType(id) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("The authentication factor '{id}' cannot be used for this operation."), "code": "invalid_factor_type"}),
            ),
            CoreError::ChallengePreviouslyVerified(id) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": "authentication_challenge_previously_verified",
                       "message": format!("The authentication challenge '{id}' has already been verified.")}),
            ),
            CoreError::ChallengeExpired(id) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": "authentication_challenge_expired",
                       "message": format!("The authentication challenge '{id}' has expired.")}),
            ),
            CoreError::TooManyAttempts(id) => (
                StatusCode::BAD_REQUEST,
                json!({"code": "one_time_code_too_many_attempts",
                       "message": format!("The authentication challenge '{id}' has had too many attempts; start a new challenge.")}),
            ),
            CoreError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"message": "Unauthorized", "code": "unauthorized"}),
            ),
            CoreError::SendLimited {
                limit,
                retry_after_secs,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"code": "rate_limit_exceeded",
                       "message": format!("No SMS was sent: {}. Retry after {retry_after_secs} seconds.", limit.describe())}),
            ),
            CoreError::SmsCountryNotAllowed { country } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": "sms_country_not_allowed",
                       "message": country_message(country.as_deref())}),
            ),
            other => {
                let (status, code, message) = server_failure(other);
                (status, json!({"message": message, "code": code}))
            }
        };
        let mut resp = json_response(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        retry_after(&mut resp, &self.0);
        resp
    }
}

/// The `Retry-After` of a send refused by a send limit.
fn retry_after(resp: &mut Response, e: &CoreError) {
    if let CoreError::SendLimited {
        retry_after_secs, ..
    } = e
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
}

fn country_message(country: Option<&str>) -> String {
    match country {
        Some(c) => format!("Text messages to phone numbers of {c} are not allowed."),
        None => "Text messages to this phone number's country are not allowed.".to_owned(),
    }
}

/// A JSON response with WorkOS's content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        bytes,
    )
        .into_response()
}

/// A [`CoreError`] rendered as FusionAuth answers (see `docs/contracts/fusionauth.md`
/// §1): 400 with an Errors object (`fieldErrors`, `generalErrors`, codes `[kind]field`),
/// and **empty** bodies for 401, 404 and 421 (a wrong code), which is what every
/// FusionAuth client expects; the Python client even raises on a 400 that is not JSON.
#[derive(Debug)]
pub struct FusionAuthError(pub CoreError);

impl<E: Into<CoreError>> From<E> for FusionAuthError {
    fn from(e: E) -> Self {
        FusionAuthError(e.into())
    }
}

/// FusionAuth's `421`: the code is not valid.
pub const INVALID_CODE: StatusCode = StatusCode::MISDIRECTED_REQUEST;

impl FusionAuthError {
    /// `400 [InvalidTenantId]`: `X-FusionAuth-TenantId` (or a JWT's `tid`) names no tenant,
    /// or not the one the request's credentials belong to (`docs/contracts/fusionauth.md` §2: upstream gives "404 or a
    /// validation error"; the unauthenticated login routes answer 404 instead).
    pub fn invalid_tenant_id() -> Self {
        Self::general(
            "InvalidTenantId",
            "The X-FusionAuth-TenantId header or the JWT's tid claim is not a valid Tenant Id or is not the tenant of the API key or JWT.",
        )
    }

    /// A validation error with no field: a `generalErrors` entry with the code `[code]`.
    fn general(code: &str, message: &str) -> Self {
        FusionAuthError(CoreError::Validation(vec![FieldError::new(
            "", code, message,
        )]))
    }
}

impl IntoResponse for FusionAuthError {
    fn into_response(self) -> Response {
        match &self.0 {
            CoreError::NotFound { .. } => StatusCode::NOT_FOUND.into_response(),
            CoreError::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
            CoreError::InvalidCode
            | CoreError::ChallengePreviouslyVerified(_)
            | CoreError::ChallengeExpired(_)
            | CoreError::TooManyAttempts(_) => INVALID_CODE.into_response(),
            CoreError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS.into_response(),
            // FusionAuth's rate limits (Advanced Threat Detection) answer 429; the body is
            // empty, as for its other non-validation refusals.
            CoreError::SendLimited { .. } => {
                let mut resp = StatusCode::TOO_MANY_REQUESTS.into_response();
                retry_after(&mut resp, &self.0);
                resp
            }
            CoreError::SmsCountryNotAllowed { country } => fusionauth_errors(&[FieldError::new(
                "mobilePhone",
                "notAllowed",
                country_message(country.as_deref()),
            )]),
            CoreError::Validation(fields) => fusionauth_errors(fields),
            CoreError::InvalidPhoneNumber { .. } => fusionauth_errors(&[FieldError::new(
                "mobilePhone",
                "invalid",
                "mobilePhone must be a valid phone number",
            )]),
            CoreError::WrongFactorType(_) => fusionauth_errors(&[FieldError::new(
                "methodId",
                "invalid",
                "the method cannot be used for this operation",
            )]),
            other => {
                let (status, code, message) = server_failure(other);
                let mut resp = json_response(
                    status,
                    &json!({"generalErrors": [{"code": format!("[{code}]"), "message": message}]}),
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                resp
            }
        }
    }
}

/// FusionAuth's Errors object. A field error on `field` gets the code `[code]field`; one
/// with an empty field is a general error with the code `[code]`.
pub fn fusionauth_errors(fields: &[FieldError]) -> Response {
    let mut field_errors = serde_json::Map::new();
    let mut general = Vec::new();
    for f in fields {
        if f.field.is_empty() {
            general.push(json!({"code": format!("[{}]", f.code), "message": f.message}));
        } else if let Some(list) = field_errors
            .entry(f.field.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
        {
            list.push(json!({"code": format!("[{}]{}", f.code, f.field), "message": f.message}));
        }
    }
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"fieldErrors": field_errors, "generalErrors": general}),
    )
}
