//! Factors: insert (optionally with a first challenge), read, delete and keyset scans.
//! Their failure count and TOTP step are settled in `throttle.rs`.

use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::{FactorId, TenantId, UserId};
use mfad_core::model::{Challenge, Factor};
use mfad_core::store::FactorScan;

use crate::lean_pool::LeanTransaction;
use crate::rows::{FactorRow, bind_method_types, insert_challenge, insert_factor};
use crate::sql::{SqlDb, sql};
use crate::store::{Backend, SqlStore};

pub(crate) async fn insert<B: Backend>(
    s: &SqlStore<B>,
    f: &Factor,
    first_challenge: Option<&Challenge>,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if first_challenge.is_none() && events.is_empty() {
        return insert_factor(f).execute(s.write()).await.map(|_| ());
    }
    let mut tx = s.begin().await?;
    insert_factor(f).execute(&mut tx).await?;
    if let Some(c) = first_challenge {
        insert_challenge(c).execute(&mut tx).await?;
    }
    crate::events::write(&mut tx, events).await?;
    tx.commit().await
}

pub(crate) async fn get<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &FactorId,
) -> Result<Option<Factor>, StoreError> {
    let row: Option<FactorRow> = sql(
        "SELECT f.id, f.tenant_id, f.user_id, f.type, f.totp_issuer, f.totp_user, \
         f.totp_algorithm, f.totp_digits, f.totp_period, f.totp_secret, f.totp_last_step, \
         f.phone_number, f.email, f.method_id, f.name, f.created_at, f.updated_at, \
         f.failures, f.last_failure_at \
         FROM factors f WHERE f.id = $1 AND f.tenant_id = $2",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .fetch_optional(s.read())
    .await?;
    row.map(TryInto::try_into).transpose()
}

pub(crate) async fn delete<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &FactorId,
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let mut tx = s.begin().await?;
    let deleted = delete_with_challenges(&mut tx, tenant, id, None).await?;
    if deleted == 1 {
        crate::events::write(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(deleted == 1)
}

/// Deletes a factor and its challenges in a caller's transaction; the number of factor
/// rows deleted (0 or 1). With `method_of`, only if the factor is that user's method. The
/// factor row goes first, then its challenges: the lock order of a verification (factor,
/// then challenge), so the two cannot deadlock on PostgreSQL. The foreign key cascades; the explicit DELETE keeps
/// deletion whole even on a connection where SQLite's foreign keys are off.
pub(crate) async fn delete_with_challenges<DB: SqlDb>(
    tx: &mut LeanTransaction<DB>,
    tenant: &TenantId,
    id: &FactorId,
    method_of: Option<&UserId>,
) -> Result<u64, StoreError> {
    let deleted = match method_of {
        None => {
            sql("DELETE FROM factors WHERE id = $1 AND tenant_id = $2")
                .bind(id.as_str())
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?
        }
        Some(user) => {
            let q = sql(
                "DELETE FROM factors WHERE id = $1 AND tenant_id = $2 AND user_id = $3 \
                         AND type IN ($4, $5, $6)",
            );
            bind_method_types(
                q.bind(id.as_str())
                    .bind(tenant.as_str())
                    .bind(user.as_str()),
            )
            .execute(&mut *tx)
            .await?
        }
    };
    sql("DELETE FROM challenges WHERE factor_id = $1 AND tenant_id = $2")
        .bind(id.as_str())
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(deleted)
}

pub(crate) async fn scan<B: Backend>(
    s: &SqlStore<B>,
    scan: FactorScan<'_>,
) -> Result<Vec<Factor>, StoreError> {
    // The cursor `$3` is optional; `CAST` gives its placeholder a type on PostgreSQL even
    // when it is NULL. The direction is part of the text: ORDER BY cannot be bound.
    let q = if scan.ascending {
        sql(
            "SELECT f.id, f.tenant_id, f.user_id, f.type, f.totp_issuer, f.totp_user, \
             f.totp_algorithm, f.totp_digits, f.totp_period, f.totp_secret, f.totp_last_step, \
             f.phone_number, f.email, f.method_id, f.name, f.created_at, f.updated_at, \
             f.failures, f.last_failure_at \
             FROM factors f WHERE f.tenant_id = $1 AND f.user_id = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR f.id > $3) ORDER BY f.id ASC LIMIT $4",
        )
    } else {
        sql(
            "SELECT f.id, f.tenant_id, f.user_id, f.type, f.totp_issuer, f.totp_user, \
             f.totp_algorithm, f.totp_digits, f.totp_period, f.totp_secret, f.totp_last_step, \
             f.phone_number, f.email, f.method_id, f.name, f.created_at, f.updated_at, \
             f.failures, f.last_failure_at \
             FROM factors f WHERE f.tenant_id = $1 AND f.user_id = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR f.id < $3) ORDER BY f.id DESC LIMIT $4",
        )
    };
    let rows: Vec<FactorRow> = q
        .bind(scan.tenant_id.as_str())
        .bind(scan.user_id.as_str())
        .bind(scan.start_after.map(FactorId::as_str))
        .bind(i64::from(scan.limit))
        .fetch_all(s.read())
        .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}
