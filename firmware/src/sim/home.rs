//! One simulated home: the resident's timeline driving the firmware of each device.
//!
//! Synchronous and exact in virtual time: [`Home::advance_to`] runs every scheduled
//! moment (a sensor stimulus, or a device's own deadline: debounce end, long press,
//! retry, heartbeat, LED change) in order, setting the simulated pins and polling
//! every device at exactly that virtual time. The async runner only decides when, in
//! real time, to advance; a home that falls behind catches up in one batch.

use std::collections::BTreeSet;

use crate::device::{Battery, Device, DeviceKind, DeviceStats, Link, Settings};
use crate::outbox::RetryPolicy;
use crate::wire::{BootEpoch, Channel};

use super::calendar::{Day, MINUTE_MS, day_of};
use super::day::{Stream, plan_at, plan_day, rng_for};
use super::pins::{SimGas, SimPin};
use super::population::Household;
use super::scenario::Scenario;
use super::stimulus::{Action, GAS_BASELINE_PPM, Stimulus, day_stimuli};

use rand::Rng;

/// What the home needs of a device's link beyond [`Link`].
pub trait SimLink: Link {
    /// Drops the connection without a goodbye until the virtual time `until_ms`.
    fn go_offline(&mut self, until_ms: u64);
    /// Tells the link the last issued seq (for its last will).
    fn note_last_seq(&mut self, _seq: u32) {}
    /// Sets the signal strength the link reports.
    fn set_rssi_dbm(&mut self, _rssi_dbm: i16) {}
}

/// The firmware device as simulated.
pub type SimFirmware<L> = Device<L, SimPin, SimPin, SimGas>;

/// A battery that may be draining.
#[derive(Debug, Clone, Copy)]
struct BatteryModel {
    start_pct: u8,
    drain: Option<(u64, u64)>,
}

impl BatteryModel {
    fn pct(&self, now_ms: u64) -> u8 {
        match self.drain {
            Some((from, over)) if now_ms > from => {
                let left = 1.0 - (now_ms - from) as f64 / over.max(1) as f64;
                (f64::from(self.start_pct) * left.max(0.0)).round() as u8
            }
            _ => self.start_pct,
        }
    }
}

/// One simulated device: the firmware and the lines the simulation drives.
pub struct SimUnit<L> {
    /// The firmware.
    pub device: SimFirmware<L>,
    kind: DeviceKind,
    input: SimPin,
    gas: SimGas,
    siren: SimPin,
    battery: Option<BatteryModel>,
    dead: bool,
}

impl<L: SimLink> SimUnit<L> {
    /// Whether the siren (gas) is sounding.
    pub fn siren_on(&self) -> bool {
        self.siren.get()
    }
}

/// One home.
pub struct Home<L> {
    idx: usize,
    household: Household,
    seed: u64,
    units: Vec<SimUnit<L>>,
    /// Scheduled stimuli, latest first (popped from the end).
    pending: Vec<Stimulus>,
    /// The next day to plan.
    next_day: Day,
    /// Generated activity stops here (collapse).
    collapse_at: Option<u64>,
    /// Days without a wake-up.
    no_wake: BTreeSet<Day>,
    t: u64,
    min_step_ms: u64,
}

/// How a home is set up.
pub struct HomeSetup {
    /// Seed of the resident's days.
    pub seed: u64,
    /// Virtual time at the start, Unix ms.
    pub start_ms: u64,
    /// Virtual time a device waits when it must retry at once (busy link), ms.
    pub min_step_ms: u64,
    /// Boot epoch of the run.
    pub boot: BootEpoch,
    /// Heartbeat interval in seconds.
    pub heartbeat_s: u32,
    /// Resending of unacknowledged events, in virtual time.
    pub retry: RetryPolicy,
}

impl<L: SimLink> Home<L> {
    /// Builds home number `idx` (from 0) with one link per device (in the household's
    /// device order), applying the scenarios that concern it.
    pub fn new(
        idx: usize,
        household: Household,
        setup: &HomeSetup,
        links: Vec<L>,
        scenarios: &[Scenario],
    ) -> Self {
        let (seed, start_ms) = (setup.seed, setup.start_ms);
        let mut rng = rng_for(seed, idx, 0, Stream::Devices);
        let mut units = Vec::new();
        for (spec, link) in household.devices.iter().zip(links) {
            let mut settings = Settings::new(spec.id.clone(), setup.boot);
            settings.heartbeat_s = setup.heartbeat_s;
            settings.retry = setup.retry;
            settings.first_heartbeat_ms = rng.random_range(0..setup.heartbeat_s.max(1) * 1000);
            let input = SimPin::new(spec.kind == DeviceKind::Help);
            let gas = SimGas::new(GAS_BASELINE_PPM);
            let siren = SimPin::new(false);
            let mut device = Device::new(settings, link, start_ms);
            device.set_unix_time(start_ms, start_ms);
            // Every device has an LED (installation-test confirmations, help feedback).
            device = device.with_indicator(SimPin::new(false));
            device = match spec.kind {
                DeviceKind::Door => device.with_door(input.clone()),
                DeviceKind::Motion => device.with_pir(input.clone()),
                DeviceKind::Help | DeviceKind::Pendant => device.with_help_button(input.clone()),
                DeviceKind::Gas => device.with_gas(gas.clone(), siren.clone()),
            };
            let battery = (spec.kind != DeviceKind::Gas).then(|| BatteryModel {
                start_pct: rng.random_range(55..=100),
                drain: None,
            });
            device.link_mut().set_rssi_dbm(rng.random_range(-85..-45));
            units.push(SimUnit {
                device,
                kind: spec.kind,
                input,
                gas,
                siren,
                battery,
                dead: false,
            });
        }
        let mut home = Home {
            idx,
            household,
            seed,
            units,
            pending: Vec::new(),
            next_day: 0,
            collapse_at: None,
            no_wake: BTreeSet::new(),
            t: start_ms,
            min_step_ms: setup.min_step_ms.max(1),
        };
        home.apply_scenarios(scenarios, start_ms);
        let first = plan_at(&home.household, idx, seed, start_ms);
        home.next_day = first.day;
        home.plan_through(start_ms);
        home.pending.retain(|s| s.at_ms >= start_ms);
        home
    }

    fn apply_scenarios(&mut self, scenarios: &[Scenario], start_ms: u64) {
        let id = self.household.id.as_str().to_owned();
        for sc in scenarios.iter().filter(|s| s.concerns(&id)) {
            match sc {
                Scenario::NoWake { day, .. } => {
                    self.no_wake.insert(day_of(day.resolve(start_ms)));
                }
                Scenario::Collapse { at, .. } => {
                    let at = at.resolve(start_ms);
                    self.collapse_at = Some(self.collapse_at.map_or(at, |c| c.min(at)));
                }
                Scenario::Help { at, .. } => {
                    if let Some(b) = self.household.device_of(DeviceKind::Help) {
                        let at = at.resolve(start_ms);
                        self.pending.push(stim(at, b, Action::Button(true)));
                        self.pending.push(stim(at + 300, b, Action::Button(false)));
                    }
                }
                Scenario::GasLeak {
                    at, duration_ms, ..
                } => {
                    if let Some(g) = self.household.device_of(DeviceKind::Gas) {
                        let at = at.resolve(start_ms);
                        let end = at + duration_ms.max(&(3 * MINUTE_MS));
                        for (dt, ppm) in [(0, 1_500), (1, 4_000), (2, 7_000), (3, 9_500)] {
                            self.pending
                                .push(stim(at + dt * MINUTE_MS, g, Action::Gas(ppm)));
                        }
                        for (dt, ppm) in [(0, 3_500), (2, 1_200), (5, GAS_BASELINE_PPM)] {
                            self.pending
                                .push(stim(end + dt * MINUTE_MS, g, Action::Gas(ppm)));
                        }
                    }
                }
                Scenario::Offline {
                    at, duration_ms, ..
                } => {
                    let at = at.resolve(start_ms);
                    for (i, d) in self.household.devices.iter().enumerate() {
                        if sc.concerns_device(&id, d.id.as_str()) {
                            let until_ms = at + duration_ms;
                            self.pending.push(stim(at, i, Action::Offline { until_ms }));
                        }
                    }
                }
                Scenario::BatteryDrain {
                    at, duration_ms, ..
                } => {
                    let at = at.resolve(start_ms);
                    for (i, d) in self.household.devices.iter().enumerate() {
                        if sc.concerns_device(&id, d.id.as_str())
                            && let Some(b) = self.units.get_mut(i).and_then(|u| u.battery.as_mut())
                        {
                            b.drain = Some((at, *duration_ms));
                        }
                    }
                }
            }
        }
        self.sort_pending();
    }

    fn sort_pending(&mut self) {
        // Latest first, so the next one pops from the end; stable for equal times.
        self.pending.sort_by_key(|s| std::cmp::Reverse(s.at_ms));
    }

    /// Plans days until the stimuli reach past `t` + one day.
    fn plan_through(&mut self, t: u64) {
        let horizon = t + 26 * 3_600_000;
        let mut added = false;
        loop {
            let plan = plan_day(&self.household, self.idx, self.seed, self.next_day);
            if plan.wake_ms > horizon {
                break;
            }
            self.next_day += 1;
            if self.no_wake.contains(&plan.day) {
                continue;
            }
            let collapse = self.collapse_at.unwrap_or(u64::MAX);
            self.pending.extend(
                day_stimuli(&self.household, self.idx, self.seed, &plan)
                    .into_iter()
                    .filter(|s| s.at_ms < collapse),
            );
            added = true;
        }
        if added {
            self.sort_pending();
        }
    }

    /// The virtual time of the last step.
    pub fn now(&self) -> u64 {
        self.t
    }

    /// The household.
    pub fn household(&self) -> &Household {
        &self.household
    }

    /// The simulated devices.
    pub fn units(&self) -> &[SimUnit<L>] {
        &self.units
    }

    /// The simulated devices, mutably.
    pub fn units_mut(&mut self) -> &mut [SimUnit<L>] {
        &mut self.units
    }

    /// When the next thing is scheduled (a stimulus or a device deadline), always after
    /// the current step.
    pub fn next_time(&self) -> u64 {
        let mut next = self.pending.last().map_or(u64::MAX, |s| s.at_ms);
        for u in self.units.iter().filter(|u| !u.dead) {
            next = next.min(u.device.next_deadline(self.t));
        }
        // Planning also needs a wake-up when no stimulus is pending for a while.
        next = next.min(self.t + 6 * 3_600_000);
        if next <= self.t {
            self.t + self.min_step_ms
        } else {
            next
        }
    }

    /// Runs every scheduled moment up to `target` in order, then moves the clock to
    /// `target`.
    pub fn advance_to(&mut self, target: u64) {
        loop {
            let next = self.next_time();
            if next > target {
                break;
            }
            self.step(next);
        }
        self.t = self.t.max(target);
    }

    fn step(&mut self, t: u64) {
        self.t = t;
        self.plan_through(t);
        while self.pending.last().is_some_and(|s| s.at_ms <= t) {
            if let Some(s) = self.pending.pop() {
                self.apply(s);
            }
        }
        for i in 0..self.units.len() {
            self.poll_unit(i);
        }
    }

    fn apply(&mut self, s: Stimulus) {
        let Some(unit) = self.units.get_mut(s.device) else {
            return;
        };
        match s.action {
            Action::Motion(on) => unit.input.set(on),
            Action::Door(open) => unit.input.set(open),
            Action::Button(pressed) => unit.input.set(!pressed),
            Action::Gas(ppm) => unit.gas.set(ppm),
            Action::Offline { until_ms } => unit.device.link_mut().go_offline(until_ms),
        }
    }

    /// Polls device `i` at the current virtual time.
    pub fn poll_unit(&mut self, i: usize) {
        let t = self.t;
        let Some(unit) = self.units.get_mut(i) else {
            return;
        };
        if unit.dead {
            return;
        }
        if let Some(b) = unit.battery {
            let pct = b.pct(t);
            if pct == 0 {
                // An empty battery: the device goes silent for good.
                unit.dead = true;
                unit.device.link_mut().go_offline(u64::MAX);
                return;
            }
            unit.device.set_battery(Battery {
                pct: Some(pct),
                mv: Some(2_400 + u16::from(pct) * 6),
            });
        }
        unit.device.poll(t);
        let seq = unit.device.last_seq();
        unit.device.link_mut().note_last_seq(seq);
    }

    /// Hands a downlink message to device `i` at the current virtual time.
    pub fn on_message(&mut self, i: usize, channel: Channel, payload: &[u8]) {
        let t = self.t;
        if let Some(unit) = self.units.get_mut(i)
            && !unit.dead
            && let Err(e) = unit.device.on_message(channel, payload, t)
        {
            tracing::debug!(
                device_id = %unit.device.settings().id,
                error = %e,
                "device rejected a downlink message"
            );
        }
        self.poll_unit(i);
    }

    /// Totals of the devices' counters.
    pub fn stats(&self) -> Vec<(DeviceKind, DeviceStats, usize)> {
        self.units
            .iter()
            .map(|u| (u.kind, *u.device.stats(), u.device.outbox().len()))
            .collect()
    }
}

fn stim(at_ms: u64, device: usize, action: Action) -> Stimulus {
    Stimulus {
        at_ms,
        device,
        action,
    }
}
