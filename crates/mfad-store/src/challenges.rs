//! Challenges: insert, read with their factor, and the two atomic outcomes of a code check.

use mfad_core::clock::unix_ms;
use mfad_core::error::StoreError;
use mfad_core::events::EventRecord;
use mfad_core::ids::{ChallengeId, TenantId};
use mfad_core::model::{Challenge, Factor};
use mfad_core::store::{AttemptOutcome, SuccessOutcome};
use time::OffsetDateTime;

use crate::rows::{ChallengeWithFactorRow, insert_challenge};
use crate::sql::{Sql, sql};
use crate::store::{Backend, SqlStore};

pub(crate) async fn insert<B: Backend>(
    s: &SqlStore<B>,
    c: &Challenge,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    crate::events::change(s, insert_challenge(c), events, |n| n == 1)
        .await
        .map(|_| ())
}

/// The read of a challenge with its factor (columns of [`ChallengeWithFactorRow`]).
pub(crate) fn get_sql<'a>(tenant: &'a TenantId, id: &'a ChallengeId) -> Sql<'a> {
    sql(
        "SELECT c.id AS ch_id, c.tenant_id AS ch_tenant_id, c.factor_id AS ch_factor_id, \
         c.code_digest AS ch_code_digest, c.expires_at AS ch_expires_at, \
         c.attempts AS ch_attempts, c.verified_at AS ch_verified_at, \
         c.created_at AS ch_created_at, \
         f.id, f.tenant_id, f.user_id, f.type, f.totp_issuer, f.totp_user, \
         f.totp_algorithm, f.totp_digits, f.totp_period, f.totp_secret, f.totp_last_step, \
         f.phone_number, f.email, f.method_id, f.name, f.created_at, f.updated_at, \
         f.failures, f.last_failure_at \
         FROM challenges c JOIN factors f ON f.id = c.factor_id \
         WHERE c.id = $1 AND c.tenant_id = $2",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
}

pub(crate) async fn get<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &ChallengeId,
) -> Result<Option<(Challenge, Factor)>, StoreError> {
    let row: Option<ChallengeWithFactorRow> = get_sql(tenant, id).fetch_optional(s.read()).await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((r.challenge.into(), r.factor.try_into()?))),
    }
}

/// Counts one wrong code, only while the challenge is pending (one row changed).
pub(crate) fn record_failure_sql<'a>(
    tenant: &'a TenantId,
    id: &'a ChallengeId,
    max_attempts: u32,
    now: OffsetDateTime,
) -> Sql<'a> {
    sql(
        "UPDATE challenges SET attempts = attempts + 1 WHERE id = $1 AND tenant_id = $2 \
         AND verified_at IS NULL AND attempts < $3 AND expires_at > $4",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(i64::from(max_attempts))
    .bind(unix_ms(now))
}

pub(crate) async fn record_failure<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &ChallengeId,
    max_attempts: u32,
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<AttemptOutcome, StoreError> {
    let q = record_failure_sql(tenant, id, max_attempts, now);
    let n = crate::events::change(s, q, events, |n| n == 1).await?;
    Ok(if n == 1 {
        AttemptOutcome::Counted
    } else {
        AttemptOutcome::NotPending
    })
}

/// Marks the challenge verified, only while it is pending (one row changed). The TOTP
/// step is used on the factor before this closes the challenge, so this is one
/// conditional UPDATE.
pub(crate) fn record_success_sql<'a>(
    tenant: &'a TenantId,
    id: &'a ChallengeId,
    max_attempts: u32,
    now: OffsetDateTime,
) -> Sql<'a> {
    sql(
        "UPDATE challenges SET verified_at = $1 WHERE id = $2 AND tenant_id = $3 \
         AND verified_at IS NULL AND attempts < $4 AND expires_at > $1",
    )
    .bind(unix_ms(now))
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(i64::from(max_attempts))
}

pub(crate) async fn record_success<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &ChallengeId,
    max_attempts: u32,
    now: OffsetDateTime,
    events: &[EventRecord],
) -> Result<SuccessOutcome, StoreError> {
    let q = record_success_sql(tenant, id, max_attempts, now);
    let n = crate::events::change(s, q, events, |n| n == 1).await?;
    Ok(if n == 1 {
        SuccessOutcome::Verified
    } else {
        SuccessOutcome::NotPending
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::CHALLENGE_WITH_FACTOR_COLUMNS;

    #[test]
    fn the_writer_decodes_the_columns_of_get_sql_in_their_order() {
        let (tenant, id) = (
            TenantId::from_trusted("tenant_x".into()),
            ChallengeId::from_trusted("auth_challenge_x".into()),
        );
        let q = get_sql(&tenant, &id);
        let (text, _) = q.parts();
        let list = text
            .strip_prefix("SELECT ")
            .and_then(|t| t.split_once(" FROM "))
            .map(|(list, _)| list)
            .unwrap();
        let names: Vec<&str> = list
            .split(',')
            .map(|c| {
                let c = c.trim();
                let c = c.rsplit_once(" AS ").map_or(c, |(_, alias)| alias);
                c.rsplit('.').next().unwrap()
            })
            .collect();
        assert_eq!(names, CHALLENGE_WITH_FACTOR_COLUMNS);
    }
}
