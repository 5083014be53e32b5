//! WorkOS user-management factors: `POST` and `GET /user_management/users/{id}/auth_factors`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mfad_core::error::{CoreError, Entity};
use mfad_core::model::{FactorType, Order};
use mfad_core::service::{ListRequest, NewFactor};
use mfad_core::{FactorId, UserId};
use serde_json::json;

use super::factors::{factor_type, new_factor};
use super::{schema, wire};
use crate::error::{WireFieldError, WorkosError, json_response};
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
    let present = |k: &str| {
        params
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty() && *v != "null" && *v != "undefined")
    };
    for k in params.keys() {
        if !matches!(k.as_str(), "limit" | "before" | "after" | "order") {
            fields.push(WireFieldError::new(
                k,
                "unknown",
                format!("property {k} should not exist"),
            ));
        }
    }
    let limit = match present("limit") {
        None => 10,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                fields.push(WireFieldError::new(
                    "limit",
                    "invalid",
                    "limit must be an integer between 1 and 100",
                ));
                10
            }
        },
    };
    let order = match present("order") {
        None | Some("desc") => Order::Desc,
        Some("asc" | "normal") => Order::Asc,
        Some(_) => {
            fields.push(WireFieldError::new(
                "order",
                "invalid",
                "order must be one of: asc, desc, normal",
            ));
            Order::Desc
        }
    };
    let mut cursor = |k: &str| match present(k) {
        None => None,
        Some(v) => {
            let id = FactorId::parse(v);
            if id.is_none() {
                fields.push(WireFieldError::new(
                    k,
                    "invalid",
                    format!("{k} must be an authentication factor id"),
                ));
            }
            id
        }
    };
    let before = cursor("before");
    let after = cursor("after");
    fields.finish()?;
    let page = state
        .service
        .list_user_factors(
            &tenant,
            &user_id,
            &ListRequest {
                limit,
                order,
                before,
                after,
            },
        )
        .await?;
    Ok(json_response(StatusCode::OK, &wire::factor_list(&page)))
}
