//! Graceful shutdown of the real `mfad` binary: SIGTERM while workers verify codes flat
//! out. The server stops accepting at once, requests it had already begun reading finish
//! (here: verifications whose body was half-sent when the signal came, completed after
//! the listener closed), every verification it acknowledged is committed in the database,
//! and it exits 0. Runs on the run's backend (SQLite file, or a fresh PostgreSQL database).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::on_postgres;
use crate::support::process::{command, free_port, output_ok};

/// Runs `mfad <args>` with `env`, asserting success; its standard output.
fn cli(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = command(dir, env);
    cmd.args(args);
    output_ok(cmd, &args)
}

async fn post(
    http: &reqwest::Client,
    url: String,
    key: &str,
    body: Value,
) -> reqwest::Result<(u16, Value)> {
    let r = http.post(url).bearer_auth(key).json(&body).send().await?;
    let status = r.status().as_u16();
    let body = r.json::<Value>().await?;
    Ok((status, body))
}

/// A generic OTP challenge: its id and code.
async fn challenge(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    factor: &str,
) -> reqwest::Result<(String, String)> {
    let (status, c) = post(
        http,
        format!("{base}/auth/factors/{factor}/challenge"),
        key,
        json!({}),
    )
    .await?;
    assert_eq!(status, 201, "{c}");
    Ok((
        c["id"].as_str().unwrap().to_owned(),
        c["code"].as_str().unwrap().to_owned(),
    ))
}

/// What one load worker saw: the challenges whose verification was acknowledged, and the
/// error that stopped it (a connection-level one, once the server stopped accepting).
struct Worker {
    acknowledged: Vec<String>,
    stopped_by: Option<String>,
}

async fn worker(base: String, key: String, factor: String, stop: Arc<AtomicBool>) -> Worker {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut acknowledged = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let step = async {
            let (id, code) = challenge(&http, &base, &key, &factor).await?;
            let (status, v) = post(
                &http,
                format!("{base}/auth/challenges/{id}/verify"),
                &key,
                json!({"code": code}),
            )
            .await?;
            Ok::<_, reqwest::Error>((id, status, v))
        };
        match step.await {
            Ok((id, status, v)) => {
                assert_eq!(
                    status, 201,
                    "an answer during shutdown is still a real answer: {v}"
                );
                assert_eq!(v["valid"], true, "{v}");
                acknowledged.push(id);
            }
            Err(e) => {
                // The only acceptable failure: no answer at all, never a server error.
                assert!(e.status().is_none(), "{e}");
                return Worker {
                    acknowledged,
                    stopped_by: Some(e.to_string()),
                };
            }
        }
    }
    Worker {
        acknowledged,
        stopped_by: None,
    }
}

/// Whether the rows of `ids` are all verified.
async fn all_verified(db_url: &str, ids: &[String]) -> usize {
    let sql = "SELECT verified_at IS NOT NULL AS done FROM challenges WHERE id = $1";
    let mut done = 0;
    if db_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
        for id in ids {
            let row = sqlx::query(sql).bind(id).fetch_one(&mut c).await.unwrap();
            done += usize::from(row.get::<bool, _>("done"));
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        for id in ids {
            let row = sqlx::query(sql).bind(id).fetch_one(&mut c).await.unwrap();
            done += usize::from(row.get::<bool, _>("done"));
        }
    }
    done
}

#[tokio::test]
async fn sigterm_under_load_finishes_accepted_requests_commits_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let pg = if on_postgres() {
        Some(crate::support::test_database().await)
    } else {
        None
    };
    let db_url = match &pg {
        Some(db) => db.url().to_owned(),
        None => format!("sqlite://{}/data/mfad.db", dir.path().display()),
    };
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [
        ("MFAD_DATABASE_URL", db_url.as_str()),
        ("MFAD_LISTEN", listen.as_str()),
        ("MFAD_RATE_LIMIT_PER_KEY", "0"),
        ("MFAD_RATE_LIMIT_PER_ADDRESS", "0"),
        ("MFAD_SHUTDOWN_GRACE_SECS", "20"),
        // The half-sent requests wait for the load to start: no body deadline meanwhile.
        ("MFAD_BODY_TIMEOUT_SECS", "120"),
        ("MFAD_REQUEST_TIMEOUT_SECS", "120"),
        ("RUST_LOG", "info"),
    ];
    cli(dir.path(), &env, &["migrate"]);
    let key = cli(dir.path(), &env, &["api-key", "create", "--tenant", "acme"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let log = dir.path().join("serve.log");
    let mut child = command(dir.path(), &env)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !http
        .get(format!("{base}/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, factor) = post(
        &http,
        format!("{base}/auth/factors/enroll"),
        &key,
        json!({"type": "generic_otp"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{factor}");
    let factor = factor["id"].as_str().unwrap().to_owned();

    // Requests in flight at the signal: head and half the body sent.
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        let (id, code) = challenge(&http, &base, &key, &factor).await.unwrap();
        let body = json!({"code": code}).to_string();
        let (first, rest) = body.split_at(body.len() / 2);
        let mut s = TcpStream::connect(&listen).await.unwrap();
        let head = format!(
            "POST /auth/challenges/{id}/verify HTTP/1.1\r\nHost: {listen}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        in_flight.push((id, s, rest.to_owned()));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(worker(
                base.clone(),
                key.clone(),
                factor.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // Let the load get going: at least 20 verifications acknowledged in all, shown by the
    // server's own counter.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let scrape = openmetrics_parser::prometheus::parse_prometheus(&text).unwrap();
        let valid =
            super::metrics::value(&scrape, "mfad_verifications_total", &[("outcome", "valid")]);
        if valid >= 20.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // The listener closes at once: new connections are refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&listen).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The requests it had begun reading still get their answer, and then the connection
    // closes (no keep-alive during shutdown).
    let mut finished = Vec::new();
    for (id, mut s, rest) in in_flight {
        s.write_all(rest.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert!(answer.contains("\"valid\":true"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        finished.push(id);
    }
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = finished.clone();
    let mut stopped = 0;
    for w in workers {
        let w = w.await.unwrap();
        acknowledged.extend(w.acknowledged);
        stopped += usize::from(w.stopped_by.is_some());
    }

    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(exit.code(), Some(0), "{log_text}");
    assert!(
        log_text.contains("shutting down") && log_text.contains("stopped"),
        "{log_text}"
    );
    assert!(stopped > 0, "the workers ran into the shutdown");
    // Nothing acknowledged is lost.
    assert!(acknowledged.len() >= 23, "{}", acknowledged.len());
    assert_eq!(
        all_verified(&db_url, &acknowledged).await,
        acknowledged.len()
    );
    drop(pg);
}
