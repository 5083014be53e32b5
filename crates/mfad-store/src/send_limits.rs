//! Storage of the send limits (`mfad_core::send_limits`): one generic implementation over
//! the backend's pool, in the portable SQL subset, so SQLite and PostgreSQL run the same
//! statements.
//!
//! Atomicity: an admission is one transaction that first upserts the tenant's row in
//! `send_limit_tenants`. That write takes the row's lock (PostgreSQL) or the database's
//! write lock (SQLite) until commit, so a second admission for the tenant, on any node,
//! waits and then reads the first one's send (READ COMMITTED re-reads per statement).
//! The lock is held for four statements (lock, two reads, insert; a third read for JWT
//! callers), so a burst on one tenant queues briefly.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::ids::TenantId;
use mfad_core::send_limits::{
    CountryRules, SendHistory, SendRecord, SendRefusal, SendTicket, Window,
};

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

/// How far back admissions look (the longest window).
const HISTORY: time::Duration = time::Duration::days(1);
/// Most sends to one destination read back: far above any sane daily limit.
const MAX_DESTINATION_ROWS: i64 = 1000;

const LOCK_TENANT: &str = "INSERT INTO send_limit_tenants \
     (tenant_id, allowed_countries, denied_countries, locked_at, updated_at) \
     VALUES ($1, NULL, NULL, $2, $2) \
     ON CONFLICT (tenant_id) DO UPDATE SET locked_at = excluded.locked_at \
     RETURNING allowed_countries, denied_countries";

const PRUNE: &str = "DELETE FROM sends WHERE tenant_id = $1 AND sent_at <= $2";

const DESTINATION: &str = "SELECT sent_at FROM sends \
     WHERE tenant_id = $1 AND destination = $2 AND sent_at > $3 \
     ORDER BY sent_at DESC LIMIT $4";

/// The tenant's sends on the channel, and to the prefix, in the last hour: one statement,
/// as every statement here runs while the tenant's lock is held.
const HOUR_WINDOWS: &str = "SELECT \
     COUNT(*) FILTER (WHERE channel = $2), MIN(sent_at) FILTER (WHERE channel = $2), \
     COUNT(*) FILTER (WHERE prefix = $3), MIN(sent_at) FILTER (WHERE prefix = $3) \
     FROM sends WHERE tenant_id = $1 AND sent_at > $4";

const USER_DESTINATIONS: &str = "SELECT destination, MAX(sent_at) FROM sends \
     WHERE tenant_id = $1 AND end_user = $2 AND channel = $3 AND sent_at > $4 \
     GROUP BY destination";

const INSERT: &str = "INSERT INTO sends \
     (tenant_id, channel, destination, prefix, end_user, sent_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

fn join(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join(","))
}

fn split(list: Option<String>) -> Vec<String> {
    list.map(|l| {
        l.split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn rules(allowed: Option<String>, denied: Option<String>) -> Option<CountryRules> {
    let r = CountryRules {
        allowed: split(allowed),
        denied: split(denied),
    };
    (!r.is_empty()).then_some(r)
}

fn window((count, oldest): (i64, Option<i64>)) -> Window {
    Window {
        count: u32::try_from(count).unwrap_or(u32::MAX),
        oldest: oldest.map(from_unix_ms),
    }
}

/// See [`mfad_core::store::Store::admit_send`].
pub(crate) async fn admit<'a, B: Backend>(
    s: &'a SqlStore<B>,
    record: &'a SendRecord,
    decide: &'a (dyn for<'h> Fn(&'h SendHistory) -> Result<(), SendRefusal> + Send + Sync + 'a),
) -> Result<Result<SendTicket, SendRefusal>, StoreError> {
    let tenant = record.tenant_id.as_str();
    let channel = record.channel.as_str();
    let now = unix_ms(record.at);
    let hour_ago = unix_ms(record.at - time::Duration::hours(1));
    let day_ago = unix_ms(record.at - HISTORY);
    let mut tx = s.begin().await?;
    let (allowed, denied): (Option<String>, Option<String>) = sql(LOCK_TENANT)
        .bind(tenant)
        .bind(now)
        .fetch_one(&mut tx)
        .await?;
    let destination: Vec<(i64,)> = sql(DESTINATION)
        .bind(tenant)
        .bind(record.destination.as_str())
        .bind(day_ago)
        .bind(MAX_DESTINATION_ROWS)
        .fetch_all(&mut tx)
        .await?;
    let (tenant_n, tenant_oldest, prefix_n, prefix_oldest): (i64, Option<i64>, i64, Option<i64>) =
        sql(HOUR_WINDOWS)
            .bind(tenant)
            .bind(channel)
            .bind(record.prefix.as_deref())
            .bind(hour_ago)
            .fetch_one(&mut tx)
            .await?;
    let user_destinations: Vec<(String, i64)> = match &record.end_user {
        Some(user) => {
            sql(USER_DESTINATIONS)
                .bind(tenant)
                .bind(user.as_str())
                .bind(channel)
                .bind(day_ago)
                .fetch_all(&mut tx)
                .await?
        }
        None => Vec::new(),
    };
    let history = SendHistory {
        countries: rules(allowed, denied),
        destination: destination
            .into_iter()
            .map(|(t,)| from_unix_ms(t))
            .collect(),
        tenant_hour: window((tenant_n, tenant_oldest)),
        prefix_hour: window((prefix_n, prefix_oldest)),
        user_destinations: user_destinations
            .into_iter()
            .map(|(d, t)| (d, from_unix_ms(t)))
            .collect(),
    };
    if let Err(refusal) = decide(&history) {
        // The lock row's touch is all there is to undo.
        tx.rollback().await?;
        return Ok(Err(refusal));
    }
    let (id,): (i64,) = sql(INSERT)
        .bind(tenant)
        .bind(channel)
        .bind(record.destination.as_str())
        .bind(record.prefix.as_deref())
        .bind(record.end_user.as_ref().map(|u| u.as_str()))
        .bind(now)
        .fetch_one(&mut tx)
        .await?;
    tx.commit().await?;
    // Outside the lock: older sends are never read (every query looks back at most a day),
    // so forgetting them can wait and may race.
    if let Err(e) = sql(PRUNE)
        .bind(tenant)
        .bind(day_ago)
        .execute(s.write())
        .await
    {
        tracing::debug!(error = %e, "pruning old sends failed; the next admission retries");
    }
    Ok(Ok(SendTicket(id)))
}

/// See [`mfad_core::store::Store::release_send`].
pub(crate) async fn release<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    ticket: SendTicket,
) -> Result<(), StoreError> {
    sql("DELETE FROM sends WHERE id = $1 AND tenant_id = $2")
        .bind(ticket.0)
        .bind(tenant.as_str())
        .execute(s.write())
        .await
        .map(|_| ())
}

/// See [`mfad_core::store::Store::sms_countries`].
pub(crate) async fn countries<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
) -> Result<Option<CountryRules>, StoreError> {
    let row: Option<(Option<String>, Option<String>)> = sql(
        "SELECT allowed_countries, denied_countries FROM send_limit_tenants WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(s.read())
    .await?;
    Ok(row.and_then(|(a, d)| rules(a, d)))
}

/// See [`mfad_core::store::Store::set_sms_countries`].
pub(crate) async fn set_countries<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    countries: Option<&CountryRules>,
    now: time::OffsetDateTime,
) -> Result<(), StoreError> {
    let (allowed, denied) = match countries {
        Some(r) => (join(&r.allowed), join(&r.denied)),
        None => (None, None),
    };
    sql("INSERT INTO send_limit_tenants \
         (tenant_id, allowed_countries, denied_countries, locked_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET allowed_countries = excluded.allowed_countries, \
         denied_countries = excluded.denied_countries, updated_at = excluded.updated_at")
    .bind(tenant.as_str())
    .bind(allowed.as_deref())
    .bind(denied.as_deref())
    .bind(unix_ms(now))
    .execute(s.write())
    .await
    .map(|_| ())
}
