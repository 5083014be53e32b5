//! The SQL of the store, written once. Both backends accept `$n` placeholders and the
//! same portable subset (`ON CONFLICT`, conditional `UPDATE`, keyset scans), so
//! [`impl_sql_store!`] instantiates one body per backend; each backend only says which
//! pool reads and which writes.

/// Implements [`mfad_core::store::Store`] for `$store`, which must have `fn read(&self)` and
/// `fn write(&self)` returning a pool: a reference that is an sqlx `Executor` and has a
/// `begin()` whose transaction derefs to the connection and has `commit()`/`rollback()`
/// (sqlx's `&Pool<Sqlite>`, or the PostgreSQL backend's lean `&PgPool`).
macro_rules! impl_sql_store {
    ($store:ty) => {
        impl mfad_core::store::Store for $store {
            async fn ping(&self) -> Result<(), mfad_core::error::StoreError> {
                sqlx::query("SELECT 1")
                    .execute(self.read())
                    .await
                    .map(|_| ())
                    .map_err($crate::map_err)
            }

            async fn ensure_tenant(
                &self,
                t: &mfad_core::model::Tenant,
            ) -> Result<mfad_core::model::Tenant, mfad_core::error::StoreError> {
                sqlx::query(
                    "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(t.id.as_str())
                .bind(&t.name)
                .bind(mfad_core::clock::unix_ms(t.created_at))
                .execute(self.write())
                .await
                .map_err($crate::map_err)?;
                sqlx::query_as::<_, $crate::rows::TenantRow>(
                    "SELECT id, name, created_at FROM tenants WHERE name = $1",
                )
                .bind(&t.name)
                .fetch_one(self.write())
                .await
                .map(Into::into)
                .map_err($crate::map_err)
            }

            async fn insert_api_key(
                &self,
                k: &mfad_core::model::ApiKey,
            ) -> Result<(), mfad_core::error::StoreError> {
                sqlx::query(
                    "INSERT INTO api_keys (id, tenant_id, name, digest, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, NULL)",
                )
                .bind(k.id.as_str())
                .bind(k.tenant_id.as_str())
                .bind(&k.name)
                .bind(&k.digest)
                .bind(mfad_core::clock::unix_ms(k.created_at))
                .execute(self.write())
                .await
                .map(|_| ())
                .map_err($crate::map_err)
            }

            async fn get_api_key(
                &self,
                id: &mfad_core::ids::ApiKeyId,
            ) -> Result<Option<mfad_core::model::ApiKey>, mfad_core::error::StoreError> {
                sqlx::query_as::<_, $crate::rows::ApiKeyRow>(
                    "SELECT id, tenant_id, name, digest, created_at, revoked_at \
                     FROM api_keys WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(self.read())
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::map_err)
            }

            async fn insert_jwt_keys(
                &self,
                keys: &[mfad_core::jwt_keys::JwtKey],
            ) -> Result<(), mfad_core::error::StoreError> {
                self.jwt_keys().insert(keys).await
            }

            async fn list_jwt_keys(
                &self,
            ) -> Result<
                Vec<(mfad_core::jwt_keys::JwtKey, mfad_core::model::Tenant)>,
                mfad_core::error::StoreError,
            > {
                self.jwt_keys().list().await
            }

            async fn delete_jwt_key(
                &self,
                id: &mfad_core::ids::JwtKeyId,
            ) -> Result<bool, mfad_core::error::StoreError> {
                self.jwt_keys().delete(id).await
            }

            async fn list_api_keys(
                &self,
            ) -> Result<
                Vec<(mfad_core::model::ApiKey, mfad_core::model::Tenant)>,
                mfad_core::error::StoreError,
            > {
                let rows = sqlx::query_as::<_, $crate::rows::ApiKeyWithTenantRow>(
                    "SELECT k.id, k.tenant_id, k.name, k.digest, k.created_at, k.revoked_at, \
                     t.name AS tenant_name, t.created_at AS tenant_created_at \
                     FROM api_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.id",
                )
                .fetch_all(self.read())
                .await
                .map_err($crate::map_err)?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        let key: mfad_core::model::ApiKey = r.key.into();
                        let tenant = mfad_core::model::Tenant {
                            id: key.tenant_id.clone(),
                            name: r.tenant_name,
                            created_at: mfad_core::clock::from_unix_ms(r.tenant_created_at),
                        };
                        (key, tenant)
                    })
                    .collect())
            }

            async fn revoke_api_key(
                &self,
                id: &mfad_core::ids::ApiKeyId,
                now: time::OffsetDateTime,
            ) -> Result<bool, mfad_core::error::StoreError> {
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(mfad_core::clock::unix_ms(now))
                .bind(id.as_str())
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
            }

            async fn insert_factor(
                &self,
                f: &mfad_core::model::Factor,
                first_challenge: Option<&mfad_core::model::Challenge>,
            ) -> Result<(), mfad_core::error::StoreError> {
                let v = $crate::rows::FactorValues::from(f);
                let insert = sqlx::query($crate::rows::FACTOR_INSERT)
                    .bind(v.id)
                    .bind(v.tenant_id)
                    .bind(v.user_id)
                    .bind(v.kind)
                    .bind(v.totp_issuer)
                    .bind(v.totp_user)
                    .bind(v.totp_algorithm)
                    .bind(v.totp_digits)
                    .bind(v.totp_period)
                    .bind(v.totp_secret)
                    .bind(v.totp_last_step)
                    .bind(v.phone_number)
                    .bind(v.email)
                    .bind(v.method_id)
                    .bind(v.name)
                    .bind(v.created_at)
                    .bind(v.updated_at);
                match first_challenge {
                    None => insert
                        .execute(self.write())
                        .await
                        .map(|_| ())
                        .map_err($crate::map_err),
                    Some(c) => {
                        let mut tx = self.write().begin().await.map_err($crate::map_err)?;
                        insert.execute(&mut *tx).await.map_err($crate::map_err)?;
                        $crate::sql_store::insert_challenge_query(c)
                            .execute(&mut *tx)
                            .await
                            .map_err($crate::map_err)?;
                        tx.commit().await.map_err($crate::map_err)
                    }
                }
            }

            async fn get_factor(
                &self,
                tenant: &mfad_core::ids::TenantId,
                id: &mfad_core::ids::FactorId,
            ) -> Result<Option<mfad_core::model::Factor>, mfad_core::error::StoreError> {
                let row =
                    sqlx::query_as::<_, $crate::rows::FactorRow>($crate::sql_store::GET_FACTOR)
                        .bind(id.as_str())
                        .bind(tenant.as_str())
                        .fetch_optional(self.read())
                        .await
                        .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn delete_factor(
                &self,
                tenant: &mfad_core::ids::TenantId,
                id: &mfad_core::ids::FactorId,
            ) -> Result<bool, mfad_core::error::StoreError> {
                let mut tx = self.write().begin().await.map_err($crate::map_err)?;
                // The factor row first, then its challenges: the same lock order as
                // `record_success`, so the two cannot deadlock on PostgreSQL. The foreign
                // key cascades; the explicit DELETE keeps deletion whole even on a
                // connection where SQLite's foreign keys are off.
                let deleted = sqlx::query("DELETE FROM factors WHERE id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected();
                sqlx::query("DELETE FROM challenges WHERE factor_id = $1 AND tenant_id = $2")
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
                tx.commit().await.map_err($crate::map_err)?;
                Ok(deleted == 1)
            }

            async fn scan_user_factors(
                &self,
                scan: mfad_core::store::FactorScan<'_>,
            ) -> Result<Vec<mfad_core::model::Factor>, mfad_core::error::StoreError> {
                use $crate::sql_store::{SCAN_ASC, SCAN_ASC_AFTER, SCAN_DESC, SCAN_DESC_AFTER};
                let sql = match (scan.ascending, scan.start_after.is_some()) {
                    (true, false) => SCAN_ASC,
                    (true, true) => SCAN_ASC_AFTER,
                    (false, false) => SCAN_DESC,
                    (false, true) => SCAN_DESC_AFTER,
                };
                let query = sqlx::query_as::<_, $crate::rows::FactorRow>(sql)
                    .bind(scan.tenant_id.as_str())
                    .bind(scan.user_id.as_str());
                let query = match scan.start_after {
                    Some(cursor) => query.bind(cursor.as_str()),
                    None => query,
                };
                let rows = query
                    .bind(i64::from(scan.limit))
                    .fetch_all(self.read())
                    .await
                    .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_challenge(
                &self,
                c: &mfad_core::model::Challenge,
            ) -> Result<(), mfad_core::error::StoreError> {
                $crate::sql_store::insert_challenge_query(c)
                    .execute(self.write())
                    .await
                    .map(|_| ())
                    .map_err($crate::map_err)
            }

            async fn get_challenge(
                &self,
                tenant: &mfad_core::ids::TenantId,
                id: &mfad_core::ids::ChallengeId,
            ) -> Result<
                Option<(mfad_core::model::Challenge, mfad_core::model::Factor)>,
                mfad_core::error::StoreError,
            > {
                let row = sqlx::query_as::<_, $crate::rows::ChallengeWithFactorRow>(
                    $crate::sql_store::GET_CHALLENGE,
                )
                .bind(id.as_str())
                .bind(tenant.as_str())
                .fetch_optional(self.read())
                .await
                .map_err($crate::map_err)?;
                match row {
                    None => Ok(None),
                    Some(r) => Ok(Some((r.challenge.into(), r.factor.try_into()?))),
                }
            }

            async fn record_failure(
                &self,
                tenant: &mfad_core::ids::TenantId,
                id: &mfad_core::ids::ChallengeId,
                max_attempts: u32,
                now: time::OffsetDateTime,
            ) -> Result<mfad_core::store::AttemptOutcome, mfad_core::error::StoreError> {
                let n = sqlx::query($crate::sql_store::COUNT_FAILURE)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .bind(i64::from(max_attempts))
                    .bind(mfad_core::clock::unix_ms(now))
                    .execute(self.write())
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected();
                Ok(if n == 1 {
                    mfad_core::store::AttemptOutcome::Counted
                } else {
                    mfad_core::store::AttemptOutcome::NotPending
                })
            }

            async fn record_success(
                &self,
                tenant: &mfad_core::ids::TenantId,
                id: &mfad_core::ids::ChallengeId,
                max_attempts: u32,
                now: time::OffsetDateTime,
                totp_step: Option<(&mfad_core::ids::FactorId, i64)>,
            ) -> Result<mfad_core::store::SuccessOutcome, mfad_core::error::StoreError> {
                use mfad_core::store::SuccessOutcome;
                let now_ms = mfad_core::clock::unix_ms(now);
                let mark = sqlx::query($crate::sql_store::MARK_VERIFIED)
                    .bind(now_ms)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .bind(i64::from(max_attempts));
                let Some((factor_id, step)) = totp_step else {
                    let n = mark
                        .execute(self.write())
                        .await
                        .map_err($crate::map_err)?
                        .rows_affected();
                    return Ok(if n == 1 {
                        SuccessOutcome::Verified
                    } else {
                        SuccessOutcome::NotPending
                    });
                };
                // Both conditions or neither: the step is consumed only by a verification
                // that also closes its challenge. The conditional UPDATEs serialise on the
                // rows, so of two concurrent verifications with one code only one commits.
                let mut tx = self.write().begin().await.map_err($crate::map_err)?;
                let advanced = sqlx::query($crate::sql_store::ADVANCE_STEP)
                    .bind(step)
                    .bind(factor_id.as_str())
                    .bind(tenant.as_str())
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected();
                if advanced != 1 {
                    tx.rollback().await.map_err($crate::map_err)?;
                    return Ok(SuccessOutcome::StepAlreadyUsed);
                }
                let marked = mark
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected();
                if marked != 1 {
                    tx.rollback().await.map_err($crate::map_err)?;
                    return Ok(SuccessOutcome::NotPending);
                }
                tx.commit().await.map_err($crate::map_err)?;
                Ok(SuccessOutcome::Verified)
            }

            $crate::two_factor::two_factor_methods!();
        }
    };
}

pub(crate) use impl_sql_store;

use crate::rows::{challenge_columns, factor_columns};

pub(crate) const GET_FACTOR: &str = concat!(
    "SELECT ",
    factor_columns!(),
    " FROM factors f WHERE f.id = $1 AND f.tenant_id = $2"
);

pub(crate) const GET_CHALLENGE: &str = concat!(
    "SELECT ",
    challenge_columns!(),
    ", ",
    factor_columns!(),
    " FROM challenges c JOIN factors f ON f.id = c.factor_id WHERE c.id = $1 AND c.tenant_id = $2"
);

// Keyset scans over one user's factors. The first-page forms take (tenant, user, limit);
// the others also the exclusive cursor `$3`, before the limit. The first-page forms leave
// the cursor out rather than bind a dummy compared with itself (`$3 = $3`): PostgreSQL can
// type such a placeholder only from the driver's declared types, and the planner gains
// nothing from it.
macro_rules! scan {
    ($cursor:literal, $dir:literal, $limit:literal) => {
        concat!(
            "SELECT ",
            factor_columns!(),
            " FROM factors f WHERE f.tenant_id = $1 AND f.user_id = $2",
            $cursor,
            " ORDER BY f.id ",
            $dir,
            " LIMIT ",
            $limit
        )
    };
}
pub(crate) const SCAN_ASC: &str = scan!("", "ASC", "$3");
pub(crate) const SCAN_ASC_AFTER: &str = scan!(" AND f.id > $3", "ASC", "$4");
pub(crate) const SCAN_DESC: &str = scan!("", "DESC", "$3");
pub(crate) const SCAN_DESC_AFTER: &str = scan!(" AND f.id < $3", "DESC", "$4");

/// Counts one wrong code while the challenge is still open.
pub(crate) const COUNT_FAILURE: &str = "UPDATE challenges SET attempts = attempts + 1 \
     WHERE id = $1 AND tenant_id = $2 AND verified_at IS NULL AND attempts < $3 AND expires_at > $4";

/// Closes an open challenge as verified.
pub(crate) const MARK_VERIFIED: &str = "UPDATE challenges SET verified_at = $1 \
     WHERE id = $2 AND tenant_id = $3 AND verified_at IS NULL AND attempts < $4 AND expires_at > $1";

/// Advances a TOTP factor's last used step, only forwards.
pub(crate) const ADVANCE_STEP: &str = "UPDATE factors SET totp_last_step = $1, updated_at = $4 \
     WHERE id = $2 AND tenant_id = $3 AND (totp_last_step IS NULL OR totp_last_step < $1)";

pub(crate) fn insert_challenge_query<DB>(
    c: &mfad_core::model::Challenge,
) -> sqlx::query::Query<'_, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    use mfad_core::clock::unix_ms;
    sqlx::query(
        "INSERT INTO challenges (id, tenant_id, factor_id, code_digest, expires_at, attempts, \
         verified_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.id.as_str())
    .bind(c.tenant_id.as_str())
    .bind(c.factor_id.as_str())
    .bind(c.code_digest.as_deref())
    .bind(unix_ms(c.expires_at))
    .bind(i64::from(c.attempts))
    .bind(c.verified_at.map(unix_ms))
    .bind(unix_ms(c.created_at))
}
