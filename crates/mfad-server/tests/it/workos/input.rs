//! Bad input: every malformed request gets a WorkOS-shaped JSON error, never plain text.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn malformed_bodies_are_422_json() {
    let app = spawn_app().await;
    for body in ["{bad", "[1,2]", "\"totp\"", "42", "{\"type\":"] {
        let r = app.raw("POST", "/auth/factors/enroll", body).await;
        assert_error(&r, 422, "invalid_request_parameters");
        assert_eq!(r.body["errors"][0]["field"], "body", "{body}");
    }
}

#[tokio::test]
async fn wrong_types_missing_fields_and_unknown_enums_are_422() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "type"),
        (json!({"type": 5}), "type"),
        (json!({"type": "webauthn"}), "type"),
        (json!({"type": "TOTP"}), "type"),
        (json!({"type": "totp"}), "totp_issuer"),
        (json!({"type": "totp", "totp_issuer": "A"}), "totp_user"),
        (
            json!({"type": "totp", "totp_issuer": 1, "totp_user": "u"}),
            "totp_issuer",
        ),
        (
            json!({"type": "sms", "phone_number": 14155552671u64}),
            "phone_number",
        ),
        (json!({"type": "generic_otp", "user_id": "a/b"}), "user_id"),
    ];
    for (body, field) in cases {
        let r = app
            .call("POST", "/auth/factors/enroll", Some(body.clone()))
            .await;
        assert_error(&r, 422, "invalid_request_parameters");
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body} -> {}", r.text);
    }
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(f["id"].as_str().unwrap()).await;
    let path = format!("/auth/challenges/{}/verify", ch["id"].as_str().unwrap());
    for body in [
        json!({}),
        json!({"code": null}),
        json!({"code": ""}),
        json!({"code": 123456}),
    ] {
        let r = app.call("POST", &path, Some(body.clone())).await;
        assert_error(&r, 422, "invalid_request_parameters");
        assert_eq!(r.body["errors"][0]["field"], "code", "{body}");
    }
    // None of those counted as attempts: the right code still works.
    assert_eq!(
        app.verify(ch["id"].as_str().unwrap(), ch["code"].as_str().unwrap())
            .await
            .body["valid"],
        true
    );
}

#[tokio::test]
async fn null_and_empty_strings_count_as_absent_and_foreign_fields_are_ignored() {
    let app = spawn_app().await;
    // Ruby/Elixir send nulls, Go v6 sends "" for unused fields.
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "X", "totp_user": "Y", "phone_number": null, "user_id": ""}))
        .await;
    assert!(f.get("user_id").is_none());
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "X", "totp_user": "Y", "phone_number": ""}))
        .await;
    let fid = f["id"].as_str().unwrap();
    // Challenge bodies: `null`, empty, `{}`, and `sms_template: null/""`.
    for body in [
        "null",
        "",
        "{}",
        "{\"sms_template\":null}",
        "{\"sms_template\":\"\"}",
    ] {
        let r = app
            .raw("POST", &format!("/auth/factors/{fid}/challenge"), body)
            .await;
        assert_eq!(r.status, 201, "{body:?}: {}", r.text);
    }
}

#[tokio::test]
async fn sdk_headers_are_accepted() {
    let app = spawn_app().await;
    let r = read(
        app.http
            .post(app.url("/auth/factors/enroll"))
            .header("Authorization", format!("Bearer {}", app.key))
            .header(
                "Idempotency-Key",
                "retry-3c7a1a06-8f64-4c5b-9f3e-7d0d1c6f0a11",
            )
            .header("Accept", "application/json, text/plain, */*")
            .header("User-Agent", "workos-node/11.0.0")
            .header("Content-Type", "application/json")
            .body(r#"{"type":"generic_otp"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // GET with a JSON content type and no body, as every SDK sends.
    let r = read(
        app.http
            .get(app.url(&format!("/auth/factors/{}", r.body["id"].as_str().unwrap())))
            .header("Authorization", format!("Bearer {}", app.key))
            .header("Content-Type", "application/json")
            .header("Accept", "*/*")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn oversized_bodies_unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let big = format!(
        "{{\"type\":\"generic_otp\",\"pad\":\"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let r = read(
        app.http
            .post(app.url("/auth/factors/enroll"))
            .header("Authorization", format!("Bearer {}", app.key))
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 413, "payload_too_large");
    assert_error(
        &app.call("GET", "/no/such/route", None).await,
        404,
        "not_found",
    );
    assert_error(
        &app.call("PUT", "/auth/factors/enroll", Some(json!({})))
            .await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn list_query_validation() {
    let app = spawn_app().await;
    let base = "/user_management/users/user_1/auth_factors";
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("after=nope", "after"),
        ("before=auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN", "before"),
        ("userId=user_1", "userId"),
    ] {
        let r = app.call("GET", &format!("{base}?{q}"), None).await;
        assert_error(&r, 422, "invalid_request_parameters");
        assert_eq!(r.body["errors"][0]["field"], field, "{q}");
    }
    // `undefined`/`null`/empty values count as absent.
    for q in [
        "limit=&order=desc",
        "after=undefined",
        "before=null&limit=5",
    ] {
        assert_eq!(
            app.call("GET", &format!("{base}?{q}"), None).await.status,
            200,
            "{q}"
        );
    }
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url("/auth/factors/auth_factor_x"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let again = app.http.get(app.url("/health")).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id);
    let echoed = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "caller-chosen-1")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "caller-chosen-1");
}
