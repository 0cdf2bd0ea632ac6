//! The README's demo command, as a user runs it: `anxin demo` starts, prints its URL,
//! and within 60 s `/metrics` shows accepted events from 50 simulated homes and no
//! rejects; SIGINT stops it cleanly within 5 s.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{http_get, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_fifty_homes_and_stops_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args(["demo", "--homes", "50", "--http", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("anxin demo starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("demo prints its dashboard URL");
        if let Some(u) = line.split("dashboard: http://").nth(1) {
            break u.trim_end_matches('/').to_string();
        }
    };
    let addr: std::net::SocketAddr = url.parse().unwrap();

    let started = Instant::now();
    let (homes, rejected) = loop {
        let (code, body) = http_get(addr, "/metrics").await;
        assert_eq!(code, 200);
        let homes = metric(&body, "anxin_ingest_households_active", "");
        let events = metric(&body, "anxin_ingest_accepted_total", "channel=\"Event\"");
        let rejected = metric(&body, "anxin_ingest_rejected_total", "");
        if homes >= 50.0 && events > 0.0 {
            break (homes, rejected);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {homes} homes after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(homes, 50.0);
    assert_eq!(
        rejected, 0.0,
        "the simulated homes speak the protocol without a single reject"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stop = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(5),
            "demo still running 5 s after SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "demo exited with {status}");
}
