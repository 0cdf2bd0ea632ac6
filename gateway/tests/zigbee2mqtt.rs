//! Zigbee2MQTT payloads from real installations (`shared/data/zigbee2mqtt-payloads/
//! payloads.jsonl`, each line citing the public thread it was quoted from) through the
//! adapter, quirks included; then the same path end to end through a gateway whose
//! embedded broker runs in production mode with a provisioned bridge.

use crate::provision_support;

use std::time::Duration;

use anxin_firmware::wire::{DeviceId, EventBody, HelpAction};
use anxin_gateway::ingest::zigbee2mqtt::{BRIDGE_KIND, ZIGBEE_BOOT, ZigbeeDevice};
use anxin_gateway::ingest::{Decoded, RejectReason, ZigbeeAdapter, ZigbeeMap};
use anxin_gateway::provision::Registration;
use anxin_gateway::signal::{AlertKind, SignalAction};
use anxin_gateway::telemetry::Metrics;
use provision_support::{Fixture, fixture, fixtures};
use rumqttc::{Publish, QoS};

/// Fictional mapping of the fixtures' topics to registered devices (the two SOS lines
/// of issue 31821 were logged without a topic: they get a made-up friendly name).
const MAPPING: [(&str, &str, &str); 9] = [
    ("h0001-door", "0x00158d0007ef997c", "door"),
    ("h0001-pir-a", "0x00158d0002006aa6", "motion"),
    ("h0001-pir-b", "0x00158d0001e50d78", "motion"),
    ("h0001-pir-kitchen", "KeukenMotionSensorMS4", "motion"),
    ("h0001-pir-c", "0x00158d00054a726a", "motion"),
    ("h0001-pir-d", "0x04cf8cdf3c8a82e0", "motion"),
    ("h0001-sos", "0xa4c13899607febd1", "help"),
    ("h0001-sos-2", "test-sos-31821", "help"),
    ("h0001-gas", "0x000d6f001539fdba", "gas"),
];

fn adapter() -> ZigbeeAdapter {
    let map = ZigbeeMap::default();
    let mut entries: Vec<ZigbeeDevice> = MAPPING
        .iter()
        .map(|(id, name, kind)| ZigbeeDevice {
            device_id: DeviceId::new(id).unwrap(),
            name: (*name).into(),
            kind: (*kind).into(),
            bridge: None,
            seq_floor: 0,
            last: Vec::new(),
        })
        .collect();
    entries.push(ZigbeeDevice {
        device_id: DeviceId::new("z2m-h0001").unwrap(),
        name: String::new(),
        kind: BRIDGE_KIND.into(),
        bridge: None,
        seq_floor: 0,
        last: Vec::new(),
    });
    map.set(entries);
    ZigbeeAdapter::new("zigbee2mqtt", 3600, map, &Metrics::new())
}

fn topic_of(f: &Fixture) -> String {
    f.topic
        .clone()
        .unwrap_or_else(|| "zigbee2mqtt/test-sos-31821".into())
}

fn publish(topic: &str, payload: &str) -> Publish {
    Publish::new(topic, QoS::AtLeastOnce, payload.as_bytes().to_vec())
}

const T0: i64 = 1_767_225_600_000;

/// Translates a fixture; returns the event bodies and the heartbeat's battery.
fn run(a: &mut ZigbeeAdapter, f: &Fixture, at: i64) -> (Vec<EventBody>, Option<u8>) {
    let out = a
        .translate(&publish(&topic_of(f), &f.payload.to_string()), at)
        .unwrap_or_else(|e| panic!("{} ({}) rejected: {e:?}", f.id, f.source));
    let mut events = Vec::new();
    let mut battery = None;
    let mut heartbeats = 0;
    for (_, m) in out {
        match m {
            Decoded::Event(e) => {
                assert_eq!(e.boot, ZIGBEE_BOOT);
                assert_eq!(e.oldest, e.seq, "nothing held by the device");
                events.push(e.ev);
            }
            Decoded::Heartbeat(h) => {
                heartbeats += 1;
                assert_eq!(h.interval_s, 3600);
                battery = h.battery_pct;
            }
            Decoded::Status(_) => panic!("{}: a state message is not availability", f.id),
        }
    }
    assert_eq!(
        heartbeats, 1,
        "{}: every message proves the device alive",
        f.id
    );
    (events, battery)
}

#[test]
fn every_real_payload_is_accepted_and_cites_its_source() {
    let all = fixtures();
    assert_eq!(all.len(), 15);
    let mut a = adapter();
    for (i, f) in all.iter().enumerate() {
        assert!(f.source.starts_with("https://"), "{} has no source", f.id);
        run(&mut a, f, T0 + i as i64 * 1000);
    }
}

#[test]
fn contact_true_means_closed_and_only_changes_are_door_events() {
    // contact-1: the first report after pairing, without a battery member.
    let f = fixture("contact-1");
    let mut a = adapter();
    let (events, battery) = run(&mut a, &f, T0);
    assert_eq!(
        events,
        vec![EventBody::Door { open: false }],
        "{}",
        f.source
    );
    assert_eq!(battery, None, "no battery member yet: {}", f.note);
    // The same state re-published (a battery or link report) is not a door event.
    let (events, _) = run(&mut a, &f, T0 + 60_000);
    assert!(events.is_empty());
    let mut open = f.clone();
    open.payload["contact"] = false.into();
    let (events, _) = run(&mut a, &open, T0 + 120_000);
    assert_eq!(events, vec![EventBody::Door { open: true }]);
}

#[test]
fn repeated_occupancy_true_without_false_is_motion_each_time() {
    let (m1, m2) = (fixture("motion-1"), fixture("motion-2"));
    let mut a = adapter();
    assert_eq!(
        run(&mut a, &m1, T0).0,
        vec![EventBody::Motion],
        "{}",
        m1.source
    );
    assert_eq!(
        run(&mut a, &m2, T0 + 48_000).0,
        vec![EventBody::Motion],
        "{}",
        m2.note
    );
}

#[test]
fn occupancy_false_is_the_timeout_of_zigbee2mqtt_not_an_event() {
    let mut a = adapter();
    for id in ["motion-3", "motion-4c"] {
        let f = fixture(id);
        let (events, battery) = run(&mut a, &f, T0);
        assert!(events.is_empty(), "{id}: {}", f.note);
        assert!(battery.is_some());
    }
}

#[test]
fn the_old_state_republished_just_before_motion_does_not_hide_it() {
    // motion-4a (false) then motion-4b (true) in the same second (issue 2830).
    let mut a = adapter();
    let (e1, _) = run(&mut a, &fixture("motion-4a"), T0);
    let (e2, b) = run(&mut a, &fixture("motion-4b"), T0 + 200);
    assert!(e1.is_empty());
    assert_eq!(e2, vec![EventBody::Motion]);
    assert_eq!(b, Some(97));
}

#[test]
fn unknown_members_of_newer_converters_are_ignored() {
    // motion-6: detection_interval, motion_sensitivity, state, update… (PR 4006).
    let f = fixture("motion-6");
    let mut a = adapter();
    let out = a
        .translate(&publish(&topic_of(&f), &f.payload.to_string()), T0)
        .unwrap();
    let hb = out
        .iter()
        .find_map(|(_, m)| match m {
            Decoded::Heartbeat(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        out.iter()
            .any(|(_, m)| matches!(m, Decoded::Event(e) if e.ev == EventBody::Motion))
    );
    assert_eq!(hb.temp_dc, Some(250));
    assert_eq!(hb.battery_mv, Some(3123));
}

#[test]
fn an_sos_action_null_or_empty_is_not_a_press_and_emergency_is() {
    let mut a = adapter();
    let idle = fixture("sos-1");
    assert!(run(&mut a, &idle, T0).0.is_empty(), "{}", idle.note);
    let press = fixture("sos-2");
    assert_eq!(
        run(&mut a, &press, T0 + 5000).0,
        vec![EventBody::Help {
            act: HelpAction::Press
        }],
        "{}",
        press.source
    );
    // "…followed immediately by a message with action=\"\" (reset)".
    let mut reset = press.clone();
    reset.payload["action"] = "".into();
    assert!(run(&mut a, &reset, T0 + 5100).0.is_empty());
}

#[test]
fn a_battery_of_zero_is_not_believed_and_the_last_reading_stays() {
    // sos-3 then sos-4 (issue 31821): the spurious presses still count as presses
    // (the help-button cancel window and the false-press history deal with them).
    let mut a = adapter();
    let (e3, b3) = run(&mut a, &fixture("sos-3"), T0);
    let (e4, b4) = run(&mut a, &fixture("sos-4"), T0 + 60_000);
    assert_eq!(e3.len(), 1);
    assert_eq!(e4.len(), 1);
    assert_eq!(b3, Some(80));
    assert_eq!(b4, Some(80), "battery 0 while transmitting is not believed");
}

#[test]
fn gas_false_on_the_test_button_is_no_alarm_and_no_noise() {
    // gas-1 (TEST pressed) and gas-2 (real gas) both say gas=false with that converter
    // (hassio-zigbee2mqtt issue 208): no gas event, no tamper event, alive.
    let mut a = adapter();
    for id in ["gas-1", "gas-2"] {
        let f = fixture(id);
        let (events, battery) = run(&mut a, &f, T0);
        assert!(events.is_empty(), "{id}: {}", f.note);
        assert_eq!(battery, None);
    }
    // With a fixed converter the alarm arrives, and clears on change only.
    let mut alarm = fixture("gas-1");
    alarm.payload["gas"] = true.into();
    assert_eq!(
        run(&mut a, &alarm, T0 + 1000).0,
        vec![EventBody::Gas {
            alarm: true,
            ppm: 0
        }]
    );
    assert!(run(&mut a, &alarm, T0 + 2000).0.is_empty());
    assert_eq!(
        run(&mut a, &fixture("gas-2"), T0 + 3000).0,
        vec![EventBody::Gas {
            alarm: false,
            ppm: 0
        }]
    );
    let mut low = fixture("gas-2");
    low.payload["battery_low"] = true.into();
    low.payload["tamper"] = true.into();
    let (events, battery) = run(&mut a, &low, T0 + 4000);
    assert_eq!(events, vec![EventBody::Tamper { open: true }]);
    assert_eq!(battery, Some(10), "battery_low reports a low battery");
}

#[test]
fn a_linkquality_of_zero_still_proves_the_device_alive() {
    let mut f = fixture("motion-3");
    f.payload["linkquality"] = 0.into();
    let (_, battery) = run(&mut adapter(), &f, T0);
    assert_eq!(battery, Some(100));
}

#[test]
fn a_redelivered_press_gets_the_same_sequence_number_and_a_new_one_does_not() {
    let f = fixture("sos-2");
    let mut a = adapter();
    let p = publish(&topic_of(&f), &f.payload.to_string());
    let seq_of = |out: Vec<(DeviceId, Decoded)>| {
        out.into_iter()
            .find_map(|(_, m)| match m {
                Decoded::Event(e) => Some(e.seq),
                _ => None,
            })
            .unwrap()
    };
    let first = seq_of(a.translate(&p, T0).unwrap());
    let mut again = p.clone();
    again.dup = true;
    assert_eq!(seq_of(a.translate(&again, T0 + 2000).unwrap()), first);
    // Not flagged as a redelivery: a second press.
    assert_eq!(seq_of(a.translate(&p, T0 + 4000).unwrap()), first + 1);
}

#[test]
fn bad_input_is_rejected_with_its_reason_and_odd_members_are_dropped() {
    let mut a = adapter();
    assert_eq!(
        a.translate(&publish("zigbee2mqtt/0xdeadbeef", "{}"), T0)
            .unwrap_err(),
        RejectReason::unknown_device
    );
    assert_eq!(
        a.translate(&publish("zigbee2mqtt/0x00158d0007ef997c", "{oops"), T0)
            .unwrap_err(),
        RejectReason::malformed
    );
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
    assert_eq!(
        a.translate(&publish("zigbee2mqtt/0x00158d0007ef997c", &big), T0)
            .unwrap_err(),
        RejectReason::oversized
    );
    // A member of the wrong type is dropped, the rest is used.
    let out = a
        .translate(
            &publish(
                "zigbee2mqtt/0x00158d0007ef997c",
                r#"{"contact":false,"battery":"full","linkquality":"n/a"}"#,
            ),
            T0,
        )
        .unwrap();
    assert!(matches!(&out[0].1, Decoded::Event(e) if e.ev == EventBody::Door { open: true }));
    // Bridge chatter and commands are not device data.
    for t in [
        "zigbee2mqtt/bridge/info",
        "zigbee2mqtt/bridge/logging",
        "zigbee2mqtt/0x00158d0007ef997c/set",
    ] {
        assert!(
            a.translate(&publish(t, "{}"), T0).unwrap().is_empty(),
            "{t}"
        );
    }
}

#[test]
fn a_dead_bridge_marks_every_one_of_its_devices_offline() {
    let mut a = adapter();
    let out = a
        .translate(&publish("zigbee2mqtt/bridge/state", "offline"), T0)
        .unwrap();
    assert_eq!(out.len(), MAPPING.len() + 1);
    assert!(out.iter().all(|(_, m)| matches!(m, Decoded::Status(s) if s.state == anxin_firmware::wire::Availability::Offline)));
    let back = a
        .translate(
            &publish("zigbee2mqtt/bridge/state", r#"{"state":"online"}"#),
            T0,
        )
        .unwrap();
    assert!(back.iter().all(|(_, m)| matches!(m, Decoded::Status(s) if s.state == anxin_firmware::wire::Availability::Online)));
}

/// End to end: a bridge with its own credentials publishes the real payloads to the
/// gateway's embedded broker (production mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_reach_the_journal_and_detection_through_a_provisioned_bridge() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let gw = provision_support::start_production(dir.path(), |_| {}).await;
        provision_support::household(&gw, "h0001").await;
        let bridge = gw
            .provision
            .register(
                Registration {
                    device_id: Some("z2m-h0001".into()),
                    kind: BRIDGE_KIND.into(),
                    ..Registration::default()
                },
                "test",
            )
            .await
            .unwrap();
        let bridge_secret = bridge.secret.unwrap();
        for (id, name, kind) in MAPPING {
            let r = gw
                .provision
                .register(
                    Registration {
                        device_id: Some(id.into()),
                        kind: kind.into(),
                        household_id: Some("h0001".into()),
                        room: Some(if kind == "door" { "entrance" } else { "living" }.into()),
                        zigbee_name: Some(name.into()),
                        ..Registration::default()
                    },
                    "test",
                )
                .await
                .unwrap();
            assert!(
                r.secret.is_none(),
                "a Zigbee device logs in through its bridge"
            );
        }
        let mut signals = gw.detect.tap();
        let mut z2m = provision_support::Client::connect(
            gw.mqtt_addr,
            "z2m-h0001",
            Some(("z2m-h0001", bridge_secret.expose())),
        )
        .await
        .unwrap();
        // A stranger without the bridge's password cannot publish as a bridge.
        assert!(
            provision_support::Client::connect(gw.mqtt_addr, "z2m-x", Some(("z2m-h0001", "wrong")))
                .await
                .is_err()
        );
        z2m.publish("zigbee2mqtt/bridge/state", b"online", true)
            .await;
        for f in fixtures() {
            z2m.publish(&topic_of(&f), f.payload.to_string().as_bytes(), false)
                .await;
        }
        provision_support::eventually("the SOS presses to be journalled", || async {
            gw.store.events_of("h0001-sos-2").await.unwrap().len() == 2
        })
        .await;
        let door = gw.store.events_of("h0001-door").await.unwrap();
        assert_eq!(door.len(), 1, "contact-1 once: {door:?}");
        assert_eq!(
            gw.store.events_of("h0001-pir-a").await.unwrap().len(),
            2,
            "motion-1 and motion-2"
        );
        assert!(gw.store.events_of("h0001-gas").await.unwrap().is_empty());
        assert_eq!(gw.store.events_of("h0001-sos").await.unwrap().len(), 1);
        // The emergency press is a help alert for the household, as from any button.
        let help = provision_support::next_signal(&mut signals, |s| {
            s.kind == AlertKind::Help && s.action == SignalAction::Raise
        })
        .await;
        assert_eq!(help.household_id.as_deref(), Some("h0001"));
        let health = gw.store.device_health().await.unwrap();
        let sos = health
            .iter()
            .find(|h| h.device_id == "h0001-sos-2")
            .unwrap();
        assert_eq!(sos.battery_pct, Some(80));
        assert_eq!(sos.fw.as_deref(), Some("zigbee"));

        // The bridge dies: its devices are offline and one work order is opened.
        z2m.publish("zigbee2mqtt/bridge/state", b"offline", true)
            .await;
        provision_support::eventually("a work order for the dead bridge", || async {
            gw.provision
                .work_orders(true, None)
                .await
                .unwrap()
                .iter()
                .any(|o| o.device_id == "z2m-h0001" && o.reason == "bridge_offline")
        })
        .await;
        let orders = gw.provision.work_orders(true, None).await.unwrap();
        assert_eq!(
            orders.len(),
            1,
            "one technical order, not one per device: {orders:?}"
        );
        let health = gw.store.device_health().await.unwrap();
        for (id, _, _) in MAPPING {
            let h = health.iter().find(|h| h.device_id == id).unwrap();
            assert_eq!(h.online, 0, "{id} marked offline with its bridge");
        }
        let text = gw.metrics.encode();
        assert!(
            provision_support::metric(&text, "anxin_zigbee_messages_total", "bridge_state") >= 2.0
        );
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}
