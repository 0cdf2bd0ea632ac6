//! One household's state and every rule about it. Pure: time comes in as arguments, the
//! signals go out into a buffer, so each rule is unit-testable to the millisecond.
//!
//! Rules (each with its deadline, see [`Rule`]):
//! - **inactivity**: silence longer than the learned threshold for the hour the silence
//!   began, with a pre-alarm at a fraction of it;
//! - **missed wake-up**: no activity by the usual getting-up time plus a margin (capped);
//! - **night exit**: the front door used in the sleep window and nobody back in time,
//!   unless leaving at that hour is this household's routine;
//! - **out**: front door then silence means probably out (silences the inactivity rules);
//!   out far longer than usual raises "not back";
//! - **long bathroom stay** (homes with a bathroom sensor);
//! - **help**, **fall** (held for the "I'm OK" window), **gas**, **tamper**;
//! - **device offline** (two heartbeats plus a grace), **low battery**.

use anxin_firmware::wire::{FallAction, HelpAction};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::HouseholdMode;
use super::activity::{ActivityKind, Input, RoomClass};
use super::localtime::{DAY_MS, LocalTime, MINUTE_MS, in_window};
use super::params::{HouseholdSettings, Params};
use super::profile::Profile;
use crate::signal::{AlertKind, Severity, Signal, SignalAction};

/// Door events closer than this belong to one passage (open, close).
const PASSAGE_MS: i64 = 2 * MINUTE_MS;
/// Silences shorter than this teach nothing.
const LEARN_MIN_GAP_MS: i64 = 10 * MINUTE_MS;

/// What the engine knows about the world outside the household.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    /// Settings.
    pub p: &'a Params,
    /// Local time of the homes.
    pub lt: &'a LocalTime,
    /// The gateway cannot see (broker lost).
    pub blind: bool,
    /// Deadlines earlier than this wait until it (devices reconnecting after a recovery).
    pub hold_until: i64,
    /// When the gateway last regained its sight (start or broker recovery).
    pub recovered_ms: i64,
    /// So many devices are offline that it is the gateway's problem, not theirs.
    pub mass_offline: bool,
}

/// A device as detection tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTrack {
    /// Device id.
    pub id: CompactString,
    /// Whether it reports the elder's activity (door, motion…), as opposed to a help
    /// button or gas sensor.
    pub senses_activity: bool,
    /// Last message of any kind.
    pub last_seen_ms: i64,
    /// Its heartbeat interval.
    pub interval_s: u32,
    /// Its last will said it is gone, at this time (0: not).
    pub gone_ms: i64,
    /// Declared offline since (0: online). It counts towards the gateway's mass-offline
    /// check at once; the technician alert follows after a hold.
    pub offline_since_ms: i64,
    /// The device-offline alert was raised.
    pub alerted: bool,
    /// Low-battery alert raised.
    pub battery_low: bool,
    /// Tamper alert raised.
    pub tamper_open: bool,
    /// Whether the elder can answer a check-in on it (a help button). From the
    /// registry at every start, so not part of the snapshot.
    #[serde(skip)]
    pub answers_check_in: bool,
}

impl DeviceTrack {
    /// A device never heard from yet.
    pub fn new(id: CompactString, senses_activity: bool) -> Self {
        DeviceTrack {
            id,
            senses_activity,
            last_seen_ms: 0,
            interval_s: 0,
            gone_ms: 0,
            offline_since_ms: 0,
            alerted: false,
            battery_low: false,
            tamper_open: false,
            answers_check_in: false,
        }
    }

    /// Whether the device is declared offline.
    pub fn offline(&self) -> bool {
        self.offline_since_ms > 0
    }

    fn interval_ms(&self, w: &World) -> i64 {
        i64::from(if self.interval_s == 0 {
            w.p.default_heartbeat_s
        } else {
            self.interval_s
        }) * 1000
    }

    /// When it is declared offline: one and a half heartbeat intervals plus the grace
    /// after the last message (or after the gateway regained its sight), or a grace
    /// after its last will.
    fn offline_deadline(&self, w: &World) -> Option<i64> {
        if self.offline() || (self.last_seen_ms == 0 && w.recovered_ms == 0) {
            return None;
        }
        let base = self.last_seen_ms.max(w.recovered_ms);
        let by_heartbeat = base + self.interval_ms(w) * 3 / 2 + w.p.offline_grace_ms;
        let by_will = if self.gone_ms > 0 {
            self.gone_ms.max(w.recovered_ms) + w.p.offline_grace_ms
        } else {
            i64::MAX
        };
        Some(by_heartbeat.min(by_will))
    }

    /// When the technician alert goes out: half an interval after being declared offline
    /// (two intervals plus the grace in all), unless the whole gateway is blind by then.
    fn alert_deadline(&self, w: &World) -> Option<i64> {
        (self.offline() && !self.alerted).then(|| self.offline_since_ms + self.interval_ms(w) / 2)
    }
}

/// A rule's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Pre-alarm of inactivity.
    InactivityWarn,
    /// Inactivity alert.
    Inactivity,
    /// Missed wake-up.
    MissedWakeup,
    /// Front door then silence: becomes "out".
    OutConfirm,
    /// Out far longer than usual.
    NotBack,
    /// Night exit without return.
    NightExit,
    /// Long bathroom stay.
    Bathroom,
    /// The "I'm OK" window of a fall has passed.
    FallConfirm,
    /// The household's mode ends.
    ModeEnd,
    /// A device missed its heartbeats: declared offline.
    DeviceOffline(u8),
    /// A device declared offline is still offline: tell a technician.
    DeviceAlert(u8),
    /// The silence became unusual: ask the elder on the help button first.
    CheckIn,
}

/// One household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Household {
    /// Household id.
    pub id: CompactString,
    /// Last sign of life (0: none yet).
    pub last_activity_ms: i64,
    /// Silences are counted from the later of the last activity and this (the end of an
    /// away period, or the moment the household could be seen again).
    pub anchor_ms: i64,
    last_room: RoomClass,
    /// A presence mat (bed, seat) says someone is there.
    presence_room: Option<RoomClass>,
    /// Wake-day (local day shifted by the day boundary) of the last getting-up.
    woke_day: i32,
    /// A front-door passage from home, waiting to become "out" (0: none): its start.
    door_ms: i64,
    /// The last front-door event (passages group events closer than two minutes).
    door_last_ms: i64,
    /// Door events before this belong to a passage of coming home.
    return_passage_until: i64,
    /// Out since (0: at home).
    pub out_since_ms: i64,
    /// A night exit waiting for a return (0: none).
    night_exit_ms: i64,
    night_exit_alerted: bool,
    /// A bathroom stay started (0: none).
    bath_since_ms: i64,
    bath_alerted: bool,
    /// Silence episode already alerted (inactivity or missed wake-up) and pre-alarmed.
    alerted_episode_ms: i64,
    warned_episode_ms: i64,
    out_alerted: bool,
    fall_pending_ms: i64,
    fall_device: Option<u8>,
    help_press_ms: i64,
    gas_alarm_ms: i64,
    /// Mode and its end (0: open-ended).
    pub mode: HouseholdMode,
    /// See `mode`.
    pub mode_until_ms: i64,
    /// Whether the household had a bathroom sensor (the bathroom rule needs one).
    has_bathroom_sensor: bool,
    /// Devices of the household.
    pub devices: Vec<DeviceTrack>,
    /// The learned routine.
    pub profile: Profile,
    /// Caseworker overrides.
    pub settings: Option<Box<HouseholdSettings>>,
    /// Timer bookkeeping: the deadline the engine has queued for this household.
    #[serde(skip, default = "never")]
    pub scheduled_ms: i64,
    /// The check-in of the current silence: when it was asked (0: not asked) and
    /// whether its outcome was told. Not in the snapshot: after a restart an unusual
    /// silence is simply asked about again.
    #[serde(skip)]
    check_in: CheckIn,
}

/// A check-in: the silence it asked about, when, and whether it was settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CheckIn {
    episode_ms: i64,
    asked_ms: i64,
    unanswered: bool,
}

fn never() -> i64 {
    i64::MAX
}

impl Household {
    /// A household with no history.
    pub fn new(id: CompactString) -> Self {
        Household {
            id,
            last_activity_ms: 0,
            anchor_ms: 0,
            last_room: RoomClass::Other,
            presence_room: None,
            woke_day: i32::MIN,
            door_ms: 0,
            door_last_ms: 0,
            return_passage_until: 0,
            out_since_ms: 0,
            night_exit_ms: 0,
            night_exit_alerted: false,
            bath_since_ms: 0,
            bath_alerted: false,
            alerted_episode_ms: 0,
            warned_episode_ms: 0,
            out_alerted: false,
            fall_pending_ms: 0,
            fall_device: None,
            help_press_ms: 0,
            gas_alarm_ms: 0,
            mode: HouseholdMode::Normal,
            mode_until_ms: 0,
            has_bathroom_sensor: false,
            devices: Vec::new(),
            profile: Profile::default(),
            settings: None,
            scheduled_ms: i64::MAX,
            check_in: CheckIn::default(),
        }
    }

    /// Adds or updates a device (from the registry).
    pub fn upsert_device(
        &mut self,
        id: CompactString,
        senses_activity: bool,
        answers_check_in: bool,
        room: RoomClass,
    ) -> usize {
        if room == RoomClass::Bathroom && senses_activity {
            self.has_bathroom_sensor = true;
        }
        let i = match self.slot_of(&id) {
            Some(i) => i,
            None => {
                self.devices.push(DeviceTrack::new(id, senses_activity));
                self.devices.len() - 1
            }
        };
        self.devices[i].senses_activity = senses_activity;
        self.devices[i].answers_check_in = answers_check_in;
        i
    }

    /// The slot of device `id`, if it belongs here.
    pub fn slot_of(&self, id: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.id == id)
    }

    /// Forgets device `id` (moved to another household).
    pub fn remove_device(&mut self, id: &str) {
        self.devices.retain(|d| d.id != id);
    }

    /// Moves every moment this household remembers by `by` ms: the host clock was
    /// stepped, and what happened a minute ago must still be a minute ago on the new
    /// clock. Appointments a person set in wall-clock time (the end of a mode) stay.
    pub fn shift_time(&mut self, by: i64) {
        let shift = |t: &mut i64| {
            if *t > 0 {
                *t = t.saturating_add(by).max(1);
            }
        };
        for t in [
            &mut self.last_activity_ms,
            &mut self.anchor_ms,
            &mut self.door_ms,
            &mut self.door_last_ms,
            &mut self.return_passage_until,
            &mut self.out_since_ms,
            &mut self.night_exit_ms,
            &mut self.bath_since_ms,
            &mut self.alerted_episode_ms,
            &mut self.warned_episode_ms,
            &mut self.fall_pending_ms,
            &mut self.help_press_ms,
            &mut self.gas_alarm_ms,
            &mut self.check_in.episode_ms,
            &mut self.check_in.asked_ms,
        ] {
            shift(t);
        }
        for d in &mut self.devices {
            for t in [&mut d.last_seen_ms, &mut d.gone_ms, &mut d.offline_since_ms] {
                shift(t);
            }
        }
        self.scheduled_ms = i64::MAX;
    }

    /// When the current silence began.
    pub fn silence_start(&self) -> i64 {
        self.last_activity_ms.max(self.anchor_ms)
    }

    fn wake_day(&self, ms: i64, w: &World) -> i32 {
        w.lt.day(ms - i64::from(w.p.day_boundary) * MINUTE_MS)
    }

    /// Whether the household's own sensors can see it (most activity sensors online).
    fn visible(&self, w: &World) -> bool {
        let sensing = self.devices.iter().filter(|d| d.senses_activity).count();
        if sensing == 0 {
            return true;
        }
        let offline = self
            .devices
            .iter()
            .filter(|d| d.senses_activity && d.offline())
            .count();
        (offline as f32) < (sensing as f32) * w.p.household_blind_fraction
    }

    /// Whether silence-based elder rules apply now.
    fn watching(&self, w: &World) -> bool {
        self.mode == HouseholdMode::Normal && !w.blind && self.visible(w)
    }

    fn signal(
        &self,
        kind: AlertKind,
        severity: Severity,
        action: SignalAction,
        at: i64,
        episode: i64,
    ) -> Signal {
        Signal {
            household_id: Some(self.id.to_string()),
            device_id: None,
            kind,
            severity,
            action,
            at_ms: at,
            observed_ms: None,
            episode_ms: episode,
            reason: String::new(),
        }
    }

    fn emit(&self, out: &mut Vec<Signal>, mut s: Signal, reason: String) {
        // A technician's installation test never reaches a caseworker.
        if self.mode == HouseholdMode::InstallTest
            && s.kind.audience() == crate::signal::Audience::Caseworker
        {
            return;
        }
        s.reason = reason;
        out.push(s);
    }

    /// Applies one input from device `slot` (None: not a registered device of this
    /// household, e.g. a replayed log) at `at`.
    pub fn apply(
        &mut self,
        at: i64,
        slot: Option<usize>,
        input: &Input,
        w: &World,
        out: &mut Vec<Signal>,
    ) {
        let device_id = slot
            .and_then(|i| self.devices.get(i))
            .map(|d| d.id.to_string());
        if let Some(d) = slot.and_then(|i| self.devices.get_mut(i)) {
            d.last_seen_ms = d.last_seen_ms.max(at);
            d.gone_ms = 0;
        }
        self.device_back(slot, at, out);
        let with_device = |mut s: Signal| {
            s.device_id = device_id.clone();
            s.observed_ms = Some(at);
            s
        };
        match *input {
            Input::Activity { room, kind } => self.activity(at, room, kind, w, out),
            Input::Help(a) => match a {
                HelpAction::Press | HelpAction::Long => {
                    self.help_press_ms = at;
                    let s = with_device(self.signal(
                        AlertKind::Help,
                        Severity::Critical,
                        SignalAction::Raise,
                        at,
                        at,
                    ));
                    let how = if a == HelpAction::Long {
                        "long press"
                    } else {
                        "press"
                    };
                    self.emit(out, s, format!("help button {how}"));
                }
                // The answer to a check-in: a sign of life (handled as activity), no call.
                HelpAction::Ok => {}
                HelpAction::Cancel => {
                    let ep = if self.help_press_ms > 0 {
                        self.help_press_ms
                    } else {
                        at
                    };
                    let s = with_device(self.signal(
                        AlertKind::Help,
                        Severity::Critical,
                        SignalAction::Cancel,
                        at,
                        ep,
                    ));
                    self.emit(out, s, "cancelled on the device (second press)".into());
                }
            },
            Input::Fall(FallAction::Detected) => {
                self.fall_pending_ms = at;
                self.fall_device = slot.map(|s| s as u8);
                let s = with_device(self.signal(
                    AlertKind::Fall,
                    Severity::Warning,
                    SignalAction::Raise,
                    at,
                    at,
                ));
                let secs = w.p.fall_window_ms / 1000;
                self.emit(
                    out,
                    s,
                    format!("fall detected; waiting {secs} s for \"I'm OK\""),
                );
            }
            Input::Fall(FallAction::Cancel) => {
                let ep = if self.fall_pending_ms > 0 {
                    self.fall_pending_ms
                } else {
                    at
                };
                self.fall_pending_ms = 0;
                let s = with_device(self.signal(
                    AlertKind::Fall,
                    Severity::Warning,
                    SignalAction::Cancel,
                    at,
                    ep,
                ));
                self.emit(out, s, "\"I'm OK\" pressed on the pendant".into());
            }
            Input::Gas { alarm: true, ppm } => {
                self.gas_alarm_ms = at;
                let s = with_device(self.signal(
                    AlertKind::Gas,
                    Severity::Critical,
                    SignalAction::Raise,
                    at,
                    at,
                ));
                self.emit(
                    out,
                    s,
                    format!("gas alarm: {ppm} ppm (the local siren is sounding)"),
                );
            }
            Input::Gas { alarm: false, ppm } => {
                let ep = if self.gas_alarm_ms > 0 {
                    self.gas_alarm_ms
                } else {
                    at
                };
                let s = with_device(self.signal(
                    AlertKind::Gas,
                    Severity::Critical,
                    SignalAction::Clear,
                    at,
                    ep,
                ));
                self.emit(out, s, format!("gas back below the alarm level: {ppm} ppm"));
            }
            Input::Tamper { open } => {
                let Some(d) = slot.and_then(|i| self.devices.get_mut(i)) else {
                    return;
                };
                if open == d.tamper_open {
                    return;
                }
                d.tamper_open = open;
                let action = if open {
                    SignalAction::Raise
                } else {
                    SignalAction::Clear
                };
                let s =
                    with_device(self.signal(AlertKind::Tamper, Severity::Warning, action, at, at));
                let what = if open {
                    "enclosure opened"
                } else {
                    "enclosure closed again"
                };
                self.emit(out, s, what.into());
            }
            Input::Heartbeat {
                interval_s,
                battery_pct,
            } => {
                let (low, ok) = (w.p.low_battery_pct, w.p.battery_ok_pct);
                let Some(d) = slot.and_then(|i| self.devices.get_mut(i)) else {
                    return;
                };
                d.interval_s = interval_s;
                let Some(b) = battery_pct else { return };
                let change = if !d.battery_low && b <= low {
                    d.battery_low = true;
                    Some(SignalAction::Raise)
                } else if d.battery_low && b >= ok {
                    d.battery_low = false;
                    Some(SignalAction::Clear)
                } else {
                    None
                };
                if let Some(action) = change {
                    let s = with_device(self.signal(
                        AlertKind::LowBattery,
                        Severity::Warning,
                        action,
                        at,
                        at,
                    ));
                    self.emit(out, s, format!("battery at {b} %"));
                }
            }
            Input::Availability { online } => {
                if let Some(d) = slot.and_then(|i| self.devices.get_mut(i)) {
                    d.gone_ms = if online { 0 } else { at };
                }
            }
        }
    }

    /// A message from a device declared offline: it is back.
    fn device_back(&mut self, slot: Option<usize>, at: i64, out: &mut Vec<Signal>) {
        let Some(d) = slot.and_then(|i| self.devices.get_mut(i)) else {
            return;
        };
        if !d.offline() {
            return;
        }
        d.offline_since_ms = 0;
        let alerted = std::mem::replace(&mut d.alerted, false);
        let id = d.id.to_string();
        if alerted {
            let mut s = self.signal(
                AlertKind::DeviceOffline,
                Severity::Warning,
                SignalAction::Clear,
                at,
                at,
            );
            s.device_id = Some(id);
            self.emit(out, s, "device is sending again".into());
        }
        // What it could not see while it was offline is not silence.
        self.anchor_ms = self.anchor_ms.max(at);
    }

    fn activity(
        &mut self,
        at: i64,
        room: RoomClass,
        kind: ActivityKind,
        w: &World,
        out: &mut Vec<Signal>,
    ) {
        if at < self.last_activity_ms {
            // Late (replayed) activity: it is life, but not the latest.
            return;
        }
        let p = w.p;
        self.profile.roll_to(w.lt.day(at), p);
        self.profile.saw_activity();
        let s = self.silence_start();
        let watching = self.watching(w);

        // Learn from the silence that just ended.
        if self.last_activity_ms > 0
            && watching
            && self.out_since_ms == 0
            && at - s >= LEARN_MIN_GAP_MS
        {
            self.profile.learn_gap(
                self.context_room(),
                usize::from(w.lt.minute(s) / 60),
                (at - s) / MINUTE_MS,
            );
            if let Some(r) = self.presence_room {
                self.profile.learn_sitting(r, (at - s) / MINUTE_MS);
            }
        }
        // The silence ended: a check-in about it is answered, an alert raised for it
        // is cleared.
        if self.check_in.asked_ms > 0 {
            if self.check_in.episode_ms == s && !self.check_in.unanswered {
                let sig = self.signal(
                    AlertKind::CheckIn,
                    Severity::Info,
                    SignalAction::Clear,
                    at,
                    s,
                );
                let how = if kind == ActivityKind::Button {
                    "answered with a press".to_string()
                } else {
                    format!(
                        "answered: activity again after {}",
                        fmt_duration(at - self.check_in.asked_ms)
                    )
                };
                self.emit(out, sig, how);
            }
            self.check_in = CheckIn::default();
        }
        if self.alerted_episode_ms == s && s > 0 {
            let sig = self.signal(
                AlertKind::Inactivity,
                Severity::Critical,
                SignalAction::Clear,
                at,
                s,
            );
            self.emit(out, sig, "activity again".into());
            self.alerted_episode_ms = -1;
        }

        // Getting up.
        let wd = self.wake_day(at, w);
        if wd > self.woke_day {
            if self.woke_day != i32::MIN && watching && self.out_since_ms == 0 {
                let boundary = w.lt.at(
                    w.lt.day(at - i64::from(p.day_boundary) * MINUTE_MS),
                    p.day_boundary,
                );
                self.profile.learn_wake((at - boundary) / MINUTE_MS);
            }
            self.woke_day = wd;
        }

        // Front door: out and back, night exits.
        if kind == ActivityKind::FrontDoor {
            let last = std::mem::replace(&mut self.door_last_ms, at);
            if self.out_since_ms > 0 {
                self.came_home(at, w, out);
                self.return_passage_until = at + PASSAGE_MS;
            } else if at >= self.return_passage_until {
                let minute = w.lt.minute(at);
                let night = self
                    .settings
                    .as_ref()
                    .and_then(|s| s.sleep_window_min)
                    .unwrap_or(p.night_window);
                let new_passage = self.door_ms == 0 || at - last > PASSAGE_MS;
                if new_passage {
                    self.door_ms = at;
                }
                if new_passage
                    && in_window(minute, night.0, night.1)
                    && !self.profile.exit_is_routine(minute)
                    && self.night_exit_ms == 0
                {
                    self.night_exit_ms = at;
                    self.night_exit_alerted = false;
                } else if self.night_exit_ms > 0 && at - last <= PASSAGE_MS {
                    // Same passage: the exit is its first event.
                }
            }
        } else {
            // Activity inside: not out, and back from a night exit.
            if self.out_since_ms > 0 {
                self.came_home(at, w, out);
            }
            self.door_ms = 0;
            if self.night_exit_ms > 0 && at - self.night_exit_ms > PASSAGE_MS / 4 {
                self.end_night_exit(at, out);
            }
        }

        // Bathroom stays.
        if room == RoomClass::Bathroom && kind == ActivityKind::Motion {
            if self.bath_since_ms == 0 {
                self.bath_since_ms = at;
                self.bath_alerted = false;
            }
        } else if room != RoomClass::Bathroom && self.bath_since_ms > 0 {
            if self.bath_alerted {
                let sig = self.signal(
                    AlertKind::LongBathroom,
                    Severity::Warning,
                    SignalAction::Clear,
                    at,
                    self.bath_since_ms,
                );
                self.emit(out, sig, "left the bathroom".into());
            }
            self.bath_since_ms = 0;
        }

        self.last_activity_ms = at;
        self.last_room = room;
        match kind {
            ActivityKind::PresenceOn => self.presence_room = Some(room),
            ActivityKind::PresenceOff if self.presence_room == Some(room) => {
                self.presence_room = None
            }
            _ => {}
        }
    }

    /// Where the silence is spent: on a presence mat that is still occupied, else the
    /// room of the last activity.
    fn context_room(&self) -> RoomClass {
        self.presence_room.unwrap_or(self.last_room)
    }

    fn came_home(&mut self, at: i64, w: &World, out: &mut Vec<Signal>) {
        let since = self.out_since_ms;
        if self.mode == HouseholdMode::Normal {
            self.profile.learn_outing(
                usize::from(w.lt.minute(since) / 60),
                (at - since) / MINUTE_MS,
            );
        }
        if self.out_alerted {
            let sig = self.signal(
                AlertKind::NotBack,
                Severity::Warning,
                SignalAction::Clear,
                at,
                since,
            );
            self.emit(out, sig, "back home".into());
        }
        self.out_since_ms = 0;
        self.out_alerted = false;
        self.end_night_exit(at, out);
        // Time out is not silence at home.
        self.anchor_ms = self.anchor_ms.max(at);
    }

    fn end_night_exit(&mut self, at: i64, out: &mut Vec<Signal>) {
        if self.night_exit_alerted {
            let sig = self.signal(
                AlertKind::NightExit,
                Severity::Critical,
                SignalAction::Clear,
                at,
                self.night_exit_ms,
            );
            self.emit(out, sig, "back home".into());
        }
        self.night_exit_ms = 0;
        self.night_exit_alerted = false;
    }

    /// Calls `f(deadline, rule)` for every pending rule.
    pub fn pending(&self, w: &World, mut f: impl FnMut(i64, Rule)) {
        let p = w.p;
        if self.mode != HouseholdMode::Normal && self.mode_until_ms > 0 {
            f(self.mode_until_ms, Rule::ModeEnd);
        }
        if self.fall_pending_ms > 0 {
            f(self.fall_pending_ms + p.fall_window_ms, Rule::FallConfirm);
        }
        if !w.blind {
            for (i, d) in self.devices.iter().enumerate() {
                if let Some(t) = d.offline_deadline(w) {
                    f(t.max(w.hold_until), Rule::DeviceOffline(i as u8));
                }
                if !w.mass_offline
                    && let Some(t) = d.alert_deadline(w)
                {
                    f(t, Rule::DeviceAlert(i as u8));
                }
            }
        }
        if self.door_ms > 0 && self.out_since_ms == 0 {
            f(self.door_ms + p.out_confirm_ms, Rule::OutConfirm);
        }
        if !self.watching(w) || self.last_activity_ms == 0 {
            return;
        }
        let hold = |t: i64| t.max(w.hold_until);
        if self.night_exit_ms > 0 && !self.night_exit_alerted {
            f(
                hold(self.night_exit_ms + p.night_return_ms),
                Rule::NightExit,
            );
        }
        if self.out_since_ms > 0 {
            let enabled = self
                .settings
                .as_ref()
                .and_then(|s| s.not_back)
                .unwrap_or(true);
            if enabled && !self.out_alerted && p.not_back_default_min > 0 {
                let limit = self.profile.not_back_min(w.lt.minute(self.out_since_ms), p);
                f(
                    hold(self.out_since_ms + i64::from(limit) * MINUTE_MS),
                    Rule::NotBack,
                );
            }
            return;
        }
        if self.bath_since_ms > 0 && !self.bath_alerted && self.has_bathroom_sensor {
            let limit = self
                .settings
                .as_ref()
                .and_then(|s| s.bathroom_limit_min)
                .map(|m| i64::from(m) * MINUTE_MS);
            f(
                hold(self.bath_since_ms + limit.unwrap_or(p.bathroom_limit_ms)),
                Rule::Bathroom,
            );
        }
        let s = self.silence_start();
        if self.alerted_episode_ms == s {
            return;
        }
        let wake = self.wake_deadline(s, w).map(hold);
        let (alert, spans_night) = self.silence_limit(s, w);
        let alert = hold(alert);
        // A silence that spans the night has no warning of its own: the getting-up is
        // what is awaited.
        let warn = (self.warned_episode_ms != s && !spans_night)
            .then(|| hold(s + i64::from(self.prealarm_min(w)) * MINUTE_MS));
        let asked = self.check_in.asked_ms > 0 && self.check_in.episode_ms == s;
        if !asked && self.can_check_in(w) {
            // The elder is asked first; the warning and the alerts wait for the answer.
            let first = [warn, Some(alert), wake].into_iter().flatten().min();
            if let Some(first) = first {
                f(first, Rule::CheckIn);
            }
            return;
        }
        // Asked and not answered: the warning and alerts come when the answer is late.
        let answer_by = if asked {
            self.check_in.asked_ms + w.p.check_in_ms
        } else {
            i64::MIN
        };
        if let Some(t) = warn {
            f(t.max(answer_by), Rule::InactivityWarn);
        }
        // A silence spanning the night that reaches the getting-up is the missed
        // wake-up's to raise.
        if !(spans_night && wake.is_some_and(|w| alert >= w)) {
            f(alert.max(answer_by), Rule::Inactivity);
        }
        if let Some(d) = wake {
            f(d.max(answer_by), Rule::MissedWakeup);
        }
    }

    /// When the silence that began at `s` becomes an inactivity alert, and whether it is
    /// one that usually spans the night. Such a silence (the learned silences at its hour
    /// are longer than the upper bound, as in a home whose only sensors are doors) waits
    /// past the bound for the usual getting-up, which the missed-wake-up rule watches.
    fn silence_limit(&self, s: i64, w: &World) -> (i64, bool) {
        let bounded = s + i64::from(self.inactivity_min(w)) * MINUTE_MS;
        if self
            .settings
            .as_ref()
            .is_some_and(|x| x.inactivity_min.is_some())
        {
            return (bounded, false);
        }
        let long = self.profile.beyond_bound_min(
            self.context_room(),
            self.presence_room.is_some(),
            w.lt.minute(s),
            w.p,
        );
        match (long, self.wake_deadline(s, w)) {
            (Some(long), Some(wake)) if wake > bounded => {
                ((s + i64::from(long) * MINUTE_MS).min(wake), true)
            }
            _ => (bounded, false),
        }
    }

    /// "No sign of life for … (usual at this hour: up to …)" at `t`.
    fn silence_reason(&self, t: i64, w: &World) -> String {
        let s = self.silence_start();
        let limit = fmt_duration(self.silence_limit(s, w).0 - s);
        format!(
            "no sign of life for {} (usual at this hour: up to {limit})",
            fmt_duration(t - self.silence_start())
        )
    }

    /// Whether an unusual silence is first asked about: check-ins are on and the home
    /// has a help button that is not offline.
    fn can_check_in(&self, w: &World) -> bool {
        w.p.check_in_ms > 0
            && self
                .devices
                .iter()
                .any(|d| d.answers_check_in && !d.offline())
    }

    /// The words added to an alert that followed an unanswered check-in (and the
    /// outcome told once).
    fn check_in_outcome(&mut self, t: i64, w: &World, out: &mut Vec<Signal>) -> String {
        let c = self.check_in;
        if c.asked_ms == 0 || c.episode_ms != self.silence_start() {
            return String::new();
        }
        if !c.unanswered {
            self.check_in.unanswered = true;
            let sig = self.signal(
                AlertKind::CheckIn,
                Severity::Info,
                SignalAction::Cancel,
                t,
                c.episode_ms,
            );
            self.emit(out, sig, "not answered".into());
        }
        format!(
            "; asked on the help button at {}, no answer",
            w.lt.format(c.asked_ms)
        )
    }

    fn inactivity_min(&self, w: &World) -> u32 {
        self.threshold_min(w, self.presence_room.is_some())
    }

    /// The pre-alarm: a little before the alert, and for someone sitting as soon as the
    /// silence is unusual for the room and hour even if long sittings have been seen
    /// (a phone call is cheap; a visit is not).
    fn prealarm_min(&self, w: &World) -> u32 {
        let t = self.inactivity_min(w);
        ((t as f32 * w.p.prealarm) as u32).min(self.threshold_min(w, false))
    }

    fn threshold_min(&self, w: &World, sitting: bool) -> u32 {
        if let Some(m) = self.settings.as_ref().and_then(|s| s.inactivity_min) {
            return u32::from(m);
        }
        self.profile.inactivity_min(
            self.context_room(),
            sitting,
            w.lt.minute(self.silence_start()),
            w.p,
        )
    }

    /// The missed-wake-up deadline for a silence that began at `s`: the next wake-day's
    /// usual getting-up plus the margin, never later than the cap.
    fn wake_deadline(&self, s: i64, w: &World) -> Option<i64> {
        let p = w.p;
        let cap = self
            .settings
            .as_ref()
            .and_then(|x| x.wake_cap_min)
            .or(p.wake_cap);
        let cap_after_boundary =
            cap.map(|c| (i64::from(c) - i64::from(p.day_boundary)).rem_euclid(1440));
        let learned = self.profile.wake_deadline_min(p).map(i64::from);
        let minutes = match (learned, cap_after_boundary) {
            (Some(l), Some(c)) => l.min(c),
            (Some(l), None) => l,
            (None, Some(c)) => c,
            (None, None) => return None,
        };
        let next_wake_day = self.wake_day(s, w) + 1;
        // The wake-day starts at the boundary of local day `next_wake_day`.
        let start = w.lt.at(next_wake_day, p.day_boundary);
        Some(start + minutes * MINUTE_MS)
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self, w: &World) -> Option<i64> {
        let mut best: Option<i64> = None;
        self.pending(w, |t, _| best = Some(best.map_or(t, |b| b.min(t))));
        best
    }

    /// Fires every rule whose deadline is at or before `now`, at its own deadline.
    pub fn fire_due(&mut self, now: i64, w: &World, out: &mut Vec<Signal>) {
        // Rules change state that other rules read: fire one at a time, earliest first.
        for _ in 0..32 {
            let mut due: Option<(i64, Rule)> = None;
            self.pending(w, |t, r| {
                if t <= now && due.is_none_or(|(d, _)| t < d) {
                    due = Some((t, r));
                }
            });
            let Some((t, rule)) = due else { return };
            self.fire(t, rule, w, out);
        }
    }

    fn fire(&mut self, t: i64, rule: Rule, w: &World, out: &mut Vec<Signal>) {
        let s = self.silence_start();
        let ago = |from: i64| fmt_duration(t - from);
        match rule {
            Rule::ModeEnd => {
                self.mode = HouseholdMode::Normal;
                self.anchor_ms = self.anchor_ms.max(self.mode_until_ms);
                self.mode_until_ms = 0;
            }
            Rule::FallConfirm => {
                let ep = self.fall_pending_ms;
                self.fall_pending_ms = 0;
                let mut sig = self.signal(
                    AlertKind::Fall,
                    Severity::Critical,
                    SignalAction::Raise,
                    t,
                    ep,
                );
                sig.device_id = self
                    .fall_device
                    .and_then(|i| self.devices.get(usize::from(i)))
                    .map(|d| d.id.to_string());
                sig.observed_ms = Some(ep);
                self.emit(
                    out,
                    sig,
                    "fall detected and no \"I'm OK\" within the window".into(),
                );
            }
            Rule::DeviceOffline(i) => {
                if let Some(d) = self.devices.get_mut(usize::from(i)) {
                    d.offline_since_ms = t;
                }
            }
            Rule::DeviceAlert(i) => {
                let Some(d) = self.devices.get_mut(usize::from(i)) else {
                    return;
                };
                d.alerted = true;
                let (id, seen) = (d.id.to_string(), d.last_seen_ms);
                let mut sig = self.signal(
                    AlertKind::DeviceOffline,
                    Severity::Warning,
                    SignalAction::Raise,
                    t,
                    seen,
                );
                sig.device_id = Some(id);
                let reason = if seen > 0 {
                    format!("no message for {}", fmt_duration(t - seen))
                } else {
                    "never heard from since the gateway started".into()
                };
                self.emit(out, sig, reason);
            }
            Rule::OutConfirm => {
                self.out_since_ms = self.door_ms;
                self.out_alerted = false;
                self.profile
                    .learn_exit(usize::from(w.lt.minute(self.door_ms) / 60));
                self.door_ms = 0;
            }
            Rule::NotBack => {
                self.out_alerted = true;
                let sig = self.signal(
                    AlertKind::NotBack,
                    Severity::Warning,
                    SignalAction::Raise,
                    t,
                    self.out_since_ms,
                );
                self.emit(
                    out,
                    sig,
                    format!(
                        "went out {} ago and is not back (longer than usual)",
                        ago(self.out_since_ms)
                    ),
                );
            }
            Rule::NightExit => {
                self.night_exit_alerted = true;
                let sig = self.signal(
                    AlertKind::NightExit,
                    Severity::Critical,
                    SignalAction::Raise,
                    t,
                    self.night_exit_ms,
                );
                let at = w.lt.format(self.night_exit_ms);
                self.emit(
                    out,
                    sig,
                    format!(
                        "front door used at night ({at}) and nobody back for {}",
                        ago(self.night_exit_ms)
                    ),
                );
            }
            Rule::Bathroom => {
                self.bath_alerted = true;
                let sig = self.signal(
                    AlertKind::LongBathroom,
                    Severity::Warning,
                    SignalAction::Raise,
                    t,
                    self.bath_since_ms,
                );
                self.emit(
                    out,
                    sig,
                    format!("in the bathroom for {}", ago(self.bath_since_ms)),
                );
            }
            Rule::CheckIn => {
                self.check_in = CheckIn {
                    episode_ms: s,
                    asked_ms: t,
                    unanswered: false,
                };
                let sig = self.signal(
                    AlertKind::CheckIn,
                    Severity::Info,
                    SignalAction::Raise,
                    t,
                    s,
                );
                let why = self.silence_reason(t, w);
                self.emit(out, sig, format!("{why}; asking on the help button"));
            }
            Rule::InactivityWarn => {
                self.warned_episode_ms = s;
                let asked = self.check_in_outcome(t, w, out);
                let sig = self.signal(
                    AlertKind::Inactivity,
                    Severity::Warning,
                    SignalAction::Raise,
                    t,
                    s,
                );
                let why = self.silence_reason(t, w);
                self.emit(out, sig, format!("{why}{asked}"));
            }
            Rule::Inactivity => {
                self.alerted_episode_ms = s;
                let asked = self.check_in_outcome(t, w, out);
                let sig = self.signal(
                    AlertKind::Inactivity,
                    Severity::Critical,
                    SignalAction::Raise,
                    t,
                    s,
                );
                let why = self.silence_reason(t, w);
                self.emit(out, sig, format!("{why}{asked}"));
            }
            Rule::MissedWakeup => {
                self.alerted_episode_ms = s;
                let asked = self.check_in_outcome(t, w, out);
                let sig = self.signal(
                    AlertKind::MissedWakeup,
                    Severity::Critical,
                    SignalAction::Raise,
                    t,
                    s,
                );
                let last = if self.last_activity_ms > 0 {
                    w.lt.format(self.last_activity_ms)
                } else {
                    "-".into()
                };
                self.emit(
                    out,
                    sig,
                    format!("not up by the usual time; last sign of life {last}{asked}"),
                );
            }
        }
    }

    /// Sets the mode (and its end).
    pub fn set_mode(&mut self, mode: HouseholdMode, until_ms: Option<i64>, now: i64) {
        if self.mode != HouseholdMode::Normal && mode == HouseholdMode::Normal {
            self.anchor_ms = self.anchor_ms.max(now);
        }
        self.mode = mode;
        self.mode_until_ms = if mode == HouseholdMode::Normal {
            0
        } else {
            until_ms.unwrap_or(0)
        };
    }

    /// Counts this household's devices declared offline.
    pub fn offline_devices(&self) -> usize {
        self.devices.iter().filter(|d| d.offline()).count()
    }
}

/// `5 h 12 min`, `40 min`, `2 d 3 h`.
pub fn fmt_duration(ms: i64) -> String {
    let m = ms.max(0) / MINUTE_MS;
    let (d, h, mi) = (m / 1440, (m % 1440) / 60, m % 60);
    match (d, h) {
        (0, 0) => format!("{mi} min"),
        (0, _) => format!("{h} h {mi} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// Days in milliseconds (tests and callers).
pub const fn days(n: i64) -> i64 {
    n * DAY_MS
}
