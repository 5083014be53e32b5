//! Events on the wire: the WorkOS-shaped payload every event is stored and served with
//! (the Events API and WorkOS-format webhooks), and the request context events name.
//!
//! Where WorkOS defines an event's `data` model (`authentication.mfa_succeeded`,
//! `authentication.mfa_failed`, `api_key.created`, `api_key.revoked`) the payload carries
//! every field of it, `null` where mfad has no value, so the official SDKs' event models
//! accept it. Every payload also names the request (`request_id`, `ip_address`,
//! `user_agent`). The catalogue is `docs/EVENTS.md`.

use axum::extract::Request;
use axum::response::Response;
use mfad_core::events::{
    ChallengeView, Event, EventEncoder, EventRecord, FactorView, LoginProof, RequestMeta, Subject,
};
use mfad_core::model::FactorType;
use serde_json::{Map, Value, json};

use crate::routes::workos::wire::{factor_type, timestamp};
use crate::state::AppState;

/// Runs each request with its id, client address and user agent as the context of the
/// events it records.
pub async fn request_context(
    state: &AppState,
    req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    // Built in a block: a borrow of the request (whose body is not `Sync`) must not live
    // across the await.
    let meta = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect::<String>())
        };
        RequestMeta {
            request_id: header("x-request-id"),
            ip_address: state.rates.client_ip(&req).map(|ip| ip.to_string()),
            user_agent: header("user-agent"),
        }
    };
    mfad_core::events::with_request(meta, next(req)).await
}

/// The WorkOS-shaped payloads.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkosPayload;

impl EventEncoder for WorkosPayload {
    fn encode(&self, e: &Event) -> String {
        payload(e).to_string()
    }
}

/// One event as the Events API lists it (`GET /events`) and a WorkOS-format webhook
/// delivers it: `{object: "event", id, event, data, created_at}`.
pub fn event_object(e: &EventRecord) -> Value {
    // The payload is this module's own JSON; a row that does not parse shows `null`
    // rather than failing the whole listing.
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    json!({
        "object": "event",
        "id": e.id.as_str(),
        "event": e.name,
        "data": data,
        "created_at": timestamp(e.created_at),
    })
}

/// An `authentication_factor` as events show it: the API object, destination redacted.
fn factor(f: &FactorView) -> Value {
    let mut m = Map::new();
    m.insert("object".into(), "authentication_factor".into());
    m.insert("id".into(), f.id.as_str().into());
    m.insert("created_at".into(), timestamp(f.created_at).into());
    m.insert("updated_at".into(), timestamp(f.updated_at).into());
    m.insert("type".into(), factor_type(f.factor_type).into());
    match (f.factor_type, &f.totp, &f.destination) {
        (FactorType::Totp, Some((issuer, user)), _) => {
            m.insert("totp".into(), json!({"issuer": issuer, "user": user}));
        }
        (FactorType::Sms, _, Some(d)) => {
            m.insert("sms".into(), json!({"phone_number": d}));
        }
        (FactorType::Email, _, Some(d)) => {
            m.insert("email".into(), json!({"email": d}));
        }
        _ => {}
    }
    m.insert(
        "user_id".into(),
        f.user_id.as_ref().map(|u| u.as_str()).into(),
    );
    if let Some(id) = &f.method_id {
        m.insert("method_id".into(), id.as_str().into());
    }
    if let Some(name) = &f.name {
        m.insert("name".into(), name.as_str().into());
    }
    Value::Object(m)
}

/// An `authentication_challenge` as events show it (never its code).
fn challenge(c: &ChallengeView) -> Value {
    json!({
        "object": "authentication_challenge",
        "id": c.id.as_str(),
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.created_at),
        "expires_at": timestamp(c.expires_at),
        "authentication_factor_id": c.factor_id.as_str(),
    })
}

fn proof(p: LoginProof) -> &'static str {
    match p {
        LoginProof::Totp => "authenticator",
        LoginProof::SentCode => "sent_code",
        LoginProof::RecoveryCode => "recovery_code",
    }
}

/// The `data` of one event.
pub fn payload(e: &Event) -> Value {
    let mut m = match &e.subject {
        Subject::Factor(f) => as_map(factor(f)),
        Subject::User(u) => as_map(json!({"user_id": u.as_str()})),
        Subject::Challenge {
            challenge: c,
            factor: f,
        } => {
            let mut m = as_map(challenge(c));
            m.insert(
                "user_id".into(),
                f.user_id.as_ref().map(|u| u.as_str()).into(),
            );
            m.insert("destination".into(), f.destination.clone().into());
            m.insert("authentication_factor".into(), factor(f));
            m
        }
        Subject::Attempt {
            user_id,
            factor: f,
            challenge: c,
            proof: p,
            failure,
        } => {
            // WorkOS's authentication event model: type, status, ip_address, user_agent,
            // user_id, email (and error when failed).
            let mut m = as_map(json!({
                "type": "mfa",
                "status": if failure.is_some() { "failed" } else { "succeeded" },
                "user_id": user_id.as_ref().map(|u| u.as_str()),
                "email": Value::Null,
            }));
            if let Some(failure) = failure {
                m.insert(
                    "error".into(),
                    json!({"code": failure.code, "message": failure.message}),
                );
            }
            if let Some(f) = f {
                m.insert("authentication_factor".into(), factor(f));
            }
            if let Some(c) = c {
                m.insert("authentication_challenge".into(), challenge(c));
            }
            if let Some(p) = p {
                m.insert("method".into(), proof(*p).into());
            }
            m
        }
        Subject::Send {
            user_id,
            factor: f,
            destination,
            failure,
        } => {
            let mut m = as_map(json!({
                "user_id": user_id.as_ref().map(|u| u.as_str()),
                "destination": destination,
                "error": {"code": failure.code, "message": failure.message},
            }));
            if let Some(f) = f {
                m.insert("authentication_factor".into(), factor(f));
            }
            m
        }
        Subject::RecoveryCodes { user_id, count } => {
            as_map(json!({"user_id": user_id.as_str(), "count": count}))
        }
        Subject::ApiKey {
            id,
            name,
            created_at,
        } => {
            // WorkOS's api_key model; the owner is the tenant, shown as an organization.
            // `obfuscated_value` is the key's public id: mfad keeps no part of the secret.
            let at = timestamp(*created_at);
            as_map(json!({
                "object": "api_key",
                "id": id.as_str(),
                "owner": {"type": "organization", "id": e.tenant_id.as_str()},
                "name": name,
                "obfuscated_value": format!("sk_{}_…", id.as_str().trim_start_matches("key_").to_ascii_lowercase()),
                "last_used_at": Value::Null,
                "expires_at": Value::Null,
                "permissions": [],
                "created_at": at,
                "updated_at": at,
            }))
        }
        Subject::JwtKey {
            id,
            kid,
            alg,
            created_at,
        } => as_map(json!({
            "object": "jwt_key",
            "id": id.as_str(),
            "kid": kid,
            "alg": alg,
            "created_at": timestamp(*created_at),
        })),
    };
    m.insert("request_id".into(), e.request.request_id.clone().into());
    m.insert("ip_address".into(), e.request.ip_address.clone().into());
    m.insert("user_agent".into(), e.request.user_agent.clone().into());
    Value::Object(m)
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
