//! Tests of the day generator and of homes driving the firmware, without a broker.

use std::collections::BTreeMap;

use super::calendar::{DAY_MS, HOUR_MS, MINUTE_MS, day_of, day_start_ms, is_weekend, parse_local};
use super::day::{Place, plan_day};
use super::home::{Home, HomeSetup, SimLink};
use super::population::{Archetype, Room, population};
use super::scenario::Scenario;
use super::stimulus::{Action, day_stimuli};
use crate::device::{DeviceKind, Link, LinkError, SessionId};
use crate::wire::{Channel, EventBody, HelpAction};

const SEED: u64 = 2026;

fn first_day() -> i64 {
    day_of(parse_local("2026-11-23T12:00").unwrap()) // a Monday
}

#[test]
fn every_home_wakes_once_per_day_and_goes_to_bed() {
    let pop = population(50, SEED);
    for (idx, home) in pop.households.iter().enumerate() {
        let mut prev_next_wake = None;
        for day in first_day()..first_day() + 14 {
            let plan = plan_day(home, idx, SEED, day);
            let midnight = day_start_ms(day);
            // Wake between 04:00 and 11:30, once: each plan starts where the last ended.
            assert!(plan.wake_ms >= midnight + 4 * HOUR_MS, "{} {day}", home.id);
            assert!(plan.wake_ms <= midnight + 11 * HOUR_MS + 30 * MINUTE_MS);
            if let Some(prev) = prev_next_wake {
                assert_eq!(plan.wake_ms, prev, "days chain without gaps");
            }
            prev_next_wake = Some(plan.next_wake_ms);
            // Asleep at night between 19:00 and 02:00, for at least 5 hours.
            assert!(
                plan.sleep_ms >= midnight + 19 * HOUR_MS,
                "{} sleeps early",
                home.id
            );
            assert!(
                plan.sleep_ms <= midnight + 26 * HOUR_MS,
                "{} sleeps late",
                home.id
            );
            assert!(plan.next_wake_ms - plan.sleep_ms >= 5 * HOUR_MS);
            // Contiguous, non-empty segments from wake to next wake.
            assert_eq!(plan.segments[0].start_ms, plan.wake_ms);
            assert_eq!(plan.segments.last().unwrap().end_ms, plan.next_wake_ms);
            assert_eq!(plan.segments.last().unwrap().place, Place::Asleep);
            for w in plan.segments.windows(2) {
                assert_eq!(w[0].end_ms, w[1].start_ms);
                assert_ne!(w[0].place, w[1].place, "neighbours are merged");
            }
            assert!(plan.segments.iter().all(|s| s.end_ms > s.start_ms));
            // Meals: at least an hour in the kitchen; the bathroom at least twice.
            let time_in = |p: Place| -> u64 {
                plan.segments
                    .iter()
                    .filter(|s| s.place == p)
                    .map(|s| s.end_ms - s.start_ms)
                    .sum()
            };
            assert!(time_in(Place::Room(Room::Kitchen)) >= HOUR_MS);
            let bathroom_visits = plan
                .segments
                .iter()
                .filter(|s| s.place == Place::Room(Room::Bathroom))
                .count();
            assert!(bathroom_visits >= 2);
            assert!(time_in(Place::Out) < 10 * HOUR_MS);
        }
    }
}

#[test]
fn wake_times_vary_from_day_to_day_and_by_person() {
    let pop = population(50, SEED);
    let mut per_archetype: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (idx, home) in pop.households.iter().enumerate() {
        let wakes: Vec<u64> = (first_day()..first_day() + 14)
            .map(|d| plan_day(home, idx, SEED, d).wake_ms - day_start_ms(d))
            .collect();
        let min = wakes.iter().min().unwrap();
        let max = wakes.iter().max().unwrap();
        assert!(
            max - min >= 10 * MINUTE_MS,
            "{} wakes like a clock",
            home.id
        );
        let name = match home.rhythm.archetype {
            Archetype::EarlyBird => "early",
            Archetype::LateRiser => "late",
            Archetype::Homebody => "home",
            Archetype::Outgoing => "out",
        };
        per_archetype.entry(name).or_default().extend(wakes);
    }
    let mean = |v: &Vec<u64>| v.iter().sum::<u64>() / v.len() as u64;
    assert!(mean(&per_archetype["early"]) + HOUR_MS < mean(&per_archetype["late"]));
}

#[test]
fn late_risers_sleep_in_at_weekends() {
    let pop = population(80, SEED);
    let (mut weekday, mut weekend) = (Vec::new(), Vec::new());
    for (idx, home) in pop.households.iter().enumerate() {
        if home.rhythm.archetype != Archetype::LateRiser {
            continue;
        }
        for d in first_day()..first_day() + 28 {
            let w = plan_day(home, idx, SEED, d).wake_ms - day_start_ms(d);
            if is_weekend(d) {
                weekend.push(w)
            } else {
                weekday.push(w)
            }
        }
    }
    let mean = |v: &Vec<u64>| v.iter().sum::<u64>() / v.len().max(1) as u64;
    assert!(mean(&weekend) > mean(&weekday) + 15 * MINUTE_MS);
}

#[test]
fn outgoing_residents_go_out_more_than_homebodies() {
    let pop = population(80, SEED);
    let mut outings: BTreeMap<bool, (usize, usize)> = BTreeMap::new();
    for (idx, home) in pop.households.iter().enumerate() {
        let outgoing = match home.rhythm.archetype {
            Archetype::Outgoing => true,
            Archetype::Homebody => false,
            _ => continue,
        };
        for d in first_day()..first_day() + 14 {
            let n = plan_day(home, idx, SEED, d)
                .segments
                .iter()
                .filter(|s| s.place == Place::Out)
                .count();
            let e = outings.entry(outgoing).or_default();
            e.0 += n;
            e.1 += 1;
        }
    }
    let rate = |k| outings[&k].0 as f64 / outings[&k].1 as f64;
    assert!(rate(true) > 2.0 * rate(false), "{outings:?}");
}

#[test]
fn sensor_stimuli_have_plausible_daily_counts() {
    let pop = population(50, SEED);
    for (idx, home) in pop.households.iter().enumerate() {
        for d in first_day()..first_day() + 7 {
            let plan = plan_day(home, idx, SEED, d);
            let stimuli = day_stimuli(home, idx, SEED, &plan);
            assert!(stimuli.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            let motions = stimuli
                .iter()
                .filter(|s| s.action == Action::Motion(true))
                .count();
            let opens = stimuli
                .iter()
                .filter(|s| s.action == Action::Door(true))
                .count();
            let closes = stimuli
                .iter()
                .filter(|s| s.action == Action::Door(false))
                .count();
            assert!(
                (30..=400).contains(&motions),
                "{} day {d}: {motions} motions",
                home.id
            );
            assert_eq!(opens, closes);
            assert!(
                opens % 2 == 0 && opens <= 12,
                "{} day {d}: {opens} opens",
                home.id
            );
            // Nothing moves while the resident is out.
            for seg in plan.segments.iter().filter(|s| s.place == Place::Out) {
                assert!(!stimuli.iter().any(|s| s.at_ms > seg.start_ms + 60_000
                    && s.at_ms < seg.end_ms
                    && matches!(s.action, Action::Motion(true))));
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_days() {
    let pop = population(5, SEED);
    for (idx, home) in pop.households.iter().enumerate() {
        let a = plan_day(home, idx, SEED, first_day());
        assert_eq!(a, plan_day(home, idx, SEED, first_day()));
        assert_ne!(a, plan_day(home, idx, SEED + 1, first_day()));
    }
}

// --- homes driving the firmware, over a link double -------------------------------------

#[derive(Default)]
struct TestLink {
    session: Option<SessionId>,
    sessions: SessionId,
    offline_until: Option<u64>,
    sent: Vec<(Channel, Vec<u8>)>,
}

impl Link for TestLink {
    fn session(&self) -> Option<SessionId> {
        self.session
    }
    fn publish(&mut self, channel: Channel, payload: &[u8]) -> Result<(), LinkError> {
        if self.session.is_none() {
            return Err(LinkError::NotConnected);
        }
        self.sent.push((channel, payload.to_vec()));
        Ok(())
    }
}

impl SimLink for TestLink {
    fn go_offline(&mut self, until_ms: u64) {
        self.session = None;
        self.offline_until = Some(until_ms);
    }
}

impl TestLink {
    fn connected() -> Self {
        TestLink {
            session: Some(1),
            sessions: 1,
            ..TestLink::default()
        }
    }
}

/// Runs `home` to `until` in 5-minute chunks, reconnecting links whose offline time is
/// over and acknowledging every event it sees (like a gateway); returns the events
/// published (device index, JSON), without the resends of the same event.
fn live(home: &mut Home<TestLink>, until: u64) -> Vec<(usize, serde_json::Value)> {
    let mut events = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while home.now() < until {
        let t = (home.now() + 5 * MINUTE_MS).min(until);
        home.advance_to(t);
        for i in 0..home.units().len() {
            let link = home.units_mut()[i].device.link_mut();
            if link.offline_until.is_some_and(|u| u <= t) {
                link.offline_until = None;
                link.sessions += 1;
                link.session = Some(link.sessions);
            }
            let sent = std::mem::take(&mut link.sent);
            let mut acks = Vec::new();
            for (channel, payload) in sent {
                if channel == Channel::Event {
                    let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                    acks.push(format!(
                        r#"{{"v":1,"boot":{},"upto":{}}}"#,
                        v["boot"], v["seq"]
                    ));
                    if seen.insert((i, v["seq"].as_u64())) {
                        events.push((i, v));
                    }
                }
            }
            for ack in acks {
                home.on_message(i, Channel::Ack, ack.as_bytes());
            }
        }
    }
    events
}

fn home_with(scenarios: &[Scenario], start: u64, idx: usize) -> Home<TestLink> {
    let pop = population(idx + 1, SEED);
    let household = pop.households[idx].clone();
    let links = household
        .devices
        .iter()
        .map(|_| TestLink::connected())
        .collect();
    let setup = HomeSetup {
        seed: SEED,
        start_ms: start,
        min_step_ms: 1_000,
        boot: 7,
        heartbeat_s: 300,
        retry: crate::outbox::RetryPolicy::default(),
    };
    Home::new(idx, household, &setup, links, scenarios)
}

fn kind_of(home: &Home<TestLink>, i: usize) -> DeviceKind {
    home.household().devices[i].kind
}

#[test]
fn a_simulated_day_runs_the_firmware_and_everything_is_acked() {
    let start = parse_local("2026-11-23T03:00").unwrap();
    let mut home = home_with(&[], start, 0);
    let events = live(&mut home, start + DAY_MS);
    let motions = events
        .iter()
        .filter(|(i, v)| kind_of(&home, *i) == DeviceKind::Motion && v["ev"]["k"] == "motion")
        .count();
    let doors = events
        .iter()
        .filter(|(_, v)| v["ev"]["k"] == "door")
        .count();
    assert!((20..=400).contains(&motions), "{motions} motion events");
    assert_eq!(doors % 2, 0);
    assert!(
        events
            .iter()
            .all(|(_, v)| v["clk"] == "unix" && v["boot"] == 7)
    );
    for (kind, stats, held) in home.stats() {
        assert_eq!(held, 0, "{kind:?}: everything acked");
        assert_eq!(stats.generated, stats.acked);
        // A heartbeat at connect, then one per 300 s.
        assert!(
            (285..=290).contains(&stats.heartbeats),
            "{kind:?} {}",
            stats.heartbeats
        );
    }
    // The seqs of each device run 1, 2, 3… without gaps.
    for i in 0..home.units().len() {
        let seqs: Vec<u64> = events
            .iter()
            .filter(|(d, _)| *d == i)
            .map(|(_, v)| v["seq"].as_u64().unwrap())
            .collect();
        assert!(seqs.iter().enumerate().all(|(n, s)| *s == n as u64 + 1));
    }
}

#[test]
fn help_scenario_presses_the_button_through_the_firmware() {
    let start = parse_local("2026-11-23T09:00").unwrap();
    let sc: Scenario = "help@h0001@2026-11-23T10:30".parse().unwrap();
    let mut home = home_with(&[sc], start, 0);
    let events = live(&mut home, start + 3 * HOUR_MS);
    let help: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(_, v)| v["ev"]["k"] == "help")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(help.len(), 1);
    assert_eq!(help[0]["ev"]["act"], "press");
    let at = help[0]["ts"].as_u64().unwrap();
    let pressed = parse_local("2026-11-23T10:30").unwrap();
    assert!((pressed..pressed + 1_000).contains(&at));
    let _ = EventBody::Help {
        act: HelpAction::Press,
    };
}

#[test]
fn gas_leak_sounds_the_siren_and_clears_afterwards() {
    let start = parse_local("2026-11-23T09:00").unwrap();
    let sc: Scenario = "gas@h0001@2026-11-23T10:00+20m".parse().unwrap();
    let mut home = home_with(&[sc], start, 0);
    let gas = home.household().device_of(DeviceKind::Gas).unwrap();
    live(&mut home, parse_local("2026-11-23T10:05").unwrap());
    assert!(home.units()[gas].siren_on());
    let events = live(&mut home, parse_local("2026-11-23T11:00").unwrap());
    assert!(!home.units()[gas].siren_on());
    let gas_events: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(_, v)| v["ev"]["k"] == "gas")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(gas_events.len(), 1, "the alarm was sent in the first chunk");
    assert_eq!(gas_events[0]["ev"]["alarm"], false);
    assert_eq!(home.units()[gas].device.stats().generated.gas, 2);
}

#[test]
fn collapse_stops_all_activity_but_not_heartbeats() {
    let start = parse_local("2026-11-23T03:00").unwrap();
    let sc: Scenario = "collapse@h0001@2026-11-23T10:30".parse().unwrap();
    let mut home = home_with(&[sc], start, 0);
    live(&mut home, parse_local("2026-11-23T10:31").unwrap());
    let before: u64 = home.stats().iter().map(|s| s.1.heartbeats).sum();
    let events = live(&mut home, parse_local("2026-11-24T12:00").unwrap());
    assert!(events.is_empty(), "{events:?}");
    let after: u64 = home.stats().iter().map(|s| s.1.heartbeats).sum();
    assert!(after > before + 100);
}

#[test]
fn no_wake_day_is_silent_until_the_next_morning() {
    let start = parse_local("2026-11-24T03:00").unwrap();
    let sc: Scenario = "nowake@h0001@2026-11-25".parse().unwrap();
    let mut home = home_with(&[sc], start, 0);
    let pop = population(1, SEED);
    let d25 = day_of(parse_local("2026-11-25T12:00").unwrap());
    let plan = plan_day(&pop.households[0], 0, SEED, d25);
    live(&mut home, plan.wake_ms);
    let events = live(&mut home, plan.next_wake_ms - MINUTE_MS);
    assert!(events.is_empty());
    let events = live(&mut home, plan.next_wake_ms + 3 * HOUR_MS);
    assert!(!events.is_empty(), "back to normal the day after");
}

#[test]
fn offline_device_keeps_its_events_and_replays_them_on_return() {
    let start = parse_local("2026-11-23T03:00").unwrap();
    let sc: Scenario = "offline@h0001-pir-bedroom@2026-11-23T05:00+20h"
        .parse()
        .unwrap();
    let mut home = home_with(&[sc], start, 0);
    let pir = home
        .household()
        .device_in(DeviceKind::Motion, Room::Bedroom)
        .unwrap();
    live(&mut home, parse_local("2026-11-24T00:30").unwrap());
    let held = home.units()[pir].device.outbox().len();
    assert!(held > 5, "bedroom motion is held while offline ({held})");
    let events = live(&mut home, parse_local("2026-11-24T01:30").unwrap());
    let replayed = events.iter().filter(|(i, _)| *i == pir).count();
    assert!(replayed >= held);
    assert!(home.units()[pir].device.outbox().is_empty());
}

#[test]
fn drained_battery_shows_in_heartbeats_then_the_device_goes_silent() {
    let start = parse_local("2026-11-23T03:00").unwrap();
    let sc: Scenario = "battery@h0001-help@2026-11-23T04:00+1d".parse().unwrap();
    let mut home = home_with(&[sc], start, 0);
    let help = home.household().device_of(DeviceKind::Help).unwrap();
    home.advance_to(parse_local("2026-11-23T16:00").unwrap());
    let hb = home.units()[help].device.heartbeat(home.now());
    let pct = hb.battery_pct.unwrap();
    assert!((20..=55).contains(&pct), "about half drained: {pct}");
    home.advance_to(parse_local("2026-11-24T05:00").unwrap());
    let beats = home.units()[help].device.stats().heartbeats;
    home.advance_to(parse_local("2026-11-24T08:00").unwrap());
    assert_eq!(
        home.units()[help].device.stats().heartbeats,
        beats,
        "silent"
    );
}
