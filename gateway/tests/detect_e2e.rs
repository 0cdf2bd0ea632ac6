//! End to end on the accelerated clock: a simulated home lives its morning, the resident
//! collapses, and the inactivity alert comes out of detection — through the firmware
//! core, MQTT, the embedded broker, ingest and the store.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::sim::{self, SimClock, SimConfig};
use anxin_gateway::signal::{AlertKind, Severity, SignalAction};
use common::loopback_config;
use tokio_util::sync::CancellationToken;

/// 2026-11-25T09:00 in Shanghai: the simulated residents are up.
const MORNING: u64 = 1_796_000_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_home_that_stops_moving_raises_an_inactivity_alert() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    // Short defaults so that the test runs in seconds of real time at 360× (a faster
    // clock turns a gateway slowed by a busy machine into virtual hours of silence).
    config.detect.default_day_inactivity_min = 90;
    config.detect.default_night_inactivity_min = 90;
    config.detect.inactivity_bounds_min = [30, 600];
    let clock = SimClock::new(MORNING, 360.0);
    let gw = common::start_on(config, Arc::new(clock)).await;
    let population = sim::population(1, 7);
    anxin_gateway::demo::register_population(&gw.store, &population, MORNING as i64)
        .await
        .unwrap();
    gw.registry.reload(&gw.store).await.unwrap();
    for (h, d) in population.devices() {
        gw.detect
            .device_registered(
                h.id.as_str(),
                d.id.as_str(),
                d.kind.as_str(),
                Some(d.room.slug()),
            )
            .await
            .unwrap();
    }
    let mut tap = gw.detect.tap();

    let collapse_at = MORNING + 30 * 60_000;
    let scenario = "collapse@h0001@+30m".parse().unwrap();
    let stop = CancellationToken::new();
    let cfg = SimConfig::new("127.0.0.1", gw.mqtt_addr.port(), clock);
    let sim = tokio::spawn(sim::run(cfg, population, vec![scenario], stop.clone()));

    let alert = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let s = tap.recv().await.expect("detector running");
            if s.kind == AlertKind::Inactivity
                && s.severity == Severity::Critical
                && s.action == SignalAction::Raise
            {
                return s;
            }
        }
    })
    .await
    .expect("an inactivity alert within two minutes of real time (12 h of virtual time)");
    assert_eq!(alert.household_id.as_deref(), Some("h0001"));
    assert!(
        alert.at_ms >= collapse_at as i64,
        "raised after the collapse"
    );
    assert!(
        alert.episode_ms <= collapse_at as i64,
        "for the silence that began with the collapse"
    );
    let delay_min = (alert.at_ms - collapse_at as i64) / 60_000;
    assert!(
        delay_min <= 90 + 20,
        "within the threshold after the last activity: {delay_min} min"
    );
    stop.cancel();
    let report = sim.await.unwrap();
    assert!(report.sent.total() > 0);
    gw.shutdown().await;
}
