//! WorkOS `/auth/factors`: enroll, get, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mfad_core::UserId;
use mfad_core::error::CoreError;
use mfad_core::model::FactorType;
use mfad_core::service::NewFactor;
use mfad_crypto::Zeroizing;

use super::{schema, wire};
use crate::error::{WireFieldError, WorkosError, json_response};
use crate::extract::{BearerTenant, Fields, JsonObject};
use crate::openapi::WorkosErrors;
use crate::state::AppState;

/// Reads the factor fields shared by both enrollment endpoints. Fields that do not
/// apply to the chosen type are ignored, as WorkOS does.
pub(super) fn new_factor(
    body: &JsonObject,
    fields: &mut Fields,
    kind: FactorType,
) -> Option<NewFactor> {
    match kind {
        FactorType::Totp => {
            let issuer = fields.take(body.opt_str("totp_issuer"));
            let user = fields.take(body.opt_str("totp_user"));
            let secret = fields.take(body.opt_str("totp_secret"));
            Some(NewFactor::Totp {
                issuer: issuer.flatten().unwrap_or_default(),
                user: user.flatten().unwrap_or_default(),
                secret: secret.flatten().map(Zeroizing::new),
            })
        }
        FactorType::Sms => fields
            .take(body.req_str("phone_number"))
            .map(|phone_number| NewFactor::Sms { phone_number }),
        FactorType::GenericOtp => Some(NewFactor::GenericOtp),
        // Not a WorkOS type: `factor_type` never lets it through.
        FactorType::Email => None,
    }
}

/// Reads `type`, listing the accepted values on error.
pub(super) fn factor_type(
    body: &JsonObject,
    fields: &mut Fields,
    allowed: &[FactorType],
) -> Option<FactorType> {
    let names: Vec<&str> = allowed.iter().map(|t| wire::factor_type(*t)).collect();
    let raw = fields.take(body.req_str("type"))?;
    match wire::parse_factor_type(&raw).filter(|t| allowed.contains(t)) {
        Some(t) => Some(t),
        None => {
            fields.push(WireFieldError::new(
                "type",
                "invalid",
                format!("type must be one of: {}", names.join(", ")),
            ));
            None
        }
    }
}

/// `POST /auth/factors/enroll`: WorkOS's `enrollFactor`. 201 with the factor; for TOTP
/// the only response that ever carries `secret`, `qr_code` and `uri`.
#[utoipa::path(
    post,
    path = "/auth/factors/enroll",
    tag = "WorkOS",
    operation_id = "enrollFactor",
    request_body = schema::EnrollFactor,
    responses(
        (status = 201, description = "The factor; for TOTP with `secret`, `qr_code` and `uri`.", body = schema::AuthenticationFactor),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn enroll(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    body: JsonObject,
) -> Result<Response, WorkosError> {
    let mut fields = Fields::default();
    let kind = factor_type(
        &body,
        &mut fields,
        &[FactorType::Totp, FactorType::Sms, FactorType::GenericOtp],
    );
    let user_id = match fields.take(body.opt_str("user_id")).flatten() {
        Some(u) => match UserId::parse(&u) {
            Some(id) => Some(id),
            None => {
                fields.push(WireFieldError::new(
                    "user_id",
                    "invalid",
                    "user_id is not a valid identifier",
                ));
                None
            }
        },
        None => None,
    };
    let new = kind.and_then(|k| new_factor(&body, &mut fields, k));
    fields.finish()?;
    let new = new.ok_or_else(|| CoreError::Internal("enrollment fields missing".into()))?;
    let enrolled = state.service.enroll(&tenant, user_id, new).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &wire::factor(&enrolled.factor, enrolled.totp.as_ref()),
    ))
}

/// `GET /auth/factors/{id}`: WorkOS's `getFactor`, without secrets.
#[utoipa::path(
    get,
    path = "/auth/factors/{id}",
    tag = "WorkOS",
    operation_id = "getFactor",
    params(("id" = String, Path, description = "`auth_factor_…`")),
    responses(
        (status = 200, description = "The factor, without secrets.", body = schema::AuthenticationFactor),
        (status = 404, description = "No such factor in the key's tenant.", body = schema::WorkosError),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Path(id): Path<String>,
) -> Result<Response, WorkosError> {
    let factor = state.service.get_factor(&tenant, &id).await?;
    Ok(json_response(StatusCode::OK, &wire::factor(&factor, None)))
}

/// `DELETE /auth/factors/{id}`: WorkOS's `deleteFactor`, 204 with no body.
#[utoipa::path(
    delete,
    path = "/auth/factors/{id}",
    tag = "WorkOS",
    operation_id = "deleteFactor",
    params(("id" = String, Path, description = "`auth_factor_…`")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such factor in the key's tenant.", body = schema::WorkosError),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Path(id): Path<String>,
) -> Result<Response, WorkosError> {
    state.service.delete_factor(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
