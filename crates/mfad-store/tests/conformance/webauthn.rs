//! Conformance of the passkey methods: relying-party configs per tenant, credentials
//! (unique credential id per tenant, tenant isolation, deletes, the counter's
//! compare-and-set) and ceremonies (taken once, across two nodes).

use mfad_core::store::Store;
use mfad_core::webauthn::{
    AttestationPolicy, Ceremony, CeremonyKind, PasskeyCredential, PasskeyId, WebAuthnConfig,
    Workflow,
};
use mfad_core::{TenantId, UserId};
use mfad_store::Db;

use super::{Harness, NOW, RACERS, at, race, tenant};

fn credential(t: &TenantId, user: &str, cred_id: &str, ms: i64) -> PasskeyCredential {
    PasskeyCredential {
        id: PasskeyId::generate().unwrap(),
        tenant_id: t.clone(),
        user_id: UserId::parse(user).unwrap(),
        credential_id: cred_id.into(),
        user_handle: "aGFuZGxl".into(),
        name: Some("richard@piedpiper.com".into()),
        display_name: Some("Richard".into()),
        user_agent: Some("test agent".into()),
        algorithm: -7,
        sign_count: 0,
        rp_id: "example.com".into(),
        attestation_type: "none".into(),
        user_verified: true,
        backup_eligible: false,
        transports: vec!["internal".into(), "usb".into()],
        workflow: Workflow::Bootstrap,
        credential: r#"{"public":"key"}"#.into(),
        created_at: at(ms),
        last_used_at: None,
    }
}

fn ceremony(t: &TenantId, challenge: &str, expires_ms: i64) -> Ceremony {
    Ceremony {
        challenge: challenge.into(),
        tenant_id: t.clone(),
        user_id: UserId::parse("user_1").unwrap(),
        kind: CeremonyKind::Authentication,
        workflow: Workflow::Reauthentication,
        state: r#"{"state":1}"#.into(),
        name: None,
        display_name: Some("Richard".into()),
        user_agent: None,
        application_id: Some("app".into()),
        login_state: Some(r#"{"k":"v"}"#.into()),
        created_at: at(NOW),
        expires_at: at(expires_ms),
    }
}

pub(super) async fn webauthn_configs_are_per_tenant_and_replaced(h: &Harness) {
    let acme = tenant(&h.db, "acme").await.id;
    let globex = tenant(&h.db, "globex").await.id;
    assert_eq!(h.db.webauthn_config(&acme).await.unwrap(), None);
    let mut c = WebAuthnConfig {
        tenant_id: acme.clone(),
        rp_id: "example.com".into(),
        rp_name: "Example".into(),
        origins: vec![
            "https://example.com".into(),
            "https://app.example.com".into(),
        ],
        attestation: AttestationPolicy::None,
        trust_store_pem: None,
        updated_at: at(NOW),
    };
    h.db.set_webauthn_config(&c).await.unwrap();
    assert_eq!(h.db.webauthn_config(&acme).await.unwrap(), Some(c.clone()));
    assert_eq!(h.db.webauthn_config(&globex).await.unwrap(), None);
    c.origins = vec!["https://login.example.com".into()];
    c.attestation = AttestationPolicy::Direct;
    c.trust_store_pem = Some("-----BEGIN CERTIFICATE-----\n…".into());
    c.updated_at = at(NOW + 1);
    h.db.set_webauthn_config(&c).await.unwrap();
    // Another node sees the change at once.
    let other = h.second_node().await;
    assert_eq!(other.webauthn_config(&acme).await.unwrap(), Some(c));
}

pub(super) async fn passkeys_round_trip_unique_and_tenant_scoped(h: &Harness) {
    let acme = tenant(&h.db, "acme").await.id;
    let globex = tenant(&h.db, "globex").await.id;
    let a = credential(&acme, "user_1", "Y3JlZC1h", NOW);
    let b = credential(&acme, "user_1", "Y3JlZC1i", NOW + 1);
    let c = credential(&acme, "user_2", "Y3JlZC1j", NOW + 2);
    for x in [&a, &b, &c] {
        h.db.insert_passkey(x).await.unwrap();
    }
    // The same authenticator credential twice in one tenant is a conflict; in another
    // tenant it is another credential.
    let dup = credential(&acme, "user_2", "Y3JlZC1h", NOW + 3);
    assert!(matches!(
        h.db.insert_passkey(&dup).await,
        Err(mfad_core::StoreError::Conflict(_))
    ));
    let elsewhere = credential(&globex, "user_1", "Y3JlZC1h", NOW + 3);
    h.db.insert_passkey(&elsewhere).await.unwrap();

    assert_eq!(
        h.db.get_passkey(&acme, &a.id).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(h.db.get_passkey(&globex, &a.id).await.unwrap(), None);
    assert_eq!(
        h.db.find_passkey(&acme, "Y3JlZC1h").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        h.db.find_passkey(&globex, "Y3JlZC1h").await.unwrap(),
        Some(elsewhere.clone())
    );
    let user1 = UserId::parse("user_1").unwrap();
    assert_eq!(
        h.db.list_passkeys(&acme, &user1).await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    // Deleting by id is tenant-scoped; deleting by user takes all of the user's.
    assert_eq!(
        h.db.delete_passkeys(&globex, None, Some(&a.id))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.db.delete_passkeys(&acme, None, Some(&a.id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(h.db.get_passkey(&acme, &a.id).await.unwrap(), None);
    assert_eq!(
        h.db.delete_passkeys(&acme, Some(&user1), None)
            .await
            .unwrap(),
        1
    );
    assert!(h.db.list_passkeys(&acme, &user1).await.unwrap().is_empty());
    assert_eq!(
        h.db.list_passkeys(&globex, &user1).await.unwrap(),
        vec![elsewhere]
    );
    assert_eq!(h.db.delete_passkeys(&acme, None, None).await.unwrap(), 0);

    // Import is all or none: one conflicting credential stores nothing.
    let fresh = credential(&acme, "user_3", "Y3JlZC1k", NOW + 4);
    let clash = credential(&acme, "user_3", "Y3JlZC1j", NOW + 5);
    assert!(h.db.import_passkeys(&[fresh.clone(), clash]).await.is_err());
    assert_eq!(h.db.get_passkey(&acme, &fresh.id).await.unwrap(), None);
    h.db.import_passkeys(std::slice::from_ref(&fresh))
        .await
        .unwrap();
    assert_eq!(
        h.db.get_passkey(&acme, &fresh.id).await.unwrap(),
        Some(fresh)
    );
}

pub(super) async fn passkey_use_is_a_compare_and_set_on_the_counter(h: &Harness) {
    let acme = tenant(&h.db, "acme").await.id;
    let mut p = credential(&acme, "user_1", "Y3JlZC1h", NOW);
    p.sign_count = 4;
    h.db.insert_passkey(&p).await.unwrap();
    let used = PasskeyCredential {
        sign_count: 5,
        credential: r#"{"counter":5}"#.into(),
        last_used_at: Some(at(NOW + 10)),
        ..p.clone()
    };
    // From a stale counter nothing changes.
    assert!(!h.db.record_passkey_use(&used, 3).await.unwrap());
    assert!(h.db.record_passkey_use(&used, 4).await.unwrap());
    assert_eq!(
        h.db.get_passkey(&acme, &p.id).await.unwrap(),
        Some(used.clone())
    );
    // The same use again (a replay of counter 4 → 5) is refused.
    assert!(!h.db.record_passkey_use(&used, 4).await.unwrap());
    // Another tenant cannot touch it.
    let foreign = PasskeyCredential {
        tenant_id: tenant(&h.db, "globex").await.id,
        sign_count: 9,
        ..used.clone()
    };
    assert!(!h.db.record_passkey_use(&foreign, 5).await.unwrap());
}

pub(super) async fn race_one_counter_value_is_used_once(h: &Harness) {
    let nodes = h.nodes().await;
    let acme = tenant(&h.db, "acme").await.id;
    let p = credential(&acme, "user_1", "Y3JlZC1h", NOW);
    h.db.insert_passkey(&p).await.unwrap();
    let wins = race(&nodes, RACERS, |db: Db, i| {
        let used = PasskeyCredential {
            sign_count: 1,
            last_used_at: Some(at(NOW + i64::try_from(i).unwrap())),
            ..p.clone()
        };
        async move { db.record_passkey_use(&used, 0).await.unwrap() }
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
}

pub(super) async fn ceremonies_are_taken_once_and_purged(h: &Harness) {
    let acme = tenant(&h.db, "acme").await.id;
    let live = ceremony(&acme, "Y2hhbGxlbmdlLTE", NOW + 60_000);
    let old = ceremony(&acme, "Y2hhbGxlbmdlLTI", NOW - 1);
    h.db.insert_webauthn_ceremony(&live).await.unwrap();
    h.db.insert_webauthn_ceremony(&old).await.unwrap();
    assert!(h.db.insert_webauthn_ceremony(&live).await.is_err());
    assert_eq!(
        h.db.take_webauthn_ceremony("Y2hhbGxlbmdlLTE")
            .await
            .unwrap(),
        Some(live.clone())
    );
    assert_eq!(
        h.db.take_webauthn_ceremony("Y2hhbGxlbmdlLTE")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        h.db.purge_webauthn_ceremonies(at(NOW), 100).await.unwrap(),
        1
    );
    assert_eq!(
        h.db.take_webauthn_ceremony("Y2hhbGxlbmdlLTI")
            .await
            .unwrap(),
        None
    );
}

pub(super) async fn race_one_ceremony_is_taken_once(h: &Harness) {
    let nodes = h.nodes().await;
    let acme = tenant(&h.db, "acme").await.id;
    h.db.insert_webauthn_ceremony(&ceremony(&acme, "cmFjZQ", NOW + 60_000))
        .await
        .unwrap();
    let taken = race(&nodes, RACERS, |db: Db, _| async move {
        db.take_webauthn_ceremony("cmFjZQ").await.unwrap().is_some()
    })
    .await;
    assert_eq!(taken.iter().filter(|t| **t).count(), 1);
}
