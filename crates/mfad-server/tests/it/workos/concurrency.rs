//! Exactly-once verification and bounded guessing under parallel load.

use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinSet;

use crate::support::*;

const BURST: usize = 40;

async fn burst(app: &Arc<TestApp>, cids: Vec<String>, code: String) -> Vec<Resp> {
    let mut set = JoinSet::new();
    for cid in cids {
        let app = app.clone();
        let code = code.clone();
        set.spawn(async move { app.verify(&cid, &code).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_verifications_of_one_code_succeed_exactly_once() {
    let app = Arc::new(spawn_app().await);
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(f["id"].as_str().unwrap()).await;
    let cid = ch["id"].as_str().unwrap().to_owned();
    let results = burst(
        &app,
        vec![cid; BURST],
        ch["code"].as_str().unwrap().to_owned(),
    )
    .await;
    let valid = results
        .iter()
        .filter(|r| r.status == 201 && r.body["valid"] == true)
        .count();
    assert_eq!(valid, 1);
    for r in results.iter().filter(|r| r.status != 201) {
        assert_error(r, 422, "authentication_challenge_previously_verified");
    }
    assert!(results.iter().all(|r| r.status == 201 || r.status == 422));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_on_many_challenges_is_accepted_exactly_once() {
    let app = Arc::new(spawn_app().await);
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "A", "totp_user": "u"}))
        .await;
    let fid = f["id"].as_str().unwrap();
    let mut cids = Vec::new();
    for _ in 0..BURST {
        cids.push(app.challenge(fid).await["id"].as_str().unwrap().to_owned());
    }
    let code = app.totp_code(f["totp"]["secret"].as_str().unwrap(), 0);
    let results = burst(&app, cids, code).await;
    assert!(
        results.iter().all(|r| r.status == 201),
        "replays are valid:false, not errors"
    );
    assert_eq!(
        results.iter().filter(|r| r.body["valid"] == true).count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_guesses_are_judged_at_most_max_attempts_times() {
    let app = Arc::new(spawn_app().await);
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(f["id"].as_str().unwrap()).await;
    let cid = ch["id"].as_str().unwrap().to_owned();
    let right = ch["code"].as_str().unwrap();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let results = burst(&app, vec![cid.clone(); BURST], wrong.to_owned()).await;
    let judged = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(judged, 5, "exactly MAX_ATTEMPTS guesses are judged");
    assert!(
        results
            .iter()
            .filter(|r| r.status == 201)
            .all(|r| r.body["valid"] == false)
    );
    for r in results.iter().filter(|r| r.status != 201) {
        assert_error(r, 400, "one_time_code_too_many_attempts");
    }
    assert_error(
        &app.verify(&cid, right).await,
        400,
        "one_time_code_too_many_attempts",
    );
}
