//! The SQLite backend: one file, WAL journal, one writer connection and a pool of readers.
//! SQLite allows one writer at a time; funnelling writes through one connection avoids
//! "database is locked" storms, and `busy_timeout` covers other processes (the CLI).

use std::str::FromStr;

use std::future::Future;

use mfad_core::error::StoreError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreOptions;
use crate::lean_pool::LeanPool;
use crate::sqlite_writer::SqliteWriter;
use crate::store::{Backend, SqlStore};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A SQLite database file.
#[derive(Debug)]
pub(crate) struct SqliteBackend {
    read: LeanPool<Sqlite>,
    write: LeanPool<Sqlite>,
    /// Runs verifications in one visit each (none for an in-memory database, which a
    /// connection of its own would not see).
    writer: Option<SqliteWriter>,
    /// For the migration connection.
    options: SqliteConnectOptions,
}

/// The store on a SQLite file.
pub(crate) type SqliteStore = SqlStore<SqliteBackend>;

impl SqliteBackend {
    /// Opens (creating if missing) the database at `url` (`sqlite:///abs.db`, `sqlite://rel.db`).
    pub(crate) async fn connect(url: &str, opts: &StoreOptions) -> Result<SqliteStore, StoreError> {
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
        // The lean pool (see `lean_pool.rs`): sqlx's pool would ping the connection's
        // worker thread before and after every statement, tripling the thread hand-offs.
        let write = LeanPool::connect(base.clone(), 1, opts.acquire_timeout)
            .await
            .map_err(crate::map_err)?;
        let read = LeanPool::connect(
            base.clone(),
            opts.max_connections.max(1),
            opts.acquire_timeout,
        )
        .await
        .map_err(crate::map_err)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = match in_memory {
            true => None,
            false => Some(SqliteWriter::open(
                base.get_filename(),
                opts.sqlite_synchronous_full,
            )?),
        };
        Ok(SqlStore::new(SqliteBackend {
            read,
            write,
            writer,
            options: base,
        }))
    }
}

impl Backend for SqliteBackend {
    type DB = Sqlite;

    fn read(&self) -> &LeanPool<Sqlite> {
        &self.read
    }

    fn write(&self) -> &LeanPool<Sqlite> {
        &self.write
    }

    fn writer(&self) -> Option<&SqliteWriter> {
        self.writer.as_ref()
    }

    fn guard<T: Send>(
        &self,
        op: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        // A local file: `busy_timeout` bounds the only wait.
        op
    }

    fn migration_versions(&self) -> Vec<i64> {
        crate::migrations::versions(&MIGRATOR)
    }

    /// Applies the embedded SQLite migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError> {
        // A pool of one connection of its own (sqlx's migrator takes a pool), closed after.
        let conn = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone())
            .await
            .map_err(crate::map_err)?;
        let result = MIGRATOR
            .run(&conn)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")));
        conn.close().await;
        result
    }
}
