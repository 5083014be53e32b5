//! Audit events of the FusionAuth API: methods added and removed, two-factor logins that
//! succeed or fail, recovery codes generated and used (issue 12; catalogue in
//! docs/EVENTS.md), listed through the WorkOS Events API of the same tenant.

use serde_json::{Value, json};

use crate::support::*;

const NAMES: &str = "two_factor.method_added,two_factor.method_removed,\
two_factor.login_succeeded,two_factor.login_failed,recovery_codes.generated,recovery_code.used";

async fn listed(app: &TestApp) -> Vec<Value> {
    let r = app
        .call(
            "GET",
            &format!("/events?events={NAMES}&order=asc&limit=100"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn methods_logins_and_recovery_codes_record_their_events() {
    let app = spawn_relaxed().await;
    let user = uuid();
    let (_, body) = app.enable_authenticator(&user).await;
    let codes: Vec<String> = body["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app.enable_sms(&user, PHONE).await.assert_empty(200);

    let started = app.start(&user).await;
    let tfid = started["twoFactorId"].as_str().unwrap();
    app.login(tfid, "000000").await;
    let r = app.login(tfid, &codes[0]).await;
    assert_eq!(r.assert_json(200)["method"], "recoveryCode");

    let sms_id = app.method_id(&user, "sms").await;
    let r = app
        .key_call(
            "DELETE",
            &format!(
                "/api/user/two-factor/{user}?methodId={sms_id}&code={}",
                codes[1]
            ),
            None,
        )
        .await;
    r.assert_empty(200);

    let events = listed(&app).await;
    assert_eq!(
        names(&events),
        [
            "two_factor.method_added",
            "recovery_codes.generated",
            "two_factor.method_added",
            "two_factor.login_failed",
            "recovery_code.used",
            "two_factor.login_succeeded",
            "recovery_code.used",
            "two_factor.method_removed",
            "two_factor.method_removed",
        ],
        "{events:?}"
    );
    let data = |i: usize| &events[i]["data"];
    assert_eq!(data(0)["user_id"], user.as_str());
    assert_eq!(data(0)["type"], "totp");
    assert_eq!(data(1)["count"], 10);
    assert_eq!(data(2)["sms"]["phone_number"], "+14…71");
    assert_eq!(data(3)["status"], "failed");
    assert_eq!(data(3)["error"]["code"], "invalid_code");
    assert_eq!(data(4)["count"], 9);
    assert_eq!(data(5)["status"], "succeeded");
    assert_eq!(data(5)["method"], "recovery_code");
    let text = Value::Array(events.clone()).to_string();
    for c in &codes {
        assert!(!text.contains(c.as_str()), "a recovery code in an event");
    }
    assert!(!text.contains(&PHONE[1..]), "a full number in an event");
}

#[tokio::test]
async fn throttled_attempts_refused_sends_and_operator_changes_record_events() {
    let app = spawn_app().await;
    // Five wrong codes on a factor, then the throttle refuses the sixth unjudged.
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let fid = f["id"].as_str().unwrap();
    for _ in 0..5 {
        let c = app.challenge(fid).await;
        let code = c["code"].as_str().unwrap();
        let bad = if code == "000000" { "111111" } else { "000000" };
        assert_eq!(
            app.verify(c["id"].as_str().unwrap(), bad).await.body["valid"],
            false
        );
    }
    let c = app.challenge(fid).await;
    let r = app.verify(c["id"].as_str().unwrap(), "123456").await;
    assert_eq!(r.status, 429, "{}", r.text);
    // The second text to one number within the cooldown is refused by a send limit.
    let sms = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    let sid = sms["id"].as_str().unwrap();
    app.challenge(sid).await;
    let r = app
        .call(
            "POST",
            &format!("/auth/factors/{sid}/challenge"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    // Operator changes, through the service the CLI uses.
    let svc = &app.app_state.service;
    let created = svc.create_api_key("acme", Some("ci")).await.unwrap();
    svc.revoke_api_key(created.key.id.as_str()).await.unwrap();
    svc.unlock_factor(fid).await.unwrap();

    let r = app
        .call(
            "GET",
            "/events?events=authentication.mfa_throttled,authentication_challenge.send_refused,\
             api_key.created,api_key.revoked,authentication_factor.unlocked&order=asc",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let all = r.body["data"].as_array().unwrap().clone();
    // The harness's own key for the tenant came first.
    assert_eq!(all[0]["event"], "api_key.created");
    assert_eq!(all[0]["data"]["name"], "default");
    let events = all[1..].to_vec();
    assert_eq!(
        names(&events),
        [
            "authentication.mfa_throttled",
            "authentication_challenge.send_refused",
            "api_key.created",
            "api_key.revoked",
            "authentication_factor.unlocked",
        ],
        "{events:?}"
    );
    assert_eq!(events[0]["data"]["error"]["code"], "throttled");
    assert_eq!(events[0]["data"]["authentication_factor"]["id"], fid);
    assert_eq!(events[1]["data"]["destination"], "+14…71");
    assert_eq!(events[1]["data"]["error"]["code"], "send_limit");
    let key = &events[2]["data"];
    assert_eq!(key["object"], "api_key");
    assert_eq!(key["id"], created.key.id.as_str());
    assert_eq!(key["owner"]["id"], app.tenant.as_str());
    assert!(
        !r.text.contains(created.token.as_str()),
        "the API key in an event"
    );
    // Operator commands have no request.
    assert_eq!(key["request_id"], Value::Null);
    assert_eq!(events[4]["data"]["id"], fid);
}
