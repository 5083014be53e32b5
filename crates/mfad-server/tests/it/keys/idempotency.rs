//! `Idempotency-Key` on POST: a retried SMS challenge sends one SMS and replays the first
//! answer; a race of identical requests (on one server, and across two `mfad` processes on
//! one database) runs once; the key with another request is a 422; an expired entry runs
//! again and is purged; FusionAuth routes honour it too; stored responses are sealed.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Site, post};
use crate::support::twilio_standin;
use crate::support::{Options, PHONE, TestApp, relaxed_sends, spawn_relaxed, spawn_with};

const RACE: usize = 12;

fn url(app: &TestApp, path: &str) -> String {
    format!("http://{}{path}", app.addr)
}

async fn sms_factor(app: &TestApp) -> String {
    let f = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    f["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_retried_sms_challenge_sends_one_sms_and_replays_the_first_answer() {
    let app = spawn_relaxed().await;
    let factor = sms_factor(&app).await;
    let bearer = format!("Bearer {}", app.key);
    let path = url(&app, &format!("/auth/factors/{factor}/challenge"));
    let first = post(&app.http, &path, &bearer, Some("retry-1"), &json!({})).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(!first.replayed);
    let again = post(&app.http, &path, &bearer, Some("retry-1"), &json!({})).await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert!(again.replayed);
    assert_eq!(app.sms_count(), 1, "the retry sent a second SMS");

    // The same key with another body, or on another route, is refused in WorkOS's shape.
    let other = post(
        &app.http,
        &path,
        &bearer,
        Some("retry-1"),
        &json!({"sms_template": "Your code: {{code}}"}),
    )
    .await;
    assert_eq!(other.status, 422, "{other:?}");
    assert_eq!(other.body["code"], "idempotency_error");
    assert!(other.body["message"].is_string());
    let elsewhere = post(
        &app.http,
        &url(&app, "/auth/factors/enroll"),
        &bearer,
        Some("retry-1"),
        &json!({"type": "generic_otp"}),
    )
    .await;
    assert_eq!(elsewhere.status, 422, "{elsewhere:?}");
    assert_eq!(app.sms_count(), 1);

    // Keys are per API key: another tenant's identical key is its own entry.
    let theirs = post(
        &app.http,
        &url(&app, "/auth/factors/enroll"),
        &format!("Bearer {}", app.other_key),
        Some("retry-1"),
        &json!({"type": "generic_otp"}),
    )
    .await;
    assert_eq!(theirs.status, 201, "{theirs:?}");
    assert!(!theirs.replayed);

    // A new key is a new request; a malformed one is refused.
    let fresh = post(&app.http, &path, &bearer, Some("retry-2"), &json!({})).await;
    assert_eq!(fresh.status, 201);
    assert_ne!(fresh.body["id"], first.body["id"]);
    assert_eq!(app.sms_count(), 2);
    let bad = post(
        &app.http,
        &path,
        &bearer,
        Some(&"k".repeat(300)),
        &json!({}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "invalid_idempotency_key");
    // Without the header nothing changes: every request runs.
    post(&app.http, &path, &bearer, None, &json!({})).await;
    post(&app.http, &path, &bearer, None, &json!({})).await;
    assert_eq!(app.sms_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_of_identical_requests_runs_once() {
    let app = Arc::new(spawn_relaxed().await);
    let factor = sms_factor(&app).await;
    let path = url(&app, &format!("/auth/factors/{factor}/challenge"));
    let barrier = Arc::new(tokio::sync::Barrier::new(RACE));
    let tasks: Vec<_> = (0..RACE)
        .map(|_| {
            let (app, path, barrier) = (app.clone(), path.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let bearer = format!("Bearer {}", app.key);
                post(&app.http, &path, &bearer, Some("race"), &json!({})).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_one_execution(&answers);
    assert_eq!(app.sms_count(), 1, "{answers:?}");
}

/// Every answer is the one execution's (replayed or not) or a 409 "still running"; exactly
/// one is not a replay.
fn assert_one_execution(answers: &[super::Answer]) {
    let ran: Vec<_> = answers
        .iter()
        .filter(|a| a.status == 201 && !a.replayed)
        .collect();
    assert_eq!(ran.len(), 1, "{answers:?}");
    for a in answers {
        match a.status {
            201 => assert_eq!(a.body["id"], ran[0].body["id"]),
            409 => assert_eq!(a.body["code"], "idempotency_error"),
            other => panic!("unexpected {other}: {a:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_error_is_not_kept_so_the_retry_runs_again() {
    // Twilio unreachable: the challenge fails with a 5xx.
    let mut vars = relaxed_sends();
    vars.push(("MFAD_TWILIO_BASE_URL", "http://127.0.0.1:9".into()));
    let app = spawn_with(Options {
        vars,
        ..Options::default()
    })
    .await;
    let factor = sms_factor(&app).await;
    let bearer = format!("Bearer {}", app.key);
    let path = url(&app, &format!("/auth/factors/{factor}/challenge"));
    let first = post(&app.http, &path, &bearer, Some("down"), &json!({})).await;
    assert!(first.status >= 500, "{first:?}");
    let again = post(&app.http, &path, &bearer, Some("down"), &json!({})).await;
    assert_eq!(again.status, first.status);
    assert!(!again.replayed, "a 5xx was replayed: {again:?}");
    // Released, not kept: the key is free for another request too.
    let other = post(
        &app.http,
        &url(&app, "/auth/factors/enroll"),
        &bearer,
        Some("down"),
        &json!({"type": "generic_otp"}),
    )
    .await;
    assert_eq!(other.status, 201, "{other:?}");
}

#[tokio::test]
async fn an_expired_entry_runs_again_and_is_purged() {
    let app = spawn_relaxed().await;
    let factor = sms_factor(&app).await;
    let bearer = format!("Bearer {}", app.key);
    let path = url(&app, &format!("/auth/factors/{factor}/challenge"));
    let first = post(&app.http, &path, &bearer, Some("day"), &json!({})).await;
    app.advance(23 * 3600);
    let within = post(&app.http, &path, &bearer, Some("day"), &json!({})).await;
    assert!(within.replayed);
    assert_eq!(within.body, first.body);
    assert_eq!(app.sms_count(), 1);
    app.advance(3600);
    let after = post(&app.http, &path, &bearer, Some("day"), &json!({})).await;
    assert_eq!(after.status, 201);
    assert!(!after.replayed, "a key older than 24 h is a new request");
    assert_eq!(app.sms_count(), 2);

    // Purged after expiry: then the counts of sealed values lose it too.
    let count = || async {
        app.app_state
            .service
            .key_usage()
            .await
            .unwrap()
            .iter()
            .map(|u| u.count)
            .sum::<u64>()
    };
    let before = count().await;
    app.advance(25 * 3600);
    app.app_state.service.purge_expired().await.unwrap();
    assert_eq!(count().await, before - 1);
}

#[tokio::test]
async fn fusionauth_routes_honour_it_and_responses_are_stored_sealed() {
    let app = spawn_relaxed().await;
    let send = url(&app, "/api/two-factor/send");
    let body = json!({"userId": "7f0c8f3e-2a55-4b8e-9d0e-5f6a7b8c9d0e", "method": "sms", "mobilePhone": PHONE});
    let first = post(&app.http, &send, &app.key, Some("fa-1"), &body).await;
    assert_eq!(first.status, 200, "{first:?}");
    let again = post(&app.http, &send, &app.key, Some("fa-1"), &body).await;
    assert_eq!(again.status, 200);
    assert!(again.replayed);
    assert_eq!(app.sms_count(), 1);
    let other = post(&app.http, &send, &app.key, Some("fa-1"), &json!({})).await;
    assert_eq!(other.status, 422);
    assert_eq!(
        other.body["generalErrors"][0]["code"],
        "[idempotency_error]"
    );

    // A TOTP secret in a stored enroll response is not in the database in clear.
    let enroll = post(
        &app.http,
        &url(&app, "/auth/factors/enroll"),
        &format!("Bearer {}", app.key),
        Some("enroll"),
        &json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "a@x"}),
    )
    .await;
    let secret = enroll.body["totp"]["secret"].as_str().unwrap().to_owned();
    let dump: Value = dump_idempotency_rows(&app).await;
    assert!(!dump.to_string().contains(&secret));
    assert!(!dump.to_string().contains("otpauth"));
}

/// Every stored idempotent response, as the database holds it (hex), on either backend.
async fn dump_idempotency_rows(app: &TestApp) -> Value {
    use sqlx::Row;
    let rows: Vec<String> = match &app.pg {
        Some(pg) => {
            let pool = sqlx::PgPool::connect(pg.url()).await.unwrap();
            sqlx::query("SELECT encode(response, 'hex') AS r FROM idempotency_keys")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("r"))
                .collect()
        }
        None => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_path.display()))
                .await
                .unwrap();
            sqlx::query("SELECT hex(response) AS r FROM idempotency_keys")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("r"))
                .collect()
        }
    };
    assert!(rows.len() >= 2);
    // The hex of the secret's ASCII would show it too.
    let text: Vec<String> = rows
        .iter()
        .map(|h| {
            String::from_utf8_lossy(
                &data_encoding::HEXUPPER_PERMISSIVE
                    .decode(h.as_bytes())
                    .unwrap(),
            )
            .into_owned()
        })
        .collect();
    json!(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_across_two_processes_on_one_database_runs_once() {
    let site = Site::new().await;
    let (twilio, sms) = twilio_standin().await;
    let master = mfad_crypto::generate_master_key_text().unwrap().to_string();
    let env = [
        ("MFAD_MASTER_KEYS", master.as_str()),
        ("MFAD_SMS_PROVIDER", "twilio"),
        ("MFAD_TWILIO_BASE_URL", twilio.as_str()),
        (
            "MFAD_TWILIO_ACCOUNT_SID",
            crate::support::TWILIO_ACCOUNT_SID,
        ),
        ("MFAD_TWILIO_AUTH_TOKEN", crate::support::TWILIO_AUTH_TOKEN),
        ("MFAD_TWILIO_FROM", "+15005550006"),
    ];
    let key = site.api_key(&env);
    let bearer = format!("Bearer {key}");
    let nodes = [site.serve("a", &env).await, site.serve("b", &env).await];
    let http = reqwest::Client::new();
    let f = post(
        &http,
        &format!("{}/auth/factors/enroll", nodes[0].url),
        &bearer,
        None,
        &json!({"type": "sms", "phone_number": PHONE}),
    )
    .await;
    let factor = f.body["id"].as_str().unwrap().to_owned();
    let barrier = Arc::new(tokio::sync::Barrier::new(RACE));
    let tasks: Vec<_> = (0..RACE)
        .map(|i| {
            let path = format!("{}/auth/factors/{factor}/challenge", nodes[i % 2].url);
            let (http, bearer, barrier) = (http.clone(), bearer.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                post(&http, &path, &bearer, Some("retry-9d1e"), &json!({})).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_one_execution(&answers);
    assert_eq!(sms.lock().unwrap().len(), 1, "{answers:?}");
}
