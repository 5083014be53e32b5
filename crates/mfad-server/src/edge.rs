//! The HTTP edge: what is refused before or around a handler (a declared body over the
//! limit, a body that does not arrive in time, a handler past its deadline, a caller over
//! its rate), answered in the caller's API. Which API a request speaks is decided by its
//! path alone: FusionAuth's routes all live under `/api/`, WorkOS's never do.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::json_response;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// The API a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The WorkOS MFA API (every path outside `/api/`).
    Workos,
    /// The FusionAuth Two Factor API (`/api/…`).
    FusionAuth,
}

impl Api {
    /// The API of a request path.
    pub fn of(path: &str) -> Api {
        if path == "/api" || path.starts_with("/api/") {
            Api::FusionAuth
        } else {
            Api::Workos
        }
    }
}

/// Refusals made at the edge, outside the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeError {
    /// The body is longer than [`MAX_BODY_BYTES`] (declared or as sent).
    PayloadTooLarge,
    /// The whole body did not arrive within the body timeout.
    BodyTimeout,
    /// The body could not be read: malformed chunked framing, or the connection broke.
    BodyUnreadable,
    /// The handler did not finish within the request deadline.
    Deadline,
    /// Over a rate limit; retry after this many seconds.
    RateLimited {
        /// Seconds until a request would be admitted.
        retry_after: u64,
    },
    /// No route has this path.
    NotFound,
    /// The path exists, not with this method.
    MethodNotAllowed,
}

impl EdgeError {
    fn status(self) -> StatusCode {
        match self {
            EdgeError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            EdgeError::BodyUnreadable => StatusCode::BAD_REQUEST,
            EdgeError::Deadline => StatusCode::SERVICE_UNAVAILABLE,
            EdgeError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            EdgeError::NotFound => StatusCode::NOT_FOUND,
            EdgeError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// WorkOS's `code` and a sentence.
    fn words(self) -> (&'static str, String) {
        match self {
            EdgeError::PayloadTooLarge => (
                "payload_too_large",
                format!("The request body must be at most {MAX_BODY_BYTES} bytes."),
            ),
            EdgeError::BodyTimeout => (
                "request_timeout",
                "The request body did not arrive in time.".into(),
            ),
            EdgeError::BodyUnreadable => (
                "invalid_request_body",
                "The request body could not be read (malformed framing or a broken connection)."
                    .into(),
            ),
            EdgeError::Deadline => (
                "service_unavailable",
                "The request took too long. Retry shortly.".into(),
            ),
            EdgeError::RateLimited { .. } => (
                "rate_limit_exceeded",
                "Too many requests. Retry after the time in Retry-After.".into(),
            ),
            EdgeError::NotFound => ("not_found", "Not found".into()),
            EdgeError::MethodNotAllowed => ("method_not_allowed", "Method not allowed".into()),
        }
    }

    /// The answer in `api`'s shape: WorkOS JSON `{code, message}`; FusionAuth's empty 404,
    /// 405 and 429 (as it answers them) and an Errors object otherwise.
    pub fn render(self, api: Api) -> Response {
        let status = self.status();
        let (code, message) = self.words();
        let mut resp = match api {
            Api::Workos => json_response(status, &json!({"code": code, "message": message})),
            Api::FusionAuth => match self {
                EdgeError::NotFound
                | EdgeError::MethodNotAllowed
                | EdgeError::RateLimited { .. } => status.into_response(),
                _ => json_response(
                    status,
                    &json!({"fieldErrors": {}, "generalErrors": [{"code": format!("[{code}]"), "message": message}]}),
                ),
            },
        };
        let headers = resp.headers_mut();
        match self {
            EdgeError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            }
            EdgeError::Deadline => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body may still be on its way: close rather than read it.
            EdgeError::PayloadTooLarge | EdgeError::BodyTimeout | EdgeError::BodyUnreadable => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            EdgeError::NotFound | EdgeError::MethodNotAllowed => {}
        }
        resp
    }
}

/// Time limits applied to each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The whole body must arrive within this.
    pub body_timeout: Duration,
    /// The handler must answer within this.
    pub request_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// When the body of this request must have arrived (a request extension read by the body
/// extractors).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// Every request's middleware, in one layer: metrics, limits, rate limits, the events'
/// request context, idempotency, then the handler (`next`), outermost first. One layer,
/// not five: axum clones each layer's state and the stack inside it for every request,
/// which cost a fifth of the CPU of `GET /health` (docs/BENCHMARKS.md, "The HTTP floor").
pub async fn per_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let state = &state;
    crate::metrics::track(state, req, async |req| {
        limits(state, req, async |req| {
            crate::rate_limit::limit(state, req, async |req| {
                crate::events::request_context(state, req, async |req| {
                    crate::idempotency::honour(state, req, async |req| next.run(req).await).await
                })
                .await
            })
            .await
        })
        .await
    })
    .await
}

/// Refuses a declared body over the limit at once (before `100 Continue` is sent, which
/// hyper does only when the body is first read), sets the body deadline, and answers 503
/// in the caller's API when the handler passes the request deadline.
pub async fn limits(
    state: &AppState,
    mut req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let api = Api::of(req.uri().path());
    // A path segment that is not UTF-8 once decoded (`/auth/factors/%ff`) names nothing:
    // the API's own 404 rather than axum's plain-text path rejection.
    if !path_is_text(req.uri().path()) {
        return EdgeError::NotFound.render(api);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return EdgeError::PayloadTooLarge.render(api);
    }
    let limits = state.limits;
    req.extensions_mut().insert(BodyDeadline(
        tokio::time::Instant::now() + limits.body_timeout,
    ));
    match tokio::time::timeout(limits.request_timeout, next(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                timeout_secs = limits.request_timeout.as_secs(),
                "request passed its deadline"
            );
            EdgeError::Deadline.render(api)
        }
    }
}

/// Whether every segment of `path` percent-decodes to UTF-8.
fn path_is_text(path: &str) -> bool {
    path.split('/').all(|seg| {
        percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .is_ok()
    })
}

/// Reads a whole body within its deadline, telling apart the three ways it can fail.
pub async fn read_body(req: Request) -> Result<axum::body::Bytes, EdgeError> {
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let (_, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    let collect = http_body_util::BodyExt::collect(limited);
    let collected = match deadline {
        Some(BodyDeadline(at)) => tokio::time::timeout_at(at, collect)
            .await
            .map_err(|_| EdgeError::BodyTimeout)?,
        None => collect.await,
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(EdgeError::PayloadTooLarge),
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            Err(EdgeError::BodyUnreadable)
        }
    }
}

/// Unknown paths, in the shape of the API the path belongs to.
pub async fn not_found(req: Request) -> Response {
    EdgeError::NotFound.render(Api::of(req.uri().path()))
}

/// Known paths with another method, likewise.
pub async fn method_not_allowed(req: Request) -> Response {
    EdgeError::MethodNotAllowed.render(Api::of(req.uri().path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_decode_to_text() {
        assert!(path_is_text("/auth/factors/auth_factor_01%20x"));
        assert!(path_is_text("/api/user/two-factor/%C3%A9"));
        assert!(!path_is_text("/auth/factors/%ff"));
        assert!(!path_is_text("/api/two-factor/send/%C3"));
    }

    #[test]
    fn the_path_decides_the_api() {
        for p in ["/api", "/api/", "/api/two-factor/secret", "/api/nope"] {
            assert_eq!(Api::of(p), Api::FusionAuth, "{p}");
        }
        for p in [
            "/",
            "/auth/factors/x",
            "/apix",
            "/health",
            "/user_management/users",
        ] {
            assert_eq!(Api::of(p), Api::Workos, "{p}");
        }
    }

    #[test]
    fn fusionauth_429_404_405_are_empty_and_the_rest_are_errors_objects() {
        let r = EdgeError::RateLimited { retry_after: 3 }.render(Api::FusionAuth);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
        let r = EdgeError::PayloadTooLarge.render(Api::FusionAuth);
        assert_eq!(r.status(), 413);
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let r = EdgeError::RateLimited { retry_after: 0 }.render(Api::Workos);
        assert_eq!(
            r.headers()[header::RETRY_AFTER],
            "1",
            "never Retry-After: 0"
        );
    }
}
