//! The pool against real databases: SQLite on a temporary file and PostgreSQL at
//! `MFAD_TEST_DATABASE_URL` (default the local server). The same cases run on both.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode};

use super::*;
use crate::sql::sql;
use crate::testing::{TestDatabase, admin_url};

/// Where a case's database lives, kept alive for the case.
enum Keep {
    Dir(#[expect(dead_code, reason = "held only to keep the directory")] tempfile::TempDir),
    Pg(TestDatabase),
}

struct Fixture<DB: SqlDb> {
    options: Options<DB>,
    _keep: Keep,
}

async fn sqlite() -> Fixture<Sqlite> {
    let dir = tempfile::tempdir().unwrap();
    let options =
        SqliteConnectOptions::from_str(&format!("sqlite://{}/pool.db", dir.path().display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_millis(100));
    Fixture {
        options,
        _keep: Keep::Dir(dir),
    }
}

async fn postgres() -> Fixture<Postgres> {
    let db = TestDatabase::create(&admin_url()).await.unwrap();
    Fixture {
        options: PgConnectOptions::from_str(db.url()).unwrap(),
        _keep: Keep::Pg(db),
    }
}

impl<DB: SqlDb> Fixture<DB> {
    async fn pool(&self, max: u32, timeout: Duration, limits: Limits) -> LeanPool<DB> {
        LeanPool::with_limits(self.options.clone(), max, timeout, limits)
            .await
            .unwrap()
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// A statement that runs for a second or more on either backend.
const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                    WHERE x < 3000000) SELECT COUNT(*) FROM c";

async fn select_one<DB: SqlDb>(p: &LeanPool<DB>) -> Result<u64, Error> {
    let mut lent = p.acquire().await?;
    let r = lent.execute(sql("SELECT 1")).await;
    lent.settle(&r);
    r
}

/// Waits (up to 10 s) until the pool's gauges satisfy `ok`: for work the pool does on a
/// task of its own (closing, reaping), which has no completion to await.
async fn eventually<DB: SqlDb>(p: &LeanPool<DB>, ok: impl Fn(&PoolStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(&p.stats()) {
        assert!(
            Instant::now() < deadline,
            "gauges never got there: {:?}",
            p.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn reused_after_success_and_after_a_server_error<DB: SqlDb>(f: Fixture<DB>) {
    let p = f.pool(1, 2 * SECOND, Limits::default()).await;
    select_one(&p).await.unwrap();
    let mut lent = p.acquire().await.unwrap();
    let e = lent.execute(sql("SELECT * FROM no_such_table")).await;
    assert!(matches!(e, Err(Error::Database(_))), "{e:?}");
    lent.settle(&e);
    select_one(&p).await.unwrap();
    let s = p.stats();
    assert_eq!((s.opened, s.size, s.idle), (1, 1, 1), "{s:?}");
    assert_eq!(s.acquires, 4, "connect's own, then three: {s:?}");
}

async fn a_cancelled_statement_discards_and_closes_its_connection<DB: SqlDb>(f: Fixture<DB>) {
    let p = f.pool(1, 5 * SECOND, Limits::default()).await;
    let slow = async {
        let mut lent = p.acquire().await.unwrap();
        let r = lent.execute(sql(SLOW)).await;
        lent.settle(&r);
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(100), slow)
            .await
            .is_err()
    );
    // The connection still busy must not be lent again: a fresh one answers.
    select_one(&p).await.unwrap();
    assert_eq!(p.stats().opened, 2);
    // And the abandoned one is closed, not leaked.
    eventually(&p, |s| s.size == 1).await;
}

async fn a_transaction_dropped_between_statements_rolls_back_and_keeps_its_connection<DB: SqlDb>(
    f: Fixture<DB>,
) {
    let p = f.pool(1, 5 * SECOND, Limits::default()).await;
    let mut lent = p.acquire().await.unwrap();
    let r = lent.execute(sql("CREATE TABLE t (x BIGINT)")).await;
    lent.settle(&r);
    r.unwrap();
    let insert = |x: i64| sql("INSERT INTO t VALUES ($1)").bind(x);

    let mut tx = p.begin().await.unwrap();
    tx.execute(insert(1)).await.unwrap();
    drop(tx); // as an early `?` return does
    // With one connection, this waits for the rollback on the dropped one's task.
    let mut tx = p.begin().await.unwrap();
    tx.execute(insert(2)).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = p.begin().await.unwrap();
    tx.execute(insert(3)).await.unwrap();
    tx.rollback().await.unwrap();

    let mut lent = p.acquire().await.unwrap();
    let xs: Result<Vec<(i64,)>, _> = lent.fetch_all(sql("SELECT x FROM t")).await;
    lent.settle(&xs);
    assert_eq!(xs.unwrap(), vec![(2,)]);
    assert_eq!(p.stats().opened, 1, "no reconnect: {:?}", p.stats());
}

async fn at_most_max_connections_then_a_timeout<DB: SqlDb>(f: Fixture<DB>) {
    let p = f
        .pool(2, Duration::from_millis(300), Limits::default())
        .await;
    let a = p.acquire().await.unwrap();
    let _b = p.acquire().await.unwrap();
    let s = p.stats();
    assert_eq!((s.max, s.size, s.idle, s.waiters), (2, 2, 0, 0), "{s:?}");
    let third = p.clone();
    let waiting = tokio::spawn(async move { third.acquire().await.map(|_| ()) });
    eventually(&p, |s| s.waiters == 1).await;
    assert!(matches!(waiting.await.unwrap(), Err(Error::PoolTimedOut)));
    let s = p.stats();
    assert_eq!((s.waiters, s.timeouts), (0, 1), "{s:?}");
    assert!(s.wait_total >= Duration::from_millis(300), "{s:?}");
    a.release();
    assert!(
        p.acquire().await.is_ok(),
        "a released connection is lent again"
    );
}

async fn idle_connections_past_their_limits_are_reaped_untouched<DB: SqlDb>(f: Fixture<DB>) {
    let limits = Limits {
        idle_timeout: Duration::from_millis(200),
        reap_every: Duration::from_millis(50),
        ..Limits::default()
    };
    let p = f.pool(3, 5 * SECOND, limits).await;
    let lent = [
        p.acquire().await.unwrap(),
        p.acquire().await.unwrap(),
        p.acquire().await.unwrap(),
    ];
    for l in lent {
        l.release();
    }
    assert_eq!(p.stats().idle, 3);
    // Nothing touches the pool now: the sweeper alone must close all three.
    eventually(&p, |s| s.size == 0 && s.idle == 0).await;
    select_one(&p).await.unwrap();
    assert_eq!(p.stats().opened, 4);
}

async fn connections_past_their_lifetime_are_closed_when_they_come_back<DB: SqlDb>(f: Fixture<DB>) {
    let limits = Limits {
        max_lifetime: Duration::ZERO,
        ..Limits::default()
    };
    let p = f.pool(1, 5 * SECOND, limits).await;
    select_one(&p).await.unwrap();
    select_one(&p).await.unwrap();
    assert_eq!(p.stats().opened, 3, "connect's, then one per statement");
    eventually(&p, |s| s.size == 0).await;
}

async fn close_closes_idle_connections_and_stops_lending<DB: SqlDb>(f: Fixture<DB>) {
    let p = f.pool(2, SECOND, Limits::default()).await;
    select_one(&p).await.unwrap();
    p.close().await;
    assert_eq!(p.stats().size, 0);
    assert!(matches!(select_one(&p).await, Err(Error::PoolClosed)));
}

/// Declares each case once per backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::postgres().await).await;
                }
            )*
        }
    };
}

on_both!(
    reused_after_success_and_after_a_server_error,
    a_cancelled_statement_discards_and_closes_its_connection,
    a_transaction_dropped_between_statements_rolls_back_and_keeps_its_connection,
    at_most_max_connections_then_a_timeout,
    idle_connections_past_their_limits_are_reaped_untouched,
    connections_past_their_lifetime_are_closed_when_they_come_back,
    close_closes_idle_connections_and_stops_lending,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_begin_takes_the_write_lock_at_once() {
    let f = sqlite().await;
    let a = f.pool(1, SECOND, Limits::default()).await;
    let b = f.pool(1, SECOND, Limits::default()).await;
    let tx = a.begin().await.unwrap();
    // `BEGIN IMMEDIATE`: the other writer is refused at its BEGIN (after busy_timeout),
    // before either ran a statement; a deferred BEGIN would have let both start.
    let e = b.begin().await.unwrap_err();
    assert!(
        matches!(&e, Error::Database(d) if d.message().contains("locked")),
        "{e:?}"
    );
    tx.rollback().await.unwrap();
    b.begin().await.unwrap().commit().await.unwrap();
    assert_eq!(b.stats().opened, 1, "the refused BEGIN kept its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_dead_idle_connection_is_replaced_before_it_is_lent() {
    let f = postgres().await;
    let limits = Limits {
        // Ping every idle connection, as the pool does for those idle a second or more.
        ping_if_idle_for: Duration::ZERO,
        ..Limits::default()
    };
    let p = f.pool(1, 2 * SECOND, limits).await;
    let pid = |p: &LeanPool<Postgres>| {
        let p = p.clone();
        async move {
            let mut lent = p.acquire().await.unwrap();
            let r: Result<Vec<(i32,)>, _> = lent.fetch_all(sql("SELECT pg_backend_pid()")).await;
            lent.settle(&r);
            r.unwrap()[0].0
        }
    };
    let first = pid(&p).await;
    let Keep::Pg(db) = &f._keep else { panic!() };
    let mut admin = PgConnection::connect(db.url()).await.unwrap();
    // With a timeout, pg_terminate_backend waits until the backend has exited.
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(first)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(killed);
    assert_ne!(pid(&p).await, first, "replaced without an error");
}
