//! `Idempotency-Key` on POST, as the WorkOS SDKs send it (see docs/contracts/workos.md,
//! "Idempotent retries"): the first request with a key runs; a repeat with the same
//! method, path and body gets the first answer again (`Idempotent-Replayed: true`) and
//! runs nothing, so a retried challenge sends no second SMS; a repeat with another
//! request is `422`; a repeat while the first still runs waits for it, up to
//! [`WAIT_FOR_FIRST`], then gets `409`. The rule itself is `mfad_core::idempotency`.
//!
//! Entries belong to the calling API key (its tenant and public id), so only POSTs made
//! with an API key are honoured, on both APIs (FusionAuth's clients send no such header;
//! honouring it there is harmless). Requests without an API key (FusionAuth's
//! unauthenticated login routes, JWT-only calls) and requests whose key fails to
//! authenticate run as usual, and the handler answers them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mfad_core::Service;
use mfad_core::idempotency::{
    Begun, IdempotencyTicket, IdempotentRequest, MAX_KEY_LEN, StoredResponse,
};
use mfad_store::Database;
use serde_json::json;

use crate::edge::{Api, BodyDeadline, read_body};
use crate::error::{FusionAuthError, WorkosError, json_response};
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a repeat waits for the first request before answering 409 (well inside the
/// request deadline).
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);
/// Largest response kept (responses are small JSON; QR codes are about 2 KB).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a keyed request was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The header is empty, too long or not visible ASCII.
    BadKey,
    /// The key was used with another method, path or body.
    Reused,
    /// The first request with the key is still running.
    InProgress,
}

impl Refusal {
    fn render(self, api: Api) -> Response {
        let (status, code, message) = match self {
            Refusal::BadKey => (
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters."),
            ),
            Refusal::Reused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_error",
                "This Idempotency-Key was already used with a different request; use a new key \
                 for a new request."
                    .to_owned(),
            ),
            Refusal::InProgress => (
                StatusCode::CONFLICT,
                "idempotency_error",
                "A request with this Idempotency-Key is still in progress; retry shortly.".into(),
            ),
        };
        let mut resp = match api {
            Api::Workos => json_response(status, &json!({"code": code, "message": message})),
            Api::FusionAuth => json_response(
                status,
                &json!({"fieldErrors": {}, "generalErrors": [{"code": format!("[{code}]"), "message": message}]}),
            ),
        };
        if self == Refusal::InProgress {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The API key token among the `Authorization` headers (`Bearer sk_…` or a raw `sk_…`).
fn api_key_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            let v = v.trim();
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => v,
            }
        })
        .find(|t| t.starts_with("sk_"))
        .map(str::to_owned)
}

/// The public id part of an API key token (`sk_<id>_<secret>`), as authentication parses it.
fn public_id(token: &str) -> &str {
    token
        .strip_prefix("sk_")
        .and_then(|rest| rest.split_once('_'))
        .map_or("", |(id, _)| id)
}

/// Gives a claim back if the request is dropped before it answers (its deadline passed,
/// or the client went away), so a retry need not wait for the lease to lapse.
struct Claim {
    service: Arc<Service<Arc<dyn Database>>>,
    ticket: Option<IdempotencyTicket>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let service = self.service.clone();
            tokio::spawn(async move {
                if let Err(e) = service.abandon_idempotent(ticket).await {
                    tracing::warn!(error = %e, "releasing an idempotency claim failed");
                }
            });
        }
    }
}

/// Runs a keyed POST at most once per caller and key (see the module doc).
pub async fn honour(
    state: &AppState,
    req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if req.method() != Method::POST || !state.service.idempotency_enabled() {
        return next(req).await;
    }
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next(req).await;
    };
    let api = Api::of(req.uri().path());
    let key = match value.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            k.to_owned()
        }
        _ => return Refusal::BadKey.render(api),
    };
    let Some(token) = api_key_token(&req) else {
        return next(req).await;
    };
    let Ok(tenant) = state.service.authenticate(&token).await else {
        return next(req).await;
    };
    // The key's public id, never any of its secret.
    let caller = public_id(&token).to_owned();
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());

    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let (parts, body) = req.into_parts();
    let mut probe = Request::new(body);
    if let Some(d) = deadline {
        probe.extensions_mut().insert(d);
    }
    let bytes = match read_body(probe).await {
        Ok(b) => b,
        Err(e) => return e.render(api),
    };
    let keyed = IdempotentRequest {
        tenant: &tenant,
        caller: &caller,
        key: &key,
        method: &method,
        path: &path,
        body: &bytes,
    };

    let wait_until = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let mut pause = Duration::from_millis(10);
    let ticket = loop {
        match state.service.begin_idempotent(&keyed).await {
            Ok(Begun::Run(ticket)) => break ticket,
            Ok(Begun::Replay(stored)) => return replay(stored),
            Ok(Begun::Mismatch) => return Refusal::Reused.render(api),
            Ok(Begun::InProgress) if tokio::time::Instant::now() + pause < wait_until => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Ok(Begun::InProgress) => return Refusal::InProgress.render(api),
            Err(e) => return render_core(api, e),
        }
    };
    let mut claim = Claim {
        service: state.service.clone(),
        ticket: Some(ticket),
    };

    let resp = next(Request::from_parts(parts, Body::from(bytes.clone()))).await;
    let (mut parts, body) = resp.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await else {
        // Dropping the claim releases it: the answer could not be kept.
        return render_core(
            api,
            mfad_core::CoreError::Store(mfad_core::StoreError::Other(
                "a response could not be read for keeping".into(),
            )),
        );
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: mfad_crypto::Zeroizing::new(body.to_vec()),
    };
    if let Some(ticket) = claim.ticket.take()
        && let Err(e) = state.service.finish_idempotent(ticket, &stored).await
    {
        // The request ran and is answered; only a later retry would run it again.
        tracing::warn!(error = %e, "keeping an idempotent response failed");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The kept answer, marked as a replay.
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, Body::from(stored.body.to_vec())).into_response();
    let headers = resp.headers_mut();
    if let Some(ct) = stored
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

fn render_core(api: Api, e: mfad_core::CoreError) -> Response {
    match api {
        Api::Workos => WorkosError::Core(e).into_response(),
        Api::FusionAuth => FusionAuthError::Core(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_speak_each_api() {
        let r = Refusal::Reused.render(Api::Workos);
        assert_eq!(r.status(), 422);
        let r = Refusal::InProgress.render(Api::FusionAuth);
        assert_eq!(r.status(), 409);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(Refusal::BadKey.render(Api::Workos).status(), 400);
    }

    #[test]
    fn the_api_key_is_found_raw_or_as_bearer_and_jwts_are_not_keys() {
        let req = |values: &[&str]| {
            let mut b = Request::builder();
            for v in values {
                b = b.header(header::AUTHORIZATION, *v);
            }
            b.body(Body::empty()).unwrap()
        };
        assert_eq!(
            api_key_token(&req(&["Bearer sk_a_b"])).as_deref(),
            Some("sk_a_b")
        );
        assert_eq!(
            api_key_token(&req(&["Bearer eyJ", "sk_a_b"])).as_deref(),
            Some("sk_a_b")
        );
        assert_eq!(api_key_token(&req(&["Bearer eyJ.x.y"])), None);
        assert_eq!(api_key_token(&req(&[])), None);
        assert_eq!(
            public_id("sk_01ABC_se_cr_et"),
            "01ABC",
            "never any of the secret"
        );
    }
}
