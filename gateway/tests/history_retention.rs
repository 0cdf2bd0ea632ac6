//! Retention on a running gateway: pruning removes only the points past retention, in
//! small batches, while devices keep sending and being acknowledged.

use crate::common;

use anxin_firmware::wire::EventBody;
use common::{RawDevice, WAIT, loopback_config, metric, now_ms, register, start};
use sqlx::Row;

const DAY_MS: u64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_removes_only_points_past_retention_while_ingest_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    config.history.raw_retention_days = 1;
    config.history.prune_batch = 50;
    let gw = start(config).await;
    register(
        &gw,
        "rh1",
        &[("rh1-motion", "motion"), ("rh1-door", "door")],
    )
    .await;
    let mut old = RawDevice::connect("rh1-motion", gw.mqtt_addr).await;
    let now = now_ms();
    // 300 points from 3 and 2 days ago (past retention), 100 from the last hours.
    let mut seq = 0;
    for i in 0..400u64 {
        seq += 1;
        let ts = match i {
            0..150 => now - 3 * DAY_MS + i * 1000,
            150..300 => now - 2 * DAY_MS + i * 1000,
            _ => now - 5 * 3_600_000 + i * 1000,
        };
        old.event(1, seq, 1, ts, EventBody::Motion).await;
    }
    old.wait_ack(1, seq).await;
    assert!(gw.history.wait_caught_up(WAIT).await.unwrap());

    // A device keeps sending while pruning runs.
    let mut door = RawDevice::connect("rh1-door", gw.mqtt_addr).await;
    let load = tokio::spawn(async move {
        for s in 1..=200u32 {
            door.event(1, s, 1, now_ms(), EventBody::Door { open: s % 2 == 1 })
                .await;
            if s.is_multiple_of(20) {
                door.wait_ack(1, s).await;
            }
        }
        door
    });
    let report = gw.history.prune_now().await.unwrap();
    let door = tokio::time::timeout(WAIT, load).await.unwrap().unwrap();
    drop(door);

    assert_eq!(report.raw_deleted, 300, "{report:?}");
    assert!(report.batches >= 6, "small batches: {report:?}");
    assert!(gw.history.wait_caught_up(WAIT).await.unwrap());
    let rows = sqlx::query("SELECT measurement, at_ms FROM history_points")
        .fetch_all(gw.store.pool())
        .await
        .unwrap();
    let motion: Vec<i64> = rows
        .iter()
        .filter(|r| r.get::<String, _>("measurement") == "motion")
        .map(|r| r.get("at_ms"))
        .collect();
    assert_eq!(motion.len(), 100, "the recent points stay");
    assert!(motion.iter().all(|t| *t >= report.raw_before_ms));
    let doors = rows
        .iter()
        .filter(|r| r.get::<String, _>("measurement") == "door")
        .count();
    assert_eq!(
        doors, 200,
        "everything sent during pruning was ingested and written"
    );
    let text = gw.metrics.encode();
    assert_eq!(
        metric(&text, "anxin_history_rows_pruned_total", "table=\"raw\""),
        300.0
    );
    // The journal itself is not history's to prune.
    assert_eq!(gw.store.event_count().await.unwrap(), 600);
    gw.shutdown().await;
}
