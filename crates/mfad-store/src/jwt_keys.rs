//! Storage of tenant-bound JWT verification keys, as plain code generic over the backend:
//! the SQL is the portable subset both accept, run on either backend's lean pool.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::ids::{JwtKeyId, TenantId};
use mfad_core::jwt_keys::{JwtKey, JwtKeyMaterial};
use mfad_core::model::Tenant;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use crate::lean_pool::LeanPool;

const INSERT: &str = "INSERT INTO jwt_keys (id, tenant_id, kid, alg, kind, material, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

const LIST: &str = "SELECT k.id, k.tenant_id, k.kid, k.alg, k.kind, k.material, k.created_at, \
     t.name AS tenant_name, t.created_at AS tenant_created_at \
     FROM jwt_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.id";

const DELETE: &str = "DELETE FROM jwt_keys WHERE id = $1 RETURNING id";

#[derive(Debug, FromRow)]
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

/// The JWT key operations on one backend's pools.
pub(crate) struct JwtKeyStore<'a, DB: Database> {
    pub(crate) read: &'a LeanPool<DB>,
    pub(crate) write: &'a LeanPool<DB>,
}

impl<DB> JwtKeyStore<'_, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'e> String: Encode<'e, DB> + Type<DB>,
    for<'e> Option<String>: Encode<'e, DB> + Type<DB>,
    for<'e> Vec<u8>: Encode<'e, DB> + Type<DB>,
    for<'e> i64: Encode<'e, DB> + Type<DB>,
    for<'r> JwtKeyRow: FromRow<'r, DB::Row>,
{
    /// See [`mfad_core::store::Store::insert_jwt_keys`].
    pub(crate) async fn insert(&self, keys: &[JwtKey]) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await.map_err(crate::map_err)?;
        for k in keys {
            sqlx::query(INSERT)
                .bind(k.id.as_str().to_owned())
                .bind(k.tenant_id.as_str().to_owned())
                .bind(k.kid.clone())
                .bind(k.alg.clone())
                .bind(k.material.kind().to_owned())
                .bind(k.material.stored_bytes().to_vec())
                .bind(unix_ms(k.created_at))
                .execute(&mut *tx)
                .await
                .map_err(crate::map_err)?;
        }
        tx.commit().await.map_err(crate::map_err)
    }

    /// See [`mfad_core::store::Store::list_jwt_keys`].
    pub(crate) async fn list(&self) -> Result<Vec<(JwtKey, Tenant)>, StoreError> {
        sqlx::query_as::<DB, JwtKeyRow>(LIST)
            .fetch_all(self.read)
            .await
            .map_err(crate::map_err)?
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    /// See [`mfad_core::store::Store::delete_jwt_key`].
    pub(crate) async fn delete(&self, id: &JwtKeyId) -> Result<bool, StoreError> {
        let deleted = sqlx::query(DELETE)
            .bind(id.as_str().to_owned())
            .fetch_optional(self.write)
            .await
            .map_err(crate::map_err)?;
        Ok(deleted.is_some())
    }
}
