//! An installation test over a simulated home: the home's devices (this crate's own
//! firmware, simulated) log in with the credentials provisioning issued, the resident
//! walks through the rooms and goes out, the technician presses the help button and the
//! gas sensor's TEST (injected scenarios); every device is checked off live, no
//! caseworker alert is raised, the test ends by itself, and a registered device that
//! never reported is named in the report and gets a work order.

use crate::provision_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::device::DeviceKind;
use anxin_firmware::sim::calendar::{MINUTE_MS, parse_date};
use anxin_firmware::sim::day::plan_day;
use anxin_firmware::sim::stimulus::{Action, day_stimuli};
use anxin_firmware::sim::{self, Household, Population, Scenario, SimClock, SimConfig};
use anxin_firmware::wire::DeviceId;
use anxin_gateway::app::{Gateway, StartOptions};
use anxin_gateway::broker::AuthMode;
use anxin_gateway::detect::HouseholdMode;
use anxin_gateway::provision::{Registration, TestEvent};
use anxin_gateway::signal::Audience;
use tokio_util::sync::CancellationToken;

const SEED: u64 = 5;
/// Real seconds the resident's part of the test should take.
const REAL_WINDOW_S: f64 = 12.0;

/// The household (run alone, as index 0) whose door and every motion sensor see the
/// resident soonest after a start 5 minutes before wake-up; (household, start, window).
fn pick_household() -> (Household, u64, u64) {
    let day = parse_date("2026-03-04").unwrap();
    let mut best: Option<(Household, u64, u64)> = None;
    for h in sim::population(30, SEED).households {
        let plan = plan_day(&h, 0, SEED, day);
        let start = plan.wake_ms - 5 * MINUTE_MS;
        let mut first: HashMap<usize, u64> = HashMap::new();
        for s in day_stimuli(&h, 0, SEED, &plan) {
            if s.at_ms >= start + 2 * MINUTE_MS
                && matches!(s.action, Action::Door(_) | Action::Motion(true))
            {
                first.entry(s.device).or_insert(s.at_ms);
            }
        }
        let sensing: Vec<usize> = h
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d.kind, DeviceKind::Door | DeviceKind::Motion))
            .map(|(i, _)| i)
            .collect();
        if !sensing.iter().all(|i| first.contains_key(i)) {
            continue;
        }
        let window = sensing.iter().map(|i| first[i]).max().unwrap() - start;
        if best.as_ref().is_none_or(|b| window < b.2) {
            best = Some((h, start, window));
        }
    }
    best.expect("a household whose sensors all see the resident on that day")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_test_checks_off_every_device_raises_no_alert_and_reports_the_missing_one()
{
    tokio::time::timeout(Duration::from_secs(90), async {
        let (home, start_ms, window_ms) = pick_household();
        let hh = home.id.as_str().to_string();
        let speed = (window_ms as f64 / 1000.0 / REAL_WINDOW_S).max(60.0);
        // The test lasts past the resident's part, the help press and the gas alarm.
        let minutes = ((window_ms / MINUTE_MS) + 15).max(45) as u32;
        let clock = SimClock::new(start_ms, speed);

        let dir = tempfile::tempdir().unwrap();
        let mut config = provision_support::config(dir.path());
        config.provision.sweep_interval_s = 3600;
        let gw = Gateway::start(
            config,
            Arc::new(clock),
            StartOptions {
                broker_auth: Some(AuthMode::Production),
            },
        )
        .await
        .unwrap();
        assert!(gw.wait_connected(provision_support::WAIT).await);
        provision_support::household(&gw, &hh).await;

        // Register the home's devices; keep the secrets for the simulated firmware.
        let mut secrets: HashMap<DeviceId, String> = HashMap::new();
        for d in &home.devices {
            let r = gw
                .provision
                .register(
                    Registration {
                        device_id: Some(d.id.as_str().into()),
                        kind: d.kind.as_str().into(),
                        household_id: Some(hh.clone()),
                        room: Some(d.room.slug().into()),
                        ..Registration::default()
                    },
                    "technician",
                )
                .await
                .unwrap();
            secrets.insert(d.id.clone(), r.secret.unwrap().expose().to_string());
        }
        // Installed, but its batteries were never put in.
        let spare = format!("{hh}-pir-spare");
        gw.provision
            .register(
                Registration {
                    device_id: Some(spare.clone()),
                    kind: "motion".into(),
                    household_id: Some(hh.clone()),
                    room: Some("storeroom".into()),
                    ..Registration::default()
                },
                "technician",
            )
            .await
            .unwrap();

        let mut events = gw.provision.watch_tests().expect("a running gateway");
        let mut signals = gw.detect.tap();
        let view = gw
            .provision
            .start_test(&hh, Some(minutes), "technician")
            .await
            .unwrap();
        assert_eq!(view.devices.len(), home.devices.len() + 1);
        assert!(view.ended_ms.is_none());
        let views = gw.detect.views().await.unwrap();
        let v = views.iter().find(|v| v.household_id == hh).unwrap();
        assert_eq!(
            v.mode,
            HouseholdMode::InstallTest,
            "detection knows the test"
        );

        // The technician presses the help button and the gas sensor's TEST button.
        let scenarios: Vec<Scenario> = [format!("help@{hh}@+10m"), format!("gas@{hh}@+20m+5m")]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut sim_config = SimConfig::new("127.0.0.1", gw.mqtt_addr.port(), clock);
        sim_config.seed = SEED;
        let secrets = Arc::new(secrets);
        sim_config.credentials = Some(Arc::new(move |id: &DeviceId| secrets.get(id).cloned()));
        let stop = CancellationToken::new();
        let sim_task = tokio::spawn(sim::run(
            sim_config,
            Population {
                seed: SEED,
                households: vec![home.clone()],
            },
            scenarios,
            stop.clone(),
        ));

        // Follow the test live until it ends by itself.
        let mut checked: BTreeSet<String> = BTreeSet::new();
        let report = loop {
            match events.recv().await.unwrap() {
                TestEvent::CheckedOff(c) if c.household_id == hh => {
                    checked.insert(c.device_id);
                }
                TestEvent::Ended(v) if v.household_id == hh => break v,
                _ => {}
            }
        };
        stop.cancel();
        let sim_report = sim_task.await.unwrap();
        assert!(
            sim_report.connects >= home.devices.len() as u64,
            "{sim_report:?}"
        );

        let expected: BTreeSet<String> = home
            .devices
            .iter()
            .map(|d| d.id.as_str().to_string())
            .collect();
        assert_eq!(checked, expected, "every simulated device checked off live");
        assert!(report.ended_ms.is_some());
        let untested: Vec<&str> = report
            .untested()
            .iter()
            .map(|d| d.device_id.as_str())
            .collect();
        assert_eq!(untested, vec![spare.as_str()], "{report:#?}");
        let gas = report.devices.iter().find(|d| d.kind == "gas").unwrap();
        assert_eq!(gas.by.as_deref(), Some("gas alarm"));

        // No caseworker alert for this household, although the button was pressed and
        // the gas alarm went off.
        while let Ok(s) = signals.try_recv() {
            if s.household_id.as_deref() == Some(hh.as_str()) {
                assert_ne!(
                    s.kind.audience(),
                    Audience::Caseworker,
                    "a caseworker alert during the installation test: {s:?}"
                );
            }
        }

        // The report is stored, and the missing device has a work order.
        let stored = gw.provision.test_status(&hh).await.unwrap();
        assert_eq!(stored, report);
        let orders = gw.provision.work_orders(true, Some(&hh)).await.unwrap();
        assert!(
            orders
                .iter()
                .any(|o| o.device_id == spare && o.reason == "untested"),
            "{orders:?}"
        );
        assert_eq!(orders.len(), 1, "{orders:?}");
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}
