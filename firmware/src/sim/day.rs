//! The day generator: where the resident is, minute by minute (pure and deterministic).
//!
//! A [`DayPlan`] runs from the resident's wake-up on a local day to the next wake-up,
//! as contiguous [`Segment`]s: getting up in the bedroom, the bathroom, breakfast in
//! the kitchen; mornings and afternoons at home (mostly the living room, with kitchen,
//! bathroom and bedroom visits) or out (market, park, visits: the door opens and
//! closes, then silence); lunch and dinner in the kitchen, an after-lunch nap for some;
//! the evening; the bathroom and bedroom before sleep; sleep with occasional night
//! bathroom visits. Wake and bed times vary from day to day around the resident's own
//! times, later at weekends. The same seed, household and day always give the same plan.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::calendar::{Day, HOUR_MS, MINUTE_MS, day_start_ms, is_weekend};
use super::population::{Household, Room};

/// Where the resident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In bed, asleep (or napping).
    Asleep,
    /// Awake in a room.
    Room(Room),
    /// Out of the flat.
    Out,
}

/// A stretch of time in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Start, Unix ms.
    pub start_ms: u64,
    /// End (exclusive), Unix ms.
    pub end_ms: u64,
    /// Where.
    pub place: Place,
}

/// One day of the resident, from wake-up to the next wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    /// The local day.
    pub day: Day,
    /// Getting up, Unix ms.
    pub wake_ms: u64,
    /// Falling asleep at night, Unix ms.
    pub sleep_ms: u64,
    /// Getting up the next day (the end of the plan), Unix ms.
    pub next_wake_ms: u64,
    /// Contiguous segments from `wake_ms` to `next_wake_ms`.
    pub segments: Vec<Segment>,
}

/// Independent random streams, so that changing one part of the generator does not
/// shift the others.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Wake = 1,
    Bed = 2,
    Plan = 3,
    Stimuli = 4,
    Devices = 5,
}

/// A random generator for (seed, household, day, stream).
pub(crate) fn rng_for(seed: u64, home: usize, day: Day, stream: Stream) -> SmallRng {
    let mut x = seed;
    for v in [home as u64, day as u64, stream as u64] {
        x = splitmix(x ^ splitmix(v));
    }
    SmallRng::seed_from_u64(x)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Roughly normal noise with standard deviation 1 (sum of three uniforms).
fn noise(rng: &mut SmallRng) -> f64 {
    (0..3).map(|_| rng.random_range(-1.0..1.0)).sum::<f64>()
}

fn minutes(rng: &mut SmallRng, range: core::ops::Range<u64>) -> u64 {
    rng.random_range(range) * MINUTE_MS + rng.random_range(0..MINUTE_MS)
}

/// When the resident gets up on `day`, Unix ms (between 04:00 and 11:30).
pub fn wake_ms(home: &Household, home_idx: usize, seed: u64, day: Day) -> u64 {
    let r = &home.rhythm;
    let mut rng = rng_for(seed, home_idx, day, Stream::Wake);
    let shift = if is_weekend(day) {
        r.weekend_shift_min
    } else {
        0
    };
    let m = f64::from(r.wake_min + shift) + noise(&mut rng) * f64::from(r.wake_spread_min);
    let m = m.clamp(240.0, 690.0);
    day_start_ms(day) + (m * MINUTE_MS as f64) as u64
}

/// When the resident means to fall asleep after `day`, Unix ms (20:00 to 01:30).
fn bed_target_ms(home: &Household, home_idx: usize, seed: u64, day: Day) -> u64 {
    let r = &home.rhythm;
    let mut rng = rng_for(seed, home_idx, day, Stream::Bed);
    let shift = if is_weekend(day) {
        r.weekend_shift_min / 2
    } else {
        0
    };
    let m = f64::from(r.bed_min + shift) + noise(&mut rng) * 20.0;
    let m = m.clamp(20.0 * 60.0, 25.5 * 60.0);
    day_start_ms(day) + (m * MINUTE_MS as f64) as u64
}

struct Builder {
    segments: Vec<Segment>,
    t: u64,
    last_bathroom: u64,
}

impl Builder {
    fn push(&mut self, place: Place, dur: u64) {
        let dur = dur.max(MINUTE_MS);
        if place == Place::Room(Room::Bathroom) {
            self.last_bathroom = self.t;
        }
        match self.segments.last_mut() {
            Some(last) if last.place == place => last.end_ms += dur,
            _ => self.segments.push(Segment {
                start_ms: self.t,
                end_ms: self.t + dur,
                place,
            }),
        }
        self.t += dur;
    }

    /// At home and awake until `until`: mostly the living room.
    fn fill(&mut self, rng: &mut SmallRng, until: u64) {
        while self.t + 5 * MINUTE_MS < until {
            let r: f64 = rng.random();
            let since_bathroom = self.t.saturating_sub(self.last_bathroom);
            let (place, dur) = if since_bathroom > 2 * HOUR_MS && r < 0.3 {
                (Room::Bathroom, minutes(rng, 4..10))
            } else if r < 0.15 {
                (Room::Kitchen, minutes(rng, 5..15))
            } else if r < 0.25 {
                (Room::Bedroom, minutes(rng, 5..20))
            } else {
                (Room::LivingRoom, minutes(rng, 20..80))
            };
            self.push(Place::Room(place), dur.min(until - self.t));
        }
        if self.t < until {
            self.push(Place::Room(Room::LivingRoom), until - self.t);
        }
    }
}

/// The resident's day `day`: from their wake-up that day to the next.
pub fn plan_day(home: &Household, home_idx: usize, seed: u64, day: Day) -> DayPlan {
    let r = &home.rhythm;
    let wake = wake_ms(home, home_idx, seed, day);
    let next_wake = wake_ms(home, home_idx, seed, day + 1);
    let mut rng = rng_for(seed, home_idx, day, Stream::Plan);
    let midnight = day_start_ms(day);
    let mut b = Builder {
        segments: Vec::new(),
        t: wake,
        last_bathroom: wake,
    };

    // Getting up.
    b.push(Place::Room(Room::Bedroom), minutes(&mut rng, 4..12));
    b.push(Place::Room(Room::Bathroom), minutes(&mut rng, 6..15));
    b.push(Place::Room(Room::Kitchen), minutes(&mut rng, 20..40));

    let p_morning = (r.outings_per_day * 0.6).min(0.9);
    let p_afternoon = (r.outings_per_day * 0.4).min(0.9);
    let weekend = is_weekend(day);

    // Morning: market or a walk for some.
    if rng.random_bool(p_morning) {
        let leave = b.t + minutes(&mut rng, 10..40);
        b.fill(&mut rng, leave);
        b.push(Place::Out, minutes(&mut rng, 40..150));
    }

    // Lunch.
    let lunch = (midnight + 11 * HOUR_MS + minutes(&mut rng, 0..60)).max(b.t);
    b.fill(&mut rng, lunch);
    b.push(Place::Room(Room::Kitchen), minutes(&mut rng, 30..60));
    if r.naps && rng.random_bool(0.85) {
        b.push(Place::Room(Room::Bedroom), minutes(&mut rng, 2..5));
        b.push(Place::Asleep, minutes(&mut rng, 30..90));
        b.push(Place::Room(Room::Bedroom), minutes(&mut rng, 2..5));
    }

    // Afternoon: an outing for some (longer at weekends: family).
    if rng.random_bool(p_afternoon) {
        let leave = b.t + minutes(&mut rng, 20..90);
        b.fill(&mut rng, leave);
        let dur = if weekend {
            minutes(&mut rng, 90..240)
        } else {
            minutes(&mut rng, 45..150)
        };
        b.push(Place::Out, dur);
    }

    // Dinner, evening, bed.
    let dinner = (midnight + 17 * HOUR_MS + minutes(&mut rng, 0..75)).max(b.t);
    b.fill(&mut rng, dinner);
    b.push(Place::Room(Room::Kitchen), minutes(&mut rng, 40..70));
    let bed = bed_target_ms(home, home_idx, seed, day)
        .min(next_wake.saturating_sub(5 * HOUR_MS))
        .max(b.t + HOUR_MS);
    b.fill(&mut rng, bed.saturating_sub(20 * MINUTE_MS));
    b.push(Place::Room(Room::Bathroom), minutes(&mut rng, 6..12));
    b.push(Place::Room(Room::Bedroom), minutes(&mut rng, 4..10));
    let sleep = b.t;

    // The night, with bathroom visits.
    let visits = {
        let mean = r.night_visits;
        let mut n = 0;
        for _ in 0..3 {
            if rng.random_bool((mean / 3.0).clamp(0.0, 1.0)) {
                n += 1;
            }
        }
        n
    };
    let night = next_wake.saturating_sub(sleep);
    let mut times: Vec<u64> = (0..visits)
        .filter(|_| night > 3 * HOUR_MS)
        .map(|_| sleep + HOUR_MS + rng.random_range(0..night - 2 * HOUR_MS))
        .collect();
    times.sort_unstable();
    for at in times {
        if at < b.t + 20 * MINUTE_MS || at + 20 * MINUTE_MS > next_wake {
            continue;
        }
        b.push(Place::Asleep, at - b.t);
        b.push(Place::Room(Room::Bedroom), minutes(&mut rng, 1..2));
        b.push(Place::Room(Room::Bathroom), minutes(&mut rng, 3..8));
        b.push(Place::Room(Room::Bedroom), minutes(&mut rng, 1..2));
    }
    if b.t < next_wake {
        b.push(Place::Asleep, next_wake - b.t);
    }
    // Never run past the next wake-up (a very short night after a long day).
    b.segments.retain(|s| s.start_ms < next_wake);
    if let Some(last) = b.segments.last_mut() {
        last.end_ms = next_wake;
    }

    DayPlan {
        day,
        wake_ms: wake,
        sleep_ms: sleep.min(next_wake),
        next_wake_ms: next_wake,
        segments: b.segments,
    }
}

/// The plan whose span contains `unix_ms`.
pub fn plan_at(home: &Household, home_idx: usize, seed: u64, unix_ms: u64) -> DayPlan {
    let day = super::calendar::day_of(unix_ms);
    if unix_ms < wake_ms(home, home_idx, seed, day) {
        plan_day(home, home_idx, seed, day - 1)
    } else {
        plan_day(home, home_idx, seed, day)
    }
}
