//! A lean connection pool for the request path, for both backends.
//!
//! sqlx's `Pool` sends an extra round trip (a `Sync` "ping") every time a connection goes
//! back to the pool, on a spawned task. A verification runs three short statements, so
//! that doubled the round trips, and the wake-ups they cost the database and this process
//! were most of the CPU a verification used on a 2-core machine (see docs/BENCHMARKS.md).
//! This pool returns a connection without a round trip when the statement it ran finished
//! cleanly, and discards it otherwise (an I/O error, or a future dropped mid-statement by a
//! deadline or a disconnected client), so a connection in the pool is always idle and in a
//! known state. A connection that sat idle long enough to have died meanwhile (a database
//! restart, a failover, a NAT timeout) is pinged before it is lent out again.
//!
//! `&LeanPool<DB>` is an [`Executor`], and [`LeanPool::begin`] opens a transaction, so the shared
//! SQL in `sql_store.rs` runs on it exactly as on sqlx's `Pool`.
//!
//! SQLite gains as much: there sqlx's return-time ping is a round trip to the connection's
//! worker thread, two context switches per statement that this pool does not pay.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{TryStreamExt, stream};
use sqlx::{ConnectOptions, Connection, Database, Describe, Either, Error, Execute, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pooled connection idle at least this long is pinged before it is lent out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// An idle connection unused this long is closed rather than lent out (and replaced).
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A connection this old is closed when it comes back, so server-side memory and a moved
/// DNS name (after a failover) are picked up eventually.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type BoxStream<'a, T> = Pin<Box<dyn futures_core::Stream<Item = T> + Send + 'a>>;

/// The lean pool on PostgreSQL.
pub(crate) type PgPool = LeanPool<sqlx::Postgres>;

/// Up to `max_connections` connections to one database.
pub(crate) struct LeanPool<DB: Database> {
    inner: Arc<Inner<DB>>,
}

impl<DB: Database> Clone for LeanPool<DB> {
    fn clone(&self) -> Self {
        LeanPool {
            inner: self.inner.clone(),
        }
    }
}

type Options<DB> = <<DB as Database>::Connection as Connection>::Options;

struct Inner<DB: Database> {
    options: Options<DB>,
    max_connections: usize,
    acquire_timeout: Duration,
    /// [`PING_IF_IDLE_FOR`], except in tests.
    ping_if_idle_for: Duration,
    /// One permit per connection that may exist, idle or lent.
    permits: Arc<Semaphore>,
    /// Idle connections, most recently used last (so busy periods reuse warm ones).
    idle: Mutex<Vec<Idle<DB>>>,
}

struct Idle<DB: Database> {
    conn: DB::Connection,
    created: Instant,
    since: Instant,
}

impl<DB: Database> fmt::Debug for LeanPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeanPool")
            .field("max_connections", &self.inner.max_connections)
            .field("acquire_timeout", &self.inner.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> LeanPool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Opens one connection (so a wrong URL or an unreachable server fails here) and keeps
    /// it as the pool's first.
    pub(crate) async fn connect(
        options: Options<DB>,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<LeanPool<DB>, Error> {
        let max_connections = usize::try_from(max_connections.max(1)).unwrap_or(1);
        let pool = LeanPool {
            inner: Arc::new(Inner {
                options,
                max_connections,
                acquire_timeout,
                ping_if_idle_for: PING_IF_IDLE_FOR,
                permits: Arc::new(Semaphore::new(max_connections)),
                idle: Mutex::new(Vec::new()),
            }),
        };
        pool.acquire().await?.release();
        Ok(pool)
    }

    /// Lends a connection, waiting at most the acquire timeout (then `PoolTimedOut`).
    pub(crate) async fn acquire(&self) -> Result<Lent<DB>, Error> {
        tokio::time::timeout(self.inner.acquire_timeout, self.acquire_inner())
            .await
            .map_err(|_| Error::PoolTimedOut)?
    }

    async fn acquire_inner(&self) -> Result<Lent<DB>, Error> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::PoolClosed)?;
        loop {
            let idle = self.inner.lock_idle().pop();
            let Some(mut idle) = idle else {
                let conn = self.inner.options.connect().await?;
                return Ok(self.lend(conn, Instant::now(), permit));
            };
            let idle_for = idle.since.elapsed();
            if idle_for >= IDLE_TIMEOUT {
                continue; // dropped: closes the socket; the server ends the session
            }
            if idle_for >= self.inner.ping_if_idle_for && idle.conn.ping().await.is_err() {
                continue;
            }
            return Ok(self.lend(idle.conn, idle.created, permit));
        }
    }

    fn lend(
        &self,
        conn: DB::Connection,
        created: Instant,
        permit: OwnedSemaphorePermit,
    ) -> Lent<DB> {
        Lent {
            conn,
            created,
            pool: self.inner.clone(),
            _permit: permit,
        }
    }

    /// Opens a transaction on a connection of its own.
    pub(crate) async fn begin(&self) -> Result<LeanTransaction<DB>, Error> {
        let mut lent = self.acquire().await?;
        lent.conn.execute("BEGIN").await?;
        Ok(LeanTransaction { lent })
    }

    /// Stops lending and closes the idle connections (lent ones close when dropped).
    pub(crate) async fn close(&self) {
        self.inner.permits.close();
        let idle: Vec<Idle<DB>> = std::mem::take(&mut *self.inner.lock_idle());
        for i in idle {
            let _ = i.conn.close().await;
        }
    }
}

impl<DB: Database> Inner<DB> {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle<DB>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent, so a poisoned
        // lock is still usable.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A lent connection. [`Lent::release`] puts it back in the pool; dropping it instead
/// (after a failure, or when the future using it is cancelled) closes it.
pub(crate) struct Lent<DB: Database> {
    conn: DB::Connection,
    created: Instant,
    pool: Arc<Inner<DB>>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Lent<DB> {
    /// Back to the pool (unless the pool is closing or the connection is old enough to be
    /// retired). Only for a connection idle at "ready for query" outside a transaction.
    fn release(self) {
        if !self.pool.permits.is_closed() && self.created.elapsed() < MAX_LIFETIME {
            self.pool.lock_idle().push(Idle {
                conn: self.conn,
                created: self.created,
                since: Instant::now(),
            });
        }
    }

    /// Releases the connection if `result` leaves it in a known state: after success, or
    /// after an error the server reported (the protocol is then back at "ready for query");
    /// not after an I/O or protocol failure, when it is dropped and so closed.
    fn settle<T>(self, result: &Result<T, Error>) {
        if matches!(result, Ok(_) | Err(Error::Database(_))) {
            self.release();
        }
    }
}

/// A transaction on a lent connection: `&mut *tx` executes statements in it. Dropped
/// without [`commit`](Self::commit) or [`rollback`](Self::rollback), its connection is
/// closed, which makes the server roll the transaction back.
pub(crate) struct LeanTransaction<DB: Database> {
    lent: Lent<DB>,
}

impl<DB: Database> LeanTransaction<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Commits; the connection goes back to the pool.
    pub(crate) async fn commit(mut self) -> Result<(), Error> {
        let result = self.lent.conn.execute("COMMIT").await.map(|_| ());
        self.lent.settle(&result);
        result
    }

    /// Rolls back; the connection goes back to the pool.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the store's statements commit or fail; tests roll back"
        )
    )]
    pub(crate) async fn rollback(mut self) -> Result<(), Error> {
        let result = self.lent.conn.execute("ROLLBACK").await.map(|_| ());
        self.lent.settle(&result);
        result
    }
}

impl<DB: Database> std::ops::Deref for LeanTransaction<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.lent.conn
    }
}

impl<DB: Database> std::ops::DerefMut for LeanTransaction<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.lent.conn
    }
}

impl<'c, DB: Database> Executor<'c> for &'c LeanPool<DB>
where
    for<'x> &'x mut DB::Connection: Executor<'x, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        // Our statements return a handful of rows, so collecting them lets the connection
        // go back to the pool as soon as the statement is done.
        let rows = async move {
            let mut lent = self.acquire().await?;
            let result = lent.conn.fetch_many(query).try_collect::<Vec<_>>().await;
            lent.settle(&result);
            result
        };
        Box::pin(
            stream::once(rows)
                .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
                .try_flatten(),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        Box::pin(async move {
            let mut lent = self.acquire().await?;
            let result = lent.conn.fetch_optional(query).await;
            lent.settle(&result);
            result
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut lent = self.acquire().await?;
            let result = lent.conn.prepare_with(sql, parameters).await;
            lent.settle(&result);
            result
        })
    }

    fn describe<'e>(self, sql: sqlx::SqlStr) -> BoxFuture<'e, Result<Describe<DB>, Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut lent = self.acquire().await?;
            let result = lent.conn.describe(sql).await;
            lent.settle(&result);
            result
        })
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    //! Against a real server, when `MFAD_TEST_DATABASE_URL` (or `CI`) is set.
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use std::str::FromStr;

    use super::*;
    use crate::testing::{TestDatabase, admin_url_from_env};
    use sqlx::postgres::{PgConnectOptions, PgConnection};

    async fn pool(max: u32, timeout: Duration) -> Option<(PgPool, TestDatabase)> {
        let admin = admin_url_from_env()?;
        let db = TestDatabase::create(&admin).await.unwrap();
        let opts = PgConnectOptions::from_str(db.url()).unwrap();
        Some((PgPool::connect(opts, max, timeout).await.unwrap(), db))
    }

    async fn backend_pid(p: &PgPool) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(p)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_after_success_and_after_a_server_error() {
        let Some((p, _db)) = pool(1, Duration::from_secs(2)).await else {
            return;
        };
        let pid = backend_pid(&p).await;
        assert_eq!(backend_pid(&p).await, pid);
        let e = sqlx::query("SELECT * FROM no_such_table")
            .execute(&p)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Database(_)), "{e:?}");
        assert_eq!(
            backend_pid(&p).await,
            pid,
            "a server-reported error leaves it usable"
        );
    }

    #[tokio::test]
    async fn a_cancelled_statement_discards_its_connection() {
        let Some((p, _db)) = pool(1, Duration::from_secs(2)).await else {
            return;
        };
        let pid = backend_pid(&p).await;
        let slow = sqlx::query("SELECT pg_sleep(5)").execute(&p);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), slow)
                .await
                .is_err()
        );
        // The connection still busy with pg_sleep must not be lent again: a fresh one
        // answers at once.
        let started = Instant::now();
        assert_ne!(backend_pid(&p).await, pid);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_is_rolled_back() {
        let Some((p, _db)) = pool(2, Duration::from_secs(2)).await else {
            return;
        };
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&p)
            .await
            .unwrap();
        let mut tx = p.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        let mut tx = p.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = p.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let xs: Vec<i64> = sqlx::query_scalar("SELECT x FROM t")
            .fetch_all(&p)
            .await
            .unwrap();
        assert_eq!(xs, vec![2]);
    }

    #[tokio::test]
    async fn at_most_max_connections_then_a_timeout() {
        let Some((p, _db)) = pool(2, Duration::from_millis(300)).await else {
            return;
        };
        let a = p.acquire().await.unwrap();
        let _b = p.acquire().await.unwrap();
        let started = Instant::now();
        assert!(matches!(p.acquire().await, Err(Error::PoolTimedOut)));
        assert!(started.elapsed() >= Duration::from_millis(250));
        a.release();
        assert!(
            p.acquire().await.is_ok(),
            "a released connection is lent again"
        );
    }

    #[tokio::test]
    async fn a_dead_idle_connection_is_replaced_before_it_is_lent() {
        let Some((mut p, db)) = pool(1, Duration::from_secs(2)).await else {
            return;
        };
        // Ping every idle connection, as the pool does for those idle a second or more.
        Arc::get_mut(&mut p.inner).unwrap().ping_if_idle_for = Duration::ZERO;
        let pid = backend_pid(&p).await;
        let mut admin = PgConnection::connect(db.url()).await.unwrap();
        // With a timeout, pg_terminate_backend waits until the backend has exited.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(killed);
        assert_ne!(backend_pid(&p).await, pid, "replaced without an error");
    }
}
