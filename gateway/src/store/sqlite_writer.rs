//! The SQLite hot-path writer: one connection on a thread of its own writes the journal's
//! group commits and the device-health flushes, with prepared single-row statements in
//! one `BEGIN IMMEDIATE` transaction per batch.
//!
//! sqlx's SQLite driver runs each statement on a worker thread and hands every bound
//! value and result across threads (measured at ≈ 40 % of the gateway's CPU under load,
//! `docs/benchmarks.md`); here a batch crosses threads twice, there and back, and the
//! statements are prepared once per connection. Everything else (reads, the workflow's
//! writes, migrations) stays on the sqlx pool; SQLite serialises the writers of both
//! through its file lock, waiting under the same busy timeout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::detector::SNAPSHOTS;
use super::history::{CURSOR, DEVICE_STATE, DIRTY_HOURS, POINTS};
use super::journal::{EVENTS, HEALTH, SEQS};
use super::{Backend, CommitBatch, HealthRow, HistoryWrite, StoreError};

/// Work for the writer thread.
enum Job {
    /// A group commit: the journal ids of the events that were new.
    Commit(
        Arc<CommitBatch>,
        oneshot::Sender<rusqlite::Result<HashSet<i64>>>,
    ),
    /// A device-health flush; the rows come back with the outcome, so that a failed
    /// flush can keep them.
    Health(
        Vec<HealthRow>,
        oneshot::Sender<(Vec<HealthRow>, rusqlite::Result<()>)>,
    ),
    /// A step of the history writer.
    History(Arc<HistoryWrite>, oneshot::Sender<rusqlite::Result<()>>),
    /// One chunk of detector snapshots `(household, state)` with their journal position
    /// and the time.
    Snapshots(
        Arc<Vec<(String, Vec<u8>)>>,
        i64,
        i64,
        oneshot::Sender<rusqlite::Result<()>>,
    ),
}

/// Handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// Lets the pool's writers (an alert being raised, a caseworker's action) in between
    /// the thread's jobs.
    pub(crate) gate: Arc<WriteGate>,
    /// How long each job held the connection (and so SQLite's write lock), by job.
    pub(crate) held: Family<JobLabels, Histogram>,
}

/// Label of [`SqliteWriter::held`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobLabels {
    job: &'static str,
}

fn held_histogram() -> Histogram {
    // 50 µs … ≈ 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// How long a write waits for another writer's lock (the sqlx pool's busy timeout too).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the thread holds back its next job for the pool's waiting writers, at most
/// (so that a stream of them cannot starve ingest).
const YIELD_MAX: Duration = Duration::from_millis(50);

/// How long a pool writer waits for the thread's current job to end before it asks
/// SQLite for the lock anyway.
const TURN_WAIT: Duration = Duration::from_millis(100);

/// Turns between the writer thread and the pool's writers. Both take SQLite's one write
/// lock; the pool's writers are the person-facing ones (raising and taking alerts,
/// contacts, provisioning), and SQLite's own busy handler would have them retry after
/// sleeps of up to 100 ms while the thread's jobs follow each other without a gap. So a
/// pool writer says it is waiting, waits for the thread's current job to end, and the
/// thread starts no new job while somebody waits (for at most [`YIELD_MAX`]).
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    waiting: AtomicUsize,
    busy: AtomicBool,
    idle: tokio::sync::Notify,
}

/// A pool writer's turn: while it lives, the thread starts no new job.
pub(crate) struct Turn<'a>(&'a WriteGate);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriteGate {
    /// Waits (at most [`TURN_WAIT`]) until the thread is between jobs; hold the turn
    /// until the write lock is taken.
    pub(crate) async fn take_turn(&self) -> Turn<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let turn = Turn(self);
        let deadline = tokio::time::Instant::now() + TURN_WAIT;
        while self.busy.load(Ordering::SeqCst) {
            let idle = self.idle.notified();
            if !self.busy.load(Ordering::SeqCst) {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        turn
    }

    /// The thread, before a job: holds back while a pool writer waits.
    fn before_job(&self) {
        let started = Instant::now();
        while self.waiting.load(Ordering::SeqCst) > 0 && started.elapsed() < YIELD_MAX {
            std::thread::sleep(Duration::from_micros(100));
        }
        self.busy.store(true, Ordering::SeqCst);
    }

    /// The thread, after a job.
    fn after_job(&self) {
        self.busy.store(false, Ordering::SeqCst);
        self.idle.notify_waiters();
    }
}

/// The thread's own busy handler: retry every 200 µs (SQLite's default sleeps up to
/// 100 ms between tries), for about [`BUSY_TIMEOUT`].
fn busy_retry(attempt: i32) -> bool {
    if i64::from(attempt) * 200 >= BUSY_TIMEOUT.as_micros() as i64 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(200));
    true
}

impl SqliteWriter {
    /// Opens a connection to the (already migrated) database file at `path` and starts
    /// the thread.
    pub(crate) fn start(path: &Path) -> Result<SqliteWriter, StoreError> {
        let conn = open(path)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let held = Family::<JobLabels, Histogram>::new_with_constructor(
            held_histogram as fn() -> Histogram,
        );
        let observed = held.clone();
        let gate = Arc::new(WriteGate::default());
        let thread_gate = gate.clone();
        std::thread::Builder::new()
            .name("anxin-sqlite-writer".into())
            .spawn(move || run(conn, rx, &observed, &thread_gate))
            .map_err(|e| StoreError::Writer(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteWriter { jobs, held, gate })
    }

    /// Writes `batch` in one transaction; returns the journal ids of the new events.
    pub(crate) async fn commit(&self, batch: Arc<CommitBatch>) -> Result<HashSet<i64>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(Job::Commit(batch, tx)).map_err(|_| gone())?;
        Ok(rx.await.map_err(|_| gone())??)
    }

    /// Upserts `rows` into `device_health` in one transaction; on failure the rows come
    /// back in the error's companion.
    pub(crate) async fn write_health(
        &self,
        rows: Vec<HealthRow>,
    ) -> (Vec<HealthRow>, Result<(), StoreError>) {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::SendError(Job::Health(rows, _))) = self.jobs.send(Job::Health(rows, tx)) {
            return (rows, Err(gone()));
        }
        match rx.await {
            Ok((rows, r)) => (rows, r.map_err(StoreError::from)),
            // The thread died with the rows: nothing to give back.
            Err(_) => (Vec::new(), Err(gone())),
        }
    }
}

impl SqliteWriter {
    /// Stores a step of the history writer in one transaction.
    pub(crate) async fn write_history(&self, w: Arc<HistoryWrite>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(Job::History(w, tx)).map_err(|_| gone())?;
        Ok(rx.await.map_err(|_| gone())??)
    }
}

impl SqliteWriter {
    /// Stores one chunk of detector snapshots in one transaction.
    pub(crate) async fn save_snapshots(
        &self,
        rows: Arc<Vec<(String, Vec<u8>)>>,
        cursor: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Snapshots(rows, cursor, now, tx))
            .map_err(|_| gone())?;
        Ok(rx.await.map_err(|_| gone())??)
    }
}

fn gone() -> StoreError {
    StoreError::Writer("the SQLite writer thread has stopped".into())
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(busy_retry))?;
    // The same settings as the pool's connections (`Store::open`): WAL beside the
    // readers, a durable fsync per commit, 32 MiB of page cache.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -32768;",
    )?;
    // Eight statements of the hot path, and room for a few more.
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    held: &Family<JobLabels, Histogram>,
    gate: &WriteGate,
) {
    // The connection opens with `synchronous = FULL`.
    let mut full = true;
    while let Ok(job) = rx.recv() {
        gate.before_job();
        let _done = AfterJob(gate);
        let started = Instant::now();
        let name = match &job {
            Job::Commit(..) => "commit",
            Job::Health(..) => "health",
            Job::History(..) => "history",
            Job::Snapshots(..) => "snapshot",
        };
        let _observe = Observe(
            held.get_or_create(&JobLabels { job: name }).clone(),
            started,
        );
        // Only the journal's commits must be durable before they return: they are what
        // devices are acknowledged for. Health, history and snapshots are derived state
        // (the next heartbeat, the journal and its cursors re-derive them), so they are
        // committed without waiting for their own fsync; the WAL keeps the order, so
        // the next journal commit's fsync makes them durable too, and nothing derived is
        // ever durable ahead of the journal it came from.
        let durable = matches!(job, Job::Commit(..));
        if durable != full {
            let pragma = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if let Err(e) = conn.execute_batch(pragma) {
                // Not known to be FULL: stop rather than acknowledge on a weaker
                // promise (the callers see the writer gone and acknowledge nothing).
                tracing::error!(error = %e, pragma, "SQLite writer cannot set its durability; stopping");
                break;
            }
            full = durable;
        }
        match job {
            Job::Commit(batch, reply) => {
                let r = commit(&mut conn, &batch);
                settle(&conn, r.is_err());
                let _ = reply.send(r);
            }
            Job::Health(rows, reply) => {
                let r = write_health(&mut conn, &rows);
                settle(&conn, r.is_err());
                let _ = reply.send((rows, r));
            }
            Job::History(w, reply) => {
                let r = write_history(&mut conn, &w);
                settle(&conn, r.is_err());
                let _ = reply.send(r);
            }
            Job::Snapshots(rows, cursor, now, reply) => {
                let r = save_snapshots(&mut conn, &rows, cursor, now);
                settle(&conn, r.is_err());
                let _ = reply.send(r);
            }
        }
    }
}

/// Marks the thread between jobs again when a job ends, whichever way.
struct AfterJob<'a>(&'a WriteGate);

impl Drop for AfterJob<'_> {
    fn drop(&mut self) {
        self.0.after_job();
    }
}

/// Records how long a job held the connection when it ends (the reply is sent before).
struct Observe(Histogram, Instant);

impl Drop for Observe {
    fn drop(&mut self) {
        self.0.observe(self.1.elapsed().as_secs_f64());
    }
}

/// After a failed write the connection must be out of its transaction: SQLite rolls
/// back by itself on "database or disk is full", and a dropped rusqlite transaction
/// rolls back otherwise; if neither happened, roll back here so that the next batch can
/// begin.
fn settle(conn: &Connection, failed: bool) {
    if failed && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn commit(conn: &mut Connection, batch: &CommitBatch) -> rusqlite::Result<HashSet<i64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = HashSet::with_capacity(batch.events.len());
    {
        let mut ins = tx.prepare_cached(&EVENTS.sql(Backend::Sqlite, 1))?;
        for e in &batch.events {
            let added = ins.execute(params![
                e.journal_id,
                e.device_id,
                e.boot,
                e.seq,
                e.household_id,
                e.kind,
                e.event_ms,
                e.received_ms,
                e.body,
            ])?;
            if added == 1 {
                inserted.insert(e.journal_id);
            }
        }
        let mut seq = tx.prepare_cached(&SEQS.sql(Backend::Sqlite, 1))?;
        for s in &batch.seqs {
            seq.execute(params![s.device_id, s.boot, s.contig, s.clock_offset_ms])?;
        }
    }
    tx.commit()?;
    Ok(inserted)
}

fn write_health(conn: &mut Connection, rows: &[HealthRow]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut up = tx.prepare_cached(&HEALTH.sql(Backend::Sqlite, 1))?;
        for h in rows {
            up.execute(params![
                h.device_id,
                h.last_seen_ms,
                h.boot,
                h.last_seq,
                h.battery_pct,
                h.battery_mv,
                h.rssi_dbm,
                h.fw,
                h.uptime_s,
                h.outbox,
                h.dropped,
                h.interval_s,
                h.temp_dc,
                h.online,
                h.status_ms,
            ])?;
        }
    }
    tx.commit()
}

fn write_history(conn: &mut Connection, w: &HistoryWrite) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut point = tx.prepare_cached(&POINTS.sql(Backend::Sqlite, 1))?;
        for (id, p) in (w.first_id..).zip(&w.points) {
            point.execute(params![
                id,
                p.at_ms,
                p.household_id.as_deref(),
                &*p.device_id,
                p.room.as_deref(),
                &*p.kind,
                p.measurement,
                p.field,
                p.value,
            ])?;
        }
        let mut dirty = tx.prepare_cached(&DIRTY_HOURS.sql(Backend::Sqlite, 1))?;
        for (h, hour) in &w.dirty_hours {
            dirty.execute(params![&**h, hour])?;
        }
        let mut state = tx.prepare_cached(&DEVICE_STATE.sql(Backend::Sqlite, 1))?;
        for s in &w.states {
            state.execute(params![
                &*s.device_id,
                s.online,
                s.online_ms,
                s.battery_pct,
                s.battery_mv,
                s.rssi_dbm,
                s.temp_dc,
                s.health_ms,
            ])?;
        }
        let mut cursor = tx.prepare_cached(&CURSOR.sql(Backend::Sqlite, 1))?;
        cursor.execute(params![super::CURSOR_JOURNAL, w.journal])?;
        cursor.execute(params![super::CURSOR_NEXT_ID, w.next_id])?;
    }
    tx.commit()
}

/// One chunk of snapshots (committed without waiting for its fsync, see `run`).
fn save_snapshots(
    conn: &mut Connection,
    rows: &[(String, Vec<u8>)],
    cursor: i64,
    now: i64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut up = tx.prepare_cached(&SNAPSHOTS.sql(Backend::Sqlite, 1))?;
        for (id, state) in rows {
            up.execute(params![id, state, now, cursor])?;
        }
    }
    tx.commit()
}

/// The database file named by a `sqlite://PATH?OPTIONS` URL, or None for an in-memory
/// database (whose other connections would not see this one's writes).
pub(crate) fn file_of(url_rest: &str) -> Option<PathBuf> {
    let path = url_rest.split('?').next().unwrap_or(url_rest);
    if path.is_empty() || path == ":memory:" || url_rest.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_off_the_url() {
        assert_eq!(
            file_of("/var/lib/anxin/anxin.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/anxin/anxin.db"))
        );
        assert_eq!(
            file_of("data/anxin.db"),
            Some(PathBuf::from("data/anxin.db"))
        );
        assert_eq!(file_of(":memory:"), None);
        assert_eq!(file_of("x.db?mode=memory&cache=shared"), None);
    }
}
