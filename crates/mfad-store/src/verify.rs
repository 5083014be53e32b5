//! A verification in one store call ([`Store::verify_challenge`]): read the challenge with
//! its factor, let the engine judge them, write its settlement conditionally on what was
//! read. This is the optimistic form over the pools, for PostgreSQL (statements as
//! before: one read, then the factor's compare-and-set and the challenge's conditional
//! `UPDATE`, each its own round trip; a write that finds its condition gone makes the
//! store read and judge again). SQLite on a file runs the same statements inside one
//! transaction of its writer thread instead (`sqlite_writer.rs`).
//!
//! [`Store::verify_challenge`]: mfad_core::store::Store::verify_challenge

use mfad_core::error::StoreError;
use mfad_core::ids::{ChallengeId, TenantId};
use mfad_core::model::{Challenge, Factor};
use mfad_core::store::{ChallengeJudge, Judgement, Settlement, Verdict, Verification};
use time::OffsetDateTime;

use crate::challenges::{self, record_failure_sql, record_success_sql};
use crate::sql::Sql;
use crate::store::{Backend, SqlStore};
use crate::throttle::settle_factor_sql;

/// Times the judge is asked again after a concurrent attempt changed the rows first
/// (the engine's own bound on retries of a settlement).
pub(crate) const JUDGE_ROUNDS: usize = 16;

/// The writes of `s` on the rows judged, in order: the factor's (compare-and-set on the
/// failure count the judge saw), then the challenge's. Each must change one row.
pub(crate) fn settlement_sql<'a>(
    tenant: &'a TenantId,
    id: &'a ChallengeId,
    factor: &'a Factor,
    s: &Settlement,
    now: OffsetDateTime,
) -> (Option<Sql<'a>>, Sql<'a>) {
    let on_factor = s
        .on_factor
        .then(|| settle_factor_sql(tenant, &factor.id, Some(&factor.failures), s.judgement, now));
    let on_challenge = match s.judgement {
        Judgement::Wrong => record_failure_sql(tenant, id, s.max_attempts, now),
        Judgement::Right { .. } => record_success_sql(tenant, id, s.max_attempts, now),
    };
    (on_factor, on_challenge)
}

/// The judged answer.
pub(crate) fn judged(challenge: Challenge, factor: Factor, verdict: Verdict) -> Verification {
    Verification::Judged {
        challenge: Box::new(challenge),
        factor: Box::new(factor),
        verdict,
    }
}

pub(crate) async fn verify_challenge<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &ChallengeId,
    now: OffsetDateTime,
    mut judge: ChallengeJudge,
) -> Result<Verification, StoreError> {
    for _ in 0..JUDGE_ROUNDS {
        let Some((challenge, factor)) = challenges::get(s, tenant, id).await? else {
            return Ok(Verification::Missing);
        };
        let settlement = match judge(&challenge, &factor) {
            Verdict::Settle(settlement) => settlement,
            refused => return Ok(judged(challenge, factor, refused)),
        };
        let (on_factor, on_challenge) = settlement_sql(tenant, id, &factor, &settlement, now);
        if let Some(q) = on_factor
            && q.execute(s.write()).await? != 1
        {
            continue;
        }
        if settlement.events.is_empty() {
            if on_challenge.execute(s.write()).await? != 1 {
                continue;
            }
        } else {
            // The challenge's outcome and the verification's events, in one transaction.
            let mut tx = s.begin().await?;
            if on_challenge.execute(&mut tx).await? != 1 {
                tx.rollback().await?;
                continue;
            }
            crate::events::write(&mut tx, &settlement.events).await?;
            tx.commit().await?;
        }
        return Ok(judged(challenge, factor, Verdict::Settle(settlement)));
    }
    Ok(Verification::Contended)
}
