//! Send limits across nodes: bursts split between two `mfad serve` processes on one
//! PostgreSQL database text no more than one node alone would, to the Twilio stand-in.

use serde_json::json;

use super::{Cluster, burst, str_of};
use crate::support::{Inbox, Sms, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, twilio_standin};

/// A cluster of two nodes texting through one Twilio stand-in, with `extra` settings.
async fn texting_cluster(extra: &[(&str, &str)]) -> (Cluster, Inbox<Sms>) {
    let mut c = Cluster::start(0).await;
    let (twilio_url, inbox) = twilio_standin().await;
    let mut env = vec![
        ("MFAD_SMS_PROVIDER", "twilio"),
        ("MFAD_TWILIO_BASE_URL", twilio_url.as_str()),
        ("MFAD_TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID),
        ("MFAD_TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN),
        ("MFAD_TWILIO_FROM", "+15005550006"),
    ];
    env.extend_from_slice(extra);
    let url = c.db.url().to_owned();
    let mut nodes: Vec<_> = (0..2)
        .map(|i| c.spawn(&format!("sms{i}"), &url, &env))
        .collect();
    for n in &mut nodes {
        n.wait_ready().await;
    }
    c.nodes = nodes;
    (c, inbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_challenges_on_two_nodes_texts_one_number_once() {
    let (c, inbox) = texting_cluster(&[]).await;
    let f = c
        .enroll(
            c.node(0),
            json!({"type": "sms", "phone_number": "+14155552671"}),
        )
        .await;
    let path = format!("/auth/factors/{}/challenge", str_of(&f, "id"));
    let results = burst(&c, super::BURST, &path, |_| json!({})).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let refused: Vec<_> = results.iter().filter(|r| r.status == 429).collect();
    // The cooldown admits exactly one send, whichever node took it. Admissions for one
    // tenant queue on its lock; on a loaded machine some of the burst can wait past the
    // pool's acquire timeout and get a 503 (retry later) instead: nothing sent either.
    assert_eq!(created, 1, "{results:?}");
    assert!(!refused.is_empty(), "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r.status, 201 | 429 | 503)),
        "{results:?}"
    );
    assert!(refused.iter().all(|r| {
        r.body["code"] == "rate_limit_exceeded"
            && r.retry_after
                .as_deref()
                .is_some_and(|s| s.parse::<u64>().is_ok())
    }));
    assert_eq!(inbox.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tenant_cap_holds_across_nodes() {
    const CAP: usize = 5;
    let cap = CAP.to_string();
    let (c, inbox) = texting_cluster(&[("MFAD_SMS_PER_TENANT_HOUR", &cap)]).await;
    // One factor per racer, each on its own number: only the tenant's hourly cap binds.
    let mut paths = Vec::new();
    for i in 0..super::BURST {
        let phone = format!("+1415555{:04}", 2000 + i);
        let f = c
            .enroll(c.node(i), json!({"type": "sms", "phone_number": phone}))
            .await;
        paths.push((
            format!("/auth/factors/{}/challenge", str_of(&f, "id")),
            json!({}),
        ));
    }
    let results = super::burst_to(&c, paths).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, CAP, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r.status, 201 | 429)),
        "{results:?}"
    );
    assert_eq!(inbox.lock().unwrap().len(), CAP);
}
