//! SQLite's verifications on a thread of their own, committed in groups.
//!
//! sqlx runs each SQLite statement on its connection's worker thread: two thread hand-offs
//! per statement, the largest cost of a verification on a small machine
//! (docs/BENCHMARKS.md, "Where the time goes"). This thread owns a connection of its own,
//! opened with rusqlite (synchronous, prepared statements cached), and runs a whole
//! verification on it: the read of the challenge with its factor, the engine's judge
//! (`mfad_core::verify`, a plain function the request hands over) and the settlement's
//! conditional writes, with the same SQL text and binds as the other backends
//! (`verify.rs`). A request costs one hand-off there and one back.
//!
//! **Group commit.** The thread takes every verification waiting when it is free (up to
//! [`MAX_GROUP`]) and runs them in one `BEGIN IMMEDIATE … COMMIT`, in arrival order, so
//! each sees the ones before it (a challenge verified earlier in the group is no longer
//! pending: exactly once still holds). Each answer is sent only after that `COMMIT`
//! returned, so a 201 still means committed; with WAL that survives the process being
//! killed (`synchronous=NORMAL`; `FULL` also fsyncs each commit). If any statement of a
//! group fails, the group is rolled back and each verification is run again alone, so
//! one failure answers only its own request.
//!
//! **Checkpoints off the request path.** SQLite copies the write-ahead log back into the
//! database file (a checkpoint, with its `fsync`s) inside the `COMMIT` that crosses
//! 1,000 pages, so every verification queued behind that group waited for it: the
//! largest part of the p99 (docs/BENCHMARKS.md, "The tail"). This connection's automatic
//! checkpoint is off; a second thread with a connection of its own runs a `PASSIVE`
//! checkpoint when told that about as many verifications were committed since the last
//! one. A passive checkpoint never blocks a writer, and copies only committed frames, so
//! what a 201 means is unchanged. (sqlx's connections keep their automatic checkpoint
//! for the other writes.)
//!
//! Holding the write lock while reading and judging means no other writer can change the
//! rows in between, so the conditions of the writes always hold here; they are kept as
//! on every backend. Other writes (enrolment, challenges, FusionAuth) still go through
//! sqlx's write connection; SQLite serialises the two connections with `busy_timeout`.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mfad_core::error::StoreError;
use mfad_core::ids::{ChallengeId, TenantId};
use mfad_core::model::{Challenge, Factor};
use mfad_core::store::{ChallengeJudge, Verdict, Verification};
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::challenges::get_sql;
use crate::rows::ChallengeWithFactorRow;
use crate::sql::{Arg, Sql};
use crate::verify::{JUDGE_ROUNDS, judged, settlement_sql};

/// Most verifications committed in one transaction (bounds how long one holds the lock).
const MAX_GROUP: usize = 256;

/// Verifications committed between checkpoints: about SQLite's own 1,000 log pages (a
/// verification writes less than a page of log on average: its challenge row and its event,
/// groups sharing pages).
const CHECKPOINT_EVERY: usize = 1_000;

/// Statements kept prepared: the read, the factor's three settlements, the challenge's
/// two outcomes, `BEGIN`, `COMMIT`, `ROLLBACK`, with room to spare.
const STATEMENT_CACHE: usize = 32;

struct Job {
    tenant: TenantId,
    id: ChallengeId,
    now: OffsetDateTime,
    judge: ChallengeJudge,
    reply: oneshot::Sender<Result<Verification, StoreError>>,
}

enum Msg {
    Verify(Job),
    /// Finish the queue, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// The handle on the writer thread.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    queue: mpsc::Sender<Msg>,
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".into())
}

impl SqliteWriter {
    /// Opens a connection to the (existing) database file at `path` with the same
    /// settings as the pools', and starts the thread.
    pub(crate) fn open(path: &Path, synchronous_full: bool) -> Result<SqliteWriter, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(map_err)?;
        let sync = if synchronous_full { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(map_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(map_err)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpoints = Checkpointer::start(path)?;
        let (queue, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("mfad-sqlite-writer".into())
            .spawn(move || run(conn, rx, checkpoints))
            .map_err(|e| StoreError::Other(format!("cannot start the SQLite writer: {e}")))?;
        Ok(SqliteWriter { queue })
    }

    /// [`mfad_core::store::Store::verify_challenge`] on the writer thread.
    pub(crate) async fn verify(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        now: OffsetDateTime,
        judge: ChallengeJudge,
    ) -> Result<Verification, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            tenant: tenant.clone(),
            id: id.clone(),
            now,
            judge,
            reply,
        };
        self.queue.send(Msg::Verify(job)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Runs what is queued, then closes the connection.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Msg::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// The checkpoint thread's handle: counts committed verifications and, every
/// [`CHECKPOINT_EVERY`], asks for a checkpoint (without waiting; a request made while one
/// runs is kept, further ones are not).
struct Checkpointer {
    ask: mpsc::SyncSender<()>,
    since: usize,
}

impl Checkpointer {
    /// Opens the checkpoint thread's connection and starts it; it stops when the writer
    /// thread (the only sender) does.
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        let (ask, asked) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("mfad-sqlite-checkpoint".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    // PASSIVE: copies what no reader still needs, never waits for a lock.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) => {}
                        // Another connection's checkpoint is running: it does the work.
                        Err(e)
                            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "SQLite checkpoint failed; retrying later")
                        }
                    }
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing the SQLite checkpoint connection");
                }
            })
            .map_err(|e| StoreError::Other(format!("cannot start the SQLite checkpointer: {e}")))?;
        Ok(Checkpointer { ask, since: 0 })
    }

    fn committed(&mut self, verifications: usize) {
        self.since += verifications;
        if self.since >= CHECKPOINT_EVERY {
            self.since = 0;
            let _ = self.ask.try_send(());
        }
    }
}

/// The thread: one group per turn, until closed or every handle is gone.
fn run(conn: Connection, rx: mpsc::Receiver<Msg>, mut checkpoints: Checkpointer) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Verify(job) => group.push(job),
                Msg::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if group.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        if !group.is_empty() {
            let n = group.len();
            run_group(&conn, group);
            checkpoints.committed(n);
        }
    }
    drop(checkpoints);
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite writer connection");
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs `group` in one transaction and answers each after it commits; on any failure,
/// rolls back and runs each alone.
fn run_group(conn: &Connection, mut group: Vec<Job>) {
    if group.len() > 1 {
        match in_transaction(conn, |conn| {
            group
                .iter_mut()
                .map(|job| verify_one(conn, job))
                .collect::<Result<Vec<_>, _>>()
        }) {
            Ok(answers) => {
                for (job, answer) in group.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "a verification group failed; running each alone")
            }
        }
    }
    for mut job in group {
        let answer = in_transaction(conn, |conn| verify_one(conn, &mut job));
        let _ = job.reply.send(answer);
    }
}

/// `BEGIN IMMEDIATE`, `work`, `COMMIT`; `ROLLBACK` if either fails.
fn in_transaction<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let simple = |text: &str| -> Result<(), StoreError> {
        conn.prepare_cached(text)
            .and_then(|mut s| s.raw_execute())
            .map(|_| ())
            .map_err(map_err)
    };
    simple("BEGIN IMMEDIATE")?;
    let result = work(conn).and_then(|v| simple("COMMIT").map(|()| v));
    if result.is_err() && !conn.is_autocommit() {
        let _ = simple("ROLLBACK");
    }
    result
}

/// One verification inside the open transaction (see `verify.rs` for the same flow over
/// the pools).
fn verify_one(conn: &Connection, job: &mut Job) -> Result<Verification, StoreError> {
    let (tenant, id, now) = (&job.tenant, &job.id, job.now);
    for _ in 0..JUDGE_ROUNDS {
        let Some((challenge, factor)) = read(conn, &get_sql(tenant, id))? else {
            return Ok(Verification::Missing);
        };
        let settlement = match (job.judge)(&challenge, &factor) {
            Verdict::Settle(settlement) => settlement,
            refused => return Ok(judged(challenge, factor, refused)),
        };
        let (on_factor, on_challenge) = settlement_sql(tenant, id, &factor, &settlement, now);
        if let Some(q) = on_factor
            && execute(conn, &q)? != 1
        {
            continue;
        }
        if execute(conn, &on_challenge)? != 1 {
            continue;
        }
        // The verification's events, in the transaction of its outcome.
        for e in &settlement.events {
            execute(conn, &crate::events::insert_sql(e))?;
            execute(conn, &crate::events::fanout_sql(e))?;
        }
        return Ok(judged(challenge, factor, Verdict::Settle(settlement)));
    }
    Ok(Verification::Contended)
}

/// Prepares (cached) `q` and binds its arguments as sqlx-sqlite does: `$n` is the n-th.
fn prepare<'c>(
    conn: &'c Connection,
    q: &Sql<'_>,
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let (text, args) = q.parts();
    let mut stmt = conn.prepare_cached(text).map_err(map_err)?;
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(i);
        let arg = n
            .checked_sub(1)
            .and_then(|k| args.get(k))
            .ok_or_else(|| StoreError::Other(format!("no bind for ${n} in: {text}")))?;
        stmt.raw_bind_parameter(i, to_sql(*arg)).map_err(map_err)?;
    }
    Ok(stmt)
}

fn to_sql(arg: Arg<'_>) -> ToSqlOutput<'_> {
    match arg {
        Arg::Text(Some(v)) => ToSqlOutput::from(v),
        Arg::Int(Some(v)) => ToSqlOutput::from(v),
        Arg::Bytes(Some(v)) => ToSqlOutput::from(v),
        Arg::Text(None) | Arg::Int(None) | Arg::Bytes(None) => ToSqlOutput::Owned(Value::Null),
    }
}

fn execute(conn: &Connection, q: &Sql<'_>) -> Result<usize, StoreError> {
    prepare(conn, q)?.raw_execute().map_err(map_err)
}

fn read(conn: &Connection, q: &Sql<'_>) -> Result<Option<(Challenge, Factor)>, StoreError> {
    let mut stmt = prepare(conn, q)?;
    let mut rows = stmt.raw_query();
    let Some(row) = rows.next().map_err(map_err)? else {
        return Ok(None);
    };
    let r = ChallengeWithFactorRow::from_rusqlite(row).map_err(map_err)?;
    Ok(Some((r.challenge.into(), r.factor.try_into()?)))
}
