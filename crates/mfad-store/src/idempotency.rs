//! Idempotency entries (see `mfad_core::idempotency`): claimed by an insert that only one
//! request can make, on any node; filled in by the claim holder; released on failure;
//! purged after expiry with the other expired rows.

use mfad_core::clock::unix_ms;
use mfad_core::error::StoreError;
use mfad_core::idempotency::{ClaimOutcome, IdempotencyClaim};
use time::OffsetDateTime;

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

/// An entry as read back: its request digest, status and sealed response.
type EntryRow = (Vec<u8>, Option<i64>, Option<Vec<u8>>);

/// See [`mfad_core::store::Store::claim_idempotency`]. Each step is one atomic statement;
/// an entry released between them is claimed on the next round.
pub(crate) async fn claim<B: Backend>(
    s: &SqlStore<B>,
    c: &IdempotencyClaim<'_>,
) -> Result<ClaimOutcome, StoreError> {
    let now = unix_ms(c.now);
    for _ in 0..3 {
        let inserted = sql("INSERT INTO idempotency_keys \
             (id, tenant_id, request_digest, claim, lease_until, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING")
        .bind(c.id)
        .bind(c.tenant.as_str())
        .bind(c.request_digest)
        .bind(c.claim)
        .bind(unix_ms(c.lease_until))
        .bind(now)
        .bind(unix_ms(c.expires_at))
        .execute(s.write())
        .await?;
        if inserted == 1 {
            return Ok(ClaimOutcome::Claimed);
        }
        // Expired but not yet purged, or claimed by a request that never answered.
        let taken_over = sql(
            "UPDATE idempotency_keys SET request_digest = $1, claim = $2, lease_until = $3, \
             status = NULL, response = NULL, created_at = $4, expires_at = $5 \
             WHERE id = $6 AND (expires_at <= $4 OR (status IS NULL AND lease_until <= $4))",
        )
        .bind(c.request_digest)
        .bind(c.claim)
        .bind(unix_ms(c.lease_until))
        .bind(now)
        .bind(unix_ms(c.expires_at))
        .bind(c.id)
        .execute(s.write())
        .await?;
        if taken_over == 1 {
            return Ok(ClaimOutcome::Claimed);
        }
        let row: Option<EntryRow> =
            sql("SELECT request_digest, status, response FROM idempotency_keys WHERE id = $1")
                .bind(c.id)
                .fetch_optional(s.write())
                .await?;
        if let Some((request_digest, status, response)) = row {
            let response = match (status, response) {
                (Some(st), Some(body)) => Some((u16::try_from(st).unwrap_or(500), body)),
                _ => None,
            };
            return Ok(ClaimOutcome::Existing {
                request_digest,
                response,
            });
        }
    }
    Err(StoreError::Unavailable(
        "an idempotency entry kept changing while it was claimed".into(),
    ))
}

/// See [`mfad_core::store::Store::complete_idempotency`].
pub(crate) async fn complete<B: Backend>(
    s: &SqlStore<B>,
    id: &str,
    claim: &str,
    status: u16,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let n = sql("UPDATE idempotency_keys SET status = $1, response = $2 \
         WHERE id = $3 AND claim = $4 AND status IS NULL")
    .bind(i64::from(status))
    .bind(sealed)
    .bind(id)
    .bind(claim)
    .execute(s.write())
    .await?;
    Ok(n == 1)
}

/// See [`mfad_core::store::Store::release_idempotency`].
pub(crate) async fn release<B: Backend>(
    s: &SqlStore<B>,
    id: &str,
    claim: &str,
) -> Result<(), StoreError> {
    sql("DELETE FROM idempotency_keys WHERE id = $1 AND claim = $2 AND status IS NULL")
        .bind(id)
        .bind(claim)
        .execute(s.write())
        .await
        .map(|_| ())
}

/// Deletes up to `limit` expired entries (called from the store's `purge_expired`).
pub(crate) async fn purge<B: Backend>(
    s: &SqlStore<B>,
    now: OffsetDateTime,
    limit: u32,
) -> Result<(), StoreError> {
    sql("DELETE FROM idempotency_keys WHERE id IN \
         (SELECT id FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)")
    .bind(unix_ms(now))
    .bind(i64::from(limit))
    .execute(s.write())
    .await
    .map(|_| ())
}
