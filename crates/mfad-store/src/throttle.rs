//! Storage of the brute-force throttle (`mfad_core::verify`): each factor's consecutive
//! failures sit on its row, read with the challenge that joins it and settled by one
//! conditional `UPDATE` (compare-and-set on the count the attempt was admitted under),
//! which also uses a TOTP step on success. The per-user count of FusionAuth's code checks
//! sits on `two_factor_users`. [`throttle_methods!`] expands inside `impl_sql_store!`,
//! so both backends share the SQL, like `two_factor.rs`.

use mfad_core::clock::from_unix_ms;
use mfad_core::model::FailureCount;

/// Reads a stored count (`last_failure_at` 0 = none).
pub(crate) fn failure_count(failures: i64, last_failure_at: i64) -> FailureCount {
    FailureCount {
        consecutive: u32::try_from(failures).unwrap_or(u32::MAX),
        last_at: (last_failure_at != 0).then(|| from_unix_ms(last_failure_at)),
    }
}

/// The stored form of a count's last failure.
pub(crate) fn last_ms(c: &FailureCount) -> i64 {
    c.last_at.map_or(0, mfad_core::clock::unix_ms)
}

// Binds: $1 factor id, $2 tenant, then each statement's own, then (`_CAS`) the count seen.
pub(crate) const COUNT_FAILURE: &str = "UPDATE factors SET failures = failures + 1, \
     last_failure_at = $3 WHERE id = $1 AND tenant_id = $2";
pub(crate) const COUNT_FAILURE_CAS: &str = "UPDATE factors SET failures = failures + 1, \
     last_failure_at = $3 WHERE id = $1 AND tenant_id = $2 AND failures = $4 AND last_failure_at = $5";
pub(crate) const CLEAR: &str =
    "UPDATE factors SET failures = 0, last_failure_at = 0 WHERE id = $1 AND tenant_id = $2";
pub(crate) const CLEAR_CAS: &str = "UPDATE factors SET failures = 0, last_failure_at = 0 \
     WHERE id = $1 AND tenant_id = $2 AND failures = $3 AND last_failure_at = $4";
/// A right TOTP code: clears the count and uses the step, only forwards (replay rule).
pub(crate) const USE_STEP: &str = "UPDATE factors SET failures = 0, last_failure_at = 0, \
     totp_last_step = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2 \
     AND (totp_last_step IS NULL OR totp_last_step < $3)";
pub(crate) const USE_STEP_CAS: &str = "UPDATE factors SET failures = 0, last_failure_at = 0, \
     totp_last_step = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2 \
     AND (totp_last_step IS NULL OR totp_last_step < $3) AND failures = $5 AND last_failure_at = $6";

pub(crate) const USER_FAILURES: &str =
    "SELECT failures, last_failure_at FROM two_factor_users WHERE tenant_id = $1 AND user_id = $2";
pub(crate) const USER_COUNT_FAILURE_CAS: &str = "UPDATE two_factor_users SET \
     failures = failures + 1, last_failure_at = $3 \
     WHERE tenant_id = $1 AND user_id = $2 AND failures = $4 AND last_failure_at = $5";
pub(crate) const USER_CLEAR_CAS: &str = "UPDATE two_factor_users SET failures = 0, \
     last_failure_at = 0 WHERE tenant_id = $1 AND user_id = $2 AND failures = $3 AND last_failure_at = $4";

pub(crate) const UNLOCK_FACTOR: &str =
    "UPDATE factors SET failures = 0, last_failure_at = 0 WHERE id = $1";
pub(crate) const UNLOCK_USER: &str = "UPDATE two_factor_users SET failures = 0, \
     last_failure_at = 0 WHERE tenant_id = $1 AND user_id = $2";
pub(crate) const UNLOCK_USER_FACTORS: &str = "UPDATE factors SET failures = 0, \
     last_failure_at = 0 WHERE tenant_id = $1 AND user_id = $2";

pub(crate) const FIND_FACTOR: &str = concat!(
    "SELECT ",
    crate::rows::factor_columns!(),
    " FROM factors f WHERE f.id = $1"
);
pub(crate) const FIND_TENANT: &str =
    "SELECT id, name, created_at FROM tenants WHERE id = $1 OR name = $1";

/// The throttle's `Store` methods, for `impl_sql_store!` to expand inside its
/// `impl Store for …` block.
macro_rules! throttle_methods {
    () => {
        async fn settle_factor_attempt(
            &self,
            tenant: &mfad_core::ids::TenantId,
            factor: &mfad_core::ids::FactorId,
            seen: Option<&mfad_core::model::FailureCount>,
            judgement: mfad_core::store::Judgement,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            use mfad_core::store::Judgement;
            use $crate::throttle as t;
            let now_ms = mfad_core::clock::unix_ms(now);
            let cas = seen.is_some();
            let query = match judgement {
                Judgement::Wrong => sqlx::query(if cas {
                    t::COUNT_FAILURE_CAS
                } else {
                    t::COUNT_FAILURE
                })
                .bind(factor.as_str())
                .bind(tenant.as_str())
                .bind(now_ms),
                Judgement::Right { totp_step: None } => {
                    sqlx::query(if cas { t::CLEAR_CAS } else { t::CLEAR })
                        .bind(factor.as_str())
                        .bind(tenant.as_str())
                }
                Judgement::Right {
                    totp_step: Some(step),
                } => sqlx::query(if cas { t::USE_STEP_CAS } else { t::USE_STEP })
                    .bind(factor.as_str())
                    .bind(tenant.as_str())
                    .bind(step)
                    .bind(now_ms),
            };
            let query = match seen {
                Some(c) => query.bind(i64::from(c.consecutive)).bind(t::last_ms(c)),
                None => query,
            };
            query
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
        }

        async fn user_failures(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
        ) -> Result<mfad_core::model::FailureCount, mfad_core::error::StoreError> {
            let row: Option<(i64, i64)> = sqlx::query_as($crate::throttle::USER_FAILURES)
                .bind(tenant.as_str())
                .bind(user.as_str())
                .fetch_optional(self.read())
                .await
                .map_err($crate::map_err)?;
            Ok(row.map_or_else(Default::default, |(n, last)| {
                $crate::throttle::failure_count(n, last)
            }))
        }

        async fn settle_user_attempt(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
            seen: &mfad_core::model::FailureCount,
            right: bool,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            use $crate::throttle as t;
            let now_ms = mfad_core::clock::unix_ms(now);
            sqlx::query($crate::two_factor::INSERT_USER_IF_NEW)
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(now_ms)
                .execute(self.write())
                .await
                .map_err($crate::map_err)?;
            let query = if right {
                sqlx::query(t::USER_CLEAR_CAS)
                    .bind(tenant.as_str())
                    .bind(user.as_str())
            } else {
                sqlx::query(t::USER_COUNT_FAILURE_CAS)
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .bind(now_ms)
            };
            query
                .bind(i64::from(seen.consecutive))
                .bind(t::last_ms(seen))
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
        }

        async fn find_factor(
            &self,
            id: &mfad_core::ids::FactorId,
        ) -> Result<Option<mfad_core::model::Factor>, mfad_core::error::StoreError> {
            let row = sqlx::query_as::<_, $crate::rows::FactorRow>($crate::throttle::FIND_FACTOR)
                .bind(id.as_str())
                .fetch_optional(self.read())
                .await
                .map_err($crate::map_err)?;
            row.map(TryInto::try_into).transpose()
        }

        async fn find_tenant(
            &self,
            id_or_name: &str,
        ) -> Result<Option<mfad_core::model::Tenant>, mfad_core::error::StoreError> {
            sqlx::query_as::<_, $crate::rows::TenantRow>($crate::throttle::FIND_TENANT)
                .bind(id_or_name)
                .fetch_optional(self.read())
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::map_err)
        }

        async fn unlock_factor(
            &self,
            id: &mfad_core::ids::FactorId,
        ) -> Result<bool, mfad_core::error::StoreError> {
            sqlx::query($crate::throttle::UNLOCK_FACTOR)
                .bind(id.as_str())
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
        }

        async fn unlock_user(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
        ) -> Result<u64, mfad_core::error::StoreError> {
            let mut tx = self.write().begin().await.map_err($crate::map_err)?;
            let mut cleared = 0;
            for sql in [
                $crate::throttle::UNLOCK_USER,
                $crate::throttle::UNLOCK_USER_FACTORS,
            ] {
                cleared += sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected();
            }
            tx.commit().await.map_err($crate::map_err)?;
            Ok(cleared)
        }
    };
}

pub(crate) use throttle_methods;
