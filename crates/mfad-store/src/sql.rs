//! Statements as plain values: SQL text with its binds beside it, run on a pool or inside a
//! transaction of either backend.
//!
//! ```text
//! sql("UPDATE challenges SET attempts = attempts + 1 WHERE id = $1")
//!     .bind(id.as_str())
//!     .execute(self.write())
//!     .await?
//! ```
//!
//! Both backends accept `$n` placeholders and the same portable subset (`ON CONFLICT`,
//! conditional `UPDATE`, keyset scans), so store code is written once over [`SqlDb`]. Binds
//! are a closed set of column types ([`Arg`]), which keeps sqlx's per-type trait bounds in
//! the two `SqlDb` impls below instead of on every generic function of the store.

use std::future::Future;

use mfad_core::error::StoreError;
use sqlx::postgres::{PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Database, Encode, FromRow, Type};

use crate::lean_pool::{LeanPool, LeanTransaction};
use crate::map_err;

/// One bound value. Every column mfad stores is text, a 64-bit integer or bytes, each
/// possibly NULL.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bytes(Option<&'a [u8]>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Arg::Bytes(v)
    }
}

/// A statement: static SQL text and its binds, in placeholder order.
#[derive(Debug)]
pub(crate) struct Sql<'a> {
    text: &'static str,
    args: Vec<Arg<'a>>,
}

/// Starts a statement.
pub(crate) fn sql<'a>(text: &'static str) -> Sql<'a> {
    Sql {
        text,
        args: Vec::new(),
    }
}

impl<'a> Sql<'a> {
    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Its text and binds (for the SQLite writer thread, which runs it synchronously).
    pub(crate) fn parts(&self) -> (&'static str, &[Arg<'a>]) {
        (self.text, &self.args)
    }

    /// Runs it; the number of rows it changed.
    pub(crate) async fn execute<'e, DB: SqlDb>(
        self,
        on: impl Into<On<'e, DB>>,
    ) -> Result<u64, StoreError> {
        match on.into() {
            On::Pool(pool) => {
                let mut lent = pool.acquire().await.map_err(map_err)?;
                let result = lent.execute(self).await;
                lent.settle(&result);
                result
            }
            On::Tx(tx) => tx.execute(self).await,
        }
        .map_err(map_err)
    }

    /// Runs it; every row it returned.
    pub(crate) async fn fetch_all<'e, R: Decode, DB: SqlDb>(
        self,
        on: impl Into<On<'e, DB>>,
    ) -> Result<Vec<R>, StoreError> {
        match on.into() {
            On::Pool(pool) => {
                let mut lent = pool.acquire().await.map_err(map_err)?;
                let result = lent.fetch_all(self).await;
                lent.settle(&result);
                result
            }
            On::Tx(tx) => tx.fetch_all(self).await,
        }
        .map_err(map_err)
    }

    /// Runs it; its first row, if any (our queries select by key: at most one).
    pub(crate) async fn fetch_optional<'e, R: Decode, DB: SqlDb>(
        self,
        on: impl Into<On<'e, DB>>,
    ) -> Result<Option<R>, StoreError> {
        Ok(self.fetch_all(on).await?.into_iter().next())
    }

    /// Runs it; its one row (an aggregate such as `COUNT(*)`).
    pub(crate) async fn fetch_one<'e, R: Decode, DB: SqlDb>(
        self,
        on: impl Into<On<'e, DB>>,
    ) -> Result<R, StoreError> {
        self.fetch_optional(on).await?.ok_or_else(|| {
            StoreError::Other("a query that always returns a row returned none".into())
        })
    }
}

/// Where a statement runs: on a pool (a connection lent for that statement alone) or in an
/// open transaction.
pub(crate) enum On<'e, DB: SqlDb> {
    Pool(&'e LeanPool<DB>),
    Tx(&'e mut LeanTransaction<DB>),
}

impl<'e, DB: SqlDb> From<&'e LeanPool<DB>> for On<'e, DB> {
    fn from(p: &'e LeanPool<DB>) -> Self {
        On::Pool(p)
    }
}

impl<'e, DB: SqlDb> From<&'e mut LeanTransaction<DB>> for On<'e, DB> {
    fn from(tx: &'e mut LeanTransaction<DB>) -> Self {
        On::Tx(tx)
    }
}

/// A row shape both backends can decode (`#[derive(sqlx::FromRow)]` or a tuple).
pub(crate) trait Decode:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Decode for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A database sqlx drives and mfad's SQL runs on: the dialect's few differences and how a
/// statement runs on one of its connections.
pub(crate) trait SqlDb: Database {
    /// Opens a transaction. SQLite's `BEGIN IMMEDIATE` takes the write lock at once, so a
    /// transaction never fails halfway on a lock it could not upgrade.
    const BEGIN: &'static str;

    /// Whether a `WITH` clause may hold an `INSERT … RETURNING` (PostgreSQL's
    /// data-modifying CTEs; SQLite has none), so two dependent writes are one round trip.
    const WRITES_IN_WITH: bool;

    /// Runs `q` on `conn`; the number of rows it changed.
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        q: Sql<'c>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Runs `q` on `conn`; its rows.
    fn fetch_all<'c, R: Decode>(
        conn: &'c mut Self::Connection,
        q: Sql<'c>,
    ) -> impl Future<Output = Result<Vec<R>, sqlx::Error>> + Send;
}

/// `q` as an sqlx query with its binds applied.
fn query<'a, DB>(q: Sql<'a>) -> sqlx::query::Query<'a, DB, <DB as Database>::Arguments>
where
    DB: Database,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    Option<&'a [u8]>: Encode<'a, DB> + Type<DB>,
{
    q.args
        .into_iter()
        .fold(sqlx::query(q.text), |query, arg| match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Bytes(v) => query.bind(v),
        })
}

impl SqlDb for Sqlite {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const WRITES_IN_WITH: bool = false;

    async fn execute<'c>(conn: &'c mut Self::Connection, q: Sql<'c>) -> Result<u64, sqlx::Error> {
        Ok(query(q).execute(conn).await?.rows_affected())
    }

    async fn fetch_all<'c, R: Decode>(
        conn: &'c mut Self::Connection,
        q: Sql<'c>,
    ) -> Result<Vec<R>, sqlx::Error> {
        query(q)
            .fetch_all(conn)
            .await?
            .iter()
            .map(R::from_row)
            .collect()
    }
}

impl SqlDb for Postgres {
    const BEGIN: &'static str = "BEGIN";
    const WRITES_IN_WITH: bool = true;

    async fn execute<'c>(conn: &'c mut Self::Connection, q: Sql<'c>) -> Result<u64, sqlx::Error> {
        Ok(query(q).execute(conn).await?.rows_affected())
    }

    async fn fetch_all<'c, R: Decode>(
        conn: &'c mut Self::Connection,
        q: Sql<'c>,
    ) -> Result<Vec<R>, sqlx::Error> {
        query(q)
            .fetch_all(conn)
            .await?
            .iter()
            .map(R::from_row)
            .collect()
    }
}
