//! The FusionAuth storage (methods, recovery codes, sent codes, logins, trusts, per-user
//! failure counts) on PostgreSQL: the main flows and the races, on a fresh database each.
//! They run when `MFAD_TEST_DATABASE_URL` is set (or `CI`, see `mfad_store::testing`) and
//! are skipped otherwise; everything else in this binary runs on SQLite.

use serde_json::json;

use crate::support::*;

async fn pg_app() -> Option<TestApp> {
    if mfad_store::testing::admin_url_from_env().is_none() {
        eprintln!("skipped: set MFAD_TEST_DATABASE_URL to run the PostgreSQL tests");
        return None;
    }
    Some(
        spawn_with(Options {
            postgres: true,
            // These flows resend to one number; send limits have their own tests.
            vars: relaxed_sends(),
            ..Options::default()
        })
        .await,
    )
}

#[tokio::test]
async fn full_flow_on_postgres() {
    let Some(app) = pg_app().await else { return };
    let user = uuid();
    assert_eq!(app.status(&user).await, 200);
    let (secret, body) = app.enable_authenticator(&user).await;
    let recovery: Vec<String> = body["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(app.status(&user).await, 242);
    app.enable_sms(&user, PHONE).await.assert_empty(200);
    let sms_id = app.method_id(&user, "sms").await;
    let r = app
        .key_call(
            "PUT",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"methodId": sms_id, "name": "Mobile"})),
        )
        .await;
    r.assert_empty(200);

    // TOTP login with trust.
    let started = app.start(&user).await;
    assert_eq!(started["methods"][1]["name"], "Mobile");
    let r = app
        .call_with(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"twoFactorId": started["twoFactorId"], "code": app.totp(&secret), "trustComputer": true})),
        )
        .await;
    let trust = r.assert_json(200)["twoFactorTrustId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status/{trust}?userId={user}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Texted code, after a new send replaced the start code.
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.call_with(
        "POST",
        &format!("/api/two-factor/send/{tfid}"),
        Auth::None,
        Some(json!({"methodId": sms_id})),
    )
    .await
    .assert_empty(200);
    let r = app.login(tfid, &app.last_sms_code(PHONE)).await;
    assert_eq!(r.assert_json(200)["methodId"], sms_id.as_str());

    // Recovery code once; retrieve and regenerate.
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &recovery[0])
        .await
        .assert_json(200);
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &recovery[0])
        .await
        .assert_empty(421);
    let path = format!("/api/user/two-factor/recovery-code/{user}");
    assert_eq!(
        app.key_call("GET", &path, None).await.body["recoveryCodes"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
    assert_eq!(
        app.key_call("POST", &path, None).await.body["recoveryCodes"]
            .as_array()
            .unwrap()
            .len(),
        10
    );

    // Brute force ends a login; expiry ends another.
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    let wrong = if started["code"] == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..5 {
        app.login(tfid, wrong).await.assert_empty(421);
    }
    app.login(tfid, started["code"].as_str().unwrap())
        .await
        .assert_empty(404);
    let started = app.start(&user).await;
    app.advance(301);
    app.login(
        started["twoFactorId"].as_str().unwrap(),
        started["code"].as_str().unwrap(),
    )
    .await
    .assert_empty(404);
    // Starting again purges what expired.
    app.start(&user).await;

    // Disable the SMS method with a sent code (DELETE body), then everything with a
    // recovery code... of the fresh set.
    app.key_call(
        "POST",
        "/api/two-factor/send",
        Some(json!({"userId": user, "methodId": sms_id})),
    )
    .await
    .assert_empty(200);
    let code = app.last_sms_code(PHONE);
    app.key_call(
        "DELETE",
        &format!("/api/user/two-factor/{user}"),
        Some(json!({"methodId": sms_id, "code": code})),
    )
    .await
    .assert_empty(200);
    let fresh = app.key_call("GET", &path, None).await.body["recoveryCodes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    app.key_call(
        "DELETE",
        &format!("/api/user/two-factor/{user}?code={fresh}"),
        None,
    )
    .await
    .assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
    assert_eq!(
        app.key_call("GET", &path, None).await.body["recoveryCodes"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_many_logins_on_postgres() {
    let Some(app) = pg_app().await else { return };
    let user = uuid();
    let (secret, body) = app.enable_authenticator(&user).await;
    for code in [
        app.totp(&secret),
        body["recoveryCodes"][0].as_str().unwrap().to_owned(),
    ] {
        let mut ids = Vec::new();
        for _ in 0..8 {
            ids.push(
                app.start(&user).await["twoFactorId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let handles: Vec<_> = ids
            .into_iter()
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
        let mut statuses = Vec::new();
        for h in handles {
            statuses.push(h.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn workos_and_fusionauth_share_factors_on_postgres() {
    let Some(app) = pg_app().await else { return };
    let user = uuid();
    let r = app
        .call_with(
            "POST",
            &format!("/user_management/users/{user}/auth_factors"),
            Auth::Jwt(&app.key),
            Some(json!({"type": "totp"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let started = app.start(&user).await;
    assert_eq!(started["methods"][0]["method"], "authenticator");
    app.enable_sms(&user, PHONE).await;
    let r = app
        .call_with(
            "GET",
            &format!("/user_management/users/{user}/auth_factors"),
            Auth::Jwt(&app.key),
            None,
        )
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
}
