//! mfad's persistence: the [`mfad_core::store::Store`] port on SQLite (the zero-setup
//! default) and PostgreSQL (many nodes on one database). [`Db`] is what the server holds;
//! it dispatches to one backend.

mod jwt_keys;
mod lean_pool;
pub mod postgres;
mod rows;
mod sql_store;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod two_factor;

use std::time::Duration;

use mfad_core::error::StoreError;
use mfad_core::ids::{ApiKeyId, ChallengeId, FactorId, JwtKeyId, TenantId};
use mfad_core::jwt_keys::JwtKey;
use mfad_core::model::{ApiKey, Challenge, Factor, Tenant};
use mfad_core::store::{AttemptOutcome, FactorScan, Store, SuccessOutcome};
use mfad_core::{LoginState, MethodId, PendingCode, RecoveryCode, Trust, UserId};
use time::OffsetDateTime;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Connection settings shared by the backends.
#[derive(Clone)]
pub struct StoreOptions {
    /// Largest read pool (SQLite) or pool (PostgreSQL).
    pub max_connections: u32,
    /// How long to wait for a connection, including opening a new one, before answering
    /// "unavailable".
    pub acquire_timeout: Duration,
    /// SQLite: fsync every commit (`FULL`) rather than at checkpoints (`NORMAL`).
    /// `NORMAL` in WAL mode loses nothing when the process is killed, only on power loss.
    pub sqlite_synchronous_full: bool,
    /// PostgreSQL: the server-side `statement_timeout` of every serving connection (not of
    /// migrations). With it, each store operation also gets a client-side deadline of
    /// `acquire_timeout + statement_timeout + 1 s`. `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL: the password, overriding any in the URL (read from a secret file).
    pub password: Option<String>,
    /// PostgreSQL: take sqlx's advisory lock while migrating, so nodes starting together on
    /// a fresh database do not race. Off only for databases without advisory locks
    /// (CockroachDB).
    pub migration_locking: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            sqlite_synchronous_full: false,
            statement_timeout: Some(Duration::from_secs(5)),
            password: None,
            migration_locking: true,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    // Hand-written so the password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("sqlite_synchronous_full", &self.sqlite_synchronous_full)
            .field("statement_timeout", &self.statement_timeout)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("migration_locking", &self.migration_locking)
            .finish()
    }
}

/// The configured database.
#[derive(Debug, Clone)]
pub enum Db {
    /// An embedded SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database, possibly shared by many nodes.
    Postgres(PgStore),
}

impl Db {
    /// Opens the database named by `url` (`sqlite://…`, `postgres://…` or `postgresql://…`).
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Db, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Db::Sqlite(SqliteStore::connect(url, opts).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Db::Postgres(PgStore::connect(url, opts).await?))
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL scheme (expected sqlite:// or postgres://): {}",
                url.split(':').next().unwrap_or("")
            )))
        }
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(s) => s.migrate().await,
            Db::Postgres(s) => s.migrate().await,
        }
    }

    /// Closes every connection (on SQLite, flushing the WAL).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(s) => s.close().await,
        }
    }
}

// `$e` awaits the backend's future; on PostgreSQL it runs inside the client-side deadline.
macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Db::Sqlite($s) => $e,
            Db::Postgres($s) => $s.within_deadline(async { $e }).await,
        }
    };
}

impl Store for Db {
    async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }
    async fn ensure_tenant(&self, t: &Tenant) -> Result<Tenant, StoreError> {
        dispatch!(self, s => s.ensure_tenant(t).await)
    }
    async fn insert_api_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_api_key(k).await)
    }
    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        dispatch!(self, s => s.get_api_key(id).await)
    }
    async fn list_api_keys(&self) -> Result<Vec<(ApiKey, Tenant)>, StoreError> {
        dispatch!(self, s => s.list_api_keys().await)
    }
    async fn revoke_api_key(&self, id: &ApiKeyId, now: OffsetDateTime) -> Result<bool, StoreError> {
        dispatch!(self, s => s.revoke_api_key(id, now).await)
    }
    async fn insert_jwt_keys(&self, keys: &[JwtKey]) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_jwt_keys(keys).await)
    }
    async fn list_jwt_keys(&self) -> Result<Vec<(JwtKey, Tenant)>, StoreError> {
        dispatch!(self, s => s.list_jwt_keys().await)
    }
    async fn delete_jwt_key(&self, id: &JwtKeyId) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_jwt_key(id).await)
    }
    async fn insert_factor(&self, f: &Factor, c: Option<&Challenge>) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_factor(f, c).await)
    }
    async fn get_factor(&self, t: &TenantId, id: &FactorId) -> Result<Option<Factor>, StoreError> {
        dispatch!(self, s => s.get_factor(t, id).await)
    }
    async fn delete_factor(&self, t: &TenantId, id: &FactorId) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_factor(t, id).await)
    }
    async fn scan_user_factors(&self, scan: FactorScan<'_>) -> Result<Vec<Factor>, StoreError> {
        dispatch!(self, s => s.scan_user_factors(scan).await)
    }
    async fn insert_challenge(&self, c: &Challenge) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_challenge(c).await)
    }
    async fn get_challenge(
        &self,
        t: &TenantId,
        id: &ChallengeId,
    ) -> Result<Option<(Challenge, Factor)>, StoreError> {
        dispatch!(self, s => s.get_challenge(t, id).await)
    }
    async fn record_failure(
        &self,
        t: &TenantId,
        id: &ChallengeId,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<AttemptOutcome, StoreError> {
        dispatch!(self, s => s.record_failure(t, id, max, now).await)
    }
    async fn record_success(
        &self,
        t: &TenantId,
        id: &ChallengeId,
        max: u32,
        now: OffsetDateTime,
        step: Option<(&FactorId, i64)>,
    ) -> Result<SuccessOutcome, StoreError> {
        dispatch!(self, s => s.record_success(t, id, max, now, step).await)
    }

    // ---- FusionAuth two-factor (SQL in `two_factor.rs`) ----------------------------

    async fn set_method_id(
        &self,
        t: &TenantId,
        f: &FactorId,
        m: &MethodId,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_method_id(t, f, m).await)
    }
    async fn rename_method(
        &self,
        t: &TenantId,
        u: &UserId,
        m: &MethodId,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.rename_method(t, u, m, name, now).await)
    }
    async fn user_known(&self, t: &TenantId, u: &UserId) -> Result<bool, StoreError> {
        dispatch!(self, s => s.user_known(t, u).await)
    }
    async fn find_users(
        &self,
        t: &TenantId,
        email: Option<&str>,
        phone: Option<&str>,
        user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        dispatch!(self, s => s.find_users(t, email, phone, user, limit).await)
    }
    async fn insert_method(
        &self,
        f: &Factor,
        codes: &[RecoveryCode],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.insert_method(f, codes, now).await)
    }
    async fn delete_methods(
        &self,
        t: &TenantId,
        u: &UserId,
        only: Option<&FactorId>,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.delete_methods(t, u, only, now).await)
    }
    async fn advance_totp_step(
        &self,
        t: &TenantId,
        f: &FactorId,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.advance_totp_step(t, f, step, now).await)
    }
    async fn reserve_user_attempt(
        &self,
        t: &TenantId,
        u: &UserId,
        limit: u32,
        window_end: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.reserve_user_attempt(t, u, limit, window_end, now).await)
    }
    async fn reset_user_attempts(&self, t: &TenantId, u: &UserId) -> Result<(), StoreError> {
        dispatch!(self, s => s.reset_user_attempts(t, u).await)
    }
    async fn replace_recovery_codes(
        &self,
        t: &TenantId,
        u: &UserId,
        codes: &[RecoveryCode],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.replace_recovery_codes(t, u, codes, now).await)
    }
    async fn recovery_codes(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> Result<Vec<RecoveryCode>, StoreError> {
        dispatch!(self, s => s.recovery_codes(t, u).await)
    }
    async fn consume_recovery_code(
        &self,
        t: &TenantId,
        u: &UserId,
        digest: &[u8],
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.consume_recovery_code(t, u, digest).await)
    }
    async fn put_code(&self, c: &PendingCode) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_code(c).await)
    }
    async fn get_code(&self, t: &TenantId, scope: &str) -> Result<Option<PendingCode>, StoreError> {
        dispatch!(self, s => s.get_code(t, scope).await)
    }
    async fn consume_code(
        &self,
        t: &TenantId,
        scope: &str,
        digest: &[u8],
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.consume_code(t, scope, digest, max, now).await)
    }
    async fn fail_code(
        &self,
        t: &TenantId,
        scope: &str,
        digest: &[u8],
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.fail_code(t, scope, digest, max, now).await)
    }
    async fn insert_login(&self, l: &LoginState) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_login(l).await)
    }
    async fn get_login(&self, id: &str) -> Result<Option<LoginState>, StoreError> {
        dispatch!(self, s => s.get_login(id).await)
    }
    async fn count_login_send(
        &self,
        id: &str,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.count_login_send(id, max, now).await)
    }
    async fn fail_login(
        &self,
        t: &TenantId,
        id: &str,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.fail_login(t, id, max, now).await)
    }
    async fn consume_login(
        &self,
        t: &TenantId,
        id: &str,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.consume_login(t, id, max, now).await)
    }
    async fn insert_trust(&self, tr: &Trust) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_trust(tr).await)
    }
    async fn get_trust(&self, id: &str) -> Result<Option<Trust>, StoreError> {
        dispatch!(self, s => s.get_trust(id).await)
    }
    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> Result<(), StoreError> {
        dispatch!(self, s => s.purge_expired(now, limit).await)
    }
}

/// Classifies a driver error: connection-level and transient failures are "unavailable"
/// (503, retry later); everything else is a bug (500).
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db)
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|pg| pg_transient(pg.code())) =>
        {
            StoreError::Unavailable(format!(
                "{} ({})",
                db.message(),
                db.code().unwrap_or_default()
            ))
        }
        sqlx::Error::Database(db)
            if db.message().contains("database is locked") || db.message().contains("busy") =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// PostgreSQL SQLSTATEs after which the same request can succeed later: the server is
/// going away, starting, overloaded or read-only (a failover in progress), the statement
/// timed out, or a transaction lost a serialisation race (CockroachDB reports contention
/// this way).
fn pg_transient(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || matches!(
            code,
            "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now (starting up, recovering)
                | "57014" // query_canceled (statement_timeout)
                | "55P03" // lock_not_available
                | "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "25006" // read_only_sql_transaction (a standby after failover)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_sqlstates_are_unavailable_others_are_not() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "57014", "40001", "40P01", "25006",
        ] {
            assert!(pg_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "XX000"] {
            assert!(!pg_transient(code), "{code}");
        }
    }

    #[test]
    fn connection_failures_map_to_unavailable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(map_err(io), StoreError::Unavailable(_)));
        assert!(matches!(
            map_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
    }

    #[test]
    fn options_debug_hides_the_password() {
        let o = StoreOptions {
            password: Some("hunter2".into()),
            ..StoreOptions::default()
        };
        let s = format!("{o:?}");
        assert!(!s.contains("hunter2") && s.contains("***"), "{s}");
    }
}
