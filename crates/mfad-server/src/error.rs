//! Where domain errors become wire errors: one function per emulated API. Server-side
//! failures are logged here with their cause and answered with an opaque body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mfad_core::error::{CoreError, Entity, StoreError};
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
    }
}

/// Logs a server-side failure and returns the status it deserves.
fn server_failure(e: &CoreError) -> (StatusCode, &'static str, &'static str) {
    match e {
        CoreError::Store(StoreError::Unavailable(cause)) => {
            tracing::warn!(%cause, "database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "The service is temporarily unavailable. Retry shortly.")
        }
        CoreError::Delivery(_) => (
            StatusCode::BAD_GATEWAY,
            "delivery_failed",
            "The message could not be delivered by the SMS provider.",
        ),
        other => {
            tracing::error!(error = %other, "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "An internal error occurred.")
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
            other => {
                let (status, code, message) = server_failure(other);
                (status, json!({"message": message, "code": code}))
            }
        };
        let mut resp = json_response(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A JSON response with WorkOS's content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))],
        bytes,
    )
        .into_response()
}
