//! Webhook endpoints, their subscriptions and the outbox (migration 0011,
//! docs/WEBHOOKS.md). Deliveries enter the outbox with their event (`events::fanout_sql`);
//! here a dispatcher leases an endpoint, reads its pending deliveries oldest first and
//! settles each attempt, conditional on still holding the lease.

use const_format::concatcp;
use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::{EventKind, EventRecord};
use mfad_core::ids::{EventId, TenantId, WebhookEndpointId};
use mfad_core::webhooks::outbox::{
    DeliveryState, DeliveryTarget, PendingDelivery, Settlement, WebhookDelivery,
};
use mfad_core::webhooks::{WebhookEndpoint, WebhookFormat};
use sqlx::Database as _;
use time::OffsetDateTime;

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    tenant_id: String,
    url: String,
    format: String,
    allow_insecure: i64,
    created_at: i64,
}

fn format_of(name: &str) -> Result<WebhookFormat, StoreError> {
    WebhookFormat::parse(name)
        .ok_or_else(|| StoreError::Other(format!("unknown webhook format {name:?} in storage")))
}

impl EndpointRow {
    fn into_endpoint(self, events: Vec<EventKind>) -> Result<WebhookEndpoint, StoreError> {
        Ok(WebhookEndpoint {
            id: WebhookEndpointId::from_trusted(self.id),
            tenant_id: TenantId::from_trusted(self.tenant_id),
            url: self.url,
            format: format_of(&self.format)?,
            events,
            allow_insecure: self.allow_insecure != 0,
            created_at: from_unix_ms(self.created_at),
        })
    }
}

/// See [`mfad_core::store::Store::insert_webhook_endpoint`].
pub(crate) async fn insert_endpoint<B: Backend>(
    s: &SqlStore<B>,
    e: &WebhookEndpoint,
    sealed_secret: &[u8],
) -> Result<(), StoreError> {
    let mut tx = s.begin().await?;
    sql("INSERT INTO webhook_endpoints \
         (id, tenant_id, url, format, allow_insecure, secret, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
    .bind(e.id.as_str())
    .bind(e.tenant_id.as_str())
    .bind(e.url.as_str())
    .bind(e.format.name())
    .bind(i64::from(e.allow_insecure))
    .bind(sealed_secret)
    .bind(unix_ms(e.created_at))
    .execute(&mut tx)
    .await?;
    for kind in &e.events {
        // A kind listed twice is one subscription.
        sql(
            "INSERT INTO webhook_subscriptions (tenant_id, event_name, endpoint_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(e.tenant_id.as_str())
        .bind(kind.name())
        .bind(e.id.as_str())
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await
}

/// The subscriptions of the endpoints in `tenant` (every tenant with `None`), by endpoint.
async fn subscriptions<B: Backend>(
    s: &SqlStore<B>,
    tenant: Option<&TenantId>,
    endpoint: Option<&WebhookEndpointId>,
) -> Result<Vec<(String, EventKind)>, StoreError> {
    let rows: Vec<(String, String)> = sql("SELECT endpoint_id, event_name \
         FROM webhook_subscriptions \
         WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) \
         AND (CAST($2 AS TEXT) IS NULL OR endpoint_id = $2) \
         ORDER BY endpoint_id, event_name")
    .bind(tenant.map(TenantId::as_str))
    .bind(endpoint.map(WebhookEndpointId::as_str))
    .fetch_all(s.read())
    .await?;
    // A name no kind of this build knows (written by a newer one) is left out.
    Ok(rows
        .into_iter()
        .filter_map(|(id, name)| EventKind::parse(&name).map(|k| (id, k)))
        .collect())
}

fn with_events(
    rows: Vec<EndpointRow>,
    subs: &[(String, EventKind)],
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    rows.into_iter()
        .map(|r| {
            // Catalogue order, as `mfad webhook list` shows them.
            let mut kinds: Vec<EventKind> = subs
                .iter()
                .filter(|(id, _)| *id == r.id)
                .map(|(_, k)| *k)
                .collect();
            kinds.sort_by_key(|k| EventKind::ALL.iter().position(|a| a == k));
            r.into_endpoint(kinds)
        })
        .collect()
}

/// See [`mfad_core::store::Store::list_webhook_endpoints`].
pub(crate) async fn list_endpoints<B: Backend>(
    s: &SqlStore<B>,
    tenant: Option<&TenantId>,
) -> Result<Vec<WebhookEndpoint>, StoreError> {
    let rows: Vec<EndpointRow> = sql(
        "SELECT id, tenant_id, url, format, allow_insecure, created_at \
         FROM webhook_endpoints WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) \
         ORDER BY id",
    )
    .bind(tenant.map(TenantId::as_str))
    .fetch_all(s.read())
    .await?;
    let subs = subscriptions(s, tenant, None).await?;
    with_events(rows, &subs)
}

/// See [`mfad_core::store::Store::get_webhook_endpoint`].
pub(crate) async fn get_endpoint<B: Backend>(
    s: &SqlStore<B>,
    id: &WebhookEndpointId,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    let rows: Vec<EndpointRow> = sql(
        "SELECT id, tenant_id, url, format, allow_insecure, created_at \
         FROM webhook_endpoints WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_all(s.read())
    .await?;
    let subs = subscriptions(s, None, Some(id)).await?;
    Ok(with_events(rows, &subs)?.into_iter().next())
}

/// See [`mfad_core::store::Store::delete_webhook_endpoint`]. Subscriptions and
/// deliveries go with it (foreign keys `ON DELETE CASCADE`).
pub(crate) async fn delete_endpoint<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &WebhookEndpointId,
) -> Result<bool, StoreError> {
    let n = sql("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(s.write())
        .await?;
    Ok(n == 1)
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: String,
    tenant_id: String,
    url: String,
    format: String,
    allow_insecure: i64,
    secret: Vec<u8>,
}

/// Whether an endpoint may be claimed at `$1`: no live lease holds it, and the oldest of
/// its pending deliveries is due (a later one never overtakes it). Shared by the read-only
/// probe and both dialects' claims below.
const CLAIMABLE: &str = "(e.lease_owner IS NULL OR e.lease_until < $1) \
     AND (SELECT o.next_attempt_at FROM webhook_outbox o \
          WHERE o.endpoint_id = e.id AND o.state = 'pending' \
          ORDER BY o.id LIMIT 1) <= $1";

/// PostgreSQL: the candidates are row-locked with `SKIP LOCKED`, so concurrent claimers
/// (other nodes) pass over each other's instead of waiting, and an endpoint another one
/// just leased is re-checked on its new row version and dropped. `NO KEY UPDATE` (the
/// lock the UPDATE itself takes) rather than `UPDATE`, so requests whose fan-out inserts
/// reference the endpoint (a `KEY SHARE` lock) never wait on a claim.
const CLAIM_POSTGRES: &str = concatcp!(
    "UPDATE webhook_endpoints SET lease_owner = $2, lease_until = $3 WHERE id IN \
     (SELECT e.id FROM webhook_endpoints e WHERE ",
    CLAIMABLE,
    " ORDER BY COALESCE(e.lease_until, 0), e.id LIMIT $4 FOR NO KEY UPDATE OF e SKIP LOCKED) \
     RETURNING id, tenant_id, url, format, allow_insecure, secret"
);

/// SQLite: one statement under the database's single write lock is already exclusive.
const CLAIM_SQLITE: &str = concatcp!(
    "UPDATE webhook_endpoints SET lease_owner = $2, lease_until = $3 WHERE id IN \
     (SELECT e.id FROM webhook_endpoints e WHERE ",
    CLAIMABLE,
    " ORDER BY COALESCE(e.lease_until, 0), e.id LIMIT $4) \
     RETURNING id, tenant_id, url, format, allow_insecure, secret"
);

/// See [`mfad_core::store::Store::claim_webhook_endpoints`].
pub(crate) async fn claim<B: Backend>(
    s: &SqlStore<B>,
    owner: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<DeliveryTarget>, StoreError> {
    // Most polls find nothing to do: a read answers that without taking SQLite's write
    // lock or writing on PostgreSQL.
    const DUE: &str = concatcp!(
        "SELECT e.id FROM webhook_endpoints e WHERE ",
        CLAIMABLE,
        " LIMIT 1"
    );
    let due: Option<(String,)> = sql(DUE).bind(unix_ms(now)).fetch_optional(s.read()).await?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    let text = if <B::DB as sqlx::Database>::NAME == sqlx::Postgres::NAME {
        CLAIM_POSTGRES
    } else {
        CLAIM_SQLITE
    };
    let rows: Vec<TargetRow> = sql(text)
        .bind(unix_ms(now))
        .bind(owner)
        .bind(unix_ms(until))
        .bind(i64::from(limit))
        .fetch_all(s.write())
        .await?;
    let mut targets = rows
        .into_iter()
        .map(|r| {
            Ok(DeliveryTarget {
                id: WebhookEndpointId::from_trusted(r.id),
                tenant_id: TenantId::from_trusted(r.tenant_id),
                url: r.url,
                format: format_of(&r.format)?,
                allow_insecure: r.allow_insecure != 0,
                sealed_secret: r.secret,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // RETURNING follows no ORDER BY; id order makes runs reproducible.
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(targets)
}

/// See [`mfad_core::store::Store::renew_webhook_lease`].
pub(crate) async fn renew<B: Backend>(
    s: &SqlStore<B>,
    id: &WebhookEndpointId,
    owner: &str,
    until: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = sql("UPDATE webhook_endpoints SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
        .bind(unix_ms(until))
        .bind(id.as_str())
        .bind(owner)
        .execute(s.write())
        .await?;
    Ok(n == 1)
}

/// See [`mfad_core::store::Store::release_webhook_lease`]. `lease_until` keeps the
/// release time, which orders the next claims (served longest ago first).
pub(crate) async fn release<B: Backend>(
    s: &SqlStore<B>,
    id: &WebhookEndpointId,
    owner: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sql(
        "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = $1 \
         WHERE id = $2 AND lease_owner = $3",
    )
    .bind(unix_ms(now))
    .bind(id.as_str())
    .bind(owner)
    .execute(s.write())
    .await
    .map(|_| ())
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    endpoint_id: String,
    event_id: String,
    event_name: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    settled_at: Option<i64>,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(WebhookDelivery {
            id: r.id,
            endpoint_id: WebhookEndpointId::from_trusted(r.endpoint_id),
            event_id: EventId::from_trusted(r.event_id),
            event_name: r.event_name,
            state: DeliveryState::parse(&r.state).ok_or_else(|| {
                StoreError::Other(format!("unknown delivery state {:?} in storage", r.state))
            })?,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_unix_ms(r.next_attempt_at),
            last_status: r.last_status.and_then(|v| u16::try_from(v).ok()),
            last_error: r.last_error,
            created_at: from_unix_ms(r.created_at),
            settled_at: r.settled_at.map(from_unix_ms),
        })
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    tenant_id: String,
    event_created_at: i64,
    data: String,
}

/// See [`mfad_core::store::Store::pending_webhook_deliveries`].
pub(crate) async fn pending<B: Backend>(
    s: &SqlStore<B>,
    endpoint: &WebhookEndpointId,
    limit: u32,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let rows: Vec<PendingRow> = sql(
        "SELECT o.id, o.endpoint_id, o.event_id, ev.name AS event_name, \
         o.state, o.attempts, o.next_attempt_at, o.last_status, o.last_error, o.created_at, \
         o.settled_at, ev.tenant_id, ev.created_at AS event_created_at, ev.data \
         FROM webhook_outbox o JOIN events ev ON ev.id = o.event_id \
         WHERE o.endpoint_id = $1 AND o.state = 'pending' ORDER BY o.id LIMIT $2",
    )
    .bind(endpoint.as_str())
    .bind(i64::from(limit))
    .fetch_all(s.read())
    .await?;
    rows.into_iter()
        .map(|r| {
            let delivery = WebhookDelivery::try_from(r.delivery)?;
            let event = EventRecord {
                id: delivery.event_id.clone(),
                tenant_id: TenantId::from_trusted(r.tenant_id),
                name: delivery.event_name.clone(),
                created_at: from_unix_ms(r.event_created_at),
                data: r.data,
            };
            Ok(PendingDelivery { delivery, event })
        })
        .collect()
}

/// See [`mfad_core::store::Store::settle_webhook_delivery`].
pub(crate) async fn settle<B: Backend>(
    s: &SqlStore<B>,
    id: i64,
    owner: &str,
    settlement: &Settlement,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let (state, next, status, error, settled) = match settlement {
        Settlement::Delivered { status } => (
            DeliveryState::Delivered,
            None,
            Some(*status),
            None,
            Some(now),
        ),
        Settlement::Retry {
            status,
            error,
            next_attempt_at,
        } => (
            DeliveryState::Pending,
            Some(*next_attempt_at),
            *status,
            Some(error.as_str()),
            None,
        ),
        Settlement::Failed { status, error } => (
            DeliveryState::Failed,
            None,
            *status,
            Some(error.as_str()),
            Some(now),
        ),
    };
    let n = sql(
        "UPDATE webhook_outbox SET state = $1, attempts = attempts + 1, \
         next_attempt_at = COALESCE($2, next_attempt_at), last_status = $3, \
         last_error = $4, settled_at = $5 \
         WHERE id = $6 AND state = 'pending' AND EXISTS (SELECT 1 FROM webhook_endpoints e \
           WHERE e.id = webhook_outbox.endpoint_id AND e.lease_owner = $7)",
    )
    .bind(state.as_str())
    .bind(next.map(unix_ms))
    .bind(status.map(i64::from))
    .bind(error)
    .bind(settled.map(unix_ms))
    .bind(id)
    .bind(owner)
    .execute(s.write())
    .await?;
    Ok(n == 1)
}

/// See [`mfad_core::store::Store::list_webhook_deliveries`].
pub(crate) async fn list_deliveries<B: Backend>(
    s: &SqlStore<B>,
    endpoint: &WebhookEndpointId,
    limit: u32,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let rows: Vec<DeliveryRow> = sql(
        "SELECT o.id, o.endpoint_id, o.event_id, ev.name AS event_name, \
         o.state, o.attempts, o.next_attempt_at, o.last_status, o.last_error, o.created_at, \
         o.settled_at \
         FROM webhook_outbox o JOIN events ev ON ev.id = o.event_id \
         WHERE o.endpoint_id = $1 ORDER BY o.id DESC LIMIT $2",
    )
    .bind(endpoint.as_str())
    .bind(i64::from(limit))
    .fetch_all(s.read())
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// See [`mfad_core::store::Store::purge_webhook_deliveries`].
pub(crate) async fn purge<B: Backend>(
    s: &SqlStore<B>,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    sql(
        "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox \
         WHERE settled_at IS NOT NULL AND settled_at < $1 ORDER BY settled_at LIMIT $2)",
    )
    .bind(unix_ms(before))
    .bind(i64::from(limit))
    .execute(s.write())
    .await
}
