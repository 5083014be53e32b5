//! Audit events and the WorkOS Events API (`GET /events`): each change records its event,
//! listed per tenant, in order, with WorkOS's list envelope and cursors; payloads carry no
//! code or secret (issue 12).

use serde_json::{Value, json};

use crate::support::{PHONE, TestApp, assert_error, spawn_app, spawn_relaxed};

const FLOW: &str = "authentication_factor.created,authentication_challenge.created,\
authentication.mfa_failed,authentication.mfa_succeeded,authentication_factor.deleted";

async fn events(app: &TestApp, key: &str, query: &str) -> Value {
    let r = app
        .call_as(key, "GET", &format!("/events?{query}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

/// Enroll, challenge, a wrong and a right code, delete: five events, in order.
async fn flow(app: &TestApp) -> (String, String, String) {
    let f = app
        .enroll(json!({"type": "generic_otp", "user_id": "user_ev"}))
        .await;
    let fid = f["id"].as_str().unwrap().to_owned();
    let c = app.challenge(&fid).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let code = c["code"].as_str().unwrap().to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(app.verify(&cid, wrong).await.body["valid"], false);
    assert_eq!(app.verify(&cid, &code).await.body["valid"], true);
    let r = app
        .call("DELETE", &format!("/auth/factors/{fid}"), None)
        .await;
    assert_eq!(r.status, 204);
    (fid, cid, code)
}

#[tokio::test]
async fn a_flow_records_its_events_in_order_for_its_tenant_only() {
    let app = spawn_app().await;
    let (fid, cid, code) = flow(&app).await;

    let list = events(&app, &app.key, &format!("events={FLOW}&order=asc")).await;
    assert_eq!(list["object"], "list");
    assert_eq!(names(&list), FLOW.split(',').collect::<Vec<_>>(), "{list}");
    let data = list["data"].as_array().unwrap();
    for e in data {
        assert_eq!(e["object"], "event");
        assert!(e["id"].as_str().unwrap().starts_with("event_"));
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(e["data"]["request_id"].is_string(), "{e}");
    }
    assert_eq!(data[0]["data"]["id"], fid.as_str());
    assert_eq!(data[0]["data"]["object"], "authentication_factor");
    assert_eq!(data[0]["data"]["user_id"], "user_ev");
    assert_eq!(data[1]["data"]["id"], cid.as_str());
    assert_eq!(data[1]["data"]["authentication_factor_id"], fid.as_str());
    // WorkOS's authentication event model, every field present.
    let failed = &data[2]["data"];
    for k in [
        "type",
        "status",
        "ip_address",
        "user_agent",
        "user_id",
        "email",
        "error",
    ] {
        assert!(failed.get(k).is_some(), "{k} missing: {failed}");
    }
    assert_eq!(failed["type"], "mfa");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "invalid_code");
    assert_eq!(failed["ip_address"], "127.0.0.1");
    let ok = &data[3]["data"];
    assert_eq!(ok["status"], "succeeded");
    assert_eq!(ok["user_id"], "user_ev");
    assert_eq!(ok["authentication_challenge"]["id"], cid.as_str());
    assert!(ok.get("error").is_none());
    // Never the code.
    assert!(!list.to_string().contains(&code), "{list}");

    // Newest first by default; the other tenant sees none of it.
    let desc = events(&app, &app.key, &format!("events={FLOW}")).await;
    let mut rev = names(&list);
    rev.reverse();
    assert_eq!(names(&desc), rev);
    let other = events(&app, &app.other_key, &format!("events={FLOW}&order=asc")).await;
    assert_eq!(other["data"], json!([]), "{other}");
}

#[tokio::test]
async fn events_filter_repeated_or_comma_joined_and_page_with_cursors() {
    let app = spawn_app().await;
    flow(&app).await;
    flow(&app).await;
    let repeated = events(
        &app,
        &app.key,
        "events=authentication_factor.created&events=authentication.mfa_succeeded&order=asc",
    )
    .await;
    let joined = events(
        &app,
        &app.key,
        "events=authentication_factor.created,authentication.mfa_succeeded&order=asc",
    )
    .await;
    assert_eq!(repeated["data"], joined["data"]);
    assert_eq!(
        names(&joined),
        [
            "authentication_factor.created",
            "authentication.mfa_succeeded",
            "authentication_factor.created",
            "authentication.mfa_succeeded"
        ]
    );
    // Pages of 3 by `after` walk all ten events once, in order.
    let all = events(
        &app,
        &app.key,
        &format!("events={FLOW}&order=asc&limit=100"),
    )
    .await;
    let ids: Vec<Value> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids.len(), 10);
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("events={FLOW}&order=asc&limit=3&after={a}"),
            None => format!("events={FLOW}&order=asc&limit=3"),
        };
        let page = events(&app, &app.key, &q).await;
        walked.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["list_metadata"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, ids);
    // A range that ends before everything holds nothing.
    let none = events(
        &app,
        &app.key,
        &format!("events={FLOW}&range_end=2000-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(none["data"], json!([]));
    let some = events(
        &app,
        &app.key,
        &format!("events={FLOW}&range_start=2000-01-01"),
    )
    .await;
    assert_eq!(some["data"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn bad_events_queries_are_workos_errors() {
    let app = spawn_app().await;
    for q in [
        "",
        "events=",
        "events=authentication.nope",
        "events=authentication.mfa_failed&limit=0",
        "events=authentication.mfa_failed&after=auth_factor_x",
        "events=authentication.mfa_failed&range_start=yesterday",
        "events=authentication.mfa_failed&organization_id=org_1",
    ] {
        let r = app.call("GET", &format!("/events?{q}"), None).await;
        assert_error(&r, 422, "invalid_request_parameters");
    }
    let r = app
        .call_as(
            "sk_nope",
            "GET",
            "/events?events=authentication.mfa_failed",
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}

#[tokio::test]
async fn sms_events_redact_the_number() {
    let app = spawn_relaxed().await;
    let f = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    app.challenge(f["id"].as_str().unwrap()).await;
    let list = events(
        &app,
        &app.key,
        "events=authentication_factor.created,authentication_challenge.created&order=asc",
    )
    .await;
    let text = list.to_string();
    assert_eq!(names(&list).len(), 2, "{text}");
    assert!(!text.contains(&PHONE[1..]), "full number leaked: {text}");
    assert_eq!(list["data"][0]["data"]["sms"]["phone_number"], "+14…71");
    assert_eq!(list["data"][1]["data"]["destination"], "+14…71");
}

/// 1,000 judged verifications across ten factors at once: exactly 1,000 verification
/// events, one per judged code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_verifications_records_exactly_one_event_each() {
    let app = std::sync::Arc::new(spawn_relaxed().await);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let f = app
                .enroll(json!({"type": "generic_otp", "user_id": format!("user_{i}")}))
                .await;
            let fid = f["id"].as_str().unwrap().to_owned();
            let (mut right, mut wrong) = (0, 0);
            // 20 challenges, each with 4 wrong codes then the right one: 100 judged.
            for _ in 0..20 {
                let c = app.challenge(&fid).await;
                let cid = c["id"].as_str().unwrap();
                let code = c["code"].as_str().unwrap();
                let bad = if code == "000000" { "111111" } else { "000000" };
                for _ in 0..4 {
                    let r = app.verify(cid, bad).await;
                    assert_eq!(r.body["valid"], false, "{}", r.text);
                    wrong += 1;
                }
                let r = app.verify(cid, code).await;
                assert_eq!(r.body["valid"], true, "{}", r.text);
                right += 1;
            }
            (right, wrong)
        }));
    }
    let (mut right, mut wrong) = (0, 0);
    for t in tasks {
        let (r, w) = t.await.unwrap();
        right += r;
        wrong += w;
    }
    assert_eq!(right + wrong, 1000);
    let count = |name: &'static str| {
        let app = app.clone();
        async move {
            let mut n = 0;
            let mut after: Option<String> = None;
            loop {
                let mut q = format!("events={name}&limit=100&order=asc");
                if let Some(a) = &after {
                    q.push_str(&format!("&after={a}"));
                }
                let page = events(&app, &app.key, &q).await;
                n += page["data"].as_array().unwrap().len();
                match page["list_metadata"]["after"].as_str() {
                    Some(a) => after = Some(a.to_owned()),
                    None => return n,
                }
            }
        }
    };
    assert_eq!(count("authentication.mfa_succeeded").await, right);
    assert_eq!(count("authentication.mfa_failed").await, wrong);
}
