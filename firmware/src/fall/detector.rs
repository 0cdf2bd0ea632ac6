//! The fall detector: impact → settle → observe posture and stillness → decide.

use super::HISTORY;
use super::config::{ConfigError, Derived, FallConfig};
use super::math::angle_deg;
use crate::driver::Acceleration;

/// One past sample kept for the reference posture and the velocity estimate.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    x: i16,
    y: i16,
    z: i16,
    mag: u16,
    valid: bool,
    saturated: bool,
}

impl Slot {
    fn from_sample(sample: Option<Acceleration>) -> Slot {
        match sample {
            Some(a) => Slot {
                x: a.x_mg,
                y: a.y_mg,
                z: a.z_mg,
                mag: a.magnitude_mg(),
                valid: true,
                saturated: a.saturated,
            },
            None => Slot::default(),
        }
    }
}

/// What the detector measured about one candidate fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Tick (sample index since the detector started) of the first sample over the
    /// impact threshold.
    pub impact_tick: u32,
    /// Peak magnitude of the impact, mg. A lower bound when `saturated`.
    pub peak_mg: u16,
    /// Whether an impact sample sat at the sensor's full scale.
    pub saturated: bool,
    /// Downward velocity at impact, mm/s; `None` when too many samples were missing.
    pub velocity_mm_s: Option<i32>,
    /// Orientation change between before and after, degrees; `None` when the reference
    /// or the observation had too many missing samples.
    pub tilt_deg: Option<u8>,
    /// Spread of the magnitude while observed, mg; `None` when too many were missing.
    pub activity_mg: Option<u16>,
}

/// Why a candidate was judged not a fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The body did not drop fast enough before the impact (sitting down, a stamp).
    TooSlow,
    /// The pendant's orientation did not change enough (still upright).
    Upright,
    /// The wearer kept moving after the impact (got up, walked or jogged on).
    Moving,
}

/// The verdict on one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A fall: raise the alarm.
    Fall,
    /// Not a fall, and why (the first failed criterion).
    NotFall(Reason),
}

/// A decided candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The measurements.
    pub features: Features,
    /// The verdict.
    pub verdict: Verdict,
}

impl Decision {
    /// Whether the verdict is [`Verdict::Fall`].
    pub fn is_fall(&self) -> bool {
        self.verdict == Verdict::Fall
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    start: u32,
    peak: u16,
    saturated: bool,
    velocity: Option<i32>,
    reference: Option<[i32; 3]>,
}

#[derive(Debug, Clone, Copy)]
struct Observation {
    seen: u16,
    valid: u16,
    sum: [i32; 3],
    min: u16,
    max: u16,
}

impl Observation {
    const fn new() -> Self {
        Observation {
            seen: 0,
            valid: 0,
            sum: [0; 3],
            min: u16::MAX,
            max: 0,
        }
    }

    fn add(&mut self, s: &Slot) {
        self.seen = self.seen.saturating_add(1);
        if !s.valid {
            return;
        }
        self.valid += 1;
        self.sum[0] += i32::from(s.x);
        self.sum[1] += i32::from(s.y);
        self.sum[2] += i32::from(s.z);
        self.min = self.min.min(s.mag);
        self.max = self.max.max(s.mag);
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    Impact(Candidate),
    Observe(Candidate, Observation),
}

/// The pendant's fall detector: a state machine over fixed-rate samples, fixed memory
/// (a history of [`HISTORY`] samples: 728 bytes in all on a Cortex-M), integer arithmetic only.
///
/// 1. **Impact**: a sample's magnitude reaches `impact_mg`. At that moment the detector
///    takes, from its history, the *reference* posture (mean vector over
///    `reference_from_ms`…`reference_to_ms` before the impact) and the *velocity* at
///    impact (the largest integral of `1 g − |a|` over a suffix of the
///    `velocity_window_ms` before it: free fall makes it grow, standing still keeps it
///    at zero). The peak is tracked for `peak_window_ms`.
/// 2. **Settle**: `settle_ms` after the impact are ignored (bounce, roll).
/// 3. **Observe** for `observe_ms`: the mean vector (the new posture) and the spread of
///    the magnitude (activity). A new impact while observing restarts at step 1.
/// 4. **Decide**: a fall when the velocity reached `min_velocity_mm_s`, the posture
///    turned by at least `min_tilt_deg`, and the activity stayed within
///    `max_activity_mg`.
///
/// Missing samples (`None`: a lost FIFO batch, a failed read) are skipped by every
/// average; a criterion whose window lost more than half its samples (three quarters
/// for the observation) cannot be judged and does not veto the fall — missing data never
/// hides a fall, the "I'm OK" window is there for the false alarms this may cause.
/// Saturated samples are taken at their (lower-bound) value; the impact test only needs
/// them to exceed the threshold, which a saturated axis does.
#[derive(Debug, Clone)]
pub struct FallDetector {
    cfg: Derived,
    ring: [Slot; HISTORY],
    head: usize,
    filled: usize,
    now: u32,
    phase: Phase,
}

impl FallDetector {
    /// A detector with `config`.
    pub fn new(config: &FallConfig) -> Result<Self, ConfigError> {
        Ok(FallDetector {
            cfg: config.derive()?,
            ring: [Slot::default(); HISTORY],
            head: 0,
            filled: 0,
            now: 0,
            phase: Phase::Idle,
        })
    }

    /// Samples seen so far (including missing ones).
    pub fn ticks(&self) -> u32 {
        self.now
    }

    /// Whether a candidate fall is being followed (impact seen, not yet decided).
    pub fn busy(&self) -> bool {
        !matches!(self.phase, Phase::Idle)
    }

    /// Forgets the history and any candidate (after the wearer took the pendant off).
    pub fn reset(&mut self) {
        self.ring = [Slot::default(); HISTORY];
        self.head = 0;
        self.filled = 0;
        self.phase = Phase::Idle;
    }

    /// Feeds one sample period: `Some` sample, or `None` when the sample is missing.
    /// Returns the decision on a candidate when one is reached.
    pub fn push(&mut self, sample: Option<Acceleration>) -> Option<Decision> {
        let now = self.now;
        self.now = self.now.wrapping_add(1);
        let slot = Slot::from_sample(sample);
        let decision = self.step(now, &slot);
        self.ring[self.head] = slot;
        self.head = (self.head + 1) % HISTORY;
        self.filled = (self.filled + 1).min(HISTORY);
        decision
    }

    fn step(&mut self, now: u32, slot: &Slot) -> Option<Decision> {
        let impact = slot.valid && slot.mag >= self.cfg.impact_mg;
        match &mut self.phase {
            Phase::Idle => {
                if impact {
                    self.phase = Phase::Impact(self.start(now, slot));
                }
                None
            }
            Phase::Impact(c) => {
                let age = now.wrapping_sub(c.start);
                if age < u32::from(self.cfg.peak_window) && slot.valid {
                    c.peak = c.peak.max(slot.mag);
                    c.saturated |= slot.saturated;
                }
                if age >= u32::from(self.cfg.settle) {
                    let mut obs = Observation::new();
                    obs.add(slot);
                    self.phase = Phase::Observe(*c, obs);
                }
                None
            }
            Phase::Observe(c, obs) => {
                if impact {
                    self.phase = Phase::Impact(self.start(now, slot));
                    return None;
                }
                obs.add(slot);
                if obs.seen < self.cfg.observe {
                    return None;
                }
                let decision = decide(&self.cfg, c, obs);
                self.phase = Phase::Idle;
                Some(decision)
            }
        }
    }

    /// The slot `age` samples ago (1 = the previous one), if it was ever written.
    fn past(&self, age: usize) -> Option<&Slot> {
        if age == 0 || age > self.filled {
            return None;
        }
        self.ring.get((self.head + HISTORY - age) % HISTORY)
    }

    fn start(&self, now: u32, slot: &Slot) -> Candidate {
        Candidate {
            start: now,
            peak: slot.mag,
            saturated: slot.saturated,
            velocity: self.velocity(),
            reference: self.reference(),
        }
    }

    fn reference(&self) -> Option<[i32; 3]> {
        let from = usize::from(self.cfg.reference_from);
        let to = usize::from(self.cfg.reference_to);
        let mut sum = [0i32; 3];
        let mut n = 0i32;
        for age in (to + 1)..=from {
            if let Some(s) = self.past(age).filter(|s| s.valid) {
                sum[0] += i32::from(s.x);
                sum[1] += i32::from(s.y);
                sum[2] += i32::from(s.z);
                n += 1;
            }
        }
        let window = (from - to) as i32;
        (n > 0 && 2 * n >= window).then(|| [sum[0] / n, sum[1] / n, sum[2] / n])
    }

    fn velocity(&self) -> Option<i32> {
        let window = usize::from(self.cfg.velocity_window);
        let mut acc = 0i32;
        let mut best = 0i32;
        let mut n = 0usize;
        for age in 1..=window {
            if let Some(s) = self.past(age).filter(|s| s.valid) {
                acc += 1000 - i32::from(s.mag);
                best = best.max(acc);
                n += 1;
            }
        }
        (2 * n >= window).then_some(best)
    }
}

fn decide(cfg: &Derived, c: &Candidate, obs: &Observation) -> Decision {
    let judged = 4 * u32::from(obs.valid) >= u32::from(cfg.observe) && obs.valid > 0;
    let (tilt, activity) = if judged {
        let n = i32::from(obs.valid);
        let mean = [obs.sum[0] / n, obs.sum[1] / n, obs.sum[2] / n];
        (
            c.reference.and_then(|r| angle_deg(r, mean)),
            Some(obs.max - obs.min),
        )
    } else {
        (None, None)
    };
    let features = Features {
        impact_tick: c.start,
        peak_mg: c.peak,
        saturated: c.saturated,
        velocity_mm_s: c.velocity.map(|v| cfg.velocity_mm_s(v)),
        tilt_deg: tilt,
        activity_mg: activity,
    };
    let verdict = if c.velocity.is_some_and(|v| v < cfg.min_velocity_mg_ticks) {
        Verdict::NotFall(Reason::TooSlow)
    } else if tilt.is_some_and(|t| t < cfg.min_tilt_deg) {
        Verdict::NotFall(Reason::Upright)
    } else if activity.is_some_and(|a| a > cfg.max_activity_mg) {
        Verdict::NotFall(Reason::Moving)
    } else {
        Verdict::Fall
    };
    Decision { features, verdict }
}
