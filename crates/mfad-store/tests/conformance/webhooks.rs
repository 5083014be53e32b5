//! Webhooks: endpoints per tenant, the fan-out of each event into the outbox in the
//! transaction that writes it (on every write path, the SQLite writer thread's too), and
//! the leases, settlements and purges the dispatcher relies on.

use std::collections::BTreeSet;
use std::sync::Arc;

use mfad_core::error::CoreError;
use mfad_core::events::{EventIds, EventKind, EventRecord};
use mfad_core::ids::{TenantId, WebhookEndpointId};
use mfad_core::model::{Challenge, Factor};
use mfad_core::rotation::{SealedKind, SealedRow, SealedValue};
use mfad_core::store::{ChallengeJudge, Judgement, Settlement, Store, SuccessOutcome, Verdict};
use mfad_core::webhooks::outbox::{DeliveryState, Settlement as Outcome};
use mfad_core::webhooks::{WebhookEndpoint, WebhookFormat};

use super::{Harness, MAX_ATTEMPTS, NOW, RACERS, at, pending_challenge, race, tenant};

const SUCCEEDED: EventKind = EventKind::MfaSucceeded;
const FAILED: EventKind = EventKind::MfaFailed;

fn endpoint(tenant: &TenantId, events: &[EventKind], ms: i64) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookEndpointId::generate(at(ms)).unwrap(),
        tenant_id: tenant.clone(),
        url: format!("https://hooks.example/{ms}"),
        format: WebhookFormat::WorkOs,
        events: events.to_vec(),
        allow_insecure: ms % 2 == 0,
        created_at: at(ms),
    }
}

/// A sealed-looking blob naming key `key` (0x01 ‖ key id ‖ …), unique per `n`.
fn sealed(key: [u8; 4], n: u8) -> Vec<u8> {
    let mut b = vec![1];
    b.extend_from_slice(&key);
    b.extend_from_slice(&[n; 12]);
    b
}

const KEY: [u8; 4] = [9, 9, 9, 9];

fn event(ids: &EventIds, tenant: &TenantId, kind: EventKind, ms: i64) -> EventRecord {
    EventRecord {
        id: ids.next(at(ms)).unwrap(),
        tenant_id: tenant.clone(),
        name: kind.name().to_owned(),
        created_at: at(ms),
        data: format!(r#"{{"at":{ms}}}"#),
    }
}

/// The event ids pending for `e`, oldest first.
async fn pending_ids(h: &Harness, e: &WebhookEndpointId) -> Vec<String> {
    h.db.pending_webhook_deliveries(e, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.event.id.as_str().to_owned())
        .collect()
}

pub(super) async fn webhook_endpoints_round_trip_per_tenant(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let a = endpoint(&acme.id, &[FAILED, SUCCEEDED, FAILED], NOW);
    let b = endpoint(&acme.id, &[EventKind::FactorCreated], NOW + 1);
    let g = endpoint(&globex.id, &[SUCCEEDED], NOW + 2);
    for (e, n) in [(&a, 1), (&b, 2), (&g, 3)] {
        h.db.insert_webhook_endpoint(e, &sealed(KEY, n))
            .await
            .unwrap();
    }
    // A kind given twice is one subscription; kinds list in catalogue order.
    let mut want_a = a.clone();
    want_a.events = vec![SUCCEEDED, FAILED];
    assert_eq!(
        h.db.list_webhook_endpoints(Some(&acme.id)).await.unwrap(),
        vec![want_a.clone(), b.clone()]
    );
    assert_eq!(
        h.db.list_webhook_endpoints(None).await.unwrap(),
        vec![want_a.clone(), b.clone(), g.clone()]
    );
    assert_eq!(
        h.db.get_webhook_endpoint(&g.id).await.unwrap(),
        Some(g.clone())
    );
    // Another tenant cannot remove it; its own can, once.
    assert!(
        !h.db
            .delete_webhook_endpoint(&globex.id, &a.id)
            .await
            .unwrap()
    );
    assert!(h.db.delete_webhook_endpoint(&acme.id, &a.id).await.unwrap());
    assert!(!h.db.delete_webhook_endpoint(&acme.id, &a.id).await.unwrap());
    assert_eq!(h.db.get_webhook_endpoint(&a.id).await.unwrap(), None);
    assert_eq!(
        h.db.list_webhook_endpoints(Some(&acme.id)).await.unwrap(),
        vec![b]
    );

    // Signing secrets are sealed values: counted, scanned and replaced by rotation.
    let counts = h.db.sealed_key_counts().await.unwrap();
    let webhook = counts
        .iter()
        .find(|c| c.kind == SealedKind::WebhookSecret && c.key_id == KEY)
        .map(|c| c.count);
    assert_eq!(webhook, Some(2), "{counts:?}");
    let found =
        h.db.scan_sealed(SealedKind::WebhookSecret, &[7, 7, 7, 7], None, 10)
            .await
            .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].row, SealedRow::WebhookEndpoint(g.id.clone()));
    assert_eq!(found[1].sealed, sealed(KEY, 3));
    let after =
        h.db.scan_sealed(
            SealedKind::WebhookSecret,
            &[7, 7, 7, 7],
            Some(&found[0].row),
            10,
        )
        .await
        .unwrap();
    assert_eq!(after, found[1..]);
    let new = SealedValue {
        row: found[1].row.clone(),
        sealed: sealed([7, 7, 7, 7], 4),
    };
    assert!(h.db.replace_sealed(&found[1], &new).await.unwrap());
    assert!(
        !h.db.replace_sealed(&found[1], &new).await.unwrap(),
        "only the exact old blob is replaced"
    );
    let left =
        h.db.scan_sealed(SealedKind::WebhookSecret, &[7, 7, 7, 7], None, 10)
            .await
            .unwrap();
    assert_eq!(left.len(), 1);
    let now = at(NOW + 10);
    h.db.record_events(&[event(&EventIds::default(), &globex.id, SUCCEEDED, NOW + 10)])
        .await
        .unwrap();
    let claimed =
        h.db.claim_webhook_endpoints("me", now, at(NOW + 1000), 10)
            .await
            .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].sealed_secret, new.sealed,
        "the claim reads the new seal"
    );
    assert_eq!(claimed[0].url, g.url);
    assert_eq!(claimed[0].tenant_id, globex.id);
}

/// A judge that settles a right code with `events` while the challenge is pending.
fn right_with(events: Vec<EventRecord>) -> ChallengeJudge {
    Box::new(move |c: &Challenge, _: &Factor| {
        if c.verified_at.is_some() {
            return Verdict::Refuse(CoreError::InvalidCode);
        }
        Verdict::Settle(Settlement {
            judgement: Judgement::Right { totp_step: None },
            on_factor: false,
            max_attempts: MAX_ATTEMPTS,
            events: events.clone().into(),
        })
    })
}

pub(super) async fn events_fan_out_to_subscribed_endpoints_with_their_change(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let both = endpoint(&acme.id, &[SUCCEEDED, FAILED], NOW);
    let only_failed = endpoint(&acme.id, &[FAILED], NOW + 1);
    let theirs = endpoint(&globex.id, &[SUCCEEDED, FAILED], NOW + 2);
    for (e, n) in [(&both, 1), (&only_failed, 2), (&theirs, 3)] {
        h.db.insert_webhook_endpoint(e, &sealed(KEY, n))
            .await
            .unwrap();
    }
    let ids = EventIds::default();
    let mut want_both = Vec::new();
    let mut want_failed = Vec::new();

    // Events on their own (refusals).
    let e1 = event(&ids, &acme.id, FAILED, NOW + 10);
    let e2 = event(&ids, &acme.id, EventKind::MfaThrottled, NOW + 11);
    h.db.record_events(&[e1.clone(), e2]).await.unwrap();
    want_both.push(e1.id.clone());
    want_failed.push(e1.id.clone());

    // With a change (one statement and its events in one transaction) …
    let (_, c) = pending_challenge(&h.db, &acme).await;
    let e3 = event(&ids, &acme.id, SUCCEEDED, NOW + 12);
    assert_eq!(
        h.db.record_success(
            &acme.id,
            &c.id,
            MAX_ATTEMPTS,
            at(NOW + 12),
            std::slice::from_ref(&e3)
        )
        .await
        .unwrap(),
        SuccessOutcome::Verified
    );
    want_both.push(e3.id.clone());
    // … and a change that does not happen fans nothing out.
    let lost = event(&ids, &acme.id, SUCCEEDED, NOW + 13);
    assert_eq!(
        h.db.record_success(&acme.id, &c.id, MAX_ATTEMPTS, at(NOW + 13), &[lost])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );

    // A verification in one store visit (SQLite: on the writer thread).
    let (_, c) = pending_challenge(&h.db, &acme).await;
    let e4 = event(&ids, &acme.id, SUCCEEDED, NOW + 14);
    let e5 = event(&ids, &acme.id, FAILED, NOW + 14);
    h.db.verify_challenge(
        &acme.id,
        &c.id,
        at(NOW + 14),
        right_with(vec![e4.clone(), e5.clone()]),
    )
    .await
    .unwrap();
    want_both.extend([e4.id.clone(), e5.id.clone()]);
    want_failed.push(e5.id.clone());
    // Judged again, it refuses: no event, no delivery.
    h.db.verify_challenge(
        &acme.id,
        &c.id,
        at(NOW + 15),
        right_with(vec![event(&ids, &acme.id, SUCCEEDED, NOW + 15)]),
    )
    .await
    .unwrap();

    // Another tenant's event of a subscribed name.
    let g1 = event(&ids, &globex.id, SUCCEEDED, NOW + 16);
    h.db.record_events(std::slice::from_ref(&g1)).await.unwrap();

    let as_str = |v: &[mfad_core::EventId]| v.iter().map(|i| i.as_str().to_owned()).collect();
    let want_both: Vec<String> = as_str(&want_both);
    assert_eq!(pending_ids(h, &both.id).await, want_both);
    let want_failed: Vec<String> = as_str(&want_failed);
    assert_eq!(pending_ids(h, &only_failed.id).await, want_failed);
    assert_eq!(
        pending_ids(h, &theirs.id).await,
        vec![g1.id.as_str().to_owned()]
    );

    // A pending delivery carries its event as stored.
    let first = h.db.pending_webhook_deliveries(&both.id, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event, e1);
    let d = &first[0].delivery;
    assert_eq!(
        (d.state, d.attempts, d.next_attempt_at, d.settled_at),
        (DeliveryState::Pending, 0, e1.created_at, None)
    );
    assert_eq!(d.event_name, FAILED.name());

    // Removing an endpoint takes its deliveries; the others keep theirs.
    assert!(
        h.db.delete_webhook_endpoint(&acme.id, &both.id)
            .await
            .unwrap()
    );
    assert_eq!(pending_ids(h, &both.id).await, Vec::<String>::new());
    assert_eq!(pending_ids(h, &only_failed.id).await, want_failed);
}

pub(super) async fn webhook_leases_order_settlements_and_expiry(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let e = endpoint(&acme.id, &[SUCCEEDED], NOW);
    h.db.insert_webhook_endpoint(&e, &sealed(KEY, 1))
        .await
        .unwrap();
    let lease = |ms: i64| at(NOW + ms);
    // Nothing pending: nothing to claim.
    assert!(
        h.db.claim_webhook_endpoints("a", lease(0), lease(1000), 5)
            .await
            .unwrap()
            .is_empty()
    );
    let ids = EventIds::default();
    let evs: Vec<_> = (0..3)
        .map(|i| event(&ids, &acme.id, SUCCEEDED, NOW + 10 + i))
        .collect();
    h.db.record_events(&evs).await.unwrap();

    // Due only once its event exists (next_attempt_at is the event's time).
    assert!(
        h.db.claim_webhook_endpoints("a", lease(5), lease(1000), 5)
            .await
            .unwrap()
            .is_empty()
    );
    let got =
        h.db.claim_webhook_endpoints("a", lease(20), lease(1000), 5)
            .await
            .unwrap();
    assert_eq!(got.iter().map(|t| &t.id).collect::<Vec<_>>(), vec![&e.id]);
    assert_eq!(got[0].sealed_secret, sealed(KEY, 1));
    // Held: no one else gets it while the lease lives.
    assert!(
        h.db.claim_webhook_endpoints("b", lease(30), lease(2000), 5)
            .await
            .unwrap()
            .is_empty()
    );
    let pending = h.db.pending_webhook_deliveries(&e.id, 10).await.unwrap();
    assert_eq!(pending.len(), 3);
    let [p0, p1, p2] = [&pending[0], &pending[1], &pending[2]].map(|p| p.delivery.id);
    assert!(p0 < p1 && p1 < p2);

    // Only the lease holder settles.
    let ok = Outcome::Delivered { status: 204 };
    assert!(
        !h.db
            .settle_webhook_delivery(p0, "b", &ok, lease(40))
            .await
            .unwrap()
    );
    assert!(
        h.db.settle_webhook_delivery(p0, "a", &ok, lease(40))
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .settle_webhook_delivery(p0, "a", &ok, lease(41))
            .await
            .unwrap(),
        "settled once"
    );
    // A retry keeps it pending, counted, and due later.
    let retry = Outcome::Retry {
        status: Some(500),
        error: "HTTP 500".into(),
        next_attempt_at: lease(500),
    };
    assert!(
        h.db.settle_webhook_delivery(p1, "a", &retry, lease(50))
            .await
            .unwrap()
    );
    let pending = h.db.pending_webhook_deliveries(&e.id, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.delivery.id).collect::<Vec<_>>(),
        vec![p1, p2]
    );
    let d = &pending[0].delivery;
    assert_eq!(
        (d.attempts, d.last_status, d.last_error.as_deref()),
        (1, Some(500), Some("HTTP 500"))
    );
    assert_eq!(d.next_attempt_at, lease(500));

    // Released, it is not claimable while its oldest pending delivery waits, even though
    // a later one is due: order per endpoint.
    assert!(
        !h.db
            .renew_webhook_lease(&e.id, "b", lease(3000))
            .await
            .unwrap()
    );
    assert!(
        h.db.renew_webhook_lease(&e.id, "a", lease(3000))
            .await
            .unwrap()
    );
    h.db.release_webhook_lease(&e.id, "b", lease(60))
        .await
        .unwrap();
    assert!(
        h.db.claim_webhook_endpoints("b", lease(61), lease(2000), 5)
            .await
            .unwrap()
            .is_empty(),
        "a release by another owner changes nothing"
    );
    h.db.release_webhook_lease(&e.id, "a", lease(60))
        .await
        .unwrap();
    assert!(
        h.db.claim_webhook_endpoints("b", lease(100), lease(2000), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.db.claim_webhook_endpoints("b", lease(500), lease(2000), 5)
            .await
            .unwrap()
            .len(),
        1
    );
    // A lease that lapses can be taken over; the old holder can no longer settle.
    assert_eq!(
        h.db.claim_webhook_endpoints("c", lease(2001), lease(4000), 5)
            .await
            .unwrap()
            .len(),
        1
    );
    let fail = Outcome::Failed {
        status: None,
        error: "connection refused".into(),
    };
    assert!(
        !h.db
            .settle_webhook_delivery(p1, "b", &fail, lease(2002))
            .await
            .unwrap()
    );
    assert!(
        h.db.settle_webhook_delivery(p1, "c", &fail, lease(2002))
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .renew_webhook_lease(&e.id, "b", lease(5000))
            .await
            .unwrap(),
        "the old holder's lease is gone"
    );

    // Every attempt is listed, newest first, with its event.
    let listed = h.db.list_webhook_deliveries(&e.id, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![p2, p1, p0]
    );
    let states: Vec<_> = listed.iter().map(|d| (d.state, d.attempts)).collect();
    assert_eq!(
        states,
        vec![
            (DeliveryState::Pending, 0),
            (DeliveryState::Failed, 2),
            (DeliveryState::Delivered, 1)
        ]
    );
    assert_eq!(listed[1].last_error.as_deref(), Some("connection refused"));
    assert_eq!(listed[1].last_status, None);
    assert_eq!(listed[1].settled_at, Some(lease(2002)));
    assert_eq!(listed[2].last_status, Some(204));
    assert_eq!(listed[0].event_id, evs[2].id);
    assert_eq!(listed[0].event_name, SUCCEEDED.name());
    assert_eq!(
        h.db.list_webhook_deliveries(&e.id, 1).await.unwrap(),
        listed[..1]
    );
}

pub(super) async fn webhook_deliveries_purge_with_retention(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let e = endpoint(&acme.id, &[SUCCEEDED], NOW);
    h.db.insert_webhook_endpoint(&e, &sealed(KEY, 1))
        .await
        .unwrap();
    let ids = EventIds::default();
    let evs: Vec<_> = (0..4)
        .map(|i| event(&ids, &acme.id, SUCCEEDED, NOW + i))
        .collect();
    h.db.record_events(&evs).await.unwrap();
    assert_eq!(
        h.db.claim_webhook_endpoints("a", at(NOW + 10), at(NOW + 9999), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let pending = h.db.pending_webhook_deliveries(&e.id, 10).await.unwrap();
    let ok = Outcome::Delivered { status: 200 };
    for (p, ms) in pending.iter().take(2).zip([NOW + 20, NOW + 30]) {
        assert!(
            h.db.settle_webhook_delivery(p.delivery.id, "a", &ok, at(ms))
                .await
                .unwrap()
        );
    }
    // Settled rows go by their settlement time, in batches; pending ones stay.
    assert_eq!(
        h.db.purge_webhook_deliveries(at(NOW + 31), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        h.db.purge_webhook_deliveries(at(NOW + 31), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        h.db.purge_webhook_deliveries(at(NOW + 31), 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.db.list_webhook_deliveries(&e.id, 10).await.unwrap().len(),
        2
    );
    // Purging an event takes its remaining delivery with it (no dangling row, no
    // foreign key refusing the purge).
    assert_eq!(h.db.purge_events(at(NOW + 3), 100).await.unwrap(), 3);
    let left = pending_ids(h, &e.id).await;
    assert_eq!(left, vec![evs[3].id.as_str().to_owned()]);
}

pub(super) async fn race_two_claimers_never_hold_one_endpoint(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let ids = EventIds::default();
    let endpoints: Vec<_> = (0..8)
        .map(|i| endpoint(&acme.id, &[SUCCEEDED], NOW + i))
        .collect();
    for (i, e) in endpoints.iter().enumerate() {
        h.db.insert_webhook_endpoint(e, &sealed(KEY, u8::try_from(i).unwrap()))
            .await
            .unwrap();
    }
    // One event: every endpoint has a due delivery.
    h.db.record_events(&[event(&ids, &acme.id, SUCCEEDED, NOW + 100)])
        .await
        .unwrap();
    let nodes = h.nodes().await;
    for round in 0..3_i64 {
        // Each round's leases outlive the round, so every endpoint is claimable once.
        let now = at(NOW + 1_000 + round * 100_000);
        let until = at(NOW + 50_000 + round * 100_000);
        let results = race(&nodes, RACERS, move |db: mfad_store::Db, i| async move {
            let owner = format!("owner-{round}-{i}");
            let got = db.claim_webhook_endpoints(&owner, now, until, 2).await;
            (owner, got.unwrap())
        })
        .await;
        let mut seen = BTreeSet::new();
        for (owner, got) in &results {
            assert!(got.len() <= 2, "{owner} claimed {}", got.len());
            for t in got {
                assert!(
                    seen.insert(t.id.clone()),
                    "round {round}: {} claimed twice",
                    t.id
                );
            }
        }
        assert_eq!(
            seen.len(),
            endpoints.len(),
            "round {round}: every endpoint claimed by someone"
        );
        // The claims stuck: each endpoint settles only for its one holder.
        let holders: Arc<Vec<(String, WebhookEndpointId)>> = Arc::new(
            results
                .iter()
                .flat_map(|(o, got)| got.iter().map(|t| (o.clone(), t.id.clone())))
                .collect(),
        );
        for (owner, id) in holders.iter() {
            assert!(h.db.renew_webhook_lease(id, owner, until).await.unwrap());
        }
    }
}
