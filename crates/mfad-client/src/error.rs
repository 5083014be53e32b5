//! One error type for both API surfaces.
//!
//! The variant says what happened in terms a caller branches on; the [`ErrorResponse`] inside
//! keeps what the server said (HTTP status, `code`, `message`) and the `X-Request-Id` it
//! answered with, for support tickets and logs.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Everything that can go wrong in a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: the factor, challenge, user or `twoFactorId` does not exist (or belongs to
    /// another tenant, which mfad does not distinguish).
    #[error("not found: {0}")]
    NotFound(Box<ErrorResponse>),
    /// 401: the API key (or JWT) is missing, wrong or revoked.
    #[error("unauthorized: {0}")]
    Unauthorized(Box<ErrorResponse>),
    /// WorkOS `authentication_challenge_previously_verified`: the challenge was already
    /// verified successfully once; start a new one.
    #[error("challenge already verified: {0}")]
    ChallengePreviouslyVerified(Box<ErrorResponse>),
    /// WorkOS `authentication_challenge_expired`: the challenge outlived its time to live.
    #[error("challenge expired: {0}")]
    ChallengeExpired(Box<ErrorResponse>),
    /// WorkOS `one_time_code_too_many_attempts`: the challenge refuses every further code,
    /// the right one included.
    #[error("too many attempts: {0}")]
    TooManyAttempts(Box<ErrorResponse>),
    /// WorkOS `invalid_phone_number`: the number is not a valid, dialable phone number.
    #[error("invalid phone number: {0}")]
    InvalidPhoneNumber(Box<ErrorResponse>),
    /// 400/422: the request was refused as invalid; `errors` lists the fields at fault
    /// (WorkOS `errors[]`, FusionAuth `fieldErrors` and `generalErrors`).
    #[error("validation failed: {response}{}", list_fields(.errors))]
    Validation {
        /// The individual problems, possibly empty.
        errors: Vec<FieldError>,
        /// What the server answered.
        response: Box<ErrorResponse>,
    },
    /// FusionAuth 421: the code (TOTP, texted, emailed or recovery code) is not valid.
    #[error("invalid code: {0}")]
    InvalidCode(Box<ErrorResponse>),
    /// 429, after any retries: slow down; `retry_after` is the server's `Retry-After`.
    #[error("rate limited: {response}")]
    RateLimited {
        /// How long the server asked to wait, if it said.
        retry_after: Option<Duration>,
        /// What the server answered.
        response: Box<ErrorResponse>,
    },
    /// 5xx, after any retries.
    #[error("server error: {0}")]
    Server(Box<ErrorResponse>),
    /// Any other unsuccessful answer (403, 409, …).
    #[error("request refused: {0}")]
    Api(Box<ErrorResponse>),
    /// No answer: the connection failed, was dropped or timed out (after any retries).
    /// There is no request id, since no response arrived.
    #[error("transport error after {attempts} attempt(s): {source}")]
    Transport {
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A successful answer whose body could not be understood.
    #[error("unexpected response: {message} ({response})")]
    UnexpectedResponse {
        /// What was wrong with it.
        message: String,
        /// What the server answered.
        response: Box<ErrorResponse>,
    },
    /// The client could not be built: a bad base URL, API key or missing environment variable.
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    /// What the server answered, when it answered.
    pub fn response(&self) -> Option<&ErrorResponse> {
        match self {
            Error::NotFound(r)
            | Error::Unauthorized(r)
            | Error::ChallengePreviouslyVerified(r)
            | Error::ChallengeExpired(r)
            | Error::TooManyAttempts(r)
            | Error::InvalidPhoneNumber(r)
            | Error::InvalidCode(r)
            | Error::Server(r)
            | Error::Api(r) => Some(r),
            Error::Validation { response, .. }
            | Error::RateLimited { response, .. }
            | Error::UnexpectedResponse { response, .. } => Some(response),
            Error::Transport { .. } | Error::Config(_) => None,
        }
    }

    /// The server's `X-Request-Id` for this call, if it sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.response().and_then(|r| r.request_id.as_deref())
    }

    /// The server's error `code` (for example `entity_not_found`), if it sent one.
    pub fn code(&self) -> Option<&str> {
        self.response().and_then(|r| r.code.as_deref())
    }

    /// The server's error `message`, if it sent one.
    pub fn message(&self) -> Option<&str> {
        self.response().and_then(|r| r.message.as_deref())
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.status)
    }
}

/// What the server answered to a failed call.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ErrorResponse {
    /// HTTP status code.
    pub status: u16,
    /// The machine-readable `code` of a WorkOS error body (or of the first FusionAuth
    /// general error).
    pub code: Option<String>,
    /// The human-readable `message`.
    pub message: Option<String>,
    /// The `X-Request-Id` response header.
    pub request_id: Option<String>,
    /// The `entity_id` of a WorkOS not-found body.
    pub entity_id: Option<String>,
    /// The whole body, when it was JSON.
    pub body: Option<Value>,
}

impl ErrorResponse {
    pub(crate) fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let first_general = json
            .as_ref()
            .and_then(|j| j.get("generalErrors"))
            .and_then(Value::as_array)
            .and_then(|a| a.first());
        let (code, message) = match json.as_ref() {
            Some(j) if j.get("code").is_some() || j.get("message").is_some() => {
                (text(j.get("code")), text(j.get("message")))
            }
            _ => (
                text(first_general.and_then(|g| g.get("code"))),
                text(first_general.and_then(|g| g.get("message"))),
            ),
        };
        ErrorResponse {
            status: status.as_u16(),
            code,
            message,
            request_id,
            entity_id: text(json.as_ref().and_then(|j| j.get("entity_id"))),
            body: json,
        }
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// One problem in a refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The field at fault (`totp_issuer`, `user.mobilePhone`); `None` for a general error.
    pub field: Option<String>,
    /// The error code. WorkOS's older item shape puts a sentence here
    /// (`"type must be a valid enum value"`); FusionAuth uses `[blank]code`-style codes.
    pub code: String,
    /// The human-readable message, if separate from `code`.
    pub message: Option<String>,
}

fn list_fields(errors: &[FieldError]) -> String {
    let items: Vec<String> = errors
        .iter()
        .map(|e| match (&e.field, &e.message) {
            (Some(field), Some(m)) => format!("{field}: {m}"),
            (Some(field), None) => format!("{field}: {}", e.code),
            (None, Some(m)) => m.clone(),
            (None, None) => e.code.clone(),
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!(" [{}]", items.join("; "))
    }
}

/// Reads the field errors of a WorkOS (`errors: [{field, code, message}]`) or FusionAuth
/// (`fieldErrors: {field: [{code, message}]}`, `generalErrors: [{code, message}]`) body.
fn field_errors(body: Option<&Value>) -> Vec<FieldError> {
    let Some(body) = body else { return Vec::new() };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    if let Some(items) = body.get("errors").and_then(Value::as_array) {
        for item in items {
            match item {
                Value::String(s) => out.push(FieldError {
                    field: None,
                    code: s.clone(),
                    message: None,
                }),
                item => out.push(FieldError {
                    field: text(item, "field"),
                    code: text(item, "code").unwrap_or_default(),
                    message: text(item, "message"),
                }),
            }
        }
    }
    if let Some(fields) = body.get("fieldErrors").and_then(Value::as_object) {
        for (field, items) in fields {
            for item in items.as_array().map(Vec::as_slice).unwrap_or_default() {
                out.push(FieldError {
                    field: Some(field.clone()),
                    code: text(item, "code").unwrap_or_default(),
                    message: text(item, "message"),
                });
            }
        }
    }
    if let Some(items) = body.get("generalErrors").and_then(Value::as_array) {
        for item in items {
            out.push(FieldError {
                field: None,
                code: text(item, "code").unwrap_or_default(),
                message: text(item, "message"),
            });
        }
    }
    out
}

/// Turns an unsuccessful answer into the variant a caller branches on. The error `code`
/// decides first (so a WorkOS 400 `one_time_code_too_many_attempts` is `TooManyAttempts`),
/// then the status.
pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let response = Box::new(ErrorResponse::new(status, headers, body));
    match response.code.as_deref() {
        Some("authentication_challenge_previously_verified") => {
            return Error::ChallengePreviouslyVerified(response);
        }
        Some("authentication_challenge_expired") => return Error::ChallengeExpired(response),
        Some("one_time_code_too_many_attempts") => return Error::TooManyAttempts(response),
        Some("invalid_phone_number") => return Error::InvalidPhoneNumber(response),
        _ => {}
    }
    match status.as_u16() {
        401 => Error::Unauthorized(response),
        404 => Error::NotFound(response),
        421 => Error::InvalidCode(response),
        400 | 422 => Error::Validation {
            errors: field_errors(response.body.as_ref()),
            response,
        },
        429 => Error::RateLimited {
            retry_after: crate::retry::retry_after(headers),
            response,
        },
        500..=599 => Error::Server(response),
        _ => Error::Api(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> Error {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "req_1".parse().unwrap());
        from_response(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn workos_bodies_map_by_code_then_status() {
        let e = map(
            404,
            r#"{"message":"Authentication Factor not found: 'auth_factor_x'.","code":"entity_not_found","entity_id":"auth_factor_x"}"#,
        );
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert_eq!(e.request_id(), Some("req_1"));
        assert_eq!(e.code(), Some("entity_not_found"));
        assert_eq!(
            e.response().unwrap().entity_id.as_deref(),
            Some("auth_factor_x")
        );
        assert!(matches!(
            map(
                400,
                r#"{"code":"one_time_code_too_many_attempts","message":"x"}"#
            ),
            Error::TooManyAttempts(_)
        ));
        assert!(matches!(
            map(401, r#"{"message":"Unauthorized"}"#),
            Error::Unauthorized(_)
        ));
        let e = map(
            422,
            r#"{"code":"invalid_request_parameters","message":"Validation failed","errors":[{"field":"type","code":"type must be a valid enum value"}]}"#,
        );
        let Error::Validation { errors, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(errors[0].field.as_deref(), Some("type"));
        assert_eq!(errors[0].code, "type must be a valid enum value");
        assert!(
            e.to_string()
                .contains("type: type must be a valid enum value"),
            "{e}"
        );
    }

    #[test]
    fn fusionauth_bodies_map_by_status() {
        assert!(matches!(map(421, ""), Error::InvalidCode(_)));
        assert!(matches!(map(404, ""), Error::NotFound(_)));
        let e = map(
            400,
            r#"{"fieldErrors":{"code":[{"code":"[blank]code","message":"Required"}]},"generalErrors":[{"code":"[TenantIdRequired]","message":"A Tenant Id is required"}]}"#,
        );
        let Error::Validation { errors, response } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field.as_deref(), Some("code"));
        assert_eq!(errors[1].field, None);
        assert_eq!(response.code.as_deref(), Some("[TenantIdRequired]"));
    }
}
