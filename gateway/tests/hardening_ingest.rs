//! Ingest under hostile or unusual input, through the embedded broker: old boot epochs
//! replayed, sequence jumps, payloads that are not UTF-8, sockets that never speak MQTT,
//! password guessing.

mod common;

use anxin_firmware::wire::EventBody;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_old_epoch_is_stored_and_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "ho", &[("ho-door", "door")]).await;
    let mut d = RawDevice::connect("ho-door", gw.mqtt_addr).await;
    let t = now_ms();
    // Four later boots, each fully acknowledged.
    for boot in 2..=5 {
        for seq in 1..=10 {
            d.event(
                boot,
                seq,
                1,
                t + u64::from(seq),
                EventBody::Door { open: seq % 2 == 0 },
            )
            .await;
        }
        assert_eq!(d.wait_ack(boot, 10).await.upto, 10);
    }
    // Then the flash-backed outbox replays boot 1, never seen by the gateway.
    for seq in 1..=5 {
        d.event(
            1,
            seq,
            1,
            t + u64::from(seq),
            EventBody::Door { open: true },
        )
        .await;
    }
    assert_eq!(d.wait_ack(1, 5).await.upto, 5);
    let rows = gw.store.events_of("ho-door").await.unwrap();
    let boot1: Vec<i64> = rows.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    assert_eq!(
        boot1,
        vec![1, 2, 3, 4, 5],
        "every replayed event stored once"
    );
    assert_eq!(rows.len(), 45);
    // A second replay of the old epoch: duplicates, acknowledged again, stored once.
    for seq in 1..=5 {
        d.event(
            1,
            seq,
            1,
            t + u64::from(seq),
            EventBody::Door { open: true },
        )
        .await;
    }
    assert_eq!(d.wait_ack(1, 5).await.upto, 5);
    assert_eq!(gw.store.events_of("ho-door").await.unwrap().len(), 45);
    let m = gw.metrics.encode();
    assert_eq!(metric(&m, "anxin_ingest_duplicates_total", ""), 5.0);
    // The later boots' marks were not moved by the replay.
    let mut again = RawDevice::connect("ho-door", gw.mqtt_addr).await;
    again
        .event(5, 10, 1, t + 10, EventBody::Door { open: true })
        .await;
    assert_eq!(again.wait_ack(5, 10).await.upto, 10);
    drop(d);
    gw.shutdown().await;
}
