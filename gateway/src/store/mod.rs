//! The SQL store: SQLite by default (a file in the data directory), PostgreSQL by URL,
//! through one portable schema (`gateway/migrations/`) and `$N` placeholders that both
//! engines accept.

mod activity;
mod alerts;
mod audit;
mod contacts;
mod detector;
mod devices;
mod escalation;
mod feedback;
mod health;
mod history;
mod history_query;
mod jobs;
mod journal;
mod needs;
mod organisation;
mod outbox;
mod provisioning;
mod sessions;
mod sql;
mod sqlite_writer;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use activity::{DayEventRow, LifeSigns, first_life_sign, last_life_sign, life_sign_times};
pub use alerts::{
    AlertClose, AlertDeadlines, AlertQuery, AlertRow, CaseworkerAlertRow, NewAlert, OpenAlertRow,
    OpenDeadlineRow, RaisedAlertRow, acknowledge_alert, alert_arrived, alert_by_id,
    alert_by_open_key, alert_on_the_way, bump_alert_version, close_alert, complete_alert_follow_up,
    count_alert_repeat, insert_alert, mark_alert_notified, mark_condition_cleared,
    open_caseworker_alerts, restart_alert_policy, set_alert_deadlines, set_alert_plan,
    upgrade_acknowledged_alert,
};
pub use audit::{AuditRow, NewAuditEntry, insert_audit};
pub use contacts::{
    ContactRecordRow, ContactRow, NewContactRow, NewVisitTask, VisitTaskRow, contacts_on_day,
    finish_visit_task, insert_contact, insert_visit_task, open_visit_task_count,
    open_visit_task_ids,
};
pub use detector::{SNAPSHOT_CHUNK, SnapshotRow};
pub use devices::{
    DeviceRow, NewDevice, NewHousehold, ZigbeeNameRow, device_binding, device_exists,
    household_exists, insert_bench_credentials, insert_devices_if_absent,
    insert_households_if_absent, insert_registered_device,
};
pub use escalation::{
    add_alert_recipient, alert_recipient_ids, count_alert_recipients, episode_applied,
    record_episode,
};
pub use feedback::{household_device_ids_of_kind, household_device_kinds};
pub use history::{
    ActivityCounts, CURSOR_JOURNAL, CURSOR_NEXT_ID, CURSOR_SINK, ClosedHour, DeviceStateRow,
    HistoryPoint, HistoryWrite, HourPointRow, SpoolHourlyRow, SpoolPointRow,
};
pub use history_query::{Buckets, PointFilter, SeriesRow};
pub use jobs::{DailyJob, mark_daily_job_done};
pub(crate) use journal::pieces;
pub use journal::{
    CommitBatch, EventRow, HealthRow, JournalRow, RecentEventRow, SeqRow, StatusRow,
};
pub use needs::{NeedQuery, NeedRow, NewNeedRow, assign_need, finish_need, insert_need};
pub use organisation::{
    CommitteeRosterRow, EmergencyContactRow, HouseholdRow, HouseholdScope, NewEmergencyContact,
    OrgTable, RosterHousehold, assign_household, delete_household_contacts, household,
    household_contacts, insert_household_contact, org_exists, upsert_committee, upsert_district,
    upsert_roster_household, upsert_street,
};
pub use outbox::{
    NewOutboxEntry, OutboxEntry, insert_outbox, pending_outbox_payloads, supersede_outbox_entry,
    supersede_outbox_purpose, supersede_pending_check_ins,
};
pub use provisioning::{
    NewProvision, NewSecret, PressRow, TestRow, WorkOrderRow, bump_provision_version,
    insert_device_provision, insert_install_test, install_test_running, is_provisioned,
    revoke_device_secret, serial_holder, upsert_device_secret, zigbee_name_holder,
};
pub use sessions::{ApiTokenRow, SessionRow};
pub use users::{ActiveUsers, UserRow, UserUpsert, active_users, upsert_user, user};

/// A connection of the store, or an open transaction of it (`&mut *tx`): what the
/// functions that run inside their caller's transaction take.
pub type Conn = sqlx::AnyConnection;

/// Which engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported engine.
    #[error("unsupported store URL {0:?} (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite hot-path writer failed or has stopped.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite hot-path writer thread is not running.
    #[error("{0}")]
    Writer(String),
    /// A stored value does not fit its type.
    #[error("corrupt value in column {0}")]
    Corrupt(&'static str),
}

/// Handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Whether the last journal commit succeeded: false while the disk is full or the
    /// server refuses writes. Detection treats an unwritable store as blindness (events
    /// are neither stored nor acknowledged, so silence means nothing) and `/healthz`
    /// reports it.
    writable: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// Device health folded by ingest and not yet flushed (see `health.rs`).
    health: std::sync::Arc<health::HealthBehind>,
    /// SQLite only: the thread that writes the journal and device health.
    writer: Option<std::sync::Arc<sqlite_writer::SqliteWriter>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the store at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let mut file = None;
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            file = sqlite_writer::file_of(path);
            if let Some(parent) =
                std::path::Path::new(path.split('?').next().unwrap_or(path)).parent()
                && !parent.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(parent);
            }
            let sep = if url.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("{url}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; FULL makes each
                        // commit durable (one fsync per group commit).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // 32 MiB of page cache per connection (SQLite's default is 2 MiB):
                        // the journal's and history's indexes outgrow 2 MiB within hours,
                        // and every insert then reads its index pages back from the OS.
                        conn.execute("PRAGMA cache_size = -32768").await?;
                    }
                    Ok(())
                })
            })
            // A connection that comes back still inside a transaction is closed, not
            // reused. SQLite rolls a transaction back by itself when a write fails with
            // "database or disk is full"; sqlx's own ROLLBACK then fails and its worker
            // keeps counting the transaction as open, so every later BEGIN on that
            // connection fails ("non-zero transaction depth") and the pool, four
            // connections, would never take a write again once space returned.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    // A dropped transaction queues its rollback; the ping runs after it.
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = match file {
            Some(path) => Some(std::sync::Arc::new(sqlite_writer::SqliteWriter::start(
                &path,
            )?)),
            None => None,
        };
        Ok(Store {
            pool,
            backend,
            writable: std::sync::Arc::new(tokio::sync::watch::Sender::new(true)),
            health: Default::default(),
            writer,
        })
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
    /// taken up front, waiting under the busy timeout, where a deferred transaction that
    /// reads and then writes fails at once with "database is locked" when another writer
    /// (ingest's group commit, the history writer) committed in between; it waits for
    /// the writer thread's current job to end, and the thread starts no new one until
    /// the lock is taken. PostgreSQL gets a plain `BEGIN`.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let stmt = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        // SQLite: come in between the writer thread's jobs (see `WriteGate`).
        let _turn = match &self.writer {
            Some(w) => Some(w.gate.take_turn().await),
            None => None,
        };
        self.pool.begin_with(stmt).await
    }

    /// Follows whether journal commits succeed (see the field's documentation).
    pub fn writable(&self) -> tokio::sync::watch::Receiver<bool> {
        self.writable.subscribe()
    }

    /// Records the outcome of a journal commit; logs the change either way.
    pub(crate) fn set_writable(&self, ok: bool) {
        let changed = self.writable.send_if_modified(|w| {
            let changed = *w != ok;
            *w = ok;
            changed
        });
        if changed {
            if ok {
                tracing::info!("store writable again");
            } else {
                tracing::error!(
                    "store refuses writes; events are not acknowledged until it recovers"
                );
            }
        }
    }

    /// Whether the store answers a trivial query (the readiness check of `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The engine behind the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool (the store's files and tests; the rest of the gateway calls
    /// typed functions).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection of the pool, for store functions that take a [`Conn`] outside a
    /// transaction (reads that a caller also runs inside one).
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Registers the store's own metrics (SQLite: how long each job of the writer thread
    /// held the write lock, `anxin_store_write_held_seconds{job}`).
    pub fn register_metrics(&self, metrics: &crate::telemetry::Metrics) {
        if let Some(w) = &self.writer {
            metrics.register(
                "anxin_store_write_held_seconds",
                "How long each job of the SQLite writer thread held the connection and the write lock, by job (commit, health, history, snapshot)",
                w.held.clone(),
            );
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The VALUES list for `rows` rows of `cols` bound values, in binding order: `(?,?),(?,?)`
/// for SQLite and `($1,$2),($3,$4)` for PostgreSQL.
///
/// SQLite gets positional `?`: it keeps named parameters such as `$7` in a list that it
/// searches linearly, once per parameter when the statement is prepared and once per
/// parameter when sqlx binds it, so a multi-row INSERT of 9,000 `$N` parameters costs
/// quadratic time (most of the committer's and the history writer's CPU, measured with
/// `perf` in `docs/benchmarks.md`). Every value is still bound; nothing is formatted
/// into the SQL.
pub(crate) fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&n.to_string());
                }
            }
            n += 1;
        }
        s.push(')');
    }
    s
}

/// An INSERT that both write paths use (the pool's multi-row statements and the SQLite
/// writer thread's single-row prepared ones), so that the two never drift apart: the
/// table and its columns, how many values a row binds, and what a conflict does.
pub(crate) struct Upsert {
    /// `INSERT INTO table (columns)`.
    pub head: &'static str,
    /// Values bound per row.
    pub cols: usize,
    /// `ON CONFLICT …`, or empty.
    pub tail: &'static str,
}

impl Upsert {
    /// The statement for `rows` rows on `backend` (only placeholders are generated; every
    /// value is bound).
    pub(crate) fn sql(&self, backend: Backend, rows: usize) -> String {
        format!(
            "{} VALUES {} {}",
            self.head,
            placeholders(backend, rows, self.cols),
            self.tail
        )
    }
}

/// A fresh store for the library's own tests: SQLite in `dir`, or a new database on the
/// PostgreSQL server that `ANXIN_TEST_POSTGRES` names (the test command's PostgreSQL
/// pass), so that both engines run the same assertions.
#[cfg(test)]
pub(crate) async fn open_for_test(dir: &std::path::Path) -> Store {
    match std::env::var("ANXIN_TEST_POSTGRES") {
        Ok(base) if !base.is_empty() => {
            sqlx::any::install_default_drivers();
            let base = base.trim_end_matches('/');
            let name = format!("u_{:016x}", rand::random::<u64>());
            let admin = AnyPool::connect(&format!("{base}/postgres"))
                .await
                .expect("PostgreSQL test server reachable");
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("CREATE DATABASE");
            admin.close().await;
            Store::open(&format!("{base}/{name}")).await.expect("open")
        }
        _ => Store::open(&format!("sqlite://{}", dir.join("anxin.db").display()))
            .await
            .expect("open"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_positional_for_sqlite_and_numbered_for_postgres() {
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?,?),(?,?)");
        assert_eq!(placeholders(Backend::Postgres, 2, 2), "($1,$2),($3,$4)");
    }
}
