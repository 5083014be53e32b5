//! Storage of the brute-force throttle (`mfad_core::verify`): each factor's consecutive
//! failures sit on its row, read with the challenge that joins it and settled by one
//! conditional `UPDATE` (compare-and-set on the count the attempt was admitted under),
//! which also uses a TOTP step on success. The per-user count of FusionAuth's code checks
//! sits on `two_factor_users`. Also the operator's look-ups and unlocks.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::{FactorId, TenantId, UserId};
use mfad_core::model::{Factor, FailureCount, Tenant};
use mfad_core::store::Judgement;
use time::OffsetDateTime;

use crate::rows::{FactorRow, TenantRow};
use crate::sql::{Sql, sql};
use crate::store::{Backend, SqlStore};

/// Reads a stored count (`last_failure_at` 0 = none).
pub(crate) fn failure_count(failures: i64, last_failure_at: i64) -> FailureCount {
    FailureCount {
        consecutive: u32::try_from(failures).unwrap_or(u32::MAX),
        last_at: (last_failure_at != 0).then(|| from_unix_ms(last_failure_at)),
    }
}

/// Binds the count an attempt was admitted under to the next two placeholders.
fn bind_seen<'a>(q: Sql<'a>, seen: &FailureCount) -> Sql<'a> {
    q.bind(i64::from(seen.consecutive))
        .bind(seen.last_at.map_or(0, unix_ms))
}

/// The conditional `UPDATE` of [`settle_factor_attempt`]: one row changed if it settled.
pub(crate) fn settle_factor_sql<'a>(
    tenant: &'a TenantId,
    factor: &'a FactorId,
    seen: Option<&FailureCount>,
    judgement: Judgement,
    now: OffsetDateTime,
) -> Sql<'a> {
    // Binds: $1 factor id, $2 tenant, then each statement's own, then (compare-and-set)
    // the count seen. A condition cannot be switched off by a bind: one text each.
    let cas = seen.is_some();
    let q = match judgement {
        Judgement::Wrong if cas => sql(
            "UPDATE factors SET failures = failures + 1, last_failure_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND failures = $4 AND last_failure_at = $5",
        ),
        Judgement::Wrong => sql(
            "UPDATE factors SET failures = failures + 1, last_failure_at = $3 \
             WHERE id = $1 AND tenant_id = $2",
        ),
        Judgement::Right { totp_step: None } if cas => {
            sql("UPDATE factors SET failures = 0, last_failure_at = 0 \
             WHERE id = $1 AND tenant_id = $2 AND failures = $3 AND last_failure_at = $4")
        }
        Judgement::Right { totp_step: None } => {
            sql("UPDATE factors SET failures = 0, last_failure_at = 0 \
             WHERE id = $1 AND tenant_id = $2")
        }
        // A right TOTP code: clears the count and uses the step, only forwards (replay rule).
        Judgement::Right { totp_step: Some(_) } if cas => sql(
            "UPDATE factors SET failures = 0, last_failure_at = 0, totp_last_step = $3, \
             updated_at = $4 WHERE id = $1 AND tenant_id = $2 \
             AND (totp_last_step IS NULL OR totp_last_step < $3) \
             AND failures = $5 AND last_failure_at = $6",
        ),
        Judgement::Right { totp_step: Some(_) } => sql(
            "UPDATE factors SET failures = 0, last_failure_at = 0, totp_last_step = $3, \
             updated_at = $4 WHERE id = $1 AND tenant_id = $2 \
             AND (totp_last_step IS NULL OR totp_last_step < $3)",
        ),
    };
    let q = q.bind(factor.as_str()).bind(tenant.as_str());
    let q = match judgement {
        Judgement::Wrong => q.bind(unix_ms(now)),
        Judgement::Right { totp_step: None } => q,
        Judgement::Right {
            totp_step: Some(step),
        } => q.bind(step).bind(unix_ms(now)),
    };
    match seen {
        Some(c) => bind_seen(q, c),
        None => q,
    }
}

pub(crate) async fn settle_factor_attempt<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    factor: &FactorId,
    seen: Option<&FailureCount>,
    judgement: Judgement,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let q = settle_factor_sql(tenant, factor, seen, judgement, now);
    Ok(q.execute(s.write()).await? == 1)
}

pub(crate) async fn user_failures<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<FailureCount, StoreError> {
    let row: Option<(i64, i64)> = sql("SELECT failures, last_failure_at FROM two_factor_users \
         WHERE tenant_id = $1 AND user_id = $2")
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_optional(s.read())
    .await?;
    Ok(row.map_or_else(Default::default, |(n, last)| failure_count(n, last)))
}

pub(crate) async fn settle_user_attempt<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    seen: &FailureCount,
    right: bool,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    sql("INSERT INTO two_factor_users \
         (tenant_id, user_id, failures, failures_reset_at, created_at, updated_at) \
         VALUES ($1, $2, 0, 0, $3, $3) ON CONFLICT (tenant_id, user_id) DO NOTHING")
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(unix_ms(now))
    .execute(s.write())
    .await?;
    let q = if right {
        sql(
            "UPDATE two_factor_users SET failures = 0, last_failure_at = 0 \
             WHERE tenant_id = $1 AND user_id = $2 AND failures = $3 AND last_failure_at = $4",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
    } else {
        sql(
            "UPDATE two_factor_users SET failures = failures + 1, last_failure_at = $3 \
             WHERE tenant_id = $1 AND user_id = $2 AND failures = $4 AND last_failure_at = $5",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(unix_ms(now))
    };
    Ok(bind_seen(q, seen).execute(s.write()).await? == 1)
}

pub(crate) async fn find_factor<B: Backend>(
    s: &SqlStore<B>,
    id: &FactorId,
) -> Result<Option<Factor>, StoreError> {
    let row: Option<FactorRow> = sql(
        "SELECT f.id, f.tenant_id, f.user_id, f.type, f.totp_issuer, f.totp_user, \
         f.totp_algorithm, f.totp_digits, f.totp_period, f.totp_secret, f.totp_last_step, \
         f.phone_number, f.email, f.method_id, f.name, f.created_at, f.updated_at, \
         f.failures, f.last_failure_at \
         FROM factors f WHERE f.id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(s.read())
    .await?;
    row.map(TryInto::try_into).transpose()
}

pub(crate) async fn find_tenant<B: Backend>(
    s: &SqlStore<B>,
    id_or_name: &str,
) -> Result<Option<Tenant>, StoreError> {
    let row: Option<TenantRow> =
        sql("SELECT id, name, created_at FROM tenants WHERE id = $1 OR name = $1")
            .bind(id_or_name)
            .fetch_optional(s.read())
            .await?;
    Ok(row.map(Into::into))
}

pub(crate) async fn unlock_factor<B: Backend>(
    s: &SqlStore<B>,
    id: &FactorId,
    events: &[EventRecord],
) -> Result<bool, StoreError> {
    let q =
        sql("UPDATE factors SET failures = 0, last_failure_at = 0 WHERE id = $1").bind(id.as_str());
    Ok(crate::events::change(s, q, events, |n| n == 1).await? == 1)
}

pub(crate) async fn unlock_user<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
    events: &[EventRecord],
) -> Result<u64, StoreError> {
    let mut tx = s.begin().await?;
    let mut cleared = sql(
        "UPDATE two_factor_users SET failures = 0, last_failure_at = 0 \
         WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .execute(&mut tx)
    .await?;
    cleared += sql("UPDATE factors SET failures = 0, last_failure_at = 0 \
         WHERE tenant_id = $1 AND user_id = $2")
    .bind(tenant.as_str())
    .bind(user.as_str())
    .execute(&mut tx)
    .await?;
    if cleared > 0 {
        crate::events::write(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(cleared)
}
