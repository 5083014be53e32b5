//! mfad's persistence: the [`mfad_core::store::Store`] port on SQLite (the zero-setup
//! default) and PostgreSQL (many nodes on one database).
//!
//! One generic store, `SqlStore<B: Backend>`, holds the SQL, written once for both
//! backends in one file per aggregate (`keys`, `factors`, `challenges`, `methods`, `codes`,
//! `logins`, `throttle`); each query sits beside its binds (`sql.rs`). A backend (`sqlite.rs`,
//! `postgres.rs`) only says where reads and writes go and what limits an operation runs
//! within. [`Db::connect`] picks one from the URL; the server holds it as
//! `Arc<dyn Database>`.

mod challenges;
mod codes;
mod events;
mod factors;
mod idempotency;
mod jwt_keys;
mod keys;
mod last_used;
mod lean_pool;
mod logins;
mod methods;
mod migrations;
mod postgres;
mod rows;
mod sealed;
mod send_limits;
mod sql;
mod sqlite;
mod sqlite_writer;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod verify;
mod webauthn;
mod webhooks;

use std::fmt::Debug;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use mfad_core::error::StoreError;
use mfad_core::store::Store;

pub use lean_pool::PoolStats;

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

/// A database the server can run on without knowing its backend: the [`Store`] port plus
/// the backend's own upkeep. (A trait object's methods need no import, so callers holding
/// a [`Db`] or an `Arc<dyn Database>` just call them.)
#[async_trait::async_trait]
pub trait Database: Store + Debug {
    /// Applies the embedded migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Closes every connection (on SQLite, flushing the WAL).
    async fn close(&self);

    /// The embedded migrations not applied (successfully) to the database, by version:
    /// empty when the schema is current. Readiness (`GET /ready`) asks this.
    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError>;

    /// The connection pools' gauges, for export as metrics (one entry per pool).
    fn pool_stats(&self) -> Vec<PoolStats>;
}

/// The configured database, shared: cloning it shares the connections.
#[derive(Debug, Clone)]
pub struct Db(Arc<dyn Database>);

impl Db {
    /// Opens the database named by `url` (`sqlite://…`, `postgres://…` or `postgresql://…`).
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Db, StoreError> {
        let db: Arc<dyn Database> = if url.starts_with("sqlite:") {
            Arc::new(sqlite::SqliteBackend::connect(url, opts).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(postgres::PgBackend::connect(url, opts).await?)
        } else {
            return Err(StoreError::Other(format!(
                "unsupported database URL scheme (expected sqlite:// or postgres://): {}",
                url.split(':').next().unwrap_or("")
            )));
        };
        Ok(Db(db))
    }

    /// The database as the service holds it (a [`Store`], through `Arc`).
    pub fn shared(&self) -> Arc<dyn Database> {
        self.0.clone()
    }
}

impl Deref for Db {
    type Target = Arc<dyn Database>;

    fn deref(&self) -> &Arc<dyn Database> {
        &self.0
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
