//! Send limits on the WorkOS API (SMS-pumping defence): a burst of challenges on one SMS
//! factor texts at most the per-number limit, refusals are `429 {code, message}` with
//! `Retry-After` and create nothing, and denied countries are refused at enrollment and
//! at send. Time moves on the manual clock only.

use serde_json::{Value, json};

use crate::support::*;

/// Challenges a factor; returns status, body and `Retry-After`.
async fn challenge(app: &TestApp, fid: &str) -> (u16, Value, Option<u64>) {
    let resp = app
        .http
        .post(app.url(&format!("/auth/factors/{fid}/challenge")))
        .bearer_auth(&app.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let r = read(resp).await;
    (r.status, r.body, retry)
}

fn texts_to(app: &TestApp, phone: &str) -> usize {
    app.sms
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.to == phone)
        .count()
}

#[tokio::test]
async fn fifty_challenges_in_a_minute_text_once_and_are_refused_with_retry_after() {
    let app = spawn_app().await;
    let f = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    let fid = f["id"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let (status, body, retry) = challenge(&app, fid).await;
        if status == 429 {
            assert_eq!(body["code"], "rate_limit_exceeded", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("No SMS was sent")
            );
            let retry = retry.expect("a 429 carries Retry-After");
            assert!((1..=30).contains(&retry), "{retry}");
        } else {
            assert_eq!(status, 201, "{body}");
        }
        statuses.push(status);
        app.clock.advance(time::Duration::milliseconds(1200));
    }
    // 50 requests over 59 s: the 30 s cooldown lets through the first and the one 30 s
    // later, well under the per-number hourly limit of 5.
    let sent = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(texts_to(&app, PHONE), sent);
    assert_eq!(sent, 2, "{statuses:?}");
}

#[tokio::test]
async fn the_hourly_and_daily_limits_per_number_hold_past_the_cooldown() {
    let app = spawn_app().await;
    let f = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    let fid = f["id"].as_str().unwrap();
    // One challenge every 31 s (past the cooldown): the sixth within the hour is refused,
    // and Retry-After says when the first of the five leaves the hour.
    for _ in 0..5 {
        assert_eq!(challenge(&app, fid).await.0, 201);
        app.clock.advance(time::Duration::seconds(31));
    }
    let (status, body, retry) = challenge(&app, fid).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry, Some(3600 - 5 * 31));
    assert_eq!(texts_to(&app, PHONE), 5);
    // Nothing was created for the refused challenge: its 429 names no challenge id.
    assert!(body.get("id").is_none());
    // After the hour, five more, then the day's 10 are used up until a day after the first.
    app.clock.advance(time::Duration::seconds(3600));
    for _ in 0..5 {
        assert_eq!(challenge(&app, fid).await.0, 201);
        app.clock.advance(time::Duration::seconds(31));
    }
    app.clock.advance(time::Duration::seconds(3600));
    let (status, _, retry) = challenge(&app, fid).await;
    assert_eq!(status, 429);
    let elapsed = 5 * 31 + 3600 + 5 * 31 + 3600;
    assert_eq!(retry, Some(86_400 - elapsed));
    assert_eq!(texts_to(&app, PHONE), 10);
    app.clock.advance(time::Duration::seconds(
        i64::try_from(86_400 - elapsed).unwrap(),
    ));
    assert_eq!(challenge(&app, fid).await.0, 201);
}

#[tokio::test]
async fn a_denied_country_is_refused_at_enrollment_and_at_send() {
    let app = spawn_with(Options {
        vars: vec![("MFAD_SMS_DENIED_COUNTRIES", "GB".into())],
        ..Options::default()
    })
    .await;
    let r = app
        .call(
            "POST",
            "/auth/factors/enroll",
            Some(json!({"type": "sms", "phone_number": "+44 20 7946 0958"})),
        )
        .await;
    assert_error(&r, 422, "sms_country_not_allowed");
    assert!(r.text.contains("GB"), "{}", r.text);
    // A US number is fine; then the tenant narrows its own rules to Canada only, which
    // running servers apply from the next send.
    let f = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    let fid = f["id"].as_str().unwrap();
    let rules = mfad_core::send_limits::CountryRules::parse("CA", "").unwrap();
    app.app_state
        .service
        .set_tenant_sms_countries(&app.tenant, Some(&rules))
        .await
        .unwrap();
    let (status, body, _) = challenge(&app, fid).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("sms_country_not_allowed"))
    );
    assert_eq!(texts_to(&app, PHONE), 0);
    // Another tenant is not affected.
    let other = app
        .call_as(
            &app.other_key.clone(),
            "POST",
            "/auth/factors/enroll",
            Some(json!({"type": "sms", "phone_number": PHONE})),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.text);
    app.app_state
        .service
        .set_tenant_sms_countries(&app.tenant, None)
        .await
        .unwrap();
    assert_eq!(challenge(&app, fid).await.0, 201);
    assert_eq!(texts_to(&app, PHONE), 1);
}

#[tokio::test]
async fn the_tenant_hourly_cap_counts_every_number() {
    let app = spawn_with(Options {
        vars: vec![("MFAD_SMS_PER_TENANT_HOUR", "3".into())],
        ..Options::default()
    })
    .await;
    let mut factors = Vec::new();
    for n in [
        "+14155552671",
        "+14155552672",
        "+14155552673",
        "+14155552674",
    ] {
        let f = app.enroll(json!({"type": "sms", "phone_number": n})).await;
        factors.push(f["id"].as_str().unwrap().to_owned());
    }
    for fid in &factors[..3] {
        assert_eq!(challenge(&app, fid).await.0, 201);
    }
    let (status, body, retry) = challenge(&app, &factors[3]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry, Some(3600));
    // The other tenant has its own budget.
    let f = app
        .call_as(
            &app.other_key.clone(),
            "POST",
            "/auth/factors/enroll",
            Some(json!({"type": "sms", "phone_number": PHONE})),
        )
        .await;
    let r = app
        .call_as(
            &app.other_key.clone(),
            "POST",
            &format!("/auth/factors/{}/challenge", f.body["id"].as_str().unwrap()),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}
