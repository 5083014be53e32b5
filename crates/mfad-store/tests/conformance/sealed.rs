//! Conformance of master-key rotation (`sealed_key_counts`, `scan_sealed`,
//! `replace_sealed`) and idempotency entries (`claim_idempotency`, `complete_idempotency`,
//! `release_idempotency`, purge): counts follow the blobs' key ids, a replacement only
//! lands on the exact old blob, and one claim wins a race across two nodes.

use mfad_core::idempotency::{ClaimOutcome, IdempotencyClaim};
use mfad_core::model::{FactorDetails, RecoveryCode};
use mfad_core::rotation::{SealedCount, SealedKind, SealedRow, SealedValue};
use mfad_core::store::Store;
use mfad_core::{TenantId, UserId};
use mfad_store::Db;

use super::{Harness, NOW, RACERS, at, factor, race, tenant, totp_details};

const OLD: [u8; 4] = *b"OLD1";
const NEW: [u8; 4] = *b"NEW2";

/// A blob in the keyring's layout: version 1, key id, then 40 bytes standing for nonce and
/// ciphertext (`n` makes it unique).
fn blob(key: [u8; 4], n: u8) -> Vec<u8> {
    let mut b = vec![1];
    b.extend_from_slice(&key);
    b.extend_from_slice(&[n; 40]);
    b
}

fn count_of(counts: &[SealedCount], kind: SealedKind, key: [u8; 4]) -> u64 {
    counts
        .iter()
        .filter(|c| c.kind == kind && c.key_id == key)
        .map(|c| c.count)
        .sum()
}

pub(super) async fn sealed_values_count_scan_and_replace_only_the_exact_blob(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let mut ids = Vec::new();
    for n in 0..3u8 {
        let mut f = factor(&t, Some("user_1"), totp_details(None), NOW + i64::from(n));
        if let FactorDetails::Totp(totp) = &mut f.details {
            totp.sealed_secret = blob(OLD, n);
        }
        h.db.insert_factor(&f, None, &[]).await.unwrap();
        ids.push(f.id);
    }
    let generic = factor(&t, None, FactorDetails::GenericOtp, NOW + 9);
    h.db.insert_factor(&generic, None, &[]).await.unwrap();
    let counts = h.db.sealed_key_counts().await.unwrap();
    assert_eq!(
        count_of(&counts, SealedKind::TotpSecret, OLD),
        3,
        "{counts:?}"
    );
    assert_eq!(
        counts.iter().map(|c| c.count).sum::<u64>(),
        3,
        "only sealed values count"
    );

    // Keyset batches over what is not under the active key.
    let first =
        h.db.scan_sealed(SealedKind::TotpSecret, &NEW, None, 2)
            .await
            .unwrap();
    assert_eq!(first.len(), 2);
    let rest =
        h.db.scan_sealed(SealedKind::TotpSecret, &NEW, Some(&first[1].row), 2)
            .await
            .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].row, SealedRow::Factor(ids[2].clone()));

    // A replacement from a blob the row no longer holds changes nothing.
    let stale = SealedValue {
        row: first[0].row.clone(),
        sealed: blob(OLD, 99),
    };
    let new = SealedValue {
        row: first[0].row.clone(),
        sealed: blob(NEW, 0),
    };
    assert!(!h.db.replace_sealed(&stale, &new).await.unwrap());
    assert!(h.db.replace_sealed(&first[0], &new).await.unwrap());
    assert!(
        !h.db.replace_sealed(&first[0], &new).await.unwrap(),
        "once only"
    );
    let counts = h.db.sealed_key_counts().await.unwrap();
    assert_eq!(count_of(&counts, SealedKind::TotpSecret, OLD), 2);
    assert_eq!(count_of(&counts, SealedKind::TotpSecret, NEW), 1);
    let left =
        h.db.scan_sealed(SealedKind::TotpSecret, &NEW, None, 10)
            .await
            .unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|v| v.row != new.row));
    // The factor reads back with its new secret.
    let SealedRow::Factor(id) = &new.row else {
        panic!()
    };
    match h.db.get_factor(&t.id, id).await.unwrap().unwrap().details {
        FactorDetails::Totp(totp) => assert_eq!(totp.sealed_secret, new.sealed),
        other => panic!("{other:?}"),
    }
}

pub(super) async fn recovery_codes_rotate_with_their_digest(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let mut f = factor(&t, Some("user_1"), totp_details(None), NOW);
    f.method_id = Some(mfad_core::MethodId::parse("AB12").unwrap());
    let codes: Vec<RecoveryCode> = (0..3u8)
        .map(|n| RecoveryCode {
            digest: [OLD.as_slice(), &[n; 32]].concat(),
            sealed: blob(OLD, n),
            created_at: at(NOW),
        })
        .collect();
    h.db.insert_method(&f, &codes, at(NOW), &[], &[])
        .await
        .unwrap();
    let found =
        h.db.scan_sealed(SealedKind::RecoveryCode, &NEW, None, 10)
            .await
            .unwrap();
    assert_eq!(found.len(), 3);
    let SealedRow::RecoveryCode { tenant, user, .. } = &found[0].row else {
        panic!("{:?}", found[0])
    };
    let new = SealedValue {
        row: SealedRow::RecoveryCode {
            tenant: tenant.clone(),
            user: user.clone(),
            digest: [NEW.as_slice(), &[7; 32]].concat(),
        },
        sealed: blob(NEW, 7),
    };
    assert!(h.db.replace_sealed(&found[0], &new).await.unwrap());
    let stored =
        h.db.recovery_codes(&t.id, &UserId::parse("user_1").unwrap())
            .await
            .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        stored
            .iter()
            .any(|r| r.digest == [NEW.as_slice(), &[7; 32]].concat() && r.sealed == new.sealed)
    );
    // The used-up code cannot be rotated back in.
    assert!(!h.db.replace_sealed(&found[0], &new).await.unwrap());
    let counts = h.db.sealed_key_counts().await.unwrap();
    assert_eq!(count_of(&counts, SealedKind::RecoveryCode, OLD), 2);
    assert_eq!(count_of(&counts, SealedKind::RecoveryCode, NEW), 1);
}

fn claim<'a>(
    id: &'a str,
    t: &'a TenantId,
    digest: &'a [u8],
    token: &'a str,
    now: i64,
) -> IdempotencyClaim<'a> {
    IdempotencyClaim {
        id,
        tenant: t,
        request_digest: digest,
        claim: token,
        now: at(now),
        lease_until: at(now + 60_000),
        expires_at: at(now + 86_400_000),
    }
}

pub(super) async fn idempotency_claims_complete_release_expire_and_purge(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let db = &h.db;
    assert_eq!(
        db.claim_idempotency(&claim("e1", &t.id, b"req", "c1", NOW))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    let running = db
        .claim_idempotency(&claim("e1", &t.id, b"req", "c2", NOW + 1))
        .await
        .unwrap();
    assert_eq!(
        running,
        ClaimOutcome::Existing {
            request_digest: b"req".to_vec(),
            response: None
        }
    );
    // Only the claim holder completes it.
    assert!(
        !db.complete_idempotency("e1", "c2", 201, &blob(NEW, 1))
            .await
            .unwrap()
    );
    assert!(
        db.complete_idempotency("e1", "c1", 201, &blob(NEW, 1))
            .await
            .unwrap()
    );
    let done = db
        .claim_idempotency(&claim("e1", &t.id, b"other", "c3", NOW + 2))
        .await
        .unwrap();
    assert_eq!(
        done,
        ClaimOutcome::Existing {
            request_digest: b"req".to_vec(),
            response: Some((201, blob(NEW, 1)))
        }
    );
    let counts = db.sealed_key_counts().await.unwrap();
    assert_eq!(count_of(&counts, SealedKind::IdempotentResponse, NEW), 1);

    // Released: the next request claims it afresh. A claim whose holder never answered
    // lapses after its lease.
    assert_eq!(
        db.claim_idempotency(&claim("e2", &t.id, b"req", "c1", NOW))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    db.release_idempotency("e2", "c1").await.unwrap();
    assert_eq!(
        db.claim_idempotency(&claim("e2", &t.id, b"req", "c2", NOW))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(matches!(
        db.claim_idempotency(&claim("e2", &t.id, b"req", "c3", NOW + 59_000))
            .await
            .unwrap(),
        ClaimOutcome::Existing { .. }
    ));
    assert_eq!(
        db.claim_idempotency(&claim("e2", &t.id, b"req", "c3", NOW + 60_000))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(
        !db.complete_idempotency("e2", "c2", 200, &blob(NEW, 2))
            .await
            .unwrap(),
        "the lapsed claim lost it"
    );

    // Expired: claimed afresh even with a response; purged after expiry.
    let day = 86_400_000;
    assert_eq!(
        db.claim_idempotency(&claim("e1", &t.id, b"new", "c4", NOW + day + 2))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    db.purge_expired(at(NOW + 3 * day), 100).await.unwrap();
    let counts = db.sealed_key_counts().await.unwrap();
    assert_eq!(count_of(&counts, SealedKind::IdempotentResponse, NEW), 0);
    assert_eq!(
        db.claim_idempotency(&claim("e1", &t.id, b"x", "c5", NOW + 3 * day))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
}

pub(super) async fn race_one_idempotency_claim_wins(h: &Harness) {
    let nodes: [Db; 2] = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let results = race(&nodes, RACERS, |db, i| {
        let tid = t.id.clone();
        async move {
            let token = format!("c{i}");
            db.claim_idempotency(&claim("race", &tid, b"req", &token, NOW))
                .await
                .unwrap()
        }
    })
    .await;
    let won = results
        .iter()
        .filter(|r| **r == ClaimOutcome::Claimed)
        .count();
    assert_eq!(won, 1, "{results:?}");
}
