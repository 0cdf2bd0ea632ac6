//! SIGKILL the gateway while an inactivity deadline is pending, start it again: the
//! pre-alarm and the alert each fire once, at their time. The gateway runs as a process
//! (`anxin run`) on a warped clock (60× real time, fixed origins, so that both processes
//! read the same time); the alerts are read from its store.

use crate::common;

use std::time::Duration;

use anxin_firmware::wire::EventBody;
use anxin_gateway::clock::{Clock, SystemClock, WarpedClock};
use anxin_gateway::store::{NewDevice, NewHousehold, Store};
use common::RawDevice;
use common::process::{AnxinProcess, wait_port};
use sqlx::Row;

const SPEED: f64 = 60.0;
const MIN: i64 = 60_000;

/// (severity, raised_ms) of every inactivity alert, and how many episode keys exist.
async fn alerts(store: &Store) -> (Vec<(String, i64)>, i64) {
    let rows = sqlx::query(
        "SELECT severity, raised_ms FROM alerts WHERE kind = 'inactivity' ORDER BY raised_ms",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let list = rows
        .iter()
        .map(|r| (r.get::<String, _>("severity"), r.get::<i64, _>("raised_ms")))
        .collect();
    let eps = sqlx::query("SELECT COUNT(*) AS n FROM alert_episodes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    (list, eps.get::<i64, _>("n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_inactivity_alert_fires_once_at_its_time_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (real0, virt0) = (SystemClock.now_ms(), 1_796_000_400_000); // 2026-11-25T09:00 Shanghai
    let run = common::process::write_config(
        dir.path(),
        &format!(
            r#"[clock]
speed = {SPEED}
real_origin_ms = {real0}
virtual_origin_ms = {virt0}
[detect]
default_day_inactivity_min = 10
default_night_inactivity_min = 10
inactivity_bounds_min = [1, 600]
threshold_slack_min = 0
default_heartbeat_s = 3600
recovery_grace_s = 5
snapshot_interval_s = 1
"#
        ),
    );
    let (config, url, mqtt) = (run.path, run.store_url, run.mqtt_port);
    let clock = WarpedClock::new(real0, virt0, SPEED);
    {
        let store = Store::open(&url).await.unwrap();
        let hh = NewHousehold {
            id: "h1".into(),
            name: "测试户 李大伯".into(),
            address: String::new(),
        };
        store
            .upsert_households(&[hh], clock.now_ms())
            .await
            .unwrap();
        let dev = NewDevice {
            id: "h1-pir".into(),
            household_id: Some("h1".into()),
            kind: "motion".into(),
            room: Some("living".into()),
        };
        store.upsert_devices(&[dev], clock.now_ms()).await.unwrap();
        store.close().await;
    }

    let first = AnxinProcess::run(&config);
    wait_port(mqtt).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{mqtt}").parse().unwrap();
    let mut pir = RawDevice::connect("h1-pir", addr).await;
    let t0 = clock.now_ms();
    pir.event(1, 1, 1, t0 as u64, EventBody::Motion).await;
    pir.wait_ack(1, 1).await;
    // The motion is committed; its pre-alarm is due at t0 + 9 min, the alert at t0 + 10.
    assert!(
        clock.now_ms() < t0 + 5 * MIN,
        "the test machine is too slow for this timeline"
    );
    drop(first); // SIGKILL
    drop(pir);

    let second = AnxinProcess::run(&config);
    wait_port(mqtt).await;
    let store = Store::open(&url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (list, _) = alerts(&store).await;
        if list.iter().any(|(s, _)| s == "critical") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no inactivity alert: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let some more virtual time pass (the timeline, not a synchronisation), then check
    // that nothing fired twice.
    while clock.now_ms() < t0 + 16 * MIN {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (list, episodes) = alerts(&store).await;
    assert_eq!(
        list.len(),
        1,
        "one alert (the pre-alarm upgraded to critical): {list:?}"
    );
    let raised = list[0].1;
    assert!(
        (raised - (t0 + 9 * MIN)).abs() < MIN,
        "pre-alarm at its time: {} min after t0",
        (raised - t0) / MIN
    );
    assert_eq!(episodes, 2, "two signals (pre-alarm, alert), each once");
    store.close().await;
    drop(second);
}
