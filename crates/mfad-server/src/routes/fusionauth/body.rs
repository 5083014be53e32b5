//! Request bodies and query strings as FusionAuth clients send them:
//!
//! * a body is read whatever its `Content-Type` (the TypeScript client sends
//!   `text/plain` with an empty body; Python sends none at all), on every method including
//!   DELETE; an empty body is `{}`;
//! * malformed JSON is FusionAuth's `400 [invalid]` Errors object, never axum's text;
//! * scalars are read as strings the way FusionAuth's Jackson does (`"code": 123456` is
//!   `"123456"`); `null` and `""` are absent;
//! * in query strings, the literals `undefined` and `null` (which the TypeScript client
//!   writes for unset arguments) are absent too.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use mfad_core::{MethodId, UserId};

use crate::edge::{Api, read_body};
use crate::error::{FusionAuthError, WireFieldError};
use crate::extract::Fields;

fn invalid_json() -> FusionAuthError {
    FusionAuthError::general("invalid", "Your JSON was invalid")
}

/// A JSON object body.
#[derive(Debug, Default)]
pub struct FaBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for FaBody {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req)
            .await
            .map_err(|e| e.render(Api::FusionAuth))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(FaBody::default());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(FaBody(m)),
            Ok(Value::Null) => Ok(FaBody::default()),
            _ => Err(invalid_json().into_response()),
        }
    }
}

impl FaBody {
    /// A string field; numbers and booleans are read as their text; `null` and `""` are
    /// absent; objects and arrays are an error.
    pub fn str(&self, field: &str) -> Result<Option<String>, WireFieldError> {
        scalar(self.0.get(field), field)
    }

    /// A boolean field; `"true"`/`"false"` strings count.
    pub fn bool(&self, field: &str) -> Result<Option<bool>, WireFieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(WireFieldError::new(
                field,
                "invalid",
                format!("{field} must be true or false"),
            )),
        }
    }

    /// An object field, as JSON text.
    pub fn object(&self, field: &str) -> Result<Option<String>, WireFieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
            Some(_) => Err(WireFieldError::new(
                field,
                "invalid",
                format!("{field} must be an object"),
            )),
        }
    }
}

fn scalar(v: Option<&Value>, field: &str) -> Result<Option<String>, WireFieldError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(WireFieldError::new(
            field,
            "invalid",
            format!("{field} must be a string"),
        )),
    }
}

/// The query string, without absent values (empty, `undefined`, `null`).
#[derive(Debug, Default)]
pub struct FaQuery(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for FaQuery {
    type Rejection = FusionAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| FusionAuthError::general("invalid", "The query string is invalid"))?;
        Ok(FaQuery(
            pairs
                .into_iter()
                .filter(|(_, v)| !v.is_empty() && v != "undefined" && v != "null")
                .collect(),
        ))
    }
}

impl FaQuery {
    /// A parameter.
    pub fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).cloned()
    }
}

/// A parameter that may come in the body or in the query string (the body wins).
pub fn param(body: &FaBody, query: &FaQuery, k: &str) -> Result<Option<String>, WireFieldError> {
    Ok(body.str(k)?.or_else(|| query.get(k)))
}

/// An id parameter, parsed by `parse`: `[invalid]` with `invalid` as the message if it
/// does not parse, `[blank]` if `required` and absent.
pub fn id_field<T>(
    fields: &mut Fields,
    field: &str,
    raw: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    invalid: &str,
    required: bool,
) -> Option<T> {
    match raw.as_deref().map(parse) {
        Some(Some(id)) => Some(id),
        Some(None) => {
            fields.push(WireFieldError::new(field, "invalid", invalid));
            None
        }
        None => {
            if required {
                fields.push(WireFieldError::new(
                    field,
                    "blank",
                    format!("{field} is required"),
                ));
            }
            None
        }
    }
}

/// `userId`, as [`id_field`] reads it.
pub fn user_id(fields: &mut Fields, raw: Option<String>, required: bool) -> Option<UserId> {
    let invalid = "userId is not a valid user id";
    id_field(fields, "userId", raw, UserId::parse, invalid, required)
}

/// `methodId`, as [`id_field`] reads it.
pub fn method_id(fields: &mut Fields, raw: Option<String>, required: bool) -> Option<MethodId> {
    let invalid = "methodId is not a method id";
    id_field(fields, "methodId", raw, MethodId::parse, invalid, required)
}
