//! Tenant-bound JWT verification keys.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::{JwtKeyId, TenantId};
use mfad_core::jwt_keys::{JwtKey, JwtKeyMaterial};
use mfad_core::model::Tenant;

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JwtKeyRow {
    id: String,
    tenant_id: String,
    kid: Option<String>,
    alg: String,
    kind: String,
    material: Vec<u8>,
    created_at: i64,
    tenant_name: String,
    tenant_created_at: i64,
}

impl TryFrom<JwtKeyRow> for (JwtKey, Tenant) {
    type Error = StoreError;

    fn try_from(r: JwtKeyRow) -> Result<Self, StoreError> {
        let tenant = Tenant {
            id: TenantId::from_trusted(r.tenant_id),
            name: r.tenant_name,
            created_at: from_unix_ms(r.tenant_created_at),
        };
        let key = JwtKey {
            id: JwtKeyId::from_trusted(r.id),
            tenant_id: tenant.id.clone(),
            kid: r.kid,
            alg: r.alg,
            material: JwtKeyMaterial::from_stored(&r.kind, r.material)?,
            created_at: from_unix_ms(r.created_at),
        };
        Ok((key, tenant))
    }
}

/// See [`mfad_core::store::Store::insert_jwt_keys`]: one transaction, all or none.
pub(crate) async fn insert<B: Backend>(
    s: &SqlStore<B>,
    keys: &[JwtKey],
    events: &[EventRecord],
) -> Result<(), StoreError> {
    let mut tx = s.begin().await?;
    for k in keys {
        sql(
            "INSERT INTO jwt_keys (id, tenant_id, kid, alg, kind, material, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(k.id.as_str())
        .bind(k.tenant_id.as_str())
        .bind(k.kid.as_deref())
        .bind(k.alg.as_str())
        .bind(k.material.kind())
        .bind(k.material.stored_bytes())
        .bind(unix_ms(k.created_at))
        .execute(&mut tx)
        .await?;
    }
    crate::events::write(&mut tx, events).await?;
    tx.commit().await
}

/// See [`mfad_core::store::Store::list_jwt_keys`].
pub(crate) async fn list<B: Backend>(s: &SqlStore<B>) -> Result<Vec<(JwtKey, Tenant)>, StoreError> {
    let rows: Vec<JwtKeyRow> = sql(
        "SELECT k.id, k.tenant_id, k.kid, k.alg, k.kind, k.material, k.created_at, \
         t.name AS tenant_name, t.created_at AS tenant_created_at \
         FROM jwt_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.id",
    )
    .fetch_all(s.read())
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// See [`mfad_core::store::Store::delete_jwt_key`].
pub(crate) async fn delete<B: Backend>(
    s: &SqlStore<B>,
    id: &JwtKeyId,
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let q = sql("DELETE FROM jwt_keys WHERE id = $1").bind(id.as_str());
    Ok(crate::events::change(s, q, events, |n| n == 1).await? == 1)
}
