//! Golden files pin the JSON of every message of wire protocol v1: the firmware's
//! `no_std` encoder must produce exactly these bytes, and the gateway's decoder must read
//! them back to the same values. Run with `UPDATE_GOLDEN=1` to rewrite the files after a
//! deliberate protocol change (and bump the version if the change is not compatible).
#![cfg(feature = "std")]

use std::path::PathBuf;

use anxin_firmware::wire::{
    self, Ack, AlertCause, Availability, Clock, Command, CommandKind, DeviceConfig, Event,
    EventBody, FallAction, Heartbeat, HelpAction, Status,
};

const TS: u64 = 1_732_435_200_123;

fn golden(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let text = std::str::from_utf8(bytes).unwrap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, format!("{text}\n")).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(text, want.trim_end(), "golden file {name}.json differs");
    assert!(bytes.len() <= wire::MAX_PAYLOAD);
}

fn encode<T: serde::Serialize>(m: &T) -> Vec<u8> {
    let mut buf = [0u8; wire::MAX_PAYLOAD];
    let n = wire::encode(m, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn events() -> Vec<(&'static str, Event)> {
    let ev = |seq, body| Event::new(3, seq, 15, TS, Clock::Unix, body);
    vec![
        ("event_door_open", ev(17, EventBody::Door { open: true })),
        ("event_door_closed", ev(18, EventBody::Door { open: false })),
        ("event_motion", ev(19, EventBody::Motion)),
        (
            "event_help_press",
            ev(
                20,
                EventBody::Help {
                    act: HelpAction::Press,
                },
            ),
        ),
        (
            "event_help_cancel",
            ev(
                21,
                EventBody::Help {
                    act: HelpAction::Cancel,
                },
            ),
        ),
        (
            "event_help_long",
            ev(
                22,
                EventBody::Help {
                    act: HelpAction::Long,
                },
            ),
        ),
        (
            "event_help_ok",
            ev(
                28,
                EventBody::Help {
                    act: HelpAction::Ok,
                },
            ),
        ),
        (
            "event_gas_alarm",
            ev(
                23,
                EventBody::Gas {
                    alarm: true,
                    ppm: 1200,
                },
            ),
        ),
        (
            "event_gas_clear",
            ev(
                24,
                EventBody::Gas {
                    alarm: false,
                    ppm: 180,
                },
            ),
        ),
        (
            "event_fall_detected",
            ev(
                25,
                EventBody::Fall {
                    act: FallAction::Detected,
                    peak_mg: Some(3400),
                },
            ),
        ),
        (
            "event_fall_cancel",
            ev(
                26,
                EventBody::Fall {
                    act: FallAction::Cancel,
                    peak_mg: None,
                },
            ),
        ),
        ("event_tamper", ev(27, EventBody::Tamper { open: true })),
        (
            "event_uptime_clock",
            Event::new(1, 1, 1, 61_250, Clock::Up, EventBody::Door { open: true }),
        ),
    ]
}

#[test]
fn every_event_kind_matches_its_golden_file_and_decodes_back() {
    for (name, ev) in events() {
        let bytes = encode(&ev);
        golden(name, &bytes);
        assert_eq!(wire::decode_event(&bytes).unwrap(), ev, "{name}");
    }
}

#[test]
fn heartbeat_matches_its_golden_file() {
    let hb = Heartbeat {
        v: 1,
        boot: 3,
        seq: 17,
        ts: TS,
        clk: Clock::Unix,
        battery_pct: Some(87),
        battery_mv: Some(2950),
        rssi_dbm: Some(-67),
        fw: "1.0.0".try_into().unwrap(),
        uptime_s: 86_400,
        outbox: 0,
        dropped: 0,
        interval_s: 300,
        temp_dc: Some(215),
        cmd: None,
        mac: None,
    };
    let bytes = encode(&hb);
    golden("heartbeat", &bytes);
    assert_eq!(wire::decode_heartbeat(&bytes).unwrap(), hb);
}

#[test]
fn heartbeat_acknowledging_a_command_matches_its_golden_file() {
    let hb = Heartbeat {
        v: 1,
        boot: 3,
        seq: 17,
        ts: TS,
        clk: Clock::Unix,
        battery_pct: Some(87),
        battery_mv: None,
        rssi_dbm: None,
        fw: "1.0.0".try_into().unwrap(),
        uptime_s: 86_400,
        outbox: 0,
        dropped: 0,
        interval_s: 300,
        temp_dc: None,
        cmd: Some(2_864_434_397),
        mac: None,
    };
    let bytes = encode(&hb);
    golden("heartbeat_cmd", &bytes);
    assert_eq!(wire::decode_heartbeat(&bytes).unwrap(), hb);
}

#[test]
fn status_online_and_last_will_match_their_golden_files() {
    let online = Status {
        v: 1,
        boot: 3,
        seq: 17,
        ts: TS,
        clk: Clock::Unix,
        state: Availability::Online,
        fw: Some("1.0.0".try_into().unwrap()),
        mac: None,
    };
    let will = Status {
        state: Availability::Offline,
        fw: None,
        ..online.clone()
    };
    for (name, m) in [("status_online", online), ("status_offline_will", will)] {
        let bytes = encode(&m);
        golden(name, &bytes);
        assert_eq!(wire::decode_status(&bytes).unwrap(), m);
    }
}

#[test]
fn commands_match_their_golden_files_and_decode_without_std() {
    let received = Command {
        cause: Some(AlertCause::Help),
        ..Command::new(42, CommandKind::AlertReceived)
    };
    let acked = Command {
        cause: Some(AlertCause::Help),
        ..Command::new(43, CommandKind::AlertAcknowledged)
    };
    let test_on = Command {
        on: Some(true),
        duration_s: Some(1800),
        ..Command::new(44, CommandKind::InstallTest)
    };
    let test_off = Command {
        on: Some(false),
        ..Command::new(45, CommandKind::InstallTest)
    };
    let config = Command {
        config: Some(DeviceConfig {
            heartbeat_s: Some(300),
            help_cancel_s: Some(10),
            fall_cancel_s: Some(30),
            gas_alarm_ppm: Some(1000),
            gas_clear_ppm: Some(500),
        }),
        ..Command::new(46, CommandKind::Config)
    };
    let check_in = Command {
        on: Some(true),
        duration_s: Some(300),
        ..Command::new(47, CommandKind::CheckIn)
    };
    let check_in_off = Command {
        on: Some(false),
        ..Command::new(48, CommandKind::CheckIn)
    };
    for (name, c) in [
        ("command_check_in", check_in),
        ("command_check_in_off", check_in_off),
        ("command_alert_received", received),
        ("command_alert_acknowledged", acked),
        ("command_install_test_on", test_on),
        ("command_install_test_off", test_off),
        ("command_config", config),
    ] {
        let bytes = encode(&c);
        golden(name, &bytes);
        assert_eq!(
            wire::codec::decode_command_no_std(&bytes).unwrap(),
            c,
            "{name}"
        );
        assert_eq!(wire::decode_command(&bytes).unwrap(), c, "{name}");
    }
}

#[test]
fn ack_matches_its_golden_file_and_decodes_without_std() {
    let ack = Ack::new(3, 17);
    let bytes = encode(&ack);
    golden("ack", &bytes);
    assert_eq!(wire::codec::decode_ack_no_std(&bytes).unwrap(), ack);
}
