//! Bad input of every kind, interleaved with valid traffic: every valid event is stored
//! exactly once, every bad message is counted under its reason, and other devices'
//! traffic flows on.

use crate::common;

use anxin_firmware::wire::{Channel, EventBody, topic};
use common::*;

const BAD_PER_KIND: u32 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bad_messages_of_each_kind_do_not_disturb_valid_events() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "h1", &[("h1-door", "door")]).await;
    register(&gw, "h2", &[("h2-pir", "motion")]).await;
    let mut door = RawDevice::connect("h1-door", gw.mqtt_addr).await;
    let mut pir = RawDevice::connect("h2-pir", gw.mqtt_addr).await;
    let stranger = RawDevice::connect("h9-unknown", gw.mqtt_addr).await;

    let t = now_ms();
    let ev_topic = topic::topic(&door.id, Channel::Event).to_string();
    let good = |seq: u32| {
        format!(
            r#"{{"v":1,"boot":1,"seq":{seq},"oldest":1,"ts":{},"clk":"unix","ev":{{"k":"door","open":true}}}}"#,
            t + u64::from(seq)
        )
    };
    let mut seq = 0;
    for i in 0..BAD_PER_KIND {
        seq += 1;
        door.publish_raw(&ev_topic, good(seq).into_bytes()).await;
        // malformed JSON
        door.publish_raw(
            &ev_topic,
            format!("{{\"v\":1,\"boot\":1,\"seq\":{i}").into_bytes(),
        )
        .await;
        // oversized
        door.publish_raw(&ev_topic, vec![b'x'; 600]).await;
        // out of range: battery over 100 %, and seq 0
        let hb = format!(
            r#"{{"v":1,"boot":1,"seq":0,"ts":{t},"clk":"unix","battery_pct":{},"fw":"1","uptime_s":1,"outbox":0,"dropped":0,"interval_s":300}}"#,
            101 + i % 100
        );
        door.publish_raw(&topic::topic(&door.id, Channel::Heartbeat), hb.into_bytes())
            .await;
        // wrong protocol version
        door.publish_raw(
            &ev_topic,
            good(seq).replace("\"v\":1", "\"v\":2").into_bytes(),
        )
        .await;
        // wrong topic shape (still under the device's own subtree, so the broker lets it in)
        door.publish_raw(
            &format!("anxin/v1/dev/h1-door/up/x{}", i % 7),
            good(seq).into_bytes(),
        )
        .await;
        // unknown device
        stranger.event(1, i + 1, 1, t, EventBody::Motion).await;
        // another household keeps talking
        pir.event(1, i + 1, 1, t + u64::from(i), EventBody::Motion)
            .await;
    }
    assert_eq!(door.wait_ack(1, seq).await.upto, seq);
    assert_eq!(pir.wait_ack(1, BAD_PER_KIND).await.upto, BAD_PER_KIND);
    let m = || gw.metrics.encode();
    eventually("unknown-device rejects counted", || {
        metric(
            &m(),
            "anxin_ingest_rejected_total",
            "reason=\"unknown_device\"",
        ) >= f64::from(BAD_PER_KIND)
    })
    .await;

    let text = m();
    for reason in [
        "malformed",
        "oversized",
        "out_of_range",
        "wrong_version",
        "unknown_device",
    ] {
        assert_eq!(
            metric(
                &text,
                "anxin_ingest_rejected_total",
                &format!("reason=\"{reason}\"")
            ),
            f64::from(BAD_PER_KIND),
            "{reason}"
        );
    }
    // The embedded broker's ACL allows a device only its exact uplink topics, so a wrong
    // topic shape is refused (and counted) there; with an external broker whose ACL is a
    // `#` pattern, the gateway counts it as `wrong_topic`.
    let wrong_topic = metric(
        &text,
        "anxin_ingest_rejected_total",
        "reason=\"wrong_topic\"",
    ) + gw.broker_stats.publish_denied() as f64;
    assert_eq!(wrong_topic, f64::from(BAD_PER_KIND), "wrong_topic");
    assert_eq!(
        metric(&text, "anxin_ingest_accepted_total", "channel=\"Event\""),
        f64::from(2 * BAD_PER_KIND)
    );
    assert_eq!(metric(&text, "anxin_ingest_duplicates_total", ""), 0.0);
    let stored = gw.store.events_of("h1-door").await.unwrap();
    assert_eq!(stored.len(), seq as usize);
    assert!(
        stored.iter().enumerate().all(|(i, r)| r.1 == i as i64 + 1),
        "each seq exactly once"
    );
    assert_eq!(
        gw.store.events_of("h2-pir").await.unwrap().len(),
        BAD_PER_KIND as usize
    );
    assert!(gw.store.events_of("h9-unknown").await.unwrap().is_empty());

    // The same figures over HTTP, and the gateway says it is healthy.
    let (code, body) = http_get(gw.http_addr, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(&body, "anxin_ingest_rejected_total", "reason=\"oversized\""),
        f64::from(BAD_PER_KIND)
    );
    let (code, body) = http_get(gw.http_addr, "/healthz").await;
    assert_eq!(code, 200, "{body}");
    gw.shutdown().await;
}
