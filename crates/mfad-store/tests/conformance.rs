//! The storage conformance suite: every `Store` method and every atomic guarantee, run
//! identically against SQLite (always, on a temporary file) and PostgreSQL (when
//! `MFAD_TEST_DATABASE_URL` is set, or `CI` is; each test on a database of its own).
//!
//! The races open two independent stores on one database and split concurrent callers
//! between them, as two mfad nodes would be: the guarantees must come from the database,
//! not from anything shared in process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mfad_core::error::StoreError;
use mfad_core::ids::MethodId;
use mfad_core::ids::{ApiKeyId, ChallengeId, FactorId, TenantId, UserId};
use mfad_core::model::{
    ApiKey, Challenge, Factor, FactorDetails, FailureCount, LoginState, PendingCode, RecoveryCode,
    Tenant, TotpFactor, Trust,
};
use mfad_core::phone::PhoneNumber;
use mfad_core::store::{AttemptOutcome, FactorScan, Judgement, Store, SuccessOutcome};
use mfad_store::testing::{TestDatabase, admin_url};
use mfad_store::{Db, StoreOptions};
use time::OffsetDateTime;
use tokio::sync::Barrier;

/// Concurrent callers in each race.
const RACERS: usize = 48;
/// The attempt limit the races use.
const MAX_ATTEMPTS: u32 = 5;

// ---- harness ----------------------------------------------------------------------------

/// A migrated database of one backend, with what keeps it alive.
struct Harness {
    url: String,
    db: Db,
    opts: StoreOptions,
    _sqlite_dir: Option<tempfile::TempDir>,
    // Declared last so it drops last: the stores above close before the database goes.
    _pg: Option<TestDatabase>,
}

fn options() -> StoreOptions {
    // A pool big enough for real concurrency at the database, small enough that tests
    // running in parallel stay under PostgreSQL's default 100 connections.
    StoreOptions {
        max_connections: 12,
        ..StoreOptions::default()
    }
}

impl Harness {
    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/conformance.db", dir.path().display());
        let opts = options();
        let db = Db::connect(&url, &opts).await.unwrap();
        db.migrate().await.unwrap();
        Harness {
            url,
            db,
            opts,
            _sqlite_dir: Some(dir),
            _pg: None,
        }
    }

    /// A fresh database on the test server; panics (fails the test) when it is unreachable.
    async fn postgres() -> Harness {
        let admin = admin_url();
        let pg = TestDatabase::create(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL test database at {admin}: {e}"));
        let url = pg.url().to_owned();
        let opts = options();
        let db = Db::connect(&url, &opts).await.unwrap();
        db.migrate().await.unwrap();
        Harness {
            url,
            db,
            opts,
            _sqlite_dir: None,
            _pg: Some(pg),
        }
    }

    /// A second, independent store on the same database: another "node".
    async fn second_node(&self) -> Db {
        Db::connect(&self.url, &self.opts).await.unwrap()
    }

    /// Both nodes, for splitting racers between them.
    async fn nodes(&self) -> [Db; 2] {
        [self.db.clone(), self.second_node().await]
    }
}

/// Declares each case once per backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = super::Harness::sqlite().await;
                    super::$case(&h).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = super::Harness::postgres().await;
                    super::$case(&h).await;
                }
            )*
        }
    };
}

conformance!(
    ping_answers,
    ensure_tenant_keeps_the_first_of_a_name,
    api_keys_insert_get_list_revoke,
    jwt_keys_insert_all_or_none_list_delete,
    factors_of_every_type_round_trip,
    duplicate_ids_conflict,
    factor_with_first_challenge_is_all_or_nothing,
    other_tenants_see_nothing,
    delete_cascades_to_challenges,
    keyset_pagination_in_both_directions,
    failures_count_only_while_pending,
    success_closes_a_challenge_once,
    totp_step_only_advances,
    race_one_code_verifies_exactly_once,
    race_one_totp_step_is_used_exactly_once,
    race_wrong_codes_count_at_most_max_attempts,
    race_right_and_wrong_codes_together,
    race_totp_step_never_moves_backwards,
    race_delete_against_verification,
    factor_failures_count_and_clear_only_from_the_state_seen,
    user_failures_count_and_clear_only_from_the_state_seen,
    operators_find_and_unlock_factors_and_users,
    race_failures_from_one_state_count_once,
    race_user_failures_from_one_state_count_once,
    sent_codes_replace_consume_and_fail,
    logins_count_sends_fail_and_end_once,
    methods_recovery_codes_and_users,
    trusts_and_purge,
    race_one_sent_code_is_used_once,
    race_one_login_ends_once,
    race_one_recovery_code_is_used_once,
    last_used_method_is_one_per_user_last_write_wins,
    send_admission_reads_the_history_it_must,
    send_refusal_records_nothing_and_release_forgets,
    sms_countries_are_per_tenant_and_seen_by_admissions,
    race_send_admissions_never_exceed_a_limit,
    verify_in_one_call_records_what_the_judge_says,
    race_verify_in_one_call_settles_one_right_code_once,
    race_verify_in_one_call_counts_each_wrong_code_once,
    events_are_written_only_with_their_change,
    events_scan_by_tenant_name_range_and_cursor,
    events_purge_in_batches_oldest_first,
    race_verify_in_one_call_writes_one_event_per_settlement,
    webauthn_configs_are_per_tenant_and_replaced,
    passkeys_round_trip_unique_and_tenant_scoped,
    passkey_use_is_a_compare_and_set_on_the_counter,
    race_one_counter_value_is_used_once,
    ceremonies_are_taken_once_and_purged,
    race_one_ceremony_is_taken_once,
    // master-key rotation and idempotency (conformance/sealed.rs)
    sealed_values_count_scan_and_replace_only_the_exact_blob,
    recovery_codes_rotate_with_their_digest,
    idempotency_claims_complete_release_expire_and_purge,
    race_one_idempotency_claim_wins,
    // webhooks (conformance/webhooks.rs)
    webhook_endpoints_round_trip_per_tenant,
    events_fan_out_to_subscribed_endpoints_with_their_change,
    webhook_leases_order_settlements_and_expiry,
    webhook_deliveries_purge_with_retention,
    race_two_claimers_never_hold_one_endpoint,
);

#[path = "conformance/events.rs"]
mod events;
use events::*;

#[path = "conformance/send_limits.rs"]
mod send_limits;
use send_limits::*;

#[path = "conformance/verify.rs"]
mod verify;
use verify::*;
#[path = "conformance/webauthn.rs"]
mod webauthn;
use webauthn::*;
#[path = "conformance/sealed.rs"]
mod sealed;
use sealed::*;
#[path = "conformance/webhooks.rs"]
mod webhooks;
use webhooks::*;

// ---- fixtures ---------------------------------------------------------------------------

fn at(ms: i64) -> OffsetDateTime {
    mfad_core::clock::from_unix_ms(ms)
}

/// A fixed "now" for every case; ids generated at distinct offsets from it sort in
/// creation order.
const NOW: i64 = 1_760_000_000_000;

async fn tenant(db: &Db, name: &str) -> Tenant {
    let t = Tenant {
        id: TenantId::generate(at(NOW)).unwrap(),
        name: name.into(),
        created_at: at(NOW),
    };
    db.ensure_tenant(&t).await.unwrap()
}

fn factor(tenant: &Tenant, user: Option<&str>, details: FactorDetails, created_ms: i64) -> Factor {
    Factor {
        id: FactorId::generate(at(created_ms)).unwrap(),
        tenant_id: tenant.id.clone(),
        user_id: user.map(|u| UserId::parse(u).unwrap()),
        details,
        method_id: None,
        name: None,
        created_at: at(created_ms),
        updated_at: at(created_ms),
        failures: FailureCount::default(),
    }
}

fn totp_details(last_used_step: Option<i64>) -> FactorDetails {
    FactorDetails::Totp(TotpFactor {
        issuer: "Acme".into(),
        user: "ada@example.com".into(),
        algorithm: mfad_otp::Algorithm::Sha256,
        digits: 8,
        period: 60,
        sealed_secret: vec![1, 2, 3, 0, 255],
        last_used_step,
    })
}

fn challenge(f: &Factor, code_digest: Option<Vec<u8>>) -> Challenge {
    Challenge {
        id: ChallengeId::generate(at(NOW)).unwrap(),
        tenant_id: f.tenant_id.clone(),
        factor_id: f.id.clone(),
        code_digest,
        expires_at: at(NOW + 600_000),
        attempts: 0,
        verified_at: None,
        created_at: at(NOW),
    }
}

/// A generic-OTP factor with one pending challenge, stored.
async fn pending_challenge(db: &Db, t: &Tenant) -> (Factor, Challenge) {
    let f = factor(t, Some("user_1"), FactorDetails::GenericOtp, NOW);
    let c = challenge(&f, Some(vec![7; 32]));
    db.insert_factor(&f, Some(&c), &[]).await.unwrap();
    (f, c)
}

async fn reload(db: &Db, t: &Tenant, c: &Challenge) -> Challenge {
    db.get_challenge(&t.id, &c.id).await.unwrap().unwrap().0
}

async fn last_step(db: &Db, t: &Tenant, f: &FactorId) -> Option<i64> {
    match db.get_factor(&t.id, f).await.unwrap().unwrap().details {
        FactorDetails::Totp(totp) => totp.last_used_step,
        other => panic!("not TOTP: {other:?}"),
    }
}

// ---- cases ------------------------------------------------------------------------------

async fn ping_answers(h: &Harness) {
    h.db.ping().await.unwrap();
}

async fn last_used_method_is_one_per_user_last_write_wins(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
    let (f1, f2) = (
        FactorId::generate(at(NOW)).unwrap(),
        FactorId::generate(at(NOW + 1)).unwrap(),
    );
    assert_eq!(h.db.last_used_method(&acme.id, &ann).await.unwrap(), None);
    h.db.set_last_used_method(&acme.id, &ann, &f1, at(NOW))
        .await
        .unwrap();
    h.db.set_last_used_method(&acme.id, &bob, &f2, at(NOW))
        .await
        .unwrap();
    assert_eq!(
        h.db.last_used_method(&acme.id, &ann).await.unwrap(),
        Some(f1.clone())
    );
    h.db.set_last_used_method(&acme.id, &ann, &f2, at(NOW + 5))
        .await
        .unwrap();
    assert_eq!(
        h.db.last_used_method(&acme.id, &ann).await.unwrap(),
        Some(f2.clone())
    );
    assert_eq!(
        h.db.last_used_method(&acme.id, &bob).await.unwrap(),
        Some(f2)
    );
    // Per tenant: the same user id elsewhere has none.
    assert_eq!(h.db.last_used_method(&globex.id, &ann).await.unwrap(), None);
}

async fn ensure_tenant_keeps_the_first_of_a_name(h: &Harness) {
    let first = tenant(&h.db, "acme").await;
    let again = Tenant {
        id: TenantId::generate(at(NOW + 5)).unwrap(),
        name: "acme".into(),
        created_at: at(NOW + 5),
    };
    assert_ne!(first.id, again.id);
    let stored = h.db.ensure_tenant(&again).await.unwrap();
    assert_eq!(stored, first, "the existing tenant wins; no second row");
    let other = tenant(&h.db, "globex").await;
    assert_ne!(other.id, first.id);
}

async fn api_keys_insert_get_list_revoke(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let key = |t: &Tenant, ms: i64, name: &str| ApiKey {
        id: ApiKeyId::generate(at(ms)).unwrap(),
        tenant_id: t.id.clone(),
        name: name.into(),
        digest: vec![ms as u8; 32],
        created_at: at(ms),
        revoked_at: None,
    };
    let k1 = key(&acme, NOW, "one");
    let k2 = key(&globex, NOW + 1, "two");
    h.db.insert_api_key(&k1, &[]).await.unwrap();
    h.db.insert_api_key(&k2, &[]).await.unwrap();
    assert_eq!(h.db.get_api_key(&k1.id).await.unwrap(), Some(k1.clone()));
    assert_eq!(
        h.db.get_api_key(&ApiKeyId::generate(at(NOW)).unwrap())
            .await
            .unwrap(),
        None
    );

    let listed = h.db.list_api_keys().await.unwrap();
    assert_eq!(
        listed,
        vec![(k1.clone(), acme.clone()), (k2.clone(), globex.clone())],
        "oldest first, with tenants"
    );

    assert!(h.db.revoke_api_key(&k1.id, at(NOW + 9), &[]).await.unwrap());
    assert!(
        !h.db
            .revoke_api_key(&k1.id, at(NOW + 10), &[])
            .await
            .unwrap(),
        "revokes once"
    );
    assert!(
        !h.db
            .revoke_api_key(&ApiKeyId::generate(at(NOW)).unwrap(), at(NOW), &[])
            .await
            .unwrap()
    );
    let revoked = h.db.get_api_key(&k1.id).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(at(NOW + 9)),
        "the first revocation time stays"
    );
    assert_eq!(
        h.db.get_api_key(&k2.id).await.unwrap().unwrap().revoked_at,
        None
    );
}

async fn jwt_keys_insert_all_or_none_list_delete(h: &Harness) {
    use mfad_core::ids::JwtKeyId;
    use mfad_core::jwt_keys::{JwtKey, JwtKeyMaterial};
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let key = |t: &Tenant, ms: i64, kid: Option<&str>, material: JwtKeyMaterial| JwtKey {
        id: JwtKeyId::generate(at(ms)).unwrap(),
        tenant_id: t.id.clone(),
        kid: kid.map(str::to_owned),
        alg: "HS256".into(),
        material,
        created_at: at(ms),
    };
    let sealed = JwtKeyMaterial::Hs256 {
        sealed: vec![0, 1, 255],
    };
    let a1 = key(&acme, NOW, Some("k1"), sealed.clone());
    let a2 = key(
        &acme,
        NOW + 1,
        None,
        JwtKeyMaterial::PublicPem("pem".into()),
    );
    let a3 = key(&acme, NOW + 2, None, JwtKeyMaterial::Jwk("{}".into()));
    // Another tenant may reuse a kid.
    let g1 = key(&globex, NOW + 3, Some("k1"), sealed.clone());
    h.db.insert_jwt_keys(&[a1.clone(), a2.clone(), a3.clone()], &[])
        .await
        .unwrap();
    h.db.insert_jwt_keys(std::slice::from_ref(&g1), &[])
        .await
        .unwrap();
    let all = vec![
        (a1.clone(), acme.clone()),
        (a2.clone(), acme.clone()),
        (a3.clone(), acme.clone()),
        (g1.clone(), globex.clone()),
    ];
    assert_eq!(h.db.list_jwt_keys().await.unwrap(), all, "oldest first");

    // A kid taken in the tenant fails the whole batch.
    let fresh = key(&acme, NOW + 4, Some("k2"), sealed.clone());
    let taken = key(&acme, NOW + 5, Some("k1"), sealed);
    let e =
        h.db.insert_jwt_keys(&[fresh, taken], &[])
            .await
            .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(h.db.list_jwt_keys().await.unwrap(), all, "all or none");

    assert!(h.db.delete_jwt_key(&a1.id, &[]).await.unwrap());
    assert!(
        !h.db.delete_jwt_key(&a1.id, &[]).await.unwrap(),
        "deletes once"
    );
    let left: Vec<JwtKeyId> =
        h.db.list_jwt_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.id)
            .collect();
    assert_eq!(left, vec![a2.id, a3.id, g1.id]);
}

async fn factors_of_every_type_round_trip(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let factors = [
        factor(&t, Some("user_1"), totp_details(None), NOW),
        factor(&t, Some("user_1"), totp_details(Some(29_333_333)), NOW + 1),
        factor(
            &t,
            None,
            FactorDetails::Sms {
                phone: PhoneNumber::from_trusted("+14155552671".into()),
            },
            NOW + 2,
        ),
        factor(&t, Some("user_2"), FactorDetails::GenericOtp, NOW + 3),
    ];
    for f in &factors {
        h.db.insert_factor(f, None, &[]).await.unwrap();
    }
    for f in &factors {
        assert_eq!(
            h.db.get_factor(&t.id, &f.id).await.unwrap().as_ref(),
            Some(f)
        );
    }
    assert_eq!(
        h.db.get_factor(&t.id, &FactorId::generate(at(NOW)).unwrap())
            .await
            .unwrap(),
        None
    );

    // A challenge with and without a code digest, read back with its factor.
    let with_code = challenge(&factors[3], Some(vec![9; 32]));
    let totp = challenge(&factors[0], None);
    h.db.insert_challenge(&with_code, &[]).await.unwrap();
    h.db.insert_challenge(&totp, &[]).await.unwrap();
    assert_eq!(
        h.db.get_challenge(&t.id, &with_code.id).await.unwrap(),
        Some((with_code, factors[3].clone()))
    );
    assert_eq!(
        h.db.get_challenge(&t.id, &totp.id).await.unwrap(),
        Some((totp, factors[0].clone()))
    );
    assert_eq!(
        h.db.get_challenge(&t.id, &ChallengeId::generate(at(NOW)).unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn duplicate_ids_conflict(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let (f, c) = pending_challenge(&h.db, &t).await;
    assert!(matches!(
        h.db.insert_factor(&f, None, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        h.db.insert_challenge(&c, &[]).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn factor_with_first_challenge_is_all_or_nothing(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let (_, taken) = pending_challenge(&h.db, &t).await;
    let f = factor(&t, Some("user_1"), FactorDetails::GenericOtp, NOW + 1);
    // The first challenge reuses an existing id, so its insert fails: the factor must not
    // be left behind without it.
    let mut clash = challenge(&f, Some(vec![1; 32]));
    clash.id = taken.id.clone();
    assert!(h.db.insert_factor(&f, Some(&clash), &[]).await.is_err());
    assert_eq!(
        h.db.get_factor(&t.id, &f.id).await.unwrap(),
        None,
        "rolled back"
    );
}

async fn other_tenants_see_nothing(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let (f, c) = pending_challenge(&h.db, &acme).await;
    let totp = factor(&acme, Some("user_1"), totp_details(Some(10)), NOW + 1);
    let tc = challenge(&totp, None);
    h.db.insert_factor(&totp, Some(&tc), &[]).await.unwrap();
    let later = at(NOW + 1_000);

    assert_eq!(h.db.get_factor(&globex.id, &f.id).await.unwrap(), None);
    assert_eq!(h.db.get_challenge(&globex.id, &c.id).await.unwrap(), None);
    let scan = FactorScan {
        tenant_id: &globex.id,
        user_id: f.user_id.as_ref().unwrap(),
        ascending: true,
        start_after: None,
        limit: 10,
    };
    assert!(h.db.scan_user_factors(scan).await.unwrap().is_empty());
    assert_eq!(
        h.db.record_failure(&globex.id, &c.id, MAX_ATTEMPTS, later, &[])
            .await
            .unwrap(),
        AttemptOutcome::NotPending
    );
    assert_eq!(
        h.db.record_success(&globex.id, &c.id, MAX_ATTEMPTS, later, &[])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );
    // Another tenant can neither consume a TOTP step, nor count a failure, nor close the
    // challenge.
    for judgement in [
        Judgement::Right {
            totp_step: Some(11),
        },
        Judgement::Wrong,
    ] {
        assert!(
            !h.db
                .settle_factor_attempt(&globex.id, &totp.id, None, judgement, later)
                .await
                .unwrap()
        );
    }
    let out =
        h.db.record_success(&globex.id, &tc.id, MAX_ATTEMPTS, later, &[])
            .await
            .unwrap();
    assert_ne!(out, SuccessOutcome::Verified);
    assert!(!h.db.delete_factor(&globex.id, &f.id, &[]).await.unwrap());

    // Untouched for the owner.
    assert_eq!(reload(&h.db, &acme, &c).await, c);
    assert_eq!(reload(&h.db, &acme, &tc).await, tc);
    assert_eq!(last_step(&h.db, &acme, &totp.id).await, Some(10));
    assert!(h.db.get_factor(&acme.id, &f.id).await.unwrap().is_some());
}

async fn delete_cascades_to_challenges(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let (f, c1) = pending_challenge(&h.db, &t).await;
    let c2 = challenge(&f, Some(vec![3; 32]));
    h.db.insert_challenge(&c2, &[]).await.unwrap();
    let (keep, keep_c) = pending_challenge(&h.db, &t).await;

    assert!(h.db.delete_factor(&t.id, &f.id, &[]).await.unwrap());
    assert_eq!(h.db.get_factor(&t.id, &f.id).await.unwrap(), None);
    assert_eq!(h.db.get_challenge(&t.id, &c1.id).await.unwrap(), None);
    assert_eq!(h.db.get_challenge(&t.id, &c2.id).await.unwrap(), None);
    assert!(
        !h.db.delete_factor(&t.id, &f.id, &[]).await.unwrap(),
        "already gone"
    );
    // Deleted challenges can no longer be verified or counted.
    let later = at(NOW + 1);
    assert_eq!(
        h.db.record_success(&t.id, &c1.id, MAX_ATTEMPTS, later, &[])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );
    assert_eq!(
        h.db.record_failure(&t.id, &c2.id, MAX_ATTEMPTS, later, &[])
            .await
            .unwrap(),
        AttemptOutcome::NotPending
    );
    // Other factors keep theirs.
    assert_eq!(
        h.db.get_challenge(&t.id, &keep_c.id).await.unwrap(),
        Some((keep_c, keep))
    );
}

async fn keyset_pagination_in_both_directions(h: &Harness) {
    let acme = tenant(&h.db, "acme").await;
    let globex = tenant(&h.db, "globex").await;
    let mut mine = Vec::new();
    for i in 0..23 {
        let f = factor(
            &acme,
            Some("user_1"),
            FactorDetails::GenericOtp,
            NOW + i * 10,
        );
        h.db.insert_factor(&f, None, &[]).await.unwrap();
        mine.push(f);
        // Interleaved noise: another user of the tenant, the same user id in another tenant.
        h.db.insert_factor(
            &factor(
                &acme,
                Some("user_2"),
                FactorDetails::GenericOtp,
                NOW + i * 10 + 1,
            ),
            None,
            &[],
        )
        .await
        .unwrap();
        h.db.insert_factor(
            &factor(
                &globex,
                Some("user_1"),
                FactorDetails::GenericOtp,
                NOW + i * 10 + 2,
            ),
            None,
            &[],
        )
        .await
        .unwrap();
    }
    let ascending: Vec<FactorId> = mine.iter().map(|f| f.id.clone()).collect();
    let mut descending = ascending.clone();
    descending.reverse();
    let user = UserId::parse("user_1").unwrap();

    for (asc, expected) in [(true, &ascending), (false, &descending)] {
        let mut seen = Vec::new();
        let mut cursor: Option<FactorId> = None;
        let mut pages = 0;
        loop {
            let page =
                h.db.scan_user_factors(FactorScan {
                    tenant_id: &acme.id,
                    user_id: &user,
                    ascending: asc,
                    start_after: cursor.as_ref(),
                    limit: 10,
                })
                .await
                .unwrap();
            assert!(page.len() <= 10);
            pages += 1;
            if page.is_empty() {
                break;
            }
            assert!(
                page.iter()
                    .all(|f| f.tenant_id == acme.id && f.user_id.as_ref() == Some(&user))
            );
            cursor = page.last().map(|f| f.id.clone());
            seen.extend(page.into_iter().map(|f| f.id));
        }
        assert_eq!(&seen, expected, "ascending={asc}");
        assert_eq!(pages, 4, "10 + 10 + 3, then an empty page");
    }

    // From a cursor in the middle, each direction continues strictly past it.
    let mid = &ascending[11];
    let after =
        h.db.scan_user_factors(FactorScan {
            tenant_id: &acme.id,
            user_id: &user,
            ascending: true,
            start_after: Some(mid),
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|f| &f.id).collect::<Vec<_>>(),
        ascending[12..17].iter().collect::<Vec<_>>()
    );
    let before =
        h.db.scan_user_factors(FactorScan {
            tenant_id: &acme.id,
            user_id: &user,
            ascending: false,
            start_after: Some(mid),
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(
        before.iter().map(|f| &f.id).collect::<Vec<_>>(),
        ascending[6..11].iter().rev().collect::<Vec<_>>()
    );
    // Rows come back whole.
    assert_eq!(after[0], mine[12]);
}

async fn failures_count_only_while_pending(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);

    let (_, c) = pending_challenge(&h.db, &t).await;
    for n in 1..=MAX_ATTEMPTS {
        assert_eq!(
            h.db.record_failure(&t.id, &c.id, MAX_ATTEMPTS, now, &[])
                .await
                .unwrap(),
            AttemptOutcome::Counted
        );
        assert_eq!(reload(&h.db, &t, &c).await.attempts, n);
    }
    assert_eq!(
        h.db.record_failure(&t.id, &c.id, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap(),
        AttemptOutcome::NotPending,
        "exhausted"
    );
    assert_eq!(reload(&h.db, &t, &c).await.attempts, MAX_ATTEMPTS);

    let (_, expired) = pending_challenge(&h.db, &t).await;
    let after_expiry = expired.expires_at;
    assert_eq!(
        h.db.record_failure(&t.id, &expired.id, MAX_ATTEMPTS, after_expiry, &[])
            .await
            .unwrap(),
        AttemptOutcome::NotPending
    );
    assert_eq!(reload(&h.db, &t, &expired).await.attempts, 0);

    let (_, verified) = pending_challenge(&h.db, &t).await;
    assert_eq!(
        h.db.record_success(&t.id, &verified.id, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap(),
        SuccessOutcome::Verified
    );
    assert_eq!(
        h.db.record_failure(&t.id, &verified.id, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap(),
        AttemptOutcome::NotPending
    );
    assert_eq!(reload(&h.db, &t, &verified).await.attempts, 0);

    let missing = ChallengeId::generate(now).unwrap();
    assert_eq!(
        h.db.record_failure(&t.id, &missing, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap(),
        AttemptOutcome::NotPending
    );
}

async fn success_closes_a_challenge_once(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);

    let (_, c) = pending_challenge(&h.db, &t).await;
    assert_eq!(
        h.db.record_success(&t.id, &c.id, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap(),
        SuccessOutcome::Verified
    );
    assert_eq!(reload(&h.db, &t, &c).await.verified_at, Some(now));
    assert_eq!(
        h.db.record_success(&t.id, &c.id, MAX_ATTEMPTS, at(NOW + 2_000), &[])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );
    assert_eq!(
        reload(&h.db, &t, &c).await.verified_at,
        Some(now),
        "first verification stands"
    );

    let (_, expired) = pending_challenge(&h.db, &t).await;
    assert_eq!(
        h.db.record_success(&t.id, &expired.id, MAX_ATTEMPTS, expired.expires_at, &[])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );
    assert_eq!(reload(&h.db, &t, &expired).await.verified_at, None);

    let (_, exhausted) = pending_challenge(&h.db, &t).await;
    for _ in 0..MAX_ATTEMPTS {
        h.db.record_failure(&t.id, &exhausted.id, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap();
    }
    assert_eq!(
        h.db.record_success(&t.id, &exhausted.id, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap(),
        SuccessOutcome::NotPending
    );
    assert_eq!(reload(&h.db, &t, &exhausted).await.verified_at, None);
}

/// A right TOTP code through the throttle's settle: the step only moves forwards.
async fn use_step(db: &Db, t: &Tenant, f: &FactorId, step: i64) -> bool {
    db.settle_factor_attempt(
        &t.id,
        f,
        None,
        Judgement::Right {
            totp_step: Some(step),
        },
        at(NOW + 1_000),
    )
    .await
    .unwrap()
}

async fn totp_step_only_advances(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let f = factor(&t, Some("user_1"), totp_details(None), NOW);
    h.db.insert_factor(&f, None, &[]).await.unwrap();
    assert!(use_step(&h.db, &t, &f.id, 100).await);
    assert_eq!(last_step(&h.db, &t, &f.id).await, Some(100));
    // The same step and an earlier one are replays: nothing changes.
    for step in [100, 99] {
        assert!(!use_step(&h.db, &t, &f.id, step).await, "{step}");
        assert_eq!(last_step(&h.db, &t, &f.id).await, Some(100));
    }
    assert!(use_step(&h.db, &t, &f.id, 105).await);
    assert_eq!(last_step(&h.db, &t, &f.id).await, Some(105));
}

/// Runs `n` copies of `op` at once, alternating between the two nodes, and collects the
/// results.
async fn race<T, F, Fut>(nodes: &[Db; 2], n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Db, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let fut = op(nodes[i % 2].clone(), i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A fresh pending challenge of tenant `acme`, and the outcomes of [`RACERS`] calls of
/// `op` on it racing across both nodes.
async fn race_on_challenge<T, F, Fut>(h: &Harness, op: F) -> (Tenant, Challenge, Vec<T>)
where
    T: Send + 'static,
    F: Fn(Db, TenantId, ChallengeId) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let (_, c) = pending_challenge(&h.db, &t).await;
    let results = race(&nodes, RACERS, |db, _| op(db, t.id.clone(), c.id.clone())).await;
    (t, c, results)
}

async fn race_one_code_verifies_exactly_once(h: &Harness) {
    let now = at(NOW + 1_000);
    let (t, c, results) = race_on_challenge(h, |db, tid, cid| async move {
        db.record_success(&tid, &cid, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap()
    })
    .await;
    let wins = results
        .iter()
        .filter(|r| **r == SuccessOutcome::Verified)
        .count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, SuccessOutcome::Verified | SuccessOutcome::NotPending))
    );
    assert_eq!(reload(&h.db, &t, &c).await.verified_at, Some(now));
}

async fn race_one_totp_step_is_used_exactly_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let f = factor(&t, Some("user_1"), totp_details(Some(41)), NOW);
    h.db.insert_factor(&f, None, &[]).await.unwrap();
    let results = race(&nodes, RACERS, |db, _| {
        let (t, fid) = (t.clone(), f.id.clone());
        async move { use_step(&db, &t, &fid, 42).await }
    })
    .await;
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
    assert_eq!(last_step(&h.db, &t, &f.id).await, Some(42));
}

async fn race_wrong_codes_count_at_most_max_attempts(h: &Harness) {
    let now = at(NOW + 1_000);
    let (t, c, results) = race_on_challenge(h, |db, tid, cid| async move {
        db.record_failure(&tid, &cid, MAX_ATTEMPTS, now, &[])
            .await
            .unwrap()
    })
    .await;
    let counted = results
        .iter()
        .filter(|r| **r == AttemptOutcome::Counted)
        .count();
    assert_eq!(counted, MAX_ATTEMPTS as usize, "{results:?}");
    assert_eq!(reload(&h.db, &t, &c).await.attempts, MAX_ATTEMPTS);
}

async fn race_right_and_wrong_codes_together(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);
    // Several rounds, so the right code lands at different points among the wrong ones.
    for _ in 0..8 {
        let (_, c) = pending_challenge(&h.db, &t).await;
        #[derive(Debug, PartialEq)]
        enum R {
            S(SuccessOutcome),
            F(AttemptOutcome),
        }
        let results = race(&nodes, RACERS, |db, i| {
            let (tid, cid) = (t.id.clone(), c.id.clone());
            async move {
                if i % 6 == 0 {
                    R::S(
                        db.record_success(&tid, &cid, MAX_ATTEMPTS, now, &[])
                            .await
                            .unwrap(),
                    )
                } else {
                    R::F(
                        db.record_failure(&tid, &cid, MAX_ATTEMPTS, now, &[])
                            .await
                            .unwrap(),
                    )
                }
            }
        })
        .await;
        let wins = results
            .iter()
            .filter(|r| **r == R::S(SuccessOutcome::Verified))
            .count();
        let counted = results
            .iter()
            .filter(|r| **r == R::F(AttemptOutcome::Counted))
            .count();
        let stored = reload(&h.db, &t, &c).await;
        assert!(wins <= 1, "{results:?}");
        assert!(counted <= MAX_ATTEMPTS as usize, "{results:?}");
        assert_eq!(
            stored.attempts as usize, counted,
            "every counted attempt is stored, no more"
        );
        assert_eq!(stored.verified_at.is_some(), wins == 1);
        // Either the right code got in (before the limit) or the limit was reached first.
        assert!(wins == 1 || counted == MAX_ATTEMPTS as usize, "{results:?}");
    }
}

async fn race_totp_step_never_moves_backwards(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let f = factor(&t, Some("user_1"), totp_details(None), NOW);
    h.db.insert_factor(&f, None, &[]).await.unwrap();
    // A watcher reads the step throughout the race: what it sees must never decrease.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (db, tid, fid, stop) = (h.second_node().await, t.clone(), f.id.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(last_step(&db, &tid, &fid).await);
            }
            seen
        })
    };
    // Steps arrive in a scrambled order: 1..=RACERS, permuted.
    let results = race(&nodes, RACERS, |db, i| {
        let step = ((i * 7) % RACERS + 1) as i64;
        let (t, fid) = (t.clone(), f.id.clone());
        async move { (step, use_step(&db, &t, &fid, step).await) }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "step went backwards: {seen:?}"
    );

    let max = RACERS as i64;
    assert_eq!(last_step(&h.db, &t, &f.id).await, Some(max));
    assert!(
        results.contains(&(max, true)),
        "the highest step always passes"
    );
    let accepted: BTreeSet<i64> = results
        .iter()
        .filter(|(_, r)| *r)
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        accepted.len(),
        results.iter().filter(|(_, r)| *r).count(),
        "no step accepted twice"
    );
    // Afterwards every step at or below the stored one is a replay.
    assert!(!use_step(&h.db, &t, &f.id, max).await);
}

async fn race_delete_against_verification(h: &Harness) {
    // Deleting a TOTP factor while its challenges are being verified locks the factor and
    // challenge rows in the same order as verification does, so neither fails (a deadlock
    // would surface as an error here).
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);
    for round in 0..6 {
        let f = factor(&t, Some("user_1"), totp_details(None), NOW + round);
        h.db.insert_factor(&f, None, &[]).await.unwrap();
        let mut challenges = Vec::new();
        for _ in 0..8 {
            let c = challenge(&f, None);
            h.db.insert_challenge(&c, &[]).await.unwrap();
            challenges.push(c);
        }
        let results = race(&nodes, 9, |db, i| {
            let (tid, fid) = (t.id.clone(), f.id.clone());
            let cid = challenges.get(i).map(|c| c.id.clone());
            async move {
                let used = Judgement::Right {
                    totp_step: Some(50 + i as i64),
                };
                match cid {
                    Some(cid) => {
                        db.settle_factor_attempt(&tid, &fid, None, used, now)
                            .await
                            .unwrap();
                        db.record_success(&tid, &cid, MAX_ATTEMPTS, now, &[])
                            .await
                            .map(|_| ())
                    }
                    None => db
                        .delete_factor(&tid, &fid, &[])
                        .await
                        .map(|deleted| assert!(deleted)),
                }
            }
        })
        .await;
        for r in results {
            r.unwrap();
        }
        assert_eq!(h.db.get_factor(&t.id, &f.id).await.unwrap(), None);
        for c in &challenges {
            assert_eq!(h.db.get_challenge(&t.id, &c.id).await.unwrap(), None);
        }
    }
}

// ---- throttle ---------------------------------------------------------------------------

async fn failures(db: &Db, t: &Tenant, f: &FactorId) -> FailureCount {
    db.get_factor(&t.id, f).await.unwrap().unwrap().failures
}

async fn factor_failures_count_and_clear_only_from_the_state_seen(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let f = factor(&t, Some("user_1"), totp_details(None), NOW);
    h.db.insert_factor(&f, None, &[]).await.unwrap();
    assert_eq!(failures(&h.db, &t, &f.id).await, FailureCount::default());
    let mut seen = FailureCount::default();
    for n in 1..=3u32 {
        let now = at(NOW + i64::from(n) * 1_000);
        assert!(
            h.db.settle_factor_attempt(&t.id, &f.id, Some(&seen), Judgement::Wrong, now)
                .await
                .unwrap()
        );
        seen = failures(&h.db, &t, &f.id).await;
        assert_eq!(
            seen,
            FailureCount {
                consecutive: n,
                last_at: Some(now)
            }
        );
    }
    // A stale state changes nothing: neither a failure nor a success, nor the step.
    let stale = FailureCount {
        consecutive: 1,
        last_at: Some(at(NOW + 1_000)),
    };
    let right = Judgement::Right { totp_step: Some(7) };
    for j in [Judgement::Wrong, right] {
        assert!(
            !h.db
                .settle_factor_attempt(&t.id, &f.id, Some(&stale), j, at(NOW + 9_000))
                .await
                .unwrap()
        );
    }
    assert_eq!(failures(&h.db, &t, &f.id).await, seen);
    assert_eq!(last_step(&h.db, &t, &f.id).await, None);
    // From the state seen, a right code clears the count and uses the step, once.
    assert!(
        h.db.settle_factor_attempt(&t.id, &f.id, Some(&seen), right, at(NOW + 9_000))
            .await
            .unwrap()
    );
    assert_eq!(failures(&h.db, &t, &f.id).await, FailureCount::default());
    assert_eq!(last_step(&h.db, &t, &f.id).await, Some(7));
    let cleared = FailureCount::default();
    assert!(
        !h.db
            .settle_factor_attempt(&t.id, &f.id, Some(&cleared), right, at(NOW + 9_000))
            .await
            .unwrap(),
        "a used step is a replay"
    );
    // A right code without a step (SMS, generic OTP) only clears.
    h.db.settle_factor_attempt(&t.id, &f.id, None, Judgement::Wrong, at(NOW))
        .await
        .unwrap();
    let seen = failures(&h.db, &t, &f.id).await;
    assert_eq!(seen.consecutive, 1);
    let plain = Judgement::Right { totp_step: None };
    assert!(
        h.db.settle_factor_attempt(&t.id, &f.id, Some(&seen), plain, at(NOW))
            .await
            .unwrap()
    );
    assert_eq!(failures(&h.db, &t, &f.id).await, FailureCount::default());
}

async fn user_failures_count_and_clear_only_from_the_state_seen(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let u = UserId::parse("user_1").unwrap();
    assert_eq!(
        h.db.user_failures(&t.id, &u).await.unwrap(),
        FailureCount::default()
    );
    assert!(!h.db.user_known(&t.id, &u).await.unwrap());
    let zero = FailureCount::default();
    assert!(
        h.db.settle_user_attempt(&t.id, &u, &zero, false, at(NOW))
            .await
            .unwrap()
    );
    assert!(
        h.db.user_known(&t.id, &u).await.unwrap(),
        "a counted user is known"
    );
    let one = h.db.user_failures(&t.id, &u).await.unwrap();
    assert_eq!(
        one,
        FailureCount {
            consecutive: 1,
            last_at: Some(at(NOW))
        }
    );
    assert!(
        !h.db
            .settle_user_attempt(&t.id, &u, &zero, true, at(NOW))
            .await
            .unwrap(),
        "stale"
    );
    assert!(
        h.db.settle_user_attempt(&t.id, &u, &one, true, at(NOW))
            .await
            .unwrap()
    );
    assert_eq!(h.db.user_failures(&t.id, &u).await.unwrap(), zero);
    // Another tenant's user of the same id is another count.
    let globex = tenant(&h.db, "globex").await;
    assert_eq!(h.db.user_failures(&globex.id, &u).await.unwrap(), zero);
}

async fn operators_find_and_unlock_factors_and_users(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let f = factor(&t, Some("user_1"), totp_details(None), NOW);
    let g = factor(&t, Some("user_1"), FactorDetails::GenericOtp, NOW + 1);
    let other = factor(&t, Some("user_2"), FactorDetails::GenericOtp, NOW + 2);
    for x in [&f, &g, &other] {
        h.db.insert_factor(x, None, &[]).await.unwrap();
        h.db.settle_factor_attempt(&t.id, &x.id, None, Judgement::Wrong, at(NOW))
            .await
            .unwrap();
    }
    let u = UserId::parse("user_1").unwrap();
    h.db.settle_user_attempt(&t.id, &u, &FailureCount::default(), false, at(NOW))
        .await
        .unwrap();

    assert_eq!(h.db.find_factor(&f.id).await.unwrap().unwrap().id, f.id);
    assert_eq!(
        h.db.find_factor(&FactorId::generate(at(NOW)).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(h.db.find_tenant("acme").await.unwrap().unwrap().id, t.id);
    assert_eq!(
        h.db.find_tenant(t.id.as_str()).await.unwrap().unwrap().name,
        "acme"
    );
    assert_eq!(h.db.find_tenant("nobody").await.unwrap(), None);

    assert!(h.db.unlock_factor(&f.id, &[]).await.unwrap());
    assert_eq!(failures(&h.db, &t, &f.id).await, FailureCount::default());
    assert_eq!(failures(&h.db, &t, &g.id).await.consecutive, 1);
    assert!(
        !h.db
            .unlock_factor(&FactorId::generate(at(NOW)).unwrap(), &[])
            .await
            .unwrap()
    );

    // The user and both their factors (one already clear), not the other user's.
    assert_eq!(h.db.unlock_user(&t.id, &u, &[]).await.unwrap(), 3);
    assert_eq!(failures(&h.db, &t, &g.id).await, FailureCount::default());
    assert_eq!(
        h.db.user_failures(&t.id, &u).await.unwrap(),
        FailureCount::default()
    );
    assert_eq!(failures(&h.db, &t, &other.id).await.consecutive, 1);
}

async fn race_failures_from_one_state_count_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let f = factor(&t, Some("user_1"), totp_details(None), NOW);
    h.db.insert_factor(&f, None, &[]).await.unwrap();
    let seen = FailureCount::default();
    let results = race(&nodes, RACERS, |db, _| {
        let (tid, fid) = (t.id.clone(), f.id.clone());
        async move {
            db.settle_factor_attempt(&tid, &fid, Some(&seen), Judgement::Wrong, at(NOW))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
    assert_eq!(failures(&h.db, &t, &f.id).await.consecutive, 1);
}

async fn race_user_failures_from_one_state_count_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let u = UserId::parse("user_1").unwrap();
    let seen = FailureCount::default();
    let results = race(&nodes, RACERS, |db, _| {
        let (tid, u) = (t.id.clone(), u.clone());
        async move {
            db.settle_user_attempt(&tid, &u, &seen, false, at(NOW))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
    assert_eq!(h.db.user_failures(&t.id, &u).await.unwrap().consecutive, 1);
}

// ---- FusionAuth two-factor state -------------------------------------------------------

fn code(t: &Tenant, scope: &str, digest: u8, expires_ms: i64) -> PendingCode {
    PendingCode {
        tenant_id: t.id.clone(),
        scope: scope.into(),
        user_id: Some(UserId::parse("user_1").unwrap()),
        digest: vec![digest; 32],
        payload: Some("KLRT".into()),
        expires_at: at(expires_ms),
        attempts: 0,
        created_at: at(NOW),
    }
}

fn login(t: &Tenant, id: &str) -> LoginState {
    LoginState {
        id_digest: id.into(),
        tenant_id: t.id.clone(),
        user_id: UserId::parse("user_1").unwrap(),
        application_id: Some("app".into()),
        state: Some("{}".into()),
        expires_at: at(NOW + 300_000),
        attempts: 0,
        sends: 0,
        created_at: at(NOW),
    }
}

fn recovery_set(n: u8) -> Vec<RecoveryCode> {
    (0..n)
        .map(|i| RecoveryCode {
            digest: vec![i; 32],
            sealed: vec![i, 1, 2],
            created_at: at(NOW),
        })
        .collect()
}

async fn sent_codes_replace_consume_and_fail(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);
    let late = NOW + 600_000;
    h.db.put_code(&code(&t, "enable:a", 1, late)).await.unwrap();
    let got = h.db.get_code(&t.id, "enable:a").await.unwrap().unwrap();
    assert_eq!(got, code(&t, "enable:a", 1, late));
    // Another tenant sees nothing; a new put replaces the code (and its attempts).
    let globex = tenant(&h.db, "globex").await;
    assert_eq!(h.db.get_code(&globex.id, "enable:a").await.unwrap(), None);
    assert!(
        h.db.fail_code(&t.id, "enable:a", &[1; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    assert_eq!(
        h.db.get_code(&t.id, "enable:a")
            .await
            .unwrap()
            .unwrap()
            .attempts,
        1
    );
    h.db.put_code(&code(&t, "enable:a", 2, late)).await.unwrap();
    let got = h.db.get_code(&t.id, "enable:a").await.unwrap().unwrap();
    assert_eq!((got.digest, got.attempts), (vec![2; 32], 0));
    // The replaced digest is neither consumed nor failed.
    assert!(
        !h.db
            .consume_code(&t.id, "enable:a", &[1; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .fail_code(&t.id, "enable:a", &[1; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    // At the attempt limit the code is neither failed nor consumed any more.
    for _ in 0..MAX_ATTEMPTS {
        assert!(
            h.db.fail_code(&t.id, "enable:a", &[2; 32], MAX_ATTEMPTS, now)
                .await
                .unwrap()
        );
    }
    assert!(
        !h.db
            .fail_code(&t.id, "enable:a", &[2; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .consume_code(&t.id, "enable:a", &[2; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    // Expired: refused; open: consumed once, then gone.
    h.db.put_code(&code(&t, "enable:b", 3, NOW)).await.unwrap();
    assert!(
        !h.db
            .consume_code(&t.id, "enable:b", &[3; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    h.db.put_code(&code(&t, "enable:c", 4, late)).await.unwrap();
    assert!(
        h.db.consume_code(&t.id, "enable:c", &[4; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
    assert_eq!(h.db.get_code(&t.id, "enable:c").await.unwrap(), None);
    assert!(
        !h.db
            .consume_code(&t.id, "enable:c", &[4; 32], MAX_ATTEMPTS, now)
            .await
            .unwrap()
    );
}

async fn logins_count_sends_fail_and_end_once(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);
    let l = login(&t, "login-a");
    h.db.insert_login(&l).await.unwrap();
    assert_eq!(h.db.get_login("login-a").await.unwrap(), Some(l.clone()));
    assert_eq!(h.db.get_login("nobody").await.unwrap(), None);
    for _ in 0..3 {
        assert!(h.db.count_login_send("login-a", 3, now).await.unwrap());
    }
    assert!(!h.db.count_login_send("login-a", 3, now).await.unwrap());
    assert_eq!(h.db.get_login("login-a").await.unwrap().unwrap().sends, 3);
    // Wrong codes: the login stays open until the limit, then it and its code are gone.
    let scope = LoginState::code_scope("login-a");
    h.db.put_code(&code(&t, &scope, 9, NOW + 300_000))
        .await
        .unwrap();
    for _ in 0..MAX_ATTEMPTS - 1 {
        assert!(
            h.db.fail_login(&t.id, "login-a", MAX_ATTEMPTS, now, &[])
                .await
                .unwrap()
        );
    }
    assert!(
        !h.db
            .fail_login(&t.id, "login-a", MAX_ATTEMPTS, now, &[])
            .await
            .unwrap()
    );
    assert_eq!(h.db.get_login("login-a").await.unwrap(), None);
    assert_eq!(h.db.get_code(&t.id, &scope).await.unwrap(), None);
    // Another login ends once, with its code; not from another tenant, not when expired.
    h.db.insert_login(&login(&t, "login-b")).await.unwrap();
    let globex = tenant(&h.db, "globex").await;
    assert!(
        !h.db
            .consume_login(&globex.id, "login-b", MAX_ATTEMPTS, now, &[])
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .consume_login(&t.id, "login-b", MAX_ATTEMPTS, at(NOW + 300_000), &[])
            .await
            .unwrap()
    );
    let scope = LoginState::code_scope("login-b");
    h.db.put_code(&code(&t, &scope, 9, NOW + 300_000))
        .await
        .unwrap();
    assert!(
        h.db.consume_login(&t.id, "login-b", MAX_ATTEMPTS, now, &[])
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .consume_login(&t.id, "login-b", MAX_ATTEMPTS, now, &[])
            .await
            .unwrap()
    );
    assert_eq!(h.db.get_code(&t.id, &scope).await.unwrap(), None);
}

async fn methods_recovery_codes_and_users(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let now = at(NOW + 1_000);
    let user = UserId::parse("user_1").unwrap();
    assert!(!h.db.user_known(&t.id, &user).await.unwrap());
    let method = |details, ms, id: &str| Factor {
        method_id: Some(MethodId::parse(id).unwrap()),
        ..factor(&t, Some("user_1"), details, ms)
    };
    let sms = method(
        FactorDetails::Sms {
            phone: PhoneNumber::parse("+14155552671").unwrap(),
        },
        NOW,
        "AAAA",
    );
    // The first method brings the recovery codes; a second does not replace them.
    assert!(
        h.db.insert_method(&sms, &recovery_set(10), now, &[], &[])
            .await
            .unwrap()
    );
    assert!(h.db.user_known(&t.id, &user).await.unwrap());
    assert_eq!(h.db.recovery_codes(&t.id, &user).await.unwrap().len(), 10);
    let email = method(
        FactorDetails::Email {
            address: "ada@example.com".into(),
        },
        NOW + 1,
        "BBBB",
    );
    assert!(
        !h.db
            .insert_method(&email, &recovery_set(3), now, &[], &[])
            .await
            .unwrap()
    );
    assert_eq!(h.db.recovery_codes(&t.id, &user).await.unwrap().len(), 10);
    // A taken method id is a conflict.
    let dup = method(FactorDetails::GenericOtp, NOW + 2, "AAAA");
    assert!(matches!(
        h.db.insert_method(&dup, &[], now, &[], &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // Finding users by address, number or id; renaming.
    for (e, p, u) in [
        (Some("ada@example.com"), None, None),
        (None, Some("+14155552671"), None),
        (None, None, Some(&user)),
    ] {
        assert_eq!(
            h.db.find_users(&t.id, e, p, u, 2).await.unwrap(),
            std::slice::from_ref(&user)
        );
    }
    assert!(
        h.db.find_users(&t.id, Some("x@example.com"), None, None, 2)
            .await
            .unwrap()
            .is_empty()
    );
    let bbbb = MethodId::parse("BBBB").unwrap();
    assert!(
        h.db.rename_method(&t.id, &user, &bbbb, Some("Work"), now)
            .await
            .unwrap()
    );
    assert_eq!(
        h.db.get_factor(&t.id, &email.id)
            .await
            .unwrap()
            .unwrap()
            .name
            .as_deref(),
        Some("Work")
    );
    let nope = MethodId::parse("ZZZZ").unwrap();
    assert!(
        !h.db
            .rename_method(&t.id, &user, &nope, None, now)
            .await
            .unwrap()
    );
    // Recovery codes: used once; replaced as a set.
    assert!(
        h.db.consume_recovery_code(&t.id, &user, &[0; 32], &[])
            .await
            .unwrap()
    );
    assert!(
        !h.db
            .consume_recovery_code(&t.id, &user, &[0; 32], &[])
            .await
            .unwrap()
    );
    assert_eq!(h.db.recovery_codes(&t.id, &user).await.unwrap().len(), 9);
    h.db.replace_recovery_codes(&t.id, &user, &recovery_set(4), now, &[])
        .await
        .unwrap();
    assert_eq!(
        h.db.recovery_codes(&t.id, &user).await.unwrap(),
        recovery_set(4)
    );
    // Deleting one method keeps the codes; deleting the last takes them too.
    assert_eq!(
        h.db.delete_methods(&t.id, &user, Some(&sms.id), now, &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(h.db.recovery_codes(&t.id, &user).await.unwrap().len(), 4);
    assert_eq!(
        h.db.delete_methods(&t.id, &user, None, now, &[])
            .await
            .unwrap(),
        1
    );
    assert!(h.db.recovery_codes(&t.id, &user).await.unwrap().is_empty());
    assert_eq!(h.db.get_factor(&t.id, &email.id).await.unwrap(), None);
}

async fn trusts_and_purge(h: &Harness) {
    let t = tenant(&h.db, "acme").await;
    let trust = Trust {
        id_digest: "trust-a".into(),
        tenant_id: t.id.clone(),
        user_id: UserId::parse("user_1").unwrap(),
        application_id: None,
        created_at: at(NOW),
        expires_at: at(NOW + 10_000),
    };
    h.db.insert_trust(&trust).await.unwrap();
    assert_eq!(h.db.get_trust("trust-a").await.unwrap(), Some(trust));
    h.db.insert_login(&login(&t, "login-a")).await.unwrap();
    h.db.put_code(&code(&t, "enable:a", 1, NOW + 5_000))
        .await
        .unwrap();
    // Nothing has expired yet.
    h.db.purge_expired(at(NOW + 1_000), 10).await.unwrap();
    assert!(h.db.get_trust("trust-a").await.unwrap().is_some());
    assert!(h.db.get_login("login-a").await.unwrap().is_some());
    assert!(h.db.get_code(&t.id, "enable:a").await.unwrap().is_some());
    h.db.purge_expired(at(NOW + 400_000), 10).await.unwrap();
    assert_eq!(h.db.get_trust("trust-a").await.unwrap(), None);
    assert_eq!(h.db.get_login("login-a").await.unwrap(), None);
    assert_eq!(h.db.get_code(&t.id, "enable:a").await.unwrap(), None);
}

async fn race_one_sent_code_is_used_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    h.db.put_code(&code(&t, "enable:a", 1, NOW + 600_000))
        .await
        .unwrap();
    let results = race(&nodes, RACERS, |db, _| {
        let tid = t.id.clone();
        async move {
            db.consume_code(&tid, "enable:a", &[1; 32], MAX_ATTEMPTS, at(NOW + 1_000))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
}

async fn race_one_login_ends_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    h.db.insert_login(&login(&t, "login-a")).await.unwrap();
    let results = race(&nodes, RACERS, |db, i| {
        let tid = t.id.clone();
        async move {
            let now = at(NOW + 1_000);
            if i % 2 == 0 {
                (
                    "end",
                    db.consume_login(&tid, "login-a", MAX_ATTEMPTS, now, &[])
                        .await
                        .unwrap(),
                )
            } else {
                (
                    "fail",
                    db.fail_login(&tid, "login-a", MAX_ATTEMPTS, now, &[])
                        .await
                        .unwrap(),
                )
            }
        }
    })
    .await;
    let ended = results.iter().filter(|r| **r == ("end", true)).count();
    assert!(ended <= 1, "{results:?}");
    let failed_open = results.iter().filter(|r| **r == ("fail", true)).count();
    assert!(failed_open < MAX_ATTEMPTS as usize, "{results:?}");
    assert_eq!(
        h.db.get_login("login-a").await.unwrap(),
        None,
        "ended or spent"
    );
}

async fn race_one_recovery_code_is_used_once(h: &Harness) {
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await;
    let user = UserId::parse("user_1").unwrap();
    h.db.replace_recovery_codes(&t.id, &user, &recovery_set(2), at(NOW), &[])
        .await
        .unwrap();
    let results = race(&nodes, RACERS, |db, _| {
        let (tid, user) = (t.id.clone(), user.clone());
        async move {
            db.consume_recovery_code(&tid, &user, &[1; 32], &[])
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
    assert_eq!(h.db.recovery_codes(&t.id, &user).await.unwrap().len(), 1);
}

// ---- PostgreSQL only --------------------------------------------------------------------

/// A fresh, unmigrated database on the test server.
async fn fresh_pg() -> TestDatabase {
    let admin = admin_url();
    TestDatabase::create(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_migrations_on_a_fresh_database_do_not_race() {
    let pg = fresh_pg().await;
    // Nodes starting together: each opens its own store and migrates at once.
    let opts = StoreOptions {
        max_connections: 2,
        ..StoreOptions::default()
    };
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(Db::connect(pg.url(), &opts).await.unwrap());
    }
    let barrier = Arc::new(Barrier::new(stores.len()));
    let runs: Vec<_> = stores
        .iter()
        .cloned()
        .map(|db| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                db.migrate().await
            })
        })
        .collect();
    for r in runs {
        r.await.unwrap().unwrap();
    }
    let h = Harness {
        url: pg.url().to_owned(),
        db: stores[0].clone(),
        opts,
        _sqlite_dir: None,
        _pg: None,
    };
    // The schema is whole and usable from every store.
    let t = tenant(&h.db, "acme").await;
    let (_, c) = pending_challenge(&stores[7], &t).await;
    assert!(
        stores[3]
            .get_challenge(&t.id, &c.id)
            .await
            .unwrap()
            .is_some()
    );
    drop(h);
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_run_without_locking_when_switched_off() {
    let pg = fresh_pg().await;
    let opts = StoreOptions {
        migration_locking: false,
        ..StoreOptions::default()
    };
    let db = Db::connect(pg.url(), &opts).await.unwrap();
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    let t = tenant(&db, "acme").await;
    assert!(
        db.get_factor(&t.id, &FactorId::generate(at(NOW)).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statement_timeout_answers_unavailable() {
    let pg = fresh_pg().await;
    let opts = StoreOptions {
        statement_timeout: Some(Duration::from_millis(300)),
        ..StoreOptions::default()
    };
    let db = Db::connect(pg.url(), &opts).await.unwrap();
    db.migrate().await.unwrap();
    let t = tenant(&db, "acme").await;
    let (_, c) = pending_challenge(&db, &t).await;

    // Another session holds the challenge's row lock, so counting an attempt must wait;
    // the statement timeout ends the wait and the store says "unavailable" (a 503).
    use sqlx::Connection;
    let mut blocker = sqlx::PgConnection::connect(pg.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT id FROM challenges WHERE id = $1 FOR UPDATE")
        .bind(c.id.as_str())
        .execute(&mut blocker)
        .await
        .unwrap();
    let started = Instant::now();
    let r = db
        .record_failure(&t.id, &c.id, MAX_ATTEMPTS, at(NOW + 1), &[])
        .await;
    let waited = started.elapsed();
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    // Released: it counts now.
    assert_eq!(
        db.record_failure(&t.id, &c.id, MAX_ATTEMPTS, at(NOW + 1), &[])
            .await
            .unwrap(),
        AttemptOutcome::Counted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmode_from_the_url_is_honoured() {
    let pg = fresh_pg().await;
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(pg.url()).await.unwrap();
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let with = |mode: &str| format!("{}?sslmode={mode}", pg.url());
    let opts = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    // `disable` always connects in the clear.
    Db::connect(&with("disable"), &opts)
        .await
        .unwrap()
        .ping()
        .await
        .unwrap();
    if ssl == "on" {
        // TLS is offered: `require` negotiates it (rustls, aws-lc)…
        let db = Db::connect(&with("require"), &opts).await.unwrap();
        db.ping().await.unwrap();
        let (tls,): (bool,) = sqlx::query_as(
            "SELECT bool_or(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'mfad' AND datname = current_database()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(tls, "the mfad connection uses TLS");
        // …and `verify-full` refuses a certificate no trusted root vouches for.
        assert!(Db::connect(&with("verify-full"), &opts).await.is_err());
    } else {
        // No TLS on the server: `require` must refuse rather than fall back to plain text.
        assert!(Db::connect(&with("require"), &opts).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_unavailable_quickly() {
    // Nothing listens on port 1: the store must give up within its connect timeout and
    // call it "unavailable" (a 503), not hang or call it a bug.
    let opts = StoreOptions {
        acquire_timeout: Duration::from_millis(700),
        ..StoreOptions::default()
    };
    let started = Instant::now();
    let r = Db::connect("postgres://postgres@127.0.0.1:1/none", &opts).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
