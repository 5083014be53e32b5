//! HTTP routing: one module per emulated API, plus health.

pub mod fusionauth;
pub mod health;
pub mod workos;

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::json_response;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// Every route of both APIs, health and the contract, with its OpenAPI description:
/// the router and `GET /openapi.json` are both built from this (see [`crate::openapi`]).
pub(crate) fn api() -> OpenApiRouter<AppState> {
    workos::routes()
        .into_iter()
        .chain(fusionauth::routes())
        .chain(health::routes())
        .fold(
            OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi()),
            OpenApiRouter::routes,
        )
}

/// Every route path the application serves (templates with `{param}`s), taken from the
/// list the router is built from, so tests can enumerate routes added later.
pub fn paths() -> Vec<String> {
    api().into_openapi().paths.paths.into_keys().collect()
}

/// The operations listener (`MFAD_ADMIN_LISTEN`): metrics, health and readiness.
pub fn admin(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(crate::metrics::scrape))
        .route("/health", axum::routing::get(health::health))
        .route("/ready", axum::routing::get(health::ready))
        .fallback(crate::edge::not_found)
        .with_state(state)
}

/// The whole application; with `metrics`, `GET /metrics` too (when there is no admin
/// listener). `/metrics` is outside the OpenAPI document: it speaks Prometheus' text
/// format, not JSON, and moves to the admin listener when one is configured.
pub fn app_with_metrics(state: AppState, metrics: bool) -> Router {
    let app = app(state.clone());
    if metrics {
        app.merge(
            Router::new()
                .route("/metrics", axum::routing::get(crate::metrics::scrape))
                .with_state(state),
        )
    } else {
        app
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (router, _) = api().split_for_parts();
    // The layers, outermost first, composed into one: axum boxes each layer it is given
    // around every route, and a request clones each box and every box inside it, so five
    // layers given one by one cost ~15 boxed clones per request (docs/BENCHMARKS.md,
    // "The HTTP floor").
    let layers = tower::ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(|_| {
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"message": "An internal error occurred.", "code": "internal_error"}),
            )
        }))
        // Every response carries `X-Request-Id` (the caller's, or a new UUID), which the
        // SDKs surface on errors.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        // One span per request with its X-Request-Id, route template and status, so every
        // log line of a request (errors included) can be joined to the client's report.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(|resp: &Response, latency: Duration, span: &Span| {
                    span.record("status", resp.status().as_u16());
                    tracing::debug!(?latency, "answered");
                }),
        )
        // In one middleware, outermost first: counts every answer (refusals by the rest
        // included); the body and handler deadlines; rate limits, before anything that
        // reads the database; each request's id, client address and user agent, for the
        // events it records; keyed POSTs run once per API key and key.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::edge::per_request,
        ))
        // Oversized bodies: refused at once when declared, else by the body extractors
        // (which read at most MAX_BODY_BYTES); both answer in the API's own shape.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    router
        .fallback(crate::edge::not_found)
        .method_not_allowed_fallback(crate::edge::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The span of one request: method, route template (not the path, which holds ids),
/// the request id, and the status once answered.
fn request_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %req.method(),
        route,
        request_id,
        status = tracing::field::Empty,
    )
}
