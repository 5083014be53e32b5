//! Where domain errors become wire errors: one renderer per emulated API, and the one
//! place the domain's [`Field`]s and [`Reason`]s get each API's names. Server-side
//! failures are logged here with their cause and answered with an opaque body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mfad_core::error::{CoreError, Entity, Field, FieldError, Reason, StoreError};
use mfad_core::webauthn::Refusal;
use serde_json::json;

/// An invalid request field in the caller's own vocabulary: what request extraction finds
/// (a wrong JSON type, a missing field), and domain [`FieldError`]s once named for an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFieldError {
    /// The field's wire name; empty for an error about the request as a whole.
    pub field: String,
    /// A short machine-readable reason in the API's style (`required`, `blank`, …).
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

impl WireFieldError {
    /// Builds one.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        WireFieldError {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The field errors of one request, found while reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<WireFieldError>);

/// How long a client is told to wait on a locked factor: nothing but an operator lifts a
/// lock, and an hour keeps well-behaved clients from hammering it.
const LOCKED_RETRY_AFTER_SECS: i64 = 3600;

/// A `Retry-After` value in whole seconds, at least 1.
fn retry_after_secs(d: time::Duration) -> i64 {
    let whole = d.whole_seconds();
    let secs = if d > time::Duration::seconds(whole) {
        whole + 1
    } else {
        whole
    };
    secs.max(1)
}

fn with_retry_after(mut resp: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The sentence for a field error on the wire field `f`.
fn reason_message(f: &str, reason: Reason) -> String {
    match reason {
        Reason::Required => format!("{f} is required"),
        Reason::Invalid => format!("{f} is invalid"),
        Reason::TooLong { max } => format!("{f} must be at most {max} characters"),
        Reason::OutOfRange { min, max } => format!("{f} must be between {min} and {max}"),
        Reason::Duplicate => format!("the user already has a method with this {f}"),
        Reason::TooMany { max } => format!("a user may have at most {max} two-factor methods"),
        Reason::NotFound => format!("the user has no two-factor method with this {f}"),
        Reason::NotDeliverable => {
            format!("{f} must name an SMS or email method (codes cannot be sent elsewhere)")
        }
        Reason::Ambiguous => format!("{f} matches more than one user; send userId"),
        Reason::MissingPlaceholder => format!("{f} must contain {{{{code}}}}"),
        Reason::ContainsUrl => format!("{f} must not contain URLs"),
        Reason::TooShort { min } => format!("{f} must be at least {min} bytes"),
        Reason::UnsafeCharacters => {
            format!("{f} must not contain control or bidirectional-override characters")
        }
        // Webhook URLs reach the domain only through `mfad webhook add`: the operator's flag
        // is named.
        Reason::InsecureScheme => {
            format!("{f} must use https (http needs --allow-insecure)")
        }
        Reason::Credentials => format!("{f} must not contain a user name or password"),
        Reason::ForbiddenAddress => format!(
            "{f} must not name a loopback, private, link-local or otherwise non-public address (such a receiver needs --allow-insecure)"
        ),
    }
}

/// The WorkOS names of a domain field.
fn workos_field(f: Field) -> &'static str {
    match f {
        Field::TenantName => "tenant",
        Field::JwtKey => "key",
        Field::JwtSecret => "secret",
        Field::Kid => "kid",
        Field::TotpIssuer => "totp_issuer",
        Field::TotpUser => "totp_user",
        Field::TotpSecret => "totp_secret",
        Field::SmsTemplate => "sms_template",
        Field::Limit => "limit",
        Field::Name => "name",
        Field::Code => "code",
        Field::PhoneNumber => "phone_number",
        Field::Email => "email",
        Field::MethodId => "method_id",
        Field::Methods => "factors",
        Field::LoginId => "login_id",
        Field::Origin => "origin",
        Field::RpId => "rp_id",
        Field::TrustStore => "trust_store",
        Field::DisplayName => "display_name",
        Field::UserAgent => "user_agent",
        Field::WebhookUrl => "url",
        Field::WebhookEvents => "events",
    }
}

fn workos_reason(r: Reason) -> &'static str {
    match r {
        Reason::Required => "required",
        Reason::TooLong { .. } => "too_long",
        Reason::TooShort { .. } => "too_short",
        Reason::Duplicate => "duplicate",
        Reason::TooMany { .. } => "too_many",
        Reason::InsecureScheme => "insecure_scheme",
        Reason::Credentials => "credentials",
        Reason::ForbiddenAddress => "forbidden_address",
        _ => "invalid",
    }
}

/// A domain field error named as the WorkOS API names it.
pub fn workos_field_error(e: &FieldError) -> WireFieldError {
    let field = workos_field(e.field);
    let message = match (e.field, e.reason) {
        (Field::TotpIssuer | Field::TotpUser, Reason::Required) => {
            format!("{field} is required for TOTP factors")
        }
        (Field::TotpSecret, Reason::Invalid) => {
            format!("{field} must be base32 of 10 to 128 bytes")
        }
        (Field::Kid, Reason::Invalid) => format!(
            "kid must be 1-{} visible ASCII characters",
            mfad_core::jwt_keys::MAX_KID_LEN
        ),
        (Field::Kid, Reason::Duplicate) => "the tenant already has a key with this kid".into(),
        (_, reason) => reason_message(field, reason),
    };
    WireFieldError::new(field, workos_reason(e.reason), message)
}

/// The FusionAuth name of a domain field.
fn fusionauth_field(f: Field) -> &'static str {
    match f {
        Field::TenantName => "tenantId",
        Field::JwtKey => "key",
        Field::JwtSecret => "secret",
        Field::Kid => "kid",
        Field::TotpIssuer => "issuer",
        Field::TotpUser => "user",
        Field::TotpSecret => "secret",
        Field::SmsTemplate => "message",
        Field::Limit => "limit",
        Field::Name => "name",
        Field::Code => "code",
        Field::PhoneNumber => "mobilePhone",
        Field::Email => "email",
        Field::MethodId => "methodId",
        Field::Methods => "method",
        Field::LoginId => "loginId",
        Field::Origin => "origin",
        Field::RpId => "rpId",
        Field::TrustStore => "trustStore",
        Field::DisplayName => "displayName",
        Field::UserAgent => "userAgent",
        Field::WebhookUrl => "url",
        Field::WebhookEvents => "events",
    }
}

fn fusionauth_reason(r: Reason) -> &'static str {
    match r {
        Reason::Required => "blank",
        Reason::TooLong { .. } => "tooLong",
        Reason::TooShort { .. } => "tooShort",
        Reason::Duplicate | Reason::Ambiguous => "duplicate",
        Reason::TooMany { .. } => "tooMany",
        Reason::InsecureScheme => "insecureScheme",
        Reason::Credentials => "credentials",
        Reason::ForbiddenAddress => "forbiddenAddress",
        _ => "invalid",
    }
}

/// A domain field error named as the FusionAuth API names it. A user without methods is
/// FusionAuth's general error `[TwoFactorNotEnabled]`.
pub fn fusionauth_field_error(e: &FieldError) -> WireFieldError {
    if (e.field, e.reason) == (Field::Methods, Reason::Required) {
        return WireFieldError::new(
            "",
            "TwoFactorNotEnabled",
            "two-factor authentication is not enabled for the user",
        );
    }
    let field = fusionauth_field(e.field);
    WireFieldError::new(
        field,
        fusionauth_reason(e.reason),
        reason_message(field, e.reason),
    )
}

/// A [`CoreError`] (or a request's field errors) rendered in the WorkOS error shape
/// (`{code, message, …}`).
#[derive(Debug)]
pub enum WorkosError {
    /// A domain failure.
    Core(CoreError),
    /// Fields the request got wrong, already in WorkOS's names.
    Fields(Vec<WireFieldError>),
}

impl<E: Into<CoreError>> From<E> for WorkosError {
    fn from(e: E) -> Self {
        WorkosError::Core(e.into())
    }
}

impl From<FieldErrors> for WorkosError {
    fn from(e: FieldErrors) -> Self {
        WorkosError::Fields(e.0)
    }
}

impl From<WireFieldError> for WorkosError {
    fn from(e: WireFieldError) -> Self {
        WorkosError::Fields(vec![e])
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
        Entity::Passkey => "WebAuthn passkey",
        Entity::WebhookEndpoint => "Webhook endpoint",
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

fn workos_validation(fields: &[WireFieldError]) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "code": "invalid_request_parameters",
            "message": "Validation failed",
            // WorkOS's older item shape puts the sentence in `code` (Node shows it);
            // `message` repeats it and `reason` keeps the machine-readable reason.
            "errors": fields.iter().map(|f| json!({
                "field": f.field, "code": f.message, "message": f.message, "reason": f.code,
            })).collect::<Vec<_>>(),
        }),
    )
}

impl IntoResponse for WorkosError {
    fn into_response(self) -> Response {
        let core = match self {
            WorkosError::Fields(fields) => return workos_validation(&fields),
            WorkosError::Core(e) => e,
        };
        let (status, body) = match &core {
            CoreError::NotFound { entity, id } => (
                StatusCode::NOT_FOUND,
                json!({
                    "message": format!("{} not found: '{}'.", entity_name(*entity), id),
                    "code": "entity_not_found",
                    "entity_id": id,
                }),
            ),
            CoreError::Validation(fields) => {
                let wire: Vec<WireFieldError> = fields.iter().map(workos_field_error).collect();
                return workos_validation(&wire);
            }
            CoreError::Throttled { retry_after } => {
                let secs = retry_after_secs(*retry_after);
                let body = json!({
                    "code": "too_many_failed_attempts",
                    "message": format!("Too many failed attempts on this authentication factor; retry in {secs} seconds."),
                });
                return with_retry_after(json_response(StatusCode::TOO_MANY_REQUESTS, &body), secs);
            }
            CoreError::Locked => {
                let body = json!({
                    "code": "authentication_factor_locked",
                    "message": "This authentication factor is locked after too many failed attempts; an operator must unlock it.",
                });
                return with_retry_after(
                    json_response(StatusCode::TOO_MANY_REQUESTS, &body),
                    LOCKED_RETRY_AFTER_SECS,
                );
            }
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
            } => {
                let body = json!({"code": "rate_limit_exceeded",
                       "message": format!("No SMS was sent: {}. Retry after {retry_after_secs} seconds.", limit.describe())});
                return with_retry_after(
                    json_response(StatusCode::TOO_MANY_REQUESTS, &body),
                    i64::try_from(*retry_after_secs).unwrap_or(i64::MAX),
                );
            }
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
        resp
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
pub enum FusionAuthError {
    /// A domain failure.
    Core(CoreError),
    /// Fields the request got wrong, already in FusionAuth's names.
    Fields(Vec<WireFieldError>),
}

impl<E: Into<CoreError>> From<E> for FusionAuthError {
    fn from(e: E) -> Self {
        FusionAuthError::Core(e.into())
    }
}

impl From<FieldErrors> for FusionAuthError {
    fn from(e: FieldErrors) -> Self {
        FusionAuthError::Fields(e.0)
    }
}

impl From<WireFieldError> for FusionAuthError {
    fn from(e: WireFieldError) -> Self {
        FusionAuthError::Fields(vec![e])
    }
}

/// FusionAuth's `409`: the user may not log in now (FusionAuth's answer for a user locked
/// by too many failed attempts). mfad answers it when the throttle refuses a code.
pub const LOCKED: StatusCode = StatusCode::CONFLICT;

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
    pub fn general(code: &str, message: &str) -> Self {
        FusionAuthError::Fields(vec![WireFieldError::new("", code, message)])
    }

    /// A field error in FusionAuth's names.
    pub fn field(field: &str, code: &str, message: &str) -> Self {
        FusionAuthError::Fields(vec![WireFieldError::new(field, code, message)])
    }
}

impl IntoResponse for FusionAuthError {
    fn into_response(self) -> Response {
        let core = match self {
            FusionAuthError::Fields(fields) => return fusionauth_errors(&fields),
            FusionAuthError::Core(e) => e,
        };
        match &core {
            CoreError::NotFound { .. } => StatusCode::NOT_FOUND.into_response(),
            CoreError::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
            CoreError::InvalidCode
            | CoreError::ChallengePreviouslyVerified(_)
            | CoreError::ChallengeExpired(_)
            | CoreError::TooManyAttempts(_) => INVALID_CODE.into_response(),
            CoreError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS.into_response(),
            CoreError::Throttled { retry_after } => {
                let secs = retry_after_secs(*retry_after);
                let message = format!("Too many failed two-factor codes; retry in {secs} seconds.");
                with_retry_after(
                    fusionauth_general(LOCKED, "TooManyFailedAttempts", &message),
                    secs,
                )
            }
            CoreError::Locked => with_retry_after(
                fusionauth_general(
                    LOCKED,
                    "UserLocked",
                    "Locked after too many failed two-factor codes; an administrator must unlock it.",
                ),
                LOCKED_RETRY_AFTER_SECS,
            ),
            // FusionAuth's rate limits (Advanced Threat Detection) answer 429; the body is
            // empty, as for its other non-validation refusals.
            CoreError::SendLimited {
                retry_after_secs, ..
            } => with_retry_after(
                StatusCode::TOO_MANY_REQUESTS.into_response(),
                i64::try_from(*retry_after_secs).unwrap_or(i64::MAX),
            ),
            CoreError::SmsCountryNotAllowed { country } => {
                fusionauth_errors(&[WireFieldError::new(
                    "mobilePhone",
                    "notAllowed",
                    country_message(country.as_deref()),
                )])
            }
            CoreError::Validation(fields) => {
                let wire: Vec<WireFieldError> = fields.iter().map(fusionauth_field_error).collect();
                fusionauth_errors(&wire)
            }
            CoreError::InvalidPhoneNumber { .. } => fusionauth_errors(&[WireFieldError::new(
                "mobilePhone",
                "invalid",
                "mobilePhone must be a valid phone number",
            )]),
            CoreError::WrongFactorType(_) => fusionauth_errors(&[WireFieldError::new(
                "methodId",
                "invalid",
                "the method cannot be used for this operation",
            )]),
            CoreError::WebAuthn(r) => fusionauth_errors(&[webauthn_field_error(*r)]),
            other => {
                let (status, code, message) = server_failure(other);
                let mut resp = fusionauth_general(status, code, message);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                resp
            }
        }
    }
}

/// A refused WebAuthn ceremony as a FusionAuth validation error (400): the field is the
/// part of the request that failed (`docs/contracts/webauthn.md`).
pub fn webauthn_field_error(r: Refusal) -> WireFieldError {
    let (field, code, message) = match r {
        Refusal::NotConfigured => (
            "",
            "WebAuthnNotConfigured",
            "WebAuthn is not configured for this tenant",
        ),
        Refusal::UnknownChallenge => (
            "credential.response.clientDataJSON",
            "invalid",
            "the challenge is unknown, already used or expired",
        ),
        Refusal::UnknownCredential => (
            "credential.id",
            "invalid",
            "no such passkey is registered for the user",
        ),
        Refusal::Origin => (
            "origin",
            "invalid",
            "the origin is not allowed for this tenant",
        ),
        Refusal::RpId => (
            "rpId",
            "invalid",
            "the relying party id is not this tenant's",
        ),
        Refusal::CounterRegression => (
            "credential.response.authenticatorData",
            "invalid",
            "the signature counter did not increase; the authenticator may be cloned",
        ),
        Refusal::UserVerification => (
            "credential.response.authenticatorData",
            "userVerificationRequired",
            "the authenticator did not verify the user",
        ),
        Refusal::Attestation => (
            "credential.response.attestationObject",
            "invalid",
            "the authenticator's attestation is not trusted",
        ),
        Refusal::AlreadyRegistered => (
            "credential.id",
            "duplicate",
            "this passkey is already registered",
        ),
        Refusal::NoCredentials => ("userId", "missing", "the user has no passkeys"),
        Refusal::Invalid => (
            "credential",
            "invalid",
            "the WebAuthn response does not verify",
        ),
    };
    WireFieldError::new(field, code, message)
}

/// An Errors object with one general error `[code]`.
fn fusionauth_general(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"fieldErrors": {}, "generalErrors": [{"code": format!("[{code}]"), "message": message}]}),
    )
}

/// FusionAuth's Errors object. A field error on `field` gets the code `[code]field`; one
/// with an empty field is a general error with the code `[code]`.
pub fn fusionauth_errors(fields: &[WireFieldError]) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_url_errors_name_the_field_and_the_way_out() {
        let e = |reason| FieldError::new(Field::WebhookUrl, reason);
        let w = workos_field_error(&e(Reason::InsecureScheme));
        assert_eq!(
            (w.field.as_str(), w.code.as_str()),
            ("url", "insecure_scheme")
        );
        assert!(
            w.message.contains("https") && w.message.contains("--allow-insecure"),
            "{}",
            w.message
        );
        let w = workos_field_error(&e(Reason::ForbiddenAddress));
        assert_eq!(w.code, "forbidden_address");
        assert!(
            w.message.contains("private") && w.message.contains("--allow-insecure"),
            "{}",
            w.message
        );
        let w = workos_field_error(&e(Reason::Credentials));
        assert_eq!(w.code, "credentials");
        assert!(w.message.contains("password"), "{}", w.message);
        let f = fusionauth_field_error(&e(Reason::ForbiddenAddress));
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("url", "forbiddenAddress")
        );
    }

    #[test]
    fn check_url_refusals_render_as_validation_errors() {
        let Err(CoreError::Validation(fields)) =
            mfad_core::webhooks::policy::check_url("https://169.254.169.254/latest", false)
        else {
            panic!("the metadata address must be refused");
        };
        let wire: Vec<_> = fields.iter().map(workos_field_error).collect();
        assert_eq!(wire.len(), 1);
        assert_eq!(wire[0].field, "url");
        assert_eq!(wire[0].code, "forbidden_address");
    }
}
