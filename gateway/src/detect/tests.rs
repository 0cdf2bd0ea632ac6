//! Every rule and its edges, on the engine with explicit time (UTC wall clock; day 0 is
//! Monday 2026-01-05).

use anxin_firmware::wire::{FallAction, HelpAction};

use super::HouseholdMode;
use super::activity::{ActivityKind, Input, RoomClass};
use super::engine::Engine;
use super::localtime::{LocalTime, parse_hhmm};
use super::params::DetectConfig;
use crate::signal::{AlertKind, Severity, Signal, SignalAction};

const D0: i64 = 20_458;
const MIN: i64 = 60_000;
const H: &str = "h1";

fn t(day: i64, hhmm: &str) -> i64 {
    (D0 + day) * 86_400_000 + i64::from(parse_hhmm(hhmm).unwrap()) * MIN
}

fn engine_with(cfg: DetectConfig) -> Engine {
    let mut e = Engine::new(cfg.compile().unwrap(), LocalTime::utc());
    e.add_device(H, "h1-door", true, false, RoomClass::Entrance);
    e.add_device(H, "h1-pir-living", true, false, RoomClass::Living);
    e.add_device(H, "h1-pir-bedroom", true, false, RoomClass::Bedroom);
    e.add_device(H, "h1-pir-bath", true, false, RoomClass::Bathroom);
    e.add_device(H, "h1-help", false, false, RoomClass::Other);
    e
}

fn engine() -> Engine {
    engine_with(DetectConfig::default())
}

/// An activity as a replayed log reports it (no device health involved).
fn act(e: &mut Engine, at: i64, _dev: &str, room: RoomClass, kind: ActivityKind) -> Vec<Signal> {
    e.advance(at);
    e.observe(H, None, at, &[Input::Activity { room, kind }]);
    e.take_signals()
}

/// An activity from a registered device (its health is tracked too).
fn act_from(
    e: &mut Engine,
    at: i64,
    dev: &str,
    room: RoomClass,
    kind: ActivityKind,
) -> Vec<Signal> {
    e.advance(at);
    e.observe(H, Some(dev), at, &[Input::Activity { room, kind }]);
    e.take_signals()
}

fn motion(e: &mut Engine, at: i64) -> Vec<Signal> {
    act(
        e,
        at,
        "h1-pir-living",
        RoomClass::Living,
        ActivityKind::Motion,
    )
}

fn door(e: &mut Engine, at: i64) -> Vec<Signal> {
    act(
        e,
        at,
        "h1-door",
        RoomClass::Entrance,
        ActivityKind::FrontDoor,
    )
}

fn run_to(e: &mut Engine, at: i64) -> Vec<Signal> {
    e.advance(at);
    e.take_signals()
}

fn raised(s: &[Signal], kind: AlertKind) -> Vec<&Signal> {
    s.iter()
        .filter(|x| x.kind == kind && x.action == SignalAction::Raise)
        .collect()
}

/// Days 0..n of an ordinary routine: up at 07:00, active every 20 min until 22:00, one
/// quiet hour after lunch, bed at 22:00.
fn routine(e: &mut Engine, days: i64) -> Vec<Signal> {
    let mut all = Vec::new();
    for d in 0..days {
        let mut m = 7 * 60;
        while m <= 22 * 60 {
            if !(13 * 60 + 20..14 * 60 + 20).contains(&m) {
                all.extend(motion(e, (D0 + d) * 86_400_000 + m * MIN));
            }
            m += 20;
        }
    }
    all
}

#[test]
fn help_press_raises_a_critical_alert_at_once_and_a_second_press_cancels_it() {
    let mut e = engine();
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:00"),
        &[Input::Help(HelpAction::Press)],
    );
    let s = e.take_signals();
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].kind, s[0].severity, s[0].action),
        (AlertKind::Help, Severity::Critical, SignalAction::Raise)
    );
    assert_eq!(s[0].device_id.as_deref(), Some("h1-help"));
    assert_eq!(s[0].at_ms, t(0, "10:00"));
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:00") + 4000,
        &[Input::Help(HelpAction::Cancel)],
    );
    let c = e.take_signals();
    assert_eq!(
        (c[0].action, c[0].episode_ms),
        (SignalAction::Cancel, t(0, "10:00")),
        "same episode as the press"
    );
}

#[test]
fn a_fall_waits_for_im_ok_then_becomes_critical() {
    let mut e = engine();
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:00"),
        &[Input::Fall(FallAction::Detected)],
    );
    let s = e.take_signals();
    assert_eq!(
        (s[0].kind, s[0].severity),
        (AlertKind::Fall, Severity::Warning),
        "on record at once"
    );
    assert!(raised(&run_to(&mut e, t(0, "10:00") + 39_000), AlertKind::Fall).is_empty());
    let s = run_to(&mut e, t(0, "10:01"));
    let f = raised(&s, AlertKind::Fall);
    assert_eq!(
        (f[0].severity, f[0].at_ms),
        (Severity::Critical, t(0, "10:00") + 40_000)
    );
}

#[test]
fn a_fall_with_im_ok_in_the_window_is_cancelled_but_on_record() {
    let mut e = engine();
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:00"),
        &[Input::Fall(FallAction::Detected)],
    );
    e.take_signals();
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:00") + 12_000,
        &[Input::Fall(FallAction::Cancel)],
    );
    let c = e.take_signals();
    assert_eq!(
        (c[0].kind, c[0].action),
        (AlertKind::Fall, SignalAction::Cancel)
    );
    assert!(raised(&run_to(&mut e, t(0, "11:00")), AlertKind::Fall).is_empty());
}

#[test]
fn gas_alarm_is_critical_and_its_clear_is_reported_not_closed() {
    let mut e = engine();
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:00"),
        &[Input::Gas {
            alarm: true,
            ppm: 6000,
        }],
    );
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:20"),
        &[Input::Gas {
            alarm: false,
            ppm: 900,
        }],
    );
    let s = e.take_signals();
    assert_eq!(
        (s[0].kind, s[0].severity, s[0].action),
        (AlertKind::Gas, Severity::Critical, SignalAction::Raise)
    );
    assert_eq!(
        (s[1].action, s[1].episode_ms),
        (SignalAction::Clear, t(0, "10:00"))
    );
}

#[test]
fn first_days_with_no_history_use_the_default_thresholds_with_a_prealarm() {
    let mut e = engine();
    motion(&mut e, t(0, "10:00"));
    let s = run_to(&mut e, t(0, "20:00"));
    let i = raised(&s, AlertKind::Inactivity);
    assert_eq!(i.len(), 2, "{s:#?}");
    assert_eq!(
        (i[0].severity, i[0].at_ms),
        (Severity::Warning, t(0, "15:24"))
    );
    assert_eq!(
        (i[1].severity, i[1].at_ms),
        (Severity::Critical, t(0, "16:00"))
    );
    // Moving again clears it.
    let c = motion(&mut e, t(0, "20:30"));
    assert_eq!(
        (c[0].kind, c[0].action),
        (AlertKind::Inactivity, SignalAction::Clear)
    );
}

#[test]
fn a_learned_routine_shortens_the_daytime_threshold() {
    let mut e = engine();
    assert!(
        raised(&routine(&mut e, 7), AlertKind::Inactivity).is_empty(),
        "an ordinary week raises nothing"
    );
    motion(&mut e, t(7, "07:00"));
    motion(&mut e, t(7, "10:00"));
    let s = run_to(&mut e, t(7, "18:00"));
    let i = raised(&s, AlertKind::Inactivity);
    let alert = i
        .iter()
        .find(|x| x.severity == Severity::Critical)
        .expect("inactivity alert");
    assert!(
        alert.at_ms <= t(7, "12:00"),
        "learned: alert within 2 h of a 10:00 silence, not 6 h; got {}",
        (alert.at_ms - t(7, "10:00")) / MIN
    );
}

#[test]
fn sleeping_through_the_usual_night_raises_nothing() {
    let mut e = engine();
    let s = routine(&mut e, 10);
    assert!(s.iter().all(|x| x.action != SignalAction::Raise), "{s:#?}");
}

#[test]
fn a_missed_wake_up_is_raised_at_the_usual_time_plus_the_margin_across_midnight() {
    let mut e = engine();
    routine(&mut e, 9);
    // Day 8 ended at 22:00; day 9: nobody gets up.
    let s = run_to(&mut e, t(9, "12:00"));
    let w = raised(&s, AlertKind::MissedWakeup);
    assert_eq!(w.len(), 1, "{s:#?}");
    assert_eq!(w[0].at_ms, t(9, "07:45"), "usual 07:00 plus 45 min");
    assert!(
        raised(&s, AlertKind::Inactivity)
            .iter()
            .all(|x| x.severity == Severity::Warning),
        "one alert per silence"
    );
}

/// A home whose only activity sensor is a kitchen cupboard contact: used at 09:30,
/// 12:00, 15:00 and 18:30, then quiet for fifteen hours until the morning.
fn cupboard_day(e: &mut Engine, d: i64) -> Vec<Signal> {
    let mut all = Vec::new();
    for at in ["09:30", "12:00", "15:00", "18:30"] {
        all.extend(act(
            e,
            t(d, at),
            "h1-cupboard",
            RoomClass::Kitchen,
            ActivityKind::Contact,
        ));
    }
    all
}

#[test]
fn a_sparse_home_quiet_from_evening_to_morning_waits_for_its_usual_getting_up() {
    let mut e = engine();
    let mut s = Vec::new();
    for d in 0..10 {
        s.extend(cupboard_day(&mut e, d));
    }
    s.extend(run_to(&mut e, t(10, "09:30")));
    // The first evening is judged by the day default (nothing learned yet); every later
    // night is longer than the 14 h bound and is what this home does.
    let critical: Vec<_> = raised(&s, AlertKind::Inactivity)
        .into_iter()
        .filter(|x| x.severity == Severity::Critical && x.at_ms > t(1, "09:30"))
        .map(|x| (x.at_ms - t(0, "00:00")) / MIN)
        .collect();
    assert!(critical.is_empty(), "false alerts at minutes {critical:?}");
    // Day 10: nobody opens the cupboard. The alert is the missed getting-up (usual
    // 09:30 plus the margin), not an inactivity alert at the bound.
    let s = run_to(&mut e, t(10, "14:00"));
    let w = raised(&s, AlertKind::MissedWakeup);
    assert_eq!(w.len(), 1, "{s:#?}");
    assert_eq!(w[0].at_ms, t(10, "10:15"));
    assert!(raised(&s, AlertKind::Inactivity).is_empty(), "{s:#?}");
}

#[test]
fn a_silence_that_spans_the_night_is_still_bounded_by_what_was_learned() {
    let mut e = engine();
    for d in 0..9 {
        cupboard_day(&mut e, d);
    }
    // A collapse after 15:30 on day 9: the afternoon's learned silences are short, so
    // the alert comes in the afternoon, not with the getting-up.
    for at in ["09:30", "12:00", "15:30"] {
        act(
            &mut e,
            t(9, at),
            "h1-cupboard",
            RoomClass::Kitchen,
            ActivityKind::Contact,
        );
    }
    let s = run_to(&mut e, t(10, "09:00"));
    let i: Vec<_> = raised(&s, AlertKind::Inactivity)
        .into_iter()
        .filter(|x| x.severity == Severity::Critical)
        .collect();
    assert_eq!(i.len(), 1, "{s:#?}");
    assert!(
        i[0].at_ms < t(9, "22:00"),
        "{}",
        (i[0].at_ms - t(9, "15:30")) / MIN
    );
}

#[test]
fn the_wake_up_cap_bounds_a_late_routine() {
    let mut e = engine_with(DetectConfig {
        wake_cap: Some("10:30".into()),
        ..DetectConfig::default()
    });
    for d in 0..5 {
        motion(&mut e, t(d, "11:30"));
        motion(&mut e, t(d, "21:00"));
    }
    let s = run_to(&mut e, t(5, "12:00"));
    assert_eq!(raised(&s, AlertKind::MissedWakeup)[0].at_ms, t(5, "10:30"));
}

#[test]
fn away_silences_elder_alerts_and_ends_by_itself() {
    let mut e = engine();
    routine(&mut e, 7);
    motion(&mut e, t(7, "08:00"));
    e.set_mode(H, HouseholdMode::Away, Some(t(9, "12:00")), t(7, "08:05"));
    let s = run_to(&mut e, t(9, "12:00"));
    assert!(s.iter().all(|x| x.action != SignalAction::Raise), "{s:#?}");
    // After the end, silence counts from the end, not from the last activity.
    let s = run_to(&mut e, t(9, "23:00"));
    let i = raised(&s, AlertKind::Inactivity);
    assert!(i.iter().all(|x| x.episode_ms == t(9, "12:00")), "{i:#?}");
}

#[test]
fn front_door_then_silence_is_probably_out_and_not_back_is_raised_later() {
    let mut e = engine();
    motion(&mut e, t(0, "09:00"));
    door(&mut e, t(0, "09:10"));
    door(&mut e, t(0, "09:10") + 20_000);
    let s = run_to(&mut e, t(0, "20:00"));
    assert!(
        raised(&s, AlertKind::Inactivity).is_empty(),
        "out is not inactive: {s:#?}"
    );
    let s = run_to(&mut e, t(0, "23:00"));
    let nb = raised(&s, AlertKind::NotBack);
    assert_eq!(
        nb[0].at_ms,
        t(0, "21:10"),
        "12 h default before an outing routine is learned"
    );
    let back = door(&mut e, t(0, "23:30"));
    assert_eq!(
        (back[0].kind, back[0].action),
        (AlertKind::NotBack, SignalAction::Clear)
    );
    // Coming home and then silence is inactivity again (the door did not make it "out").
    let s = run_to(&mut e, t(1, "12:00"));
    assert!(
        !raised(&s, AlertKind::Inactivity).is_empty()
            || !raised(&s, AlertKind::MissedWakeup).is_empty()
    );
}

#[test]
fn a_night_exit_without_return_is_raised_but_a_routine_one_is_not() {
    let mut e = engine();
    motion(&mut e, t(0, "00:20"));
    door(&mut e, t(0, "00:30"));
    let s = run_to(&mut e, t(0, "01:30"));
    let n = raised(&s, AlertKind::NightExit);
    assert_eq!(
        (n[0].at_ms, n[0].severity),
        (t(0, "01:00"), Severity::Critical)
    );
    let back = door(&mut e, t(0, "01:40"));
    assert!(
        back.iter()
            .any(|x| x.kind == AlertKind::NightExit && x.action == SignalAction::Clear)
    );

    // Someone who goes out at half past midnight most nights.
    let mut e = engine();
    for d in 0..3 {
        motion(&mut e, t(d, "00:20"));
        door(&mut e, t(d, "00:30"));
        run_to(&mut e, t(d, "00:45"));
        door(&mut e, t(d, "02:30"));
        motion(&mut e, t(d, "02:35"));
    }
    motion(&mut e, t(3, "00:20"));
    door(&mut e, t(3, "00:30"));
    assert!(raised(&run_to(&mut e, t(3, "01:30")), AlertKind::NightExit).is_empty());
}

#[test]
fn a_long_bathroom_stay_is_raised_when_the_home_has_a_bathroom_sensor() {
    let mut e = engine();
    act(
        &mut e,
        t(0, "10:00"),
        "h1-pir-bath",
        RoomClass::Bathroom,
        ActivityKind::Motion,
    );
    act(
        &mut e,
        t(0, "10:40"),
        "h1-pir-bath",
        RoomClass::Bathroom,
        ActivityKind::Motion,
    );
    let s = run_to(&mut e, t(0, "12:00"));
    assert_eq!(raised(&s, AlertKind::LongBathroom)[0].at_ms, t(0, "11:30"));
}

#[test]
fn a_silent_device_is_a_technician_alert_not_an_elder_in_trouble() {
    let mut e = engine();
    e.recovered(t(0, "08:00"));
    for dev in [
        "h1-door",
        "h1-pir-living",
        "h1-pir-bedroom",
        "h1-pir-bath",
        "h1-help",
    ] {
        e.observe(
            H,
            Some(dev),
            t(0, "08:00"),
            &[Input::Heartbeat {
                interval_s: 300,
                battery_pct: Some(90),
            }],
        );
    }
    act_from(
        &mut e,
        t(0, "08:01"),
        "h1-pir-living",
        RoomClass::Living,
        ActivityKind::Motion,
    );
    // Every device but the living-room PIR keeps beating.
    let mut s = Vec::new();
    let mut now = t(0, "08:05");
    while now <= t(0, "08:40") {
        s.extend(run_to(&mut e, now));
        for dev in ["h1-door", "h1-pir-bedroom", "h1-pir-bath", "h1-help"] {
            e.observe(
                H,
                Some(dev),
                now,
                &[Input::Heartbeat {
                    interval_s: 300,
                    battery_pct: Some(90),
                }],
            );
        }
        now += 5 * MIN;
    }
    s.extend(e.take_signals());
    let off = raised(&s, AlertKind::DeviceOffline);
    assert_eq!(off.len(), 1, "{s:#?}");
    assert_eq!(off[0].device_id.as_deref(), Some("h1-pir-living"));
    assert_eq!(
        off[0].at_ms,
        t(0, "08:01") + 2 * 300_000 + 120_000,
        "two intervals plus the grace"
    );
    assert!(AlertKind::DeviceOffline.audience() == crate::signal::Audience::Technician);
}

#[test]
fn a_home_whose_sensors_are_mostly_offline_is_not_called_inactive() {
    let mut e = engine();
    e.recovered(t(0, "08:00"));
    act_from(
        &mut e,
        t(0, "08:00"),
        "h1-pir-living",
        RoomClass::Living,
        ActivityKind::Motion,
    );
    // Only the help button keeps beating; the activity sensors fall silent.
    let mut s = Vec::new();
    let mut now = t(0, "08:05");
    while now <= t(0, "23:00") {
        s.extend(run_to(&mut e, now));
        e.observe(
            H,
            Some("h1-help"),
            now,
            &[Input::Heartbeat {
                interval_s: 300,
                battery_pct: Some(90),
            }],
        );
        now += 5 * MIN;
    }
    assert!(raised(&s, AlertKind::Inactivity).is_empty(), "{s:#?}");
    assert_eq!(raised(&s, AlertKind::DeviceOffline).len(), 4);
}

#[test]
fn a_blind_gateway_raises_one_system_alert_and_claims_no_inactivity() {
    let mut e = engine();
    motion(&mut e, t(0, "10:00"));
    e.set_connected(false, t(0, "10:30"));
    let s = run_to(&mut e, t(0, "18:00"));
    let b = raised(&s, AlertKind::GatewayBlind);
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].household_id.as_deref(), b[0].at_ms),
        (None, t(0, "10:30") + 30_000)
    );
    assert!(raised(&s, AlertKind::Inactivity).is_empty(), "{s:#?}");
    // Back at 18:00: the overdue deadline waits one recovery grace for replayed events.
    e.set_connected(true, t(0, "18:00"));
    let s = run_to(&mut e, t(0, "18:00") + 59_000);
    assert!(
        s.iter()
            .any(|x| x.kind == AlertKind::GatewayBlind && x.action == SignalAction::Clear)
    );
    assert!(raised(&s, AlertKind::Inactivity).is_empty());
    let s = run_to(&mut e, t(0, "18:02"));
    assert!(
        !raised(&s, AlertKind::Inactivity).is_empty(),
        "then it is raised: the gateway knows nothing newer"
    );
}

#[test]
fn many_devices_offline_at_once_is_one_system_alert_not_a_storm() {
    let mut e = Engine::new(DetectConfig::default().compile().unwrap(), LocalTime::utc());
    for h in 0..20 {
        e.add_device(
            &format!("h{h}"),
            &format!("h{h}-pir"),
            true,
            false,
            RoomClass::Living,
        );
    }
    e.recovered(t(0, "08:00"));
    for h in 0..20 {
        // Heartbeats spread over the interval, then the network goes.
        let at = t(0, "08:00") + h * 15_000;
        e.observe(
            &format!("h{h}"),
            Some(&format!("h{h}-pir")),
            at,
            &[Input::Heartbeat {
                interval_s: 300,
                battery_pct: None,
            }],
        );
    }
    let s = run_to(&mut e, t(0, "09:00"));
    assert_eq!(raised(&s, AlertKind::GatewayBlind).len(), 1, "{s:#?}");
    assert!(
        raised(&s, AlertKind::DeviceOffline).is_empty(),
        "no storm: {s:#?}"
    );
}

#[test]
fn an_installation_test_raises_no_caseworker_alert() {
    let mut e = engine();
    e.set_mode(
        H,
        HouseholdMode::InstallTest,
        Some(t(0, "12:00")),
        t(0, "10:00"),
    );
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:01"),
        &[Input::Help(HelpAction::Press)],
    );
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:02"),
        &[Input::Gas {
            alarm: true,
            ppm: 6000,
        }],
    );
    e.observe(
        H,
        Some("h1-help"),
        t(0, "10:03"),
        &[Input::Tamper { open: true }],
    );
    let s = e.take_signals();
    assert!(
        s.iter()
            .all(|x| x.kind.audience() != crate::signal::Audience::Caseworker),
        "{s:#?}"
    );
}

#[test]
fn low_battery_has_hysteresis() {
    let mut e = engine();
    let hb = |e: &mut Engine, at, b| {
        e.observe(
            H,
            Some("h1-help"),
            at,
            &[Input::Heartbeat {
                interval_s: 300,
                battery_pct: Some(b),
            }],
        );
        e.take_signals()
    };
    assert!(hb(&mut e, t(0, "10:00"), 30).is_empty());
    assert_eq!(hb(&mut e, t(0, "10:05"), 15)[0].action, SignalAction::Raise);
    assert!(
        hb(&mut e, t(0, "10:10"), 20).is_empty(),
        "no flapping between 15 and 25 %"
    );
    assert_eq!(hb(&mut e, t(0, "10:15"), 26)[0].action, SignalAction::Clear);
}

#[test]
fn a_restored_snapshot_fires_each_pending_alert_once_at_its_time() {
    // A household without registered devices (device health is not the point here).
    let mut e = Engine::new(DetectConfig::default().compile().unwrap(), LocalTime::utc());
    e.observe(
        H,
        None,
        t(0, "10:00"),
        &[Input::Activity {
            room: RoomClass::Living,
            kind: ActivityKind::Motion,
        }],
    );
    run_to(&mut e, t(0, "12:00"));
    let snap: Vec<Vec<u8>> = e
        .take_dirty()
        .iter()
        .map(|h| super::snapshot::encode(h).unwrap())
        .collect();

    let mut e2 = Engine::new(DetectConfig::default().compile().unwrap(), LocalTime::utc());
    for b in snap {
        e2.restore(super::snapshot::decode(&b).unwrap());
    }
    e2.recovered(t(0, "12:00"));
    let s = run_to(&mut e2, t(0, "20:00"));
    let i = raised(&s, AlertKind::Inactivity);
    assert_eq!(
        i.iter().map(|x| (x.severity, x.at_ms)).collect::<Vec<_>>(),
        vec![
            (Severity::Warning, t(0, "15:24")),
            (Severity::Critical, t(0, "16:00"))
        ]
    );
    assert!(
        raised(&run_to(&mut e2, t(0, "23:00")), AlertKind::Inactivity).is_empty(),
        "never twice"
    );
}

#[test]
fn a_household_snapshot_stays_small() {
    let mut e = engine();
    routine(&mut e, 14);
    let h = e.household(H).unwrap();
    let bytes = postcard::to_stdvec(h).unwrap().len();
    assert!(bytes < 512, "{bytes} bytes");
}

#[test]
fn a_step_of_the_host_clock_keeps_every_silence_its_real_length() {
    const HOUR: i64 = 60 * MIN;
    // Forward: the clock jumps an hour at 12:00; the warning comes at the real 15:24,
    // which the new clock reads 16:24, and not a moment before.
    let mut e = engine();
    motion(&mut e, t(0, "10:00"));
    assert!(run_to(&mut e, t(0, "12:00")).is_empty());
    e.shift_time(HOUR);
    assert!(
        run_to(&mut e, t(0, "16:23")).is_empty(),
        "no storm after the step"
    );
    let s = run_to(&mut e, t(0, "17:00"));
    let i = raised(&s, AlertKind::Inactivity);
    assert_eq!(
        (i[0].severity, i[0].at_ms),
        (Severity::Warning, t(0, "16:24"))
    );
    assert_eq!(i[1].at_ms, t(0, "17:00"));

    // Back: the clock jumps an hour back at 12:00; the alert is not an hour late.
    let mut e = engine();
    motion(&mut e, t(0, "10:00"));
    assert!(run_to(&mut e, t(0, "12:00")).is_empty());
    e.shift_time(-HOUR);
    let s = run_to(&mut e, t(0, "15:00"));
    let i = raised(&s, AlertKind::Inactivity);
    assert_eq!(i.len(), 2, "{s:#?}");
    assert_eq!(i[1].at_ms, t(0, "15:00"), "critical at the real 16:00");
}

/// The test home with a help button that takes check-ins.
fn engine_with_check_ins() -> Engine {
    let mut e = engine();
    e.add_device(H, "h1-help", false, true, RoomClass::Other);
    e
}

fn of_kind(s: &[Signal], kind: AlertKind) -> Vec<(SignalAction, i64)> {
    s.iter()
        .filter(|x| x.kind == kind)
        .map(|x| (x.action, x.at_ms))
        .collect()
}

#[test]
fn an_unusual_silence_is_asked_about_on_the_help_button_before_any_alert() {
    let mut e = engine_with_check_ins();
    motion(&mut e, t(0, "10:00"));
    let s = run_to(&mut e, t(0, "15:25"));
    assert_eq!(
        of_kind(&s, AlertKind::CheckIn),
        [(SignalAction::Raise, t(0, "15:24"))],
        "asked when the warning was due: {s:#?}"
    );
    assert!(
        raised(&s, AlertKind::Inactivity).is_empty(),
        "the warning waits for the answer"
    );
    // A sign of life within the five minutes answers; nothing is raised.
    let answered = motion(&mut e, t(0, "15:27"));
    assert_eq!(
        of_kind(&answered, AlertKind::CheckIn),
        [(SignalAction::Clear, t(0, "15:27"))]
    );
    let rest = run_to(&mut e, t(0, "17:00"));
    assert!(
        raised(&rest, AlertKind::Inactivity).is_empty(),
        "answered: no warning, no alert ({rest:#?})"
    );
}

#[test]
fn an_unanswered_check_in_lets_the_warning_and_the_alert_follow() {
    let mut e = engine_with_check_ins();
    motion(&mut e, t(0, "10:00"));
    let s = run_to(&mut e, t(0, "20:00"));
    assert_eq!(
        of_kind(&s, AlertKind::CheckIn),
        [
            (SignalAction::Raise, t(0, "15:24")),
            (SignalAction::Cancel, t(0, "15:29"))
        ],
        "asked once; not answered once"
    );
    let i = raised(&s, AlertKind::Inactivity);
    assert_eq!(
        i.iter().map(|x| (x.severity, x.at_ms)).collect::<Vec<_>>(),
        [
            (Severity::Warning, t(0, "15:29")),
            (Severity::Critical, t(0, "16:00"))
        ],
        "the warning five minutes late, the alert on time"
    );
    assert!(
        i[0].reason.contains("no answer"),
        "the caseworker reads that the elder was asked: {}",
        i[0].reason
    );
}

#[test]
fn the_answer_is_a_press_and_a_button_gone_offline_is_not_asked() {
    let mut e = engine_with_check_ins();
    motion(&mut e, t(0, "10:00"));
    run_to(&mut e, t(0, "15:25"));
    // "I'm OK" arrives as a button activity (help `ok`), not as a help press.
    e.advance(t(0, "15:26"));
    e.observe(
        H,
        Some("h1-help"),
        t(0, "15:26"),
        &super::activity::from_event(
            &anxin_firmware::wire::EventBody::Help {
                act: HelpAction::Ok,
            },
            "help",
            RoomClass::Other,
        ),
    );
    let s = e.take_signals();
    assert_eq!(
        of_kind(&s, AlertKind::CheckIn),
        [(SignalAction::Clear, t(0, "15:26"))]
    );
    assert!(
        raised(&s, AlertKind::Help).is_empty(),
        "not a call for help"
    );
    // The button then falls silent (no heartbeats): declared offline, it cannot be
    // asked, so the next silence's warning comes on time, without a check-in.
    let s = run_to(&mut e, t(0, "21:00"));
    assert!(
        s.iter()
            .any(|x| x.kind == AlertKind::DeviceOffline && x.action == SignalAction::Raise)
    );
    assert!(of_kind(&s, AlertKind::CheckIn).is_empty(), "{s:#?}");
    assert_eq!(
        raised(&s, AlertKind::Inactivity)[0].at_ms,
        t(0, "15:26") + 324 * MIN,
        "the warning at 90 % of 6 h"
    );
}

#[test]
fn a_home_without_a_reachable_help_button_is_not_asked() {
    // No button that takes check-ins: the alert comes at once, as before.
    let mut e = engine();
    motion(&mut e, t(0, "10:00"));
    let s = run_to(&mut e, t(0, "16:01"));
    assert!(of_kind(&s, AlertKind::CheckIn).is_empty());
    assert_eq!(raised(&s, AlertKind::Inactivity)[0].at_ms, t(0, "15:24"));
    // Check-ins switched off in the configuration: the same.
    let mut e = engine_with(DetectConfig {
        check_in_s: 0,
        ..DetectConfig::default()
    });
    e.add_device(H, "h1-help", false, true, RoomClass::Other);
    motion(&mut e, t(0, "10:00"));
    let s = run_to(&mut e, t(0, "16:01"));
    assert!(of_kind(&s, AlertKind::CheckIn).is_empty());
    assert_eq!(raised(&s, AlertKind::Inactivity)[0].at_ms, t(0, "15:24"));
}
