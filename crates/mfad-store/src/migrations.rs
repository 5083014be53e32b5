//! Whether the database's schema is current: the embedded migrations against sqlx's
//! `_sqlx_migrations` table, for readiness. (Applying them is each backend's `migrate`.)

use mfad_core::error::StoreError;
use sqlx::migrate::Migrator;

use crate::sql::sql;
use crate::store::{Backend, SqlStore};

/// The versions a migrator would apply.
pub(crate) fn versions(m: &Migrator) -> Vec<i64> {
    m.iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect()
}

/// The `embedded` versions the database has not applied successfully. A database never
/// migrated (no `_sqlx_migrations` table) is an error of the query, which callers report.
pub(crate) async fn pending<B: Backend>(
    s: &SqlStore<B>,
    embedded: Vec<i64>,
) -> Result<Vec<i64>, StoreError> {
    let applied: Vec<(i64,)> = sql("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(s.read())
        .await?;
    let applied: std::collections::HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
    Ok(embedded
        .into_iter()
        .filter(|v| !applied.contains(v))
        .collect())
}
