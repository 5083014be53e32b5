//! WorkOS challenges: `POST /auth/factors/{id}/challenge` and
//! `POST /auth/challenges/{id}/verify`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::wire;
use crate::error::{WorkosError, json_response};
use crate::extract::{BearerTenant, Fields, JsonObject};
use crate::state::AppState;

/// `POST /auth/factors/{id}/challenge`: WorkOS's `challengeFactor`. Texts a code for SMS
/// factors (optional `sms_template` with `{{code}}`); returns the code for generic OTP.
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
