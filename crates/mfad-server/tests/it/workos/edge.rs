//! Timeouts and connection limits through the real binary, on raw sockets: idle and
//! half-sent connections, slow bodies, declared oversized bodies (with `Expect:
//! 100-continue`), handlers past their deadline, and the connection cap. These run on real
//! time: a socket has no injectable clock.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::process::{run_cli, start};

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection or `limit` passes; what was read, and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Status line and JSON body of a raw response.
fn parse(raw: &str) -> (u16, Value) {
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn health(url: &str) -> u16 {
    reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn idle_and_half_sent_connections_close_at_the_header_timeout_keep_alive_at_idle() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = start(
        dir.path(),
        &log,
        &[
            ("MFAD_HEADER_TIMEOUT_SECS", "1"),
            ("MFAD_IDLE_TIMEOUT_SECS", "3"),
        ],
    )
    .await;
    let opened = Instant::now();
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(addr(&server.url)).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        conns.push(s);
    }
    assert_eq!(health(&server.url).await, 200, "health answers beside them");
    for (i, s) in conns.iter_mut().enumerate() {
        let (got, closed) = read_until_closed(s, Duration::from_secs(4)).await;
        assert!(closed, "connection {i} still open");
        assert!(!got.contains("200 OK"), "{got}");
    }
    let elapsed = opened.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "all 200 closed after {elapsed:?} (header timeout 1 s)"
    );
    assert_eq!(health(&server.url).await, 200);

    // A keep-alive connection waits for its next request beyond the header timeout, up to
    // the idle timeout.
    let mut s = TcpStream::connect(addr(&server.url)).await.unwrap();
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for _ in 0..2 {
        s.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let waited = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "closed at the idle timeout");
    assert!(waited.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn slow_bodies_are_cut_and_declared_oversized_ones_refused_before_100_continue() {
    let dir = tempfile::tempdir().unwrap();
    let key = run_cli(dir.path(), &["api-key", "create", "--tenant", "acme"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let log = dir.path().join("serve.log");
    let server = start(dir.path(), &log, &[("MFAD_BODY_TIMEOUT_SECS", "1")]).await;
    for (path, auth, fusionauth) in [
        ("/auth/factors/enroll", format!("Bearer {key}"), false),
        ("/api/two-factor/start", key.clone(), true),
    ] {
        let check_shape = |status: u16, body: &Value, code: &str| {
            if fusionauth {
                assert_eq!(
                    body["generalErrors"][0]["code"],
                    format!("[{code}]"),
                    "{status} {body}"
                );
            } else {
                assert_eq!(body["code"], code, "{status} {body}");
            }
        };
        // A body announced as 100 bytes, of which 10 come.
        let mut s = TcpStream::connect(addr(&server.url)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\": \""
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let sent = Instant::now();
        let (raw, closed) = read_until_closed(&mut s, Duration::from_secs(4)).await;
        let took = sent.elapsed();
        let (status, body) = parse(&raw);
        assert_eq!(status, 408, "{raw}");
        check_shape(status, &body, "request_timeout");
        assert!(closed, "the connection is closed after a cut body");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "cut after {took:?} (body timeout 1 s)"
        );

        // 100 MB announced with Expect: 100-continue: 413 at once, never 100 Continue.
        let mut s = TcpStream::connect(addr(&server.url)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (raw, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
        assert!(!raw.contains(" 100 Continue"), "{raw}");
        let (status, body) = parse(&raw);
        assert_eq!(status, 413, "{raw}");
        check_shape(status, &body, "payload_too_large");
    }
}

/// A webhook SMS provider that accepts connections and never answers.
async fn silent_webhook() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    url
}

#[tokio::test]
async fn a_handler_past_its_deadline_is_503_in_the_callers_shape() {
    let dir = tempfile::tempdir().unwrap();
    let key = run_cli(dir.path(), &["api-key", "create", "--tenant", "acme"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let webhook = silent_webhook().await;
    let log = dir.path().join("serve.log");
    let server = start(
        dir.path(),
        &log,
        &[
            ("MFAD_REQUEST_TIMEOUT_SECS", "1"),
            ("MFAD_SMS_PROVIDER", "webhook"),
            ("MFAD_SMS_WEBHOOK_URL", &webhook),
            ("MFAD_SMS_WEBHOOK_SECRET", "whsec"),
            // Both calls text one number: not a test of the send cooldown.
            ("MFAD_SMS_COOLDOWN_SECS", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    // The first phone number parsed loads libphonenumber's metadata, which can take
    // longer than the 1 s deadline in a debug build: retry until warm.
    let mut factor = Value::Null;
    for _ in 0..5 {
        factor = client
            .post(format!("{}/auth/factors/enroll", server.url))
            .bearer_auth(&key)
            .json(&serde_json::json!({"type": "sms", "phone_number": "+14155552671"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if factor["id"].is_string() {
            break;
        }
    }
    let calls = [
        (
            client
                .post(format!(
                    "{}/auth/factors/{}/challenge",
                    server.url,
                    factor["id"].as_str().unwrap_or_else(|| panic!("{factor}"))
                ))
                .bearer_auth(&key)
                .json(&serde_json::json!({})),
            false,
        ),
        (
            client
                .post(format!("{}/api/two-factor/send", server.url))
                .header("Authorization", &key)
                .json(&serde_json::json!({"mobilePhone": "+14155552671", "secret": "SP2m6K2Dg/x2JN9DyQvZ"})),
            true,
        ),
    ];
    for (rb, fusionauth) in calls {
        let sent = Instant::now();
        let r = rb.send().await.unwrap();
        let took = sent.elapsed();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = r.json().await.unwrap();
        if fusionauth {
            assert_eq!(
                body["generalErrors"][0]["code"], "[service_unavailable]",
                "{body}"
            );
        } else {
            assert_eq!(body["code"], "service_unavailable", "{body}");
        }
        assert!(took < Duration::from_millis(2500), "{took:?}");
    }
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = start(dir.path(), &log, &[("MFAD_MAX_CONNECTIONS", "4")]).await;
    // Hold connections, each proven served, until one is refused.
    let mut held = Vec::new();
    let refusal = loop {
        let mut s = TcpStream::connect(addr(&server.url)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).await.unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        if got.starts_with("HTTP/1.1 503") {
            break got;
        }
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        held.push(s);
        assert!(
            held.len() <= 4,
            "more than MFAD_MAX_CONNECTIONS served at once"
        );
    };
    assert!(
        held.len() >= 3,
        "refused after only {} connections",
        held.len()
    );
    let (status, body) = parse(&refusal);
    assert_eq!(status, 503);
    assert_eq!(body["code"], "service_unavailable");
    assert!(refusal.contains("Retry-After: 1"));
    // Freed slots serve again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&server.url).await != 200 {
        assert!(Instant::now() < deadline, "slots never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rate_limits_per_key_and_per_address_answer_429_before_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let create = |tenant: &str| {
        run_cli(dir.path(), &["api-key", "create", "--tenant", tenant])
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    };
    let (key, other) = (create("acme"), create("globex"));
    let log = dir.path().join("serve.log");
    let server = start(
        dir.path(),
        &log,
        &[
            ("MFAD_RATE_LIMIT_PER_KEY", "1/3"),
            ("MFAD_RATE_LIMIT_PER_ADDRESS", "1/2"),
            ("MFAD_TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
            ("MFAD_LOG_FORMAT", "json"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let get_factor = |k: String| {
        client
            .get(format!(
                "{}/auth/factors/auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ",
                server.url
            ))
            .bearer_auth(k)
            .send()
    };
    // A burst of 3 per key, then 429 in WorkOS's shape with Retry-After.
    for _ in 0..3 {
        assert_eq!(get_factor(key.clone()).await.unwrap().status(), 404);
    }
    let r = get_factor(key.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate_limit_exceeded", "{body}");
    // The same key on the FusionAuth API: its empty 429.
    let r = client
        .get(format!("{}/api/two-factor/status?userId=u", server.url))
        .header("Authorization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(r.text().await.unwrap(), "");
    // Another key has its own bucket.
    assert_eq!(get_factor(other.clone()).await.unwrap().status(), 404);
    // Before any database work: a wrong secret under a real key id is limited too (429,
    // not 401), so floods with a key id cost no lookups.
    let (id, _) = other.rsplit_once('_').unwrap();
    let forged = format!("{id}_wrongsecret");
    let statuses: Vec<u16> = futures_statuses(&get_factor, &forged, 3).await;
    assert!(statuses.contains(&429), "{statuses:?}");

    // Unauthenticated FusionAuth login: per client address, from the trusted header.
    let login = |xff: &'static str| {
        client
            .post(format!("{}/api/two-factor/login", server.url))
            .header("X-Forwarded-For", xff)
            .json(&serde_json::json!({"twoFactorId": "nope", "code": "123456"}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(login("203.0.113.7").await.unwrap().status(), 404);
    }
    let r = login("203.0.113.7").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        login("203.0.113.8").await.unwrap().status(),
        404,
        "another address"
    );

    // Each request's log lines carry its span: route template, request id and status.
    let r = get_factor(key.clone()).await.unwrap();
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    drop(server);
    let logs = std::fs::read_to_string(&log).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains(&request_id) && l.contains("answered"))
        .unwrap_or_else(|| panic!("no answer logged for request id {request_id}"));
    let entry: Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["span"]["route"], "/auth/factors/{id}", "{line}");
    assert_eq!(entry["span"]["status"], 429, "{line}");
    assert!(!logs.contains(&key), "no API key in the logs");
}

async fn futures_statuses<F, Fut>(call: &F, key: &str, n: usize) -> Vec<u16>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(call(key.to_owned()).await.unwrap().status().as_u16());
    }
    out
}

#[tokio::test]
async fn a_malformed_chunked_body_is_reported_as_unreadable_not_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let key = run_cli(dir.path(), &["api-key", "create", "--tenant", "acme"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let log = dir.path().join("serve.log");
    let server = start(dir.path(), &log, &[]).await;
    for (path, auth, fusionauth) in [
        ("/auth/factors/enroll", format!("Bearer {key}"), false),
        ("/api/two-factor/start", key.clone(), true),
    ] {
        let mut s = TcpStream::connect(addr(&server.url)).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (raw, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
        let (status, body) = parse(&raw);
        assert_eq!(status, 400, "{raw}");
        assert!(!raw.contains("at most"), "{raw}");
        if fusionauth {
            assert_eq!(
                body["generalErrors"][0]["code"], "[invalid_request_body]",
                "{raw}"
            );
        } else {
            assert_eq!(body["code"], "invalid_request_body", "{raw}");
        }
    }
}
