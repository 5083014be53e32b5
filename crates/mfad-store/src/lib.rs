//! mfad's persistence: the [`mfad_core::store::Store`] port on SQLite (the zero-setup
//! default). [`Db`] is what the server holds; it dispatches to one backend.

mod rows;
mod sql_store;
pub mod sqlite;

use std::time::Duration;

use mfad_core::error::StoreError;
use mfad_core::ids::{ApiKeyId, ChallengeId, FactorId, TenantId};
use mfad_core::model::{ApiKey, Challenge, Factor, Tenant};
use mfad_core::store::{AttemptOutcome, FactorScan, Store, SuccessOutcome};
use time::OffsetDateTime;

pub use sqlite::SqliteStore;

/// Connection settings shared by the backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest read pool (SQLite) or pool (PostgreSQL).
    pub max_connections: u32,
    /// How long to wait for a connection before answering "unavailable".
    pub acquire_timeout: Duration,
    /// SQLite: fsync every commit (`FULL`) rather than at checkpoints (`NORMAL`).
    /// `NORMAL` in WAL mode loses nothing when the process is killed, only on power loss.
    pub sqlite_synchronous_full: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous_full: false,
        }
    }
}

/// The configured database.
#[derive(Debug, Clone)]
pub enum Db {
    /// An embedded SQLite file.
    Sqlite(SqliteStore),
}

impl Db {
    /// Opens the database named by `url` (`sqlite://…`).
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Db, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Db::Sqlite(SqliteStore::connect(url, opts).await?))
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL scheme (expected sqlite://): {}",
                url.split(':').next().unwrap_or("")
            )))
        }
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(s) => s.migrate().await,
        }
    }

    /// Closes every connection, flushing the WAL.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Db::Sqlite($s) => $e,
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
}

/// Classifies a driver error: connection-level failures are "unavailable" (503).
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db)
            if db.message().contains("database is locked") || db.message().contains("busy") =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ => StoreError::Other(e.to_string()),
    }
}
