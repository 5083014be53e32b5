//! Request extractors whose rejections speak the caller's API, never axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mfad_core::TenantId;
use mfad_core::error::CoreError;
use serde_json::{Map, Value};

use axum::response::{IntoResponse, Response};

use crate::edge::{Api, read_body};
use crate::error::{FieldErrors, WireFieldError, WorkosError};
use crate::state::AppState;

/// Longest request body accepted on JSON endpoints.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body. An empty body or a literal `null` is an empty object (Go SDKs
/// send `null` for nil params). Field helpers treat `null` and `""` as absent.
#[derive(Debug, Default)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await.map_err(|e| e.render(Api::Workos))?;
        JsonObject::parse(&bytes).map_err(|e| WorkosError::from(e).into_response())
    }
}

fn body_error(code: &str, message: String) -> FieldErrors {
    FieldErrors(vec![WireFieldError::new("body", code, message)])
}

impl JsonObject {
    /// Parses a body.
    pub fn parse(bytes: &[u8]) -> Result<Self, FieldErrors> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(JsonObject(m)),
            Ok(Value::Null) => Ok(JsonObject::default()),
            Ok(_) => Err(body_error(
                "invalid",
                "request body must be a JSON object".into(),
            )),
            Err(e) => Err(body_error(
                "malformed",
                format!(
                    "request body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )),
        }
    }

    /// An optional string field: absent, `null` and `""` are `None`; other types are an error.
    pub fn opt_str(&self, field: &str) -> Result<Option<String>, WireFieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WireFieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string"),
            )),
        }
    }

    /// A required string field.
    pub fn req_str(&self, field: &str) -> Result<String, WireFieldError> {
        self.opt_str(field)?
            .ok_or_else(|| WireFieldError::new(field, "required", format!("{field} is required")))
    }
}

/// Collects field results, reporting every bad field at once.
#[derive(Debug, Default)]
pub struct Fields(Vec<WireFieldError>);

impl Fields {
    /// Keeps the value or records the error.
    pub fn take<T>(&mut self, r: Result<T, WireFieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// Records an error.
    pub fn push(&mut self, e: WireFieldError) {
        self.0.push(e);
    }

    /// How many errors are recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fails with every recorded error, if any.
    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors(self.0))
        }
    }
}

/// The tenant of the bearer API key (`Authorization: Bearer sk_…`).
#[derive(Debug, Clone)]
pub struct BearerTenant(pub TenantId);

impl FromRequestParts<AppState> for BearerTenant {
    type Rejection = WorkosError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or(WorkosError::Core(CoreError::Unauthorized))?;
        Ok(BearerTenant(state.service.authenticate(token).await?))
    }
}
