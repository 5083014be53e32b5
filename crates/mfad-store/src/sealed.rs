//! Sealed values by the key that sealed them, for master-key rotation: counts per key
//! (through the generated key-id columns of migration 0008 and their indexes), keyset
//! scans of the values not under the active key, and conditional replacement of one value
//! that matches only the exact old blob (so a concurrent write, or a concurrent rotation,
//! wins).

use mfad_core::error::StoreError;
use mfad_core::ids::{FactorId, JwtKeyId, TenantId, UserId, WebhookEndpointId};
use mfad_core::rotation::{SealedCount, SealedKind, SealedRow, SealedValue};

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

/// See [`mfad_core::store::Store::sealed_key_counts`].
pub(crate) async fn counts<B: Backend>(s: &SqlStore<B>) -> Result<Vec<SealedCount>, StoreError> {
    let mut out = Vec::new();
    for (kind, text) in [
        (
            SealedKind::TotpSecret,
            "SELECT secret_key_id, COUNT(*) FROM factors \
             WHERE secret_key_id IS NOT NULL GROUP BY secret_key_id",
        ),
        (
            SealedKind::RecoveryCode,
            "SELECT sealed_key_id, COUNT(*) FROM recovery_codes GROUP BY sealed_key_id",
        ),
        (
            SealedKind::JwtSecret,
            "SELECT sealed_key_id, COUNT(*) FROM jwt_keys \
             WHERE sealed_key_id IS NOT NULL GROUP BY sealed_key_id",
        ),
        (
            SealedKind::IdempotentResponse,
            "SELECT response_key_id, COUNT(*) FROM idempotency_keys \
             WHERE response_key_id IS NOT NULL GROUP BY response_key_id",
        ),
        (
            SealedKind::WebhookSecret,
            "SELECT secret_key_id, COUNT(*) FROM webhook_endpoints GROUP BY secret_key_id",
        ),
    ] {
        let rows: Vec<(Option<Vec<u8>>, i64)> = sql(text).fetch_all(s.read()).await?;
        out.extend(rows.into_iter().map(|(key_id, count)| SealedCount {
            kind,
            key_id: key_id.unwrap_or_default(),
            count: u64::try_from(count).unwrap_or(0),
        }));
    }
    Ok(out)
}

/// One keyset page of a table whose rows are keyed by a text id: `query` selects
/// `(id, sealed)` given the active key id, the cursor and the limit.
async fn scan_by_id<B: Backend>(
    s: &SqlStore<B>,
    query: &'static str,
    active: &[u8],
    cursor: Option<String>,
    limit: i64,
    row: impl Fn(String) -> SealedRow,
) -> Result<Vec<SealedValue>, StoreError> {
    let rows: Vec<(String, Vec<u8>)> = sql(query)
        .bind(active)
        .bind(cursor.as_deref())
        .bind(limit)
        .fetch_all(s.read())
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, sealed)| SealedValue {
            row: row(id),
            sealed,
        })
        .collect())
}

/// See [`mfad_core::store::Store::scan_sealed`].
pub(crate) async fn scan<B: Backend>(
    s: &SqlStore<B>,
    kind: SealedKind,
    active: &[u8],
    after: Option<&SealedRow>,
    limit: u32,
) -> Result<Vec<SealedValue>, StoreError> {
    let limit = i64::from(limit);
    // A NULL cursor starts at the beginning; `CAST` types the placeholder on PostgreSQL.
    let single = |row: Option<&SealedRow>| match row {
        Some(SealedRow::Factor(id)) => Some(id.as_str().to_owned()),
        Some(SealedRow::JwtKey(id)) => Some(id.as_str().to_owned()),
        Some(SealedRow::Idempotency(id)) => Some(id.clone()),
        Some(SealedRow::WebhookEndpoint(id)) => Some(id.as_str().to_owned()),
        _ => None,
    };
    Ok(match kind {
        SealedKind::TotpSecret => {
            let q = "SELECT id, totp_secret FROM factors \
                 WHERE secret_key_id IS NOT NULL AND secret_key_id <> $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3";
            scan_by_id(s, q, active, single(after), limit, |id| {
                SealedRow::Factor(FactorId::from_trusted(id))
            })
            .await?
        }
        SealedKind::JwtSecret => {
            let q = "SELECT id, material FROM jwt_keys \
                 WHERE sealed_key_id IS NOT NULL AND sealed_key_id <> $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3";
            scan_by_id(s, q, active, single(after), limit, |id| {
                SealedRow::JwtKey(JwtKeyId::from_trusted(id))
            })
            .await?
        }
        SealedKind::IdempotentResponse => {
            let q = "SELECT id, response FROM idempotency_keys \
                 WHERE response_key_id IS NOT NULL AND response_key_id <> $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3";
            scan_by_id(s, q, active, single(after), limit, SealedRow::Idempotency).await?
        }
        SealedKind::WebhookSecret => {
            let q = "SELECT id, secret FROM webhook_endpoints \
                 WHERE secret_key_id <> $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3";
            scan_by_id(s, q, active, single(after), limit, |id| {
                SealedRow::WebhookEndpoint(WebhookEndpointId::from_trusted(id))
            })
            .await?
        }
        SealedKind::RecoveryCode => {
            let (t, u, d) = match after {
                Some(SealedRow::RecoveryCode {
                    tenant,
                    user,
                    digest,
                }) => (
                    Some(tenant.as_str()),
                    Some(user.as_str()),
                    Some(digest.as_slice()),
                ),
                _ => (None, None, None),
            };
            // Keyset order over the composite key, spelled out (row-value comparison is
            // not in every PostgreSQL-compatible database).
            let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = sql(
                "SELECT tenant_id, user_id, digest, sealed FROM recovery_codes \
                 WHERE sealed_key_id <> $1 AND (CAST($2 AS TEXT) IS NULL \
                   OR tenant_id > $2 \
                   OR (tenant_id = $2 AND user_id > $3) \
                   OR (tenant_id = $2 AND user_id = $3 AND digest > $4)) \
                 ORDER BY tenant_id, user_id, digest LIMIT $5",
            )
            .bind(active)
            .bind(t)
            .bind(u)
            .bind(d)
            .bind(limit)
            .fetch_all(s.read())
            .await?;
            rows.into_iter()
                .map(|(tenant, user, digest, sealed)| SealedValue {
                    row: SealedRow::RecoveryCode {
                        tenant: TenantId::from_trusted(tenant),
                        user: UserId::from_trusted(user),
                        digest,
                    },
                    sealed,
                })
                .collect()
        }
    })
}

/// See [`mfad_core::store::Store::replace_sealed`].
pub(crate) async fn replace<B: Backend>(
    s: &SqlStore<B>,
    old: &SealedValue,
    new: &SealedValue,
) -> Result<bool, StoreError> {
    let q = match (&old.row, &new.row) {
        (SealedRow::Factor(id), SealedRow::Factor(_)) => {
            sql("UPDATE factors SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3")
                .bind(new.sealed.as_slice())
                .bind(id.as_str())
                .bind(old.sealed.as_slice())
        }
        (SealedRow::JwtKey(id), SealedRow::JwtKey(_)) => sql(
            "UPDATE jwt_keys SET material = $1 WHERE id = $2 AND kind = 'hs256' AND material = $3",
        )
        .bind(new.sealed.as_slice())
        .bind(id.as_str())
        .bind(old.sealed.as_slice()),
        (SealedRow::Idempotency(id), SealedRow::Idempotency(_)) => {
            sql("UPDATE idempotency_keys SET response = $1 WHERE id = $2 AND response = $3")
                .bind(new.sealed.as_slice())
                .bind(id.as_str())
                .bind(old.sealed.as_slice())
        }
        (SealedRow::WebhookEndpoint(id), SealedRow::WebhookEndpoint(_)) => {
            sql("UPDATE webhook_endpoints SET secret = $1 WHERE id = $2 AND secret = $3")
                .bind(new.sealed.as_slice())
                .bind(id.as_str())
                .bind(old.sealed.as_slice())
        }
        (
            SealedRow::RecoveryCode {
                tenant,
                user,
                digest,
            },
            SealedRow::RecoveryCode {
                digest: new_digest, ..
            },
        ) => sql("UPDATE recovery_codes SET digest = $1, sealed = $2 \
             WHERE tenant_id = $3 AND user_id = $4 AND digest = $5 AND sealed = $6")
        .bind(new_digest.as_slice())
        .bind(new.sealed.as_slice())
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(digest.as_slice())
        .bind(old.sealed.as_slice()),
        _ => {
            return Err(StoreError::Other(
                "a sealed value can only be replaced by one of its own kind".into(),
            ));
        }
    };
    Ok(q.execute(s.write()).await? == 1)
}
