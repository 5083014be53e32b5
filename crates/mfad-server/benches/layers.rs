//! What each per-request layer of the HTTP stack costs, without sockets: requests are
//! driven through the router with tower's `oneshot` on a current-thread runtime. Run with
//! `cargo bench -p mfad-server --bench layers`; figures in docs/BENCHMARKS.md ("The HTTP
//! floor").
//!
//! * `stack/…`: `GET /health` through a bare router, then with the application's layers
//!   added one at a time in the order `routes::app` applies them (innermost first: the
//!   per-request middleware, the trace span, the request id), so each step's difference is
//!   that layer's cost.
//! * `app/…`: the application's own router (`routes::app`): `GET /health`, and
//!   `POST /auth/challenges/{id}/verify` with a wrong TOTP code (the store included: the
//!   SQLite writer thread and its commit).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use criterion::{Criterion, criterion_group, criterion_main};
use mfad_core::SystemClock;
use mfad_server::config::Config;
use mfad_server::error::json_response;
use mfad_server::startup::Application;
use mfad_server::state::AppState;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40_000);

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// A request as the load generators send it.
fn get(path: &str) -> Request<Body> {
    let mut req = Request::get(path)
        .header("host", "127.0.0.1:8091")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(PEER)));
    req
}

fn post(path: &str, key: &str, body: &'static str) -> Request<Body> {
    let mut req = Request::post(path)
        .header("host", "127.0.0.1:8091")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(PEER)));
    req
}

/// The layers of `routes::app`, innermost first, each added to the ones before (composed
/// as `routes::app` does, one layer around the route).
fn stacks(state: &AppState) -> Vec<(&'static str, Router)> {
    let route = || Router::new().route("/health", axum::routing::get(health));
    let body_limit = axum::extract::DefaultBodyLimit::max(mfad_server::extract::MAX_BODY_BYTES);
    let per_request =
        axum::middleware::from_fn_with_state(state.clone(), mfad_server::edge::per_request);
    let trace = TraceLayer::new_for_http();
    let request_id = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]));
    let s = state.clone();
    vec![
        ("0_bare", route().with_state(s.clone())),
        (
            "1_per_request",
            route()
                .layer(
                    ServiceBuilder::new()
                        .layer(per_request.clone())
                        .layer(body_limit),
                )
                .with_state(s.clone()),
        ),
        (
            "2_trace",
            route()
                .layer(
                    ServiceBuilder::new()
                        .layer(trace.clone())
                        .layer(per_request.clone())
                        .layer(body_limit),
                )
                .with_state(s.clone()),
        ),
        (
            "3_request_id",
            route()
                .layer(
                    ServiceBuilder::new()
                        .layer(request_id)
                        .layer(trace)
                        .layer(per_request)
                        .layer(body_limit),
                )
                .with_state(s),
        ),
    ]
}

#[inline(never)]
fn oneshot(rt: &tokio::runtime::Runtime, app: &Router, req: Request<Body>) -> Response {
    rt.block_on(app.clone().oneshot(req)).unwrap()
}

fn json_of(rt: &tokio::runtime::Runtime, resp: Response) -> Value {
    let bytes = rt
        .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("MFAD_LISTEN", "127.0.0.1:0".to_owned()),
        ("MFAD_DATA_DIR", dir.path().display().to_string()),
        (
            "MFAD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("mfad.db").display()),
        ),
        // The per-key bucket is checked on every request but never empties here.
        ("MFAD_RATE_LIMIT_PER_KEY", "1000000000/1000000000".into()),
        ("MFAD_CHALLENGE_MAX_ATTEMPTS", "100".into()),
        ("MFAD_THROTTLE", "off".into()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let application = rt
        .block_on(Application::build(&config, Arc::new(SystemClock)))
        .unwrap();
    let state = application.state().clone();
    let key = rt
        .block_on(state.service.create_api_key("bench", None))
        .unwrap()
        .token
        .to_string();

    let mut group = c.benchmark_group("stack");
    for (name, app) in stacks(&state) {
        assert_eq!(oneshot(&rt, &app, get("/health")).status(), 200);
        group.bench_function(name, |b| b.iter(|| oneshot(&rt, &app, get("/health"))));
    }
    group.finish();

    let app = mfad_server::routes::app(state.clone());
    let mut group = c.benchmark_group("app");
    group.bench_function("health", |b| b.iter(|| oneshot(&rt, &app, get("/health"))));

    // Wrong TOTP codes, round-robin over enough challenges for the run (100 attempts each).
    let enroll = r#"{"type":"totp","totp_issuer":"bench","totp_user":"b@example.com"}"#;
    let factor = json_of(
        &rt,
        oneshot(&rt, &app, post("/auth/factors/enroll", &key, enroll)),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let challenge_path = format!("/auth/factors/{factor}/challenge");
    let verify_paths: Vec<String> = (0..4000)
        .map(|_| {
            let c = json_of(&rt, oneshot(&rt, &app, post(&challenge_path, &key, "{}")));
            format!("/auth/challenges/{}/verify", c["id"].as_str().unwrap())
        })
        .collect();
    let mut next = verify_paths.iter().cycle();
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("verify_wrong_totp", |b| {
        b.iter(|| {
            let path = next.next().unwrap();
            let resp = oneshot(&rt, &app, post(path, &key, r#"{"code":"000000"}"#));
            assert_eq!(resp.status(), StatusCode::CREATED);
            resp
        })
    });
    group.finish();
    rt.block_on(state.service.store().close());
}

criterion_group!(benches, bench);
criterion_main!(benches);
