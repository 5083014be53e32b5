//! WorkOS and FusionAuth webhook bodies and signatures (`docs/EVENTS.md`, "Webhook formats
//! and signatures").
//!
//! - **WorkOS:** the body is the event exactly as `GET /events` lists it
//!   ([`crate::events::event_object`]), signed as WorkOS signs:
//!   `WorkOS-Signature: t=<unix ms>, v1=<lower-case hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!   The official SDKs (`webhooks.constructEvent`, `webhooks.verify_event`) split the header
//!   on `", "`, read `t` as milliseconds and refuse a timestamp older than 180 s.
//! - **FusionAuth:** FusionAuth's `EventRequest` envelope `{"event": {...}}` with its event
//!   type names, built from the stored payload, signed as FusionAuth signs:
//!   `X-FusionAuth-Signature-JWT`, an HS256 JWT whose one claim `request_body_sha256` is the
//!   standard base64 of the body's SHA-256, keyed with the endpoint's secret.

use data_encoding::{BASE64, HEXLOWER};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mfad_core::error::CoreError;
use mfad_core::events::{EventKind, EventRecord};
use mfad_core::webhooks::{WebhookEncoder, WebhookFormat, WebhookRequest};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// WorkOS's signature header.
pub const WORKOS_SIGNATURE: &str = "WorkOS-Signature";

/// FusionAuth's signature header.
pub const FUSIONAUTH_SIGNATURE: &str = "X-FusionAuth-Signature-JWT";

/// The FusionAuth event type an mfad event kind is delivered as, or `None` where FusionAuth
/// has no event of that meaning (an endpoint in the FusionAuth format cannot subscribe to
/// those kinds).
pub fn fusionauth_event_type(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::MethodAdded => Some("user.two-factor.method.add"),
        EventKind::MethodRemoved => Some("user.two-factor.method.remove"),
        EventKind::LoginSucceeded => Some("user.login.success"),
        EventKind::LoginFailed => Some("user.login.failed"),
        // A challenge opened, completed or failed through the WorkOS API is FusionAuth's
        // two-factor challenge lifecycle (`UserTwoFactor{Challenge,Success,FailedAttempt}Event`).
        EventKind::ChallengeCreated => Some("user.two-factor.challenge"),
        EventKind::MfaSucceeded => Some("user.two-factor.success"),
        EventKind::MfaFailed => Some("user.two-factor.failed-attempt"),
        EventKind::FactorCreated
        | EventKind::FactorDeleted
        | EventKind::FactorLocked
        | EventKind::FactorUnlocked
        | EventKind::MfaThrottled
        | EventKind::SendRefused
        | EventKind::RecoveryCodesGenerated
        | EventKind::RecoveryCodeUsed
        | EventKind::ApiKeyCreated
        | EventKind::ApiKeyRevoked
        | EventKind::JwtKeyAdded
        | EventKind::JwtKeyRemoved => None,
    }
}

/// The server's [`WebhookEncoder`]: both vendors' wire shapes.
#[derive(Debug, Clone, Copy, Default)]
pub struct VendorEncoder;

impl WebhookEncoder for VendorEncoder {
    fn encode(
        &self,
        format: WebhookFormat,
        event: &EventRecord,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<WebhookRequest, CoreError> {
        match format {
            WebhookFormat::WorkOs => Ok(workos(event, secret, now)),
            WebhookFormat::FusionAuth => fusionauth(event, secret),
        }
    }

    /// A FusionAuth endpoint only takes the kinds FusionAuth has an event type for.
    fn carries(&self, format: WebhookFormat, kind: EventKind) -> bool {
        format != WebhookFormat::FusionAuth || fusionauth_event_type(kind).is_some()
    }
}

/// The lower-case hex HMAC-SHA256 WorkOS signs `"<t>.<body>"` with.
fn workos_signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    HEXLOWER.encode(&mac.finalize().into_bytes())
}

fn workos(event: &EventRecord, secret: &str, now: OffsetDateTime) -> WebhookRequest {
    let body = crate::events::event_object(event).to_string();
    // The signing time, not the event's: receivers refuse signatures older than 180 s, and
    // a retried delivery is signed afresh.
    let t = mfad_core::clock::unix_ms(now);
    let signature = format!("t={t}, v1={}", workos_signature(secret, t, &body));
    WebhookRequest {
        body,
        headers: vec![(WORKOS_SIGNATURE.to_owned(), signature)],
    }
}

fn fusionauth(event: &EventRecord, secret: &str) -> Result<WebhookRequest, CoreError> {
    let body = fusionauth_envelope(event)?.to_string();
    let claims = json!({"request_body_sha256": BASE64.encode(&Sha256::digest(body.as_bytes()))});
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| CoreError::Internal(format!("signing a FusionAuth webhook: {e}")))?;
    Ok(WebhookRequest {
        body,
        headers: vec![(FUSIONAUTH_SIGNATURE.to_owned(), jwt)],
    })
}

/// An event id (`event_01H…`) as the UUID with the same 128 bits: FusionAuth's event ids
/// are UUIDs (a receiver de-duplicates redeliveries by it).
fn event_uuid(id: &mfad_core::EventId) -> Option<String> {
    let body = id.as_str().strip_prefix(mfad_core::EventId::PREFIX)?;
    let ulid = ulid::Ulid::from_string(body).ok()?;
    Some(uuid::Uuid::from_u128(u128::from(ulid)).to_string())
}

/// FusionAuth's method type of a stored `authentication_factor` (generic OTP factors are
/// no FusionAuth method).
fn method_type(factor: &Map<String, Value>) -> Option<&'static str> {
    if factor.contains_key("sms") {
        Some("sms")
    } else if factor.contains_key("email") {
        Some("email")
    } else if factor.contains_key("totp")
        || factor.get("type").and_then(Value::as_str) == Some("totp")
    {
        Some("authenticator")
    } else {
        None
    }
}

/// A `TwoFactorMethod` from a stored `authentication_factor`: `id`, `method`, `name`, and
/// the destination as the payload holds it (redacted).
fn two_factor_method(factor: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    if let Some(id) = factor.get("method_id").filter(|v| v.is_string()) {
        m.insert("id".into(), id.clone());
    }
    if let Some(t) = method_type(factor) {
        m.insert("method".into(), t.into());
    }
    if let Some(name) = factor.get("name").filter(|v| v.is_string()) {
        m.insert("name".into(), name.clone());
    }
    let nested = |outer: &str, inner: &str| {
        factor
            .get(outer)
            .and_then(|o| o.get(inner))
            .filter(|v| v.is_string())
            .cloned()
    };
    if let Some(phone) = nested("sms", "phone_number") {
        m.insert("mobilePhone".into(), phone);
    }
    if let Some(email) = nested("email", "email") {
        m.insert("email".into(), email);
    }
    Value::Object(m)
}

/// FusionAuth's `EventRequest` for a stored event: `{"event": BaseEvent & the type's own
/// fields}`. Common fields: `id` (the event id as a UUID), `createInstant` (ms), `type`,
/// `tenantId` (UUID), `info` (`ipAddress`, `userAgent`, and in `info.data` mfad's event
/// name, id and request id), `user` (`id`, `tenantId`) when the user is known.
pub fn fusionauth_envelope(e: &EventRecord) -> Result<Value, CoreError> {
    let kind = EventKind::parse(&e.name);
    let Some(kind_type) = kind.and_then(fusionauth_event_type) else {
        return Err(CoreError::Internal(format!(
            "event {} has no FusionAuth event type",
            e.name
        )));
    };
    let data = match serde_json::from_str::<Value>(&e.data) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let tenant = e.tenant_id.as_uuid();
    // A factor event's payload is the factor; other payloads nest it.
    let factor = if data.get("object").and_then(Value::as_str) == Some("authentication_factor") {
        Some(&data)
    } else {
        data.get("authentication_factor").and_then(Value::as_object)
    };

    let mut info = Map::new();
    if let Some(ip) = text("ip_address") {
        info.insert("ipAddress".into(), ip.into());
    }
    if let Some(ua) = text("user_agent") {
        info.insert("userAgent".into(), ua.into());
    }
    info.insert(
        "data".into(),
        json!({"event": e.name, "eventId": e.id.as_str(), "requestId": text("request_id")}),
    );

    let mut ev = Map::new();
    ev.insert("id".into(), event_uuid(&e.id).into());
    ev.insert(
        "createInstant".into(),
        mfad_core::clock::unix_ms(e.created_at).into(),
    );
    ev.insert("info".into(), Value::Object(info));
    ev.insert("tenantId".into(), tenant.clone().into());
    ev.insert("type".into(), kind_type.into());
    if let Some(user_id) = text("user_id") {
        ev.insert("user".into(), json!({"id": user_id, "tenantId": tenant}));
    }
    match kind {
        Some(EventKind::MethodAdded | EventKind::MethodRemoved) => {
            if let Some(f) = factor {
                ev.insert("method".into(), two_factor_method(f));
            }
        }
        Some(EventKind::LoginSucceeded) => {
            if let Some(ip) = text("ip_address") {
                ev.insert("ipAddress".into(), ip.into());
            }
        }
        Some(EventKind::LoginFailed) => {
            if let Some(ip) = text("ip_address") {
                ev.insert("ipAddress".into(), ip.into());
            }
            // FusionAuth's reason for a wrong credential; a wrong second factor is one.
            ev.insert("reason".into(), json!({"code": "credentials"}));
        }
        Some(EventKind::MfaSucceeded | EventKind::MfaFailed) => {
            if let Some(t) = factor.and_then(method_type) {
                ev.insert("method".into(), t.into());
            }
        }
        _ => {}
    }
    Ok(json!({"event": Value::Object(ev)}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use mfad_core::ids::{EventId, TenantId};

    fn at(ms: i64) -> OffsetDateTime {
        mfad_core::clock::from_unix_ms(ms)
    }

    fn record(name: &str, data: Value) -> EventRecord {
        EventRecord {
            id: EventId::from_trusted("event_01JDZ5QM8N98T9ME5BCB2BBMJK".into()),
            tenant_id: TenantId::from_trusted("tenant_01JDZ5QM8N98T9ME5BCB2BBMJ0".into()),
            name: name.into(),
            created_at: at(1_764_614_400_123),
            data: data.to_string(),
        }
    }

    fn header<'a>(r: &'a WebhookRequest, name: &str) -> &'a str {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn workos_body_is_the_events_api_object() {
        let e = record(
            "authentication.mfa_succeeded",
            json!({"type": "mfa", "user_id": "u1"}),
        );
        let r = VendorEncoder
            .encode(WebhookFormat::WorkOs, &e, "s3cret", at(1_764_614_401_000))
            .unwrap();
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body, crate::events::event_object(&e));
        assert_eq!(body["object"], "event");
        assert_eq!(body["event"], "authentication.mfa_succeeded");
        assert_eq!(body["data"]["user_id"], "u1");
    }

    #[test]
    fn workos_signature_is_hmac_of_ms_timestamp_dot_body() {
        let e = record("api_key.created", json!({"object": "api_key"}));
        let now = at(1_764_614_401_234);
        let r = VendorEncoder
            .encode(WebhookFormat::WorkOs, &e, "whsec_test", now)
            .unwrap();
        let sig = header(&r, "WorkOS-Signature");
        // The SDKs split on ", " and strip "t=" / "v1=".
        let (t, v1) = sig.split_once(", ").unwrap();
        assert_eq!(t, "t=1764614401234");
        let v1 = v1.strip_prefix("v1=").unwrap();
        assert_eq!(v1.len(), 64);
        assert!(
            v1.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(
            v1,
            workos_signature("whsec_test", 1_764_614_401_234, &r.body)
        );
        // Another secret, time or body signs differently.
        assert_ne!(
            v1,
            workos_signature("whsec_other", 1_764_614_401_234, &r.body)
        );
        assert_ne!(
            v1,
            workos_signature("whsec_test", 1_764_614_401_235, &r.body)
        );
        assert_ne!(v1, workos_signature("whsec_test", 1_764_614_401_234, "{}"));
    }

    #[test]
    fn workos_signature_matches_an_independent_hmac() {
        // Python: hmac.new(b"key", b"1700000000000.{\"a\":1}", hashlib.sha256).hexdigest()
        assert_eq!(
            workos_signature("key", 1_700_000_000_000, r#"{"a":1}"#),
            "2c8bc12f88d77789404ce0a63cf69acf735ba98832f7a7d36147f537be556f3e"
        );
    }

    #[test]
    fn fusionauth_jwt_signs_the_body_hash() {
        let e = record(
            "two_factor.method_added",
            json!({"object": "authentication_factor", "id": "auth_factor_1", "type": "sms",
                   "sms": {"phone_number": "+14…71"}, "user_id": "u-1", "method_id": "AB12",
                   "name": "phone", "request_id": "req-1", "ip_address": "203.0.113.7",
                   "user_agent": "ua/1"}),
        );
        let r = VendorEncoder
            .encode(WebhookFormat::FusionAuth, &e, "fa-secret", at(0))
            .unwrap();
        let jwt = header(&r, "X-FusionAuth-Signature-JWT");
        let mut v = Validation::new(Algorithm::HS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let claims =
            jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_secret(b"fa-secret"), &v)
                .unwrap()
                .claims;
        assert_eq!(
            claims,
            json!({"request_body_sha256": BASE64.encode(&Sha256::digest(r.body.as_bytes()))})
        );
        let head = jsonwebtoken::decode_header(jwt).unwrap();
        assert_eq!(head.alg, Algorithm::HS256);
        assert_eq!(head.typ.as_deref(), Some("JWT"));
        // Another key does not verify it.
        assert!(
            jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_secret(b"other"), &v).is_err()
        );
    }

    #[test]
    fn fusionauth_method_add_envelope() {
        let e = record(
            "two_factor.method_added",
            json!({"object": "authentication_factor", "id": "auth_factor_1", "type": "sms",
                   "sms": {"phone_number": "+14…71"}, "user_id": "u-1", "method_id": "AB12",
                   "name": "phone", "request_id": "req-1", "ip_address": "203.0.113.7",
                   "user_agent": "ua/1"}),
        );
        let env = fusionauth_envelope(&e).unwrap();
        let ev = &env["event"];
        assert_eq!(ev["type"], "user.two-factor.method.add");
        assert_eq!(ev["createInstant"], 1_764_614_400_123_i64);
        let tenant = e.tenant_id.as_uuid();
        assert_eq!(ev["tenantId"], tenant.as_str());
        let id = ev["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(ev["user"], json!({"id": "u-1", "tenantId": tenant}));
        assert_eq!(
            ev["method"],
            json!({"id": "AB12", "method": "sms", "name": "phone", "mobilePhone": "+14…71"})
        );
        assert_eq!(ev["info"]["ipAddress"], "203.0.113.7");
        assert_eq!(ev["info"]["userAgent"], "ua/1");
        assert_eq!(
            ev["info"]["data"],
            json!({"event": "two_factor.method_added", "eventId": e.id.as_str(), "requestId": "req-1"})
        );
    }

    #[test]
    fn fusionauth_login_events() {
        let ok = record(
            "two_factor.login_succeeded",
            json!({"type": "mfa", "status": "succeeded", "user_id": "u-2", "email": null,
                   "method": "recovery_code", "ip_address": "198.51.100.1", "user_agent": null,
                   "request_id": null}),
        );
        let ev = fusionauth_envelope(&ok).unwrap()["event"].clone();
        assert_eq!(ev["type"], "user.login.success");
        assert_eq!(ev["ipAddress"], "198.51.100.1");
        assert_eq!(ev["user"]["id"], "u-2");
        assert!(ev["info"].get("userAgent").is_none());
        assert!(ev.get("reason").is_none());

        let failed = record(
            "two_factor.login_failed",
            json!({"type": "mfa", "status": "failed", "user_id": "u-2", "email": null,
                   "error": {"code": "invalid_code", "message": "wrong"},
                   "ip_address": null, "user_agent": null, "request_id": null}),
        );
        let ev = fusionauth_envelope(&failed).unwrap()["event"].clone();
        assert_eq!(ev["type"], "user.login.failed");
        assert_eq!(ev["reason"], json!({"code": "credentials"}));
        assert!(ev.get("ipAddress").is_none());
    }

    #[test]
    fn fusionauth_two_factor_events_name_the_method() {
        let e = record(
            "authentication.mfa_failed",
            json!({"type": "mfa", "status": "failed", "user_id": null, "email": null,
                   "authentication_factor": {"object": "authentication_factor", "type": "totp",
                                             "totp": {"issuer": "i", "user": "u"}}}),
        );
        let ev = fusionauth_envelope(&e).unwrap()["event"].clone();
        assert_eq!(ev["type"], "user.two-factor.failed-attempt");
        assert_eq!(ev["method"], "authenticator");
        // No user known: no user object.
        assert!(ev.get("user").is_none());
    }

    #[test]
    fn kinds_without_a_fusionauth_type_are_refused() {
        for k in EventKind::ALL {
            let e = record(k.name(), json!({}));
            let encoded = VendorEncoder.encode(WebhookFormat::FusionAuth, &e, "s", at(0));
            assert_eq!(
                encoded.is_ok(),
                fusionauth_event_type(k).is_some(),
                "{}",
                k.name()
            );
            // Every kind has a WorkOS delivery.
            assert!(
                VendorEncoder
                    .encode(WebhookFormat::WorkOs, &e, "s", at(0))
                    .is_ok()
            );
        }
        assert_eq!(
            fusionauth_event_type(EventKind::MethodRemoved),
            Some("user.two-factor.method.remove")
        );
        assert_eq!(fusionauth_event_type(EventKind::ApiKeyCreated), None);
    }
}
