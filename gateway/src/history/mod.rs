//! Time-series history: every event and state change as numeric points in the embedded
//! store (the default, served to the dashboard by [`HistoryHandle::query`]), and, when
//! configured, the same points in an InfluxDB v2 compatible server.
//!
//! ```text
//! committer ─commit─▶ events (journal) ──tail by journal_id──┐
//!     └─ Observation ─▶ intake (heartbeats, availability) ────┤
//!                                                             ▼
//!                    writer.rs ── history_points, history_device_state, cursors (one tx)
//!                    aggregate.rs ── history_hourly (closed hours, re-done when late)
//!                    prune.rs ── retention, small batches
//!                    spool.rs ── ids above the sink cursor ─▶ sink/ (influxdb.rs, mock.rs)
//!                    query.rs ── review queries (raw, minute, hour, day)
//! ```
//!
//! Nothing is lost on a crash: the journal cursor is persisted with the points in one
//! transaction; new events come from the committer in memory (after their commit) while
//! the cursor keeps up with them, and are read back from the journal whenever the cursor
//! is behind (after a restart, or when memory overflowed); the sink's backlog is the
//! stored points above its own persisted cursor. See `docs/history.md`.

mod aggregate;
mod cursor;
pub mod model;
mod prune;
pub mod query;
pub mod sink;
mod spool;
mod writer;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::app::Services;
use crate::clock::SharedClock;
use crate::ingest::{Observation, ObservationKind, Registry};
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

pub use model::{Activity, Health, Point};
pub use prune::PruneReport;
pub use query::{HistoryQuery, HistoryResult, Resolution, Series, SeriesPoint};
pub use sink::{HistorySink, InfluxSink, MockSink, SinkError, SinkErrorReason, SinkPoint};

/// `[history]` configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Days raw points are kept in the embedded store.
    pub raw_retention_days: u32,
    /// Days hourly activity aggregates are kept in the embedded store.
    pub hourly_retention_days: u32,
    /// Seconds between pruning passes.
    pub prune_interval_s: u64,
    /// Rows deleted per pruning transaction (short transactions never stall ingest).
    pub prune_batch: u32,
    /// Journal events turned into points per write transaction.
    pub write_batch: u32,
    /// An hour is aggregated this many seconds after it ends (events may arrive late;
    /// later ones re-do the hour).
    pub aggregate_grace_s: u64,
    /// Battery, signal and temperature are written when they change meaningfully, and at
    /// least this often (seconds) while heartbeats arrive.
    pub health_interval_s: u64,
    /// The InfluxDB v2 sink.
    pub influxdb: InfluxConfig,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            raw_retention_days: 90,
            hourly_retention_days: 400,
            prune_interval_s: 600,
            prune_batch: 2000,
            write_batch: 2000,
            aggregate_grace_s: 300,
            health_interval_s: 3600,
            influxdb: InfluxConfig::default(),
        }
    }
}

/// `[history.influxdb]`: an InfluxDB v2 compatible server that receives every point.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfluxConfig {
    /// Send points to the server.
    pub enabled: bool,
    /// Base URL, `http://host:8086` or `https://…`.
    pub url: String,
    /// Organisation.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// API token (prefer `ANXIN_HISTORY__INFLUXDB__TOKEN`).
    pub token: String,
    /// Most points per write request.
    pub batch_size: u32,
    /// A smaller batch waits at most this long (ms) for more points.
    pub flush_interval_ms: u64,
    /// A write that has not finished after this long (ms) has failed.
    pub timeout_ms: u64,
    /// First retry delay after a failed write (ms); doubles up to `retry_max_ms`.
    pub retry_min_ms: u64,
    /// Longest retry delay (ms).
    pub retry_max_ms: u64,
    /// Most points kept for the server while it is away; beyond it the oldest are given
    /// up for the server (they stay in the embedded history) and counted.
    pub spool_max_points: u64,
    /// A backlog above this raises the spool alert (metric, log, status flag).
    pub spool_warn_points: u64,
}

impl Default for InfluxConfig {
    fn default() -> Self {
        InfluxConfig {
            enabled: false,
            url: "http://127.0.0.1:8086".into(),
            org: "anxin".into(),
            bucket: "anxin".into(),
            token: String::new(),
            batch_size: 5000,
            flush_interval_ms: 1000,
            timeout_ms: 10_000,
            retry_min_ms: 500,
            retry_max_ms: 30_000,
            spool_max_points: 20_000_000,
            spool_warn_points: 1_000_000,
        }
    }
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("enabled", &self.enabled)
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("batch_size", &self.batch_size)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("retry_min_ms", &self.retry_min_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("spool_max_points", &self.spool_max_points)
            .field("spool_warn_points", &self.spool_warn_points)
            .finish()
    }
}

/// History failures.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The sink could not be set up.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A query names no household, device or measurement.
    #[error("a history query needs a household, a device or a measurement")]
    Unscoped,
    /// A query's range is empty or reversed.
    #[error("empty time range {from_ms}..{to_ms}")]
    BadRange {
        /// Start.
        from_ms: i64,
        /// End.
        to_ms: i64,
    },
    /// A query asked for something that does not exist.
    #[error("unknown {what} {value:?}")]
    Unknown {
        /// What kind of name.
        what: &'static str,
        /// The name.
        value: String,
    },
    /// The configured time zone is unknown.
    #[error("time zone {0:?}: {1}")]
    TimeZone(String, String),
    /// The history tasks have stopped.
    #[error("history has stopped")]
    Stopped,
}

/// Label set `{sink=…}`: `embedded` or the sink's name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// Where the points went.
    pub sink: String,
}

/// Label set `{reason=…}` of sink errors.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkErrorLabels {
    /// Why the write failed.
    pub reason: SinkErrorReason,
}

/// Why points were given up: the `reason` label of `anxin_history_points_dropped_total`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DropReason {
    /// The sink's backlog passed `spool_max_points`: the oldest were given up for the
    /// server (they remain in the embedded history).
    spool_full,
    /// The server refused a point (HTTP 400/413/422) even alone.
    rejected,
    /// A journal event whose body history cannot read.
    unparsable,
}

/// Label set `{reason=…}` of dropped points.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Why.
    pub reason: DropReason,
}

/// Label set `{table=…}` of pruned rows: `raw` or `hourly`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// Which table.
    pub table: String,
}

/// History's metrics.
#[derive(Clone)]
pub struct HistoryMetrics {
    /// `anxin_history_points_written_total{sink}`: points stored (`embedded`) or accepted
    /// by the server (`influxdb`).
    pub points_written: Family<SinkLabels, Counter>,
    /// `anxin_history_spool_points`: ids waiting for the server.
    pub spool_points: Gauge,
    /// `anxin_history_spool_alert`: 1 while the backlog is above `spool_warn_points` or
    /// points were given up since it last drained.
    pub spool_alert: Gauge,
    /// `anxin_history_sink_errors_total{reason}`.
    pub sink_errors: Family<SinkErrorLabels, Counter>,
    /// `anxin_history_points_dropped_total{reason}`.
    pub points_dropped: Family<DropLabels, Counter>,
    /// `anxin_history_rows_pruned_total{table}`.
    pub rows_pruned: Family<TableLabels, Counter>,
    /// `anxin_history_sink_write_seconds`.
    pub sink_write_seconds: Histogram,
}

impl HistoryMetrics {
    /// Creates the metrics and registers them with `metrics`.
    pub fn register(metrics: &Metrics) -> Arc<HistoryMetrics> {
        let m = HistoryMetrics {
            points_written: Family::default(),
            spool_points: Gauge::default(),
            spool_alert: Gauge::default(),
            sink_errors: Family::default(),
            points_dropped: Family::default(),
            rows_pruned: Family::default(),
            sink_write_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        };
        metrics.register(
            "anxin_history_points_written",
            "History points stored (sink=embedded) or accepted by the time-series server",
            m.points_written.clone(),
        );
        metrics.register(
            "anxin_history_spool_points",
            "History points waiting for the time-series server",
            m.spool_points.clone(),
        );
        metrics.register(
            "anxin_history_spool_alert",
            "1 while the time-series backlog is above its warning level or points were given up",
            m.spool_alert.clone(),
        );
        metrics.register(
            "anxin_history_sink_errors",
            "Failed writes to the time-series server, by reason",
            m.sink_errors.clone(),
        );
        metrics.register(
            "anxin_history_points_dropped",
            "History points given up, by reason",
            m.points_dropped.clone(),
        );
        metrics.register(
            "anxin_history_rows_pruned",
            "History rows removed past retention, by table",
            m.rows_pruned.clone(),
        );
        metrics.register(
            "anxin_history_sink_write_seconds",
            "Duration of writes to the time-series server",
            m.sink_write_seconds.clone(),
        );
        Arc::new(m)
    }

    pub(crate) fn written(&self, sink: &str, n: usize) {
        self.points_written
            .get_or_create(&SinkLabels { sink: sink.into() })
            .inc_by(n as u64);
    }

    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        self.points_dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(n);
    }
}

/// What the sink's side reports (read by [`HistoryHandle::status`]).
#[derive(Debug, Default)]
pub(crate) struct SinkShared {
    /// Last id the server accepted.
    pub cursor: AtomicI64,
    /// Backlog above the warning level, or points given up since the last drain.
    pub alert: AtomicBool,
    /// Points given up (spool full or rejected).
    pub dropped: AtomicU64,
    /// When the server last accepted a batch (ms, gateway clock).
    pub last_ok_ms: AtomicI64,
    /// The last failure and when.
    pub last_error: Mutex<Option<(SinkErrorReason, i64)>>,
}

/// State shared by the history tasks and the handle.
pub(crate) struct Shared {
    /// Last journal id turned into points.
    pub journal: watch::Sender<i64>,
    /// Last id (point or hourly version) committed.
    pub high_water: watch::Sender<i64>,
    /// The sink's state (None: no sink).
    pub sink: Option<SinkShared>,
    /// Sink cursor changes (for waiting on a drain).
    pub sink_cursor: watch::Sender<i64>,
    /// Observations folded by the intake / written by the writer.
    pub obs_received: AtomicU64,
    pub obs_written: AtomicU64,
}

impl Shared {
    /// The id below which pruning may delete (the sink still needs what is above).
    pub fn prune_protect(&self) -> i64 {
        match &self.sink {
            Some(s) => s.cursor.load(Ordering::SeqCst),
            None => i64::MAX,
        }
    }
}

/// Most journal events kept in memory for the writer; beyond it they are dropped from
/// memory and the writer reads them back from the journal.
const MAX_BUFFERED_EVENTS: usize = 200_000;

/// A journal event as the committer handed it over, after its commit.
#[derive(Debug, Clone)]
pub(crate) struct JournalEvent {
    /// Position in the journal.
    pub journal_id: i64,
    /// Household, device, room, kind.
    pub tags: model::Tags,
    /// When it happened.
    pub at_ms: i64,
    /// What happened.
    pub body: anxin_firmware::wire::EventBody,
}

/// Heartbeats, availability changes and new journal events waiting for the writer.
///
/// Events are the journal's tail in memory: the writer takes them from here when its
/// cursor has reached them, and reads the journal itself (the durable copy) when it is
/// behind: after a restart, and whenever memory overflowed.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Committed events, in journal order.
    pub events: Vec<JournalEvent>,
    /// Events were dropped from `events` (too many): read the journal to catch up.
    pub overflow: bool,
    /// Availability changes, in arrival order.
    pub online: Vec<(model::Tags, bool, i64)>,
    /// Latest health per device (heartbeats fold: only the newest counts).
    pub health: HashMap<Arc<str>, (model::Tags, Health, i64)>,
    /// (household, hour) that had a live device: they get an activity row even if quiet.
    pub hours: HashSet<(Arc<str>, i64)>,
    /// Observations folded in.
    pub folded: u64,
}

impl Pending {
    /// Puts back what a failed write took (older than what arrived since).
    pub fn restore(&mut self, older: Pending) {
        let mut events = older.events;
        events.append(&mut self.events);
        self.events = events;
        self.overflow |= older.overflow;
        let mut online = older.online;
        online.append(&mut self.online);
        self.online = online;
        for (k, v) in older.health {
            self.health.entry(k).or_insert(v);
        }
        self.hours.extend(older.hours);
        self.folded += older.folded;
    }

    fn fold(&mut self, o: Observation) {
        let tags = model::Tags {
            household_id: o.household_id.clone(),
            device_id: o.device_id.clone(),
            room: o.room.clone(),
            kind: o.device_kind.clone(),
        };
        match o.what {
            ObservationKind::Event {
                journal_id, body, ..
            } => {
                if self.events.len() < MAX_BUFFERED_EVENTS {
                    self.events.push(JournalEvent {
                        journal_id,
                        tags,
                        at_ms: o.at_ms,
                        body,
                    });
                } else {
                    self.overflow = true;
                }
            }
            ObservationKind::Heartbeat(hb) => {
                if let Some(h) = &o.household_id {
                    self.hours.insert((h.clone(), model::hour_of(o.at_ms)));
                }
                let health = Health {
                    battery_pct: hb.battery_pct.map(i32::from),
                    battery_mv: hb.battery_mv.map(i32::from),
                    rssi_dbm: hb.rssi_dbm.map(i32::from),
                    temp_dc: hb.temp_dc.map(i32::from),
                };
                self.health
                    .insert(o.device_id.clone(), (tags, health, o.at_ms));
            }
            ObservationKind::Availability { online } => {
                self.online.push((tags, online, o.at_ms));
            }
        }
        self.folded += 1;
    }
}

/// What [`HistoryHandle::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryStatus {
    /// Last journal id in the embedded history.
    pub journal_cursor: i64,
    /// Last id committed (points and hourly aggregates).
    pub high_water: i64,
    /// The sink, when enabled.
    pub sink: Option<SinkStatus>,
}

/// The time-series sink's state: the technician alert reads `alert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// Ids waiting for the server.
    pub backlog: i64,
    /// Backlog above `spool_warn_points`, or points given up since it last drained.
    pub alert: bool,
    /// Points given up for the server since start.
    pub dropped: u64,
    /// When the server last accepted a batch (ms), 0 if never since start.
    pub last_ok_ms: i64,
    /// The last failure (`reason` label) and when (ms).
    pub last_error: Option<(String, i64)>,
}

/// Handle to the running history: the review queries and its state. Cheap to clone.
#[derive(Clone)]
pub struct HistoryHandle {
    store: Store,
    shared: Arc<Shared>,
    prune_tx: mpsc::Sender<oneshot::Sender<Result<PruneReport, HistoryError>>>,
    tz: jiff::tz::TimeZone,
}

impl HistoryHandle {
    /// Answers a review query from the embedded history (see [`HistoryQuery`]).
    pub async fn query(&self, q: &HistoryQuery) -> Result<HistoryResult, HistoryError> {
        query::run(&self.store, &self.tz, q).await
    }

    /// The history's and the sink's state.
    pub fn status(&self) -> HistoryStatus {
        let high_water = *self.shared.high_water.borrow();
        HistoryStatus {
            journal_cursor: *self.shared.journal.borrow(),
            high_water,
            sink: self.shared.sink.as_ref().map(|s| SinkStatus {
                backlog: (high_water - s.cursor.load(Ordering::SeqCst)).max(0),
                alert: s.alert.load(Ordering::SeqCst),
                dropped: s.dropped.load(Ordering::SeqCst),
                last_ok_ms: s.last_ok_ms.load(Ordering::SeqCst),
                last_error: s
                    .last_error
                    .lock()
                    .ok()
                    .and_then(|e| e.map(|(r, at)| (r.as_str().to_string(), at))),
            }),
        }
    }

    /// Runs a pruning pass now (in small batches, as the scheduled ones do).
    pub async fn prune_now(&self) -> Result<PruneReport, HistoryError> {
        let (tx, rx) = oneshot::channel();
        self.prune_tx
            .send(tx)
            .await
            .map_err(|_| HistoryError::Stopped)?;
        rx.await.map_err(|_| HistoryError::Stopped)?
    }

    /// Waits until every event committed to the journal so far, and every observation
    /// received so far, is in the embedded history. False on timeout.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<bool, HistoryError> {
        let target = self.store.last_journal_id().await?;
        let folded = self.shared.obs_received.load(Ordering::SeqCst);
        let mut journal = self.shared.journal.subscribe();
        let mut hw = self.shared.high_water.subscribe();
        let shared = self.shared.clone();
        let wait = async move {
            if journal.wait_for(|j| *j >= target).await.is_err() {
                return false;
            }
            while shared.obs_written.load(Ordering::SeqCst) < folded {
                if hw.changed().await.is_err() {
                    return false;
                }
            }
            true
        };
        Ok(tokio::time::timeout(timeout, wait).await.unwrap_or(false))
    }

    /// Waits until the sink has everything committed so far. False on timeout, or when
    /// there is no sink.
    pub async fn wait_sink_drained(&self, timeout: Duration) -> bool {
        if self.shared.sink.is_none() {
            return false;
        }
        let target = *self.shared.high_water.borrow();
        let mut rx = self.shared.sink_cursor.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// What history needs from the gateway (tests build it without one).
#[derive(Clone)]
pub struct HistoryParts {
    /// The store.
    pub store: Store,
    /// The clock (retention, hours, health interval).
    pub clock: SharedClock,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Registered devices (room and kind tags of journal events).
    pub registry: Registry,
    /// Configuration.
    pub config: HistoryConfig,
    /// IANA zone of the homes (day buckets of the review queries).
    pub timezone: String,
    /// Stops the tasks.
    pub cancel: CancellationToken,
    /// Tracks the tasks.
    pub tasks: TaskTracker,
}

/// Starts history: the embedded history, and the InfluxDB sink when enabled.
pub async fn start(
    services: &Services,
    observations: mpsc::Receiver<Observation>,
) -> anyhow::Result<HistoryHandle> {
    let parts = HistoryParts {
        store: services.store.clone(),
        clock: services.clock.clone(),
        metrics: services.metrics.clone(),
        registry: services.registry.clone(),
        config: services.config.history.clone(),
        timezone: services.config.general.timezone.clone(),
        cancel: services.cancel.clone(),
        tasks: services.tasks.clone(),
    };
    let handle = if parts.config.influxdb.enabled {
        let sink = InfluxSink::new(&parts.config.influxdb)?;
        info!(url = %parts.config.influxdb.url, bucket = %parts.config.influxdb.bucket, "history: InfluxDB sink enabled");
        spawn(parts, observations, Some(sink)).await?
    } else {
        spawn::<InfluxSink>(parts, observations, None).await?
    };
    Ok(handle)
}

/// Starts the history tasks on `parts` with an optional sink.
pub async fn spawn<S: HistorySink>(
    parts: HistoryParts,
    mut observations: mpsc::Receiver<Observation>,
    sink: Option<S>,
) -> Result<HistoryHandle, HistoryError> {
    let tz = jiff::tz::TimeZone::get(&parts.timezone)
        .map_err(|e| HistoryError::TimeZone(parts.timezone.clone(), e.to_string()))?;
    let metrics = HistoryMetrics::register(&parts.metrics);
    let cfg = Arc::new(parts.config.clone());
    let (journal, _) = watch::channel(0);
    let (high_water, _) = watch::channel(0);
    let (sink_cursor, _) = watch::channel(0);
    let shared = Arc::new(Shared {
        journal,
        high_water,
        sink: sink.as_ref().map(|_| SinkShared::default()),
        sink_cursor,
        obs_received: AtomicU64::new(0),
        obs_written: AtomicU64::new(0),
    });
    let pending = Arc::new(Mutex::new(Pending::default()));
    let wake = Arc::new(Notify::new());

    let writer = writer::Writer::open(
        parts.store.clone(),
        cfg.clone(),
        parts.clock.clone(),
        metrics.clone(),
        parts.registry.clone(),
        shared.clone(),
        pending.clone(),
    )
    .await?;

    if let Some(sink) = sink {
        let spool = spool::Spool::open(
            parts.store.clone(),
            sink,
            &cfg.influxdb,
            parts.clock.clone(),
            metrics.clone(),
            shared.clone(),
            writer.high_water(),
        )
        .await?;
        parts.tasks.spawn(spool.run(parts.cancel.clone()));
    }

    // Intake: fold observations without ever waiting on the database, so the committer
    // never blocks on history.
    {
        let cancel = parts.cancel.clone();
        let pending = pending.clone();
        let wake = wake.clone();
        let shared = shared.clone();
        parts.tasks.spawn(async move {
            loop {
                let o = tokio::select! {
                    _ = cancel.cancelled() => break,
                    o = observations.recv() => match o { Some(o) => o, None => break },
                };
                if let Ok(mut p) = pending.lock() {
                    p.fold(o);
                    shared.obs_received.fetch_add(1, Ordering::SeqCst);
                }
                wake.notify_one();
            }
        });
    }

    let (prune_tx, prune_rx) = mpsc::channel(4);
    let pruner = prune::Pruner::new(
        parts.store.clone(),
        cfg.clone(),
        parts.clock.clone(),
        metrics.clone(),
        shared.clone(),
    );
    parts
        .tasks
        .spawn(pruner.run(prune_rx, parts.cancel.clone()));

    {
        let cancel = parts.cancel.clone();
        parts
            .tasks
            .spawn(async move { writer.run(wake, cancel).await });
    }

    Ok(HistoryHandle {
        store: parts.store,
        shared,
        prune_tx,
        tz,
    })
}
