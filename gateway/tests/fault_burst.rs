//! Fault suite: a burst far above the normal rate. Forty devices each send 400 events as
//! fast as their connection takes them (≈ 16,000 events in a few seconds, against a
//! normal street's few per second), with a help press in the middle. Memory stays bounded
//! (the embedded broker's hand-over to ingest is a bounded queue: back-pressure, not
//! buffering), every event is stored once, and the help press raises its alert once. How
//! long the help press took during the burst is printed: it shares the ingest queue with
//! the burst today.

use crate::common;

use std::time::{Duration, Instant};

use anxin_firmware::wire::{EventBody, HelpAction};
use anxin_gateway::store::{NewDevice, NewHousehold, Store};
use common::RawDevice;
use common::process::{AnxinProcess, wait_port};
use sqlx::Row;

const DEVICES: usize = 40;
const EVENTS: u32 = 400;
/// Growth of the resident set allowed during the burst.
const RSS_GROWTH_BOUND_KIB: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_keeps_memory_bounded_loses_nothing_and_raises_the_help_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::process::write_config(dir.path(), "");
    {
        let store = Store::open(&run.store_url).await.unwrap();
        let households: Vec<NewHousehold> = (0..DEVICES / 4)
            .map(|h| NewHousehold {
                id: format!("bh{h}"),
                name: format!("测试户 {h}"),
                address: String::new(),
            })
            .collect();
        store.upsert_households(&households, 1).await.unwrap();
        let mut devs: Vec<NewDevice> = (0..DEVICES)
            .map(|i| NewDevice {
                id: format!("bh{}-pir{i}", i / 4),
                household_id: Some(format!("bh{}", i / 4)),
                kind: "motion".into(),
                room: Some("living".into()),
            })
            .collect();
        devs.push(NewDevice {
            id: "bh0-help".into(),
            household_id: Some("bh0".into()),
            kind: "help".into(),
            room: None,
        });
        store.upsert_devices(&devs, 1).await.unwrap();
        store.close().await;
    }
    let gw = AnxinProcess::run(&run.path);
    wait_port(run.mqtt_port).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", run.mqtt_port).parse().unwrap();
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        devices.push(RawDevice::connect(&format!("bh{}-pir{i}", i / 4), addr).await);
    }
    let mut help = RawDevice::connect("bh0-help", addr).await;
    let baseline = gw.rss_kib();

    let started = Instant::now();
    let mut peak = baseline;
    let mut pressed = None;
    let mut pressed_ms = 0i64;
    for seq in 1..=EVENTS {
        for d in &devices {
            d.event(1, seq, 1, common::now_ms(), EventBody::Motion)
                .await;
        }
        if seq == EVENTS / 2 {
            help.event(
                1,
                1,
                1,
                common::now_ms(),
                EventBody::Help {
                    act: HelpAction::Press,
                },
            )
            .await;
            pressed = Some(Instant::now());
            pressed_ms = common::now_ms() as i64;
        }
        if seq % 20 == 0 {
            peak = peak.max(gw.rss_kib());
        }
    }
    let sent_in = started.elapsed();
    // The feedback command is the elder's sign that the press arrived.
    let feedback = tokio::time::timeout(Duration::from_secs(60), help.commands.recv())
        .await
        .expect("alert_received during the burst")
        .expect("command channel open");
    let help_latency = pressed.map(|p| p.elapsed()).unwrap_or_default();
    assert_eq!(
        feedback.cmd,
        anxin_firmware::wire::CommandKind::AlertReceived
    );
    for d in devices.iter_mut() {
        d.wait_ack(1, EVENTS).await;
        peak = peak.max(gw.rss_kib());
    }
    let drained_in = started.elapsed();
    assert!(
        peak.saturating_sub(baseline) < RSS_GROWTH_BOUND_KIB,
        "memory grew from {baseline} to {peak} KiB"
    );

    let store = Store::open(&run.store_url).await.unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT device_id || ':' || CAST(seq AS TEXT)) AS d \
         FROM events WHERE kind = 'motion'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let expected = DEVICES as i64 * i64::from(EVENTS);
    assert_eq!(row.get::<i64, _>("n"), expected, "every event stored");
    assert_eq!(row.get::<i64, _>("d"), expected, "each once");
    let helps: i64 = sqlx::query("SELECT COUNT(*) AS n FROM alerts WHERE kind = 'help'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(helps, 1, "one help alert");
    // Where the press spent its time: before the gateway received it (the sending
    // clients and the broker), and from receipt to the stored alert.
    let received_ms: i64 = sqlx::query("SELECT received_ms FROM events WHERE kind = 'help'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("received_ms");
    let raised_ms: i64 = sqlx::query("SELECT raised_ms FROM alerts WHERE kind = 'help'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("raised_ms");
    eprintln!(
        "fault_burst: {expected} events sent in {:.1} s, all acknowledged after {:.1} s; \
         RSS {} → {} MiB at most; help press → alert_received {} ms during the burst \
         (press → received by the gateway {} ms, received → alert stored {} ms)",
        sent_in.as_secs_f64(),
        drained_in.as_secs_f64(),
        baseline / 1024,
        peak / 1024,
        help_latency.as_millis(),
        received_ms - pressed_ms,
        raised_ms - received_ms
    );
    store.close().await;
    drop(gw);
}
