//! Conformance of `verify_challenge`, a verification in one store call: the judge is
//! called on the rows as stored, its settlement is written all or nothing and only on
//! the rows it judged, and racing verifications (split across two nodes) settle one
//! right code once and count every wrong code that is reported counted exactly once.
//! The judges here are stand-ins for the engine's (`mfad_core::verify`, tested through
//! the server): the store only promises to call one and record what it says.

use mfad_core::error::CoreError;
use mfad_core::model::{Challenge, Factor};
use mfad_core::store::{ChallengeJudge, Judgement, Settlement, Store, Verdict, Verification};
use mfad_store::Db;

use super::{Harness, MAX_ATTEMPTS, NOW, RACERS, at, pending_challenge, race, reload, tenant};

/// A judge that refuses a challenge no longer pending and otherwise says `judgement`.
fn judge(judgement: Judgement, max_attempts: u32) -> ChallengeJudge {
    Box::new(move |c: &Challenge, _: &Factor| {
        if c.verified_at.is_some() || c.attempts >= max_attempts {
            Verdict::Refuse(CoreError::InvalidCode)
        } else {
            Verdict::Settle(Settlement {
                judgement,
                on_factor: true,
                max_attempts,
                events: Box::new([]),
            })
        }
    })
}

async fn failures(db: &Db, c: &Challenge) -> u32 {
    db.get_factor(&c.tenant_id, &c.factor_id)
        .await
        .unwrap()
        .unwrap()
        .failures
        .consecutive
}

fn settled(v: &Verification) -> Option<Judgement> {
    match v {
        Verification::Judged {
            verdict: Verdict::Settle(s),
            ..
        } => Some(s.judgement),
        _ => None,
    }
}

pub(crate) async fn verify_in_one_call_records_what_the_judge_says(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let (f, c) = pending_challenge(&h.db, &t).await;
    let now = at(NOW + 1_000);

    // A refusal writes nothing, and hands back the rows judged.
    let refuse: ChallengeJudge =
        Box::new(|_: &Challenge, _: &Factor| Verdict::Refuse(CoreError::Locked));
    match h
        .db
        .verify_challenge(&t.id, &c.id, now, refuse)
        .await
        .unwrap()
    {
        Verification::Judged {
            challenge,
            factor,
            verdict: Verdict::Refuse(CoreError::Locked),
        } => assert_eq!((challenge.id, factor.id), (c.id.clone(), f.id.clone())),
        other => panic!("{other:?}"),
    }
    assert_eq!(reload(&h.db, &t, &c).await.attempts, 0);
    assert_eq!(failures(&h.db, &c).await, 0);

    // A wrong code counts on the challenge and the factor.
    let wrong = judge(Judgement::Wrong, MAX_ATTEMPTS);
    let v =
        h.db.verify_challenge(&t.id, &c.id, now, wrong)
            .await
            .unwrap();
    assert_eq!(settled(&v), Some(Judgement::Wrong));
    assert_eq!(reload(&h.db, &t, &c).await.attempts, 1);
    assert_eq!(failures(&h.db, &c).await, 1);

    // A right one closes the challenge and clears the factor's count; the judge saw the
    // attempt counted before.
    let right = Judgement::Right { totp_step: None };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_by_judge = seen.clone();
    let mut inner = judge(right, MAX_ATTEMPTS);
    let watching: ChallengeJudge = Box::new(move |c: &Challenge, f: &Factor| {
        *seen_by_judge.lock().unwrap() = Some((c.attempts, f.failures.consecutive));
        inner(c, f)
    });
    let v =
        h.db.verify_challenge(&t.id, &c.id, now, watching)
            .await
            .unwrap();
    assert_eq!(settled(&v), Some(right));
    assert_eq!(*seen.lock().unwrap(), Some((1, 1)));
    assert_eq!(reload(&h.db, &t, &c).await.verified_at, Some(now));
    assert_eq!(failures(&h.db, &c).await, 0);

    // Not pending any more: the judge refuses, nothing changes.
    let again = judge(right, MAX_ATTEMPTS);
    let v =
        h.db.verify_challenge(&t.id, &c.id, at(NOW + 2_000), again)
            .await
            .unwrap();
    assert_eq!(settled(&v), None);
    assert_eq!(reload(&h.db, &t, &c).await.verified_at, Some(now));

    // Another tenant's challenge, or none: missing, and the judge is not called.
    let other = tenant(&h.db, "other").await;
    let never: ChallengeJudge = Box::new(|_: &Challenge, _: &Factor| panic!("judged"));
    assert!(matches!(
        h.db.verify_challenge(&other.id, &c.id, now, never)
            .await
            .unwrap(),
        Verification::Missing
    ));
}

pub(crate) async fn race_verify_in_one_call_settles_one_right_code_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let (_, c) = pending_challenge(&h.db, &t).await;
    let now = at(NOW + 1_000);
    let right = Judgement::Right { totp_step: None };
    let results = race(&nodes, RACERS, |db, _| {
        let (tid, cid) = (t.id.clone(), c.id.clone());
        async move {
            let v = db
                .verify_challenge(&tid, &cid, now, judge(right, MAX_ATTEMPTS))
                .await
                .unwrap();
            settled(&v)
        }
    })
    .await;
    let wins = results.iter().filter(|r| r.is_some()).count();
    assert_eq!(wins, 1, "{results:?}");
    assert_eq!(reload(&h.db, &t, &c).await.verified_at, Some(now));
}

pub(crate) async fn race_verify_in_one_call_counts_each_wrong_code_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let (_, c) = pending_challenge(&h.db, &t).await;
    let now = at(NOW + 1_000);
    let max = u32::try_from(RACERS).unwrap() * 2;
    let results = race(&nodes, RACERS, |db, _| {
        let (tid, cid) = (t.id.clone(), c.id.clone());
        async move {
            match db
                .verify_challenge(&tid, &cid, now, judge(Judgement::Wrong, max))
                .await
                .unwrap()
            {
                Verification::Contended => None,
                v => Some(settled(&v)),
            }
        }
    })
    .await;
    // Every racer's code was counted, or (optimistic stores only) reported contended.
    let counted = results
        .iter()
        .filter(|r| **r == Some(Some(Judgement::Wrong)))
        .count();
    let contended = results.iter().filter(|r| r.is_none()).count();
    assert_eq!(counted + contended, RACERS, "{results:?}");
    assert!(counted >= 1);
    let counted = u32::try_from(counted).unwrap();
    assert_eq!(reload(&h.db, &t, &c).await.attempts, counted);
    assert_eq!(failures(&h.db, &c).await, counted);
}
