//! Tenants and API keys.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::ApiKeyId;
use mfad_core::model::{ApiKey, Tenant};
use time::OffsetDateTime;

use crate::rows::{ApiKeyRow, ApiKeyWithTenantRow, TenantRow};
use crate::sql::sql;
use crate::store::{Backend, SqlStore};

pub(crate) async fn ping<B: Backend>(s: &SqlStore<B>) -> Result<(), StoreError> {
    sql("SELECT 1").execute(s.read()).await.map(|_| ())
}

pub(crate) async fn ensure_tenant<B: Backend>(
    s: &SqlStore<B>,
    t: &Tenant,
) -> Result<Tenant, StoreError> {
    sql(
        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(t.id.as_str())
    .bind(t.name.as_str())
    .bind(unix_ms(t.created_at))
    .execute(s.write())
    .await?;
    // From the writer: a reader may not see the row just inserted yet.
    let row: TenantRow = sql("SELECT id, name, created_at FROM tenants WHERE name = $1")
        .bind(t.name.as_str())
        .fetch_one(s.write())
        .await?;
    Ok(row.into())
}

pub(crate) async fn insert_api_key<B: Backend>(
    s: &SqlStore<B>,
    k: &ApiKey,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    let q = sql(
        "INSERT INTO api_keys (id, tenant_id, name, digest, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(k.id.as_str())
    .bind(k.tenant_id.as_str())
    .bind(k.name.as_str())
    .bind(k.digest.as_slice())
    .bind(unix_ms(k.created_at));
    crate::events::change(s, q, events, |n| n == 1)
        .await
        .map(|_| ())
}

pub(crate) async fn get_api_key<B: Backend>(
    s: &SqlStore<B>,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    let row: Option<ApiKeyRow> = sql(
        "SELECT id, tenant_id, name, digest, created_at, revoked_at FROM api_keys WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(s.read())
    .await?;
    Ok(row.map(Into::into))
}

pub(crate) async fn list_api_keys<B: Backend>(
    s: &SqlStore<B>,
) -> Result<Vec<(ApiKey, Tenant)>, StoreError> {
    let rows: Vec<ApiKeyWithTenantRow> = sql(
        "SELECT k.id, k.tenant_id, k.name, k.digest, k.created_at, k.revoked_at, \
         t.name AS tenant_name, t.created_at AS tenant_created_at \
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.id",
    )
    .fetch_all(s.read())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let key: ApiKey = r.key.into();
            let tenant = Tenant {
                id: key.tenant_id.clone(),
                name: r.tenant_name,
                created_at: from_unix_ms(r.tenant_created_at),
            };
            (key, tenant)
        })
        .collect())
}

pub(crate) async fn revoke_api_key<B: Backend>(
    s: &SqlStore<B>,
    id: &ApiKeyId,
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let q = sql("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(unix_ms(now))
        .bind(id.as_str());
    Ok(crate::events::change(s, q, events, |n| n == 1).await? == 1)
}
