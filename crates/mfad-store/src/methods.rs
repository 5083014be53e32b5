//! FusionAuth two-factor methods (factors filed under a user), the users the API has seen,
//! and recovery codes. (A user's failure count is settled in `throttle.rs`.)

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::{FactorId, MethodId, TenantId, UserId};
use mfad_core::model::{Factor, RecoveryCode};
use time::OffsetDateTime;

use crate::factors::delete_with_challenges;
use crate::lean_pool::LeanTransaction;
use crate::rows::{bind_method_types, insert_factor};
use crate::sql::{SqlDb, sql};
use crate::store::{Backend, SqlStore};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RecoveryCodeRow {
    digest: Vec<u8>,
    sealed: Vec<u8>,
    created_at: i64,
}

impl From<RecoveryCodeRow> for RecoveryCode {
    fn from(r: RecoveryCodeRow) -> Self {
        RecoveryCode {
            digest: r.digest,
            sealed: r.sealed,
            created_at: from_unix_ms(r.created_at),
        }
    }
}

pub(crate) async fn rename<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    method_id: &MethodId,
    name: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let q = sql("UPDATE factors SET name = $1, updated_at = $2 \
                 WHERE tenant_id = $3 AND user_id = $4 AND method_id = $5 AND type IN ($6, $7, $8)")
    .bind(name)
    .bind(unix_ms(now))
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(method_id.as_str());
    Ok(bind_method_types(q).execute(s.write()).await? == 1)
}

pub(crate) async fn user_known<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<bool, StoreError> {
    let seen: Option<(String,)> =
        sql("SELECT user_id FROM two_factor_users WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_optional(s.read())
            .await?;
    if seen.is_some() {
        return Ok(true);
    }
    let factor: Option<(String,)> =
        sql("SELECT id FROM factors WHERE tenant_id = $1 AND user_id = $2 LIMIT 1")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_optional(s.read())
            .await?;
    Ok(factor.is_some())
}

pub(crate) async fn find_users<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    email: Option<&str>,
    phone: Option<&str>,
    user_id: Option<&UserId>,
    limit: u32,
) -> Result<Vec<UserId>, StoreError> {
    let rows: Vec<(String,)> = sql(
        "SELECT DISTINCT user_id FROM factors WHERE tenant_id = $1 AND user_id IS NOT NULL \
         AND (email = $2 OR phone_number = $3 OR user_id = $4) ORDER BY user_id LIMIT $5",
    )
    .bind(tenant.as_str())
    .bind(email)
    .bind(phone)
    .bind(user_id.map(UserId::as_str))
    .bind(i64::from(limit))
    .fetch_all(s.read())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(u,)| UserId::from_trusted(u))
        .collect())
}

/// Records the user (or touches it), taking its row lock first, so concurrent changes to
/// one user's methods in transactions run one after the other.
async fn lock_user<DB: SqlDb>(
    tx: &mut LeanTransaction<DB>,
    tenant: &TenantId,
    user: &UserId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sql("INSERT INTO two_factor_users \
         (tenant_id, user_id, failures, failures_reset_at, created_at, updated_at) \
         VALUES ($1, $2, 0, 0, $3, $3) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET updated_at = excluded.updated_at")
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(unix_ms(now))
    .execute(tx)
    .await
    .map(|_| ())
}

/// How many methods the user has.
async fn count_methods<DB: SqlDb>(
    tx: &mut LeanTransaction<DB>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<i64, StoreError> {
    let q = sql(
        "SELECT COUNT(*) FROM factors WHERE tenant_id = $1 AND user_id = $2 \
                 AND type IN ($3, $4, $5)",
    )
    .bind(tenant.as_str())
    .bind(user.as_str());
    let (n,): (i64,) = bind_method_types(q).fetch_one(tx).await?;
    Ok(n)
}

/// Replaces the user's recovery codes with `codes`, in a caller's transaction.
async fn store_recovery_codes<DB: SqlDb>(
    tx: &mut LeanTransaction<DB>,
    tenant: &TenantId,
    user: &UserId,
    codes: &[RecoveryCode],
) -> Result<(), StoreError> {
    sql("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
    for code in codes {
        sql(
            "INSERT INTO recovery_codes (tenant_id, user_id, digest, sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(code.digest.as_slice())
        .bind(code.sealed.as_slice())
        .bind(unix_ms(code.created_at))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

pub(crate) async fn insert<B: Backend>(
    s: &SqlStore<B>,
    method: &Factor,
    recovery: &[RecoveryCode],
    now: OffsetDateTime,
    events: &[EventRecord],
    if_codes_stored: &[EventRecord],
) -> Result<bool, StoreError> {
    let Some(user) = method.user_id.as_ref() else {
        return Err(StoreError::Other(
            "a two-factor method must belong to a user".into(),
        ));
    };
    let tenant = &method.tenant_id;
    let mut tx = s.begin().await?;
    lock_user(&mut tx, tenant, user, now).await?;
    let first = count_methods(&mut tx, tenant, user).await? == 0;
    insert_factor(method).execute(&mut tx).await?;
    crate::events::write(&mut tx, events).await?;
    if first {
        store_recovery_codes(&mut tx, tenant, user, recovery).await?;
        if !recovery.is_empty() {
            crate::events::write(&mut tx, if_codes_stored).await?;
        }
    }
    tx.commit().await?;
    Ok(first && !recovery.is_empty())
}

pub(crate) async fn delete<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    only: Option<&FactorId>,
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<u64, StoreError> {
    let mut tx = s.begin().await?;
    lock_user(&mut tx, tenant, user, now).await?;
    let ids: Vec<FactorId> = match only {
        Some(id) => vec![id.clone()],
        None => {
            let q = sql(
                "SELECT id FROM factors WHERE tenant_id = $1 AND user_id = $2 \
                         AND type IN ($3, $4, $5)",
            )
            .bind(tenant.as_str())
            .bind(user.as_str());
            let rows: Vec<(String,)> = bind_method_types(q).fetch_all(&mut tx).await?;
            rows.into_iter()
                .map(|(id,)| FactorId::from_trusted(id))
                .collect()
        }
    };
    let mut deleted = 0;
    for id in &ids {
        deleted += delete_with_challenges(&mut tx, tenant, id, Some(user)).await?;
    }
    if count_methods(&mut tx, tenant, user).await? == 0 {
        store_recovery_codes(&mut tx, tenant, user, &[]).await?;
    }
    if deleted > 0 {
        crate::events::write(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

pub(crate) async fn replace_recovery_codes<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    codes: &[RecoveryCode],
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    let mut tx = s.begin().await?;
    lock_user(&mut tx, tenant, user, now).await?;
    store_recovery_codes(&mut tx, tenant, user, codes).await?;
    crate::events::write(&mut tx, events).await?;
    tx.commit().await
}

pub(crate) async fn recovery_codes<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<RecoveryCode>, StoreError> {
    let rows: Vec<RecoveryCodeRow> = sql("SELECT digest, sealed, created_at FROM recovery_codes \
         WHERE tenant_id = $1 AND user_id = $2 ORDER BY digest")
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_all(s.read())
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(crate) async fn consume_recovery_code<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    digest: &[u8],
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let q = sql("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND digest = $3")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(digest);
    Ok(crate::events::change(s, q, events, |n| n == 1).await? == 1)
}
