//! `GET /health`: 200 while the database answers its periodic probe, 503 otherwise.
//! Reading a flag rather than querying per request keeps health checks from loading the
//! database, and makes this route the HTTP floor in benchmarks.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde_json::json;

use crate::error::json_response;
use crate::state::AppState;

/// The health route.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/health", get(health))]
}

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
