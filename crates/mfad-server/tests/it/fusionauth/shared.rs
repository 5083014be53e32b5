//! One domain model: a FusionAuth method is a WorkOS factor, under the same guarantees.

use serde_json::{Value, json};

use crate::support::*;

async fn workos(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Resp {
    app.call_with(method, path, Auth::Jwt(&app.key), body).await
}

#[tokio::test]
async fn methods_enabled_here_are_listed_by_workos() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_authenticator(&user).await;
    app.enable_sms(&user, PHONE).await;
    // Ids order by creation time, to the millisecond: keep the three apart.
    app.advance(1);
    app.key_call(
        "POST",
        "/api/two-factor/send",
        Some(json!({"userId": user, "method": "email", "email": "ada@example.com"})),
    )
    .await
    .assert_empty(200);
    let code = app.last_email_code("ada@example.com");
    app.key_call(
        "POST",
        &format!("/api/user/two-factor/{user}"),
        Some(json!({"method": "email", "email": "ada@example.com", "code": code})),
    )
    .await
    .assert_empty(200);

    let r = workos(
        &app,
        "GET",
        &format!("/user_management/users/{user}/auth_factors?order=asc"),
        None,
    )
    .await;
    let data = r.assert_json(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["type"], "totp");
    assert_eq!(data[0]["user_id"], user.as_str());
    assert!(data[0]["totp"].get("secret").is_none());
    assert_eq!(data[1]["type"], "sms");
    assert_eq!(data[1]["sms"]["phone_number"], PHONE);
    // Email is not a WorkOS type; WorkOS shows (and treats) it as generic OTP.
    assert_eq!(data[2]["type"], "generic_otp");
    // …so a WorkOS challenge hands the code to the caller (the API key holder) and emails
    // nothing.
    let mails = app.mail.lock().unwrap().len();
    let email_factor = data[2]["id"].as_str().unwrap();
    let r = workos(
        &app,
        "POST",
        &format!("/auth/factors/{email_factor}/challenge"),
        Some(json!({})),
    )
    .await;
    let code = r.assert_json(201)["code"].as_str().unwrap().to_owned();
    let challenge = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.mail.lock().unwrap().len(), mails);
    let r = workos(
        &app,
        "POST",
        &format!("/auth/challenges/{challenge}/verify"),
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(r.body["valid"], true, "{}", r.text);

    // The other tenant's WorkOS view has none of them.
    let r = app
        .call_with(
            "GET",
            &format!("/user_management/users/{user}/auth_factors"),
            Auth::Jwt(&app.other_key),
            None,
        )
        .await;
    assert_eq!(r.body["data"], json!([]));

    // Deleting through WorkOS removes the method here.
    let id = data[1]["id"].as_str().unwrap();
    workos(&app, "DELETE", &format!("/auth/factors/{id}"), None).await;
    let started = app.start(&user).await;
    let kinds: Vec<&str> = started["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["authenticator", "email"]);
}

#[tokio::test]
async fn workos_factors_are_methods_here_with_one_replay_guard() {
    let app = spawn_app().await;
    let user = uuid();
    let r = workos(
        &app,
        "POST",
        &format!("/user_management/users/{user}/auth_factors"),
        Some(json!({"type": "totp"})),
    )
    .await;
    let enrolled = r.assert_json(201).clone();
    let b32 = enrolled["authentication_factor"]["totp"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).unwrap();
    let totp = || mfad_otp::Totp::default().code_at(&key, app.now_unix());

    // Listed here, with a method id, and the user now needs a second factor.
    assert_eq!(app.status(&user).await, 242);
    let started = app.start(&user).await;
    let methods = started["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0]["method"], "authenticator");
    let method_id = methods[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.method_id(&user, "authenticator").await,
        method_id,
        "the id is stable"
    );

    // A code verified through WorkOS cannot be replayed here, and vice versa.
    let challenge = enrolled["authentication_challenge"]["id"].as_str().unwrap();
    let code = totp();
    let r = workos(
        &app,
        "POST",
        &format!("/auth/challenges/{challenge}/verify"),
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(r.body["valid"], true, "{}", r.text);
    app.login(started["twoFactorId"].as_str().unwrap(), &code)
        .await
        .assert_empty(421);

    app.advance(30);
    let code = totp();
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &code)
        .await
        .assert_json(200);
    let factor_id = enrolled["authentication_factor"]["id"].as_str().unwrap();
    let r = workos(
        &app,
        "POST",
        &format!("/auth/factors/{factor_id}/challenge"),
        Some(json!({})),
    )
    .await;
    let challenge = r.body["id"].as_str().unwrap().to_owned();
    let r = workos(
        &app,
        "POST",
        &format!("/auth/challenges/{challenge}/verify"),
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(r.body["valid"], false, "replayed across APIs: {}", r.text);

    // Disabling here deletes the WorkOS factor.
    app.advance(30);
    let r = app
        .key_call(
            "DELETE",
            &format!(
                "/api/user/two-factor/{user}?methodId={method_id}&code={}",
                totp()
            ),
            None,
        )
        .await;
    r.assert_empty(200);
    let r = workos(&app, "GET", &format!("/auth/factors/{factor_id}"), None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_with_one_totp_code_succeed_once() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, body) = app.enable_authenticator(&user).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(
            app.start(&user).await["twoFactorId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let statuses = concurrent_logins(&app, &ids, &app.totp(&secret)).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    // The others are replays: wrong codes (421), or refused by the user's throttle (409)
    // once five of them were counted.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 421 || *s == 409),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 421).count() <= 5,
        "{statuses:?}"
    );

    // One recovery code, many logins at once: one wins (once the replays' delay is over).
    app.advance(30);
    let recovery = body["recoveryCodes"][0].as_str().unwrap();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(
            app.start(&user).await["twoFactorId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let statuses = concurrent_logins(&app, &ids, recovery).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
}

/// Completes each login with `code`, all at once.
async fn concurrent_logins(app: &TestApp, ids: &[String], code: &str) -> Vec<u16> {
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let http = app.http.clone();
            let url = app.url("/api/two-factor/login");
            let body = json!({"twoFactorId": id, "code": code}).to_string();
            tokio::spawn(async move {
                http.post(url)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// One factor, one failure count: wrong codes through either API add up, the throttle
/// refuses both APIs in their own shapes, and a success through one clears it for both.
#[tokio::test]
async fn both_apis_share_one_failure_count_per_factor() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let list = workos(
        &app,
        "GET",
        &format!("/user_management/users/{user}/auth_factors"),
        None,
    )
    .await;
    let factor = list.body["data"][0]["id"].as_str().unwrap().to_owned();
    let wrong = |app: &TestApp| {
        let near: Vec<String> = [-30, 0, 30]
            .iter()
            .map(|d| {
                let key = b64(&secret);
                mfad_otp::Totp::default().code_at(&key, (app.now_unix() as i64 + d) as u64)
            })
            .collect();
        (0..)
            .map(|n| format!("{n:06}"))
            .find(|c| !near.contains(c))
            .unwrap()
    };
    let verify = |code: String| {
        let factor = factor.clone();
        let app = &app;
        async move {
            let ch = workos(
                app,
                "POST",
                &format!("/auth/factors/{factor}/challenge"),
                None,
            )
            .await;
            let cid = ch.body["id"].as_str().unwrap().to_owned();
            workos(
                app,
                "POST",
                &format!("/auth/challenges/{cid}/verify"),
                Some(json!({"code": code})),
            )
            .await
        }
    };
    // Three wrong codes on WorkOS, two on FusionAuth logins: five on the one factor.
    for _ in 0..3 {
        let r = verify(wrong(&app)).await;
        assert_eq!((r.status, &r.body["valid"]), (201, &json!(false)), "{r:?}");
    }
    for _ in 0..2 {
        let started = app.start(&user).await;
        app.login(started["twoFactorId"].as_str().unwrap(), &wrong(&app))
            .await
            .assert_empty(421);
    }
    // Both APIs now refuse, unjudged, even the right code.
    let r = verify(app.totp(&secret)).await;
    assert_eq!(
        (r.status, &r.body["code"]),
        (429, &json!("too_many_failed_attempts")),
        "{r:?}"
    );
    assert_eq!(r.retry_after.as_deref(), Some("30"));
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.login(tfid, &app.totp(&secret))
        .await
        .assert_throttled("[TooManyFailedAttempts]", "30");
    // After the delay, a right code on FusionAuth clears the count WorkOS sees.
    app.advance(30);
    app.login(tfid, &app.totp(&secret)).await.assert_json(200);
    for _ in 0..4 {
        let r = verify(wrong(&app)).await;
        assert_eq!((r.status, &r.body["valid"]), (201, &json!(false)), "{r:?}");
    }
}

/// Method ids are given at enrollment, through either API, so reading never writes.
#[tokio::test]
async fn workos_enrollment_gives_the_method_id_at_once() {
    let app = spawn_app().await;
    let user = uuid();
    let r = workos(
        &app,
        "POST",
        "/auth/factors/enroll",
        Some(json!({"type": "sms", "phone_number": PHONE, "user_id": user})),
    )
    .await;
    let fid = mfad_core::FactorId::parse(r.body["id"].as_str().unwrap()).unwrap();
    use mfad_core::store::Store;
    let stored = app
        .app_state
        .service
        .store()
        .get_factor(&app.tenant, &fid)
        .await
        .unwrap()
        .unwrap();
    let method_id = stored.method_id.expect("assigned at enrollment");
    // FusionAuth names it by that id; the status read changes nothing.
    assert_eq!(app.status(&user).await, 242);
    let started = app.start(&user).await;
    assert_eq!(started["methods"][0]["id"], method_id.as_str());
}
