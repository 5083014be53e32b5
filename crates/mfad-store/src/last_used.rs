//! The method each user last logged in with (FusionAuth's `TwoFactorMethod.lastUsed`).

use mfad_core::clock::unix_ms;
use mfad_core::error::StoreError;
use mfad_core::ids::{FactorId, TenantId, UserId};
use time::OffsetDateTime;

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

/// One upsert per login: the row is the user's, the last write wins.
pub(crate) async fn set<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    factor: &FactorId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sql(
        "INSERT INTO last_used_methods (tenant_id, user_id, factor_id, used_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, user_id) \
         DO UPDATE SET factor_id = excluded.factor_id, used_at = excluded.used_at",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(factor.as_str())
    .bind(unix_ms(at))
    .execute(s.write())
    .await?;
    Ok(())
}

pub(crate) async fn get<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Option<FactorId>, StoreError> {
    let row: Option<(String,)> =
        sql("SELECT factor_id FROM last_used_methods WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_optional(s.read())
            .await?;
    Ok(row.map(|(id,)| FactorId::from_trusted(id)))
}
