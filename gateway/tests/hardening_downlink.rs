//! Device commands are delivered at least once: the gateway resends `alert_received` (with
//! the same id) until the device acknowledges it by its heartbeat's `cmd`, also across a
//! SIGKILL of the gateway. The store is SQLite, or PostgreSQL when `ANXIN_TEST_POSTGRES`
//! is set.

use crate::common;

use std::time::Duration;

use anxin_firmware::wire::{
    self, Channel, Clock, Command, CommandKind, EventBody, Heartbeat, HelpAction,
};
use anxin_gateway::notify::command_id;
use anxin_gateway::store::{NewDevice, NewHousehold, Store};
use common::process::{AnxinProcess, wait_port};
use common::{RawDevice, WAIT, now_ms};
use sqlx::Row;

const DEVICE: &str = "h1-help";

/// A heartbeat of boot 1 whose last event is `seq`, acknowledging command `cmd`.
async fn heartbeat(dev: &RawDevice, seq: u32, cmd: u32) {
    let mut fw = anxin_firmware::device::FwVersion::new();
    fw.push_str("1.1.0").unwrap();
    let hb = Heartbeat {
        v: 1,
        boot: 1,
        seq,
        ts: now_ms(),
        clk: Clock::Unix,
        battery_pct: Some(90),
        battery_mv: None,
        rssi_dbm: None,
        fw,
        uptime_s: 60,
        outbox: 0,
        dropped: 0,
        interval_s: 300,
        temp_dc: None,
        cmd: Some(cmd),
        mac: None,
    };
    let t = wire::topic::topic(&dev.id, Channel::Heartbeat);
    dev.publish_raw(&t, wire::codec::encode_vec(&hb).unwrap().to_vec())
        .await;
}

async fn press(dev: &RawDevice) {
    dev.event(
        1,
        1,
        1,
        now_ms(),
        EventBody::Help {
            act: HelpAction::Press,
        },
    )
    .await;
}

/// The next `alert_received` the device hears within `within`.
async fn next_received(dev: &mut RawDevice, within: Duration) -> Option<Command> {
    tokio::time::timeout(within, async {
        loop {
            let c = dev.commands.recv().await.expect("command channel open");
            if c.cmd == CommandKind::AlertReceived {
                return c;
            }
        }
    })
    .await
    .ok()
}

/// (idempotency key, state, last error) of the device's feedback rows.
async fn device_rows(store: &Store) -> Vec<(String, String, Option<String>)> {
    sqlx::query(
        "SELECT idempotency_key, state, last_error FROM outbox \
         WHERE channel = 'device' ORDER BY created_ms, id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("idempotency_key"),
            r.get("state"),
            r.get("last_error"),
        )
    })
    .collect()
}

async fn wait_rows(
    store: &Store,
    what: &str,
    ok: impl Fn(&[(String, String, Option<String>)]) -> bool,
) -> Vec<(String, String, Option<String>)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows = device_rows(store).await;
        if ok(&rows) {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_resent_with_the_same_id_until_the_devices_heartbeat_acknowledges_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = common::start_embedded(dir.path()).await;
    common::register(&gw, "h1", &[(DEVICE, "help")]).await;
    let mut dev = RawDevice::connect(DEVICE, gw.mqtt_addr).await;
    // Firmware that acknowledges commands says so before its first command.
    heartbeat(&dev, 0, 0).await;
    press(&dev).await;
    dev.wait_ack(1, 1).await;

    let first = next_received(&mut dev, WAIT)
        .await
        .expect("the device hears \"received\"");
    // Not acknowledged: the gateway sends it again, the same id, within a few seconds.
    let again = next_received(&mut dev, Duration::from_secs(5))
        .await
        .expect("\"received\" is sent again while not acknowledged");
    assert_eq!(again.id, first.id);
    let rows = device_rows(&gw.store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(command_id(&rows[0].0), first.id);
    assert_eq!(rows[0].1, "pending");
    assert_eq!(rows[0].2.as_deref(), Some("awaiting_ack"));

    heartbeat(&dev, 1, first.id).await;
    wait_rows(&gw.store, "the acknowledged command is sent", |r| {
        r.len() == 1 && r[0].1 == "sent"
    })
    .await;
    while dev.commands.try_recv().is_ok() {}
    assert!(
        next_received(&mut dev, Duration::from_secs(4))
            .await
            .is_none(),
        "no more \"received\" after the acknowledgement"
    );
    let (_, metrics) = common::http_get(gw.http_addr, "/metrics").await;
    assert!(
        common::metric(
            &metrics,
            "anxin_notify_sent_total",
            "outcome=\"AwaitingAck\""
        ) >= 1.0,
        "awaited acknowledgements are counted as such"
    );
    assert_eq!(
        common::metric(&metrics, "anxin_notify_sent_total", "outcome=\"Retry\""),
        0.0,
        "an awaited acknowledgement is not a retry after a failure"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_received_reaches_the_device_after_a_sigkill_before_the_device_acknowledged_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::process::write_config(dir.path(), "");
    let (config, url, mqtt) = (run.path, run.store_url, run.mqtt_port);
    let store = Store::open(&url).await.unwrap();
    store
        .upsert_households(
            &[NewHousehold {
                id: "h1".into(),
                name: "测试户 李大伯".into(),
                address: String::new(),
            }],
            1,
        )
        .await
        .unwrap();
    store
        .upsert_devices(
            &[NewDevice {
                id: DEVICE.into(),
                household_id: Some("h1".into()),
                kind: "help".into(),
                room: None,
            }],
            1,
        )
        .await
        .unwrap();

    let first = AnxinProcess::run(&config);
    wait_port(mqtt).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{mqtt}").parse().unwrap();
    let mut dev = RawDevice::connect(DEVICE, addr).await;
    heartbeat(&dev, 0, 0).await;
    press(&dev).await;
    dev.wait_ack(1, 1).await;
    // The first attempt is recorded (the row would be `sent` if handing the command to
    // the broker counted as delivery); the device does not acknowledge it.
    let rows = wait_rows(&store, "the first attempt is recorded", |r| {
        r.len() == 1 && (r[0].1 != "pending" || r[0].2.is_some())
    })
    .await;
    let id = command_id(&rows[0].0);
    drop(first); // SIGKILL
    while dev.commands.try_recv().is_ok() {}

    let _second = AnxinProcess::run(&config);
    wait_port(mqtt).await;
    let after = next_received(&mut dev, WAIT)
        .await
        .expect("\"received\" reaches the device after the restart");
    assert_eq!(after.id, id, "the same command id");

    heartbeat(&dev, 1, id).await;
    wait_rows(&store, "the acknowledged command is sent", |r| {
        r.len() == 1 && r[0].1 == "sent"
    })
    .await;
    store.close().await;
}
