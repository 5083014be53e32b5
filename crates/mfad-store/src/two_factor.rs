//! Storage for the FusionAuth Two Factor API: methods (factors filed under a user),
//! recovery codes, one-time codes, logins in progress and trusted computers. Like
//! `sql_store`, the SQL is written once in the portable subset; [`two_factor_methods!`]
//! expands inside `impl_sql_store!`, so both backends get the same bodies.

use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::ids::{TenantId, UserId};
use mfad_core::model::{LoginState, PendingCode, RecoveryCode, Trust};

/// The factor types that are FusionAuth methods, as an SQL list.
macro_rules! method_types {
    () => {
        "('totp', 'sms', 'email')"
    };
}

/// Records the user (or touches it), taking its row lock first in a transaction so
/// concurrent changes to one user's methods run one after the other.
pub(crate) const UPSERT_USER: &str = "INSERT INTO two_factor_users \
     (tenant_id, user_id, failures, failures_reset_at, created_at, updated_at) \
     VALUES ($1, $2, 0, 0, $3, $3) \
     ON CONFLICT (tenant_id, user_id) DO UPDATE SET updated_at = excluded.updated_at";

pub(crate) const COUNT_METHODS: &str = concat!(
    "SELECT COUNT(*) FROM factors WHERE tenant_id = $1 AND user_id = $2 AND type IN ",
    method_types!()
);

pub(crate) const METHOD_IDS: &str = concat!(
    "SELECT id FROM factors WHERE tenant_id = $1 AND user_id = $2 AND type IN ",
    method_types!()
);

pub(crate) const DELETE_METHOD: &str = concat!(
    "DELETE FROM factors WHERE id = $1 AND tenant_id = $2 AND user_id = $3 AND type IN ",
    method_types!()
);

pub(crate) const RENAME_METHOD: &str = concat!(
    "UPDATE factors SET name = $1, updated_at = $2 \
     WHERE tenant_id = $3 AND user_id = $4 AND method_id = $5 AND type IN ",
    method_types!()
);

pub(crate) const INSERT_USER_IF_NEW: &str = "INSERT INTO two_factor_users \
     (tenant_id, user_id, failures, failures_reset_at, created_at, updated_at) \
     VALUES ($1, $2, 0, 0, $3, $3) ON CONFLICT (tenant_id, user_id) DO NOTHING";

pub(crate) const PUT_CODE: &str = "INSERT INTO two_factor_codes \
     (tenant_id, scope, user_id, digest, payload, expires_at, attempts, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 0, $7) \
     ON CONFLICT (tenant_id, scope) DO UPDATE SET user_id = excluded.user_id, \
     digest = excluded.digest, payload = excluded.payload, expires_at = excluded.expires_at, \
     attempts = 0, created_at = excluded.created_at";

pub(crate) const CONSUME_CODE: &str = "DELETE FROM two_factor_codes \
     WHERE tenant_id = $1 AND scope = $2 AND digest = $3 AND attempts < $4 AND expires_at > $5";

pub(crate) const FAIL_CODE: &str = "UPDATE two_factor_codes SET attempts = attempts + 1 \
     WHERE tenant_id = $1 AND scope = $2 AND digest = $3 AND attempts < $4 AND expires_at > $5";

pub(crate) const FAIL_LOGIN: &str = "UPDATE two_factor_logins SET attempts = attempts + 1 \
     WHERE id = $1 AND tenant_id = $2 AND attempts < $3 AND expires_at > $4";

/// Deletes a login that has used up its attempts or its time.
pub(crate) const CLOSE_SPENT_LOGIN: &str = "DELETE FROM two_factor_logins \
     WHERE id = $1 AND tenant_id = $2 AND (attempts >= $3 OR expires_at <= $4)";

pub(crate) const CONSUME_LOGIN: &str = "DELETE FROM two_factor_logins \
     WHERE id = $1 AND tenant_id = $2 AND attempts < $3 AND expires_at > $4";

pub(crate) const DELETE_SCOPE_CODE: &str =
    "DELETE FROM two_factor_codes WHERE tenant_id = $1 AND scope = $2";

// Expired rows are purged a few at a time, on the request path, through the expiry
// indexes; `LIMIT` inside `IN (SELECT …)` is the portable bounded DELETE.
pub(crate) const PURGE_LOGINS: &str = "DELETE FROM two_factor_logins WHERE id IN \
     (SELECT id FROM two_factor_logins WHERE expires_at <= $1 LIMIT $2)";
pub(crate) const PURGE_TRUSTS: &str = "DELETE FROM two_factor_trusts WHERE id IN \
     (SELECT id FROM two_factor_trusts WHERE expires_at <= $1 LIMIT $2)";
pub(crate) const PURGE_CODES: &str = "DELETE FROM two_factor_codes WHERE (tenant_id, scope) IN \
     (SELECT tenant_id, scope FROM two_factor_codes WHERE expires_at <= $1 LIMIT $2)";

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

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PendingCodeRow {
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

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LoginRow {
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
pub(crate) struct TrustRow {
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

/// The factor insert with every value bound (shared by both backends).
pub(crate) fn insert_factor_query<'a, DB>(
    v: &crate::rows::FactorValues<'a>,
) -> sqlx::query::Query<'a, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a [u8]>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    sqlx::query(crate::rows::FACTOR_INSERT)
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
        .bind(v.updated_at)
}

/// Milliseconds, for binding.
pub(crate) fn ms(t: time::OffsetDateTime) -> i64 {
    unix_ms(t)
}

/// The `Store` methods of the FusionAuth API, for `impl_sql_store!` to expand inside its
/// `impl Store for …` block (so `self.read()` and `self.write()` are the backend's pools).
macro_rules! two_factor_methods {
    () => {
        async fn rename_method(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
            method_id: &mfad_core::ids::MethodId,
            name: Option<&str>,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            sqlx::query($crate::two_factor::RENAME_METHOD)
                .bind(name)
                .bind($crate::two_factor::ms(now))
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(method_id.as_str())
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
        }

        async fn user_known(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
        ) -> Result<bool, mfad_core::error::StoreError> {
            let seen: Option<(String,)> = sqlx::query_as(
                "SELECT user_id FROM two_factor_users WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_optional(self.read())
            .await
            .map_err($crate::map_err)?;
            if seen.is_some() {
                return Ok(true);
            }
            let factor: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM factors WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_optional(self.read())
            .await
            .map_err($crate::map_err)?;
            Ok(factor.is_some())
        }

        async fn find_users(
            &self,
            tenant: &mfad_core::ids::TenantId,
            email: Option<&str>,
            phone: Option<&str>,
            user_id: Option<&mfad_core::ids::UserId>,
            limit: u32,
        ) -> Result<Vec<mfad_core::ids::UserId>, mfad_core::error::StoreError> {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT user_id FROM factors WHERE tenant_id = $1 \
                 AND user_id IS NOT NULL AND (email = $2 OR phone_number = $3 OR user_id = $4) \
                 ORDER BY user_id LIMIT $5",
            )
            .bind(tenant.as_str())
            .bind(email)
            .bind(phone)
            .bind(user_id.map(mfad_core::ids::UserId::as_str))
            .bind(i64::from(limit))
            .fetch_all(self.read())
            .await
            .map_err($crate::map_err)?;
            Ok(rows
                .into_iter()
                .map(|(u,)| mfad_core::ids::UserId::from_trusted(u))
                .collect())
        }

        async fn insert_method(
            &self,
            method: &mfad_core::model::Factor,
            recovery: &[mfad_core::model::RecoveryCode],
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            use $crate::two_factor::ms;
            let Some(user) = method.user_id.as_ref() else {
                return Err(mfad_core::error::StoreError::Other(
                    "a two-factor method must belong to a user".into(),
                ));
            };
            let tenant = method.tenant_id.as_str();
            let mut tx = self.write().begin().await.map_err($crate::map_err)?;
            sqlx::query($crate::two_factor::UPSERT_USER)
                .bind(tenant)
                .bind(user.as_str())
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            let (before,): (i64,) = sqlx::query_as($crate::two_factor::COUNT_METHODS)
                .bind(tenant)
                .bind(user.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            let values = $crate::rows::FactorValues::from(method);
            $crate::two_factor::insert_factor_query(&values)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            let first = before == 0;
            if first {
                sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant)
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
                for code in recovery {
                    sqlx::query(
                        "INSERT INTO recovery_codes (tenant_id, user_id, digest, sealed, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(tenant)
                    .bind(user.as_str())
                    .bind(code.digest.as_slice())
                    .bind(code.sealed.as_slice())
                    .bind(ms(code.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
                }
            }
            tx.commit().await.map_err($crate::map_err)?;
            Ok(first && !recovery.is_empty())
        }

        async fn delete_methods(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
            only: Option<&mfad_core::ids::FactorId>,
            now: time::OffsetDateTime,
        ) -> Result<u64, mfad_core::error::StoreError> {
            let mut tx = self.write().begin().await.map_err($crate::map_err)?;
            sqlx::query($crate::two_factor::UPSERT_USER)
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind($crate::two_factor::ms(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            let ids: Vec<String> = match only {
                Some(id) => vec![id.as_str().to_owned()],
                None => sqlx::query_as::<_, (String,)>($crate::two_factor::METHOD_IDS)
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .into_iter()
                    .map(|(id,)| id)
                    .collect(),
            };
            let mut deleted = 0;
            // Factor rows before their challenges: the lock order of `record_success`.
            for id in &ids {
                deleted += sqlx::query($crate::two_factor::DELETE_METHOD)
                    .bind(id.as_str())
                    .bind(tenant.as_str())
                    .bind(user.as_str())
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
            }
            let (left,): (i64,) = sqlx::query_as($crate::two_factor::COUNT_METHODS)
                .bind(tenant.as_str())
                .bind(user.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            if left == 0 {
                sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
            }
            tx.commit().await.map_err($crate::map_err)?;
            Ok(deleted)
        }

        async fn replace_recovery_codes(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
            codes: &[mfad_core::model::RecoveryCode],
            now: time::OffsetDateTime,
        ) -> Result<(), mfad_core::error::StoreError> {
            use $crate::two_factor::ms;
            let mut tx = self.write().begin().await.map_err($crate::map_err)?;
            sqlx::query($crate::two_factor::UPSERT_USER)
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.as_str())
                .bind(user.as_str())
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            for code in codes {
                sqlx::query(
                    "INSERT INTO recovery_codes (tenant_id, user_id, digest, sealed, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(code.digest.as_slice())
                .bind(code.sealed.as_slice())
                .bind(ms(code.created_at))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            }
            tx.commit().await.map_err($crate::map_err)
        }

        async fn recovery_codes(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
        ) -> Result<Vec<mfad_core::model::RecoveryCode>, mfad_core::error::StoreError> {
            let rows = sqlx::query_as::<_, $crate::two_factor::RecoveryCodeRow>(
                "SELECT digest, sealed, created_at FROM recovery_codes \
                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY digest",
            )
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_all(self.read())
            .await
            .map_err($crate::map_err)?;
            Ok(rows.into_iter().map(Into::into).collect())
        }

        async fn consume_recovery_code(
            &self,
            tenant: &mfad_core::ids::TenantId,
            user: &mfad_core::ids::UserId,
            digest: &[u8],
        ) -> Result<bool, mfad_core::error::StoreError> {
            sqlx::query(
                "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND digest = $3",
            )
            .bind(tenant.as_str())
            .bind(user.as_str())
            .bind(digest)
            .execute(self.write())
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err($crate::map_err)
        }

        async fn put_code(
            &self,
            code: &mfad_core::model::PendingCode,
        ) -> Result<(), mfad_core::error::StoreError> {
            use $crate::two_factor::ms;
            sqlx::query($crate::two_factor::PUT_CODE)
                .bind(code.tenant_id.as_str())
                .bind(code.scope.as_str())
                .bind(code.user_id.as_ref().map(mfad_core::ids::UserId::as_str))
                .bind(code.digest.as_slice())
                .bind(code.payload.as_deref())
                .bind(ms(code.expires_at))
                .bind(ms(code.created_at))
                .execute(self.write())
                .await
                .map(|_| ())
                .map_err($crate::map_err)
        }

        async fn get_code(
            &self,
            tenant: &mfad_core::ids::TenantId,
            scope: &str,
        ) -> Result<Option<mfad_core::model::PendingCode>, mfad_core::error::StoreError> {
            let row = sqlx::query_as::<_, $crate::two_factor::PendingCodeRow>(
                "SELECT tenant_id, scope, user_id, digest, payload, expires_at, attempts, created_at \
                 FROM two_factor_codes WHERE tenant_id = $1 AND scope = $2",
            )
            .bind(tenant.as_str())
            .bind(scope)
            .fetch_optional(self.read())
            .await
            .map_err($crate::map_err)?;
            Ok(row.map(Into::into))
        }

        async fn consume_code(
            &self,
            tenant: &mfad_core::ids::TenantId,
            scope: &str,
            digest: &[u8],
            max_attempts: u32,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            sqlx::query($crate::two_factor::CONSUME_CODE)
                .bind(tenant.as_str())
                .bind(scope)
                .bind(digest)
                .bind(i64::from(max_attempts))
                .bind($crate::two_factor::ms(now))
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
        }

        async fn fail_code(
            &self,
            tenant: &mfad_core::ids::TenantId,
            scope: &str,
            digest: &[u8],
            max_attempts: u32,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            sqlx::query($crate::two_factor::FAIL_CODE)
                .bind(tenant.as_str())
                .bind(scope)
                .bind(digest)
                .bind(i64::from(max_attempts))
                .bind($crate::two_factor::ms(now))
                .execute(self.write())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err($crate::map_err)
        }

        async fn insert_login(
            &self,
            login: &mfad_core::model::LoginState,
        ) -> Result<(), mfad_core::error::StoreError> {
            use $crate::two_factor::ms;
            sqlx::query(
                "INSERT INTO two_factor_logins (id, tenant_id, user_id, application_id, state, \
                 expires_at, attempts, sends, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(login.id_digest.as_str())
            .bind(login.tenant_id.as_str())
            .bind(login.user_id.as_str())
            .bind(login.application_id.as_deref())
            .bind(login.state.as_deref())
            .bind(ms(login.expires_at))
            .bind(i64::from(login.attempts))
            .bind(i64::from(login.sends))
            .bind(ms(login.created_at))
            .execute(self.write())
            .await
            .map(|_| ())
            .map_err($crate::map_err)
        }

        async fn get_login(
            &self,
            id_digest: &str,
        ) -> Result<Option<mfad_core::model::LoginState>, mfad_core::error::StoreError> {
            let row = sqlx::query_as::<_, $crate::two_factor::LoginRow>(
                "SELECT id, tenant_id, user_id, application_id, state, expires_at, attempts, \
                 sends, created_at FROM two_factor_logins WHERE id = $1",
            )
            .bind(id_digest)
            .fetch_optional(self.read())
            .await
            .map_err($crate::map_err)?;
            Ok(row.map(Into::into))
        }

        async fn count_login_send(
            &self,
            id_digest: &str,
            max_sends: u32,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            sqlx::query(
                "UPDATE two_factor_logins SET sends = sends + 1 \
                 WHERE id = $1 AND sends < $2 AND expires_at > $3",
            )
            .bind(id_digest)
            .bind(i64::from(max_sends))
            .bind($crate::two_factor::ms(now))
            .execute(self.write())
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err($crate::map_err)
        }

        async fn fail_login(
            &self,
            tenant: &mfad_core::ids::TenantId,
            id_digest: &str,
            max_attempts: u32,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            use $crate::two_factor::ms;
            let mut tx = self.write().begin().await.map_err($crate::map_err)?;
            let counted = sqlx::query($crate::two_factor::FAIL_LOGIN)
                .bind(id_digest)
                .bind(tenant.as_str())
                .bind(i64::from(max_attempts))
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .rows_affected();
            let closed = sqlx::query($crate::two_factor::CLOSE_SPENT_LOGIN)
                .bind(id_digest)
                .bind(tenant.as_str())
                .bind(i64::from(max_attempts))
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .rows_affected();
            if closed > 0 {
                sqlx::query($crate::two_factor::DELETE_SCOPE_CODE)
                    .bind(tenant.as_str())
                    .bind(mfad_core::model::LoginState::code_scope(id_digest))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
            }
            tx.commit().await.map_err($crate::map_err)?;
            Ok(counted == 1 && closed == 0)
        }

        async fn consume_login(
            &self,
            tenant: &mfad_core::ids::TenantId,
            id_digest: &str,
            max_attempts: u32,
            now: time::OffsetDateTime,
        ) -> Result<bool, mfad_core::error::StoreError> {
            let mut tx = self.write().begin().await.map_err($crate::map_err)?;
            let consumed = sqlx::query($crate::two_factor::CONSUME_LOGIN)
                .bind(id_digest)
                .bind(tenant.as_str())
                .bind(i64::from(max_attempts))
                .bind($crate::two_factor::ms(now))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .rows_affected();
            sqlx::query($crate::two_factor::DELETE_SCOPE_CODE)
                .bind(tenant.as_str())
                .bind(mfad_core::model::LoginState::code_scope(id_digest))
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
            tx.commit().await.map_err($crate::map_err)?;
            Ok(consumed == 1)
        }

        async fn insert_trust(
            &self,
            trust: &mfad_core::model::Trust,
        ) -> Result<(), mfad_core::error::StoreError> {
            use $crate::two_factor::ms;
            sqlx::query(
                "INSERT INTO two_factor_trusts (id, tenant_id, user_id, application_id, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(trust.id_digest.as_str())
            .bind(trust.tenant_id.as_str())
            .bind(trust.user_id.as_str())
            .bind(trust.application_id.as_deref())
            .bind(ms(trust.created_at))
            .bind(ms(trust.expires_at))
            .execute(self.write())
            .await
            .map(|_| ())
            .map_err($crate::map_err)
        }

        async fn get_trust(
            &self,
            id_digest: &str,
        ) -> Result<Option<mfad_core::model::Trust>, mfad_core::error::StoreError> {
            let row = sqlx::query_as::<_, $crate::two_factor::TrustRow>(
                "SELECT id, tenant_id, user_id, application_id, created_at, expires_at \
                 FROM two_factor_trusts WHERE id = $1",
            )
            .bind(id_digest)
            .fetch_optional(self.read())
            .await
            .map_err($crate::map_err)?;
            Ok(row.map(Into::into))
        }

        async fn purge_expired(
            &self,
            now: time::OffsetDateTime,
            limit: u32,
        ) -> Result<(), mfad_core::error::StoreError> {
            for sql in [
                $crate::two_factor::PURGE_LOGINS,
                $crate::two_factor::PURGE_TRUSTS,
                $crate::two_factor::PURGE_CODES,
            ] {
                sqlx::query(sql)
                    .bind($crate::two_factor::ms(now))
                    .bind(i64::from(limit))
                    .execute(self.write())
                    .await
                    .map_err($crate::map_err)?;
            }
            Ok(())
        }
    };
}

pub(crate) use two_factor_methods;
