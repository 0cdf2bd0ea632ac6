//! Fault suite: the history server is down for 60 s under load. `anxin run` (a real
//! process on the embedded broker, its InfluxDB v2 sink pointed at a real VictoriaMetrics
//! on loopback) takes a steady stream of events from twelve devices for the whole test.
//! VictoriaMetrics is stopped by its PID for 60 s of wall time while the load goes on:
//! every event is still acknowledged and stored, a help press during the outage still
//! raises its alert (the elder's "received" feedback arrives), and `/metrics` shows the
//! spool growing and the sink's errors. Then it is started again on the same port and
//! data directory; the spool drains by itself, and every point is read back from
//! VictoriaMetrics exactly once: none missing, none doubled, per series and timestamp.
//! The store is SQLite, or PostgreSQL when `ANXIN_TEST_POSTGRES` is set.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anxin_firmware::wire::{CommandKind, EventBody, HelpAction};
use anxin_gateway::store::{NewDevice, NewHousehold, Store};
use common::process::{AnxinProcess, free_port, wait_port};
use common::victoria::Victoria;
use common::{RawDevice, http_get, metric, now_ms};
use sqlx::Row;

/// Households of the load, each with a door contact and a motion sensor.
const HOUSEHOLDS: usize = 6;
/// Every device sends one event per tick: 12 devices at 10 events/s each.
const TICK: Duration = Duration::from_millis(100);
/// Most ticks the load runs (≈ 17 minutes): a bound, never reached in a passing run.
const MAX_TICKS: u64 = 10_000;
/// Load with the server up before the outage.
const WARMUP: Duration = Duration::from_secs(5);
/// The outage, in wall time.
const OUTAGE: Duration = Duration::from_secs(60);
/// Load with the server back after the spool drained.
const AFTER: Duration = Duration::from_secs(5);
/// Longest wait for the spool to drain after the restart.
const DRAIN: Duration = Duration::from_secs(120);
/// Longest wait for anything else to happen.
const WAIT: Duration = Duration::from_secs(30);
const BOOT: u32 = 1;

/// One event a device sent: the series it becomes, its timestamp and value.
#[derive(Debug, Clone)]
struct Sent {
    series: &'static str,
    device: String,
    ts: i64,
    value: f64,
}

/// What the load shares with the test while it runs.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    acked: AtomicU64,
    stop: AtomicBool,
}

/// A load device: its connection, next seq, highest acknowledged seq, last timestamp.
struct LoadDevice {
    raw: RawDevice,
    kind: &'static str,
    next: u32,
    acked: u32,
    last_ts: u64,
}

impl LoadDevice {
    fn take_acks(&mut self) {
        while let Ok(a) = self.raw.acks.try_recv() {
            if a.boot == BOOT {
                self.acked = self.acked.max(a.upto);
            }
        }
    }
}

/// Sends one event per device per tick until told to stop, then waits (bounded) until
/// every event is acknowledged. Returns every event sent.
async fn load(mut devices: Vec<LoadDevice>, progress: Arc<Progress>) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0..MAX_TICKS {
        tick.tick().await;
        if progress.stop.load(Ordering::SeqCst) {
            break;
        }
        assert!(n + 1 < MAX_TICKS, "the load ran out of ticks");
        for d in devices.iter_mut() {
            d.take_acks();
            let seq = d.next;
            d.next += 1;
            // Distinct, increasing timestamps per device: one point per series and ms.
            let ts = now_ms().max(d.last_ts + 1);
            d.last_ts = ts;
            let (body, series, value) = match d.kind {
                "door" => {
                    let open = seq % 2 == 1;
                    (
                        EventBody::Door { open },
                        "door_open",
                        if open { 1.0 } else { 0.0 },
                    )
                }
                _ => (EventBody::Motion, "motion_detected", 1.0),
            };
            d.raw.event(BOOT, seq, d.acked + 1, ts, body).await;
            sent.push(Sent {
                series,
                device: d.raw.id.as_str().to_string(),
                ts: ts as i64,
                value,
            });
        }
        progress.sent.store(sent.len() as u64, Ordering::SeqCst);
        let acked: u64 = devices.iter().map(|d| u64::from(d.acked)).sum();
        progress.acked.store(acked, Ordering::SeqCst);
    }
    for d in devices.iter_mut() {
        let last = d.next - 1;
        if d.acked < last {
            d.acked = d.raw.wait_ack(BOOT, last).await.upto;
        }
    }
    let acked: u64 = devices.iter().map(|d| u64::from(d.acked)).sum();
    progress.acked.store(acked, Ordering::SeqCst);
    assert_eq!(acked, sent.len() as u64, "every event acknowledged");
    sent
}

/// The gateway's `/metrics` now.
async fn metrics(http: std::net::SocketAddr) -> String {
    let (status, body) = http_get(http, "/metrics").await;
    assert_eq!(status, 200, "/metrics: {body}");
    body
}

fn spool(text: &str) -> f64 {
    metric(text, "anxin_history_spool_points", "")
}

fn unreachable_errors(text: &str) -> f64 {
    metric(
        text,
        "anxin_history_sink_errors_total",
        "reason=\"unreachable\"",
    )
}

/// Sleeps until `at` (the test's timeline: the outage itself is the wait).
async fn until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_server_down_for_a_minute_under_load_loses_and_doubles_nothing() {
    let mut vm = Victoria::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = common::process::write_config(
        dir.path(),
        &format!(
            "[history.influxdb]\nenabled = true\nurl = \"{}\"\norg = \"anxin\"\n\
             bucket = \"anxin\"\ntoken = \"test-token\"\nbatch_size = 1000\n\
             flush_interval_ms = 50\ntimeout_ms = 5000\nretry_min_ms = 100\n\
             retry_max_ms = 1000\nspool_warn_points = 1000\n",
            vm.url()
        ),
    );
    // `/metrics` and `/healthz` on a port the test knows.
    let http_port = free_port();
    let toml = std::fs::read_to_string(&run.path).unwrap();
    let any = "[http]\nlisten = \"127.0.0.1:0\"";
    assert!(toml.contains(any), "{toml}");
    std::fs::write(
        &run.path,
        toml.replace(any, &format!("[http]\nlisten = \"127.0.0.1:{http_port}\"")),
    )
    .unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();

    let store = Store::open(&run.store_url).await.unwrap();
    let households: Vec<NewHousehold> = (0..HOUSEHOLDS)
        .map(|h| NewHousehold {
            id: format!("fo{h}"),
            name: format!("测试户 {h}"),
            address: String::new(),
        })
        .collect();
    store.upsert_households(&households, 1).await.unwrap();
    let mut ids: Vec<(String, &'static str)> = Vec::new();
    for h in 0..HOUSEHOLDS {
        for kind in ["door", "motion"] {
            ids.push((format!("fo{h}-{kind}"), kind));
        }
    }
    let mut devs: Vec<NewDevice> = ids
        .iter()
        .map(|(id, kind)| NewDevice {
            id: id.clone(),
            household_id: Some(id[..id.find('-').unwrap()].to_string()),
            kind: (*kind).into(),
            room: Some("客厅".into()),
        })
        .collect();
    devs.push(NewDevice {
        id: "fo0-help".into(),
        household_id: Some("fo0".into()),
        kind: "help".into(),
        room: None,
    });
    store.upsert_devices(&devs, 1).await.unwrap();

    let gw = AnxinProcess::run(&run.path);
    wait_port(run.mqtt_port).await;
    wait_port(http_port).await;
    let mqtt: std::net::SocketAddr = format!("127.0.0.1:{}", run.mqtt_port).parse().unwrap();
    let mut devices = Vec::new();
    for (id, kind) in &ids {
        devices.push(LoadDevice {
            raw: RawDevice::connect(id, mqtt).await,
            kind,
            next: 1,
            acked: 0,
            last_ts: 0,
        });
    }
    let mut help = RawDevice::connect("fo0-help", mqtt).await;
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let load = tokio::spawn(load(devices, progress.clone()));

    // The server takes points before the outage.
    until(started + WARMUP).await;
    let before = metrics(http).await;
    assert!(
        metric(
            &before,
            "anxin_history_points_written_total",
            "sink=\"influxdb\""
        ) > 0.0,
        "the sink wrote nothing before the outage"
    );
    let errors_before = unreachable_errors(&before);

    // The outage: VictoriaMetrics stopped by its PID, the load goes on.
    let sent_at_stop = progress.sent.load(Ordering::SeqCst);
    let acked_at_stop = progress.acked.load(Ordering::SeqCst);
    let stopped = Instant::now();
    vm.stop().await;
    assert!(!vm.is_running());

    until(stopped + Duration::from_secs(5)).await;
    let early = metrics(http).await;
    // Detection goes on: a help press during the outage raises its alert, and the
    // elder's "received" feedback comes back.
    let press_ts = now_ms();
    help.event(
        BOOT,
        1,
        1,
        press_ts,
        EventBody::Help {
            act: HelpAction::Press,
        },
    )
    .await;
    let pressed = Instant::now();
    let feedback = tokio::time::timeout(WAIT, help.commands.recv())
        .await
        .expect("alert_received during the outage")
        .expect("command channel open");
    let help_latency = pressed.elapsed();
    assert_eq!(feedback.cmd, CommandKind::AlertReceived);

    until(stopped + OUTAGE - Duration::from_secs(5)).await;
    let late = metrics(http).await;
    let (status, health) = http_get(http, "/healthz").await;
    assert_eq!(
        status, 200,
        "ingest stays healthy without the history server: {health}"
    );
    let sent_late = progress.sent.load(Ordering::SeqCst);
    let acked_late = progress.acked.load(Ordering::SeqCst);
    assert!(
        acked_late - acked_at_stop + 3 * ids.len() as u64 >= sent_late - sent_at_stop,
        "events were acknowledged during the outage: {} of {} sent",
        acked_late - acked_at_stop,
        sent_late - sent_at_stop
    );
    let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert!(
        stored as u64 >= acked_late,
        "every acknowledged event is stored: {stored} < {acked_late}"
    );
    let (spool_early, spool_late) = (spool(&early), spool(&late));
    assert!(
        spool_early > 0.0 && spool_late > spool_early,
        "the spool grows during the outage: {spool_early} → {spool_late}"
    );
    assert!(
        unreachable_errors(&late) > errors_before,
        "the sink's errors are counted: {}",
        unreachable_errors(&late)
    );
    assert_eq!(
        metric(&late, "anxin_history_spool_alert", ""),
        1.0,
        "the spool alert is raised"
    );

    until(stopped + OUTAGE).await;
    let sent_at_restart = progress.sent.load(Ordering::SeqCst);
    let spool_at_restart = spool(&metrics(http).await);
    let restarting = Instant::now();
    vm.restart().await;
    let back = Instant::now();

    // The backlog drains by itself while the load goes on: poll the spool's metric.
    let deadline = back + DRAIN;
    let mut first_batch = None;
    let drained = loop {
        let backlog = spool(&metrics(http).await);
        if backlog < spool_at_restart && first_batch.is_none() {
            first_batch = Some(Instant::now());
        }
        if backlog == 0.0 {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the spool did not drain within {DRAIN:?}: {}",
            spool(&metrics(http).await)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    until(drained + AFTER).await;
    progress.stop.store(true, Ordering::SeqCst);
    let mut sent = tokio::time::timeout(WAIT * 2, load)
        .await
        .expect("the load stops")
        .expect("the load ran");
    sent.push(Sent {
        series: "help_press",
        device: "fo0-help".into(),
        ts: press_ts as i64,
        value: 1.0,
    });

    // Every event is in the embedded history, then the spool is empty once more.
    let events = sent.len() as i64;
    let deadline = Instant::now() + WAIT;
    loop {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM history_points WHERE household_id LIKE 'fo%' \
             AND measurement IN ('door', 'motion', 'help')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
        if n >= events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "embedded history has {n} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + WAIT;
    while spool(&metrics(http).await) != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the spool did not drain at the end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics(http).await;
    assert_eq!(
        metric(&text, "anxin_history_points_dropped_total", ""),
        0.0,
        "nothing given up"
    );
    assert_eq!(metric(&text, "anxin_history_spool_alert", ""), 0.0);

    // What the embedded history holds for these devices (events, and any availability
    // or health point), by series, device and timestamp.
    let rows = sqlx::query(
        "SELECT measurement, field, device_id, at_ms, value FROM history_points \
         WHERE household_id LIKE 'fo%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut embedded: BTreeMap<(String, String, i64), f64> = BTreeMap::new();
    for r in &rows {
        let m: String = r.get("measurement");
        let f: String = r.get("field");
        let prev = embedded.insert(
            (format!("{m}_{f}"), r.get("device_id"), r.get("at_ms")),
            r.get("value"),
        );
        assert!(prev.is_none(), "one embedded point per series and ms");
    }
    let mut expected: BTreeMap<(String, String, i64), f64> = BTreeMap::new();
    for s in &sent {
        let key = (s.series.to_string(), s.device.clone(), s.ts);
        assert_eq!(
            embedded.get(&key),
            Some(&s.value),
            "{key:?} in the embedded history"
        );
        expected.insert(key, s.value);
    }
    assert_eq!(expected.len(), sent.len(), "distinct timestamps per device");
    for (k, v) in &embedded {
        expected.entry(k.clone()).or_insert(*v);
    }

    // Read back from VictoriaMetrics: every sample of these devices.
    let exported = vm
        .export_at_least("{household=~\"fo.*\",device!=\"\"}", expected.len(), WAIT)
        .await;
    let mut got: BTreeMap<(String, String, i64), Vec<f64>> = BTreeMap::new();
    for s in &exported {
        let device = s.labels.get("device").cloned().unwrap_or_default();
        for (t, v) in s.timestamps.iter().zip(&s.values) {
            got.entry((s.name.clone(), device.clone(), *t))
                .or_default()
                .push(*v);
        }
    }
    let mut missing = Vec::new();
    let mut doubled = Vec::new();
    let mut wrong = Vec::new();
    for (key, v) in &expected {
        match got.get(key) {
            None => missing.push(key.clone()),
            Some(vs) if vs.len() > 1 => doubled.push((key.clone(), vs.len())),
            Some(vs) if vs[0] != *v => wrong.push((key.clone(), vs[0], *v)),
            Some(_) => {}
        }
    }
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    let duplicates: usize = doubled.iter().map(|(_, n)| n - 1).sum();
    // Counts per series (name and device): sent against read back.
    let mut per_series: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for (name, device, _) in expected.keys() {
        per_series
            .entry((name.clone(), device.clone()))
            .or_default()
            .0 += 1;
    }
    for ((name, device, _), vs) in &got {
        per_series
            .entry((name.clone(), device.clone()))
            .or_default()
            .1 += vs.len();
    }
    let unequal: Vec<_> = per_series.iter().filter(|(_, (a, b))| a != b).collect();

    let during = sent_at_restart - sent_at_stop;
    eprintln!(
        "fault_history_outage: {} points sent ({} events of {} devices, 1 help press, {} other \
         points), {during} events during the {} s outage; spool {spool_early} → {spool_late} \
         → {spool_at_restart} at the restart; restart took {} ms, restart → first batch \
         accepted {} ms → spool empty {} ms; help press → alert_received {} ms during the \
         outage; duplicates {duplicates}, missing {}, wrong values {}, unknown {}; {}",
        expected.len(),
        sent.len() - 1,
        ids.len(),
        expected.len() - sent.len(),
        OUTAGE.as_secs(),
        (back - restarting).as_millis(),
        (first_batch.unwrap_or(drained) - back).as_millis(),
        (drained - back).as_millis(),
        help_latency.as_millis(),
        missing.len(),
        wrong.len(),
        extra.len(),
        if common::on_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
    );
    assert!(missing.is_empty(), "missing at the server: {missing:?}");
    assert!(doubled.is_empty(), "doubled at the server: {doubled:?}");
    assert!(wrong.is_empty(), "wrong values: {wrong:?}");
    assert!(
        extra.is_empty(),
        "at the server, not in the history: {extra:?}"
    );
    assert!(unequal.is_empty(), "counts per series differ: {unequal:?}");
    assert!(
        during >= 40 * ids.len() as u64,
        "the load went on during the outage: {during} events"
    );

    let helps: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM alerts WHERE kind = 'help' AND household_id = 'fo0'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
    .get("n");
    assert_eq!(helps, 1, "one help alert");
    store.close().await;
    drop(help);
    drop(gw);
}
