//! Send limits on the FusionAuth API: a user holding only a JWT cannot text a fourth
//! number in a day (through either send shape), login sends keep the per-number cooldown,
//! email gets the same per-address limits, and a denied country is refused at send and at
//! enable. Refusals are FusionAuth's `429`, empty, with `Retry-After`.

use serde_json::{Value, json};

use crate::support::*;

/// A send; returns the response and its `Retry-After`.
async fn send(app: &TestApp, path: &str, auth: Auth<'_>, body: Value) -> (Resp, Option<u64>) {
    let resp = app
        .request("POST", path, auth)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (read(resp).await, retry)
}

fn number(i: usize) -> String {
    format!("+1415555{:04}", 2671 + i)
}

#[tokio::test]
async fn a_jwt_only_user_cannot_text_a_fourth_number_in_a_day() {
    let app = spawn_app().await;
    let token = app.hs_jwt(app.claims("user_jwt"));
    for i in 0..3 {
        let (r, _) = send(
            &app,
            "/api/two-factor/send",
            Auth::Jwt(&token),
            json!({"method": "sms", "mobilePhone": number(i)}),
        )
        .await;
        r.assert_empty(200);
    }
    assert_eq!(app.sms_count(), 3);
    // A fourth number, by the enable shape and by the legacy send-to-phone shape.
    let (r, retry) = send(
        &app,
        "/api/two-factor/send",
        Auth::Jwt(&token),
        json!({"method": "sms", "mobilePhone": number(3)}),
    )
    .await;
    r.assert_empty(429);
    assert_eq!(retry, Some(86_400));
    let secret = app.secret().await;
    let (r, _) = send(
        &app,
        "/api/two-factor/send",
        Auth::Jwt(&token),
        json!({"mobilePhone": number(4), "secret": secret}),
    )
    .await;
    r.assert_empty(429);
    assert_eq!(app.sms_count(), 3, "nothing was sent");
    // One of the user's three numbers still works once its cooldown has passed.
    app.advance(30);
    let (r, _) = send(
        &app,
        "/api/two-factor/send",
        Auth::Jwt(&token),
        json!({"method": "sms", "mobilePhone": number(0)}),
    )
    .await;
    r.assert_empty(200);
    // A day after the first sends, a new number is allowed again.
    app.advance(86_400 - 30);
    let token = app.hs_jwt(app.claims("user_jwt"));
    let (r, _) = send(
        &app,
        "/api/two-factor/send",
        Auth::Jwt(&token),
        json!({"method": "sms", "mobilePhone": number(3)}),
    )
    .await;
    r.assert_empty(200);
}

#[tokio::test]
async fn the_application_with_its_key_is_not_limited_per_end_user() {
    let app = spawn_app().await;
    for i in 0..5 {
        let r = app
            .key_call(
                "POST",
                "/api/two-factor/send",
                Some(json!({"userId": "user_app", "method": "sms", "mobilePhone": number(i)})),
            )
            .await;
        r.assert_empty(200);
    }
    assert_eq!(app.sms_count(), 5);
}

#[tokio::test]
async fn login_sends_keep_the_per_number_cooldown_and_limits() {
    let app = spawn_app().await;
    // A UUID, as FusionAuth's typed LoginResponse model requires of `user.id`.
    let user = uuid();
    app.enable_sms(&user, PHONE).await.assert_json(200);
    let tfid = app.start(&user).await["twoFactorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/two-factor/send/{tfid}");
    // The enable code went out moments ago: the login send must wait out the cooldown.
    let (r, retry) = send(&app, &path, Auth::None, json!({})).await;
    r.assert_empty(429);
    assert_eq!(retry, Some(30));
    assert_eq!(app.sms_count(), 1);
    app.advance(30);
    let (r, _) = send(&app, &path, Auth::None, json!({})).await;
    r.assert_empty(200);
    let code = app.last_sms_code(PHONE);
    // The refused send replaced nothing: the code sent logs in.
    app.login(&tfid, &code).await.assert_json(200);
}

#[tokio::test]
async fn email_sends_get_the_same_per_address_limits() {
    let app = spawn_app().await;
    let body = json!({"userId": "user_e", "method": "email", "email": "ada@example.com"});
    let r = app
        .key_call("POST", "/api/two-factor/send", Some(body.clone()))
        .await;
    r.assert_empty(200);
    let first = app.last_email_code("ada@example.com");
    let (r, retry) = send(
        &app,
        "/api/two-factor/send",
        Auth::Key(&app.key),
        body.clone(),
    )
    .await;
    r.assert_empty(429);
    assert_eq!(retry, Some(30));
    // The refused send did not replace the code already delivered.
    let r = app
        .key_call(
            "POST",
            "/api/user/two-factor/user_e",
            Some(json!({"method": "email", "email": "ada@example.com", "code": first})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_denied_country_is_refused_at_send_and_at_enable() {
    let app = spawn_with(Options {
        vars: vec![("MFAD_SMS_ALLOWED_COUNTRIES", "US,CA".into())],
        ..Options::default()
    })
    .await;
    let uk = "+442079460958";
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/send",
            Some(json!({"userId": "user_c", "method": "sms", "mobilePhone": uk})),
        )
        .await;
    r.assert_field_error("mobilePhone", "[notAllowed]mobilePhone");
    let r = app
        .key_call(
            "POST",
            "/api/user/two-factor/user_c",
            Some(json!({"method": "sms", "mobilePhone": uk, "code": "123456"})),
        )
        .await;
    r.assert_field_error("mobilePhone", "[notAllowed]mobilePhone");
    let secret = app.secret().await;
    let r = app
        .key_call(
            "POST",
            "/api/two-factor/send",
            Some(json!({"mobilePhone": uk, "secret": secret})),
        )
        .await;
    r.assert_field_error("mobilePhone", "[notAllowed]mobilePhone");
    assert_eq!(app.sms_count(), 0);
    app.enable_sms("user_c", PHONE).await.assert_json(200);
}
