//! The current (1.26+) API as the 1.69 clients call it.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn secret_is_20_base64_chars_and_base32_of_the_same_15_bytes() {
    let app = spawn_app().await;
    let r = app.key_call("GET", "/api/two-factor/secret", None).await;
    let body = r.assert_json(200);
    let secret = body["secret"].as_str().unwrap();
    let b32 = body["secretBase32Encoded"].as_str().unwrap();
    assert_eq!(secret.len(), 20);
    assert_eq!(b32.len(), 24);
    let key = b64(secret);
    assert_eq!(key.len(), 15);
    assert_eq!(data_encoding::BASE32_NOPAD.encode(&key), b32);
    let again = app.key_call("GET", "/api/two-factor/secret", None).await;
    assert_ne!(again.body["secret"], body["secret"]);
}

#[tokio::test]
async fn first_method_brings_ten_recovery_codes_and_status_turns_242() {
    let app = spawn_app().await;
    let user = uuid();
    assert_eq!(
        app.status(&user).await,
        200,
        "a user without methods needs no second factor"
    );
    let (_, body) = app.enable_authenticator(&user).await;
    let codes = body["recoveryCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    for c in codes {
        let c = c.as_str().unwrap();
        assert_eq!(c.len(), 11, "{c}");
        assert_eq!(&c[5..6], "-");
        assert!(
            c.chars()
                .all(|ch| ch == '-' || ch.is_ascii_digit() || ch.is_ascii_uppercase())
        );
    }
    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status?userId={user}"),
            None,
        )
        .await;
    assert_eq!(r.status, 242);
    assert_eq!(r.body["trusts"], json!([]));

    // A second method: empty 200 (no recovery codes, no JSON content type).
    app.enable_sms(&user, PHONE).await.assert_empty(200);
    let started = app.start(&user).await;
    let methods = started["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 2);
    assert_eq!(methods[0]["method"], "authenticator");
    assert_eq!(methods[0]["name"], "Phone app");
    assert_eq!(
        methods[0]["authenticator"],
        json!({"algorithm": "HmacSHA1", "codeLength": 6, "timeStep": 30})
    );
    assert!(
        methods[0].get("secret").is_none(),
        "the secret is never shown again"
    );
    assert_eq!(methods[1]["method"], "sms");
    assert_eq!(methods[1]["mobilePhone"], PHONE);
    for m in methods {
        let id = m["id"].as_str().unwrap();
        assert!(
            id.len() == 4
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{id}"
        );
    }
}

#[tokio::test]
async fn enabling_with_secret_base32_encoded_and_the_code_is_single_use() {
    let app = spawn_app().await;
    let user = uuid();
    let r = app.key_call("GET", "/api/two-factor/secret", None).await;
    let (secret, b32) = (
        r.body["secret"].as_str().unwrap().to_owned(),
        r.body["secretBase32Encoded"].as_str().unwrap().to_owned(),
    );
    let code = app.totp(&secret);
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "authenticator", "secretBase32Encoded": b32, "code": code})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The code that enabled the method cannot also complete a login (replay).
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &code)
        .await
        .assert_empty(421);
}

#[tokio::test]
async fn login_with_totp_returns_the_user_the_method_and_a_signed_token() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    assert_eq!(tfid.len(), 43);
    assert_eq!(started["code"].as_str().unwrap().len(), 6);
    let r = app.login(tfid, &app.totp(&secret)).await;
    let body = r.assert_json(200);
    assert_eq!(body["user"]["id"], user.as_str());
    assert_eq!(body["method"], "authenticator");
    let method_id = body["methodId"].as_str().unwrap();
    assert_eq!(body["user"]["twoFactor"]["methods"][0]["id"], method_id);
    assert_eq!(body["user"]["twoFactor"]["methods"][0]["lastUsed"], true);
    assert!(body.get("twoFactorTrustId").is_none());
    // The token is HS256 with the configured secret, for this user and tenant.
    let token = body["token"].as_str().unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_exp = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(HS_SECRET.as_bytes()),
        &v,
    )
    .unwrap();
    assert_eq!(data.claims["sub"], user.as_str());
    // FusionAuth's claims, tenant as its UUID (FusionAuth's own type).
    assert_eq!(data.claims["tid"], app.tenant.as_uuid());
    assert_eq!(data.claims["authenticationType"], "ONE_TIME_PASSWORD");
    assert_eq!(data.claims["iss"], "mfad");
    assert!(
        uuid_shaped(data.claims["jti"].as_str().unwrap()),
        "{}",
        data.claims
    );
    assert_eq!(body["user"]["tenantId"], app.tenant.as_uuid());
    assert_eq!(
        body["tokenExpirationInstant"],
        json!((app.now_unix() as i64 + 3600) * 1000)
    );
    // Single use.
    app.login(tfid, &app.totp(&secret)).await.assert_empty(404);
}

#[tokio::test]
async fn no_jwt_leaves_the_token_out() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let started = app.start(&user).await;
    let r = app
        .call_with(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"twoFactorId": started["twoFactorId"], "code": app.totp(&secret), "noJWT": true})),
        )
        .await;
    assert!(r.assert_json(200).get("token").is_none());
}

#[tokio::test]
async fn texted_login_code_works_and_a_new_send_invalidates_the_earlier_codes() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_authenticator(&user).await;
    app.enable_sms(&user, PHONE).await.assert_empty(200);
    let sms_id = app.method_id(&user, "sms").await;
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    let start_code = started["code"].as_str().unwrap();

    // The documented client call: no Authorization at all.
    let r = app
        .call_with(
            "POST",
            &format!("/api/two-factor/send/{tfid}"),
            Auth::None,
            Some(json!({"methodId": sms_id})),
        )
        .await;
    r.assert_empty(200);
    let first = app.last_sms_code(PHONE);
    // The deprecated form: text/plain, empty body. It sends to the SMS method too.
    let r = read(
        app.request("POST", &format!("/api/two-factor/send/{tfid}"), Auth::None)
            .header("Content-Type", "text/plain")
            .header("Content-Length", "0")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_empty(200);
    let second = app.last_sms_code(PHONE);
    if first != second {
        app.login(tfid, &first).await.assert_empty(421);
    }
    if start_code != second {
        app.login(tfid, start_code).await.assert_empty(421);
    }
    let r = app.login(tfid, &second).await;
    let body = r.assert_json(200);
    assert_eq!(body["method"], "sms");
    assert_eq!(body["methodId"], sms_id.as_str());
}

#[tokio::test]
async fn the_start_code_completes_a_login_and_state_is_echoed() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_authenticator(&user).await;
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/start",
            Some(json!({"userId": user, "code": "A1B2C3", "state": {"redirect": "/home"}, "applicationId": "3c219e58-ed0e-4b18-ad48-f4f92793ae32"})),
        )
        .await;
    let body = r.assert_json(200).clone();
    assert_eq!(body["code"], "A1B2C3");
    let r = app
        .login(body["twoFactorId"].as_str().unwrap(), "A1B2C3")
        .await;
    let out = r.assert_json(200);
    assert_eq!(out["method"], "code");
    assert_eq!(out["state"], json!({"redirect": "/home"}));
}

#[tokio::test]
async fn start_by_login_id_finds_the_user_by_email_or_phone() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_sms(&user, PHONE).await;
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/start",
            Some(json!({"loginId": PHONE})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["methods"][0]["mobilePhone"], PHONE);
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/start",
            Some(json!({"loginId": user})),
        )
        .await;
    assert_eq!(r.status, 200, "a user id is a login id too");
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/start",
            Some(json!({"loginId": "nobody@example.com"})),
        )
        .await;
    r.assert_empty(404);
    let r = app
        .key_call("POST", "/api/two-factor/start", Some(json!({})))
        .await;
    r.assert_field_error("loginId", "[blank]loginId");
}

#[tokio::test]
async fn recovery_codes_log_in_once_and_can_be_listed_and_replaced() {
    let app = spawn_app().await;
    let user = uuid();
    let (_, body) = app.enable_authenticator(&user).await;
    let codes: Vec<String> = body["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();

    let started = app.start(&user).await;
    // Lower case and without the dash still reads.
    let typed = codes[0].to_ascii_lowercase().replace('-', "");
    let r = app
        .login(started["twoFactorId"].as_str().unwrap(), &typed)
        .await;
    assert_eq!(r.assert_json(200)["method"], "recoveryCode");
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &codes[0])
        .await
        .assert_empty(421);

    let path = format!("/api/user/two-factor/recovery-code/{user}");
    let r = app.key_call("GET", &path, None).await;
    let left: Vec<String> = r.assert_json(200)["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), 9);
    assert!(!left.contains(&codes[0]));
    assert!(codes[1..].iter().all(|c| left.contains(c)));

    // Regenerate: the TypeScript client's text/plain POST with no body.
    let r = read(
        app.request("POST", &path, Auth::Key(&app.key))
            .header("Content-Type", "text/plain")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let fresh: Vec<String> = r.assert_json(200)["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &codes[1])
        .await
        .assert_empty(421);
    let started = app.start(&user).await;
    app.login(started["twoFactorId"].as_str().unwrap(), &fresh[9])
        .await
        .assert_json(200);
}

#[tokio::test]
async fn disable_by_query_and_by_delete_body() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    app.enable_sms(&user, PHONE).await.assert_empty(200);
    let sms_id = app.method_id(&user, "sms").await;
    let totp_id = app.method_id(&user, "authenticator").await;

    // Send a code for disabling the SMS method, then the DELETE with a JSON body
    // (disableTwoFactorWithRequest).
    app.key_call(
        "POST",
        "/api/two-factor/send",
        Some(json!({"userId": user, "methodId": sms_id})),
    )
    .await
    .assert_empty(200);
    let code = app.last_sms_code(PHONE);
    let r = app
        .key_call(
            "DELETE",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"methodId": sms_id, "code": code})),
        )
        .await;
    r.assert_empty(200);
    let started = app.start(&user).await;
    assert_eq!(started["methods"].as_array().unwrap().len(), 1);

    // The query form (disableTwoFactor), with the authenticator's code; Python sends
    // Content-Length: 0.
    let r = read(
        app.request(
            "DELETE",
            &format!(
                "/api/user/two-factor/{user}?methodId={totp_id}&code={}",
                app.totp(&secret)
            ),
            Auth::Key(&app.key),
        )
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap(),
    )
    .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
    let started = app.start(&user).await;
    assert!(
        started.get("methods").is_none(),
        "methods is left out when there are none: {started}"
    );
}

#[tokio::test]
async fn a_recovery_code_used_to_disable_removes_every_method() {
    let app = spawn_app().await;
    let user = uuid();
    let (_, body) = app.enable_authenticator(&user).await;
    app.enable_sms(&user, PHONE).await.assert_empty(200);
    let sms_id = app.method_id(&user, "sms").await;
    let code = body["recoveryCodes"][3].as_str().unwrap();
    let r = app
        .key_call(
            "DELETE",
            &format!("/api/user/two-factor/{user}?methodId={sms_id}&code={code}"),
            None,
        )
        .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
    // With the methods went the recovery codes; a new first method brings new ones.
    let r = app
        .key_call(
            "GET",
            &format!("/api/user/two-factor/recovery-code/{user}"),
            None,
        )
        .await;
    assert_eq!(r.assert_json(200)["recoveryCodes"], json!([]));
    let (_, body) = app.enable_authenticator(&user).await;
    assert_eq!(body["recoveryCodes"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn rename_a_method() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_authenticator(&user).await;
    let id = app.method_id(&user, "authenticator").await;
    let r = app
        .key_call(
            "PUT",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"methodId": id, "name": "Work phone"})),
        )
        .await;
    r.assert_empty(200);
    let started = app.start(&user).await;
    assert_eq!(started["methods"][0]["name"], "Work phone");
    let r = app
        .key_call(
            "PUT",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"methodId": "ZZZZ", "name": "x"})),
        )
        .await;
    r.assert_field_error("methodId", "[invalid]methodId");
    let r = app
        .key_call(
            "PUT",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"name": "x"})),
        )
        .await;
    r.assert_field_error("methodId", "[blank]methodId");
}

#[tokio::test]
async fn trusting_the_computer_makes_status_200_until_the_trust_ends() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let started = app.start(&user).await;
    let r = app
        .call_with(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"twoFactorId": started["twoFactorId"], "code": app.totp(&secret), "trustComputer": true, "applicationId": "3c219e58-ed0e-4b18-ad48-f4f92793ae32"})),
        )
        .await;
    let trust = r.assert_json(200)["twoFactorTrustId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(trust.len(), 43);

    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status/{trust}?userId={user}&applicationId=3c219e58-ed0e-4b18-ad48-f4f92793ae32"),
            None,
        )
        .await;
    let body = r.assert_json(200);
    assert_eq!(body["twoFactorTrustId"], trust.as_str());
    assert_eq!(
        body["trusts"][0]["applicationId"],
        "3c219e58-ed0e-4b18-ad48-f4f92793ae32"
    );
    // The TypeScript client writes unset arguments as the literal `undefined`.
    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status/{trust}?userId={user}&applicationId=undefined"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // The 1.62+ POST form.
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/status",
            Some(json!({"userId": user, "twoFactorTrustId": trust, "action": "login"})),
        )
        .await;
    assert_eq!(r.status, 200);
    // Another application's trust, another user, no trust: a second factor is required.
    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status/{trust}?userId={user}&applicationId=5b0f4c0e-3f7f-4b4b-9e1a-6a3b0d9c2e11"),
            None,
        )
        .await;
    assert_eq!(r.status, 242);
    let other = uuid();
    app.enable_authenticator(&other).await;
    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status/{trust}?userId={other}"),
            None,
        )
        .await;
    assert_eq!(r.status, 242);
    assert_eq!(app.status(&user).await, 242);
    // Thirty days later the trust is over.
    app.advance(30 * 86_400);
    let r = app
        .key_call(
            "GET",
            &format!("/api/two-factor/status/{trust}?userId={user}"),
            None,
        )
        .await;
    assert_eq!(r.status, 242);
}

#[tokio::test]
async fn email_method_over_real_smtp() {
    let app = spawn_app().await;
    let user = uuid();
    let address = "Richard@PiedPiper.example";
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/send",
            Some(json!({"userId": user, "method": "email", "email": address})),
        )
        .await;
    r.assert_empty(200);
    let code = app.last_email_code("richard@piedpiper.example");
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "email", "email": address, "code": code, "name": "Work email"})),
        )
        .await;
    assert_eq!(
        r.assert_json(200)["recoveryCodes"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    // The code was used up.
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "email", "email": address, "code": code})),
        )
        .await;
    assert_eq!(r.status, 400, "a duplicate address: {}", r.text);

    let email_id = app.method_id(&user, "email").await;
    let started = app.start(&user).await;
    assert_eq!(started["methods"][0]["email"], "richard@piedpiper.example");
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.call_with(
        "POST",
        &format!("/api/two-factor/send/{tfid}"),
        Auth::None,
        Some(json!({"methodId": email_id})),
    )
    .await
    .assert_empty(200);
    let code = app.last_email_code("richard@piedpiper.example");
    let r = app.login(tfid, &code).await;
    assert_eq!(r.assert_json(200)["method"], "email");
    // start by the address as login id.
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/start",
            Some(json!({"loginId": "RICHARD@piedpiper.example"})),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn enabling_during_a_login_returns_a_code_for_that_login() {
    let app = spawn_app().await;
    let user = uuid();
    app.enable_authenticator(&user).await;
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.key_call(
        "POST",
        "/api/two-factor/send",
        Some(json!({"userId": user, "method": "sms", "mobilePhone": PHONE})),
    )
    .await
    .assert_empty(200);
    let r = app
        .key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "sms", "mobilePhone": PHONE, "code": app.last_sms_code(PHONE), "twoFactorId": tfid})),
        )
        .await;
    let code = r.assert_json(200)["code"].as_str().unwrap().to_owned();
    assert!(r.body.get("recoveryCodes").is_none());
    app.login(tfid, &code).await.assert_json(200);
}

#[tokio::test]
async fn tenant_header_in_either_form_is_accepted_when_it_is_the_keys() {
    let app = spawn_app().await;
    for header in [app.tenant.as_str().to_owned(), app.tenant.as_uuid()] {
        let r = app
            .request("GET", "/api/two-factor/secret", Auth::Key(&app.key))
            .header("X-FusionAuth-TenantId", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}
