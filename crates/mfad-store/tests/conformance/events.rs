//! Events: written with their change or not at all, listed per tenant by keyset, purged.

use mfad_core::error::CoreError;
use mfad_core::events::{EventIds, EventRecord, EventScan};
use mfad_core::model::FactorDetails;
use mfad_core::model::{Challenge, Factor};
use mfad_core::store::{ChallengeJudge, Judgement, Settlement, Store, SuccessOutcome, Verdict};
use std::sync::Arc;

use super::{Harness, MAX_ATTEMPTS, NOW, RACERS, at, factor, pending_challenge, race, tenant};

fn event(ids: &EventIds, tenant: &mfad_core::ids::TenantId, name: &str, ms: i64) -> EventRecord {
    EventRecord {
        id: ids.next(at(ms)).unwrap(),
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        created_at: at(ms),
        data: format!(r#"{{"n":"{name}"}}"#),
    }
}

async fn all(
    h: &Harness,
    t: &mfad_core::ids::TenantId,
    names: &[&'static str],
) -> Vec<EventRecord> {
    h.db.scan_events(EventScan {
        tenant_id: t,
        names,
        range_start: None,
        range_end: None,
        ascending: true,
        start_after: None,
        limit: 1000,
    })
    .await
    .unwrap()
}

pub(super) async fn events_are_written_only_with_their_change(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let ids = EventIds::default();
    let names = ["a.b_c", "d.e"];

    // A change and its events commit together.
    let (_, c) = pending_challenge(&h.db, &t).await;
    let ok = event(&ids, &t.id, "a.b_c", NOW);
    assert_eq!(
        h.db.record_success(
            &t.id,
            &c.id,
            MAX_ATTEMPTS,
            at(NOW + 1),
            std::slice::from_ref(&ok)
        )
        .await
        .unwrap(),
        SuccessOutcome::Verified
    );
    // A change that does not happen writes no event.
    let again = event(&ids, &t.id, "a.b_c", NOW + 2);
    assert_eq!(
        h.db.record_success(&t.id, &c.id, MAX_ATTEMPTS, at(NOW + 2), &[again])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );
    let f = factor(&t, None, FactorDetails::GenericOtp, NOW);
    let gone = event(&ids, &t.id, "d.e", NOW + 3);
    assert!(!h.db.delete_factor(&t.id, &f.id, &[gone]).await.unwrap());
    // An insert that fails (duplicate id) takes its event with it.
    h.db.insert_factor(&f, None, &[]).await.unwrap();
    let dup = event(&ids, &t.id, "d.e", NOW + 4);
    assert!(h.db.insert_factor(&f, None, &[dup]).await.is_err());

    let listed = all(h, &t.id, &names).await;
    assert_eq!(
        listed,
        vec![ok],
        "only the event of the change that happened"
    );
}

pub(super) async fn events_scan_by_tenant_name_range_and_cursor(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let other = tenant(&h.db, "other").await;
    let ids = EventIds::default();
    let mut mine = Vec::new();
    for i in 0..6 {
        let name = if i % 2 == 0 { "x.one_a" } else { "x.two" };
        mine.push(event(&ids, &t.id, name, NOW + i * 1000));
    }
    h.db.record_events(&mine).await.unwrap();
    // The underscore is not a wildcard: `x.oneXa` must not match `x.one_a`.
    h.db.record_events(&[event(&ids, &t.id, "x.oneXa", NOW)])
        .await
        .unwrap();
    h.db.record_events(&[event(&ids, &other.id, "x.one_a", NOW)])
        .await
        .unwrap();

    assert_eq!(all(h, &t.id, &["x.one_a", "x.two"]).await, mine);
    let evens: Vec<_> = mine.iter().step_by(2).cloned().collect();
    assert_eq!(all(h, &t.id, &["x.one_a"]).await, evens);
    assert_eq!(all(h, &other.id, &["x.two"]).await, vec![]);

    let scan = |ascending, start_after, range_start, range_end, limit| EventScan {
        tenant_id: &t.id,
        names: &["x.one_a", "x.two"],
        range_start,
        range_end,
        ascending,
        start_after,
        limit,
    };
    let page =
        h.db.scan_events(scan(true, Some(&mine[1].id), None, None, 2))
            .await
            .unwrap();
    assert_eq!(page, mine[2..4]);
    let page =
        h.db.scan_events(scan(false, Some(&mine[4].id), None, None, 10))
            .await
            .unwrap();
    let mut rev = mine[..4].to_vec();
    rev.reverse();
    assert_eq!(page, rev);
    // range_start inclusive, range_end exclusive.
    let page =
        h.db.scan_events(scan(
            true,
            None,
            Some(at(NOW + 1000)),
            Some(at(NOW + 3000)),
            10,
        ))
        .await
        .unwrap();
    assert_eq!(page, mine[1..3]);
}

pub(super) async fn events_purge_in_batches_oldest_first(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let ids = EventIds::default();
    let evs: Vec<_> = (0..5).map(|i| event(&ids, &t.id, "p.q", NOW + i)).collect();
    h.db.record_events(&evs).await.unwrap();
    assert_eq!(h.db.purge_events(at(NOW + 3), 2).await.unwrap(), 2);
    assert_eq!(h.db.purge_events(at(NOW + 3), 2).await.unwrap(), 1);
    assert_eq!(h.db.purge_events(at(NOW + 3), 2).await.unwrap(), 0);
    assert_eq!(all(h, &t.id, &["p.q"]).await, evs[3..]);
}

/// A judge that settles a right code (with one event) while the challenge is pending.
fn right_with_event(ids: Arc<EventIds>, tenant: mfad_core::ids::TenantId) -> ChallengeJudge {
    Box::new(move |c: &Challenge, _: &Factor| {
        if c.verified_at.is_some() {
            return Verdict::Refuse(CoreError::InvalidCode);
        }
        Verdict::Settle(Settlement {
            judgement: Judgement::Right { totp_step: None },
            on_factor: false,
            max_attempts: MAX_ATTEMPTS,
            events: vec![event(&ids, &tenant, "v.ok", NOW)].into(),
        })
    })
}

pub(super) async fn race_verify_in_one_call_writes_one_event_per_settlement(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let (_, c) = pending_challenge(&h.db, &t).await;
    let nodes = h.nodes().await;
    let ids = Arc::new(EventIds::default());
    let (tid, cid) = (t.id.clone(), c.id.clone());
    let results = race(&nodes, RACERS, move |db: mfad_store::Db, _| {
        let (ids, tid, cid) = (ids.clone(), tid.clone(), cid.clone());
        async move {
            let judge = right_with_event(ids, tid.clone());
            db.verify_challenge(&tid, &cid, at(NOW + 1), judge)
                .await
                .unwrap()
        }
    })
    .await;
    let settled = results
        .iter()
        .filter(|v| {
            matches!(
                v,
                mfad_core::store::Verification::Judged {
                    verdict: Verdict::Settle(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(settled, 1);
    assert_eq!(
        all(h, &t.id, &["v.ok"]).await.len(),
        1,
        "one event: the one settlement's"
    );
}
