//! The SQLite backend: one file, WAL journal, one writer connection and a pool of readers.
//! SQLite allows one writer at a time; funnelling writes through one connection avoids
//! "database is locked" storms, and `busy_timeout` covers other processes (the CLI).

use std::str::FromStr;

use mfad_core::error::StoreError;
use sqlx::Pool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreOptions;
use crate::sql_store::impl_sql_store;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: Pool<Sqlite>,
    write: Pool<Sqlite>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite:///abs.db`, `sqlite://rel.db`).
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if opts.sqlite_synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(std::time::Duration::from_secs(5))
            .foreign_keys(true);
        // No ping before each query: a SQLite connection is a file handle in this process,
        // and the ping would double the round trips to the connection's worker thread.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone())
            .await
            .map_err(crate::map_err)?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base)
            .await
            .map_err(crate::map_err)?;
        Ok(SqliteStore { read, write })
    }

    /// Applies the embedded SQLite migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    fn read(&self) -> &Pool<Sqlite> {
        &self.read
    }

    fn write(&self) -> &Pool<Sqlite> {
        &self.write
    }
}

impl_sql_store!(SqliteStore);
