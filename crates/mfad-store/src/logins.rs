//! Two-factor logins in progress and trusted computers of the FusionAuth API, and the
//! purge of expired ones.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::{TenantId, UserId};
use mfad_core::model::{LoginState, Trust};
use time::OffsetDateTime;

use crate::lean_pool::LeanTransaction;
use crate::sql::{SqlDb, sql};
use crate::store::{Backend, SqlStore};

#[derive(Debug, sqlx::FromRow)]
struct LoginRow {
    id: String,
    tenant_id: String,
    user_id: String,
    application_id: Option<String>,
    state: Option<String>,
    expires_at: i64,
    attempts: i64,
    sends: i64,
    created_at: i64,
}

impl From<LoginRow> for LoginState {
    fn from(r: LoginRow) -> Self {
        LoginState {
            id_digest: r.id,
            tenant_id: TenantId::from_trusted(r.tenant_id),
            user_id: UserId::from_trusted(r.user_id),
            application_id: r.application_id,
            state: r.state,
            expires_at: from_unix_ms(r.expires_at),
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            sends: u32::try_from(r.sends).unwrap_or(u32::MAX),
            created_at: from_unix_ms(r.created_at),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct TrustRow {
    id: String,
    tenant_id: String,
    user_id: String,
    application_id: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl From<TrustRow> for Trust {
    fn from(r: TrustRow) -> Self {
        Trust {
            id_digest: r.id,
            tenant_id: TenantId::from_trusted(r.tenant_id),
            user_id: UserId::from_trusted(r.user_id),
            application_id: r.application_id,
            created_at: from_unix_ms(r.created_at),
            expires_at: from_unix_ms(r.expires_at),
        }
    }
}

pub(crate) async fn insert<B: Backend>(s: &SqlStore<B>, l: &LoginState) -> Result<(), StoreError> {
    sql(
        "INSERT INTO two_factor_logins (id, tenant_id, user_id, application_id, state, \
         expires_at, attempts, sends, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(l.id_digest.as_str())
    .bind(l.tenant_id.as_str())
    .bind(l.user_id.as_str())
    .bind(l.application_id.as_deref())
    .bind(l.state.as_deref())
    .bind(unix_ms(l.expires_at))
    .bind(i64::from(l.attempts))
    .bind(i64::from(l.sends))
    .bind(unix_ms(l.created_at))
    .execute(s.write())
    .await
    .map(|_| ())
}

pub(crate) async fn get<B: Backend>(
    s: &SqlStore<B>,
    id_digest: &str,
) -> Result<Option<LoginState>, StoreError> {
    let row: Option<LoginRow> = sql(
        "SELECT id, tenant_id, user_id, application_id, state, expires_at, attempts, sends, \
         created_at FROM two_factor_logins WHERE id = $1",
    )
    .bind(id_digest)
    .fetch_optional(s.read())
    .await?;
    Ok(row.map(Into::into))
}

pub(crate) async fn count_send<B: Backend>(
    s: &SqlStore<B>,
    id_digest: &str,
    max_sends: u32,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = sql("UPDATE two_factor_logins SET sends = sends + 1 \
                 WHERE id = $1 AND sends < $2 AND expires_at > $3")
    .bind(id_digest)
    .bind(i64::from(max_sends))
    .bind(unix_ms(now))
    .execute(s.write())
    .await?;
    Ok(n == 1)
}

/// Deletes the code sent for a login, in a caller's transaction.
async fn delete_login_code<DB: SqlDb>(
    tx: &mut LeanTransaction<DB>,
    tenant: &TenantId,
    id_digest: &str,
) -> Result<(), StoreError> {
    let scope = LoginState::code_scope(id_digest);
    sql("DELETE FROM two_factor_codes WHERE tenant_id = $1 AND scope = $2")
        .bind(tenant.as_str())
        .bind(scope.as_str())
        .execute(tx)
        .await
        .map(|_| ())
}

pub(crate) async fn fail<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id_digest: &str,
    max_attempts: u32,
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let mut tx = s.begin().await?;
    let counted = sql("UPDATE two_factor_logins SET attempts = attempts + 1 \
                       WHERE id = $1 AND tenant_id = $2 AND attempts < $3 AND expires_at > $4")
    .bind(id_digest)
    .bind(tenant.as_str())
    .bind(i64::from(max_attempts))
    .bind(unix_ms(now))
    .execute(&mut tx)
    .await?;
    // A login that has used up its attempts or its time goes, with its code.
    let closed = sql("DELETE FROM two_factor_logins \
                      WHERE id = $1 AND tenant_id = $2 AND (attempts >= $3 OR expires_at <= $4)")
    .bind(id_digest)
    .bind(tenant.as_str())
    .bind(i64::from(max_attempts))
    .bind(unix_ms(now))
    .execute(&mut tx)
    .await?;
    if closed > 0 {
        delete_login_code(&mut tx, tenant, id_digest).await?;
    }
    if counted == 1 {
        crate::events::write(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(counted == 1 && closed == 0)
}

pub(crate) async fn consume<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id_digest: &str,
    max_attempts: u32,
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let mut tx = s.begin().await?;
    let consumed = sql("DELETE FROM two_factor_logins \
                        WHERE id = $1 AND tenant_id = $2 AND attempts < $3 AND expires_at > $4")
    .bind(id_digest)
    .bind(tenant.as_str())
    .bind(i64::from(max_attempts))
    .bind(unix_ms(now))
    .execute(&mut tx)
    .await?;
    delete_login_code(&mut tx, tenant, id_digest).await?;
    if consumed == 1 {
        crate::events::write(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(consumed == 1)
}

pub(crate) async fn insert_trust<B: Backend>(
    s: &SqlStore<B>,
    trust: &Trust,
) -> Result<(), StoreError> {
    sql(
        "INSERT INTO two_factor_trusts (id, tenant_id, user_id, application_id, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(trust.id_digest.as_str())
    .bind(trust.tenant_id.as_str())
    .bind(trust.user_id.as_str())
    .bind(trust.application_id.as_deref())
    .bind(unix_ms(trust.created_at))
    .bind(unix_ms(trust.expires_at))
    .execute(s.write())
    .await
    .map(|_| ())
}

pub(crate) async fn get_trust<B: Backend>(
    s: &SqlStore<B>,
    id_digest: &str,
) -> Result<Option<Trust>, StoreError> {
    let row: Option<TrustRow> = sql(
        "SELECT id, tenant_id, user_id, application_id, created_at, expires_at \
         FROM two_factor_trusts WHERE id = $1",
    )
    .bind(id_digest)
    .fetch_optional(s.read())
    .await?;
    Ok(row.map(Into::into))
}

pub(crate) async fn purge_expired<B: Backend>(
    s: &SqlStore<B>,
    now: OffsetDateTime,
    limit: u32,
) -> Result<(), StoreError> {
    // Expired rows are purged a few at a time, on the request path, through the expiry
    // indexes; `LIMIT` inside `IN (SELECT …)` is the portable bounded DELETE.
    for text in [
        "DELETE FROM two_factor_logins WHERE id IN \
         (SELECT id FROM two_factor_logins WHERE expires_at <= $1 LIMIT $2)",
        "DELETE FROM two_factor_trusts WHERE id IN \
         (SELECT id FROM two_factor_trusts WHERE expires_at <= $1 LIMIT $2)",
        "DELETE FROM two_factor_codes WHERE (tenant_id, scope) IN \
         (SELECT tenant_id, scope FROM two_factor_codes WHERE expires_at <= $1 LIMIT $2)",
    ] {
        sql(text)
            .bind(unix_ms(now))
            .bind(i64::from(limit))
            .execute(s.write())
            .await?;
    }
    Ok(())
}
