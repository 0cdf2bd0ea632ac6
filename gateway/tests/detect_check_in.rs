//! The check-in before a silence alert, end to end: three homes go quiet; the gateway
//! asks each elder on the help button or the pendant (`check_in` command over MQTT); two
//! answer with a press (`help ok`: one on a help button, one on a pendant), the third
//! does not. Those who answered get no alert and no help alert, and the prompt is
//! switched off; the other gets the inactivity alert one check-in later, saying that the
//! elder was asked. On an accelerated clock (10×), with
//! one-minute thresholds and a one-minute check-in.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::sim::SimClock;
use anxin_firmware::wire::{CommandKind, EventBody, HelpAction};
use anxin_gateway::signal::{AlertKind, Severity, Signal, SignalAction};
use common::{RawDevice, loopback_config};
use sqlx::Row;

/// 2026-11-25T09:00 in Shanghai.
const MORNING: u64 = 1_796_000_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elder_who_answers_the_check_in_gets_no_alert_and_one_who_does_not_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    config.detect.default_day_inactivity_min = 1;
    config.detect.default_night_inactivity_min = 1;
    config.detect.inactivity_bounds_min = [1, 840];
    config.detect.threshold_slack_min = 0;
    config.detect.prealarm_fraction = 1.0;
    config.detect.recovery_grace_s = 1;
    config.detect.check_in_s = 60;
    let clock = SimClock::new(MORNING, 10.0);
    let gw = common::start_on(config, Arc::new(clock)).await;
    for (hh, asked_on) in [
        ("ck-yes", "help"),
        ("ck-no", "help"),
        ("ck-pendant", "pendant"),
    ] {
        let pir = format!("{hh}-pir");
        let help = format!("{hh}-{asked_on}");
        common::register(&gw, hh, &[(&pir, "motion"), (&help, asked_on)]).await;
        for (id, kind) in [(&pir, "motion"), (&help, asked_on)] {
            gw.detect
                .device_registered(hh, id, kind, Some("living"))
                .await
                .unwrap();
        }
    }
    let mut tap = gw.detect.tap();
    let addr = gw.mqtt_addr;
    let mut yes_help = RawDevice::connect("ck-yes-help", addr).await;
    let mut pendant = RawDevice::connect("ck-pendant-pendant", addr).await;
    let no_help = RawDevice::connect("ck-no-help", addr).await;
    let mut pirs = Vec::new();
    for hh in ["ck-yes", "ck-no", "ck-pendant"] {
        let pir = RawDevice::connect(&format!("{hh}-pir"), addr).await;
        pir.event(1, 1, 1, clock.now_ms(), EventBody::Motion).await;
        pirs.push(pir);
    }

    // The gateway asks the elders of ck-yes and ck-pendant; each press answers.
    for device in [&mut yes_help, &mut pendant] {
        let ask = tokio::time::timeout(Duration::from_secs(60), device.commands.recv())
            .await
            .expect("a check-in within a minute of real time")
            .expect("command channel open");
        assert_eq!(ask.cmd, CommandKind::CheckIn);
        assert_eq!((ask.on, ask.duration_s), (Some(true), Some(60)));
        device
            .event(
                1,
                1,
                1,
                clock.now_ms(),
                EventBody::Help {
                    act: HelpAction::Ok,
                },
            )
            .await;
    }
    drop(no_help);

    // Until ck-no's alert: every signal of both homes.
    let mut seen: Vec<Signal> = Vec::new();
    let alert = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let s = tap.recv().await.expect("detector running");
            seen.push(s.clone());
            if s.household_id.as_deref() == Some("ck-no")
                && s.kind == AlertKind::Inactivity
                && s.severity == Severity::Critical
                && s.action == SignalAction::Raise
            {
                return s;
            }
        }
    })
    .await
    .expect("ck-no's inactivity alert within a minute of real time");
    assert!(
        alert.reason.contains("no answer"),
        "the caseworker reads that the elder was asked: {}",
        alert.reason
    );
    let of = |hh: &str, kind: AlertKind| -> Vec<SignalAction> {
        seen.iter()
            .filter(|s| s.household_id.as_deref() == Some(hh) && s.kind == kind)
            .map(|s| s.action)
            .collect()
    };
    assert_eq!(
        of("ck-no", AlertKind::CheckIn),
        [SignalAction::Raise, SignalAction::Cancel],
        "asked, not answered"
    );
    for hh in ["ck-yes", "ck-pendant"] {
        assert_eq!(
            of(hh, AlertKind::CheckIn)[..2],
            [SignalAction::Raise, SignalAction::Clear],
            "{hh}: asked, answered"
        );
        assert!(
            of(hh, AlertKind::Inactivity).is_empty(),
            "{hh}: answered: no warning, no alert"
        );
        assert!(
            of(hh, AlertKind::Help).is_empty(),
            "{hh}: the answer is not a call for help"
        );
    }
    // The answered prompt is switched off on the button.
    let off = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let c = yes_help
                .commands
                .recv()
                .await
                .expect("command channel open");
            if c.cmd == CommandKind::CheckIn && c.on == Some(false) {
                return c;
            }
        }
    })
    .await
    .expect("check_in off after the answer");
    assert_eq!(off.duration_s, None);

    // On record: the workflow's audit and metric, and only ck-no's alert (the workflow
    // applies what the tap showed a moment later: poll its store, bounded).
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit WHERE action IN ('check_in.answered', 'check_in.unanswered')",
        )
        .fetch_one(gw.store.pool())
        .await
        .unwrap()
        .get("n");
        let raised: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM alerts WHERE household_id = 'ck-no'")
                .fetch_one(gw.store.pool())
                .await
                .unwrap()
                .get("n");
        if n >= 3 && raised >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workflow did not record the check-ins"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alerts: Vec<(String, String)> =
        sqlx::query("SELECT household_id, kind FROM alerts ORDER BY household_id, kind")
            .fetch_all(gw.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("household_id"), r.get("kind")))
            .collect();
    assert!(
        !alerts
            .iter()
            .any(|(h, _)| h == "ck-yes" || h == "ck-pendant"),
        "no alert for those who answered: {alerts:?}"
    );
    assert!(alerts.contains(&("ck-no".into(), "inactivity".into())));
    let actions: Vec<(String, String)> = sqlx::query(
        "SELECT entity_id, action FROM audit WHERE action LIKE 'check_in.%' ORDER BY at_ms",
    )
    .fetch_all(gw.store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("entity_id"), r.get("action")))
    .collect();
    for want in [
        ("ck-yes", "check_in.ask"),
        ("ck-yes", "check_in.answered"),
        ("ck-pendant", "check_in.ask"),
        ("ck-pendant", "check_in.answered"),
        ("ck-no", "check_in.ask"),
        ("ck-no", "check_in.unanswered"),
    ] {
        assert!(
            actions.contains(&(want.0.into(), want.1.into())),
            "audit has {want:?}: {actions:?}"
        );
    }
    let (_, metrics) = common::http_get(gw.http_addr, "/metrics").await;
    assert!(common::metric(&metrics, "anxin_check_ins_total", "outcome=\"answered\"") >= 1.0);
    assert!(common::metric(&metrics, "anxin_check_ins_total", "outcome=\"unanswered\"") >= 1.0);
    drop(pirs);
    gw.shutdown().await;
}
