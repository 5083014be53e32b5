//! FusionAuth wire objects built from domain records, and the two kinds of success
//! response: JSON, or an empty 200 **without** a JSON content type (the TypeScript
//! client rejects an empty body labelled JSON).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mfad_core::FactorId;
use mfad_core::model::{Factor, FactorDetails};
use mfad_core::two_factor::MethodKind;
use mfad_crypto::Zeroizing;
use mfad_otp::Algorithm;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::error::json_response;

/// `200` with an empty body and no content type.
pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// `200` with a JSON body.
pub fn json_ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// Milliseconds since the epoch, FusionAuth's instant format.
pub fn instant(t: OffsetDateTime) -> i64 {
    mfad_core::clock::unix_ms(t)
}

fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "HmacSHA1",
        Algorithm::Sha256 => "HmacSHA256",
        Algorithm::Sha512 => "HmacSHA512",
    }
}

/// A `TwoFactorMethod`. The secret is never shown again after enabling.
pub fn method(f: &Factor, last_used: bool) -> Value {
    let mut m = Map::new();
    if let Some(id) = &f.method_id {
        m.insert("id".into(), id.as_str().into());
    }
    if let Some(kind) = MethodKind::of(f) {
        m.insert("method".into(), kind.as_str().into());
    }
    if let Some(name) = &f.name {
        m.insert("name".into(), name.as_str().into());
    }
    match &f.details {
        FactorDetails::Totp(t) => {
            m.insert(
                "authenticator".into(),
                json!({"algorithm": algorithm_name(t.algorithm), "codeLength": t.digits, "timeStep": t.period}),
            );
        }
        FactorDetails::Sms { phone } => {
            m.insert("mobilePhone".into(), phone.as_str().into());
        }
        FactorDetails::Email { address } => {
            m.insert("email".into(), address.as_str().into());
        }
        FactorDetails::GenericOtp => {}
    }
    if last_used {
        m.insert("lastUsed".into(), true.into());
    }
    Value::Object(m)
}

/// A list of methods, `lastUsed` on the one the user last logged in with.
pub fn methods(list: &[Factor], last_used: Option<&FactorId>) -> Value {
    Value::Array(
        list.iter()
            .map(|f| method(f, last_used == Some(&f.id)))
            .collect(),
    )
}

/// Recovery codes as a JSON array.
pub fn codes(list: &[Zeroizing<String>]) -> Value {
    Value::Array(
        list.iter()
            .map(|c| Value::String(c.as_str().to_owned()))
            .collect(),
    )
}
