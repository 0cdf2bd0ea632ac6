//! Ingest through the embedded broker: devices → broker → gateway → rows in the store,
//! with application-level acks back to the device only after the commit.

use crate::common;

use anxin_firmware::wire::{EventBody, HelpAction};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_stored_once_and_acknowledged_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "h1", &[("h1-door", "door"), ("h1-help", "help")]).await;
    let mut door = RawDevice::connect("h1-door", gw.mqtt_addr).await;
    let t = now_ms();
    for seq in 1..=5 {
        door.event(
            1,
            seq,
            1,
            t + u64::from(seq),
            EventBody::Door { open: seq % 2 == 1 },
        )
        .await;
    }
    assert_eq!(door.wait_ack(1, 5).await.upto, 5);
    assert_eq!(gw.store.events_of("h1-door").await.unwrap().len(), 5);

    // QoS 1 redelivery and a device replay after a lost ack: stored once, acked again.
    door.event(1, 3, 1, t + 3, EventBody::Door { open: true })
        .await;
    door.event(1, 5, 1, t + 5, EventBody::Door { open: true })
        .await;
    assert_eq!(door.wait_ack(1, 5).await.upto, 5);
    // The ack above may be the first duplicate's (or one left from the first round):
    // wait until both duplicates are counted.
    common::eventually("both duplicates counted", || {
        metric(&gw.metrics.encode(), "anxin_ingest_duplicates_total", "") >= 2.0
    })
    .await;
    let rows = gw.store.events_of("h1-door").await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let m = gw.metrics.encode();
    assert_eq!(metric(&m, "anxin_ingest_duplicates_total", ""), 2.0);
    assert_eq!(
        metric(&m, "anxin_ingest_accepted_total", "channel=\"Event\""),
        5.0
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_waits_for_a_hole_and_skips_what_the_device_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "h2", &[("h2-help", "help")]).await;
    let mut help = RawDevice::connect("h2-help", gw.mqtt_addr).await;
    let t = now_ms();
    help.event(
        2,
        1,
        1,
        t,
        EventBody::Help {
            act: HelpAction::Press,
        },
    )
    .await;
    assert_eq!(help.wait_ack(2, 1).await.upto, 1);
    // 2 is in flight somewhere; 3 arrives first: the ack must not pass the hole.
    help.event(2, 3, 2, t + 3, EventBody::Motion).await;
    assert_eq!(help.wait_ack(2, 1).await.upto, 1);
    help.event(
        2,
        2,
        2,
        t + 2,
        EventBody::Help {
            act: HelpAction::Cancel,
        },
    )
    .await;
    assert_eq!(help.wait_ack(2, 3).await.upto, 3);
    // 4 and 5 were dropped by a full outbox: 6 says it holds nothing older.
    help.event(
        2,
        6,
        6,
        t + 6,
        EventBody::Help {
            act: HelpAction::Press,
        },
    )
    .await;
    assert_eq!(help.wait_ack(2, 6).await.upto, 6);
    let m = gw.metrics.encode();
    assert_eq!(metric(&m, "anxin_ingest_device_dropped_total", ""), 2.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_state_survives_a_gateway_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    {
        let gw = start_embedded(dir.path()).await;
        register(&gw, "h3", &[("h3-door", "door")]).await;
        let mut d = RawDevice::connect("h3-door", gw.mqtt_addr).await;
        d.event(1, 1, 1, t, EventBody::Door { open: true }).await;
        d.event(1, 3, 1, t + 3, EventBody::Door { open: true })
            .await;
        assert_eq!(d.wait_ack(1, 1).await.upto, 1);
        drop(d);
        gw.shutdown().await;
    }
    let gw = start_embedded(dir.path()).await;
    let mut d = RawDevice::connect("h3-door", gw.mqtt_addr).await;
    // The device replays everything unacknowledged: 2 (new) and 3 (already stored).
    d.event(1, 2, 2, t + 2, EventBody::Door { open: false })
        .await;
    d.event(1, 3, 2, t + 3, EventBody::Door { open: true })
        .await;
    assert_eq!(d.wait_ack(1, 3).await.upto, 3);
    assert_eq!(gw.store.events_of("h3-door").await.unwrap().len(), 3);
    gw.shutdown().await;
}
