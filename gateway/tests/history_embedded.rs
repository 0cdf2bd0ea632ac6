//! The embedded history and its spool, on a real SQLite store with a manual clock and the
//! mock sink: heartbeats fold into device state, hourly activity (re-done when an event
//! arrives late), review queries, the spool through an outage (in order, nothing lost,
//! alert raised and cleared), its bound, a refused point, retention, and a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::{EventBody, Heartbeat, HelpAction};
use anxin_gateway::clock::ManualClock;
use anxin_gateway::history::{
    self, HistoryConfig, HistoryHandle, HistoryParts, HistoryQuery, MockSink, Resolution,
};
use anxin_gateway::ingest::{Observation, ObservationKind, Registry};
use anxin_gateway::store::{CommitBatch, EventRow, NewDevice, NewHousehold, Store};
use anxin_gateway::telemetry::Metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(20);
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2025-03-03 00:00 UTC (08:00 in Shanghai), on an hour boundary.
const T0: i64 = 1_740_960_000_000;

struct Lib {
    store: Store,
    clock: Arc<ManualClock>,
    tx: mpsc::Sender<Observation>,
    history: HistoryHandle,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    seq: HashMap<String, i64>,
    dir: tempfile::TempDir,
}

async fn open_store(dir: &std::path::Path) -> Store {
    Store::open(&format!("sqlite://{}", dir.join("anxin.db").display()))
        .await
        .unwrap()
}

async fn lib(cfg: HistoryConfig, sink: Option<MockSink>) -> Lib {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    store
        .upsert_households(
            &[NewHousehold {
                id: "h1".into(),
                name: "王阿姨".into(),
                address: String::new(),
            }],
            1,
        )
        .await
        .unwrap();
    let devices = [
        ("door-1", "door", Some("门厅")),
        ("motion-1", "motion", None),
        ("help-1", "help", None),
    ];
    store
        .upsert_devices(
            &devices
                .iter()
                .map(|(id, kind, room)| NewDevice {
                    id: (*id).into(),
                    household_id: Some("h1".into()),
                    kind: (*kind).into(),
                    room: room.map(str::to_string),
                })
                .collect::<Vec<_>>(),
            1,
        )
        .await
        .unwrap();
    reopen(store, dir, cfg, sink, Arc::new(ManualClock::new(T0))).await
}

async fn reopen(
    store: Store,
    dir: tempfile::TempDir,
    config: HistoryConfig,
    sink: Option<MockSink>,
    clock: Arc<ManualClock>,
) -> Lib {
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let (tx, rx) = mpsc::channel(1024);
    let parts = HistoryParts {
        store: store.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
        registry: Registry::load(&store).await.unwrap(),
        config,
        timezone: "Asia/Shanghai".into(),
        cancel: cancel.clone(),
        tasks: tasks.clone(),
    };
    let history = match sink {
        Some(s) => history::spawn(parts, rx, Some(s)).await.unwrap(),
        None => history::spawn::<MockSink>(parts, rx, None).await.unwrap(),
    };
    Lib {
        store,
        clock,
        tx,
        history,
        metrics,
        cancel,
        tasks,
        seq: HashMap::new(),
        dir,
    }
}

/// The observation ingest would hand over: household, kind and room from the registry.
fn obs(device: &str, at: i64, what: ObservationKind) -> Observation {
    let (kind, room) = match device {
        "door-1" => ("door", Some("门厅")),
        "motion-1" => ("motion", None),
        "help-1" => ("help", None),
        other => panic!("unknown test device {other}"),
    };
    Observation {
        device_id: device.into(),
        household_id: Some("h1".into()),
        room: room.map(Into::into),
        device_kind: kind.into(),
        at_ms: at,
        received_ms: at,
        what,
    }
}

/// Commits an event to the journal, as ingest does.
async fn commit(store: &Store, device: &str, seq: i64, at: i64, body: EventBody) -> i64 {
    let journal_id = store.next_journal_id().await.unwrap();
    let batch = CommitBatch {
        events: vec![EventRow {
            journal_id,
            device_id: device.into(),
            boot: 1,
            seq,
            household_id: Some("h1".into()),
            kind: body.kind(),
            event_ms: at,
            received_ms: at,
            body: serde_json::to_string(&body).unwrap(),
        }],
        ..CommitBatch::default()
    };
    store.commit(std::sync::Arc::new(batch)).await.unwrap();
    journal_id
}

impl Lib {
    /// Commits an event to the journal (as ingest does) and tells history.
    async fn event(&mut self, device: &str, at: i64, body: EventBody) {
        let seq = self.seq.entry(device.to_string()).or_insert(0);
        *seq += 1;
        let journal_id = commit(&self.store, device, *seq, at, body).await;
        let what = ObservationKind::Event {
            journal_id,
            boot: 1,
            seq: *seq as u32,
            body,
        };
        self.tx.send(obs(device, at, what)).await.unwrap();
    }

    async fn heartbeat(&self, device: &str, at: i64, battery: u8, rssi: i16) {
        let hb: Heartbeat = serde_json::from_str(&format!(
            "{{\"v\":1,\"boot\":1,\"seq\":0,\"ts\":{at},\"clk\":\"unix\",\"battery_pct\":{battery},\
             \"rssi_dbm\":{rssi},\"fw\":\"1.0.0\",\"uptime_s\":1,\"outbox\":0,\"dropped\":0,\"interval_s\":300}}"
        ))
        .unwrap();
        let what = ObservationKind::Heartbeat(Box::new(hb));
        self.tx.send(obs(device, at, what)).await.unwrap();
    }

    async fn caught_up(&self) {
        // Observations are folded asynchronously: wait until the intake has them all.
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.tx.capacity() < self.tx.max_capacity() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        assert!(
            self.history.wait_caught_up(WAIT).await.unwrap(),
            "history caught up"
        );
    }

    async fn query(&self, q: HistoryQuery) -> history::HistoryResult {
        self.history.query(&q).await.unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.store.pool())
            .await
            .unwrap();
        n
    }

    async fn stop(self) -> (Store, tempfile::TempDir, Arc<ManualClock>) {
        self.cancel.cancel();
        self.tasks.close();
        assert!(tokio::time::timeout(WAIT, self.tasks.wait()).await.is_ok());
        (self.store, self.dir, self.clock)
    }
}

fn all(household: &str) -> HistoryQuery {
    HistoryQuery {
        household_id: Some(household.into()),
        from_ms: 0,
        to_ms: i64::MAX,
        ..HistoryQuery::default()
    }
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn heartbeats_fold_into_device_state_and_only_meaningful_changes_become_points() {
    let l = lib(HistoryConfig::default(), None).await;
    for i in 0..10 {
        l.heartbeat("door-1", T0 + i * 5 * MIN, 90, -60).await;
        l.caught_up().await;
    }
    l.heartbeat("door-1", T0 + 50 * MIN, 85, -61).await; // battery dropped 5 %
    l.caught_up().await;
    l.heartbeat("door-1", T0 + 55 * MIN, 85, -62).await; // nothing new
    l.caught_up().await;
    l.heartbeat("door-1", T0 + 111 * MIN, 85, -62).await; // an hour since the last point
    l.caught_up().await;
    let r = l
        .query(HistoryQuery {
            field: Some("battery_pct".into()),
            ..all("h1")
        })
        .await;
    let at: Vec<i64> = r.series[0].points.iter().map(|p| p.at_ms).collect();
    assert_eq!(at, vec![T0, T0 + 50 * MIN, T0 + 111 * MIN]);
    assert_eq!(r.series[0].points[1].value, 85.0);
    assert_eq!(r.series[0].measurement, "device");
    l.stop().await;
}

#[tokio::test]
async fn hourly_activity_is_written_when_the_hour_closes_and_redone_when_an_event_arrives_late() {
    let sink = MockSink::new();
    let cfg = HistoryConfig {
        aggregate_grace_s: 300,
        ..HistoryConfig::default()
    };
    let mut l = lib(cfg, Some(sink.clone())).await;
    l.clock.set(T0 + 30 * MIN);
    l.event("motion-1", T0 + MIN, EventBody::Motion).await;
    l.event("motion-1", T0 + MIN + 10, EventBody::Motion).await;
    l.event("door-1", T0 + 2 * MIN, EventBody::Door { open: true })
        .await;
    l.caught_up().await;
    let activity = HistoryQuery {
        measurement: Some("activity".into()),
        field: Some("events".into()),
        ..all("h1")
    };
    assert!(
        l.query(activity.clone()).await.series[0].points.is_empty(),
        "hour still open"
    );

    l.clock.set(T0 + HOUR + 5 * MIN); // the hour ended and its grace period passed
    until("the hour's activity", async || {
        !l.query(activity.clone()).await.series[0].points.is_empty()
    })
    .await;
    let r = l
        .query(HistoryQuery {
            field: None,
            ..activity.clone()
        })
        .await;
    let get = |f: &str| r.series.iter().find(|s| s.field == f).unwrap().points[0].value;
    assert_eq!(
        (
            get("events"),
            get("motion"),
            get("door_open"),
            get("active_minutes")
        ),
        (3.0, 2.0, 1.0, 2.0)
    );
    assert_eq!(r.series[0].points[0].at_ms, T0);
    assert!(l.history.wait_sink_drained(WAIT).await);

    l.event(
        "help-1",
        T0 + 40 * MIN,
        EventBody::Help {
            act: HelpAction::Press,
        },
    )
    .await;
    until("the hour redone", async || {
        l.query(activity.clone()).await.series[0].points[0].value == 4.0
    })
    .await;
    assert!(l.history.wait_sink_drained(WAIT).await);
    let sent: Vec<f64> = sink
        .accepted()
        .iter()
        .filter(|p| p.measurement == "activity")
        .map(|p| {
            assert_eq!(
                p.at_ms, T0,
                "same series and timestamp: the server overwrites"
            );
            assert_eq!(p.tags, vec![("household", "h1".to_string())]);
            p.fields.iter().find(|(k, _)| k == "events").unwrap().1
        })
        .collect();
    assert_eq!(sent, vec![3.0, 4.0]);
    l.stop().await;
}

#[tokio::test]
async fn review_queries_answer_raw_points_and_minute_hour_and_local_day_buckets() {
    let mut l = lib(HistoryConfig::default(), None).await;
    l.clock.set(T0 + 3 * DAY);
    for i in 0..6 {
        l.event("motion-1", T0 + i * 20 * MIN, EventBody::Motion)
            .await;
    }
    l.event("door-1", T0 + 30 * MIN, EventBody::Door { open: true })
        .await;
    l.event(
        "door-1",
        T0 + 30 * MIN + 5_000,
        EventBody::Door { open: false },
    )
    .await;
    l.event("door-1", T0 + DAY, EventBody::Door { open: true })
        .await;
    l.caught_up().await;

    let raw = l.query(all("h1")).await;
    assert_eq!(raw.series.len(), 2);
    let door = &raw.series[0];
    assert_eq!(
        (door.measurement.as_str(), door.field.as_str()),
        ("door", "open")
    );
    assert_eq!(door.device_id.as_deref(), Some("door-1"));
    assert_eq!(door.room.as_deref(), Some("门厅"));
    assert_eq!(door.kind.as_deref(), Some("door"));
    assert_eq!(
        door.points.iter().map(|p| p.value).collect::<Vec<_>>(),
        vec![1.0, 0.0, 1.0]
    );

    let minute = l
        .query(HistoryQuery {
            device_id: Some("door-1".into()),
            resolution: Resolution::Minute,
            household_id: None,
            ..all("h1")
        })
        .await;
    let p = &minute.series[0].points[0];
    assert_eq!(
        (p.at_ms, p.count, p.min, p.max, p.sum),
        (T0 + 30 * MIN, 2, 0.0, 1.0, 1.0)
    );

    let hour = l
        .query(HistoryQuery {
            measurement: Some("motion".into()),
            resolution: Resolution::Hour,
            household_id: None,
            ..all("h1")
        })
        .await;
    let counts: Vec<(i64, i64)> = hour.series[0]
        .points
        .iter()
        .map(|p| (p.at_ms, p.count))
        .collect();
    assert_eq!(counts, vec![(T0, 3), (T0 + HOUR, 3)]);

    // Local days in Shanghai start at 16:00 UTC: T0 (08:00 local) and T0 + 1 day are two days.
    let day = l
        .query(HistoryQuery {
            field: Some("open".into()),
            resolution: Resolution::Day,
            ..all("h1")
        })
        .await;
    let days: Vec<(i64, i64)> = day.series[0]
        .points
        .iter()
        .map(|p| (p.at_ms, p.count))
        .collect();
    assert_eq!(days, vec![(T0 - 8 * HOUR, 2), (T0 + DAY - 8 * HOUR, 1)]);

    let limited = l
        .query(HistoryQuery {
            limit: Some(4),
            ..all("h1")
        })
        .await;
    assert!(limited.truncated);
    assert_eq!(
        limited.series.iter().map(|s| s.points.len()).sum::<usize>(),
        4
    );
    let unscoped = l
        .history
        .query(&HistoryQuery {
            household_id: None,
            ..all("h1")
        })
        .await;
    assert!(matches!(unscoped, Err(history::HistoryError::Unscoped)));
    let reversed = l
        .history
        .query(&HistoryQuery {
            from_ms: 5,
            to_ms: 5,
            ..all("h1")
        })
        .await;
    assert!(matches!(
        reversed,
        Err(history::HistoryError::BadRange { .. })
    ));
    l.stop().await;
}

#[tokio::test]
async fn an_outage_of_the_sink_keeps_every_point_and_delivers_them_in_order_when_it_returns() {
    let sink = MockSink::new();
    let mut cfg = HistoryConfig::default();
    cfg.influxdb.batch_size = 7;
    cfg.influxdb.flush_interval_ms = 10;
    cfg.influxdb.retry_min_ms = 10;
    cfg.influxdb.retry_max_ms = 50;
    cfg.influxdb.spool_warn_points = 20;
    let mut l = lib(cfg, Some(sink.clone())).await;
    for i in 0..10 {
        l.event("motion-1", T0 + i * 1000, EventBody::Motion).await;
    }
    l.caught_up().await;
    assert!(l.history.wait_sink_drained(WAIT).await);
    sink.set_down(true);
    for i in 10..60 {
        l.event(
            "door-1",
            T0 + i * 1000,
            EventBody::Door { open: i % 2 == 0 },
        )
        .await;
    }
    l.caught_up().await;
    until("failed attempts and the spool alert", async || {
        sink.attempts() > sink.batches() + 2 && l.history.status().sink.is_some_and(|s| s.alert)
    })
    .await;
    let s = l.history.status().sink.unwrap();
    assert_eq!(s.backlog, 50);
    assert!(s.alert, "alert raised above spool_warn_points");
    assert_eq!(s.last_error.map(|e| e.0), Some("unreachable".to_string()));
    assert_eq!(
        metric(&l.metrics.encode(), "anxin_history_spool_alert", ""),
        1.0
    );

    sink.set_down(false);
    assert!(l.history.wait_sink_drained(WAIT).await);
    let s = l.history.status().sink.unwrap();
    assert_eq!((s.backlog, s.alert, s.dropped), (0, false, 0));
    let got: Vec<i64> = sink.accepted().iter().map(|p| p.at_ms).collect();
    let want: Vec<i64> = (0..60).map(|i| T0 + i * 1000).collect();
    assert_eq!(got, want, "every point once, in order");
    let text = l.metrics.encode();
    assert_eq!(
        metric(&text, "anxin_history_points_written_total", "sink=\"mock\""),
        60.0
    );
    assert_eq!(metric(&text, "anxin_history_spool_points", ""), 0.0);
    l.stop().await;
}

#[tokio::test]
async fn a_full_spool_gives_up_the_oldest_points_for_the_server_but_keeps_them_in_the_embedded_history()
 {
    let sink = MockSink::new();
    sink.set_down(true);
    let mut cfg = HistoryConfig::default();
    cfg.influxdb.spool_max_points = 30;
    cfg.influxdb.spool_warn_points = 10;
    cfg.influxdb.retry_min_ms = 10;
    cfg.influxdb.retry_max_ms = 20;
    let mut l = lib(cfg, Some(sink.clone())).await;
    for i in 0..50 {
        l.event("motion-1", T0 + i * 1000, EventBody::Motion).await;
    }
    l.caught_up().await;
    until("the bound applied", async || {
        l.history.status().sink.is_some_and(|s| s.backlog <= 30)
    })
    .await;
    sink.set_down(false);
    assert!(l.history.wait_sink_drained(WAIT).await);
    let got: Vec<i64> = sink.accepted().iter().map(|p| p.at_ms).collect();
    assert_eq!(
        got,
        (20..50).map(|i| T0 + i * 1000).collect::<Vec<_>>(),
        "the newest 30, in order"
    );
    let s = l.history.status().sink.unwrap();
    assert_eq!(s.dropped, 20);
    assert_eq!(
        metric(
            &l.metrics.encode(),
            "anxin_history_points_dropped_total",
            "reason=\"spool_full\""
        ),
        20.0
    );
    assert_eq!(
        l.count("history_points").await,
        50,
        "the embedded history has them all"
    );
    l.stop().await;
}

#[tokio::test]
async fn a_point_the_server_refuses_is_given_up_alone_and_the_others_are_delivered() {
    let sink = MockSink::new();
    sink.reject_field(Some("ppm"));
    let mut cfg = HistoryConfig::default();
    cfg.influxdb.flush_interval_ms = 0;
    let mut l = lib(cfg, Some(sink.clone())).await;
    l.event("motion-1", T0, EventBody::Motion).await;
    l.event(
        "help-1",
        T0 + 1,
        EventBody::Gas {
            alarm: true,
            ppm: 900,
        },
    )
    .await;
    l.event("door-1", T0 + 2, EventBody::Door { open: true })
        .await;
    l.caught_up().await;
    assert!(l.history.wait_sink_drained(WAIT).await);
    let got: Vec<String> = sink
        .accepted()
        .iter()
        .map(|p| p.measurement.clone())
        .collect();
    assert!(got == vec!["motion", "door"], "{got:?}");
    assert_eq!(
        l.history.status().sink.unwrap().dropped,
        2,
        "the gas line's two fields"
    );
    l.stop().await;
}

#[tokio::test]
async fn pruning_keeps_hourly_activity_longer_than_raw_points_and_nothing_the_sink_still_needs() {
    let sink = MockSink::new();
    let mut cfg = HistoryConfig {
        raw_retention_days: 2,
        hourly_retention_days: 5,
        prune_batch: 3,
        aggregate_grace_s: 0,
        ..HistoryConfig::default()
    };
    cfg.influxdb.retry_min_ms = 10;
    cfg.influxdb.retry_max_ms = 20;
    let mut l = lib(cfg, Some(sink.clone())).await;
    l.clock.set(T0 + 2 * HOUR);
    for i in 0..10 {
        l.event("motion-1", T0 + i * MIN, EventBody::Motion).await;
    }
    l.caught_up().await;
    until("activity of the first hour", async || {
        l.count("history_hourly").await == 1
    })
    .await;
    assert!(l.history.wait_sink_drained(WAIT).await);

    // Newer points the sink has not received yet (it is down) are never pruned.
    sink.set_down(true);
    l.clock.set(T0 + 3 * DAY);
    for i in 0..4 {
        l.event(
            "door-1",
            T0 + 3 * DAY - HOUR + i,
            EventBody::Door { open: true },
        )
        .await;
    }
    l.caught_up().await;
    let r = l.history.prune_now().await.unwrap();
    assert_eq!((r.raw_deleted, r.hourly_deleted), (10, 0), "{r:?}");
    assert_eq!(l.count("history_points").await, 4);
    until("activity of the door's hour", async || {
        l.count("history_hourly").await == 2
    })
    .await;

    l.clock.set(T0 + 6 * DAY);
    let r = l.history.prune_now().await.unwrap();
    assert_eq!(
        (r.raw_deleted, r.hourly_deleted),
        (0, 1),
        "the first hour is past 5 days; the door points are past 2 days but the sink has not got them: {r:?}"
    );
    assert_eq!(l.count("history_points").await, 4);
    sink.set_down(false);
    assert!(l.history.wait_sink_drained(WAIT).await);
    let r = l.history.prune_now().await.unwrap();
    assert_eq!((r.raw_deleted, r.hourly_deleted), (4, 0), "{r:?}");
    assert_eq!(l.count("history_points").await, 0);
    assert_eq!(
        l.count("history_hourly").await,
        1,
        "the door's hour is kept 5 days"
    );
    l.stop().await;
}

#[tokio::test]
async fn a_restarted_history_resumes_from_its_cursors_without_repeating_a_point() {
    let sink = MockSink::new();
    let mut l = lib(HistoryConfig::default(), Some(sink.clone())).await;
    for i in 0..5 {
        l.event("motion-1", T0 + i, EventBody::Motion).await;
    }
    l.caught_up().await;
    assert!(l.history.wait_sink_drained(WAIT).await);
    let seq = l.seq.clone();
    let (store, dir, clock) = l.stop().await;

    // Events committed while history was not running (a crash between the commit and
    // history) are read back from the journal.
    for i in 5..7 {
        commit(&store, "motion-1", i + 1, T0 + i, EventBody::Motion).await;
    }
    let mut l = reopen(
        store.clone(),
        dir,
        HistoryConfig::default(),
        Some(sink.clone()),
        clock,
    )
    .await;
    l.seq = seq;
    l.seq.insert("motion-1".into(), 7);
    l.event("motion-1", T0 + 7, EventBody::Motion).await;
    l.caught_up().await;
    assert!(l.history.wait_sink_drained(WAIT).await);
    assert_eq!(l.count("history_points").await, 8);
    let got: Vec<i64> = sink.accepted().iter().map(|p| p.at_ms).collect();
    assert_eq!(got, (0..8).map(|i| T0 + i).collect::<Vec<_>>());
    l.stop().await;
}
