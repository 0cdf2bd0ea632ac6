//! The engine: every household of the gateway, one ordered deadline queue for all of
//! them, and the gateway-wide conditions (blind, mass offline).
//!
//! The queue holds at most about one live entry per household: an activity only moves a
//! household's deadline later, so it needs no queue operation at all; when a stale entry
//! comes due, the household's real next deadline is computed and queued instead. Signals
//! carry the time of their rule's deadline, so replays are exact and deterministic.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hasher};

use compact_str::CompactString;

use super::HouseholdMode;
use super::activity::{Input, RoomClass};
use super::household::{Household, World};
use super::localtime::LocalTime;
use super::params::{HouseholdSettings, Params};
use crate::signal::{AlertKind, Severity, Signal, SignalAction};

/// Queue target meaning "the gateway itself" (the blind alert).
const GLOBAL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default)]
struct Global {
    blind_since: i64,
    blind_alerted: bool,
    hold_until: i64,
    recovered_ms: i64,
    mass_since: i64,
}

fn world<'a>(p: &'a Params, lt: &'a LocalTime, g: &Global) -> World<'a> {
    World {
        p,
        lt,
        blind: g.blind_since > 0,
        hold_until: g.hold_until,
        recovered_ms: g.recovered_ms,
        mass_offline: g.mass_since > 0,
    }
}

/// All households and their deadlines.
pub struct Engine {
    p: Params,
    lt: LocalTime,
    households: Vec<Household>,
    by_id: HashMap<CompactString, u32>,
    /// Device id hash → household: a device is found in its household by a short scan,
    /// so the engine keeps no second copy of device ids.
    devices: HashMap<u64, u32>,
    hasher: std::collections::hash_map::RandomState,
    queue: BinaryHeap<Reverse<(i64, u32)>>,
    g: Global,
    offline: usize,
    households_offline: usize,
    out: Vec<Signal>,
    dirty: Vec<bool>,
    dirty_list: Vec<u32>,
}

impl Engine {
    /// An engine with no households.
    pub fn new(p: Params, lt: LocalTime) -> Self {
        Self::with_capacity(p, lt, 0)
    }

    /// An engine with room for `households` households (and five devices each).
    pub fn with_capacity(p: Params, lt: LocalTime, households: usize) -> Self {
        Engine {
            p,
            lt,
            households: Vec::with_capacity(households),
            by_id: HashMap::with_capacity(households),
            devices: HashMap::with_capacity(households * 5),
            hasher: std::collections::hash_map::RandomState::new(),
            queue: BinaryHeap::new(),
            g: Global::default(),
            offline: 0,
            households_offline: 0,
            out: Vec::new(),
            dirty: Vec::with_capacity(households),
            dirty_list: Vec::new(),
        }
    }

    /// The local time the engine reasons in.
    pub fn local_time(&self) -> &LocalTime {
        &self.lt
    }

    /// Number of households.
    pub fn len(&self) -> usize {
        self.households.len()
    }

    /// No households.
    pub fn is_empty(&self) -> bool {
        self.households.is_empty()
    }

    /// The household `id`, if known.
    pub fn household(&self, id: &str) -> Option<&Household> {
        self.by_id
            .get(id)
            .and_then(|i| self.households.get(*i as usize))
    }

    /// Every household.
    pub fn households(&self) -> impl Iterator<Item = &Household> {
        self.households.iter()
    }

    fn device_key(&self, device: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(device.as_bytes());
        h.finish()
    }

    fn index(&mut self, id: &str) -> u32 {
        if let Some(i) = self.by_id.get(id) {
            return *i;
        }
        let i = self.households.len() as u32;
        let id = CompactString::from(id);
        self.households.push(Household::new(id.clone()));
        self.dirty.push(false);
        self.by_id.insert(id, i);
        i
    }

    /// Puts back a household restored from a snapshot.
    pub fn restore(&mut self, mut h: Household) {
        h.scheduled_ms = i64::MAX;
        let i = self.index(&h.id.clone());
        for d in &h.devices {
            let key = self.device_key(&d.id);
            self.devices.insert(key, i);
        }
        let off = h.offline_devices();
        self.offline += off;
        self.households_offline += usize::from(off > 0);
        self.households[i as usize] = h;
        self.reschedule(i);
    }

    /// Whether `device` is known as a device of `household`.
    pub fn knows_device(&self, household: &str, device: &str) -> bool {
        self.household(household)
            .is_some_and(|h| h.slot_of(device).is_some())
    }

    /// Registers (or updates) a device of a household.
    pub fn add_device(
        &mut self,
        household: &str,
        device: &str,
        senses_activity: bool,
        answers_check_in: bool,
        room: RoomClass,
    ) {
        let i = self.index(household);
        let key = self.device_key(device);
        if let Some(old) = self.devices.get(&key).copied()
            && old != i
            && let Some(h) = self.households.get_mut(old as usize)
        {
            // Moved to another household: forget it there.
            h.remove_device(device);
        }
        self.households[i as usize].upsert_device(
            CompactString::from(device),
            senses_activity,
            answers_check_in,
            room,
        );
        self.devices.insert(key, i);
        self.touch(i);
    }

    /// Sets a household's overrides.
    pub fn set_settings(&mut self, household: &str, settings: Option<HouseholdSettings>) {
        let i = self.index(household);
        self.households[i as usize].settings = settings.map(Box::new);
        self.touch(i);
    }

    /// Sets a household's mode.
    pub fn set_mode(
        &mut self,
        household: &str,
        mode: HouseholdMode,
        until_ms: Option<i64>,
        now: i64,
    ) {
        let i = self.index(household);
        self.households[i as usize].set_mode(mode, until_ms, now);
        self.touch(i);
    }

    /// Applies what one device (or a log, with `device` None) of `household` reported at
    /// `at`. Deadlines due by `at` should have been fired first ([`Engine::advance`]).
    pub fn observe(&mut self, household: &str, device: Option<&str>, at: i64, inputs: &[Input]) {
        let i = self.index(household);
        let slot = device.and_then(|d| self.households[i as usize].slot_of(d));
        let before = self.households[i as usize].offline_devices();
        let w = world(&self.p, &self.lt, &self.g);
        let h = &mut self.households[i as usize];
        for input in inputs {
            h.apply(at, slot, input, &w, &mut self.out);
        }
        let after = h.offline_devices();
        self.count_offline(before, after);
        self.touch(i);
        self.check_mass_offline(at);
    }

    fn touch(&mut self, i: u32) {
        if let Some(d) = self.dirty.get_mut(i as usize)
            && !*d
        {
            *d = true;
            self.dirty_list.push(i);
        }
        self.reschedule(i);
    }

    fn reschedule(&mut self, i: u32) {
        let w = world(&self.p, &self.lt, &self.g);
        let h = &mut self.households[i as usize];
        if let Some(t) = h.next_deadline(&w)
            && t < h.scheduled_ms
        {
            h.scheduled_ms = t;
            self.queue.push(Reverse((t, i)));
        }
    }

    fn reschedule_all(&mut self) {
        for i in 0..self.households.len() as u32 {
            self.households[i as usize].scheduled_ms = i64::MAX;
            self.reschedule(i);
        }
    }

    /// The earliest queued deadline (possibly stale: firing it then does nothing).
    pub fn next_deadline(&self) -> Option<i64> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    /// Fires every deadline at or before `now`, in time order.
    pub fn advance(&mut self, now: i64) {
        while let Some(Reverse((t, i))) = self.queue.peek().copied() {
            if t > now {
                break;
            }
            self.queue.pop();
            if i == GLOBAL {
                self.fire_global(t);
                continue;
            }
            let Some(h) = self.households.get_mut(i as usize) else {
                continue;
            };
            if h.scheduled_ms != t {
                continue;
            }
            h.scheduled_ms = i64::MAX;
            let before = h.offline_devices();
            let w = world(&self.p, &self.lt, &self.g);
            h.fire_due(t, &w, &mut self.out);
            let after = h.offline_devices();
            self.count_offline(before, after);
            self.touch(i);
            self.check_mass_offline(t);
        }
    }

    fn count_offline(&mut self, before: usize, after: usize) {
        self.offline = (self.offline + after).saturating_sub(before);
        match (before > 0, after > 0) {
            (false, true) => self.households_offline += 1,
            (true, false) => self.households_offline = self.households_offline.saturating_sub(1),
            _ => {}
        }
    }

    /// Mass offline: a large share of all devices, across at least three households (one
    /// home losing its power or router is that home's problem, not the gateway's).
    fn check_mass_offline(&mut self, at: i64) {
        let total = self.devices.len();
        let mass = self.households_offline >= 3
            && (self.offline as f32) >= (total as f32) * self.p.mass_offline_fraction;
        if mass && self.g.mass_since == 0 {
            self.g.mass_since = at;
            self.out.push(system(SignalAction::Raise, at, at, format!(
                "{} of {} devices went offline at once: the gateway's network or broker, not the homes",
                self.offline, total
            )));
        } else if !mass
            && self.g.mass_since > 0
            && (self.offline as f32) < (total as f32) * self.p.mass_offline_fraction / 2.0
        {
            let since = self.g.mass_since;
            self.g.mass_since = 0;
            self.g.recovered_ms = at;
            self.g.hold_until = self.g.hold_until.max(at + self.p.recovery_grace_ms);
            self.out.push(system(
                SignalAction::Clear,
                at,
                since,
                "devices are back".into(),
            ));
            // Devices still offline now get their own alerts.
            self.reschedule_all();
        }
    }

    /// The gateway's MQTT session went down (`false`) or came back (`true`).
    pub fn set_connected(&mut self, connected: bool, now: i64) {
        if !connected {
            if self.g.blind_since == 0 {
                self.g.blind_since = now;
                self.g.blind_alerted = false;
                self.queue
                    .push(Reverse((now + self.p.blind_alert_after_ms, GLOBAL)));
            }
            return;
        }
        self.recovered(now);
        if self.g.blind_since > 0 {
            let since = self.g.blind_since;
            self.g.blind_since = 0;
            if self.g.blind_alerted {
                self.out.push(system(
                    SignalAction::Clear,
                    now,
                    since,
                    "the gateway sees the homes again".into(),
                ));
            }
        }
        self.reschedule_all();
    }

    /// The host clock was stepped by `by` ms: every remembered moment moves with it, so
    /// silences and deadlines keep their real length (no alert storm after a step
    /// forward, no late alert after a step back).
    pub fn shift_time(&mut self, by: i64) {
        let shift = |t: &mut i64| {
            if *t > 0 {
                *t = t.saturating_add(by).max(1);
            }
        };
        shift(&mut self.g.blind_since);
        shift(&mut self.g.hold_until);
        shift(&mut self.g.recovered_ms);
        shift(&mut self.g.mass_since);
        for h in &mut self.households {
            h.shift_time(by);
        }
        self.queue.clear();
        if self.g.blind_since > 0 && !self.g.blind_alerted {
            self.queue.push(Reverse((
                self.g.blind_since + self.p.blind_alert_after_ms,
                GLOBAL,
            )));
        }
        for i in 0..self.households.len() as u32 {
            self.touch(i);
        }
    }

    /// The gateway (re)starts seeing at `now`: deadlines wait for devices to reconnect and
    /// replay their outboxes, and device heartbeats are counted from now.
    pub fn recovered(&mut self, now: i64) {
        self.g.recovered_ms = now;
        self.g.hold_until = now + self.p.recovery_grace_ms;
        self.reschedule_all();
    }

    fn fire_global(&mut self, t: i64) {
        if self.g.blind_since > 0
            && !self.g.blind_alerted
            && t >= self.g.blind_since + self.p.blind_alert_after_ms
        {
            self.g.blind_alerted = true;
            let since = self.g.blind_since;
            self.out.push(system(SignalAction::Raise, t, since, format!(
                "the gateway lost its MQTT broker {} ago: homes cannot be seen, no inactivity is claimed meanwhile",
                super::household::fmt_duration(t - since)
            )));
        }
    }

    /// Signals produced since the last call.
    pub fn take_signals(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.out)
    }

    /// Marks every household changed (a snapshot write failed: the next one rewrites
    /// them all).
    pub fn mark_all_dirty(&mut self) {
        for i in 0..self.households.len() as u32 {
            if let Some(d) = self.dirty.get_mut(i as usize)
                && !*d
            {
                *d = true;
                self.dirty_list.push(i);
            }
        }
    }

    /// Households changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<&Household> {
        let list = std::mem::take(&mut self.dirty_list);
        for i in &list {
            if let Some(d) = self.dirty.get_mut(*i as usize) {
                *d = false;
            }
        }
        list.iter()
            .filter_map(|i| self.households.get(*i as usize))
            .collect()
    }
}

fn system(action: SignalAction, at: i64, episode: i64, reason: String) -> Signal {
    Signal {
        household_id: None,
        device_id: None,
        kind: AlertKind::GatewayBlind,
        severity: Severity::Critical,
        action,
        at_ms: at,
        observed_ms: None,
        episode_ms: episode,
        reason,
    }
}
