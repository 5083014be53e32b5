//! `GET /health` (liveness): 200 while the database answers its periodic probe, 503
//! otherwise. Reading a flag rather than querying per request keeps health checks from
//! loading the database, and makes this route the HTTP floor in benchmarks.
//!
//! `GET /ready` (readiness): 200 only when the database answers now and every embedded
//! migration is applied; else 503 with the reason, so a load balancer or orchestrator
//! sends no traffic to a node whose schema is behind its code (an upgrade in progress).

use std::sync::atomic::Ordering;
use std::time::Duration;

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
    vec![
        routes!(health),
        routes!(ready),
        routes!(crate::openapi::openapi_json),
    ]
}

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The status body of health and readiness.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` / `ready`, or `unavailable` / `not_ready`.
    pub status: String,
    /// Why not ready.
    #[schema(required = false)]
    pub reason: Option<String>,
}

fn not_ready(reason: String) -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"status": "not_ready", "reason": reason}),
    )
}

/// Readiness: 200 when the database answers and its schema is current.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "Operations",
    operation_id = "ready",
    responses(
        (status = 200, description = "Ready: the database answers and every migration is applied.", body = Status),
        (status = 503, description = "Not ready; `reason` says why.", body = Status),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let pending =
        tokio::time::timeout(READY_TIMEOUT, state.service.store().pending_migrations()).await;
    match pending {
        Ok(Ok(p)) if p.is_empty() => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Ok(Ok(p)) => not_ready(format!(
            "{} database migration(s) not applied (versions {}); run `mfad migrate`",
            p.len(),
            p.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: cannot read the migration state");
            not_ready("the database did not answer, or was never migrated".into())
        }
        Err(_) => not_ready(format!(
            "the database did not answer within {} s",
            READY_TIMEOUT.as_secs()
        )),
    }
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
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        json_response(StatusCode::OK, &json!({"status": "ok"}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable"}),
        )
    }
}
