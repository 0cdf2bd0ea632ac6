//! The "I'm OK" window and when the fall event leaves the pendant ([`FallMonitor`]).

use anxin_firmware::driver::Acceleration;
use anxin_firmware::fall::{AlarmConfig, FallConfig, FallMonitor, SendPolicy};
use anxin_firmware::wire::{EventBody, FallAction};

const P: u64 = 50;

/// Standing 3 s, a 0.4 s drop, an impact, lying still for `lie_s` seconds.
fn fall_then_lie(lie_s: u64) -> Vec<Option<Acceleration>> {
    let mut v = Vec::new();
    v.extend((0..60).map(|_| Some(Acceleration::new(0, 1000, 0))));
    v.extend((0..8).map(|_| Some(Acceleration::new(0, 200, 0))));
    v.push(Some(Acceleration::new(600, 2400, 2200)));
    v.extend((0..lie_s * 1000 / P).map(|_| Some(Acceleration::new(0, 30, 1000))));
    v
}

fn monitor(policy: SendPolicy) -> FallMonitor {
    FallMonitor::new(
        &FallConfig::PENDANT,
        AlarmConfig {
            cancel_window_ms: 30_000,
            policy,
        },
    )
    .expect("config")
}

/// Feeds the trace; at `press_at_ms` (if any) the wearer presses "I'm OK".
fn play(
    m: &mut FallMonitor,
    trace: &[Option<Acceleration>],
    press_at_ms: Option<u64>,
) -> Vec<(u64, EventBody)> {
    let mut out = Vec::new();
    for (i, s) in trace.iter().enumerate() {
        let now = i as u64 * P;
        if press_at_ms == Some(now) {
            assert!(m.alarming(), "the press must fall inside the window");
            out.extend(m.on_im_ok(now).map(|e| (now, e)));
        }
        out.extend(m.on_sample(*s, now).map(|e| (now, e)));
    }
    out
}

const DETECTED: EventBody = EventBody::Fall {
    act: FallAction::Detected,
    peak_mg: Some(3310),
};
const CANCEL: EventBody = EventBody::Fall {
    act: FallAction::Cancel,
    peak_mg: None,
};

/// Decision time of `fall_then_lie`: impact at 3.4 s + 1 s settle + 2 s observe − 1 period.
const DECIDED_MS: u64 = 3400 + 3000 - P;

#[test]
fn a_fall_is_sent_at_once_and_the_pendant_alarms_for_the_window() {
    let mut m = monitor(SendPolicy::AtDetection);
    let ev = play(&mut m, &fall_then_lie(10), None);
    assert_eq!(ev, vec![(DECIDED_MS, DETECTED)]);
    assert!(m.alarming());
    assert_eq!(m.poll(DECIDED_MS + 30_000), None, "nothing more to send");
    assert!(!m.alarming());
}

#[test]
fn a_fall_followed_by_an_im_ok_press_sends_detected_then_cancel() {
    let mut m = monitor(SendPolicy::AtDetection);
    let press = DECIDED_MS + 5_000;
    let ev = play(&mut m, &fall_then_lie(10), Some(press));
    assert_eq!(ev, vec![(DECIDED_MS, DETECTED), (press, CANCEL)]);
    assert!(!m.alarming());
}

#[test]
fn a_fall_followed_by_an_im_ok_press_sends_nothing_when_holding_for_the_window() {
    let mut m = monitor(SendPolicy::AfterWindow);
    let ev = play(&mut m, &fall_then_lie(40), Some(DECIDED_MS + 5_000));
    assert_eq!(ev, vec![]);
    assert!(!m.alarming());
}

#[test]
fn holding_for_the_window_sends_detected_when_nobody_presses() {
    let mut m = monitor(SendPolicy::AfterWindow);
    let ev = play(&mut m, &fall_then_lie(40), None);
    assert_eq!(ev, vec![(DECIDED_MS + 30_000, DETECTED)]);
}

#[test]
fn a_press_after_the_window_cancels_nothing() {
    let mut m = monitor(SendPolicy::AtDetection);
    let ev = play(&mut m, &fall_then_lie(10), None);
    assert_eq!(ev.len(), 1);
    assert_eq!(m.on_im_ok(DECIDED_MS + 30_000), None);
    assert_eq!(m.on_im_ok(DECIDED_MS + 60_000), None);
}

#[test]
fn the_window_follows_the_fall_cancel_s_setting() {
    let mut m = monitor(SendPolicy::AfterWindow);
    m.set_cancel_window_ms(10_000);
    let ev = play(&mut m, &fall_then_lie(20), None);
    assert_eq!(ev, vec![(DECIDED_MS + 10_000, DETECTED)]);
}

#[cfg(feature = "std")]
#[test]
fn the_fall_event_encodes_as_protocol_v1() {
    use anxin_firmware::wire::{self, BootEpoch, Clock, Event};
    let mut m = monitor(SendPolicy::AtDetection);
    let ev = play(&mut m, &fall_then_lie(10), None);
    let (ts, body) = ev[0];
    let boot: BootEpoch = 1;
    let event = Event::new(boot, 1, 1, ts, Clock::Up, body);
    let mut buf = [0u8; wire::MAX_PAYLOAD];
    let n = wire::encode(&event, &mut buf).expect("encode");
    assert_eq!(
        core::str::from_utf8(&buf[..n]).expect("utf-8"),
        r#"{"v":1,"boot":1,"seq":1,"oldest":1,"ts":6350,"clk":"up","ev":{"k":"fall","act":"detected","peak_mg":3310}}"#
    );
    assert_eq!(wire::decode_event(&buf[..n]), Ok(event));
}

const HELP_PRESS: EventBody = EventBody::Help {
    act: anxin_firmware::wire::HelpAction::Press,
};
const HELP_CANCEL: EventBody = EventBody::Help {
    act: anxin_firmware::wire::HelpAction::Cancel,
};
const HELP_LONG: EventBody = EventBody::Help {
    act: anxin_firmware::wire::HelpAction::Long,
};

#[test]
fn a_button_press_during_the_window_is_im_ok_not_a_call_for_help() {
    let mut m = monitor(SendPolicy::AtDetection);
    play(&mut m, &fall_then_lie(10), None);
    let t = DECIDED_MS + 4_000;
    assert_eq!(m.route_gesture(HELP_PRESS, t), Some(CANCEL));
    // the help button's own "second press cancels" of that press is not sent
    assert_eq!(m.route_gesture(HELP_CANCEL, t + 1_000), None);
    // later presses are help presses again, with their cancels
    assert_eq!(m.route_gesture(HELP_PRESS, t + 60_000), Some(HELP_PRESS));
    assert_eq!(m.route_gesture(HELP_CANCEL, t + 61_000), Some(HELP_CANCEL));
}

#[test]
fn a_long_press_during_the_window_still_calls_for_help() {
    let mut m = monitor(SendPolicy::AtDetection);
    play(&mut m, &fall_then_lie(10), None);
    assert_eq!(
        m.route_gesture(HELP_LONG, DECIDED_MS + 1_000),
        Some(HELP_LONG)
    );
    assert!(m.alarming(), "the fall stays raised");
}

#[test]
fn a_press_without_a_fall_is_a_help_press() {
    let mut m = monitor(SendPolicy::AtDetection);
    assert_eq!(m.route_gesture(HELP_PRESS, 1_000), Some(HELP_PRESS));
}
