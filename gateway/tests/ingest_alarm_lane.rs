//! The alarm lane: with the committer saturated (its store held by another writer while
//! thousands of motion events and heartbeats queue up), a help press is committed in a
//! batch of its own ahead of every queued bulk batch, and its `alert_received` reaches
//! the device before the queued bulk is stored. Ordering is observed through the store's
//! journal (positions are given in commit order), not through timing.

use crate::common;

use std::time::Duration;

use anxin_firmware::wire::{CommandKind, EventBody, HelpAction};
use anxin_gateway::store::Backend;
use common::{RawDevice, metric};
use sqlx::Row;

const DEVICES: usize = 20;
const EVENTS: u32 = 200;
const BATCH: usize = 128;

async fn count(store: &anxin_gateway::store::Store, sql: &'static str, below: i64) -> i64 {
    sqlx::query(sql)
        .bind(below)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_help_press_overtakes_the_queued_bulk_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::loopback_config(dir.path());
    config.ingest.batch_max = BATCH;
    let url = config.store_url();
    let gw = common::start(config).await;
    let mut devs: Vec<(String, &str)> = (0..DEVICES)
        .map(|i| (format!("al1-pir{i}"), "motion"))
        .collect();
    devs.push(("al1-help".into(), "help"));
    let pairs: Vec<(&str, &str)> = devs.iter().map(|(d, k)| (d.as_str(), *k)).collect();
    common::register(&gw, "al1", &pairs).await;
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        devices.push(RawDevice::connect(&format!("al1-pir{i}"), gw.mqtt_addr).await);
    }
    let mut help = RawDevice::connect("al1-help", gw.mqtt_addr).await;

    // Another writer holds the store: the committer's first bulk batch waits in its
    // commit while everything else queues behind it.
    let locker = anxin_gateway::store::Store::open(&url).await.unwrap();
    let mut lock = locker.pool().acquire().await.unwrap();
    match locker.backend() {
        Backend::Sqlite => {
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut *lock)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::raw_sql("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
                .execute(&mut *lock)
                .await
                .unwrap();
        }
    }
    for seq in 1..=EVENTS {
        for d in &devices {
            d.event(1, seq, 1, common::now_ms(), EventBody::Motion)
                .await;
        }
    }
    let total = (DEVICES as u32 * EVENTS) as f64;
    // Everything but the batch being committed is queued (bounded wait on the gauge).
    common::eventually("the bulk events to queue up", || {
        metric(&gw.metrics.encode(), "anxin_ingest_queued", "lane=\"bulk\"") >= total - BATCH as f64
    })
    .await;
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
    common::eventually("the help press to take the alarm lane", || {
        metric(
            &gw.metrics.encode(),
            "anxin_ingest_queued",
            "lane=\"alarm\"",
        ) >= 1.0
    })
    .await;
    sqlx::raw_sql("ROLLBACK").execute(&mut *lock).await.unwrap();
    drop(lock);
    locker.close().await;

    let feedback = tokio::time::timeout(Duration::from_secs(30), help.commands.recv())
        .await
        .expect("alert_received")
        .expect("command channel open");
    assert_eq!(feedback.cmd, CommandKind::AlertReceived);
    let stored_at_feedback = count(
        &gw.store,
        "SELECT COUNT(*) FROM events WHERE kind = 'motion' AND journal_id < $1",
        i64::MAX,
    )
    .await;
    for d in devices.iter_mut() {
        d.wait_ack(1, EVENTS).await;
    }
    let help_journal = count(
        &gw.store,
        "SELECT MIN(journal_id) FROM events WHERE kind = 'help' AND journal_id < $1",
        i64::MAX,
    )
    .await;
    let before_help = count(
        &gw.store,
        "SELECT COUNT(*) FROM events WHERE kind = 'motion' AND journal_id < $1",
        help_journal,
    )
    .await;
    eprintln!(
        "ingest_alarm_lane: {total} motion events queued; committed before the help press: \
         {before_help}; stored when alert_received arrived: {stored_at_feedback}"
    );
    // Only the batch that was already in its commit went first.
    assert!(
        before_help <= BATCH as i64,
        "{before_help} queued motion events were committed before the help press"
    );
    assert!(
        (stored_at_feedback as f64) < total,
        "alert_received came only after all {total} queued events were stored"
    );
    gw.shutdown().await;
}
