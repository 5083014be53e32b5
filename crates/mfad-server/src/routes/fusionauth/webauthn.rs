//! FusionAuth's WebAuthn API (passkeys), as the 1.69 clients call it:
//! `startWebAuthnRegistration` / `completeWebAuthnRegistration`, `startWebAuthnLogin` /
//! `completeWebAuthnAssertion` / `completeWebAuthnLogin`, `retrieveWebAuthnCredential(s…)`,
//! `deleteWebAuthnCredential(s…)` and `importWebAuthnCredential`. The contract is in
//! `docs/contracts/webauthn.md`; every ceremony rule is the domain's
//! ([`mfad_core::webauthn`]), these handlers only translate.
//!
//! Binary fields travel base64url-encoded, as FusionAuth documents; padded or standard
//! base64 is accepted and normalised.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;
use mfad_core::error::{CoreError, Entity};
use mfad_core::webauthn::{
    AuthenticationStart, Claimed, ImportedPasskey, PasskeyCredential, PasskeyId, RegistrationStart,
    Workflow,
};
use mfad_core::{TenantId, UserId};
use serde_json::{Map, Value, json};
use webauthn_rs::prelude::{
    AttestationFormat, Credential, ParsedAttestation, PublicKeyCredential,
    RegisterPublicKeyCredential,
};
use webauthn_rs_proto::{AuthenticatorTransport, RegisteredExtensions, UserVerificationPolicy};

use super::auth::{ApiKeyTenant, TenantHint};
use super::body::{FaBody, FaQuery, id_field, user_id};
use super::login::LoginResponse;
use super::schema;
use super::webauthn_key::{IMPORTABLE, cose_from_pem, pem_from_cose};
use super::webauthn_schema as ws;
use super::wire::{empty_ok, instant, json_ok};
use crate::error::{FusionAuthError, WireFieldError};
use crate::extract::Fields;
use crate::openapi::FusionAuthErrors;
use crate::state::AppState;

/// The tenant of a call FusionAuth documents as unauthenticated but whose client sends
/// the API key anyway (`completeWebAuthnRegistration`): the key's tenant when a key
/// comes (and it must be valid), else the `X-FusionAuth-TenantId` hint.
#[derive(Debug, Clone)]
pub struct KeyOrHint(pub Option<TenantId>);

impl FromRequestParts<AppState> for KeyOrHint {
    type Rejection = FusionAuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            let ApiKeyTenant(t) = ApiKeyTenant::from_request_parts(parts, state).await?;
            return Ok(KeyOrHint(Some(t)));
        }
        let TenantHint(t) = TenantHint::from_request_parts(parts, state).await?;
        Ok(KeyOrHint(t))
    }
}

fn workflow(fields: &mut Fields, raw: Option<String>) -> Option<Workflow> {
    match raw.as_deref().map(Workflow::parse) {
        Some(Some(w)) => Some(w),
        Some(None) => {
            fields.push(WireFieldError::new(
                "workflow",
                "invalid",
                "workflow must be bootstrap, general or reauthentication",
            ));
            None
        }
        None => {
            fields.push(WireFieldError::new(
                "workflow",
                "blank",
                "workflow is required",
            ));
            None
        }
    }
}

/// A base64 or base64url string, padded or not, as unpadded base64url.
fn base64url(s: &str) -> String {
    s.trim()
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// The `credential` object as the W3C/`webauthn-rs` JSON: base64url normalised, `rawId`
/// from `id` (FusionAuth's requests carry only `id`), registration `transports` moved
/// into `response`.
/// `[invalid]credential`: not a PublicKeyCredential.
fn invalid_credential() -> WireFieldError {
    WireFieldError::new(
        "credential",
        "invalid",
        "credential must be the PublicKeyCredential from the WebAuthn JavaScript API",
    )
}

fn credential_json(body: &FaBody, binary: &[&str]) -> Result<Value, WireFieldError> {
    let Some(Value::Object(c)) = body.0.get("credential") else {
        return Err(match body.0.get("credential") {
            None | Some(Value::Null) => {
                WireFieldError::new("credential", "blank", "credential is required")
            }
            Some(_) => invalid_credential(),
        });
    };
    let mut c = c.clone();
    let id = match c.get("id").or_else(|| c.get("rawId")) {
        Some(Value::String(s)) if !s.is_empty() => base64url(s),
        _ => return Err(invalid_credential()),
    };
    c.insert("id".into(), Value::String(id.clone()));
    c.insert("rawId".into(), Value::String(id));
    c.entry("type")
        .or_insert_with(|| Value::String("public-key".into()));
    c.remove("rpId");
    let transports = c.remove("transports");
    let Some(Value::Object(resp)) = c.get_mut("response") else {
        return Err(invalid_credential());
    };
    for k in binary {
        match resp.get_mut(*k) {
            Some(Value::String(s)) => *s = base64url(s),
            Some(Value::Null) | None if *k == "userHandle" => {}
            _ => return Err(invalid_credential()),
        }
    }
    if let Some(t) = transports {
        resp.entry("transports").or_insert(t);
    }
    Ok(Value::Object(c))
}

fn claimed(fields: &mut Fields, body: &FaBody) -> Claimed {
    Claimed {
        origin: fields.take(body.str("origin")).flatten(),
        rp_id: fields.take(body.str("rpId")).flatten(),
    }
}

/// FusionAuth's `WebAuthnCredential`, `publicKey` as PEM SPKI from the stored COSE key.
fn wire_credential(c: &PasskeyCredential) -> Value {
    let mut out = Map::new();
    let public_key = serde_json::from_str::<Credential>(&c.credential)
        .ok()
        .and_then(|k| pem_from_cose(&k.cred));
    if let Some(pem) = public_key {
        out.insert("publicKey".into(), pem.into());
    }
    // The COSE number, as FusionAuth writes it (`"algorithm": -7`).
    out.insert("algorithm".into(), c.algorithm.into());
    // FusionAuth's AttestationType: what the statement proved, not its format.
    let attestation = if c.attestation_type == "none" {
        "none"
    } else {
        "basic"
    };
    out.insert("attestationType".into(), attestation.into());
    out.insert(
        "authenticatorSupportsUserVerification".into(),
        c.user_verified.into(),
    );
    out.insert("credentialId".into(), c.credential_id.as_str().into());
    out.insert("data".into(), json!({}));
    out.insert("discoverable".into(), c.backup_eligible.into());
    if let Some(d) = &c.display_name {
        out.insert("displayName".into(), d.as_str().into());
    }
    out.insert("id".into(), c.id.as_str().into());
    out.insert("insertInstant".into(), instant(c.created_at).into());
    out.insert(
        "lastUseInstant".into(),
        instant(c.last_used_at.unwrap_or(c.created_at)).into(),
    );
    if let Some(n) = &c.name {
        out.insert("name".into(), n.as_str().into());
    }
    out.insert("relyingPartyId".into(), c.rp_id.as_str().into());
    out.insert("signCount".into(), c.sign_count.into());
    out.insert("tenantId".into(), c.tenant_id.as_uuid().into());
    out.insert("transports".into(), c.transports.clone().into());
    if let Some(a) = &c.user_agent {
        out.insert("userAgent".into(), a.as_str().into());
    }
    out.insert("userId".into(), c.user_id.as_str().into());
    Value::Object(out)
}

fn options_json<T: serde::Serialize>(public_key: &T) -> Result<Response, FusionAuthError> {
    let options = serde_json::to_value(public_key)
        .map_err(|e| CoreError::Internal(format!("serialising WebAuthn options: {e}")))?;
    Ok(json_ok(&json!({ "options": options })))
}

/// `POST /api/webauthn/register/start`: FusionAuth's `startWebAuthnRegistration`. Body:
/// `userId`, `workflow` (`bootstrap` | `general` | `reauthentication`) and `displayName`
/// required; `name` (default: the user id) and `userAgent` optional. Answers
/// `{"options": PublicKeyCredentialCreationOptions}` for `navigator.credentials.create()`,
/// with a single-use challenge bound to the tenant and user. 400
/// `[WebAuthnNotConfigured]` until `mfad webauthn config` has set the tenant's relying party.
#[utoipa::path(
    post,
    path = "/api/webauthn/register/start",
    tag = "FusionAuth WebAuthn",
    operation_id = "startWebAuthnRegistration",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = ws::RegisterStartRequest,
    responses(
        (status = 200, description = "Creation options for navigator.credentials.create().", body = ws::OptionsResponse),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn register_start(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let raw_user = fields.take(body.str("userId")).flatten();
    let user = user_id(&mut fields, raw_user, true);
    let raw_workflow = fields.take(body.str("workflow")).flatten();
    let workflow = workflow(&mut fields, raw_workflow);
    let display_name = fields.take(body.str("displayName")).flatten();
    if display_name.is_none() {
        fields.push(WireFieldError::new(
            "displayName",
            "blank",
            "displayName is required",
        ));
    }
    let name = fields.take(body.str("name")).flatten();
    let user_agent = fields.take(body.str("userAgent")).flatten();
    fields.finish()?;
    let (Some(user), Some(workflow), Some(display_name)) = (user, workflow, display_name) else {
        return Err(CoreError::Internal("register start fields missing".into()).into());
    };
    let ccr = state
        .service
        .passkey_registration_start(
            &tenant,
            RegistrationStart {
                user,
                workflow,
                name,
                display_name,
                user_agent,
            },
        )
        .await?;
    options_json(&ccr.public_key)
}

/// `POST /api/webauthn/register/complete`: FusionAuth's `completeWebAuthnRegistration`.
/// Body: `credential` (the PublicKeyCredential from `navigator.credentials.create()`,
/// binary fields base64url), `origin` and `rpId` (checked against the tenant's allow-list,
/// never trusted instead of the signed client data), `userId` (if given, must be the
/// ceremony's). Answers `{"credential": WebAuthnCredential}`. 400 with the failing field
/// for a replayed, expired or foreign challenge, a wrong origin or rp id, or a response
/// that does not verify.
#[utoipa::path(
    post,
    path = "/api/webauthn/register/complete",
    tag = "FusionAuth WebAuthn",
    operation_id = "completeWebAuthnRegistration",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; if sent, must be the ceremony's.")),
    request_body = ws::CompleteRequest,
    responses(
        (status = 200, description = "The registered passkey.", body = ws::CredentialResponse),
        FusionAuthErrors,
    ),
    security((), ("fusionauth_api_key" = []))
)]
pub async fn register_complete(
    State(state): State<AppState>,
    KeyOrHint(tenant): KeyOrHint,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let raw_user = fields.take(body.str("userId")).flatten();
    let user = user_id(&mut fields, raw_user, false);
    let claimed = claimed(&mut fields, &body);
    let credential = fields.take(credential_json(
        &body,
        &["attestationObject", "clientDataJSON"],
    ));
    fields.finish()?;
    let response: RegisterPublicKeyCredential = public_key_credential(credential)?;
    let stored = state
        .service
        .passkey_registration_finish(tenant.as_ref(), user.as_ref(), &claimed, &response)
        .await?;
    Ok(json_ok(&json!({ "credential": wire_credential(&stored) })))
}

/// `POST /api/webauthn/start`: FusionAuth's `startWebAuthnLogin`, for both an assertion
/// and a login. Body: `userId` (or `loginId`, read as the user id: mfad does not own
/// users), `workflow` (`bootstrap` | `reauthentication`; `general` accepted, asking
/// user verification only as preferred), optional `credentialId` (only that passkey),
/// `applicationId` and `state` (echoed by `/api/webauthn/login`). Answers `{"options":
/// PublicKeyCredentialRequestOptions}`. 400 `[missing]userId` if the user has no passkey,
/// 404 if `credentialId` is not one of the user's.
#[utoipa::path(
    post,
    path = "/api/webauthn/start",
    tag = "FusionAuth WebAuthn",
    operation_id = "startWebAuthnLogin",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    request_body = ws::StartRequest,
    responses(
        (status = 200, description = "Request options for navigator.credentials.get().", body = ws::OptionsResponse),
        (status = 404, description = "No such passkey in the tenant. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let raw_user = fields
        .take(body.str("userId"))
        .flatten()
        .or(fields.take(body.str("loginId")).flatten());
    let user = user_id(&mut fields, raw_user, true);
    let raw_workflow = fields.take(body.str("workflow")).flatten();
    let workflow = workflow(&mut fields, raw_workflow);
    let raw_credential = fields.take(body.str("credentialId")).flatten();
    let credential = id_field(
        &mut fields,
        "credentialId",
        raw_credential,
        PasskeyId::parse,
        "credentialId must be a UUID",
        false,
    );
    let application_id = fields.take(body.str("applicationId")).flatten();
    let login_state = fields.take(body.object("state")).flatten();
    fields.finish()?;
    let (Some(user), Some(workflow)) = (user, workflow) else {
        return Err(CoreError::Internal("webauthn start fields missing".into()).into());
    };
    let rcr = state
        .service
        .passkey_authentication_start(
            &tenant,
            AuthenticationStart {
                user,
                credential,
                workflow,
                application_id,
                login_state,
            },
        )
        .await?;
    options_json(&rcr.public_key)
}

/// The ceremony's response as webauthn-rs reads it, from the `credential` field that
/// `credential_json` normalised.
fn public_key_credential<T: serde::de::DeserializeOwned>(
    credential: Option<Value>,
) -> Result<T, FusionAuthError> {
    credential
        .and_then(|c| serde_json::from_value(c).ok())
        .ok_or_else(|| invalid_credential().into())
}

async fn asserted(
    state: &AppState,
    tenant: Option<&TenantId>,
    body: &FaBody,
    fields: &mut Fields,
) -> Result<mfad_core::webauthn::Asserted, FusionAuthError> {
    let claimed = claimed(fields, body);
    let credential = fields.take(credential_json(
        body,
        &[
            "authenticatorData",
            "clientDataJSON",
            "signature",
            "userHandle",
        ],
    ));
    std::mem::take(fields).finish()?;
    let response: PublicKeyCredential = public_key_credential(credential)?;
    Ok(state
        .service
        .passkey_assert(tenant, &claimed, &response)
        .await?)
}

/// `POST /api/webauthn/assert`: FusionAuth's `completeWebAuthnAssertion` (re-authentication,
/// the second-factor use): validates the signature without logging the user in. No
/// authentication (the challenge is the credential); `X-FusionAuth-TenantId`, if sent,
/// must be the ceremony's. Body: `credential`, `origin`, `rpId`. Answers
/// `{"credential": WebAuthnCredential}` with the advanced `signCount`. Failures are 400
/// with the failing field, and count against the user under the throttling policy (then
/// 409 `[TooManyFailedAttempts]` / `[UserLocked]`, as for codes).
#[utoipa::path(
    post,
    path = "/api/webauthn/assert",
    tag = "FusionAuth WebAuthn",
    operation_id = "completeWebAuthnAssertion",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; if sent, must be the ceremony's.")),
    request_body = ws::CompleteRequest,
    responses(
        (status = 200, description = "The passkey used, its counter advanced.", body = ws::CredentialResponse),
        (status = 409, description = "Throttled or locked after too many failed assertions; see `Retry-After`.", body = schema::FusionAuthErrors),
        (status = 404, description = "Unknown tenant, user or credential. Empty body."),
        FusionAuthErrors,
    ),
    security(())
)]
pub async fn assert(
    State(state): State<AppState>,
    TenantHint(tenant): TenantHint,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let done = asserted(&state, tenant.as_ref(), &body, &mut fields).await?;
    Ok(json_ok(
        &json!({ "credential": wire_credential(&done.credential) }),
    ))
}

/// `POST /api/webauthn/login`: FusionAuth's `completeWebAuthnLogin`: the assertion of
/// `/api/webauthn/assert`, then the same LoginResponse as `/api/two-factor/login`: `user`
/// (`id`, `tenantId`, `twoFactor.methods`), `state` from start, and `token` /
/// `tokenExpirationInstant` when a signing key is configured and `noJWT` is not set.
#[utoipa::path(
    post,
    path = "/api/webauthn/login",
    tag = "FusionAuth WebAuthn",
    operation_id = "completeWebAuthnLogin",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; if sent, must be the ceremony's.")),
    request_body = ws::CompleteRequest,
    responses(
        (status = 200, description = "Logged in.", body = ws::LoginResponse),
        (status = 409, description = "Throttled or locked after too many failed assertions; see `Retry-After`.", body = schema::FusionAuthErrors),
        (status = 404, description = "Unknown tenant, user or credential. Empty body."),
        FusionAuthErrors,
    ),
    security(())
)]
pub async fn login(
    State(state): State<AppState>,
    TenantHint(tenant): TenantHint,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let no_jwt = fields.take(body.bool("noJWT")).flatten().unwrap_or(false);
    let application_id = fields.take(body.str("applicationId")).flatten();
    let done = asserted(&state, tenant.as_ref(), &body, &mut fields).await?;
    let c = &done.credential;
    let user_methods = state.service.user_methods(&c.tenant_id, &c.user_id).await?;
    let last_used = state
        .service
        .store()
        .last_used_method(&c.tenant_id, &c.user_id)
        .await
        .map_err(CoreError::from)?;
    let app = application_id.or(done.application_id);
    let out = LoginResponse {
        tenant: &c.tenant_id,
        user: &c.user_id,
        methods: &user_methods,
        last_used: last_used.as_ref(),
        used: vec![
            ("method", "webauthn".into()),
            ("credentialId", c.id.as_str().into()),
        ],
        login_state: done.login_state.as_deref(),
        application_id: app.as_deref(),
        no_jwt,
    }
    .render(&state)?;
    Ok(json_ok(&Value::Object(out)))
}

fn passkey_id(raw: &str) -> Result<PasskeyId, FusionAuthError> {
    // An id that is no UUID names nothing: FusionAuth's 404.
    PasskeyId::parse(raw).ok_or_else(|| CoreError::not_found(Entity::Passkey, raw).into())
}

fn query_user(query: &FaQuery) -> Result<UserId, FusionAuthError> {
    let mut fields = Fields::default();
    let user = user_id(&mut fields, query.get("userId"), true);
    fields.finish()?;
    user.ok_or_else(|| CoreError::Internal("userId missing".into()).into())
}

/// `GET /api/webauthn?userId=…`: FusionAuth's `retrieveWebAuthnCredentialsForUser`.
/// Answers `{"credentials": [WebAuthnCredential…]}`, oldest first (empty for a user
/// without passkeys).
#[utoipa::path(
    get,
    path = "/api/webauthn",
    tag = "FusionAuth WebAuthn",
    operation_id = "retrieveWebAuthnCredentialsForUser",
    params(ws::UserQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "The user's passkeys.", body = ws::CredentialsResponse),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    query: FaQuery,
) -> Result<Response, FusionAuthError> {
    let user = query_user(&query)?;
    let creds = state.service.list_passkeys(&tenant, &user).await?;
    let wire: Vec<Value> = creds.iter().map(wire_credential).collect();
    Ok(json_ok(&json!({ "credentials": wire })))
}

/// `DELETE /api/webauthn?userId=…`: FusionAuth's `deleteWebAuthnCredentialsForUser`.
/// 200 with an empty body (also when the user had none).
#[utoipa::path(
    delete,
    path = "/api/webauthn",
    tag = "FusionAuth WebAuthn",
    operation_id = "deleteWebAuthnCredentialsForUser",
    params(ws::UserQuery, ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "Deleted (also when there were none). Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn delete_for_user(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    query: FaQuery,
) -> Result<Response, FusionAuthError> {
    let user = query_user(&query)?;
    state.service.delete_user_passkeys(&tenant, &user).await?;
    Ok(empty_ok())
}

/// `GET /api/webauthn/{id}`: FusionAuth's `retrieveWebAuthnCredential`. Answers
/// `{"credential": WebAuthnCredential}`; 404 (empty) for an id of no passkey of the tenant.
#[utoipa::path(
    get,
    path = "/api/webauthn/{id}",
    tag = "FusionAuth WebAuthn",
    operation_id = "retrieveWebAuthnCredential",
    params(("id" = String, Path, description = "The passkey id (a UUID)."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "The passkey.", body = ws::CredentialResponse),
        (status = 404, description = "No such passkey in the tenant. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(id): Path<String>,
) -> Result<Response, FusionAuthError> {
    let id = passkey_id(&id)?;
    let c = state.service.get_passkey(&tenant, &id).await?;
    Ok(json_ok(&json!({ "credential": wire_credential(&c) })))
}

/// `DELETE /api/webauthn/{id}`: FusionAuth's `deleteWebAuthnCredential`. 200 empty; 404
/// (empty) for an id of no passkey of the tenant.
#[utoipa::path(
    delete,
    path = "/api/webauthn/{id}",
    tag = "FusionAuth WebAuthn",
    operation_id = "deleteWebAuthnCredential",
    params(("id" = String, Path, description = "The passkey id (a UUID)."), ("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "Deleted. Empty body."),
        (status = 404, description = "No such passkey in the tenant. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    Path(id): Path<String>,
) -> Result<Response, FusionAuthError> {
    let id = passkey_id(&id)?;
    state.service.delete_passkey(&tenant, &id).await?;
    Ok(empty_ok())
}

/// One `credentials[i]` of an import, or its field errors.
fn imported(fields: &mut Fields, i: usize, c: &Value) -> Option<ImportedPasskey> {
    let at = |k: &str| format!("credentials[{i}].{k}");
    let text = |k: &str| c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let before = fields.len();
    let id = match text("id") {
        Some(raw) => {
            let id = PasskeyId::parse(raw);
            if id.is_none() {
                fields.push(WireFieldError::new(
                    &at("id"),
                    "invalid",
                    "id must be a UUID",
                ));
            }
            id
        }
        None => None,
    };
    let user = text("userId").and_then(UserId::parse);
    if user.is_none() {
        fields.push(WireFieldError::new(
            &at("userId"),
            "invalid",
            "userId is required and must be a valid user id",
        ));
    }
    let cred_id = match text("credentialId") {
        Some(raw) => {
            let b = data_encoding::BASE64URL_NOPAD
                .decode(base64url(raw).as_bytes())
                .ok();
            if b.is_none() {
                fields.push(WireFieldError::new(
                    &at("credentialId"),
                    "invalid",
                    "credentialId must be base64url",
                ));
            }
            b
        }
        None => {
            fields.push(WireFieldError::new(
                &at("credentialId"),
                "blank",
                "credentialId is required",
            ));
            None
        }
    };
    let key = match (
        c.get("algorithm").and_then(Value::as_i64),
        text("publicKey"),
    ) {
        (None, _) => {
            fields.push(WireFieldError::new(
                &at("algorithm"),
                "blank",
                format!("algorithm is required: {IMPORTABLE}"),
            ));
            None
        }
        (Some(_), None) => {
            fields.push(WireFieldError::new(
                &at("publicKey"),
                "blank",
                "publicKey is required",
            ));
            None
        }
        (Some(alg), Some(pem)) => {
            let k = cose_from_pem(alg, pem);
            if k.is_none() {
                fields.push(WireFieldError::new(
                    &at("publicKey"),
                    "invalid",
                    format!(
                        "publicKey must be a PEM SubjectPublicKeyInfo of the algorithm, one of {IMPORTABLE}"
                    ),
                ));
            }
            k
        }
    };
    let sign_count = match c.get("signCount") {
        None | Some(Value::Null) => Some(0),
        Some(v) => {
            let n = v.as_u64().and_then(|n| u32::try_from(n).ok());
            if n.is_none() {
                fields.push(WireFieldError::new(
                    &at("signCount"),
                    "invalid",
                    "signCount must be a non-negative 32-bit integer",
                ));
            }
            n
        }
    };
    if fields.len() != before {
        return None;
    }
    let uv = c
        .get("authenticatorSupportsUserVerification")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let transports: Vec<AuthenticatorTransport> = c
        .get("transports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| serde_json::from_value(t.clone()).ok())
        .collect();
    let credential = Credential {
        cred_id: cred_id?,
        cred: key?,
        counter: sign_count?,
        transports: Some(transports),
        user_verified: uv,
        backup_eligible: c
            .get("discoverable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        backup_state: false,
        registration_policy: if uv {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Preferred
        },
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    };
    Some(ImportedPasskey {
        id,
        user: user?,
        credential,
        name: text("name").map(str::to_owned),
        display_name: text("displayName").map(str::to_owned),
        rp_id: text("relyingPartyId").map(str::to_owned),
    })
}

/// `POST /api/webauthn/import`: FusionAuth's `importWebAuthnCredential`. Body
/// `{"credentials": [WebAuthnCredential…], "validateDbConstraints"}`; each needs `userId`,
/// `credentialId` (base64url), `algorithm` (COSE) and `publicKey` (PEM SPKI). All or none;
/// 200 with an empty body. mfad always enforces uniqueness, so `validateDbConstraints` is
/// accepted and changes nothing.
#[utoipa::path(
    post,
    path = "/api/webauthn/import",
    tag = "FusionAuth WebAuthn",
    operation_id = "importWebAuthnCredential",
    request_body = ws::ImportRequest,
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the API key's tenant.")),
    responses(
        (status = 200, description = "Imported. Empty body."),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []))
)]
pub async fn import(
    State(state): State<AppState>,
    ApiKeyTenant(tenant): ApiKeyTenant,
    body: FaBody,
) -> Result<Response, FusionAuthError> {
    let mut fields = Fields::default();
    let mut imports = Vec::new();
    match body.0.get("credentials") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                if let Some(p) = imported(&mut fields, i, c) {
                    imports.push(p);
                }
            }
        }
        _ => fields.push(WireFieldError::new(
            "credentials",
            "blank",
            "credentials must be a non-empty list",
        )),
    }
    fields.finish()?;
    state.service.import_passkeys(&tenant, imports).await?;
    Ok(empty_ok())
}
