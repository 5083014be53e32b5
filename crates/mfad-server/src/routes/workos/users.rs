//! WorkOS user-management factors: `POST` and `GET /user_management/users/{id}/auth_factors`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mfad_core::error::{CoreError, Entity};
use mfad_core::model::FactorType;
use mfad_core::service::{ListRequest, NewFactor};
use mfad_core::{FactorId, UserId};
use serde_json::json;

use super::factors::{factor_type, new_factor};
use super::list::{list_page, refuse_unknown, set};
use super::{schema, wire};
use crate::error::{WorkosError, json_response};
use crate::extract::{BearerTenant, Fields, JsonObject};
use crate::openapi::WorkosErrors;
use crate::state::AppState;

fn user(id: &str) -> Result<UserId, CoreError> {
    UserId::parse(id).ok_or_else(|| CoreError::not_found(Entity::User, id))
}

/// `POST /user_management/users/{id}/auth_factors`: WorkOS's `createUserAuthFactor`.
/// TOTP only; issuer and account name default to the tenant's `mfad` and the user id;
/// `totp_secret` imports an existing secret. Returns the factor (with secrets) and its
/// first challenge, created together.
#[utoipa::path(
    post,
    path = "/user_management/users/{user_id}/auth_factors",
    tag = "WorkOS",
    operation_id = "createUserAuthFactor",
    params(("user_id" = String, Path, description = "The application's user id.")),
    request_body = schema::CreateUserAuthFactor,
    responses(
        (status = 201, description = "The factor (with secrets) and its first challenge.", body = schema::UserAuthFactorResponse),
        (status = 404, description = "Not a valid user id.", body = schema::WorkosError),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn enroll(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Path(user_id): Path<String>,
    body: JsonObject,
) -> Result<Response, WorkosError> {
    let user_id = user(&user_id)?;
    let mut fields = Fields::default();
    let kind = factor_type(&body, &mut fields, &[FactorType::Totp]);
    let new = kind.and_then(|k| new_factor(&body, &mut fields, k));
    fields.finish()?;
    let new = match new {
        Some(NewFactor::Totp {
            issuer,
            user,
            secret,
        }) => NewFactor::Totp {
            issuer: if issuer.is_empty() {
                "mfad".into()
            } else {
                issuer
            },
            user: if user.is_empty() {
                user_id.as_str().to_owned()
            } else {
                user
            },
            secret,
        },
        _ => return Err(CoreError::Internal("enrollment fields missing".into()).into()),
    };
    let (enrolled, challenge) = state
        .service
        .enroll_with_challenge(&tenant, user_id, new)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "authentication_factor": wire::factor(&enrolled.factor, enrolled.totp.as_ref()),
            "authentication_challenge": wire::challenge(&challenge, None),
        }),
    ))
}

/// `GET /user_management/users/{id}/auth_factors`: WorkOS's `listUserAuthFactors`, with
/// `limit` (1–100, default 10), `before`, `after` and `order` (`desc` default, `asc`,
/// `normal` = `asc`). Unknown parameters are refused, as production does.
#[utoipa::path(
    get,
    path = "/user_management/users/{user_id}/auth_factors",
    tag = "WorkOS",
    operation_id = "listUserAuthFactors",
    params(("user_id" = String, Path, description = "The application's user id."), schema::ListQuery),
    responses(
        (status = 200, description = "A page of the user's factors.", body = schema::FactorList),
        (status = 404, description = "Not a valid user id.", body = schema::WorkosError),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Path(user_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, WorkosError> {
    let user_id = user(&user_id)?;
    let mut fields = Fields::default();
    let present = |k: &str| set(params.get(k));
    refuse_unknown(
        params.keys(),
        &["limit", "before", "after", "order"],
        &mut fields,
    );
    let paging = list_page(
        present,
        FactorId::parse,
        "an authentication factor id",
        &mut fields,
    );
    fields.finish()?;
    let page = state
        .service
        .list_user_factors(
            &tenant,
            &user_id,
            &ListRequest {
                limit: paging.limit,
                order: paging.order,
                before: paging.before,
                after: paging.after,
            },
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &wire::list(&page, |f| wire::factor(f, None)),
    ))
}
