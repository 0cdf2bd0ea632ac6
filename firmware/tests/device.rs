//! The device loop against a recording link and pins the test drives.

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use serde_json::Value;

use anxin_firmware::device::{
    Battery, Device, Handled, MessageError, NoGas, Pattern, RecordingLink, Settings,
};
use anxin_firmware::input::GasProbe;
use anxin_firmware::wire::{Channel, CommandKind, DeviceId, EventBody, FallAction};

/// A pin whose level the test sets (input) or reads (output).
#[derive(Clone, Default)]
struct Wire(Rc<Cell<bool>>);

impl Wire {
    fn set(&self, high: bool) {
        self.0.set(high);
    }
    fn get(&self) -> bool {
        self.0.get()
    }
}

impl ErrorType for Wire {
    type Error = Infallible;
}

impl InputPin for Wire {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.get())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.get())
    }
}

impl OutputPin for Wire {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.set(true);
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Probe(Rc<Cell<u32>>);

impl GasProbe for Probe {
    fn read_ppm(&mut self) -> Option<u32> {
        Some(self.0.get())
    }
}

type HelpDevice = Device<RecordingLink, Wire, Wire, NoGas>;

fn settings(id: &str) -> Settings {
    Settings::new(DeviceId::new(id).expect("valid test id"), 3)
}

/// A help-button device (button released = high) with an LED, connected or not.
fn help_device(connected: bool) -> (HelpDevice, Wire, Wire) {
    let button = Wire::default();
    button.set(true);
    let led = Wire::default();
    let link = if connected {
        RecordingLink::connected()
    } else {
        RecordingLink::new()
    };
    let mut dev = Device::new(settings("h0001-help"), link, 0)
        .with_help_button(button.clone())
        .with_indicator(led.clone());
    // The first poll takes the button's resting level; a connected device announces
    // itself (online status and a heartbeat at once).
    dev.poll(0);
    while dev.link_mut().take().is_some() {}
    (dev, button, led)
}

fn json(p: &[u8]) -> Value {
    serde_json::from_slice(p).expect("payloads are JSON")
}

/// Takes what the link recorded on `channel` as JSON.
fn taken(dev: &mut HelpDevice, channel: Channel) -> Vec<Value> {
    dev.link_mut()
        .take_on(channel)
        .iter()
        .map(|p| json(&p.payload))
        .collect()
}

/// Presses the button at `at` for `hold` ms, polling every 10 ms.
fn press(dev: &mut HelpDevice, button: &Wire, at: u64, hold: u64) {
    button.set(false);
    let mut t = at;
    while t < at + hold {
        dev.poll(t);
        t += 10;
    }
    button.set(true);
    for t in (at + hold..at + hold + 100).step_by(10) {
        dev.poll(t);
    }
}

fn ack(dev: &mut HelpDevice, upto: u32, now: u64) -> Result<Handled, MessageError> {
    let payload = format!(r#"{{"v":1,"boot":3,"upto":{upto}}}"#);
    dev.on_message(Channel::Ack, payload.as_bytes(), now)
}

fn command(dev: &mut HelpDevice, body: &str, now: u64) -> Result<Handled, MessageError> {
    dev.on_message(Channel::Command, body.as_bytes(), now)
}

#[test]
fn help_press_is_published_in_the_poll_that_sees_it() {
    let (mut dev, button, led) = help_device(true);
    button.set(false);
    dev.poll(1_000);
    assert!(
        taken(&mut dev, Channel::Event).is_empty(),
        "still debouncing"
    );
    let polled = dev.poll(1_050);
    assert_eq!((polled.events, polled.sent), (1, 1));
    let events = taken(&mut dev, Channel::Event);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["ev"],
        serde_json::json!({"k":"help","act":"press"})
    );
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["oldest"], 1);
    assert_eq!(events[0]["boot"], 3);
    assert_eq!(dev.feedback(), Pattern::Pressed);
    assert!(led.get(), "the LED lights at once");
}

#[test]
fn help_press_while_offline_is_sent_after_reconnect_behind_the_online_status() {
    let (mut dev, button, _led) = help_device(false);
    press(&mut dev, &button, 1_000, 200);
    assert_eq!(dev.outbox().len(), 1);
    assert!(dev.link().published().next().is_none());

    dev.link_mut().connect();
    let polled = dev.poll(60_000);
    assert!(polled.online);
    let all: Vec<(Channel, Value)> = dev
        .link()
        .published()
        .map(|p| (p.channel, json(&p.payload)))
        .collect();
    assert_eq!(all[0].0, Channel::Status);
    assert_eq!(all[0].1["state"], "online");
    assert_eq!(all[0].1["seq"], 1);
    assert_eq!(all[1].0, Channel::Event);
    assert_eq!(all[1].1["ev"]["act"], "press");
    assert_eq!(
        all[1].1["ts"], 1_050,
        "ts is the time of the press, not of the send"
    );
    assert_eq!(
        all[2].0,
        Channel::Heartbeat,
        "fresh health right after a reconnect"
    );
}

#[test]
fn events_are_replayed_on_every_new_session_until_acked() {
    let (mut dev, button, _led) = help_device(true);
    press(&mut dev, &button, 1_000, 100);
    assert_eq!(taken(&mut dev, Channel::Event).len(), 1);
    // Reconnect between two polls: the device still notices the new session.
    dev.link_mut().disconnect();
    dev.link_mut().connect();
    dev.poll(2_000);
    assert_eq!(taken(&mut dev, Channel::Event).len(), 1, "replayed");
    assert_eq!(ack(&mut dev, 1, 2_100), Ok(Handled::Acked { cleared: 1 }));
    dev.link_mut().disconnect();
    dev.link_mut().connect();
    dev.poll(3_000);
    assert!(taken(&mut dev, Channel::Event).is_empty());
    assert_eq!(dev.stats().acked.help, 1);
    assert_eq!(dev.stats().sent.help, 1);
    assert_eq!(dev.stats().resent.help, 1);
}

#[test]
fn seq_starts_at_one_and_has_no_gaps() {
    let (mut dev, button, _led) = help_device(true);
    press(&mut dev, &button, 1_000, 100);
    press(&mut dev, &button, 2_000, 100); // cancel
    ack(&mut dev, 2, 3_000).unwrap();
    press(&mut dev, &button, 20_000, 3_500); // press + long
    let events = taken(&mut dev, Channel::Event);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let acts: Vec<&str> = events
        .iter()
        .map(|e| e["ev"]["act"].as_str().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(acts, vec!["press", "cancel", "press", "long"]);
    assert_eq!(dev.last_seq(), 4);
}

#[test]
fn first_heartbeat_comes_soon_after_boot_and_carries_device_health() {
    let (mut dev, _button, _led) = help_device(false);
    dev.set_battery(Battery {
        pct: Some(87),
        mv: Some(2_950),
    });
    dev.link_mut().set_rssi_dbm(Some(-67));
    // Connected from the start: the heartbeat goes with the online status.
    dev.link_mut().connect();
    dev.poll(2_000);
    let hb = taken(&mut dev, Channel::Heartbeat);
    assert_eq!(hb.len(), 1);
    assert_eq!(hb[0]["battery_pct"], 87);
    assert_eq!(hb[0]["rssi_dbm"], -67);
    assert_eq!(hb[0]["interval_s"], 300);
    assert_eq!(hb[0]["uptime_s"], 2);
    assert_eq!(hb[0]["clk"], "up");
    dev.poll(301_999);
    assert!(taken(&mut dev, Channel::Heartbeat).is_empty());
    dev.poll(302_000);
    assert_eq!(taken(&mut dev, Channel::Heartbeat).len(), 1);
}

#[test]
fn without_a_connection_the_heartbeat_grid_starts_soon_after_boot() {
    let link = RecordingLink::new();
    let dev: Device<RecordingLink, Wire, Wire, NoGas> =
        Device::new(settings("h0001-door"), link, 0);
    assert_eq!(dev.next_deadline(0), 5_000);
}

#[test]
fn heartbeat_reports_outbox_depth_and_dropped_count() {
    let link = RecordingLink::new();
    let mut dev: Device<RecordingLink, Wire, Wire, NoGas, 2> =
        Device::new(settings("h0001-pir-bedroom"), link, 0);
    dev.push_event(EventBody::Motion, 10);
    dev.push_event(EventBody::Motion, 20);
    dev.push_event(EventBody::Motion, 30);
    let hb = dev.heartbeat(40);
    assert_eq!((hb.outbox, hb.dropped, hb.seq), (2, 1, 3));
    assert_eq!(dev.stats().dropped.motion, 1);
}

#[test]
fn heartbeats_are_skipped_while_offline_not_saved_up() {
    let (mut dev, _button, _led) = help_device(false);
    for t in (0..=1_000_000).step_by(10_000) {
        dev.poll(t);
    }
    dev.link_mut().connect();
    dev.poll(1_000_001);
    assert_eq!(taken(&mut dev, Channel::Heartbeat).len(), 1);
}

#[test]
fn siren_sounds_without_network() {
    let probe = Probe::default();
    let siren = Wire::default();
    let mut dev: Device<RecordingLink, Wire, Wire, Probe> =
        Device::new(settings("h0001-gas"), RecordingLink::new(), 0)
            .with_gas(probe.clone(), siren.clone());
    probe.0.set(40);
    dev.poll(0);
    assert!(!siren.get());
    probe.0.set(8_000);
    dev.poll(1_000);
    assert!(siren.get(), "siren on in the same poll, with no link");
    assert!(dev.gas_alarm());
    probe.0.set(3_000);
    dev.poll(2_000);
    assert!(siren.get(), "hysteresis: still above the clear threshold");
    probe.0.set(100);
    dev.poll(3_000);
    assert!(!siren.get());
    let held: Vec<EventBody> = dev.outbox().iter().map(|e| e.ev).collect();
    assert_eq!(
        held,
        vec![
            EventBody::Gas {
                alarm: true,
                ppm: 8_000
            },
            EventBody::Gas {
                alarm: false,
                ppm: 100
            }
        ]
    );
}

#[test]
fn alert_feedback_follows_received_then_acknowledged() {
    let (mut dev, button, led) = help_device(true);
    press(&mut dev, &button, 1_000, 100);
    assert_eq!(dev.feedback(), Pattern::Pressed);
    let r = command(
        &mut dev,
        r#"{"v":1,"id":7,"cmd":"alert_received","cause":"help"}"#,
        1_500,
    );
    assert_eq!(r, Ok(Handled::Applied(CommandKind::AlertReceived)));
    assert_eq!(dev.feedback(), Pattern::Received);
    let r = command(
        &mut dev,
        r#"{"v":1,"id":8,"cmd":"alert_acknowledged","cause":"help"}"#,
        2_000,
    );
    assert_eq!(r, Ok(Handled::Applied(CommandKind::AlertAcknowledged)));
    assert_eq!(dev.feedback(), Pattern::Acknowledged);
    assert!(led.get());
    // A late duplicate of "received" does not undo "acknowledged".
    let r = command(
        &mut dev,
        r#"{"v":1,"id":9,"cmd":"alert_received","cause":"help"}"#,
        2_500,
    );
    assert!(r.is_ok());
    assert_eq!(dev.feedback(), Pattern::Acknowledged);
    dev.poll(32_000);
    assert_eq!(dev.feedback(), Pattern::Off);
    assert!(!led.get());
}

#[test]
fn repeated_command_ids_are_ignored() {
    let (mut dev, _button, _led) = help_device(true);
    let cmd = r#"{"v":1,"id":42,"cmd":"config","config":{"help_cancel_s":20}}"#;
    assert_eq!(
        command(&mut dev, cmd, 0),
        Ok(Handled::Applied(CommandKind::Config))
    );
    assert_eq!(command(&mut dev, cmd, 10), Ok(Handled::Repeated { id: 42 }));
    assert_eq!(dev.stats().commands, 1);
}

#[test]
fn an_applied_command_is_acknowledged_by_the_next_heartbeat_sent_at_once() {
    let (mut dev, _button, _led) = help_device(true);
    assert_eq!(dev.heartbeat(0).cmd, Some(0), "0 before any command");
    let cmd = r#"{"v":1,"id":77,"cmd":"alert_received","cause":"help"}"#;
    assert!(command(&mut dev, cmd, 1_000).is_ok());
    dev.poll(1_000);
    let hb = taken(&mut dev, Channel::Heartbeat);
    assert_eq!(hb.len(), 1, "a heartbeat right after the command");
    assert_eq!(hb[0]["cmd"], 77);
    // A redelivery (the acknowledgement was lost) is acknowledged again.
    assert_eq!(
        command(&mut dev, cmd, 2_000),
        Ok(Handled::Repeated { id: 77 })
    );
    dev.poll(2_000);
    assert_eq!(taken(&mut dev, Channel::Heartbeat)[0]["cmd"], 77);
    // Later heartbeats keep carrying the last id.
    dev.poll(400_000);
    assert_eq!(taken(&mut dev, Channel::Heartbeat)[0]["cmd"], 77);
}

#[test]
fn config_changes_heartbeat_cancel_window_and_gas_thresholds() {
    let (mut dev, button, _led) = help_device(true);
    let cmd = r#"{"v":1,"id":1,"cmd":"config","config":{"heartbeat_s":60,"help_cancel_s":3,"fall_cancel_s":45,"gas_alarm_ppm":4000,"gas_clear_ppm":1000}}"#;
    assert!(command(&mut dev, cmd, 0).is_ok());
    let s = dev.settings();
    assert_eq!(s.heartbeat_s, 60);
    assert_eq!(s.button.cancel_s, 3);
    assert_eq!(s.fall_cancel_s, 45);
    assert_eq!((s.gas.alarm_ppm(), s.gas.clear_ppm()), (4_000, 1_000));
    // 3 s window: a second press 4 s later is a new press.
    press(&mut dev, &button, 1_000, 100);
    press(&mut dev, &button, 5_000, 100);
    let acts: Vec<String> = taken(&mut dev, Channel::Event)
        .iter()
        .map(|e| e["ev"]["act"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(acts, vec!["press", "press"]);
}

#[test]
fn gas_config_leaving_clear_above_alarm_is_rejected_whole() {
    let (mut dev, _button, _led) = help_device(true);
    let cmd = r#"{"v":1,"id":1,"cmd":"config","config":{"heartbeat_s":60,"gas_clear_ppm":6000}}"#;
    assert!(matches!(
        command(&mut dev, cmd, 0),
        Err(MessageError::BadConfig(_))
    ));
    assert_eq!(dev.settings().heartbeat_s, 300, "nothing applied");
    assert_eq!(dev.stats().rejected, 1);
}

#[test]
fn malformed_and_misdirected_messages_are_rejected_and_counted() {
    let (mut dev, _button, _led) = help_device(true);
    assert!(matches!(
        dev.on_message(Channel::Ack, b"{nope", 0),
        Err(MessageError::Wire(_))
    ));
    assert!(matches!(
        dev.on_message(Channel::Ack, br#"{"v":2,"boot":3,"upto":1}"#, 0),
        Err(MessageError::Wire(_))
    ));
    assert_eq!(
        dev.on_message(Channel::Event, b"{}", 0),
        Err(MessageError::NotDownlink(Channel::Event))
    );
    assert_eq!(dev.stats().rejected, 3);
}

#[test]
fn install_test_confirms_each_input_and_ends_after_its_duration() {
    let (mut dev, button, led) = help_device(true);
    let on = r#"{"v":1,"id":5,"cmd":"install_test","on":true,"duration_s":60}"#;
    assert!(command(&mut dev, on, 0).is_ok());
    assert!(dev.install_test_active(0));
    assert_eq!(dev.feedback(), Pattern::Confirm);
    dev.poll(2_000);
    assert_eq!(dev.feedback(), Pattern::Off);
    press(&mut dev, &button, 10_000, 100);
    assert_eq!(
        dev.feedback(),
        Pattern::Confirm,
        "confirmation instead of 'pressed'"
    );
    assert!(led.get());
    assert_eq!(
        taken(&mut dev, Channel::Event).len(),
        1,
        "the event is still sent"
    );
    assert_eq!(
        dev.next_deadline(11_000),
        11_050,
        "LED off after one second"
    );
    dev.poll(60_000);
    assert!(!dev.install_test_active(60_000));
    press(&mut dev, &button, 70_000, 100);
    assert_eq!(dev.feedback(), Pattern::Pressed);
}

#[test]
fn a_press_during_a_check_in_answers_it_instead_of_calling_for_help() {
    let (mut dev, button, led) = help_device(true);
    let ask = r#"{"v":1,"id":9,"cmd":"check_in","on":true,"duration_s":120}"#;
    assert_eq!(
        command(&mut dev, ask, 0),
        Ok(Handled::Applied(CommandKind::CheckIn))
    );
    assert!(dev.check_in_active(0));
    assert_eq!(dev.feedback(), Pattern::CheckIn);
    assert!(led.get(), "the prompt starts with a pulse");
    press(&mut dev, &button, 30_000, 100);
    let sent = taken(&mut dev, Channel::Event);
    let acts: Vec<&str> = sent
        .iter()
        .map(|e| e["ev"]["act"].as_str().unwrap())
        .collect();
    assert_eq!(acts, ["ok"], "the answer, not a help press");
    assert!(!dev.check_in_active(30_100), "answered: no longer asking");
    assert_eq!(dev.feedback(), Pattern::Confirm);
    assert_eq!(dev.stats().check_ins, 1);
    assert_eq!(dev.stats().check_ins_answered, 1);
    ack(&mut dev, 1, 31_000).unwrap();
    // The next press, after the cancel window of the first, is a call for help again.
    press(&mut dev, &button, 60_000, 100);
    let acts: Vec<String> = taken(&mut dev, Channel::Event)
        .iter()
        .map(|e| e["ev"]["act"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(acts, ["press"]);
    assert_eq!(dev.feedback(), Pattern::Pressed);
}

#[test]
fn an_unanswered_check_in_ends_by_itself_and_a_long_press_still_calls_for_help() {
    let (mut dev, button, led) = help_device(true);
    command(
        &mut dev,
        r#"{"v":1,"id":3,"cmd":"check_in","on":true,"duration_s":60}"#,
        0,
    )
    .unwrap();
    assert!(
        dev.next_deadline(1) <= 60_000,
        "the device wakes up to end it"
    );
    dev.poll(60_000);
    assert!(!dev.check_in_active(60_000));
    assert_eq!(dev.feedback(), Pattern::Off);
    assert!(!led.get());
    assert_eq!(dev.stats().check_ins_answered, 0);

    command(
        &mut dev,
        r#"{"v":1,"id":4,"cmd":"check_in","on":true}"#,
        100_000,
    )
    .unwrap();
    assert!(
        dev.check_in_active(399_999) && !dev.check_in_active(400_000),
        "five minutes by default"
    );
    // Held for the long-press time: the first edge answers, the hold calls for help.
    press(&mut dev, &button, 110_000, 3_500);
    let acts: Vec<String> = taken(&mut dev, Channel::Event)
        .iter()
        .map(|e| e["ev"]["act"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(acts, ["ok", "long"]);
    assert_eq!(dev.feedback(), Pattern::Pressed);
}

#[test]
fn a_check_in_switched_off_stops_its_prompt() {
    let (mut dev, _button, led) = help_device(true);
    command(&mut dev, r#"{"v":1,"id":1,"cmd":"check_in","on":true}"#, 0).unwrap();
    command(
        &mut dev,
        r#"{"v":1,"id":2,"cmd":"check_in","on":false}"#,
        5_000,
    )
    .unwrap();
    assert!(!dev.check_in_active(5_000));
    assert_eq!(dev.feedback(), Pattern::Off);
    assert!(!led.get());
    assert_eq!(
        command(&mut dev, r#"{"v":1,"id":3,"cmd":"check_in"}"#, 6_000),
        Err(MessageError::Wire(
            anxin_firmware::wire::WireError::OutOfRange { field: "on" }
        )),
        "a check-in must say on or off"
    );
}

#[test]
fn install_test_can_be_switched_off() {
    let (mut dev, _button, _led) = help_device(true);
    command(
        &mut dev,
        r#"{"v":1,"id":1,"cmd":"install_test","on":true}"#,
        0,
    )
    .unwrap();
    assert!(
        dev.install_test_active(599_999),
        "default duration from settings"
    );
    command(
        &mut dev,
        r#"{"v":1,"id":2,"cmd":"install_test","on":false}"#,
        1_000,
    )
    .unwrap();
    assert!(!dev.install_test_active(1_001));
}

#[test]
fn events_carry_unix_time_once_the_clock_is_set() {
    let (mut dev, button, _led) = help_device(true);
    press(&mut dev, &button, 1_000, 100);
    ack(&mut dev, 1, 1_500).unwrap();
    dev.set_unix_time(1_764_000_000_000, 2_000);
    press(&mut dev, &button, 30_000, 100);
    let events = taken(&mut dev, Channel::Event);
    assert_eq!(events[0]["clk"], "up");
    assert_eq!(events[0]["ts"], 1_050);
    assert_eq!(events[1]["clk"], "unix");
    assert_eq!(events[1]["ts"], 1_764_000_000_000u64 + 28_050);
}

#[test]
fn fall_detector_hook_takes_the_next_seq_and_shows_feedback() {
    let (mut dev, _button, _led) = help_device(true);
    let fall = EventBody::Fall {
        act: FallAction::Detected,
        peak_mg: Some(3_200),
    };
    assert_eq!(dev.push_event(fall, 500), 1);
    assert_eq!(dev.feedback(), Pattern::Pressed);
    dev.poll(500);
    let events = taken(&mut dev, Channel::Event);
    assert_eq!(events[0]["ev"]["k"], "fall");
    assert_eq!(events[0]["ev"]["peak_mg"], 3_200);
}

#[test]
fn unacked_event_is_resent_by_the_device_after_the_retry_delay() {
    let (mut dev, button, _led) = help_device(true);
    press(&mut dev, &button, 1_000, 100);
    assert_eq!(taken(&mut dev, Channel::Event).len(), 1);
    assert_eq!(dev.outbox().next_due_ms(), Some(11_050));
    dev.poll(11_049);
    assert!(taken(&mut dev, Channel::Event).is_empty());
    dev.poll(11_050);
    assert_eq!(taken(&mut dev, Channel::Event).len(), 1);
}

#[test]
fn busy_link_keeps_events_due() {
    let (mut dev, button, _led) = help_device(true);
    dev.link_mut().set_busy(true);
    press(&mut dev, &button, 1_000, 100);
    assert_eq!(
        dev.next_deadline(1_200),
        1_200,
        "due now: retry at the next poll"
    );
    dev.link_mut().set_busy(false);
    dev.poll(1_300);
    assert_eq!(taken(&mut dev, Channel::Event).len(), 1);
}

#[test]
fn clean_shutdown_publishes_offline_status() {
    let (mut dev, _button, _led) = help_device(true);
    dev.shutdown(1_000).unwrap();
    let status = taken(&mut dev, Channel::Status);
    assert_eq!(status[0]["state"], "offline");
    assert!(status[0].get("fw").is_none());
}
