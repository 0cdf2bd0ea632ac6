//! The learned routine of one household, in about 300 bytes: a survival model of its
//! silences (how often a silence that began in a given context lasted at least 15 min,
//! 21 min, 30 min, … 22 h), the recent getting-up and going-to-bed times, the longest
//! recent outings, and on which recent days the front door was used at each hour.
//!
//! **Silences.** Each silence of at least 15 minutes is counted in the rows of its context:
//! the 3-hour slot of the day it began in and the room it was spent in (or "seated", a
//! presence mat still occupied) if it began while the elder was awake, or the night row if
//! it began in the learned sleep period (from the recent bedtimes to the latest recent
//! getting-up). A row holds, for each of 14 log-spaced lengths, how many silences lasted
//! at least that long, in quarter units; a row that fills up is halved (so about 60
//! recent silences of a kind count, older ones less and less).
//!
//! The survival of the current silence at length `t` is estimated row by row with
//! shrinkage: `(count ≥ t + m·parent(t)) / (count + m)`, where a slot or room row's parent
//! is the home's own waking silences (pooled, so a home with only contacts, whose normal
//! silences are long, has long thresholds everywhere) and the home's parent is a generic
//! heavy tail `(15 min / t)^β`. A waking silence is unusual when the slot row (and the
//! neighbouring slot, routines shift) and the room row both say so: the alert comes when
//! the larger of their survivals falls below a level `α` calibrated per household so that
//! `α × (silences per day) = the target false alerts per day`. Where few silences have
//! been seen, the heavy tail keeps the threshold long; it shortens as the home shows it.

use serde::{Deserialize, Serialize};

use super::activity::RoomClass;
use super::params::Params;

/// Lengths counted (minutes): 15 × √2^k.
pub(crate) const LEVEL_MIN: [u32; LEVELS] = [
    15, 21, 30, 42, 60, 85, 120, 170, 240, 339, 480, 679, 960, 1358,
];
pub(crate) const LEVELS: usize = 14;
/// Rows: 8 slots of 3 hours, 6 rooms and "seated", the night.
const SLOTS: usize = 8;
const ROOMS: usize = 6;
const SEATED: usize = SLOTS + ROOMS;
const NIGHT: usize = SEATED + 1;
pub(crate) const ROWS: usize = NIGHT + 1;
/// One silence adds this much to a count (so halving keeps some resolution).
const QUANTUM: u8 = 4;

pub(crate) fn room_index(r: RoomClass) -> usize {
    match r {
        RoomClass::Entrance => 0,
        RoomClass::Bedroom => 1,
        RoomClass::Bathroom => 2,
        RoomClass::Kitchen => 3,
        RoomClass::Living => 4,
        RoomClass::Other => 5,
    }
}

/// Units of the learned times: 5 minutes (so a `u8` spans 21 h 15 min).
pub(crate) const UNIT_MIN: u32 = 5;
/// Getting-up and bed times remembered.
pub(crate) const WAKE_DAYS: usize = 14;
/// Not recorded.
pub(crate) const NONE: u8 = u8::MAX;
/// Bedtimes are stored as 5-minute units after this minute of the day (16:00).
const BED_ORIGIN_MIN: u32 = 16 * 60;

/// Where a silence began, as the model distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Local minute of the day it began.
    pub minute: u16,
    /// The room of the last activity (or of the occupied presence mat).
    pub room: RoomClass,
    /// A presence mat (seat, sofa; not the bed) was occupied.
    pub seated: bool,
}

/// What the model says about a context, for the caseworker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usual {
    /// 9 in 10 silences like this ended within this many minutes.
    pub p90_min: u32,
    /// The silence is unusual from this many minutes on.
    pub limit_min: u32,
    /// It began in the learned sleep period.
    pub night: bool,
}

/// A household's learned routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Silences lasting at least `LEVEL_MIN[k]`, per row, in quarter units.
    surv: [[u8; LEVELS]; ROWS],
    /// Longest recent outing starting in each local hour, in 5-minute units.
    out: [u8; 24],
    /// Bit `d` set: a front-door exit in that hour `d` days ago (bit 0: today).
    exits: [u16; 24],
    /// Recent getting-up times, 5-minute units after the day boundary (ring).
    wake: [u8; WAKE_DAYS],
    wake_next: u8,
    /// Recent bedtimes (the start of the silence that ended with getting up), 5-minute
    /// units after 16:00 (ring).
    bed: [u8; WAKE_DAYS],
    bed_next: u8,
    /// Silences of at least 15 min seen today.
    silences_today: u8,
    /// Silences of at least 15 min per day, × 16, averaged over about a week (0: none).
    rate_x16: u16,
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
            surv: [[0; LEVELS]; ROWS],
            out: [0; 24],
            exits: [0; 24],
            wake: [NONE; WAKE_DAYS],
            wake_next: 0,
            bed: [NONE; WAKE_DAYS],
            bed_next: 0,
            silences_today: 0,
            rate_x16: 0,
            days: 0,
            day: i32::MIN,
            active_today: false,
        }
    }
}

pub(crate) fn units(minutes: i64) -> u8 {
    (minutes.max(0) as u64)
        .div_ceil(u64::from(UNIT_MIN))
        .min(u64::from(NONE - 1)) as u8
}

fn decayed(v: u8, factor: f32) -> u8 {
    (f32::from(v) * factor) as u8
}

/// The routine of the previous snapshot layout (version 1), as far as it can be carried
/// into this one: see [`Profile::from_v1`].
pub struct V1Parts {
    /// Longest recent silence per room and hour, 5-minute units.
    pub gap: [[u8; 24]; ROOMS],
    /// Longest recent sitting per room, 5-minute units.
    pub sitting: [u8; ROOMS],
    /// Carried unchanged.
    pub out: [u8; 24],
    /// Carried unchanged.
    pub exits: [u16; 24],
    /// Carried unchanged.
    pub wake: [u8; WAKE_DAYS],
    /// Carried unchanged.
    pub wake_next: u8,
    /// Carried unchanged.
    pub days: u16,
    /// Carried unchanged.
    pub day: i32,
    /// Carried unchanged.
    pub active_today: bool,
}

impl Profile {
    /// Converts the routine learned by the previous model: each remembered longest silence
    /// (per room and hour) becomes one silence of that length in its slot and room rows
    /// (night hours: the night row), each longest sitting one seated silence; the rest is
    /// kept as it was. The longest silences are the tail of what was seen, so the
    /// converted model starts cautious (long thresholds) and sharpens as it learns.
    pub fn from_v1(v: V1Parts, p: &Params) -> Self {
        let mut pr = Profile {
            out: v.out,
            exits: v.exits,
            wake: v.wake,
            wake_next: v.wake_next,
            days: v.days,
            day: v.day,
            active_today: v.active_today,
            ..Profile::default()
        };
        for (r, hours) in v.gap.iter().enumerate() {
            for (h, g) in hours.iter().enumerate() {
                if *g == 0 {
                    continue;
                }
                let minutes = u32::from(*g) * UNIT_MIN;
                let minute = (h * 60 + 30) as u16;
                if super::localtime::in_window(minute, p.day_window.0, p.day_window.1) {
                    pr.count(h / 3, minutes);
                    pr.count(SLOTS + r, minutes);
                } else {
                    pr.count(NIGHT, minutes);
                }
            }
        }
        for s in v.sitting.iter().filter(|s| **s > 0) {
            pr.count(SEATED, u32::from(*s) * UNIT_MIN);
        }
        pr
    }

    /// Moves to local `day`: decays the outings, shifts the exit days, counts days and
    /// updates the silences-per-day average.
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
            let today = u16::from(self.silences_today) * 16;
            self.rate_x16 = if self.rate_x16 == 0 {
                today.max(1)
            } else {
                ((u32::from(self.rate_x16) * 7 + u32::from(today)) / 8).max(1) as u16
            };
        }
        self.silences_today = 0;
        self.active_today = false;
        let f = p.decay.powi(n);
        for h in 0..24 {
            self.out[h] = decayed(self.out[h], f);
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

    /// Adds one silence of `minutes` to `row` (halving the row first if it is full).
    fn count(&mut self, row: usize, minutes: u32) {
        let r = &mut self.surv[row];
        if r[0] > u8::MAX - QUANTUM {
            for c in r.iter_mut() {
                *c /= 2;
            }
        }
        for (c, l) in r.iter_mut().zip(LEVEL_MIN) {
            if minutes >= l {
                *c += QUANTUM;
            }
        }
    }

    /// Learns a silence of `minutes` that began in context `c`.
    pub fn learn_silence(&mut self, c: Context, minutes: i64, p: &Params) {
        let m = minutes.clamp(0, i64::from(u32::MAX)) as u32;
        if m < LEVEL_MIN[0] {
            return;
        }
        self.silences_today = self.silences_today.saturating_add(1);
        if self.is_night(c.minute, p) {
            self.count(NIGHT, m);
        } else {
            self.count(usize::from(c.minute / 180) % SLOTS, m);
            let room = if c.seated {
                SEATED
            } else {
                SLOTS + room_index(c.room)
            };
            self.count(room, m);
        }
    }

    /// Records a bedtime: the silence that ended with today's getting-up began at local
    /// `minute` and lasted `minutes` (a night only if it lasted three hours).
    pub fn learn_bedtime(&mut self, minute: u16, minutes: i64) {
        if minutes < 180 {
            return;
        }
        let after = (u32::from(minute) + 1440 - BED_ORIGIN_MIN) % 1440;
        let i = usize::from(self.bed_next) % WAKE_DAYS;
        self.bed[i] = units(i64::from(after));
        self.bed_next = ((i + 1) % WAKE_DAYS) as u8;
    }

    /// The learned sleep period: from 30 minutes before the earliest recent bedtime to the
    /// latest recent getting-up (minutes of the day), once three of each are known.
    pub fn sleep_period(&self, p: &Params) -> Option<(u16, u16)> {
        let known = |v: &[u8]| v.iter().filter(|x| **x != NONE).count() >= 3;
        if !known(&self.bed) || !known(&self.wake) {
            return None;
        }
        let bed = self.bed.iter().filter(|x| **x != NONE).min()?;
        let wake = self.wake.iter().filter(|x| **x != NONE).max()?;
        let from = (BED_ORIGIN_MIN + u32::from(*bed) * UNIT_MIN + 1440 - 30) % 1440;
        let to = (u32::from(p.day_boundary) + u32::from(*wake) * UNIT_MIN) % 1440;
        Some((from as u16, to as u16))
    }

    /// Whether a silence beginning at local `minute` begins in the sleep period (learned,
    /// or before it is known, outside the default day window).
    pub fn is_night(&self, minute: u16, p: &Params) -> bool {
        match self.sleep_period(p) {
            Some((from, to)) => super::localtime::in_window(minute, from, to),
            None => !super::localtime::in_window(minute, p.day_window.0, p.day_window.1),
        }
    }

    /// The generic heavy tail at level `k`.
    fn prior(k: usize, p: &Params) -> f32 {
        (LEVEL_MIN[0] as f32 / LEVEL_MIN[k] as f32).powf(p.prior_tail)
    }

    /// The home's waking silences pooled over the slots, shrunk to the generic tail.
    fn home(&self, k: usize, p: &Params) -> f32 {
        let (n0, nk) = (0..SLOTS).fold((0.0, 0.0), |(a, b), r| {
            (
                a + f32::from(self.surv[r][0]),
                b + f32::from(self.surv[r][k]),
            )
        });
        let m = p.prior_weight * f32::from(QUANTUM);
        (nk + m * Self::prior(k, p)) / (n0 + m)
    }

    /// Row `r`'s survival at level `k`, shrunk to `parent`.
    fn row(&self, r: usize, k: usize, parent: f32, p: &Params) -> f32 {
        let m = p.prior_weight * f32::from(QUANTUM);
        (f32::from(self.surv[r][k]) + m * parent) / (f32::from(self.surv[r][0]) + m)
    }

    /// The estimated chance that a silence of context `c` lasts at least `LEVEL_MIN[k]`.
    pub fn survival(&self, c: Context, k: usize, p: &Params) -> f32 {
        if self.is_night(c.minute, p) {
            return self.row(NIGHT, k, Self::prior(k, p), p);
        }
        let home = self.home(k, p);
        let slot = usize::from(c.minute / 180) % SLOTS;
        // The neighbouring slot nearer to the start (routines shift by an hour or so).
        let near = if c.minute % 180 < 90 {
            (slot + SLOTS - 1) % SLOTS
        } else {
            (slot + 1) % SLOTS
        };
        let room = if c.seated {
            SEATED
        } else {
            SLOTS + room_index(c.room)
        };
        let by_time = self.row(slot, k, home, p).max(self.row(near, k, home, p));
        // Sitting lasts as long as it lasts: the seated row borrows from the generic
        // tail, not from the home's (mostly short) silences.
        let parent = if c.seated { Self::prior(k, p) } else { home };
        by_time.max(self.row(room, k, parent, p))
    }

    /// The calibrated level: the household's silences per day times it is the target
    /// number of false alerts per day.
    pub fn level(&self, p: &Params) -> f32 {
        let per_day = if self.rate_x16 == 0 {
            8.0
        } else {
            f32::from(self.rate_x16) / 16.0
        };
        (p.target_per_day / per_day.max(1.0)).clamp(1e-4, 0.5)
    }

    /// The length (minutes) at which the survival of context `c` falls to `level`,
    /// interpolated log-linearly between the counted lengths (None: not within them).
    fn length_at(&self, c: Context, level: f32, p: &Params) -> Option<u32> {
        let mut prev = (LEVEL_MIN[0] as f32, 1.0_f32);
        for (k, l) in LEVEL_MIN.iter().enumerate() {
            let s = self.survival(c, k, p).max(1e-6);
            if s <= level {
                if k == 0 {
                    return Some(*l);
                }
                let (l0, s0) = prev;
                let frac = ((s0.ln() - level.ln()) / (s0.ln() - s.ln()).max(1e-6)).clamp(0.0, 1.0);
                let t = (l0.ln() + frac * ((*l as f32).ln() - l0.ln())).exp();
                return Some(t.round() as u32);
            }
            prev = (*l as f32, s);
        }
        None
    }

    /// What is usual for context `c`: the 90th percentile and the alert limit (before
    /// the bounds and the defaults).
    pub fn usual(&self, c: Context, p: &Params) -> Usual {
        let last = *LEVEL_MIN.last().unwrap_or(&1358);
        Usual {
            p90_min: self.length_at(c, 0.1, p).unwrap_or(last),
            limit_min: self.length_at(c, self.level(p), p).unwrap_or(last),
            night: self.is_night(c.minute, p),
        }
    }

    /// The inactivity threshold in minutes for a silence of context `c`: where its
    /// survival falls below the calibrated level, within the bounds; before
    /// `learning_days`, never later than the default for the time of day (the model starts
    /// cautious, the default is what a new installation promises).
    pub fn inactivity_min(&self, c: Context, p: &Params) -> u32 {
        let learned = self
            .usual(c, p)
            .limit_min
            .clamp(p.min_inactivity_min, p.max_inactivity_min);
        if self.days < p.learning_days {
            let in_day = super::localtime::in_window(c.minute, p.day_window.0, p.day_window.1);
            let default = if in_day {
                p.day_default_min
            } else {
                p.night_default_min
            };
            learned.min(default)
        } else {
            learned
        }
    }

    /// Silences of at least 15 min per day (the average the level is calibrated on).
    pub fn silences_per_day(&self) -> f32 {
        f32::from(self.rate_x16) / 16.0
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

    fn ctx(minute: u16, room: RoomClass) -> Context {
        Context {
            minute,
            room,
            seated: false,
        }
    }

    /// `days` days; each day the silences `(start minute, minutes, room)`.
    fn live(days: i32, silences: &[(u16, i64, RoomClass)], p: &Params) -> Profile {
        let mut pr = Profile::default();
        for d in 0..days {
            pr.roll_to(d, p);
            pr.saw_activity();
            for (m, len, room) in silences {
                pr.learn_silence(ctx(*m, *room), *len, p);
            }
        }
        pr.roll_to(days, p);
        pr
    }

    #[test]
    fn before_learning_the_defaults_apply() {
        let pr = Profile::default();
        assert_eq!(
            pr.inactivity_min(ctx(10 * 60, RoomClass::Living), &p()),
            6 * 60
        );
        assert_eq!(
            pr.inactivity_min(ctx(23 * 60, RoomClass::Bedroom), &p()),
            12 * 60
        );
        assert_eq!(pr.wake_deadline_min(&p()), None);
        // Nothing seen: the generic tail alone would wait far longer than the default.
        assert!(pr.usual(ctx(10 * 60, RoomClass::Living), &p()).limit_min > 12 * 60);
    }

    /// A dense home: motion in every room, twenty short silences a day.
    fn dense(p: &Params) -> Profile {
        let day: Vec<(u16, i64, RoomClass)> = (0..20)
            .map(|i| {
                (
                    7 * 60 + i * 40,
                    15 + i64::from(i % 4) * 8,
                    RoomClass::Kitchen,
                )
            })
            .collect();
        live(10, &day, p)
    }

    #[test]
    fn a_dense_home_learns_short_daytime_limits() {
        let params = p();
        let pr = dense(&params);
        assert!(
            (19.0..=21.0).contains(&pr.silences_per_day()),
            "{}",
            pr.silences_per_day()
        );
        let t = pr.inactivity_min(ctx(10 * 60, RoomClass::Kitchen), &params);
        assert!(
            (90..=180).contains(&t),
            "dense home, 10:00 kitchen: {t} min"
        );
        // What it tells the caseworker: 9 in 10 silences end within about half an hour.
        let u = pr.usual(ctx(10 * 60, RoomClass::Kitchen), &params);
        assert!((30..=60).contains(&u.p90_min), "{u:?}");
    }

    #[test]
    fn a_sparse_home_with_long_normal_silences_gets_longer_limits() {
        let params = p();
        // Only contacts: four silences a day of 2–4 h.
        let day = [
            (8 * 60, 120, RoomClass::Kitchen),
            (10 * 60 + 30, 180, RoomClass::Kitchen),
            (14 * 60, 240, RoomClass::Kitchen),
            (18 * 60 + 30, 150, RoomClass::Kitchen),
        ];
        let pr = live(10, &day, &params);
        let sparse = pr.inactivity_min(ctx(10 * 60 + 30, RoomClass::Kitchen), &params);
        let dense = dense(&params).inactivity_min(ctx(10 * 60 + 30, RoomClass::Kitchen), &params);
        assert!(sparse > 240, "longer than any normal silence: {sparse}");
        assert!(sparse > dense + 120, "sparse {sparse} vs dense {dense}");
        // A room never seen borrows from the whole home, not from the generic tail.
        let elsewhere = pr.inactivity_min(ctx(10 * 60 + 30, RoomClass::Bathroom), &params);
        assert!(elsewhere > 240 && elsewhere < 14 * 60, "{elsewhere}");
    }

    #[test]
    fn the_learned_night_runs_from_bedtime_to_the_latest_getting_up() {
        let params = p();
        let mut pr = Profile::default();
        for d in 0..5 {
            pr.roll_to(d, &params);
            pr.learn_wake(3 * 60 + 30); // 07:30 (the day begins at 04:00)
            pr.learn_bedtime(23 * 60 + 10, 8 * 60);
            pr.learn_bedtime(14 * 60, 60); // a nap is not a night
        }
        assert_eq!(pr.sleep_period(&params), Some((22 * 60 + 40, 7 * 60 + 30)));
        assert!(pr.is_night(23 * 60, &params));
        assert!(pr.is_night(3 * 60, &params));
        assert!(!pr.is_night(7 * 60 + 45, &params));
        // 21:30 is outside the default day window but before this household's bedtime.
        assert!(!pr.is_night(21 * 60 + 30, &params));
    }

    #[test]
    fn in_the_first_week_the_default_is_the_longest_wait() {
        let params = p();
        // One day of 5-hour silences: the model, still mostly the generic tail, would wait
        // longer than 6 h, but a new installation promises the default.
        let pr = live(1, &[(10 * 60, 300, RoomClass::Living)], &params);
        assert!(pr.usual(ctx(10 * 60, RoomClass::Living), &params).limit_min > 6 * 60);
        assert_eq!(
            pr.inactivity_min(ctx(10 * 60, RoomClass::Living), &params),
            6 * 60
        );
        // Within the week, a home that shows short silences gets shorter limits at once.
        let pr = live(4, &[(10 * 60, 20, RoomClass::Living); 6], &params);
        let t = pr.inactivity_min(ctx(10 * 60, RoomClass::Living), &params);
        assert!(t < 6 * 60, "{t}");
        // After the learning days the model decides, never below what was seen.
        let pr = live(8, &[(10 * 60, 300, RoomClass::Living)], &params);
        assert!(pr.inactivity_min(ctx(10 * 60, RoomClass::Living), &params) > 300);
    }

    #[test]
    fn a_full_row_is_halved_so_recent_silences_weigh_most() {
        let params = p();
        let long = live(30, &[(10 * 60, 300, RoomClass::Living)], &params);
        let before = long.usual(ctx(10 * 60, RoomClass::Living), &params).p90_min;
        let mut pr = long.clone();
        for d in 30..90 {
            pr.roll_to(d, &params);
            pr.saw_activity();
            for _ in 0..3 {
                pr.learn_silence(ctx(10 * 60, RoomClass::Living), 20, &params);
            }
        }
        let after = pr.usual(ctx(10 * 60, RoomClass::Living), &params).p90_min;
        assert!(before >= 240 && after < 60, "{before} → {after}");
        assert!(
            pr.surv[SLOTS + 4][0] >= 100,
            "the row was halved, not emptied"
        );
    }

    #[test]
    fn the_model_stays_within_its_memory_budget() {
        // The whole learned routine, inline (no heap): the budget is 512 B.
        assert!(
            std::mem::size_of::<Profile>() <= 512,
            "{}",
            std::mem::size_of::<Profile>()
        );
        let blob = postcard::to_stdvec(&dense(&p())).unwrap();
        assert!(blob.len() <= 400, "{} bytes stored", blob.len());
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
