//! The learned routine of one household, in about a hundred bytes: for each hour of the
//! day the longest recent silence that began in it (decaying by day), the latest recent
//! getting-up times, the longest recent outings, and on which recent days the front door
//! was used at night.

use serde::{Deserialize, Serialize};

use super::activity::RoomClass;
use super::localtime::in_window;
use super::params::Params;

/// Rooms distinguished by the learned silences.
const ROOMS: usize = 6;

fn room_index(r: RoomClass) -> usize {
    match r {
        RoomClass::Entrance => 0,
        RoomClass::Bedroom => 1,
        RoomClass::Bathroom => 2,
        RoomClass::Kitchen => 3,
        RoomClass::Living => 4,
        RoomClass::Other => 5,
    }
}

/// Units of the learned durations: 5 minutes (so a `u8` spans 21 h 15 min).
const UNIT_MIN: u32 = 5;
/// Getting-up times remembered.
const WAKE_DAYS: usize = 14;
/// Not recorded.
const NONE: u8 = u8::MAX;

/// A household's learned routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Longest recent silence starting in each room and local hour, in 5-minute units.
    gap: [[u8; 24]; ROOMS],
    /// Longest recent stay on a presence mat (seat, sofa) per room, whatever the hour.
    sitting: [u8; ROOMS],
    /// Longest recent outing starting in each local hour, in 5-minute units.
    out: [u8; 24],
    /// Bit `d` set: a front-door exit in that hour `d` days ago (bit 0: today).
    exits: [u16; 24],
    /// Recent getting-up times, 5-minute units after the day boundary (ring).
    wake: [u8; WAKE_DAYS],
    wake_next: u8,
    /// Days with activity seen so far (saturating).
    days: u16,
    /// Local day of the last roll-over.
    day: i32,
    /// Whether the current day has had activity.
    active_today: bool,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            gap: [[0; 24]; ROOMS],
            sitting: [0; ROOMS],
            out: [0; 24],
            exits: [0; 24],
            wake: [NONE; WAKE_DAYS],
            wake_next: 0,
            days: 0,
            day: i32::MIN,
            active_today: false,
        }
    }
}

fn units(minutes: i64) -> u8 {
    (minutes.max(0) as u64)
        .div_ceil(u64::from(UNIT_MIN))
        .min(u64::from(NONE - 1)) as u8
}

fn decayed(v: u8, factor: f32) -> u8 {
    (f32::from(v) * factor) as u8
}

impl Profile {
    /// Moves to local `day`: decays what was learned, shifts the exit days, counts days.
    pub fn roll_to(&mut self, day: i32, p: &Params) {
        if self.day == i32::MIN {
            self.day = day;
            return;
        }
        if day <= self.day {
            return;
        }
        let n = (day - self.day).min(64);
        if self.active_today {
            self.days = self.days.saturating_add(1);
        }
        self.active_today = false;
        let f = p.decay.powi(n);
        for h in 0..24 {
            for room in &mut self.gap {
                room[h] = decayed(room[h], f);
            }
            self.out[h] = decayed(self.out[h], f);
            if h < ROOMS {
                self.sitting[h] = decayed(self.sitting[h], f);
            }
            self.exits[h] = if n >= 16 { 0 } else { self.exits[h] << n };
        }
        self.day = day;
    }

    /// Marks the current day as having activity.
    pub fn saw_activity(&mut self) {
        self.active_today = true;
    }

    /// Days of history learned.
    pub fn days(&self) -> u16 {
        self.days
    }

    /// Learns a silence of `minutes` that began at local `hour` after activity in `room`.
    pub fn learn_gap(&mut self, room: RoomClass, hour: usize, minutes: i64) {
        let u = units(minutes);
        if let Some(g) = self.gap[room_index(room)].get_mut(hour % 24) {
            *g = (*g).max(u);
        }
    }

    /// Learns a stay of `minutes` on a presence mat in `room` (not the bed: sleep has its
    /// own hours).
    pub fn learn_sitting(&mut self, room: RoomClass, minutes: i64) {
        if room != RoomClass::Bedroom {
            let u = units(minutes);
            let s = &mut self.sitting[room_index(room)];
            *s = (*s).max(u);
        }
    }

    /// Learns an outing of `minutes` that began at local `hour`.
    pub fn learn_outing(&mut self, hour: usize, minutes: i64) {
        let u = units(minutes);
        if let Some(g) = self.out.get_mut(hour % 24) {
            *g = (*g).max(u);
        }
    }

    /// Records a front-door exit at local `hour` today.
    pub fn learn_exit(&mut self, hour: usize) {
        if let Some(e) = self.exits.get_mut(hour % 24) {
            *e |= 1;
        }
    }

    /// Records today's getting-up, `minutes` after the day boundary.
    pub fn learn_wake(&mut self, minutes: i64) {
        let i = usize::from(self.wake_next) % WAKE_DAYS;
        self.wake[i] = units(minutes);
        self.wake_next = ((i + 1) % WAKE_DAYS) as u8;
    }

    /// The inactivity threshold in minutes for a silence that began at local `minute`
    /// after activity in `room`.
    ///
    /// The longest recent silence in that room within two hours of that time (neighbours
    /// a little discounted: routines shift), never below `home_floor_pct` of the longest
    /// recent silence anywhere in the home within an hour of it (a sparse room learns slowly), times the
    /// factor plus the slack, within the bounds. Where nothing comparable was seen yet, or
    /// before `learning_days`, the default for the time of day applies as a floor.
    pub fn inactivity_min(&self, room: RoomClass, sitting: bool, minute: u16, p: &Params) -> u32 {
        let (env, learned) = self.learned_min(room, sitting, minute, p);
        let learned = learned.clamp(p.min_inactivity_min, p.max_inactivity_min);
        let in_day = in_window(minute, p.day_window.0, p.day_window.1);
        let default = if in_day {
            p.day_default_min
        } else {
            p.night_default_min
        };
        if self.days < p.learning_days || env == 0 {
            learned.max(default)
        } else {
            learned
        }
    }

    /// The learned threshold in minutes where it is longer than the upper bound: the
    /// silences that begin at this time usually span the night (a home whose only sensors
    /// are doors is quiet from the evening to the morning). Trusted from the first such
    /// silence seen: it is what this home shows. None within the bound.
    pub fn beyond_bound_min(
        &self,
        room: RoomClass,
        sitting: bool,
        minute: u16,
        p: &Params,
    ) -> Option<u32> {
        let (env, learned) = self.learned_min(room, sitting, minute, p);
        (env > 0 && learned > p.max_inactivity_min).then_some(learned)
    }

    /// The envelope of comparable recent silences and the learned threshold from it
    /// (unbounded), in minutes.
    fn learned_min(&self, room: RoomClass, sitting: bool, minute: u16, p: &Params) -> (u32, u32) {
        const NEAR: [(usize, u32); 5] = [(0, 100), (1, 95), (23, 95), (2, 85), (22, 85)];
        let h = usize::from(minute / 60) % 24;
        let cell = |r: usize, d: usize| u32::from(self.gap[r][(h + d) % 24]) * UNIT_MIN;
        let r = room_index(room);
        let in_room = NEAR
            .iter()
            .map(|(d, w)| cell(r, *d) * w / 100)
            .max()
            .unwrap_or(0);
        let anywhere = (0..ROOMS)
            .flat_map(|r| [0, 1, 23].map(|d| cell(r, d)))
            .max()
            .unwrap_or(0)
            * p.home_floor_pct
            / 100;
        // Sitting (a presence mat occupied) lasts as long as it lasts, whatever the hour.
        let seated = if sitting {
            u32::from(self.sitting[r]) * UNIT_MIN * p.sitting_pct / 100
        } else {
            0
        };
        let env = in_room.max(anywhere).max(seated);
        (env, (env as f32 * p.factor) as u32 + p.slack_min)
    }

    /// Minutes after the day boundary by which a getting-up is expected, if a routine is
    /// known (None before `learning_days` of getting-up times).
    pub fn wake_deadline_min(&self, p: &Params) -> Option<u32> {
        let known: Vec<u32> = self
            .wake
            .iter()
            .filter(|w| **w != NONE)
            .map(|w| u32::from(*w) * UNIT_MIN)
            .collect();
        // Getting up happens once a day: a week of it before the routine replaces the cap.
        if known.len() < usize::from(p.learning_days.max(1)).max(7) {
            return None;
        }
        known.iter().max().map(|latest| latest + p.wake_margin_min)
    }

    /// Out longer than this many minutes after leaving at local `minute` is unusual.
    pub fn not_back_min(&self, minute: u16, p: &Params) -> u32 {
        let h = usize::from(minute / 60) % 24;
        let env = u32::from(self.out[h])
            .max(u32::from(self.out[(h + 23) % 24]))
            .max(u32::from(self.out[(h + 1) % 24]))
            * UNIT_MIN;
        // Never below the default: a long but usual day out must not alarm.
        (env * 3 / 2 + 60).max(p.not_back_default_min)
    }

    /// Whether leaving at local `minute` is routine: a front-door exit within an hour of
    /// it on at least two of the last fourteen days (today excluded).
    pub fn exit_is_routine(&self, minute: u16) -> bool {
        let h = usize::from(minute / 60) % 24;
        let mask: u16 = 0b0111_1111_1111_1110;
        let days = (self.exits[h] | self.exits[(h + 23) % 24] | self.exits[(h + 1) % 24]) & mask;
        days.count_ones() >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::params::DetectConfig;

    fn p() -> Params {
        DetectConfig::default().compile().unwrap()
    }

    #[test]
    fn the_learned_routine_fits_in_half_a_kilobyte() {
        // A megacity keeps one per household in memory.
        let size = std::mem::size_of::<Profile>();
        assert!(size <= 512, "Profile is {size} B");
        let encoded = postcard::to_allocvec(&Profile::default()).unwrap().len();
        assert!(encoded <= 512, "encoded Profile is {encoded} B");
    }

    #[test]
    fn before_learning_the_defaults_apply() {
        let pr = Profile::default();
        assert_eq!(
            pr.inactivity_min(RoomClass::Living, false, 10 * 60, &p()),
            6 * 60
        );
        assert_eq!(
            pr.inactivity_min(RoomClass::Bedroom, false, 23 * 60, &p()),
            12 * 60
        );
        assert_eq!(pr.wake_deadline_min(&p()), None);
    }

    #[test]
    fn learned_threshold_follows_the_longest_recent_silence_at_that_hour() {
        let params = p();
        let mut pr = Profile::default();
        for d in 0..8 {
            pr.roll_to(d, &params);
            pr.saw_activity();
            pr.learn_gap(RoomClass::Living, 14, 120);
            pr.learn_gap(RoomClass::Kitchen, 9, 20);
        }
        pr.roll_to(8, &params);
        let t = pr.inactivity_min(RoomClass::Living, false, 14 * 60 + 10, &params);
        // 120 min, decayed a little over the days, × 1.5 + 20.
        assert!((185..=200).contains(&t), "{t}");
        // A room and hour with only short silences gets the lower bound.
        assert_eq!(
            pr.inactivity_min(RoomClass::Kitchen, false, 9 * 60, &params),
            params.min_inactivity_min
        );
        // A time with nothing comparable learned keeps the default.
        assert_eq!(
            pr.inactivity_min(RoomClass::Bedroom, false, 4 * 60, &params),
            params.night_default_min
        );
    }

    #[test]
    fn what_is_learned_fades_over_weeks() {
        let params = p();
        let mut pr = Profile::default();
        pr.roll_to(0, &params);
        pr.learn_gap(RoomClass::Living, 14, 240);
        for d in 1..=200 {
            pr.roll_to(d, &params);
        }
        assert!(pr.gap[4][14] < 48 / 3, "{}", pr.gap[4][14]);
    }

    #[test]
    fn exits_on_two_recent_days_make_a_routine() {
        let params = p();
        let mut pr = Profile::default();
        pr.roll_to(0, &params);
        pr.learn_exit(22);
        pr.roll_to(1, &params);
        assert!(!pr.exit_is_routine(22 * 60));
        pr.learn_exit(21);
        pr.roll_to(2, &params);
        assert!(pr.exit_is_routine(22 * 60 + 15));
        assert!(!pr.exit_is_routine(3 * 60));
    }
}
