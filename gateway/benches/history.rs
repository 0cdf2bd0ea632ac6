//! History write rate: points per second into the embedded store (the writer turning a
//! journal of events into `history_points`), and into the sink (the spool backfilling
//! those points into a real VictoriaMetrics through the influxdb2 write path, then read
//! back to check that every one arrived).
//!
//! `cargo bench -p anxin-gateway --bench history [-- --quick]`. Needs `victoria-metrics`
//! for the sink part (skipped with a note when missing). Bounded: each phase stops after
//! its event count or 10 minutes. Results: `docs/benchmarks/history.md`.

#[path = "../tests/common/victoria.rs"]
mod victoria;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anxin_firmware::wire::EventBody;
use anxin_gateway::clock::{Clock, SystemClock};
use anxin_gateway::history::{self, HistoryConfig, HistoryHandle, HistoryParts, InfluxSink};
use anxin_gateway::ingest::{Observation, Registry};
use anxin_gateway::store::{CommitBatch, EventRow, NewDevice, NewHousehold, Store};
use anxin_gateway::telemetry::Metrics;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const LIMIT: Duration = Duration::from_secs(600);
const HOUSEHOLDS: usize = 1000;

struct Running {
    history: HistoryHandle,
    cancel: CancellationToken,
    tasks: TaskTracker,
    _tx: mpsc::Sender<Observation>,
}

async fn spawn(store: &Store, config: HistoryConfig, sink: Option<InfluxSink>) -> Running {
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let (tx, rx) = mpsc::channel(16);
    let parts = HistoryParts {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        metrics: Metrics::new(),
        registry: Registry::load(store).await.expect("registry"),
        config,
        timezone: "Asia/Shanghai".into(),
        cancel: cancel.clone(),
        tasks: tasks.clone(),
    };
    let history = history::spawn(parts, rx, sink)
        .await
        .expect("history starts");
    Running {
        history,
        cancel,
        tasks,
        _tx: tx,
    }
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tasks.wait()).await;
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_string());
    pb
}

/// Fills the journal with `n` door and motion events of `HOUSEHOLDS` homes over the last
/// day (not measured).
async fn fill_journal(store: &Store, n: usize) {
    let now = SystemClock.now_ms();
    let households: Vec<NewHousehold> = (0..HOUSEHOLDS)
        .map(|h| NewHousehold {
            id: format!("bh{h:04}"),
            name: format!("bench {h}"),
            address: String::new(),
        })
        .collect();
    store
        .upsert_households(&households, 1)
        .await
        .expect("households");
    let devices: Vec<NewDevice> = (0..HOUSEHOLDS)
        .flat_map(|h| {
            [("door", "门厅"), ("motion", "客厅")].map(|(k, room)| NewDevice {
                id: format!("bh{h:04}-{k}"),
                household_id: Some(format!("bh{h:04}")),
                kind: k.into(),
                room: Some(room.into()),
            })
        })
        .collect();
    store.upsert_devices(&devices, 1).await.expect("devices");
    let pb = bar(n as u64, "journal");
    let mut id = store.next_journal_id().await.expect("journal id");
    let mut done = 0;
    while done < n {
        let mut batch = CommitBatch::default();
        for _ in 0..2000.min(n - done) {
            let h = done % HOUSEHOLDS;
            let seq = (done / HOUSEHOLDS) as i64 + 1;
            let body = if done.is_multiple_of(3) {
                EventBody::Door { open: seq % 2 == 0 }
            } else {
                EventBody::Motion
            };
            let kind = if done.is_multiple_of(3) {
                "door"
            } else {
                "motion"
            };
            let at = now - 86_400_000 + (done as i64 * 86_400_000 / n as i64);
            batch.events.push(EventRow {
                journal_id: id,
                device_id: format!("bh{h:04}-{kind}"),
                boot: 1,
                seq: seq * 3 + (done % 3) as i64,
                household_id: Some(format!("bh{h:04}")),
                kind: body.kind(),
                event_ms: at,
                received_ms: at,
                body: serde_json::to_string(&body).expect("json"),
            });
            id += 1;
            done += 1;
        }
        store
            .commit(std::sync::Arc::new(batch))
            .await
            .expect("commit");
        pb.set_position(done as u64);
    }
    pb.finish();
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(store.pool())
        .await
        .expect("count");
    n
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 50_000 } else { 300_000 };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .expect("store");
    println!("history bench: {n} events of {HOUSEHOLDS} households (SQLite, synchronous=FULL)");
    fill_journal(&store, n).await;

    // 1. Embedded: the writer catches up with the journal.
    let run = spawn(&store, HistoryConfig::default(), None).await;
    let pb = bar(n as u64, "embedded");
    let started = Instant::now();
    loop {
        let done = run.history.status().journal_cursor;
        pb.set_position(done as u64);
        if done as usize >= n || started.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    pb.finish();
    run.stop().await;
    let points = count(&store, "SELECT COUNT(*) FROM history_points").await;
    println!(
        "embedded: {points} points in {secs:.2} s = {:.0} points/s",
        points as f64 / secs
    );

    // 2. Sink: the spool sends every stored point to VictoriaMetrics (as after an outage).
    if !std::path::Path::new("/usr/bin/victoria-metrics").exists()
        && std::env::var_os("PATH").is_none_or(|p| {
            !std::env::split_paths(&p).any(|d| d.join("victoria-metrics").is_file())
        })
    {
        println!("sink: skipped (victoria-metrics not installed)");
        return;
    }
    let vm = victoria::Victoria::start().await;
    sqlx::query("UPDATE history_cursor SET value = 0 WHERE name = 'sink'")
        .execute(store.pool())
        .await
        .expect("rewind");
    sqlx::query(
        "INSERT INTO history_cursor (name, value) VALUES ('sink', 0) ON CONFLICT (name) DO NOTHING",
    )
    .execute(store.pool())
    .await
    .expect("rewind");
    let mut config = HistoryConfig::default();
    config.influxdb.enabled = true;
    config.influxdb.url = vm.url();
    config.influxdb.batch_size = 5000;
    config.influxdb.flush_interval_ms = 0;
    let sink = InfluxSink::new(&config.influxdb).expect("sink");
    let run = spawn(&store, config, Some(sink)).await;
    let total = run.history.status().high_water;
    let pb = bar(total as u64, "sink");
    let started = Instant::now();
    loop {
        let backlog = run.history.status().sink.map(|s| s.backlog).unwrap_or(0);
        pb.set_position((total - backlog) as u64);
        if backlog == 0 || started.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    pb.finish();
    run.stop().await;
    let exported = vm
        .export_at_least(
            "{household=~\"bh.*\",device!=\"\"}",
            points as usize,
            Duration::from_secs(60),
        )
        .await;
    let at_server: usize = exported.iter().map(|s| s.values.len()).sum();
    println!(
        "sink: {total} ids ({points} points) to VictoriaMetrics in {secs:.2} s = {:.0} points/s; read back {at_server}",
        points as f64 / secs
    );
    assert_eq!(
        at_server as i64, points,
        "every point read back from the server"
    );
}
