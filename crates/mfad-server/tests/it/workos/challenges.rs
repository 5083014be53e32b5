//! Challenges and verification: TOTP window and replay, SMS delivery, generic OTP, expiry
//! and attempt limits, all on the manual clock.

use serde_json::json;

use crate::support::*;

async fn totp_factor(app: &TestApp) -> (String, String) {
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "alice"}))
        .await;
    (
        f["id"].as_str().unwrap().into(),
        f["totp"]["secret"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn totp_verifies_once_and_refuses_replay() {
    let app = spawn_app().await;
    let (fid, secret) = totp_factor(&app).await;
    let ch = app.challenge(&fid).await;
    assert_eq!(ch["object"], "authentication_challenge");
    assert_eq!(ch["authentication_factor_id"], fid.as_str());
    assert!(ch.get("code").is_none(), "TOTP challenges carry no code");
    assert_eq!(ch["expires_at"], "2026-01-15T12:10:10.000Z");
    let cid = ch["id"].as_str().unwrap();
    let code = app.totp_code(&secret, 0);

    let v = app.verify(cid, &code).await;
    assert_eq!(v.status, 201, "{}", v.text);
    assert_eq!(v.body["valid"], true);
    assert_eq!(v.body["challenge"]["id"], cid);

    // The same challenge again: an error, even with the right code.
    assert_error(
        &app.verify(cid, &code).await,
        422,
        "authentication_challenge_previously_verified",
    );
    // The same code on a new challenge: refused as a replay.
    let ch2 = app.challenge(&fid).await;
    let r = app.verify(ch2["id"].as_str().unwrap(), &code).await;
    assert_eq!((r.status, r.body["valid"].clone()), (201, json!(false)));
    // The previous step's code is older than the accepted one: refused too.
    let ch3 = app.challenge(&fid).await;
    let r = app
        .verify(ch3["id"].as_str().unwrap(), &app.totp_code(&secret, -1))
        .await;
    assert_eq!(r.body["valid"], false);
    // One step later, the new code works.
    app.clock.advance(time::Duration::seconds(30));
    let ch4 = app.challenge(&fid).await;
    let r = app
        .verify(ch4["id"].as_str().unwrap(), &app.totp_code(&secret, 0))
        .await;
    assert_eq!(r.body["valid"], true, "{}", r.text);
}

#[tokio::test]
async fn totp_accepts_one_step_of_drift_each_way_and_no_more() {
    let app = spawn_app().await;
    for (offset, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
        let (fid, secret) = totp_factor(&app).await;
        let ch = app.challenge(&fid).await;
        let r = app
            .verify(ch["id"].as_str().unwrap(), &app.totp_code(&secret, offset))
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.body["valid"], ok, "offset {offset}");
    }
}

#[tokio::test]
async fn totp_wrong_and_malformed_codes_are_valid_false() {
    let app = spawn_app().await;
    let (fid, secret) = totp_factor(&app).await;
    let right = app.totp_code(&secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for bad in [wrong.as_str(), "12345", "abcdef", "1234567"] {
        let ch = app.challenge(&fid).await;
        let r = app.verify(ch["id"].as_str().unwrap(), bad).await;
        assert_eq!(
            (r.status, r.body["valid"].clone()),
            (201, json!(false)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn sms_challenge_texts_the_code_through_twilio() {
    let app = spawn_relaxed().await;
    let f = app
        .enroll(json!({"type": "sms", "phone_number": "+1 415 555 2671"}))
        .await;
    let fid = f["id"].as_str().unwrap();
    let r = app
        .call(
            "POST",
            &format!("/auth/factors/{fid}/challenge"),
            Some(json!({"sms_template": "Your Acme code is {{code}}."})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        r.body.get("code").is_none(),
        "SMS codes are never returned to the caller"
    );
    let sms = app.sms.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (sms.account.as_str(), sms.to.as_str(), sms.from.as_str()),
        ("ACtest", "+14155552671", "+15005550006")
    );
    let code = sms
        .body
        .strip_prefix("Your Acme code is ")
        .unwrap()
        .strip_suffix('.')
        .unwrap()
        .to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    let cid = r.body["id"].as_str().unwrap();
    let v = app.verify(cid, &code).await;
    assert_eq!(v.body["valid"], true, "{}", v.text);
    assert!(
        v.body["challenge"].get("code").is_none(),
        "an SMS code is not echoed on verify either"
    );

    // Default template, and template validation.
    let r = app
        .call(
            "POST",
            &format!("/auth/factors/{fid}/challenge"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(
        app.sms
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .body
            .starts_with("Your verification code is ")
    );
    let long = format!("{{{{code}}}}{}", "x".repeat(400));
    for bad in [
        "no placeholder",
        "Visit https://evil.example {{code}}",
        "Code {{code}}\u{0}",
        "Code {{code}}\u{1b}[2J",
        "Code {{code}} \u{202E}lave",
        "Code {{code}} \u{2066}x\u{2069}",
        long.as_str(),
    ] {
        let r = app
            .call(
                "POST",
                &format!("/auth/factors/{fid}/challenge"),
                Some(json!({"sms_template": bad})),
            )
            .await;
        assert_error(&r, 422, "invalid_request_parameters");
        assert_eq!(r.body["errors"][0]["field"], "sms_template", "{bad:?}");
    }
    // A line break is fine.
    let r = app
        .call(
            "POST",
            &format!("/auth/factors/{fid}/challenge"),
            Some(json!({"sms_template": "Acme\nYour code: {{code}}"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn generic_otp_returns_code_and_verifies_it() {
    let app = spawn_app().await;
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(f["id"].as_str().unwrap()).await;
    let code = ch["code"].as_str().unwrap();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    let cid = ch["id"].as_str().unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let w = app.verify(cid, wrong).await;
    assert_eq!(w.body["valid"], false);
    assert!(
        w.body["challenge"].get("code").is_none(),
        "a wrong code is not shown as the challenge's"
    );
    let v = app.verify(cid, code).await;
    assert_eq!(v.body["valid"], true);
    // As WorkOS's recorded response: the same challenge object, code included.
    assert_eq!(v.body["challenge"], ch, "{}", v.text);
}

#[tokio::test]
async fn challenges_expire_after_the_ttl() {
    let app = spawn_with(Options {
        ttl_secs: 600,
        ..Options::default()
    })
    .await;
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(f["id"].as_str().unwrap()).await;
    app.clock.advance(time::Duration::seconds(599));
    let ch2 = app.challenge(f["id"].as_str().unwrap()).await;
    assert_eq!(
        app.verify(ch2["id"].as_str().unwrap(), ch2["code"].as_str().unwrap())
            .await
            .body["valid"],
        true
    );
    app.clock.advance(time::Duration::seconds(1));
    let r = app
        .verify(ch["id"].as_str().unwrap(), ch["code"].as_str().unwrap())
        .await;
    assert_error(&r, 422, "authentication_challenge_expired");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains(ch["id"].as_str().unwrap())
    );
}

#[tokio::test]
async fn totp_challenges_expire_too() {
    let app = spawn_app().await;
    let (fid, secret) = totp_factor(&app).await;
    let ch = app.challenge(&fid).await;
    app.clock.advance(time::Duration::seconds(601));
    let r = app
        .verify(ch["id"].as_str().unwrap(), &app.totp_code(&secret, 0))
        .await;
    assert_error(&r, 422, "authentication_challenge_expired");
}

#[tokio::test]
async fn too_many_wrong_codes_lock_the_challenge_even_for_the_right_code() {
    let app = spawn_with(Options {
        max_attempts: 3,
        ..Options::default()
    })
    .await;
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(f["id"].as_str().unwrap()).await;
    let (cid, code) = (ch["id"].as_str().unwrap(), ch["code"].as_str().unwrap());
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..3 {
        let r = app.verify(cid, wrong).await;
        assert_eq!((r.status, r.body["valid"].clone()), (201, json!(false)));
    }
    assert_error(
        &app.verify(cid, code).await,
        400,
        "one_time_code_too_many_attempts",
    );
    assert_error(
        &app.verify(cid, wrong).await,
        400,
        "one_time_code_too_many_attempts",
    );
    // A new challenge starts afresh.
    let ch2 = app.challenge(f["id"].as_str().unwrap()).await;
    assert_eq!(
        app.verify(ch2["id"].as_str().unwrap(), ch2["code"].as_str().unwrap())
            .await
            .body["valid"],
        true
    );
}

#[tokio::test]
async fn unknown_challenges_are_404() {
    let app = spawn_app().await;
    for id in ["auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN", "nope"] {
        let r = app.verify(id, "123456").await;
        assert_error(&r, 404, "entity_not_found");
        assert_eq!(r.body["entity_id"], id);
    }
    let r = app
        .call(
            "POST",
            "/auth/factors/auth_factor_01FZ4WSWV2SCEDX3GKY1NA9YTN/challenge",
            Some(json!({})),
        )
        .await;
    assert_error(&r, 404, "entity_not_found");
}
