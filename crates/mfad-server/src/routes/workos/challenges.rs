//! WorkOS challenges: `POST /auth/factors/{id}/challenge` and
//! `POST /auth/challenges/{id}/verify`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{schema, wire};
use crate::error::{WorkosError, json_response};
use crate::extract::{BearerTenant, Fields, JsonObject};
use crate::openapi::WorkosErrors;
use crate::state::AppState;

/// `POST /auth/factors/{id}/challenge`: WorkOS's `challengeFactor`. Texts a code for SMS
/// factors (optional `sms_template` with `{{code}}`); returns the code for generic OTP.
#[utoipa::path(
    post,
    path = "/auth/factors/{id}/challenge",
    tag = "WorkOS",
    operation_id = "challengeFactor",
    params(("id" = String, Path, description = "`auth_factor_…`")),
    request_body(content = schema::ChallengeFactor, description = "Optional; an empty body is `{}`."),
    responses(
        (status = 201, description = "The challenge; `code` for generic OTP.", body = schema::AuthenticationChallenge),
        (status = 404, description = "No such factor in the key's tenant.", body = schema::WorkosError),
        (status = 502, description = "The SMS provider refused the message.", body = schema::WorkosError),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn challenge(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, WorkosError> {
    let mut fields = Fields::default();
    let template = fields.take(body.opt_str("sms_template")).flatten();
    fields.finish()?;
    let issued = state
        .service
        .challenge(&tenant, &id, template.as_deref())
        .await?;
    let code = issued.code.as_ref().map(|c| c.as_str());
    Ok(json_response(
        StatusCode::CREATED,
        &wire::challenge(&issued.challenge, code),
    ))
}

/// `POST /auth/challenges/{id}/verify`: WorkOS's `verifyChallenge`. 201 with
/// `{challenge, valid}`; a wrong code is `valid: false`, not an error. A generic OTP
/// challenge carries its `code` back, as WorkOS's recorded response does; only when the
/// code was right, since mfad keeps just its digest and the submitted code is then it.
#[utoipa::path(
    post,
    path = "/auth/challenges/{id}/verify",
    tag = "WorkOS",
    operation_id = "verifyChallenge",
    params(("id" = String, Path, description = "`auth_challenge_…`")),
    request_body = schema::VerifyChallenge,
    responses(
        (status = 201, description = "Judged: `valid` says whether the code was right.", body = schema::VerifyResponse),
        (status = 400, description = "Too many attempts on this challenge (`one_time_code_too_many_attempts`), or an unreadable body.", body = schema::WorkosError),
        (status = 404, description = "No such challenge in the key's tenant.", body = schema::WorkosError),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, WorkosError> {
    let mut fields = Fields::default();
    let code = fields.take(body.req_str("code"));
    fields.finish()?;
    let code = code.unwrap_or_default();
    let v = state.service.verify(&tenant, &id, &code).await?;
    let echoed = (v.valid && wire::shows_code(v.factor_type)).then_some(code.as_str());
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"challenge": wire::challenge(&v.challenge, echoed), "valid": v.valid}),
    ))
}
