//! The API contract: an OpenAPI 3.1 document generated from the handlers, served at
//! `GET /openapi.json` and checked in as `docs/openapi.json`.
//!
//! The router and the document are built from the same list ([`crate::routes`] folds
//! `utoipa_axum::routes!(…)` entries into one `OpenApiRouter`), so a route cannot be served
//! without being documented, nor documented at a path it is not served on. The request and
//! response schemas are the documentation-only types of `routes::*::schema`; CI's
//! schemathesis run (`scripts/schemathesis.sh`) checks every answer of the running binary
//! against them, and `tests/it/ops/openapi.rs` compares the document with the
//! checked-in copy.
//!
//! # How to add a route to the contract
//!
//! 1. Put `#[utoipa::path(METHOD, path = "/…", tag = …, operation_id = …,
//!    request_body = …, params(…), responses(…), security(…))]` on the handler. Use the
//!    upstream SDK's method name as `operation_id`, list **every** status the handler (and
//!    the edge before it) can answer, and add the error set of its API:
//!    [`WorkosErrors`] or [`FusionAuthErrors`] (plus the statuses peculiar to the route).
//! 2. Describe bodies with `ToSchema` types in the API's `schema.rs` (fields exactly as
//!    on the wire; optional fields as `Option`, never `required` unless always present)
//!    and add them to `components(schemas(…))` in [`ApiDoc`] if they are only named by
//!    reference.
//! 3. Register the handler with `routes!(module::handler, …)` in the API's `routes()`
//!    (handlers of one path go in the same `routes!`).
//! 4. Regenerate the snapshot: `MFAD_UPDATE_OPENAPI=1 cargo nextest run -p mfad-server
//!    --test it -E 'test(/openapi/)'`, and review the diff of `docs/openapi.json`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::error::json_response;
use crate::routes::fusionauth::schema as fa;
use crate::routes::workos::schema as wo;

/// Security scheme of the WorkOS API: `Authorization: Bearer sk_…`.
pub const WORKOS_KEY: &str = "workos_api_key";
/// Security scheme of the FusionAuth API key: the raw key in `Authorization`.
pub const FUSIONAUTH_KEY: &str = "fusionauth_api_key";
/// Security scheme of FusionAuth JWTs: `Authorization: Bearer <jwt>`.
pub const JWT: &str = "jwt";

/// The document's fixed parts: info, tags, security schemes, shared schemas.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "mfad",
        description = "A self-hosted MFA service speaking the WorkOS MFA API and the FusionAuth Two Factor API. Contracts in docs/contracts/.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(wo::WorkosError, wo::WorkosValidationError, fa::FusionAuthErrors)),
    tags(
        (name = "WorkOS", description = "The WorkOS MFA API (docs/contracts/workos.md)."),
        (name = "FusionAuth", description = "The FusionAuth Two Factor API (docs/contracts/fusionauth.md)."),
        (name = "Operations", description = "Health, readiness, the contract and metrics (docs/OPERATIONS.md)."),
    )
)]
pub struct ApiDoc;

/// Adds the three ways to authenticate.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            WORKOS_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An mfad API key (`mfad api-key create`) as a Bearer token.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            FUSIONAUTH_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "An mfad API key, raw (no scheme), as FusionAuth clients send it.",
            ))),
        );
        components.add_security_scheme(
            JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT verified against the tenant's keys (`mfad jwt-key add`); its `sub` is the user.",
                    ))
                    .build(),
            ),
        );
    }
}

fn response(description: &str, schema: Option<&str>) -> RefOr<utoipa::openapi::Response> {
    let mut b = ResponseBuilder::new().description(description);
    if let Some(name) = schema {
        b = b.content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(name)))
                .build(),
        );
    }
    RefOr::T(b.build())
}

/// The answers every WorkOS route can give besides its own: no or a bad key, bad fields,
/// the request's edge limits (body size and time, rate limits), an unavailable database.
#[derive(Debug)]
pub struct WorkosErrors;

impl IntoResponses for WorkosErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let e = Some("WorkosError");
        BTreeMap::from([
            (
                "400".into(),
                response("The request body could not be read.", e),
            ),
            (
                "401".into(),
                response("No API key, or an unknown or revoked one.", e),
            ),
            (
                "408".into(),
                response("The request body did not arrive in time.", e),
            ),
            ("413".into(), response("The request body is too large.", e)),
            (
                "422".into(),
                response("Invalid fields.", Some("WorkosValidationError")),
            ),
            (
                "429".into(),
                response(
                    "Rate limited (per key or per address); see `Retry-After`.",
                    e,
                ),
            ),
        ])
    }
}

/// The answers every FusionAuth route can give besides its own: FusionAuth's Errors
/// object on 400, empty bodies for 401, 408, 413 and 429, as FusionAuth answers.
#[derive(Debug)]
pub struct FusionAuthErrors;

impl IntoResponses for FusionAuthErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        BTreeMap::from([
            (
                "400".into(),
                response(
                    "Invalid fields or tenant (FusionAuth's Errors object).",
                    Some("FusionAuthErrors"),
                ),
            ),
            (
                "401".into(),
                response(
                    "No credentials, or an unknown key or JWT. Empty body.",
                    None,
                ),
            ),
            (
                "408".into(),
                response("The request body did not arrive in time. Empty body.", None),
            ),
            (
                "413".into(),
                response("The request body is too large. Empty body.", None),
            ),
            (
                "429".into(),
                response("Rate limited; see `Retry-After`. Empty body.", None),
            ),
        ])
    }
}

/// The whole document, as the router is built.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = crate::routes::api().into_openapi();
    IdempotentPosts.modify(&mut doc);
    doc
}

/// Every POST honours `Idempotency-Key` (`crate::idempotency`, a layer rather than a
/// handler, so it is added here once): the optional header, and the answers it adds — 409
/// while the first request with the key still runs, 422 when the key was used for another
/// request (400 for a malformed key is in each API's error set already).
#[derive(Debug)]
struct IdempotentPosts;

impl Modify for IdempotentPosts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};

        for item in openapi.paths.paths.values_mut() {
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            let workos = op.tags.iter().flatten().any(|t| t == "WorkOS");
            let header = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retry safe: a repeat with the same key and request replays the \
                     first answer (docs/contracts/workos.md §8).",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(mfad_core::idempotency::MAX_KEY_LEN)),
                ))
                .build();
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(header));
            let errors = if workos {
                "WorkosError"
            } else {
                "FusionAuthErrors"
            };
            let responses = &mut op.responses.responses;
            responses.entry("409".into()).or_insert_with(|| {
                response(
                    "A request with this Idempotency-Key is still running; see `Retry-After`.",
                    Some(errors),
                )
            });
            let invalid = if workos {
                "WorkosValidationError"
            } else {
                "FusionAuthErrors"
            };
            responses.entry("422".into()).or_insert_with(|| {
                response(
                    "This Idempotency-Key was used for another request.",
                    Some(invalid),
                )
            });
        }
    }
}

/// `GET /openapi.json`: this server's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "Operations",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of both APIs.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    match serde_json::to_value(document()) {
        Ok(doc) => json_response(StatusCode::OK, &doc),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({"code": "internal_error", "message": "An internal error occurred."}),
            )
        }
    }
}
