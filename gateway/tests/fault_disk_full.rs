//! Fault suite: the store's disk fills up under load. The SQLite store lives on a small
//! tmpfs of its own; a ballast file takes the rest of the space while a device keeps
//! sending. The gateway must stop acknowledging (nothing it acknowledged may be missing),
//! say so on `/healthz`, raise one system alert (gateway blind) instead of any elder
//! alert, keep answering reads, and recover by itself when the space returns, with every
//! event stored once. Needs root for the tmpfs mount (the test command runs as root).

use crate::common;

use std::io::Write;
use std::time::Duration;

use anxin_firmware::wire::EventBody;
use common::{RawDevice, WAIT, http_get};
use sqlx::Row;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn mount_tmpfs(dir: &std::path::Path, size: &str) -> Mount {
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("mount runs");
    assert!(
        ok.success(),
        "mounting a tmpfs needs root (the test command runs as root)"
    );
    Mount(dir.to_path_buf())
}

/// Fills the file system of `path` with a ballast file; returns the file's path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    // Bounded: the tmpfs is a few MiB.
    for _ in 0..10_000 {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.flush();
    path
}

async fn health(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let (code, body) = http_get(addr, "/healthz").await;
    (code, serde_json::from_str(&body).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acks_raises_one_system_alert_and_recovers_with_nothing_lost() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let _mount = mount_tmpfs(&data, "24m");
    let mut config = common::loopback_config(&data);
    // The disk under test is the SQLite file's, whatever the test pass's store.
    config.store.url = String::new();
    config.detect.blind_alert_after_s = 1;
    let gw = common::start(config).await;
    common::register(&gw, "dh1", &[("dh1-pir", "motion")]).await;
    let mut dev = RawDevice::connect("dh1-pir", gw.mqtt_addr).await;

    let mut next = 1u32;
    for _ in 0..20 {
        dev.event(1, next, 1, common::now_ms(), EventBody::Motion)
            .await;
        next += 1;
    }
    dev.wait_ack(1, next - 1).await;
    assert_eq!(health(gw.http_addr).await.0, 200);

    let mut signals = gw.detect.tap();
    let ballast = fill(&data);
    // Keep sending until a commit fails (SQLite first uses the free pages it has).
    let mut acked = next - 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut writable = gw.store.writable();
    while *writable.borrow() {
        assert!(
            tokio::time::Instant::now() < deadline && next < 200_000,
            "the store never refused a write"
        );
        for _ in 0..50 {
            dev.event(1, next, 1, common::now_ms(), EventBody::Motion)
                .await;
            next += 1;
        }
        while let Ok(a) = dev.acks.try_recv() {
            acked = acked.max(a.upto);
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), writable.changed()).await;
    }
    let sent_while_full = next - 1;

    // While full: the detector is blind and says so once, `/healthz` says so, reads are
    // served.
    // The first signal while full is the system alert: no elder alert comes before it.
    let blind = tokio::time::timeout(WAIT, signals.recv())
        .await
        .expect("the blind spell is signalled")
        .expect("signal tap open");
    assert_eq!(blind.kind.as_str(), "gateway_blind", "{blind:?}");
    assert_eq!(blind.action, anxin_gateway::signal::SignalAction::Raise);
    let (code, body) = health(gw.http_addr).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["store_writable"], false, "{body}");
    let (code, _) = http_get(gw.http_addr, "/metrics").await;
    assert_eq!(code, 200);
    let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
        .fetch_one(gw.store.pool())
        .await
        .expect("reads are served while the disk is full")
        .get("n");
    while let Ok(a) = dev.acks.try_recv() {
        acked = acked.max(a.upto);
    }
    assert!(
        i64::from(acked) <= stored,
        "nothing acknowledged beyond what is stored: acked {acked}, stored {stored}"
    );

    // Space returns: the gateway recovers by itself; the device replays its outbox.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // The outbox replay: everything above the last ack, again.
        for s in acked + 1..=sent_while_full {
            dev.event(1, s, acked + 1, common::now_ms(), EventBody::Motion)
                .await;
        }
        let got =
            tokio::time::timeout(Duration::from_secs(2), dev.wait_ack(1, sent_while_full)).await;
        if got.is_ok() {
            break;
        }
        while let Ok(a) = dev.acks.try_recv() {
            acked = acked.max(a.upto);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recovery after the space returned (acked {acked} of {sent_while_full})"
        );
    }
    assert!(*gw.store.writable().borrow());
    assert_eq!(health(gw.http_addr).await.0, 200);

    let rows = sqlx::query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d, MIN(seq) AS lo, MAX(seq) AS hi \
         FROM events WHERE device_id = 'dh1-pir'",
    )
    .fetch_one(gw.store.pool())
    .await
    .unwrap();
    assert_eq!(rows.get::<i64, _>("n"), i64::from(sent_while_full));
    assert_eq!(rows.get::<i64, _>("d"), i64::from(sent_while_full));
    assert_eq!(rows.get::<i64, _>("lo"), 1);
    assert_eq!(rows.get::<i64, _>("hi"), i64::from(sent_while_full));

    // One system alert for the blind spell, stored once the store took writes again; no
    // elder alert.
    let deadline = tokio::time::Instant::now() + WAIT;
    let kinds = loop {
        let kinds: Vec<String> = sqlx::query("SELECT kind FROM alerts ORDER BY raised_ms")
            .fetch_all(gw.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("kind"))
            .collect();
        if !kinds.is_empty() || tokio::time::Instant::now() > deadline {
            break kinds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kinds, vec!["gateway_blind".to_string()]);
    eprintln!(
        "fault_disk_full: {sent_while_full} events sent, {acked} acked before the disk filled, all stored once after recovery"
    );
}
