//! `GET /health`: 200 while the database answers its periodic probe, 503 otherwise.
//! Reading a flag rather than querying per request keeps health checks from loading the
//! database, and makes this route the HTTP floor in benchmarks.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::error::json_response;
use crate::state::AppState;

/// The operations routes: health and the contract.
pub fn routes() -> Vec<UtoipaMethodRouter<AppState>> {
    vec![routes!(health), routes!(crate::openapi::openapi_json)]
}

/// The status body of health and readiness.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok`, or why not.
    pub status: String,
}

/// Liveness: 200 while the database answered its last probe.
#[utoipa::path(
    get,
    path = "/health",
    tag = "Operations",
    operation_id = "health",
    responses(
        (status = 200, description = "Live.", body = Status),
        (status = 503, description = "The database did not answer its last probe.", body = Status),
    )
)]
async fn health(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        json_response(StatusCode::OK, &json!({"status": "ok"}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable"}),
        )
    }
}
