//! HTTP routing: one module per emulated API, plus health.

pub mod fusionauth;
pub mod health;
pub mod workos;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::error::json_response;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// The whole application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(workos::router())
        .merge(fusionauth::router())
        .merge(health::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Oversized bodies fail the body extractor, which answers in the API's own shape.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        // Every response carries `X-Request-Id` (the caller's, or a new UUID), which the
        // SDKs surface on errors.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(CatchPanicLayer::custom(|_| {
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"message": "An internal error occurred.", "code": "internal_error"}),
            )
        }))
        .with_state(state)
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"message": "Not found", "code": "not_found"}),
    )
}

async fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"message": "Method not allowed", "code": "method_not_allowed"}),
    )
    .into_response()
}
