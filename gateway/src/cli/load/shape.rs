//! The rate of events over time: flat, or shaped like a real day from the simulated
//! homes' daily rhythms (`anxin_firmware::sim::day`): how many residents are awake at
//! home in each minute of the local day, over a sample of homes and a week of days.
//!
//! The schedule is open loop: [`Schedule::due`] says how many messages should have
//! been sent `t` seconds into the run, whatever the broker and the gateway do.

use anxin_firmware::sim::calendar::{MINUTE_MS, day_start_ms, days_from_civil};
use anxin_firmware::sim::day::{Place, plan_day};
use anxin_firmware::sim::population;

/// Minutes in a day.
const MINUTES: usize = 1440;

/// Events per minute of the day relative to the day's mean (mean 1.0), from `homes`
/// simulated homes over seven days.
pub fn day_profile(homes: usize) -> Vec<f64> {
    let pop = population(homes.clamp(1, 2000), 7);
    let first = days_from_civil(2026, 3, 2);
    let mut awake = vec![0.0f64; MINUTES];
    for (i, home) in pop.households.iter().enumerate() {
        for day in first..first + 7 {
            let plan = plan_day(home, i, pop.seed, day);
            let base = day_start_ms(day);
            for seg in &plan.segments {
                if !matches!(seg.place, Place::Room(_)) {
                    continue;
                }
                let mut t = seg.start_ms;
                while t < seg.end_ms {
                    let m = (t.saturating_sub(base) / MINUTE_MS) as usize % MINUTES;
                    awake[m] += 1.0;
                    t += MINUTE_MS;
                }
            }
        }
    }
    // A floor: sensors still see night visits and a quiet home is never fully silent.
    let floor = awake.iter().cloned().fold(0.0, f64::max) * 0.03;
    for a in &mut awake {
        *a += floor;
    }
    let mean = awake.iter().sum::<f64>() / MINUTES as f64;
    awake
        .iter()
        .map(|a| a / mean.max(f64::MIN_POSITIVE))
        .collect()
}

/// How many messages are due by a time into the run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Messages per second in each whole second of the run.
    per_second: Vec<f64>,
    /// Messages due at the start of each second.
    cumulative: Vec<f64>,
}

impl Schedule {
    /// `rate` per second for `seconds`.
    pub fn flat(rate: f64, seconds: u64) -> Schedule {
        Self::from_per_second(vec![rate; seconds.max(1) as usize])
    }

    /// A compressed day: the run's `seconds` cover `day_seconds` of a day that starts at
    /// `start_minute` (local), with a mean of `rate` per second.
    pub fn day(
        rate: f64,
        seconds: u64,
        day_seconds: f64,
        start_minute: f64,
        profile: &[f64],
    ) -> Schedule {
        let rates = (0..seconds.max(1))
            .map(|s| {
                let m = start_minute + (s as f64 + 0.5) / day_seconds.max(1.0) * MINUTES as f64;
                let idx = (m.rem_euclid(MINUTES as f64)) as usize % MINUTES;
                rate * profile.get(idx).copied().unwrap_or(1.0)
            })
            .collect();
        Self::from_per_second(rates)
    }

    /// Messages per second, second by second.
    pub fn from_per_second(per_second: Vec<f64>) -> Schedule {
        let mut cumulative = Vec::with_capacity(per_second.len() + 1);
        let mut acc = 0.0;
        for r in &per_second {
            cumulative.push(acc);
            acc += r;
        }
        cumulative.push(acc);
        Schedule {
            per_second,
            cumulative,
        }
    }

    /// Messages due `t` seconds into the run.
    pub fn due(&self, t: f64) -> u64 {
        if t <= 0.0 {
            return 0;
        }
        let s = t.floor() as usize;
        if s >= self.per_second.len() {
            return self.total();
        }
        (self.cumulative[s] + self.per_second[s] * (t - s as f64)) as u64
    }

    /// Every message of the run.
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0.0) as u64
    }

    /// Length in seconds.
    pub fn seconds(&self) -> u64 {
        self.per_second.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_schedule_is_due_linearly() {
        let s = Schedule::flat(1000.0, 10);
        assert_eq!(s.due(0.5), 500);
        assert_eq!(s.due(9.999), 9999);
        assert_eq!(s.due(30.0), 10_000);
        assert_eq!(s.total(), 10_000);
    }

    #[test]
    fn the_day_profile_is_busier_by_day_than_at_night() {
        let p = day_profile(200);
        assert_eq!(p.len(), MINUTES);
        let mean = p.iter().sum::<f64>() / MINUTES as f64;
        assert!((mean - 1.0).abs() < 1e-9);
        // 03:00 against 10:00 local.
        assert!(
            p[3 * 60] * 3.0 < p[10 * 60],
            "{} vs {}",
            p[3 * 60],
            p[10 * 60]
        );
    }
}
