//! API keys and tenant isolation.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn missing_malformed_unknown_and_revoked_keys_are_401_json() {
    let app = spawn_app().await;
    let path = "/auth/factors/enroll";
    let body = json!({"type": "generic_otp"});
    let unauthorized = |r: &Resp| {
        assert_error(r, 401, "unauthorized");
        assert_eq!(r.body["message"], "Unauthorized");
    };
    // No header at all.
    let r = read(
        app.http
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    unauthorized(&r);
    // Wrong scheme, garbage, a well-formed but unknown key, a tampered secret.
    let tampered = format!("{}x", &app.key[..app.key.len() - 1]);
    let unknown =
        "sk_01h96fetxenny99arx0grc804c_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for auth in [
        format!("Basic {}", app.key),
        "Bearer".into(),
        "Bearer garbage".into(),
        format!("Bearer {unknown}"),
        format!("Bearer {tampered}"),
    ] {
        let r = read(
            app.http
                .post(app.url(path))
                .header("Authorization", auth.clone())
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        unauthorized(&r);
    }
    // Revocation takes effect immediately.
    let svc = &app.app_state.service;
    let created = svc.create_api_key("acme", Some("temp")).await.unwrap();
    let token = created.token.to_string();
    assert_eq!(
        app.call_as(&token, "POST", path, Some(body.clone()))
            .await
            .status,
        201
    );
    svc.revoke_api_key(created.key.id.as_str()).await.unwrap();
    unauthorized(&app.call_as(&token, "POST", path, Some(body.clone())).await);
    // Lower-case scheme is accepted, as HTTP says schemes are case-insensitive.
    let r = read(
        app.http
            .post(app.url(path))
            .header("Authorization", format!("bearer {}", app.key))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn another_tenants_objects_are_indistinguishable_from_missing_ones() {
    let app = spawn_app().await;
    let f = app
        .enroll(json!({"type": "generic_otp", "user_id": "user_1"}))
        .await;
    let fid = f["id"].as_str().unwrap();
    let ch = app.challenge(fid).await;
    let cid = ch["id"].as_str().unwrap();
    let other = app.other_key.clone();
    assert_error(
        &app.call_as(&other, "GET", &format!("/auth/factors/{fid}"), None)
            .await,
        404,
        "entity_not_found",
    );
    assert_error(
        &app.call_as(
            &other,
            "POST",
            &format!("/auth/factors/{fid}/challenge"),
            Some(json!({})),
        )
        .await,
        404,
        "entity_not_found",
    );
    assert_error(
        &app.call_as(&other, "DELETE", &format!("/auth/factors/{fid}"), None)
            .await,
        404,
        "entity_not_found",
    );
    let r = app
        .call_as(
            &other,
            "POST",
            &format!("/auth/challenges/{cid}/verify"),
            Some(json!({"code": ch["code"]})),
        )
        .await;
    assert_error(&r, 404, "entity_not_found");
    let list = app
        .call_as(
            &other,
            "GET",
            "/user_management/users/user_1/auth_factors",
            None,
        )
        .await;
    assert_eq!(list.body["data"], json!([]));
    // And none of that touched the owner's objects.
    assert_eq!(
        app.call("GET", &format!("/auth/factors/{fid}"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.verify(cid, ch["code"].as_str().unwrap()).await.body["valid"],
        true
    );
}
