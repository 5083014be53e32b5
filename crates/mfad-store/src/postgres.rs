//! The PostgreSQL backend: one pool (the lean pool of `lean_pool.rs`) shared by reads
//! and writes, for any number of mfad nodes on one database. Every guarantee is a
//! conditional `UPDATE` (see `challenges.rs`) whose row lock serialises concurrent callers on the server, so nothing here depends on
//! which node a request reached.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use mfad_core::error::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, Postgres};

use crate::StoreOptions;
use crate::lean_pool::LeanPool;
use crate::store::{Backend, SqlStore};

/// Leeway added to the client-side deadline of one store operation beyond the connect and
/// statement timeouts, for network round trips and a transaction's several statements.
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// A PostgreSQL (or wire-compatible) database.
#[derive(Debug)]
pub(crate) struct PgBackend {
    pool: LeanPool<Postgres>,
    acquire_timeout: Duration,
    /// Options for a dedicated migration connection: no statement timeout, so waiting for
    /// another node's migration lock or a long DDL is not cut short.
    migrate_options: PgConnectOptions,
    migration_locking: bool,
    /// The longest one store operation may take, end to end, before it is abandoned as
    /// unavailable (`None`: unbounded).
    deadline: Option<Duration>,
}

/// The store on PostgreSQL.
pub(crate) type PgStore = SqlStore<PgBackend>;

impl PgBackend {
    /// Connects to `url` (`postgres://user@host:5432/db?sslmode=require`). TLS settings
    /// (`sslmode`, `sslrootcert`, …) come from the URL; a password in `opts` overrides the
    /// URL's.
    pub(crate) async fn connect(url: &str, opts: &StoreOptions) -> Result<PgStore, StoreError> {
        let mut base = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("mfad");
        if let Some(password) = &opts.password {
            base = base.password(password);
        }
        // Statements that make a query slow (lock waits, contention) are one thing PG can
        // time out itself; a network that silently drops packets is another, which only a
        // client-side deadline catches, hence `deadline`.
        let serving = match opts.statement_timeout {
            Some(t) => base.clone().options([("statement_timeout", t.as_millis())]),
            None => base.clone(),
        };
        let pool = LeanPool::connect(serving, opts.max_connections, opts.acquire_timeout)
            .await
            .map_err(crate::map_err)?;
        let deadline = opts
            .statement_timeout
            .map(|t| opts.acquire_timeout + t + DEADLINE_SLACK);
        Ok(SqlStore::new(PgBackend {
            pool,
            acquire_timeout: opts.acquire_timeout,
            migrate_options: base,
            migration_locking: opts.migration_locking,
            deadline,
        }))
    }
}

impl Backend for PgBackend {
    type DB = Postgres;

    fn read(&self) -> &LeanPool<Postgres> {
        &self.pool
    }

    fn write(&self) -> &LeanPool<Postgres> {
        &self.pool
    }

    fn migration_versions(&self) -> Vec<i64> {
        crate::migrations::versions(&sqlx::migrate!("./migrations/postgres"))
    }

    /// Applies the embedded PostgreSQL migrations (idempotent). Runs on a connection of its
    /// own, closed afterwards, so the session-level advisory lock that serialises
    /// concurrent migrators (one per database) is released even if a migration fails.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator: Migrator = sqlx::migrate!("./migrations/postgres");
        // CockroachDB has no advisory locks; there, run `mfad migrate` once before starting
        // nodes with MFAD_AUTO_MIGRATE=false instead.
        migrator.set_locking(self.migration_locking);
        // A pool of one rather than a bare connection: `Migrator::run` on `&mut PgConnection`
        // yields a future the compiler cannot prove `Send` for every lifetime, which
        // `tokio::spawn` needs.
        let conn = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(self.migrate_options.clone())
            .await
            .map_err(crate::map_err)?;
        let result = migrator.run(&conn).await;
        conn.close().await;
        result.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    /// Runs one store operation within the client-side deadline, so an unreachable
    /// database answers "unavailable" instead of hanging the request.
    async fn guard<T: Send>(
        &self,
        op: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        match self.deadline {
            None => op.await,
            Some(d) => tokio::time::timeout(d, op).await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "no answer from the database within {} ms",
                    d.as_millis()
                )))
            }),
        }
    }
}
