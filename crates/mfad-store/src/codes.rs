//! One-time codes of the FusionAuth API (sent for a login or an enable), one per scope.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::ids::{TenantId, UserId};
use mfad_core::model::PendingCode;
use time::OffsetDateTime;

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

#[derive(Debug, sqlx::FromRow)]
struct PendingCodeRow {
    tenant_id: String,
    scope: String,
    user_id: Option<String>,
    digest: Vec<u8>,
    payload: Option<String>,
    expires_at: i64,
    attempts: i64,
    created_at: i64,
}

impl From<PendingCodeRow> for PendingCode {
    fn from(r: PendingCodeRow) -> Self {
        PendingCode {
            tenant_id: TenantId::from_trusted(r.tenant_id),
            scope: r.scope,
            user_id: r.user_id.map(UserId::from_trusted),
            digest: r.digest,
            payload: r.payload,
            expires_at: from_unix_ms(r.expires_at),
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            created_at: from_unix_ms(r.created_at),
        }
    }
}

pub(crate) async fn put<B: Backend>(s: &SqlStore<B>, code: &PendingCode) -> Result<(), StoreError> {
    sql("INSERT INTO two_factor_codes \
         (tenant_id, scope, user_id, digest, payload, expires_at, attempts, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7) \
         ON CONFLICT (tenant_id, scope) DO UPDATE SET user_id = excluded.user_id, \
         digest = excluded.digest, payload = excluded.payload, expires_at = excluded.expires_at, \
         attempts = 0, created_at = excluded.created_at")
    .bind(code.tenant_id.as_str())
    .bind(code.scope.as_str())
    .bind(code.user_id.as_ref().map(UserId::as_str))
    .bind(code.digest.as_slice())
    .bind(code.payload.as_deref())
    .bind(unix_ms(code.expires_at))
    .bind(unix_ms(code.created_at))
    .execute(s.write())
    .await
    .map(|_| ())
}

pub(crate) async fn get<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    scope: &str,
) -> Result<Option<PendingCode>, StoreError> {
    let row: Option<PendingCodeRow> = sql(
        "SELECT tenant_id, scope, user_id, digest, payload, expires_at, attempts, created_at \
         FROM two_factor_codes WHERE tenant_id = $1 AND scope = $2",
    )
    .bind(tenant.as_str())
    .bind(scope)
    .fetch_optional(s.read())
    .await?;
    Ok(row.map(Into::into))
}

/// What a checked code comes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// The right code: used up.
    Used,
    /// A wrong code: counted against it.
    Failed,
}

/// Settles the code whose digest is `digest`, only while it is unexpired at `now` and below
/// `max_attempts` (and not replaced meanwhile); false if it was no longer open.
pub(crate) async fn settle<B: Backend>(
    s: &SqlStore<B>,
    outcome: Outcome,
    tenant: &TenantId,
    scope: &str,
    digest: &[u8],
    max_attempts: u32,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let q = match outcome {
        Outcome::Used => sql("DELETE FROM two_factor_codes \
             WHERE tenant_id = $1 AND scope = $2 AND digest = $3 AND attempts < $4 AND expires_at > $5"),
        Outcome::Failed => sql("UPDATE two_factor_codes SET attempts = attempts + 1 \
             WHERE tenant_id = $1 AND scope = $2 AND digest = $3 AND attempts < $4 AND expires_at > $5"),
    };
    let n = q
        .bind(tenant.as_str())
        .bind(scope)
        .bind(digest)
        .bind(i64::from(max_attempts))
        .bind(unix_ms(now))
        .execute(s.write())
        .await?;
    Ok(n == 1)
}
