//! Prometheus metrics: every metric name is defined here, once, and recorded through a
//! recorder this server owns (held in [`crate::state::AppState`]; no global recorder, so
//! several servers in one test process count apart). `GET /metrics` renders them in the
//! Prometheus text format, on the API listener or on `MFAD_ADMIN_LISTEN`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `mfad_http_requests_total` | counter | `route` (template), `method`, `status` |
//! | `mfad_http_request_duration_seconds` | histogram | `route`, `method`, `status` |
//! | `mfad_enrollments_total` | counter | `factor_type`, `outcome` |
//! | `mfad_challenges_total` | counter | `factor_type`, `outcome` |
//! | `mfad_verifications_total` | counter | `factor_type`, `outcome` |
//! | `mfad_sends_total` | counter | `channel`, `provider`, `outcome` (`sent`, `failed`, `refused`) |
//! | `mfad_rate_limited_total` | counter | `scope` (`api_key`, `address`) |
//! | `mfad_db_pool_connections` | gauge | `pool`, `state` (`open`, `idle`, `max`) |
//! | `mfad_db_pool_waiters` | gauge | `pool` |
//! | `mfad_db_pool_wait_microseconds_total` | counter | `pool` |
//! | `mfad_db_pool_acquires_total` | counter | `pool` |
//! | `mfad_db_pool_timeouts_total` | counter | `pool` |
//! | `mfad_webhook_deliveries_total` | counter | `outcome` (see [`Metrics::webhook_delivery`]) |
//!
//! Outcomes of the domain are `valid`, `invalid`, `expired`, `throttled`, `refused` and
//! `error` ([`mfad_core::metrics::Outcome`]). Every label comes from a closed set: routes
//! are templates (`/auth/factors/{id}`, or `unmatched`), never paths with ids.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use mfad_core::metrics::Event;
use mfad_store::PoolStats;

use crate::state::AppState;

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The request counter and latency histogram of one method and status of a route.
struct HttpHandles {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// This server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The HTTP handles by route template, each made on its first request: a request
    /// then costs a map lookup, not label strings and a registry search (docs/BENCHMARKS.md,
    /// "The HTTP floor"). Bounded: routes, methods and statuses are closed sets.
    http: RwLock<HashMap<String, Vec<HttpHandles>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh recorder with every metric described.
    pub fn new() -> Self {
        // The buckets are constants, so this cannot fail; summaries would do otherwise.
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            recorder,
            handle,
            http: RwLock::default(),
        };
        m.with(describe);
        m
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Counts one answered HTTP request.
    pub fn http(&self, route: &str, method: &'static str, status: u16, latency: Duration) {
        let record = |h: &HttpHandles| {
            h.requests.increment(1);
            h.duration.record(latency);
        };
        let find = |hs: &[HttpHandles]| {
            hs.iter()
                .position(|h| h.method == method && h.status == status)
        };
        {
            let known = self.http.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(hs) = known.get(route)
                && let Some(i) = find(hs)
            {
                return record(&hs[i]);
            }
        }
        let mut known = self.http.write().unwrap_or_else(PoisonError::into_inner);
        let hs = known.entry(route.to_owned()).or_default();
        let i = find(hs).unwrap_or_else(|| {
            let labels = [
                ("route", route.to_owned()),
                ("method", method.to_owned()),
                ("status", status.to_string()),
            ];
            hs.push(self.with(|| HttpHandles {
                method,
                status,
                requests: counter!("mfad_http_requests_total", &labels),
                duration: histogram!("mfad_http_request_duration_seconds", &labels),
            }));
            hs.len() - 1
        });
        record(&hs[i]);
    }

    /// Counts a request refused by a rate limit (`scope`: `api_key` or `address`).
    pub fn rate_limited(&self, scope: &'static str) {
        self.with(|| counter!("mfad_rate_limited_total", "scope" => scope).increment(1));
    }

    /// Counts one webhook delivery attempt (for the events outbox): `outcome` is one of
    /// `delivered`, `retried` (will retry) or `failed` (gave up at the attempt cap: the
    /// delivery's state in `mfad webhook deliveries`), never an id or URL.
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.with(|| counter!("mfad_webhook_deliveries_total", "outcome" => outcome).increment(1));
    }

    /// The Prometheus text, with the pools' gauges as of now.
    pub fn render(&self, pools: &[PoolStats]) -> String {
        self.with(|| {
            for (i, p) in pools.iter().enumerate() {
                let pool = pool_name(i, pools.len());
                let g = |state: &'static str, v: usize| {
                    gauge!("mfad_db_pool_connections", "pool" => pool, "state" => state)
                        .set(v as f64);
                };
                g("open", p.size);
                g("idle", p.idle);
                g("max", p.max);
                gauge!("mfad_db_pool_waiters", "pool" => pool).set(p.waiters as f64);
                // Counters kept by the pool itself: exported as their absolute value.
                counter!("mfad_db_pool_acquires_total", "pool" => pool).absolute(p.acquires);
                counter!("mfad_db_pool_timeouts_total", "pool" => pool).absolute(p.timeouts);
                counter!("mfad_db_pool_wait_microseconds_total", "pool" => pool)
                    .absolute(u64::try_from(p.wait_total.as_micros()).unwrap_or(u64::MAX));
            }
        });
        self.handle.render()
    }

    /// Drains histogram buffers; run now and then so they do not grow between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// `read` and `write` when the store keeps two pools (SQLite), else `main`.
fn pool_name(i: usize, of: usize) -> &'static str {
    match (of, i) {
        (1, _) => "main",
        (_, 0) => "read",
        _ => "write",
    }
}

fn describe() {
    describe_counter!(
        "mfad_http_requests_total",
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        "mfad_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request."
    );
    describe_counter!(
        "mfad_enrollments_total",
        "Factor enrollments and method enables, by factor type and outcome."
    );
    describe_counter!(
        "mfad_challenges_total",
        "WorkOS challenges opened, by factor type and outcome."
    );
    describe_counter!(
        "mfad_verifications_total",
        "Codes judged, by what they were checked against and outcome."
    );
    describe_counter!(
        "mfad_sends_total",
        "SMS and email codes, by channel, provider and outcome (refused: by a send limit or country rule)."
    );
    describe_counter!(
        "mfad_rate_limited_total",
        "Requests refused by a request rate limit, by scope."
    );
    describe_gauge!(
        "mfad_db_pool_connections",
        "Database connections by pool and state (open, idle, max)."
    );
    describe_gauge!(
        "mfad_db_pool_waiters",
        "Callers waiting for a database connection now."
    );
    describe_counter!(
        "mfad_db_pool_wait_microseconds_total",
        Unit::Microseconds,
        "Total time callers waited for a database connection."
    );
    describe_counter!("mfad_db_pool_acquires_total", "Database connections lent.");
    describe_counter!(
        "mfad_db_pool_timeouts_total",
        "Database connection acquires that timed out."
    );
    describe_counter!(
        "mfad_webhook_deliveries_total",
        "Webhook deliveries, by outcome."
    );
}

impl mfad_core::metrics::Metrics for Metrics {
    fn webhook_delivery(&self, outcome: mfad_core::metrics::WebhookOutcome) {
        Metrics::webhook_delivery(self, outcome.as_str());
    }

    fn record(&self, event: Event) {
        self.with(|| match event {
            Event::Enrollment { kind, outcome } => counter!(
                "mfad_enrollments_total",
                "factor_type" => mfad_core::metrics::factor_label(kind),
                "outcome" => outcome.as_str()
            )
            .increment(1),
            Event::Challenge { kind, outcome } => counter!(
                "mfad_challenges_total",
                "factor_type" => mfad_core::metrics::factor_label(kind),
                "outcome" => outcome.as_str()
            )
            .increment(1),
            Event::Verification {
                credential,
                outcome,
            } => counter!(
                "mfad_verifications_total",
                "factor_type" => credential.as_str(),
                "outcome" => outcome.as_str()
            )
            .increment(1),
            Event::Send {
                channel,
                provider,
                outcome,
            } => counter!(
                "mfad_sends_total",
                "channel" => channel.as_str(),
                "provider" => provider,
                "outcome" => outcome.as_str()
            )
            .increment(1),
        });
    }
}

/// The methods that are labels; any other token a client sends is `other`.
const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

/// Middleware: counts and times every request by its route template.
pub async fn track(
    state: &AppState,
    req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    // Clients may send any token as a method: only the standard ones are labels.
    let method = METHODS
        .iter()
        .find(|m| *m == req.method())
        .map_or("other", Method::as_str);
    let started = tokio::time::Instant::now();
    let resp = next(req).await;
    state.metrics.http(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// `GET /metrics`: the Prometheus text format.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.service.store().pool_stats());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
