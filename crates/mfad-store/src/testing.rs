//! Throwaway PostgreSQL databases for tests (feature `testing`). Each test creates its own
//! database through an admin URL and drops it afterwards, so test runs, and tests within
//! a run, never see each other's rows.
//!
//! ```no_run
//! # async fn t() -> Result<(), mfad_core::error::StoreError> {
//! let db = mfad_store::testing::TestDatabase::create(&mfad_store::testing::admin_url()).await?;
//! // … connect to db.url() …
//! drop(db); // the database goes, with its connections
//! # Ok(()) }
//! ```

use mfad_core::Clock;
use mfad_core::error::StoreError;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

/// The variable naming the PostgreSQL server tests use: a URL whose user may create
/// databases, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const TEST_DATABASE_URL_VAR: &str = "MFAD_TEST_DATABASE_URL";

/// The server used when [`TEST_DATABASE_URL_VAR`] is not set: PostgreSQL on its standard
/// local port with trust authentication (`scripts/ensure-postgres.sh` starts it).
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of every test database's name, so leftovers are easy to find and drop.
pub const NAME_PREFIX: &str = "mfad_test_";

/// The admin URL for PostgreSQL tests: [`TEST_DATABASE_URL_VAR`], else [`DEFAULT_URL`].
/// PostgreSQL tests are never skipped: an unreachable server fails them.
pub fn admin_url() -> String {
    std::env::var(TEST_DATABASE_URL_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// A database created for one test, dropped (with any connections still open to it) when
/// this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<TestDatabase, StoreError> {
        let ulid = mfad_core::ids::TenantId::generate(mfad_core::SystemClock.now())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let name = format!(
            "{NAME_PREFIX}{}",
            ulid.as_str()
                .trim_start_matches(mfad_core::ids::TenantId::PREFIX)
                .to_ascii_lowercase()
        );
        let mut admin = PgConnection::connect(admin_url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("test database server: {e}")))?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .map_err(crate::map_err)?;
        let _ = admin.close().await;
        Ok(TestDatabase {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// The URL of the new database (the admin URL with its database replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop is synchronous and may run on a runtime thread, so the async DROP runs on a
        // thread of its own with a private runtime; joining it makes sure the database is
        // gone before the test ends.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    // FORCE (PostgreSQL 13+) ends the test's own connections still open.
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(e) = admin.execute(sqlx::AssertSqlSafe(sql)).await {
                        eprintln!("leaving test database {name}: {e}");
                    }
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=require", "x"),
            "postgres://u:p@h/x?sslmode=require"
        );
        assert_eq!(
            with_database("postgresql://h:5432", "x"),
            "postgresql://h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
