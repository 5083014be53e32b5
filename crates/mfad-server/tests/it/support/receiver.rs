//! A webhook receiver on loopback, as an application would run one: it takes JSON POSTs
//! on any path and answers with a status, recording each request (path, signature
//! header, body, arrival time). Tests script its answers per path (a number of 500s, or
//! hanging without an answer) to stand in for failing and slow receivers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// `WorkOS-Signature`.
    pub signature: Option<String>,
    /// `X-FusionAuth-Signature-JWT`.
    pub fusionauth_signature: Option<String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    /// The delivered event's id (`id` of the WorkOS event object).
    pub fn event_id(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }
}

/// How a path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This status.
    Status(u16),
    /// No answer at all, until the client gives up.
    Hang,
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    /// Answers queued per path, used up in order; then `default`.
    script: HashMap<String, Vec<Answer>>,
    default: HashMap<String, Answer>,
}

/// A running receiver; clones share it.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = axum::Router::new()
            .fallback(axum::routing::post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests on `path` with `answers`, in order.
    pub fn script(&self, path: &str, answers: &[Answer]) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .script
            .entry(path.to_owned())
            .or_default()
            .extend_from_slice(answers);
    }

    /// Answers `path` with `answer` once the script is used up (200 unless set).
    pub fn answer(&self, path: &str, answer: Answer) {
        self.inner
            .lock()
            .unwrap()
            .default
            .insert(path.to_owned(), answer);
    }

    /// Every request on `path`, in arrival order.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.inner
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits (real time: the servers under test run on the real clock) until `path` has
    /// had `n` requests, whatever they were answered; fails after `limit`.
    pub async fn wait_for(&self, path: &str, n: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.on(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < limit,
                "{path}: {} of {n} requests after {limit:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the distinct events received on `path` include every one of `ids`.
    pub async fn wait_for_events(
        &self,
        path: &str,
        ids: &[String],
        limit: Duration,
    ) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.on(path);
            let seen: std::collections::HashSet<String> =
                got.iter().map(Received::event_id).collect();
            if ids.iter().all(|id| seen.contains(id)) {
                return got;
            }
            assert!(
                started.elapsed() < limit,
                "{path}: {} of {} events after {limit:?}",
                ids.iter().filter(|id| seen.contains(*id)).count(),
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_owned();
    let answer = {
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received {
            path: path.clone(),
            signature: header(&headers, "workos-signature"),
            fusionauth_signature: header(&headers, "x-fusionauth-signature-jwt"),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        let scripted = inner.script.get_mut(&path).and_then(|s| {
            if s.is_empty() {
                None
            } else {
                Some(s.remove(0))
            }
        });
        scripted.unwrap_or_else(|| {
            inner
                .default
                .get(&path)
                .copied()
                .unwrap_or(Answer::Status(200))
        })
    };
    match answer {
        Answer::Status(s) => StatusCode::from_u16(s).unwrap(),
        Answer::Hang => std::future::pending().await,
    }
}
