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
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 421),
        "{statuses:?}"
    );

    // One recovery code, many logins at once: one wins.
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
