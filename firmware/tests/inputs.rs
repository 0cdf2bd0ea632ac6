//! Inputs against mocked pins: every sample is one expected pin read.

use embedded_hal_mock::eh1::MockError;
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

use anxin_firmware::input::gas::BadThresholds;
use anxin_firmware::input::{
    ButtonConfig, Door, DoorConfig, GasAlarm, GasConfig, HelpButton, Pir, PirConfig, Tamper,
    TamperConfig,
};
use anxin_firmware::wire::{EventBody, HelpAction};

use State::{High, Low};

fn reads(levels: &[State]) -> Mock {
    let t: Vec<Transaction> = levels.iter().map(|&l| Transaction::get(l)).collect();
    Mock::new(&t)
}

/// Polls `input` at each time and collects `(time, event)`.
fn run<F: FnMut(u64) -> Option<EventBody>>(times: &[u64], mut poll: F) -> Vec<(u64, EventBody)> {
    times
        .iter()
        .filter_map(|&t| poll(t).map(|e| (t, e)))
        .collect()
}

const OPEN: EventBody = EventBody::Door { open: true };
const CLOSED: EventBody = EventBody::Door { open: false };
const PRESS: EventBody = EventBody::Help {
    act: HelpAction::Press,
};
const CANCEL: EventBody = EventBody::Help {
    act: HelpAction::Cancel,
};
const LONG: EventBody = EventBody::Help {
    act: HelpAction::Long,
};

// --- door -------------------------------------------------------------------------------

#[test]
fn door_state_at_start_up_raises_no_event() {
    let pin = reads(&[High, High, High]);
    let mut door = Door::new(pin.clone(), DoorConfig::default());
    assert!(run(&[0, 100, 200], |t| door.poll(t)).is_empty());
    assert_eq!(door.is_open(), Some(true));
    pin.clone().done();
}

#[test]
fn door_opening_is_reported_once_the_debounce_time_has_passed() {
    let pin = reads(&[Low, High, High, High, High]);
    let mut door = Door::new(pin.clone(), DoorConfig::default());
    let events = run(&[0, 100, 149, 150, 500], |t| door.poll(t));
    assert_eq!(events, vec![(150, OPEN)]);
    pin.clone().done();
}

#[test]
fn door_bounce_shorter_than_the_debounce_time_is_ignored() {
    let pin = reads(&[Low, High, Low, High, Low, Low]);
    let mut door = Door::new(pin.clone(), DoorConfig::default());
    assert!(run(&[0, 10, 20, 30, 40, 200], |t| door.poll(t)).is_empty());
    assert_eq!(door.is_open(), Some(false));
    pin.clone().done();
}

#[test]
fn door_open_then_closed_gives_two_events() {
    let pin = reads(&[Low, High, High, Low, Low]);
    let mut door = Door::new(pin.clone(), DoorConfig::default());
    let events = run(&[0, 100, 160, 5_000, 5_050], |t| door.poll(t));
    assert_eq!(events, vec![(160, OPEN), (5_050, CLOSED)]);
    pin.clone().done();
}

#[test]
fn door_polarity_is_configurable() {
    let pin = reads(&[High, Low, Low]);
    let config = DoorConfig {
        open_when_high: false,
        ..DoorConfig::default()
    };
    let mut door = Door::new(pin.clone(), config);
    assert_eq!(run(&[0, 10, 60], |t| door.poll(t)), vec![(60, OPEN)]);
    pin.clone().done();
}

#[test]
fn failed_pin_reads_are_counted_and_skipped() {
    let err = MockError::Io(std::io::ErrorKind::Other);
    let pin = Mock::new(&[
        Transaction::get(Low),
        Transaction::get(High),
        Transaction::get(High).with_error(err),
        Transaction::get(High),
    ]);
    let mut door = Door::new(pin.clone(), DoorConfig::default());
    let events = run(&[0, 100, 130, 160], |t| door.poll(t));
    assert_eq!(events, vec![(160, OPEN)]);
    assert_eq!(door.read_errors(), 1);
    pin.clone().done();
}

#[test]
fn tamper_switch_reports_enclosure_opening() {
    let pin = reads(&[Low, High, High]);
    let mut tamper = Tamper::new(pin.clone(), TamperConfig::default());
    let events = run(&[0, 1_000, 1_100], |t| tamper.poll(t));
    assert_eq!(events, vec![(1_100, EventBody::Tamper { open: true })]);
    pin.clone().done();
}

// --- PIR --------------------------------------------------------------------------------

#[test]
fn first_motion_is_reported_at_once() {
    let pin = reads(&[Low, High]);
    let mut pir = Pir::new(pin.clone(), PirConfig::default());
    assert_eq!(
        run(&[0, 1_000], |t| pir.poll(t)),
        vec![(1_000, EventBody::Motion)]
    );
    pin.clone().done();
}

#[test]
fn motion_inside_the_holdoff_raises_nothing() {
    let pin = reads(&[Low, High, Low, High, Low]);
    let mut pir = Pir::new(pin.clone(), PirConfig::default());
    let events = run(&[0, 1_000, 3_000, 30_999, 32_000], |t| pir.poll(t));
    assert_eq!(events, vec![(1_000, EventBody::Motion)]);
    pin.clone().done();
}

#[test]
fn motion_at_the_end_of_the_holdoff_is_reported_again() {
    let pin = reads(&[High, Low, High]);
    let mut pir = Pir::new(pin.clone(), PirConfig::default());
    let events = run(&[0, 2_000, 30_000], |t| pir.poll(t));
    assert_eq!(
        events,
        vec![(0, EventBody::Motion), (30_000, EventBody::Motion)]
    );
    pin.clone().done();
}

#[test]
fn continuous_motion_gives_one_event_per_holdoff() {
    let pin = reads(&[High; 7]);
    let mut pir = Pir::new(pin.clone(), PirConfig::default());
    let events = run(&[0, 10_000, 29_999, 30_000, 45_000, 59_999, 60_000], |t| {
        pir.poll(t)
    });
    let times: Vec<u64> = events.iter().map(|e| e.0).collect();
    assert_eq!(times, vec![0, 30_000, 60_000]);
    pin.clone().done();
}

#[test]
fn pir_deadline_is_the_holdoff_end_while_motion_is_seen() {
    let pin = reads(&[High, Low]);
    let mut pir = Pir::new(pin.clone(), PirConfig::default());
    pir.poll(5_000);
    assert_eq!(pir.next_deadline(), Some(35_000));
    pir.poll(6_000);
    assert_eq!(pir.next_deadline(), None, "no motion: nothing to wait for");
    pin.clone().done();
}

// --- help button (pressed = low) ---------------------------------------------------------

fn button(levels: &[State]) -> (Mock, HelpButton<Mock>) {
    let pin = reads(levels);
    (pin.clone(), HelpButton::new(pin, ButtonConfig::default()))
}

fn gestures(b: &mut HelpButton<Mock>, times: &[u64]) -> Vec<(u64, EventBody)> {
    times
        .iter()
        .flat_map(|&t| b.poll(t).into_iter().map(move |e| (t, e)))
        .collect()
}

#[test]
fn press_is_reported_at_once_after_debounce() {
    let (pin, mut b) = button(&[High, Low, Low, High, High]);
    let events = gestures(&mut b, &[0, 1_000, 1_050, 1_300, 1_350]);
    assert_eq!(events, vec![(1_050, PRESS)]);
    pin.clone().done();
}

#[test]
fn bouncing_press_gives_one_press() {
    let (pin, mut b) = button(&[High, Low, High, Low, Low, Low, High, Low, High, High]);
    let events = gestures(
        &mut b,
        &[
            0, 1_000, 1_010, 1_020, 1_060, 1_070, 1_200, 1_210, 1_220, 1_300,
        ],
    );
    assert_eq!(events, vec![(1_070, PRESS)]);
    pin.clone().done();
}

#[test]
fn second_press_inside_the_cancel_window_cancels() {
    let (pin, mut b) = button(&[High, Low, Low, High, High, Low, Low, High, High]);
    // First press starts at 1_000; second starts at 10_999 (window 10 s).
    let events = gestures(
        &mut b,
        &[
            0, 1_000, 1_050, 1_200, 1_250, 10_999, 11_049, 11_300, 11_350,
        ],
    );
    assert_eq!(events, vec![(1_050, PRESS), (11_049, CANCEL)]);
    pin.clone().done();
}

#[test]
fn second_press_at_the_end_of_the_cancel_window_is_a_new_press() {
    let (pin, mut b) = button(&[High, Low, Low, High, High, Low, Low]);
    let events = gestures(&mut b, &[0, 1_000, 1_050, 1_200, 1_250, 11_000, 11_050]);
    assert_eq!(events, vec![(1_050, PRESS), (11_050, PRESS)]);
    pin.clone().done();
}

#[test]
fn press_after_a_cancel_is_a_new_press() {
    let (pin, mut b) = button(&[High, Low, Low, High, High, Low, Low, High, High, Low, Low]);
    let events = gestures(
        &mut b,
        &[
            0, 1_000, 1_050, 1_200, 1_250, 2_000, 2_050, 2_200, 2_250, 3_000, 3_050,
        ],
    );
    assert_eq!(
        events,
        vec![(1_050, PRESS), (2_050, CANCEL), (3_050, PRESS)]
    );
    pin.clone().done();
}

#[test]
fn long_press_reports_press_then_long_once() {
    let (pin, mut b) = button(&[High, Low, Low, Low, Low, Low, High, High]);
    let events = gestures(
        &mut b,
        &[0, 1_000, 1_050, 3_999, 4_000, 9_000, 9_100, 9_150],
    );
    assert_eq!(events, vec![(1_050, PRESS), (4_000, LONG)]);
    pin.clone().done();
}

#[test]
fn long_press_closes_the_cancel_window() {
    let (pin, mut b) = button(&[High, Low, Low, Low, High, High, Low, Low]);
    let events = gestures(
        &mut b,
        &[0, 1_000, 1_050, 4_000, 4_100, 4_150, 5_000, 5_050],
    );
    assert_eq!(events, vec![(1_050, PRESS), (4_000, LONG), (5_050, PRESS)]);
    pin.clone().done();
}

#[test]
fn sparse_polls_can_report_press_and_long_together() {
    let (pin, mut b) = button(&[High, Low, Low]);
    let events = gestures(&mut b, &[0, 1_000, 5_000]);
    assert_eq!(events, vec![(5_000, PRESS), (5_000, LONG)]);
    pin.clone().done();
}

#[test]
fn button_held_at_start_up_raises_nothing() {
    let (pin, mut b) = button(&[Low, Low, Low, High, High]);
    let events = gestures(&mut b, &[0, 1_000, 5_000, 6_000, 6_100]);
    assert!(events.is_empty());
    pin.clone().done();
}

#[test]
fn shorter_cancel_window_from_config_applies() {
    let (pin, mut b) = button(&[High, Low, Low, High, High, Low, Low]);
    b.set_cancel_s(2);
    let events = gestures(&mut b, &[0, 1_000, 1_050, 1_200, 1_250, 3_000, 3_050]);
    assert_eq!(events, vec![(1_050, PRESS), (3_050, PRESS)]);
    assert_eq!(b.cancel_s(), 2);
    pin.clone().done();
}

// --- gas --------------------------------------------------------------------------------

fn siren(sets: &[State]) -> Mock {
    let t: Vec<Transaction> = sets.iter().map(|&l| Transaction::set(l)).collect();
    Mock::new(&t)
}

#[test]
fn reading_at_the_alarm_threshold_sounds_the_siren_at_once() {
    let pin = siren(&[Low, High]);
    let mut gas = GasAlarm::new(pin.clone(), GasConfig::default());
    assert_eq!(gas.update(100, 0), None);
    assert_eq!(
        gas.update(5_000, 1_000),
        Some(EventBody::Gas {
            alarm: true,
            ppm: 5_000
        })
    );
    assert!(gas.is_alarm());
    pin.clone().done();
}

#[test]
fn readings_between_the_thresholds_keep_the_alarm_state() {
    let pin = siren(&[Low, High, Low]);
    let mut gas = GasAlarm::new(pin.clone(), GasConfig::default());
    gas.update(4_999, 0);
    assert_eq!(gas.update(2_600, 1), None, "below alarm: stays off");
    assert!(gas.update(7_000, 2).is_some());
    assert_eq!(gas.update(4_000, 3), None, "above clear: stays on");
    assert_eq!(gas.update(2_500, 4), None, "at clear: stays on");
    assert_eq!(
        gas.update(2_499, 5),
        Some(EventBody::Gas {
            alarm: false,
            ppm: 2_499
        })
    );
    assert!(!gas.is_alarm());
    pin.clone().done();
}

#[test]
fn failed_siren_write_is_retried_on_the_next_reading() {
    let err = MockError::Io(std::io::ErrorKind::Other);
    let pin = Mock::new(&[
        Transaction::set(High).with_error(err),
        Transaction::set(High),
    ]);
    let mut gas = GasAlarm::new(pin.clone(), GasConfig::default());
    assert!(gas.update(9_000, 0).is_some());
    assert_eq!(gas.update(9_100, 1_000), None);
    assert_eq!(gas.write_errors(), 1);
    pin.clone().done();
}

#[test]
fn readings_are_capped_at_the_protocol_maximum() {
    let pin = siren(&[High]);
    let mut gas = GasAlarm::new(pin.clone(), GasConfig::default());
    assert_eq!(
        gas.update(u32::MAX, 0),
        Some(EventBody::Gas {
            alarm: true,
            ppm: 1_000_000
        })
    );
    pin.clone().done();
}

#[test]
fn clear_threshold_must_be_below_alarm_threshold() {
    assert_eq!(
        GasConfig::new(1_000, 1_000),
        Err(BadThresholds {
            alarm_ppm: 1_000,
            clear_ppm: 1_000
        })
    );
    assert!(GasConfig::new(1_000, 999).is_ok());
}
