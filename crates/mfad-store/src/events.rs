//! Events: written inside the transaction of the change they record, listed by keyset
//! scans (the Events API) and purged in batches.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::{EventRecord, EventScan};
use mfad_core::ids::{EventId, TenantId};
use time::OffsetDateTime;

use crate::lean_pool::LeanTransaction;
use crate::sql::{Sql, SqlDb, sql};
use crate::store::{Backend, SqlStore};

/// The columns of an event row and their placeholders, shared by [`insert_sql`] and
/// [`insert_and_fan_out_sql`] (binds in this order: [`bind_event`]).
const INSERT_EVENT: &str = "INSERT INTO events (id, tenant_id, name, created_at, data) \
                            VALUES ($1, $2, $3, $4, $5)";

fn bind_event<'a>(q: Sql<'a>, e: &'a EventRecord) -> Sql<'a> {
    q.bind(e.id.as_str())
        .bind(e.tenant_id.as_str())
        .bind(e.name.as_str())
        .bind(unix_ms(e.created_at))
        .bind(e.data.as_str())
}

/// The statement that stores one event.
pub(crate) fn insert_sql(e: &EventRecord) -> Sql<'_> {
    bind_event(sql(INSERT_EVENT), e)
}

/// The statement that puts one stored event into the webhook outbox, once per endpoint
/// subscribed to its name in its tenant (docs/WEBHOOKS.md). Run right after
/// [`insert_sql`], in the same transaction, wherever an event is written. With nothing
/// subscribed it is one probe of the subscriptions' primary key.
pub(crate) fn fanout_sql(e: &EventRecord) -> Sql<'_> {
    sql(
        "INSERT INTO webhook_outbox (endpoint_id, event_id, state, attempts, \
         next_attempt_at, created_at) \
         SELECT endpoint_id, $1, 'pending', 0, $2, $2 FROM webhook_subscriptions \
         WHERE tenant_id = $3 AND event_name = $4",
    )
    .bind(e.id.as_str())
    .bind(unix_ms(e.created_at))
    .bind(e.tenant_id.as_str())
    .bind(e.name.as_str())
}

/// [`insert_sql`] and [`fanout_sql`] as one statement, for backends with data-modifying
/// CTEs ([`SqlDb::WRITES_IN_WITH`]): an event costs one round trip to PostgreSQL.
fn insert_and_fan_out_sql(e: &EventRecord) -> Sql<'_> {
    const TEXT: &str = const_format::concatcp!(
        "WITH e AS (",
        INSERT_EVENT,
        " RETURNING id, tenant_id, name, created_at) \
         INSERT INTO webhook_outbox (endpoint_id, event_id, state, attempts, \
         next_attempt_at, created_at) \
         SELECT s.endpoint_id, e.id, 'pending', 0, e.created_at, e.created_at \
         FROM e JOIN webhook_subscriptions s \
         ON s.tenant_id = e.tenant_id AND s.event_name = e.name"
    );
    bind_event(sql(TEXT), e)
}

/// Writes `events`, and their webhook deliveries, in a caller's transaction.
pub(crate) async fn write<DB: SqlDb>(
    tx: &mut LeanTransaction<DB>,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    for e in events {
        if DB::WRITES_IN_WITH {
            insert_and_fan_out_sql(e).execute(&mut *tx).await?;
        } else {
            insert_sql(e).execute(&mut *tx).await?;
            fanout_sql(e).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Runs one changing statement and, if `changed` says it changed something, writes
/// `events` with it in one transaction. Without events it is the bare statement (no
/// transaction), as it was before events existed. Returns the rows changed.
pub(crate) async fn change<B: Backend>(
    s: &SqlStore<B>,
    q: Sql<'_>,
    events: &[EventRecord],
    changed: impl Fn(u64) -> bool,
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return q.execute(s.write()).await;
    }
    let mut tx = s.begin().await?;
    let n = q.execute(&mut tx).await?;
    if changed(n) {
        write(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(n)
}

pub(crate) async fn record<B: Backend>(
    s: &SqlStore<B>,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tx = s.begin().await?;
    write(&mut tx, events).await?;
    tx.commit().await
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    tenant_id: String,
    name: String,
    created_at: i64,
    data: String,
}

impl From<EventRow> for EventRecord {
    fn from(r: EventRow) -> Self {
        EventRecord {
            id: EventId::from_trusted(r.id),
            tenant_id: TenantId::from_trusted(r.tenant_id),
            name: r.name,
            created_at: from_unix_ms(r.created_at),
            data: r.data,
        }
    }
}

pub(crate) async fn scan<B: Backend>(
    s: &SqlStore<B>,
    scan: EventScan<'_>,
) -> Result<Vec<EventRecord>, StoreError> {
    // The name filter is one bound, comma-joined list: `,a,b,` contains `,name,`. LIKE's
    // `_` wildcard is escaped, since every event name has underscores. Optional bounds are
    // NULL; `CAST` types their placeholders on PostgreSQL. ORDER BY cannot be bound, so the
    // direction is part of the text.
    let q = if scan.ascending {
        sql("SELECT id, tenant_id, name, created_at, data FROM events \
             WHERE tenant_id = $1 \
             AND $2 LIKE ('%,' || replace(name, '_', '\\_') || ',%') ESCAPE '\\' \
             AND (CAST($3 AS BIGINT) IS NULL OR created_at >= $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR created_at < $4) \
             AND (CAST($5 AS TEXT) IS NULL OR id > $5) \
             ORDER BY id ASC LIMIT $6")
    } else {
        sql("SELECT id, tenant_id, name, created_at, data FROM events \
             WHERE tenant_id = $1 \
             AND $2 LIKE ('%,' || replace(name, '_', '\\_') || ',%') ESCAPE '\\' \
             AND (CAST($3 AS BIGINT) IS NULL OR created_at >= $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR created_at < $4) \
             AND (CAST($5 AS TEXT) IS NULL OR id < $5) \
             ORDER BY id DESC LIMIT $6")
    };
    let names = format!(",{},", scan.names.join(","));
    let rows: Vec<EventRow> = q
        .bind(scan.tenant_id.as_str())
        .bind(names.as_str())
        .bind(scan.range_start.map(unix_ms))
        .bind(scan.range_end.map(unix_ms))
        .bind(scan.start_after.map(EventId::as_str))
        .bind(i64::from(scan.limit))
        .fetch_all(s.read())
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(crate) async fn purge<B: Backend>(
    s: &SqlStore<B>,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    sql("DELETE FROM events WHERE id IN \
         (SELECT id FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2)")
    .bind(unix_ms(before))
    .bind(i64::from(limit))
    .execute(s.write())
    .await
}
