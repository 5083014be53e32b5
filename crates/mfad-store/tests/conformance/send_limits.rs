//! Conformance of the send-limit methods (`admit_send`, `release_send`, `sms_countries`,
//! `set_sms_countries`): what an admission reads back, that a refusal records nothing,
//! and that admissions split across two nodes never exceed a limit.

use mfad_core::send_limits::{
    Channel, CountryRules, SendHistory, SendRecord, SendRefusal, SendTicket, Window,
};
use mfad_core::store::Store;
use mfad_core::{TenantId, UserId};
use mfad_store::Db;

use super::{Harness, NOW, RACERS, at, race, tenant};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn sms(t: &TenantId, destination: &str, prefix: &str, user: Option<&str>, ms: i64) -> SendRecord {
    SendRecord {
        tenant_id: t.clone(),
        channel: Channel::Sms,
        destination: destination.into(),
        prefix: Some(prefix.into()),
        end_user: user.map(|u| UserId::parse(u).unwrap()),
        at: at(ms),
    }
}

/// Admits `r` unconditionally, returning its ticket and the history it saw.
async fn admit(db: &Db, r: &SendRecord) -> (SendTicket, SendHistory) {
    let seen = std::sync::Mutex::new(None);
    let ticket = db
        .admit_send(r, &|h: &SendHistory| {
            *seen.lock().unwrap() = Some(h.clone());
            Ok(())
        })
        .await
        .unwrap()
        .unwrap();
    (ticket, seen.into_inner().unwrap().unwrap())
}

pub(super) async fn send_admission_reads_the_history_it_must(h: &Harness) {
    let acme = tenant(&h.db, "acme").await.id;
    let globex = tenant(&h.db, "globex").await.id;
    let (_, first) = admit(
        &h.db,
        &sms(&acme, "d1", "+1415", Some("user_1"), NOW - DAY_MS - 1),
    )
    .await;
    assert_eq!(first, SendHistory::default());
    admit(
        &h.db,
        &sms(&acme, "d1", "+1415", Some("user_1"), NOW - 2 * HOUR_MS),
    )
    .await;
    admit(
        &h.db,
        &sms(&acme, "d1", "+1415", Some("user_1"), NOW - 60_000),
    )
    .await;
    admit(
        &h.db,
        &sms(&acme, "d2", "+1415", Some("user_1"), NOW - 30_000),
    )
    .await;
    admit(
        &h.db,
        &sms(&acme, "d3", "+4420", Some("user_2"), NOW - 20_000),
    )
    .await;
    // Another tenant's sends and emails do not count towards acme's SMS.
    admit(
        &h.db,
        &sms(&globex, "d1", "+1415", Some("user_1"), NOW - 10_000),
    )
    .await;
    let mut email = sms(&acme, "d1", "", Some("user_1"), NOW - 5_000);
    email.channel = Channel::Email;
    email.prefix = None;
    admit(&h.db, &email).await;

    let (_, seen) = admit(&h.db, &sms(&acme, "d1", "+1415", Some("user_1"), NOW)).await;
    // The send of more than a day ago is gone; the email to the same digest is counted
    // per destination, as the per-address limits are the same.
    assert_eq!(
        seen.destination,
        vec![at(NOW - 5_000), at(NOW - 60_000), at(NOW - 2 * HOUR_MS)]
    );
    assert_eq!(
        seen.tenant_hour,
        Window {
            count: 3,
            oldest: Some(at(NOW - 60_000))
        }
    );
    assert_eq!(
        seen.prefix_hour,
        Window {
            count: 2,
            oldest: Some(at(NOW - 60_000))
        }
    );
    let mut users = seen.user_destinations.clone();
    users.sort();
    assert_eq!(
        users,
        vec![
            ("d1".into(), at(NOW - 60_000)),
            ("d2".into(), at(NOW - 30_000))
        ]
    );
    assert_eq!(seen.countries, None);
}

pub(super) async fn send_refusal_records_nothing_and_release_forgets(h: &Harness) {
    let t = tenant(&h.db, "acme").await.id;
    let refused =
        h.db.admit_send(&sms(&t, "d1", "+1415", None, NOW), &|_: &SendHistory| {
            Err(SendRefusal::Country)
        })
        .await
        .unwrap();
    assert_eq!(refused, Err(SendRefusal::Country));
    let (ticket, seen) = admit(&h.db, &sms(&t, "d1", "+1415", None, NOW + 1)).await;
    assert!(seen.destination.is_empty(), "{seen:?}");
    h.db.release_send(&t, ticket).await.unwrap();
    // Releasing is tenant-scoped and idempotent.
    let other = tenant(&h.db, "globex").await.id;
    h.db.release_send(&other, ticket).await.unwrap();
    h.db.release_send(&t, ticket).await.unwrap();
    let (_, seen) = admit(&h.db, &sms(&t, "d1", "+1415", None, NOW + 2)).await;
    assert!(seen.destination.is_empty(), "{seen:?}");
    assert_eq!(seen.tenant_hour.count, 0);
}

pub(super) async fn sms_countries_are_per_tenant_and_seen_by_admissions(h: &Harness) {
    let t = tenant(&h.db, "acme").await.id;
    let other = tenant(&h.db, "globex").await.id;
    assert_eq!(h.db.sms_countries(&t).await.unwrap(), None);
    // An admission before any rules creates the tenant's row without rules.
    admit(&h.db, &sms(&t, "d1", "+1415", None, NOW)).await;
    assert_eq!(h.db.sms_countries(&t).await.unwrap(), None);
    let rules = CountryRules::parse("US,CA", "GB").unwrap();
    h.db.set_sms_countries(&t, Some(&rules), at(NOW))
        .await
        .unwrap();
    // A second node sees them at once.
    let node_b = h.second_node().await;
    assert_eq!(node_b.sms_countries(&t).await.unwrap(), Some(rules.clone()));
    assert_eq!(node_b.sms_countries(&other).await.unwrap(), None);
    let (_, seen) = admit(&node_b, &sms(&t, "d2", "+1415", None, NOW + 1)).await;
    assert_eq!(seen.countries, Some(rules));
    let deny_only = CountryRules::parse("", "GB").unwrap();
    h.db.set_sms_countries(&t, Some(&deny_only), at(NOW + 2))
        .await
        .unwrap();
    assert_eq!(h.db.sms_countries(&t).await.unwrap(), Some(deny_only));
    h.db.set_sms_countries(&t, None, at(NOW + 3)).await.unwrap();
    assert_eq!(h.db.sms_countries(&t).await.unwrap(), None);
    let (_, seen) = admit(&h.db, &sms(&t, "d3", "+1415", None, NOW + 4)).await;
    assert_eq!(seen.countries, None);
}

pub(super) async fn race_send_admissions_never_exceed_a_limit(h: &Harness) {
    const LIMIT: usize = 5;
    let nodes = h.nodes().await;
    let t = tenant(&h.db, "acme").await.id;
    // Every racer sends to one number, to a fresh number of one prefix, or as one user to
    // a number of its own: each limit must hold under the burst.
    for (kind, limit_of) in [
        (
            "destination",
            (|h: &SendHistory| h.destination.len()) as fn(&SendHistory) -> usize,
        ),
        ("prefix", |h: &SendHistory| h.prefix_hour.count as usize),
        ("user", |h: &SendHistory| h.user_destinations.len()),
    ] {
        let results = race(&nodes, RACERS, |db, i| {
            let r = match kind {
                "destination" => sms(&t, "same", "+1415", None, NOW),
                "prefix" => sms(&t, &format!("p{i}"), "+1999", None, NOW),
                _ => sms(&t, &format!("u{i}"), &format!("+{i}"), Some("user_9"), NOW),
            };
            async move {
                db.admit_send(&r, &|h: &SendHistory| {
                    if limit_of(h) < LIMIT {
                        Ok(())
                    } else {
                        Err(SendRefusal::Country)
                    }
                })
                .await
                .unwrap()
                .is_ok()
            }
        })
        .await;
        let admitted = results.iter().filter(|ok| **ok).count();
        assert_eq!(admitted, LIMIT, "{kind}: {results:?}");
    }
}
