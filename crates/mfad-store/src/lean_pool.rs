//! A lean connection pool for the request path, for both backends.
//!
//! sqlx's `Pool` sends an extra round trip (a `Sync` "ping") every time a connection goes
//! back to the pool, on a spawned task. A verification runs three short statements, so
//! that doubled the round trips, and the wake-ups they cost the database and this process
//! were most of the CPU a verification used on a 2-core machine (see docs/BENCHMARKS.md).
//! On SQLite that ping is a round trip to the connection's worker thread: two context
//! switches per statement that this pool does not pay.
//!
//! What it decides:
//! - **Return.** A connection whose statement finished cleanly (or failed with an error the
//!   server reported) goes back without a round trip. After an I/O error, or a future
//!   dropped mid-statement (a deadline, a disconnected client), it is discarded: closed on
//!   a task of its own, so a connection in the pool is always idle and in a known state.
//! - **Lending.** Most recently used first, so busy periods reuse warm connections. One idle
//!   at least [`PING_IF_IDLE_FOR`] is pinged first (a database restart, a failover or a NAT
//!   timeout may have killed it meanwhile).
//! - **Reaping.** A sweeper closes idle connections past [`IDLE_TIMEOUT`] or
//!   [`MAX_LIFETIME`] every [`REAP_EVERY`], so the ones at the bottom of the stack do not
//!   outlive both limits; a connection past its lifetime is also closed when it comes back.
//! - **Transactions.** [`LeanPool::begin`] opens one with the dialect's `BEGIN` (SQLite:
//!   `BEGIN IMMEDIATE`). One dropped unfinished between statements (an early return on a
//!   conflict) is rolled back on a task and its connection reused: no reconnect. One
//!   dropped mid-statement is discarded, which makes the server roll it back.
//! - **Gauges.** [`LeanPool::stats`]: size, idle, waiters, connections opened, acquires,
//!   time spent waiting and timeouts.
//!
//! It uses only sqlx's public connection API (`ConnectOptions::connect`,
//! `Connection::ping`/`close`, `Executor` for `&mut Connection`); statements run on it
//! through `crate::sql`.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, Database, Error};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::sql::{Decode, Sql, SqlDb, sql};

/// A pooled connection idle at least this long is pinged before it is lent out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// An idle connection unused this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A connection this old is closed, so server-side memory and a moved DNS name (after a
/// failover) are picked up eventually.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How often the sweeper looks for idle connections past their limits.
const REAP_EVERY: Duration = Duration::from_secs(30);

/// The pool's timing limits (tests shorten them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub ping_if_idle_for: Duration,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub reap_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ping_if_idle_for: PING_IF_IDLE_FOR,
            idle_timeout: IDLE_TIMEOUT,
            max_lifetime: MAX_LIFETIME,
            reap_every: REAP_EVERY,
        }
    }
}

/// A snapshot of one pool's gauges and counters, for export as metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Most connections the pool may hold.
    pub max: usize,
    /// Connections open now, idle or lent.
    pub size: usize,
    /// Connections idle in the pool now.
    pub idle: usize,
    /// Callers waiting for a connection now.
    pub waiters: usize,
    /// Connections opened since the pool started.
    pub opened: u64,
    /// Connections lent since the pool started.
    pub acquires: u64,
    /// Total time callers spent waiting for a connection (including opening one).
    pub wait_total: Duration,
    /// Acquires that gave up at the acquire timeout.
    pub timeouts: u64,
}

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
    limits: Limits,
    /// One permit per connection that may exist, idle or lent.
    permits: Arc<Semaphore>,
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<Idle<DB>>>,
    size: AtomicUsize,
    waiters: AtomicUsize,
    opened: AtomicU64,
    acquires: AtomicU64,
    wait_nanos: AtomicU64,
    timeouts: AtomicU64,
}

struct Idle<DB: Database> {
    conn: DB::Connection,
    created: Instant,
    since: Instant,
}

impl<DB: Database> Idle<DB> {
    fn expired(&self, limits: &Limits) -> bool {
        self.since.elapsed() >= limits.idle_timeout || self.created.elapsed() >= limits.max_lifetime
    }
}

impl<DB: Database> fmt::Debug for LeanPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeanPool")
            .field("max_connections", &self.inner.max_connections)
            .field("acquire_timeout", &self.inner.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<DB: SqlDb> LeanPool<DB> {
    /// Opens one connection (so a wrong URL or an unreachable server fails here) and keeps
    /// it as the pool's first; starts the sweeper.
    pub(crate) async fn connect(
        options: Options<DB>,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<LeanPool<DB>, Error> {
        Self::with_limits(options, max_connections, acquire_timeout, Limits::default()).await
    }

    pub(crate) async fn with_limits(
        options: Options<DB>,
        max_connections: u32,
        acquire_timeout: Duration,
        limits: Limits,
    ) -> Result<LeanPool<DB>, Error> {
        let max_connections = usize::try_from(max_connections.max(1)).unwrap_or(1);
        let pool = LeanPool {
            inner: Arc::new(Inner {
                options,
                max_connections,
                acquire_timeout,
                limits,
                permits: Arc::new(Semaphore::new(max_connections)),
                idle: Mutex::new(Vec::new()),
                size: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
                opened: AtomicU64::new(0),
                acquires: AtomicU64::new(0),
                wait_nanos: AtomicU64::new(0),
                timeouts: AtomicU64::new(0),
            }),
        };
        pool.acquire().await?.release();
        tokio::spawn(sweep(Arc::downgrade(&pool.inner)));
        Ok(pool)
    }

    /// Lends a connection, waiting at most the acquire timeout (then `PoolTimedOut`).
    pub(crate) async fn acquire(&self) -> Result<Lent<DB>, Error> {
        let inner = &self.inner;
        let started = Instant::now();
        inner.waiters.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(inner.acquire_timeout, self.acquire_inner()).await;
        inner.waiters.fetch_sub(1, Ordering::Relaxed);
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        inner.wait_nanos.fetch_add(waited, Ordering::Relaxed);
        match result {
            Ok(lent) => {
                inner.acquires.fetch_add(1, Ordering::Relaxed);
                lent
            }
            Err(_) => {
                inner.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(Error::PoolTimedOut)
            }
        }
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
                self.inner.size.fetch_add(1, Ordering::Relaxed);
                self.inner.opened.fetch_add(1, Ordering::Relaxed);
                return Ok(self.lend(conn, Instant::now(), permit));
            };
            if idle.expired(&self.inner.limits) {
                self.inner.close_conn(idle.conn).await;
                continue;
            }
            if idle.since.elapsed() >= self.inner.limits.ping_if_idle_for
                && idle.conn.ping().await.is_err()
            {
                self.inner.close_conn(idle.conn).await;
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
            conn: Some(conn),
            created,
            pool: self.inner.clone(),
            _permit: permit,
        }
    }

    /// Opens a transaction on a connection of its own.
    pub(crate) async fn begin(&self) -> Result<LeanTransaction<DB>, Error> {
        let mut lent = self.acquire().await?;
        match lent.execute(sql(DB::BEGIN)).await {
            Ok(_) => Ok(LeanTransaction {
                lent: Some(lent),
                state: TxState::Idle,
            }),
            Err(e) => {
                if reusable_after(&e) {
                    lent.release();
                }
                Err(e)
            }
        }
    }

    /// Stops lending and closes the idle connections (lent ones close when they come back).
    pub(crate) async fn close(&self) {
        self.inner.permits.close();
        let idle: Vec<Idle<DB>> = std::mem::take(&mut *self.inner.lock_idle());
        for i in idle {
            self.inner.close_conn(i.conn).await;
        }
    }

    /// The pool's gauges now.
    pub(crate) fn stats(&self) -> PoolStats {
        let i = &self.inner;
        PoolStats {
            max: i.max_connections,
            size: i.size.load(Ordering::Relaxed),
            idle: i.lock_idle().len(),
            waiters: i.waiters.load(Ordering::Relaxed),
            opened: i.opened.load(Ordering::Relaxed),
            acquires: i.acquires.load(Ordering::Relaxed),
            wait_total: Duration::from_nanos(i.wait_nanos.load(Ordering::Relaxed)),
            timeouts: i.timeouts.load(Ordering::Relaxed),
        }
    }
}

/// Closes idle connections past their limits, every `reap_every`, until the pool is gone.
async fn sweep<DB: Database>(pool: Weak<Inner<DB>>) {
    let every = match pool.upgrade() {
        Some(p) => p.limits.reap_every,
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = pool.upgrade() else { return };
        if inner.permits.is_closed() {
            return;
        }
        let expired: Vec<Idle<DB>> = {
            let mut idle = inner.lock_idle();
            let (old, keep) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|i| i.expired(&inner.limits));
            *idle = keep;
            old
        };
        for i in expired {
            inner.close_conn(i.conn).await;
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

    /// Closes a connection the pool lets go of (the server ends its session cleanly).
    async fn close_conn(&self, conn: DB::Connection) {
        let _ = conn.close().await;
        self.size.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Closes a connection on a task of its own (from a destructor, which cannot wait).
fn discard<DB: Database>(pool: Arc<Inner<DB>>, conn: DB::Connection) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move { pool.close_conn(conn).await });
        }
        Err(_) => {
            drop(conn);
            pool.size.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Whether a connection is still in a known state after `e`: after an error the server
/// reported, the protocol is back at "ready for query".
fn reusable_after(e: &Error) -> bool {
    matches!(e, Error::Database(_))
}

/// A lent connection. [`Lent::release`] puts it back in the pool; dropped instead (after
/// a failure, or when the future using it is cancelled), it is closed.
pub(crate) struct Lent<DB: Database> {
    /// `Some` until it goes back or is discarded.
    conn: Option<DB::Connection>,
    created: Instant,
    pool: Arc<Inner<DB>>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Lent<DB> {
    /// Back to the pool (unless the pool is closing or the connection is past its
    /// lifetime). Only for a connection idle at "ready for query" outside a transaction.
    fn release(mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.pool.permits.is_closed() || self.created.elapsed() >= self.pool.limits.max_lifetime
        {
            discard(self.pool.clone(), conn);
            return;
        }
        self.pool.lock_idle().push(Idle {
            conn,
            created: self.created,
            since: Instant::now(),
        });
    }

    /// Runs one statement; the number of rows it changed.
    pub(crate) async fn execute(&mut self, q: Sql<'_>) -> Result<u64, Error>
    where
        DB: SqlDb,
    {
        match self.conn.as_mut() {
            Some(conn) => DB::execute(conn, q).await,
            None => Err(Error::PoolClosed), // taken only by `release` and `drop`
        }
    }

    /// Runs one statement; its rows.
    pub(crate) async fn fetch_all<R: Decode>(&mut self, q: Sql<'_>) -> Result<Vec<R>, Error>
    where
        DB: SqlDb,
    {
        match self.conn.as_mut() {
            Some(conn) => DB::fetch_all(conn, q).await,
            None => Err(Error::PoolClosed),
        }
    }

    /// Releases the connection if `result` leaves it in a known state (success, or an
    /// error the server reported); otherwise discards it.
    pub(crate) fn settle<T>(self, result: &Result<T, Error>) {
        if result.as_ref().err().is_none_or(reusable_after) {
            self.release();
        }
    }
}

impl<DB: Database> Drop for Lent<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            discard(self.pool.clone(), conn);
        }
    }
}

/// Where a transaction's connection stands between statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    /// No statement running: the connection is at "ready for query" inside the transaction.
    Idle,
    /// A statement started and has not finished (if dropped now, it was cancelled).
    Running,
    /// A statement failed below the protocol (I/O): the connection is unusable.
    Broken,
}

/// A transaction on a lent connection: statements run in it through `crate::sql`.
/// Dropped without [`commit`](Self::commit) or [`rollback`](Self::rollback), it is rolled
/// back (see the module docs).
pub(crate) struct LeanTransaction<DB: SqlDb> {
    lent: Option<Lent<DB>>,
    state: TxState,
}

impl<DB: SqlDb> fmt::Debug for LeanTransaction<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeanTransaction")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<DB: SqlDb> LeanTransaction<DB> {
    /// Commits; the connection goes back to the pool.
    pub(crate) async fn commit(self) -> Result<(), mfad_core::error::StoreError> {
        self.end("COMMIT").await
    }

    /// Rolls back; the connection goes back to the pool.
    pub(crate) async fn rollback(self) -> Result<(), mfad_core::error::StoreError> {
        self.end("ROLLBACK").await
    }

    async fn end(mut self, statement: &'static str) -> Result<(), mfad_core::error::StoreError> {
        let Some(mut lent) = self.lent.take() else {
            return Err(mfad_core::error::StoreError::Other(
                "transaction already ended".into(),
            ));
        };
        let result = lent.execute(sql(statement)).await.map(|_| ());
        lent.settle(&result);
        result.map_err(crate::map_err)
    }

    /// Runs one statement in the transaction; the number of rows it changed.
    pub(crate) async fn execute(&mut self, q: Sql<'_>) -> Result<u64, Error> {
        let Some(lent) = self.lent.as_mut() else {
            return Err(Error::PoolClosed); // taken only by `end` and `drop`
        };
        self.state = TxState::Running;
        let result = lent.execute(q).await;
        self.state = after(&result);
        result
    }

    /// Runs one statement in the transaction; its rows.
    pub(crate) async fn fetch_all<R: Decode>(&mut self, q: Sql<'_>) -> Result<Vec<R>, Error> {
        let Some(lent) = self.lent.as_mut() else {
            return Err(Error::PoolClosed);
        };
        self.state = TxState::Running;
        let result = lent.fetch_all(q).await;
        self.state = after(&result);
        result
    }
}

/// Where a transaction stands after a statement that came to `result`.
fn after<T>(result: &Result<T, Error>) -> TxState {
    match result {
        Err(e) if !reusable_after(e) => TxState::Broken,
        _ => TxState::Idle,
    }
}

impl<DB: SqlDb> Drop for LeanTransaction<DB> {
    fn drop(&mut self) {
        let Some(mut lent) = self.lent.take() else {
            return;
        };
        if self.state != TxState::Idle {
            return; // `lent` drops here: discarded, and the server rolls back
        }
        // Between statements: roll back on a task and keep the connection.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let result = lent.execute(sql("ROLLBACK")).await;
            lent.settle(&result);
        });
    }
}

#[cfg(test)]
mod tests;
