//! WorkOS user-management factors: enrollment with a first challenge, and pagination.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn user_enrollment_returns_factor_with_secrets_and_a_challenge() {
    let app = spawn_app().await;
    let r = app
        .call("POST", "/user_management/users/user_01H96FETWYSJMJEGF0Q3ZB272F/auth_factors", Some(json!({"type": "totp", "totp_issuer": "Foo Corp", "totp_user": "user@foo-corp.com"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let f = &r.body["authentication_factor"];
    let ch = &r.body["authentication_challenge"];
    assert_eq!(f["user_id"], "user_01H96FETWYSJMJEGF0Q3ZB272F");
    assert_eq!(ch["authentication_factor_id"], f["id"]);
    let secret = f["totp"]["secret"].as_str().unwrap();
    assert_eq!(
        decode_qr(f["totp"]["qr_code"].as_str().unwrap()),
        f["totp"]["uri"].as_str().unwrap()
    );
    // The first challenge verifies with the authenticator's code.
    let v = app
        .verify(ch["id"].as_str().unwrap(), &app.totp_code(secret, 0))
        .await;
    assert_eq!(v.body["valid"], true, "{}", v.text);

    // Defaults when issuer/user are omitted, and `type` is required and TOTP only.
    let r = app
        .call(
            "POST",
            "/user_management/users/user_2/auth_factors",
            Some(json!({"type": "totp"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["authentication_factor"]["totp"]["user"], "user_2");
    for body in [
        json!({}),
        json!({"type": "sms", "phone_number": "+14155552671"}),
    ] {
        let r = app
            .call(
                "POST",
                "/user_management/users/user_2/auth_factors",
                Some(body),
            )
            .await;
        assert_error(&r, 422, "invalid_request_parameters");
    }
}

#[tokio::test]
async fn caller_supplied_totp_secrets_are_imported() {
    let app = spawn_app().await;
    let path = "/user_management/users/user_3/auth_factors";
    let r = app
        .call(
            "POST",
            path,
            Some(json!({"type": "totp", "totp_secret": "jbsw y3dp ehpk 3pxp"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["authentication_factor"]["totp"]["secret"],
        "JBSWY3DPEHPK3PXP"
    );
    let v = app
        .verify(
            r.body["authentication_challenge"]["id"].as_str().unwrap(),
            &app.totp_code("JBSWY3DPEHPK3PXP", 0),
        )
        .await;
    assert_eq!(v.body["valid"], true);
    for bad in ["JBSWY3DP", "not base32!", "ABC1"] {
        let r = app
            .call(
                "POST",
                path,
                Some(json!({"type": "totp", "totp_secret": bad})),
            )
            .await;
        assert_error(&r, 422, "invalid_request_parameters");
        assert_eq!(r.body["errors"][0]["field"], "totp_secret");
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn listing_paginates_in_both_orders_with_workos_cursors() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let r = app
            .call(
                "POST",
                "/user_management/users/user_p/auth_factors",
                Some(json!({"type": "totp", "totp_issuer": "A", "totp_user": format!("u{i}")})),
            )
            .await;
        created.push(
            r.body["authentication_factor"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        app.clock.advance(time::Duration::milliseconds(5));
    }
    // Other users' and other kinds of factors for the same user.
    app.enroll(json!({"type": "generic_otp", "user_id": "user_q"}))
        .await;
    let sms = app
        .enroll(json!({"type": "sms", "phone_number": "+14155552671", "user_id": "user_p"}))
        .await;
    created.push(sms["id"].as_str().unwrap().to_owned());
    let base = "/user_management/users/user_p/auth_factors";

    // Default: newest first, 10 per page, everything on one page.
    let all = app.call("GET", base, None).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["object"], "list");
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(ids(&all.body), newest_first);
    assert_eq!(
        all.body["list_metadata"],
        json!({"before": null, "after": null})
    );
    assert!(
        all.body["data"][1]["totp"].get("secret").is_none(),
        "no secrets in lists"
    );
    assert_eq!(all.body["data"][0]["sms"]["phone_number"], "+14155552671");

    // Follow `after` to the end, as every SDK's auto-pagination does.
    let mut seen = Vec::new();
    let mut query = "limit=3&order=desc".to_owned();
    let mut pages = 0;
    loop {
        let page = app.call("GET", &format!("{base}?{query}"), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        seen.extend(ids(&page.body));
        match page.body["list_metadata"]["after"].as_str() {
            Some(after) => {
                assert_eq!(Some(after), seen.last().map(String::as_str));
                query = format!("limit=3&order=desc&after={after}");
            }
            None => break,
        }
    }
    assert_eq!((pages, seen.clone()), (3, newest_first.clone()));

    // Ascending, and walking back with `before`.
    let asc = app
        .call("GET", &format!("{base}?limit=4&order=asc"), None)
        .await;
    assert_eq!(ids(&asc.body), created[..4].to_vec());
    assert_eq!(asc.body["list_metadata"]["before"], Value::Null);
    let next = app
        .call(
            "GET",
            &format!("{base}?limit=4&order=asc&after={}", created[3]),
            None,
        )
        .await;
    assert_eq!(ids(&next.body), created[4..8].to_vec());
    assert_eq!(next.body["list_metadata"]["before"], created[4].as_str());
    assert_eq!(next.body["list_metadata"]["after"], Value::Null);
    let back = app
        .call(
            "GET",
            &format!("{base}?limit=2&order=asc&before={}", created[4]),
            None,
        )
        .await;
    assert_eq!(ids(&back.body), created[2..4].to_vec());
    assert_eq!(back.body["list_metadata"]["before"], created[2].as_str());
    assert_eq!(back.body["list_metadata"]["after"], created[3].as_str());
    let normal = app
        .call("GET", &format!("{base}?order=normal&limit=1"), None)
        .await;
    assert_eq!(ids(&normal.body), vec![created[0].clone()]);

    // An unknown user simply has no factors.
    let none = app
        .call(
            "GET",
            "/user_management/users/user_nobody/auth_factors",
            None,
        )
        .await;
    assert_eq!(
        none.body,
        json!({"object": "list", "data": [], "list_metadata": {"before": null, "after": null}})
    );
}
