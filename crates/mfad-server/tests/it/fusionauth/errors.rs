//! Error paths: each gets FusionAuth's status and body, and nothing changes.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn wrong_codes_are_421_with_an_empty_body_and_change_nothing() {
    let app = spawn_app().await;
    let user = uuid();
    // Enabling with a wrong code: 421, and no method appears.
    let secret = app.secret().await;
    let wrong = if app.totp(&secret) == "000000" {
        "000001"
    } else {
        "000000"
    };
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "authenticator", "secret": secret, "code": wrong})),
        )
        .await;
    r.assert_empty(421);
    assert_eq!(app.status(&user).await, 200);
    // A code from another step window is wrong too (±1 step only).
    app.advance(-90);
    let stale = app.totp(&secret);
    app.advance(90);
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "authenticator", "secret": secret, "code": stale})),
        )
        .await;
    r.assert_empty(421);
    // An SMS enable with no code sent, or the wrong one.
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "sms", "mobilePhone": PHONE, "code": "123456"})),
        )
        .await;
    r.assert_empty(421);

    let (secret, _) = app.enable_authenticator(&user).await;
    let id = app.method_id(&user, "authenticator").await;
    let bad = if app.totp(&secret) == "111111" {
        "222222"
    } else {
        "111111"
    };
    let r = app
        .key_call(
            "DELETE",
            &format!("/api/user/two-factor/{user}?methodId={id}&code={bad}"),
            None,
        )
        .await;
    r.assert_empty(421);
    let r = app
        .key_call(
            "DELETE",
            &format!("/api/user/two-factor/{user}?methodId={id}&code=AAAAA-BBBBB"),
            None,
        )
        .await;
    r.assert_empty(421);
    assert_eq!(app.status(&user).await, 242, "the method is still there");
}

#[tokio::test]
async fn sent_codes_expire_and_are_attempt_limited() {
    let app = spawn_app().await;
    let user = uuid();
    let send = || {
        app.key_call(
            "POST",
            "/api/two-factor/send",
            Some(json!({"userId": user, "method": "sms", "mobilePhone": PHONE})),
        )
    };
    let path = format!("/api/user/two-factor/{user}");
    let enable = |code: String| {
        app.key_call(
            "POST",
            &path,
            Some(json!({"method": "sms", "mobilePhone": PHONE, "code": code})),
        )
    };
    send().await.assert_empty(200);
    let code = app.last_sms_code(PHONE);
    app.advance(601);
    enable(code).await.assert_empty(421);

    send().await.assert_empty(200);
    let code = app.last_sms_code(PHONE);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        enable(wrong.into()).await.assert_empty(421);
    }
    enable(code).await.assert_empty(421);
    assert_eq!(app.status(&user).await, 200);

    // A new send replaces the old code.
    send().await.assert_empty(200);
    let old = app.last_sms_code(PHONE);
    send().await.assert_empty(200);
    let new = app.last_sms_code(PHONE);
    if old != new {
        enable(old).await.assert_empty(421);
    }
    assert_eq!(enable(new).await.status, 200);
}

#[tokio::test]
async fn unknown_users_are_404_with_an_empty_body() {
    let app = spawn_app().await;
    let nobody = uuid();
    for (method, path, body) in [
        (
            "DELETE",
            format!("/api/user/two-factor/{nobody}?code=123456"),
            None,
        ),
        (
            "PUT",
            format!("/api/user/two-factor/{nobody}"),
            Some(json!({"methodId": "ABCD", "name": "x"})),
        ),
        (
            "POST",
            "/api/two-factor/start".to_owned(),
            Some(json!({"userId": nobody})),
        ),
        (
            "POST",
            "/api/two-factor/send".to_owned(),
            Some(json!({"userId": nobody})),
        ),
        (
            "POST",
            format!("/api/user/two-factor/recovery-code/{nobody}"),
            None,
        ),
        (
            "GET",
            format!("/api/user/two-factor/recovery-code/{nobody}"),
            None,
        ),
    ] {
        let r = app.key_call(method, &path, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        assert_eq!(r.text, "");
    }
    // Status does not know users either, and they have no method: no second factor.
    assert_eq!(app.status(&nobody).await, 200);
}

#[tokio::test]
async fn expired_reused_and_unknown_two_factor_ids_are_404() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    app.enable_sms(&user, PHONE).await;

    // Expired: five minutes by default.
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.advance(300);
    app.login(tfid, &app.totp(&secret)).await.assert_empty(404);
    app.call_with(
        "POST",
        &format!("/api/two-factor/send/{tfid}"),
        Auth::None,
        Some(json!({})),
    )
    .await
    .assert_empty(404);

    // Reused.
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.login(tfid, started["code"].as_str().unwrap())
        .await
        .assert_json(200);
    app.login(tfid, started["code"].as_str().unwrap())
        .await
        .assert_empty(404);
    app.call_with(
        "POST",
        &format!("/api/two-factor/send/{tfid}"),
        Auth::None,
        Some(json!({})),
    )
    .await
    .assert_empty(404);

    // Never issued.
    app.login("YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4", "123456")
        .await
        .assert_empty(404);
}

#[tokio::test]
async fn brute_force_ends_the_login() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    let right = started["code"].as_str().unwrap();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..5 {
        app.login(tfid, wrong).await.assert_empty(421);
    }
    // The login is gone: even the right codes find nothing.
    app.login(tfid, right).await.assert_empty(404);
    app.login(tfid, &app.totp(&secret)).await.assert_empty(404);
    // A new login works.
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &app.totp(&secret))
        .await
        .assert_json(200);
}

#[tokio::test]
async fn guessing_across_logins_is_bounded_per_user() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let mut wrong_tries = 0;
    for _ in 0..2 {
        let started = app.start(&user).await;
        let tfid = started["twoFactorId"].as_str().unwrap();
        for _ in 0..5 {
            let code = if app.totp(&secret) == "000000" {
                "000001"
            } else {
                "000000"
            };
            app.login(tfid, code).await.assert_empty(421);
            wrong_tries += 1;
        }
    }
    assert_eq!(wrong_tries, 10);
    // Ten wrong codes in the window: even the right one is refused until it ends.
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.login(tfid, &app.totp(&secret)).await.assert_empty(421);
    app.advance(601);
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &app.totp(&secret))
        .await
        .assert_json(200);
}

#[tokio::test]
async fn sends_per_login_are_limited() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_sms(&user, PHONE).await;
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    for _ in 0..5 {
        app.call_with(
            "POST",
            &format!("/api/two-factor/send/{tfid}"),
            Auth::None,
            None,
        )
        .await
        .assert_empty(200);
    }
    let before = app.sms_count();
    app.call_with(
        "POST",
        &format!("/api/two-factor/send/{tfid}"),
        Auth::None,
        None,
    )
    .await
    .assert_empty(429);
    assert_eq!(app.sms_count(), before);
}

#[tokio::test]
async fn other_tenants_see_nothing_and_change_nothing() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, body) = app.enable_authenticator(&user).await;
    let id = app.method_id(&user, "authenticator").await;
    let other = Auth::Key(&app.other_key);
    let code = app.totp(&secret);
    let recovery = body["recoveryCodes"][0].as_str().unwrap();
    for (method, path, body) in [
        (
            "DELETE",
            format!("/api/user/two-factor/{user}?methodId={id}&code={code}"),
            None,
        ),
        (
            "DELETE",
            format!("/api/user/two-factor/{user}?code={recovery}"),
            None,
        ),
        (
            "PUT",
            format!("/api/user/two-factor/{user}"),
            Some(json!({"methodId": id, "name": "x"})),
        ),
        (
            "POST",
            "/api/two-factor/start".to_owned(),
            Some(json!({"userId": user})),
        ),
        (
            "POST",
            "/api/two-factor/send".to_owned(),
            Some(json!({"userId": user, "methodId": id})),
        ),
        (
            "GET",
            format!("/api/user/two-factor/recovery-code/{user}"),
            None,
        ),
        (
            "POST",
            format!("/api/user/two-factor/recovery-code/{user}"),
            None,
        ),
    ] {
        let r = app.call_with(method, &path, other.clone(), body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    let r = app
        .call_with(
            "GET",
            &format!("/api/two-factor/status?userId={user}"),
            other.clone(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "in the other tenant the user has no method");

    // A login of one tenant named under another's tenant id (or under no tenant id) is not
    // found, on both unauthenticated login routes (not the API-key routes' 400
    // [InvalidTenantId]); it stays usable.
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    let text = |s: &str| reqwest::header::HeaderValue::from_str(s).unwrap();
    for header in [
        text(app.other_tenant.as_str()),
        text(&app.other_tenant.as_uuid()),
        text("not-a-tenant"),
        reqwest::header::HeaderValue::from_bytes(b"tenant_\xff").unwrap(),
    ] {
        for path in [
            "/api/two-factor/login".to_owned(),
            format!("/api/two-factor/send/{tfid}"),
        ] {
            let r = read(
                app.request("POST", &path, Auth::None)
                    .header("X-FusionAuth-TenantId", header.clone())
                    .header("Content-Type", "application/json")
                    .body(json!({"twoFactorId": tfid, "code": code}).to_string())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            r.assert_empty(404);
        }
    }
    // Everything is as it was: the method, the recovery codes, the code, the login.
    let r = app
        .key_call(
            "GET",
            &format!("/api/user/two-factor/recovery-code/{user}"),
            None,
        )
        .await;
    assert_eq!(r.body["recoveryCodes"].as_array().unwrap().len(), 10);
    let r = read(
        app.request("POST", "/api/two-factor/login", Auth::None)
            .header("X-FusionAuth-TenantId", app.tenant.as_uuid())
            .header("Content-Type", "application/json")
            .body(json!({"twoFactorId": tfid, "code": code}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_json(200);
}

#[tokio::test]
async fn invalid_input_is_400_with_fusionauth_field_errors() {
    let app = spawn_app().await;
    let user = uuid();
    let path = format!("/api/user/two-factor/{user}");
    let secret = app.secret().await;
    let cases = [
        (
            json!({"method": "authenticator", "secret": secret}),
            "code",
            "[blank]code",
        ),
        (
            json!({"method": "carrier-pigeon", "code": "123456"}),
            "method",
            "[invalid]method",
        ),
        (json!({"code": "123456"}), "method", "[blank]method"),
        (
            json!({"method": "authenticator", "code": "123456"}),
            "secret",
            "[blank]secret",
        ),
        (
            json!({"method": "authenticator", "secret": "%%%", "code": "123456"}),
            "secret",
            "[invalid]secret",
        ),
        (
            json!({"method": "authenticator", "secretBase32Encoded": "1", "code": "123456"}),
            "secretBase32Encoded",
            "[invalid]secretBase32Encoded",
        ),
        (
            json!({"method": "sms", "code": "123456"}),
            "mobilePhone",
            "[blank]mobilePhone",
        ),
        (
            json!({"method": "sms", "mobilePhone": "555", "code": "123456"}),
            "mobilePhone",
            "[invalid]mobilePhone",
        ),
        (
            json!({"method": "email", "code": "123456"}),
            "email",
            "[blank]email",
        ),
        (
            json!({"method": "email", "email": "not an address", "code": "123456"}),
            "email",
            "[invalid]email",
        ),
        (
            json!({"delivery": "Pigeon", "code": "123456"}),
            "delivery",
            "[invalid]delivery",
        ),
        (
            json!({"method": ["authenticator"], "code": "1"}),
            "method",
            "[invalid]method",
        ),
    ];
    for (body, field, code) in cases {
        let r = app.key_call("POST", &path, Some(body.clone())).await;
        r.assert_field_error(field, code);
    }
    // Malformed JSON and a JSON array: FusionAuth's [invalid] general error.
    for raw in ["{\"method\":", "[1,2]"] {
        let r = read(
            app.request("POST", &path, Auth::Key(&app.key))
                .header("Content-Type", "application/json")
                .body(raw)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["generalErrors"][0]["code"], "[invalid]");
    }
    // Status needs a user; the TypeScript `undefined` is no user.
    let r = app
        .key_call(
            "GET",
            "/api/two-factor/status?userId=undefined&applicationId=null",
            None,
        )
        .await;
    r.assert_field_error("userId", "[blank]userId");
    // Login needs an id and a code.
    let r = app
        .call_with(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"code": "123456"})),
        )
        .await;
    r.assert_field_error("twoFactorId", "[blank]twoFactorId");
    let r = app
        .call_with(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"twoFactorId": "x"})),
        )
        .await;
    r.assert_field_error("code", "[blank]code");
    // Numbers are read as text, as FusionAuth's Jackson reads them.
    let code: u32 = app.totp(&secret).parse().unwrap();
    let r = app
        .key_call(
            "POST",
            &path,
            Some(json!({"method": "authenticator", "secret": secret, "code": code})),
        )
        .await;
    if code >= 100_000 {
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test]
async fn codes_cannot_be_sent_to_an_authenticator() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_authenticator(&user).await;
    let id = app.method_id(&user, "authenticator").await;
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/send",
            Some(json!({"userId": user, "methodId": id})),
        )
        .await;
    r.assert_field_error("methodId", "[invalid]methodId");
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    let r = app
        .call_with(
            "POST",
            &format!("/api/two-factor/send/{tfid}"),
            Auth::None,
            Some(json!({"methodId": id})),
        )
        .await;
    r.assert_field_error("methodId", "[invalid]methodId");
}
