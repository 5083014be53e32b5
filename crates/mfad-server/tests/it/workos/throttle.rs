//! Brute-force throttling on the WorkOS API, on the manual clock: consecutive wrong codes
//! per factor across challenges, a growing delay after the threshold (5, then 30 s
//! doubling up to 1 h), the hard cap (100) and the real `mfad factor` CLI lifting it on
//! the same database, with the server still running.

use std::process::Command;

use serde_json::json;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_mfad");

/// A TOTP factor and its base32 secret.
async fn totp_factor(app: &TestApp) -> (String, String) {
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "ada"}))
        .await;
    (
        f["id"].as_str().unwrap().to_owned(),
        f["totp"]["secret"].as_str().unwrap().to_owned(),
    )
}

/// A code that is none of the factor's codes in the drift window now.
fn wrong_code(app: &TestApp, secret: &str) -> String {
    let near: Vec<String> = (-1..=1).map(|o| app.totp_code(secret, o)).collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn new_challenge(app: &TestApp, factor: &str) -> String {
    app.challenge(factor).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asserts the throttle's WorkOS refusal: 429, JSON `{code, message}`, `Retry-After`.
#[track_caller]
fn assert_throttled(r: &Resp, code: &str, retry_after: &str) {
    assert_error(r, 429, code);
    assert_eq!(r.retry_after.as_deref(), Some(retry_after), "{}", r.text);
}

/// The real CLI on the test server's data dir and database.
fn cli(app: &TestApp, args: &[&str]) -> String {
    let url = match &app.pg {
        Some(pg) => pg.url().to_owned(),
        None => format!("sqlite://{}", app.db_path.display()),
    };
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MFAD_DATA_DIR", app._dir.path())
        .env("MFAD_DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mfad {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn two_hundred_wrong_codes_are_throttled_capped_and_unlocked() {
    let app = spawn_app().await;
    let (factor, secret) = totp_factor(&app).await;

    // 200 wrong codes across 40 challenges, at once: only the threshold is judged.
    let mut judged = 0;
    for _ in 0..40 {
        let cid = new_challenge(&app, &factor).await;
        for _ in 0..5 {
            let r = app.verify(&cid, &wrong_code(&app, &secret)).await;
            if r.status == 201 {
                assert_eq!(r.body["valid"], false);
                judged += 1;
            } else {
                assert_throttled(&r, "too_many_failed_attempts", "30");
            }
        }
    }
    assert_eq!(judged, 5, "the threshold, then the delay");
    // The right code is refused unjudged too, and refusals do not extend the delay.
    let cid = new_challenge(&app, &factor).await;
    let r = app.verify(&cid, &app.totp_code(&secret, 0)).await;
    assert_throttled(&r, "too_many_failed_attempts", "30");

    // On the clock, guessing goes on only at the delay's pace: 30 s doubling to 1 h.
    app.clock.advance(time::Duration::seconds(29));
    let cid = new_challenge(&app, &factor).await;
    assert_throttled(
        &app.verify(&cid, &wrong_code(&app, &secret)).await,
        "too_many_failed_attempts",
        "1",
    );
    app.clock.advance(time::Duration::seconds(1));
    let mut failures = 5;
    while failures < 100 {
        let cid = new_challenge(&app, &factor).await;
        let r = app.verify(&cid, &wrong_code(&app, &secret)).await;
        assert_eq!((r.status, &r.body["valid"]), (201, &json!(false)), "{r:?}");
        failures += 1;
        if failures == 100 {
            break;
        }
        let delay = (30i64 << (failures - 5).min(20)).min(3600);
        let r = app.verify(&cid, &wrong_code(&app, &secret)).await;
        assert_throttled(&r, "too_many_failed_attempts", &delay.to_string());
        app.clock.advance(time::Duration::seconds(delay));
    }

    // The cap: the right code is refused, however long one waits.
    app.clock.advance(time::Duration::days(2));
    let cid = new_challenge(&app, &factor).await;
    let r = app.verify(&cid, &app.totp_code(&secret, 0)).await;
    assert_throttled(&r, "authentication_factor_locked", "3600");

    let shown = cli(&app, &["factor", "show", &factor]);
    assert!(shown.contains("consecutive failures: 100"), "{shown}");
    assert!(shown.contains("state: locked"), "{shown}");

    // The operator unlocks it; the running server judges the next code at once.
    cli(&app, &["factor", "unlock", &factor]);
    let r = app.verify(&cid, &app.totp_code(&secret, 0)).await;
    assert_eq!((r.status, &r.body["valid"]), (201, &json!(true)), "{r:?}");
    let shown = cli(&app, &["factor", "show", &factor]);
    assert!(shown.contains("consecutive failures: 0"), "{shown}");
    assert!(shown.contains("state: open"), "{shown}");
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let app = spawn_app().await;
    let (factor, secret) = totp_factor(&app).await;
    for round in 0..3 {
        let cid = new_challenge(&app, &factor).await;
        for _ in 0..4 {
            let r = app.verify(&cid, &wrong_code(&app, &secret)).await;
            assert_eq!((r.status, &r.body["valid"]), (201, &json!(false)), "{r:?}");
        }
        // A code of the next step: each round's success uses a new step.
        app.clock.advance(time::Duration::seconds(30));
        let r = app.verify(&cid, &app.totp_code(&secret, 0)).await;
        assert_eq!(
            (r.status, &r.body["valid"]),
            (201, &json!(true)),
            "round {round}: {r:?}"
        );
    }
    // Without a success, the fifth consecutive wrong code starts the delay.
    let cid = new_challenge(&app, &factor).await;
    for _ in 0..4 {
        app.verify(&cid, &wrong_code(&app, &secret)).await;
    }
    let cid = new_challenge(&app, &factor).await;
    let r = app.verify(&cid, &wrong_code(&app, &secret)).await;
    assert_eq!(r.status, 201, "the fifth is judged");
    assert_throttled(
        &app.verify(&cid, &wrong_code(&app, &secret)).await,
        "too_many_failed_attempts",
        "30",
    );
}

#[tokio::test]
async fn generic_otp_guesses_count_per_factor_across_challenges() {
    let app = spawn_app().await;
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let fid = f["id"].as_str().unwrap();
    let mut judged = 0;
    for _ in 0..10 {
        let ch = app.challenge(fid).await;
        let right = ch["code"].as_str().unwrap();
        let wrong = if right == "000000" {
            "000001"
        } else {
            "000000"
        };
        let r = app.verify(ch["id"].as_str().unwrap(), wrong).await;
        if r.status == 201 {
            judged += 1;
        } else {
            assert_throttled(&r, "too_many_failed_attempts", "30");
        }
    }
    assert_eq!(judged, 5);
}
