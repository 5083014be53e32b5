//! Every function of the Elixir `FusionAuth.TwoFactor` 0.3.0 client, with its exact
//! request shapes (`docs/contracts/fusionauth.md` §3), including the two `Authorization` headers of its JWT
//! calls (Bearer first, then the raw key) and the tenant header it always sends.

use serde_json::json;

use crate::support::*;

/// What Elixir sends on every call: its key (and, for JWT calls, the token first) plus
/// `X-FusionAuth-TenantId`.
fn elixir(app: &TestApp, method: &str, path: &str, jwt: Option<&str>) -> reqwest::RequestBuilder {
    let auth = match jwt {
        Some(t) => Auth::Elixir(t, &app.key),
        None => Auth::Key(&app.key),
    };
    app.request(method, path, auth)
        .header("X-FusionAuth-TenantId", app.tenant.as_uuid())
}

#[tokio::test]
async fn generate_secret_by_key_and_for_jwt() {
    let app = spawn_app().await;
    let r = read(
        elixir(&app, "GET", "/api/two-factor/secret", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.assert_json(200)["secret"].as_str().unwrap().len(), 20);
    let token = app.hs_jwt(app.claims(&uuid()));
    let r = read(
        elixir(&app, "GET", "/api/two-factor/secret", Some(&token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.assert_json(200)["secretBase32Encoded"]
            .as_str()
            .unwrap()
            .len(),
        24
    );
}

#[tokio::test]
async fn enable_and_disable_by_user_id_with_delivery_none() {
    let app = spawn_app().await;
    let user = uuid();
    let secret = app.secret().await;
    // enable_two_factor_by_user_id(c, user_id, code, "None", secret)
    let r = send_json(
        elixir(&app, "POST", &format!("/api/user/two-factor/{user}"), None),
        &json!({"code": app.totp(&secret), "delivery": "None", "secret": secret}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.status(&user).await, 242);
    app.advance(30);
    // disable_two_factor_by_user_id(c, user_id, code): DELETE …/{userId}?code=, no body.
    let r = read(
        elixir(
            &app,
            "DELETE",
            &format!("/api/user/two-factor/{user}?code={}", app.totp(&secret)),
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
}

#[tokio::test]
async fn enable_and_disable_by_jwt_with_both_authorization_headers() {
    let app = spawn_app().await;
    let user = uuid();
    let token = app.hs_jwt(app.claims(&user));
    let secret = app.secret().await;
    // enable_two_factor_by_jwt(c, token, code, "None", secret): POST /api/user/two-factor.
    let r = send_json(
        elixir(&app, "POST", "/api/user/two-factor", Some(&token)),
        &json!({"code": app.totp(&secret), "delivery": "None", "secret": secret}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.status(&user).await,
        242,
        "the JWT's subject got the method"
    );
    app.advance(30);
    // disable_two_factor_by_jwt(c, token, code): DELETE /api/user/two-factor?code=.
    let r = read(
        elixir(
            &app,
            "DELETE",
            &format!("/api/user/two-factor?code={}", app.totp(&secret)),
            Some(&token),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
}

#[tokio::test]
async fn text_message_delivery_send_to_phone_then_enable() {
    let app = spawn_relaxed().await;
    let user = uuid();
    let secret = app.secret().await;
    // send_two_factor_code_to_mobile_phone(c, mobile_phone, secret): the text carries the
    // TOTP of the secret.
    let r = send_json(
        elixir(&app, "POST", "/api/two-factor/send", None),
        &json!({"mobilePhone": PHONE, "secret": secret}),
    )
    .await;
    r.assert_empty(200);
    let texted = app.last_sms_code(PHONE);
    assert_eq!(texted, app.totp(&secret));
    // enable_two_factor_by_user_id(c, user_id, code, "TextMessage", secret)
    let r = send_json(
        elixir(&app, "POST", &format!("/api/user/two-factor/{user}"), None),
        &json!({"code": texted, "delivery": "TextMessage", "secret": secret}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let started = app.start(&user).await;
    assert_eq!(started["methods"][0]["method"], "sms");
    assert_eq!(started["methods"][0]["mobilePhone"], PHONE);

    // send_two_factor_code_by_user_id(c, user_id): {userId} → a code to the user's phone,
    // which disables two-factor (disable_two_factor_by_user_id).
    let r = send_json(
        elixir(&app, "POST", "/api/two-factor/send", None),
        &json!({"userId": user}),
    )
    .await;
    r.assert_empty(200);
    let code = app.last_sms_code(PHONE);
    let r = read(
        elixir(
            &app,
            "DELETE",
            &format!("/api/user/two-factor/{user}?code={code}"),
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
}

#[tokio::test]
async fn text_message_enable_without_a_prior_send_needs_a_phone() {
    let app = spawn_app().await;
    let secret = app.secret().await;
    let r = send_json(
        elixir(
            &app,
            "POST",
            &format!("/api/user/two-factor/{}", uuid()),
            None,
        ),
        &json!({"code": app.totp(&secret), "delivery": "TextMessage", "secret": secret}),
    )
    .await;
    r.assert_field_error("mobilePhone", "[blank]mobilePhone");
}

#[tokio::test]
async fn send_by_jwt_and_send_to_complete_login() {
    let app = spawn_relaxed().await;
    let user = uuid();
    app.enable_sms(&user, PHONE).await;
    let token = app.hs_jwt(app.claims(&user));
    // send_two_factor_code_by_jwt(c, token): POST /api/two-factor/send with `{}`.
    let before = app.sms_count();
    let r = send_json(
        elixir(&app, "POST", "/api/two-factor/send", Some(&token)),
        &json!({}),
    )
    .await;
    r.assert_empty(200);
    assert_eq!(app.sms_count(), before + 1);
    // …and that code disables (disable_two_factor_by_jwt).
    let code = app.last_sms_code(PHONE);
    let r = read(
        elixir(
            &app,
            "DELETE",
            &format!("/api/user/two-factor?code={code}"),
            Some(&token),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    r.assert_empty(200);

    // send_two_factor_code_to_complete_login(c, two_factor_id): `{}`, with the key (which
    // the route does not need).
    app.enable_sms(&user, PHONE).await;
    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    let r = send_json(
        elixir(&app, "POST", &format!("/api/two-factor/send/{tfid}"), None),
        &json!({}),
    )
    .await;
    r.assert_empty(200);
    // The legacy login call: TwoFactorLoginRequest {code, trustComputer, twoFactorId}.
    let r = send_json(
        elixir(&app, "POST", "/api/two-factor/login", None),
        &json!({"code": app.last_sms_code(PHONE), "trustComputer": false, "twoFactorId": tfid}),
    )
    .await;
    assert_eq!(r.assert_json(200)["user"]["id"], user.as_str());
}

#[tokio::test]
async fn fusionauth_1_25_clients_put_the_user_in_the_query() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    // TypeScript 1.25: DELETE /api/user/two-factor?userId=&code= with the key.
    let r = app
        .key_call(
            "DELETE",
            &format!(
                "/api/user/two-factor?userId={user}&code={}",
                app.totp(&secret)
            ),
            None,
        )
        .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
    // Without a user there is nobody to act on.
    let r = app
        .key_call("DELETE", "/api/user/two-factor?code=123456", None)
        .await;
    r.assert_field_error("userId", "[blank]userId");
}
