//! History through the InfluxDB v2 write path (the influxdb2 crate) into a real
//! VictoriaMetrics on loopback: every kind of point with its tags, values and timestamp;
//! and an outage of the server under load, after which every point is there exactly once
//! and the spool has drained, while the gateway went on ingesting and acknowledging.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anxin_firmware::wire::{self, Channel, DeviceId, EventBody, FallAction, HelpAction};
use anxin_gateway::app::Gateway;
use anxin_gateway::config::Config;
use anxin_gateway::history::HistoryQuery;
use anxin_gateway::store::{NewDevice, NewHousehold};
use common::victoria::{Exported, Victoria};
use common::{RawDevice, WAIT, loopback_config, metric, now_ms, start};
use sqlx::Row;

const HOUR_MS: u64 = 3_600_000;

fn sink_config(dir: &std::path::Path, vm: &Victoria) -> Config {
    let mut c = loopback_config(dir);
    let i = &mut c.history.influxdb;
    i.enabled = true;
    i.url = vm.url();
    i.org = "anxin".into();
    i.bucket = "anxin".into();
    i.token = "test-token".into();
    i.batch_size = 200;
    i.flush_interval_ms = 50;
    i.timeout_ms = 3000;
    i.retry_min_ms = 50;
    i.retry_max_ms = 400;
    c.history.aggregate_grace_s = 0;
    c
}

async fn register(gw: &Gateway, hh: &str, devices: &[(&str, &str, Option<&str>)]) {
    gw.store
        .upsert_households(
            &[NewHousehold {
                id: hh.into(),
                name: format!("测试户 {hh}"),
                address: String::new(),
            }],
            1,
        )
        .await
        .unwrap();
    let devs: Vec<NewDevice> = devices
        .iter()
        .map(|(id, kind, room)| NewDevice {
            id: (*id).into(),
            household_id: Some(hh.into()),
            kind: (*kind).into(),
            room: room.map(str::to_string),
        })
        .collect();
    gw.store.upsert_devices(&devs, 1).await.unwrap();
    gw.registry.reload(&gw.store).await.unwrap();
}

/// (series name, device label, timestamp) → values, from VictoriaMetrics.
fn samples(exported: &[Exported]) -> BTreeMap<(String, String, i64), Vec<f64>> {
    let mut m: BTreeMap<(String, String, i64), Vec<f64>> = BTreeMap::new();
    for s in exported {
        let dev = s.labels.get("device").cloned().unwrap_or_default();
        for (t, v) in s.timestamps.iter().zip(&s.values) {
            m.entry((s.name.clone(), dev.clone(), *t))
                .or_default()
                .push(*v);
        }
    }
    m
}

/// The same, from the embedded history (raw points of the households whose id starts with
/// `prefix`).
async fn embedded(gw: &Gateway, prefix: &str) -> BTreeMap<(String, String, i64), f64> {
    let rows = sqlx::query(
        "SELECT measurement, field, device_id, at_ms, value FROM history_points WHERE household_id LIKE $1",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(gw.store.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let m: String = r.get("measurement");
            let f: String = r.get("field");
            (
                (format!("{m}_{f}"), r.get("device_id"), r.get("at_ms")),
                r.get("value"),
            )
        })
        .collect()
}

/// A heartbeat as the wire carries it (JSON).
fn heartbeat(battery: u8, rssi: i16) -> Vec<u8> {
    format!(
        "{{\"v\":1,\"boot\":1,\"seq\":0,\"ts\":{},\"clk\":\"unix\",\"battery_pct\":{battery},\
         \"rssi_dbm\":{rssi},\"fw\":\"1.0.0\",\"uptime_s\":60,\"outbox\":0,\"dropped\":0,\
         \"interval_s\":300,\"temp_dc\":215}}",
        now_ms()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_point_reaches_victoria_metrics_with_its_tags_values_and_timestamp() {
    let vm = Victoria::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(sink_config(dir.path(), &vm)).await;
    register(
        &gw,
        "vh1",
        &[
            ("vh1-door", "door", Some("门厅")),
            ("vh1-motion", "motion", Some("卧室 1")),
            ("vh1-help", "help", None),
            ("vh1-gas", "gas", Some("厨房")),
            ("vh1-pendant", "pendant", None),
        ],
    )
    .await;
    // Two hours ago: the hour is closed, so its activity aggregate is written too.
    let base = now_ms() - 2 * HOUR_MS;
    let script: [(&str, u64, EventBody); 7] = [
        ("vh1-door", 0, EventBody::Door { open: true }),
        ("vh1-door", 1_000, EventBody::Door { open: false }),
        ("vh1-motion", 2_000, EventBody::Motion),
        (
            "vh1-help",
            3_000,
            EventBody::Help {
                act: HelpAction::Press,
            },
        ),
        (
            "vh1-gas",
            4_000,
            EventBody::Gas {
                alarm: true,
                ppm: 1500,
            },
        ),
        (
            "vh1-pendant",
            5_000,
            EventBody::Fall {
                act: FallAction::Detected,
                peak_mg: Some(2500),
            },
        ),
        ("vh1-pendant", 6_000, EventBody::Tamper { open: true }),
    ];
    let mut devices: HashMap<&str, (RawDevice, u32)> = HashMap::new();
    for (id, _, _) in &script {
        if !devices.contains_key(id) {
            devices.insert(id, (RawDevice::connect(id, gw.mqtt_addr).await, 0));
        }
    }
    for (id, dt, body) in &script {
        let (d, seq) = devices.get_mut(id).unwrap();
        *seq += 1;
        d.event(1, *seq, 1, base + dt, *body).await;
        d.wait_ack(1, *seq).await;
    }
    let door = &devices["vh1-door"].0;
    let id = DeviceId::new("vh1-door").unwrap();
    door.publish_raw(
        &wire::topic::topic(&id, Channel::Heartbeat),
        heartbeat(87, -67),
    )
    .await;
    let status = format!(
        "{{\"v\":1,\"boot\":1,\"seq\":2,\"ts\":{},\"clk\":\"unix\",\"state\":\"online\",\"fw\":\"1.0.0\"}}",
        now_ms()
    );
    door.publish_raw(
        &wire::topic::topic(&id, Channel::Status),
        status.into_bytes(),
    )
    .await;

    // Battery, signal, temperature, online, and the closed hour's activity: 7 fields.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let q = HistoryQuery {
            household_id: Some("vh1".into()),
            from_ms: 0,
            to_ms: i64::MAX,
            ..HistoryQuery::default()
        };
        let qd = HistoryQuery {
            measurement: Some("device".into()),
            ..q.clone()
        };
        let qa = HistoryQuery {
            measurement: Some("activity".into()),
            ..q
        };
        let device = gw.history.query(&qd).await.unwrap();
        let activity = gw.history.query(&qa).await.unwrap();
        if device.series.len() == 4 && activity.series.iter().all(|s| !s.points.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "device points and activity not written: {device:?} {activity:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gw.history.wait_caught_up(WAIT).await.unwrap());
    assert!(
        gw.history.wait_sink_drained(WAIT).await,
        "{:?}",
        gw.history.status()
    );

    let want = embedded(&gw, "vh1").await;
    // 9 fields of the 7 events, 4 of the device.
    assert_eq!(want.len(), 13, "{want:?}");
    let exported = vm
        .export_at_least("{household=\"vh1\"}", want.len() + 7, WAIT)
        .await;
    let got = samples(&exported);
    for ((series, device, t), v) in &want {
        assert_eq!(
            got.get(&(series.clone(), device.clone(), *t)),
            Some(&vec![*v]),
            "{series} of {device} at {t} (exactly once, same value)"
        );
    }

    let series = |name: &str| -> &Exported {
        exported
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("series {name} missing: {exported:?}"))
    };
    let door_open = series("door_open");
    assert_eq!(door_open.values, vec![1.0, 0.0]);
    assert_eq!(door_open.timestamps, vec![base as i64, base as i64 + 1000]);
    let tags: Vec<(&str, &str)> = door_open
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        vec![
            ("device", "vh1-door"),
            ("household", "vh1"),
            ("kind", "door"),
            ("room", "门厅")
        ]
    );
    assert_eq!(series("motion_detected").labels["room"], "卧室 1");
    assert_eq!(series("help_press").timestamps, vec![base as i64 + 3000]);
    assert_eq!(series("gas_alarm").values, vec![1.0]);
    assert_eq!(series("gas_ppm").values, vec![1500.0]);
    assert_eq!(series("gas_ppm").timestamps, vec![base as i64 + 4000]);
    assert_eq!(series("fall_detected").labels["kind"], "pendant");
    assert_eq!(series("fall_peak_mg").values, vec![2500.0]);
    assert_eq!(series("tamper_open").values, vec![1.0]);
    assert_eq!(series("device_battery_pct").values, vec![87.0]);
    assert_eq!(series("device_rssi_dbm").values, vec![-67.0]);
    assert_eq!(series("device_temp_c").values, vec![21.5]);
    assert_eq!(series("device_online").values, vec![1.0]);

    let hour = (base - base % HOUR_MS) as i64;
    let activity = |field: &str| {
        let s = series(&format!("activity_{field}"));
        assert_eq!(s.labels.keys().collect::<Vec<_>>(), vec!["household"]);
        let i = s
            .timestamps
            .iter()
            .position(|t| *t == hour)
            .expect("the hour of the events");
        s.values[i]
    };
    // The seven events may straddle an hour boundary; the hour of `base` has at least one.
    assert!(activity("events") >= 1.0);
    let total_events: f64 = series("activity_events").values.iter().sum();
    assert_eq!(total_events, 7.0);
    let total_help: f64 = series("activity_help").values.iter().sum();
    assert_eq!(total_help, 1.0);

    let text = gw.metrics.encode();
    assert!(
        metric(
            &text,
            "anxin_history_points_written_total",
            "sink=\"influxdb\""
        ) >= 20.0
    );
    assert_eq!(metric(&text, "anxin_history_spool_points", ""), 0.0);
    drop(devices);
    gw.shutdown().await;
}

/// One event per device per round, with distinct timestamps, as (device, ts, body).
fn round(devices: &[(String, &'static str)], r: u64, base: u64) -> Vec<(String, u64, EventBody)> {
    devices
        .iter()
        .enumerate()
        .map(|(i, (id, kind))| {
            let body = match *kind {
                "door" => EventBody::Door {
                    open: r.is_multiple_of(2),
                },
                "motion" => EventBody::Motion,
                _ => EventBody::Help {
                    act: if r.is_multiple_of(2) {
                        HelpAction::Press
                    } else {
                        HelpAction::Cancel
                    },
                },
            };
            (id.clone(), base + r * 1000 + i as u64, body)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_time_series_server_loses_nothing_and_the_spool_drains_when_it_returns() {
    const HOUSEHOLDS: usize = 8;
    const ROUNDS: u64 = 60;
    let mut vm = Victoria::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = sink_config(dir.path(), &vm);
    config.history.influxdb.spool_warn_points = 100;
    let gw = start(config).await;

    let mut ids: Vec<(String, &'static str)> = Vec::new();
    for h in 0..HOUSEHOLDS {
        let hh = format!("oh{h:02}");
        let devs: Vec<(String, &'static str)> = ["door", "motion", "help"]
            .iter()
            .map(|k| (format!("{hh}-{k}"), *k))
            .collect();
        let regs: Vec<(&str, &str, Option<&str>)> =
            devs.iter().map(|(id, k)| (id.as_str(), *k, None)).collect();
        register(&gw, &hh, &regs).await;
        ids.extend(devs);
    }
    let mut raw: HashMap<String, RawDevice> = HashMap::new();
    for (id, _) in &ids {
        raw.insert(id.clone(), RawDevice::connect(id, gw.mqtt_addr).await);
    }
    let base = now_ms() - 10 * 60_000;
    let acks_before = metric(&gw.metrics.encode(), "anxin_ingest_acks_sent_total", "");
    let mut send_round = async |r: u64| {
        for (id, ts, body) in round(&ids, r, base) {
            raw[&id].event(1, r as u32 + 1, 1, ts, body).await;
        }
        for (id, _) in &ids {
            raw.get_mut(id).unwrap().wait_ack(1, r as u32 + 1).await;
        }
    };

    for r in 0..ROUNDS / 4 {
        send_round(r).await;
    }
    vm.stop().await;
    for r in ROUNDS / 4..ROUNDS * 3 / 4 {
        // Every round is acknowledged: ingest commits and acks while the server is away.
        send_round(r).await;
    }
    assert!(gw.history.wait_caught_up(WAIT).await.unwrap());
    // The spool task raises the alert at its next retry (at most retry_max_ms later).
    let deadline = tokio::time::Instant::now() + WAIT;
    while !gw.history.status().sink.is_some_and(|s| s.alert) {
        assert!(tokio::time::Instant::now() < deadline, "no spool alert");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = gw.history.status();
    let sink = during.sink.clone().expect("sink status");
    assert!(
        sink.backlog > 100,
        "the spool holds the outage's points: {during:?}"
    );
    assert!(sink.alert, "the spool alert is raised: {during:?}");
    assert!(sink.last_error.is_some());
    let text = gw.metrics.encode();
    assert!(metric(&text, "anxin_history_spool_points", "") > 100.0);
    assert_eq!(metric(&text, "anxin_history_spool_alert", ""), 1.0);
    assert!(
        metric(
            &text,
            "anxin_history_sink_errors_total",
            "reason=\"unreachable\""
        ) >= 1.0
    );

    vm.restart().await;
    for r in ROUNDS * 3 / 4..ROUNDS {
        send_round(r).await;
    }
    assert!(gw.history.wait_caught_up(WAIT).await.unwrap());
    assert!(
        gw.history.wait_sink_drained(Duration::from_secs(60)).await,
        "spool did not drain: {:?}",
        gw.history.status()
    );
    let after = gw.history.status();
    let sink = after.sink.clone().expect("sink status");
    assert_eq!(sink.backlog, 0);
    assert!(!sink.alert, "{after:?}");
    assert_eq!(sink.dropped, 0);
    let text = gw.metrics.encode();
    assert_eq!(metric(&text, "anxin_history_spool_points", ""), 0.0);
    let acks = metric(&text, "anxin_ingest_acks_sent_total", "") - acks_before;
    assert!(
        acks >= (ids.len() as u64 * ROUNDS) as f64 * 0.5,
        "acks kept flowing: {acks}"
    );

    // Every event is in the embedded history and at the server, exactly once by series
    // and timestamp, with its value.
    let want = embedded(&gw, "oh").await;
    let total = ids.len() * ROUNDS as usize;
    assert_eq!(want.len(), total, "embedded history has every event");
    for (id, ts, body) in (0..ROUNDS).flat_map(|r| round(&ids, r, base)) {
        let field = match body {
            EventBody::Door { .. } => "door_open",
            EventBody::Motion => "motion_detected",
            EventBody::Help {
                act: HelpAction::Press,
            } => "help_press",
            _ => "help_cancel",
        };
        assert!(
            want.contains_key(&(field.to_string(), id.clone(), ts as i64)),
            "{field} {id} {ts}"
        );
    }
    let exported = vm
        .export_at_least("{household=~\"oh.*\",device!=\"\"}", total, WAIT)
        .await;
    let got = samples(&exported);
    let mut resent = 0;
    for (key, v) in &want {
        let values = got
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} missing at the server"));
        assert!(values.iter().all(|x| x == v), "{key:?}: {values:?} != {v}");
        resent += values.len() - 1;
    }
    assert_eq!(got.len(), want.len(), "no point the history does not have");
    // A batch in flight when the server stopped may have been stored and sent again:
    // same series and timestamp, which InfluxDB overwrites. Nothing else is repeated.
    assert!(resent <= 200, "{resent} samples sent more than once");
    drop(raw);
    gw.shutdown().await;
}
