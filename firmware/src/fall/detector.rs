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
#[cfg_attr(feature = "std", derive(serde::Serialize))]
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
    /// Depth of the free fall before the impact: `1 g − `the smallest magnitude within
    /// `velocity_window_ms` before it, mg (0 when it never dropped below 1 g); `None` when
    /// too many samples were missing.
    pub freefall_mg: Option<u16>,
    /// Mean change of the magnitude from one sample to the next while observed, mg: near
    /// 0 lying still, tens of mg for a person who moves; `None` when too many were
    /// missing.
    pub motion_mg: Option<u16>,
    /// Impacts merged into this candidate (a stumble then the fall, bounces): 1 or more.
    pub impacts: u8,
}

/// Why a candidate was judged not a fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
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
#[cfg_attr(feature = "std", derive(serde::Serialize))]
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

/// One impact: its first sample over the threshold and what preceded it.
#[derive(Debug, Clone, Copy)]
struct Impact {
    tick: u32,
    peak: u16,
    saturated: bool,
    velocity: Option<i32>,
    freefall: Option<u16>,
    /// Upright reference, from before this impact.
    reference: Option<[i32; 3]>,
}

impl Impact {
    /// Whether this impact looks more like the fall than `other`: a larger velocity
    /// before it (an unknown velocity counts as the smallest).
    fn beats(&self, other: &Impact) -> bool {
        match (self.velocity, other.velocity) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// A candidate fall: a cluster of impacts less than settle + observe apart. The
/// cluster is judged on its most fall-like impact (the one with the largest velocity
/// before it: the fall itself rather than a stumble before or a bounce after), and
/// observed after the latest one.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// The impact the cluster is judged on.
    best: Impact,
    /// Whether `best` is the latest impact (its peak is still being tracked).
    best_is_last: bool,
    /// Tick of the latest impact: settling and observing count from it.
    last: u32,
    impacts: u8,
}

#[derive(Debug, Clone, Copy)]
struct Observation {
    seen: u16,
    valid: u16,
    sum: [i32; 3],
    min: u16,
    max: u16,
    /// Σ |mag − previous mag| over consecutive valid samples, and how many.
    motion: u32,
    steps: u16,
    prev: Option<u16>,
}

impl Observation {
    const fn new() -> Self {
        Observation {
            seen: 0,
            valid: 0,
            sum: [0; 3],
            min: u16::MAX,
            max: 0,
            motion: 0,
            steps: 0,
            prev: None,
        }
    }

    fn add(&mut self, s: &Slot) {
        self.seen = self.seen.saturating_add(1);
        if !s.valid {
            self.prev = None;
            return;
        }
        self.valid += 1;
        self.sum[0] += i32::from(s.x);
        self.sum[1] += i32::from(s.y);
        self.sum[2] += i32::from(s.z);
        self.min = self.min.min(s.mag);
        self.max = self.max.max(s.mag);
        if let Some(p) = self.prev {
            self.motion += u32::from(p.abs_diff(s.mag));
            self.steps += 1;
        }
        self.prev = Some(s.mag);
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    /// Following a candidate: the peak window, settling, then observing.
    Active(Candidate, Observation),
}

/// The pendant's fall detector: a state machine over fixed-rate samples, fixed memory
/// (a history of [`HISTORY`] samples), integer arithmetic only.
///
/// 1. **Gate**: a sample's magnitude reaches `impact_mg`. At that moment the detector
///    takes, from its history, the *reference* posture (mean vector over
///    `reference_from_ms`…`reference_to_ms` before the impact), the *velocity* at
///    impact (the largest integral of `1 g − |a|` over a suffix of the
///    `velocity_window_ms` before it: free fall makes it grow, standing still keeps it
///    at zero) and the depth of the free fall. The peak is tracked for `peak_window_ms`.
/// 2. **Cluster**: a further impact before the decision (a stumble then the fall, a
///    bounce, rolling over, a train of jogging steps) joins the candidate; the candidate
///    is judged on its most fall-like impact — the one with the largest velocity before
///    it — so a bounce after the fall never replaces the fall's upright reference with
///    the fallen posture, and the observation starts again after the latest impact.
/// 3. **Settle**: `settle_ms` after the latest impact are ignored (bounce, roll).
/// 4. **Observe** for `observe_ms`: the mean vector (the new posture), the spread of the
///    magnitude (activity) and its mean sample-to-sample change (motion).
/// 5. **Decide** ([`judge`]): a fall *to lying* when the velocity reached
///    `min_velocity_mm_s` and the posture turned by at least `min_tilt_deg`; or a fall
///    *ending sitting or half-lying* when a real drop (`seated_velocity_mm_s`) ended in
///    a hard impact (`seated_impact_mg`) and a turn of at least `seated_min_tilt_deg`,
///    in a cluster of at most `seated_max_impacts`; in both cases the wearer then lies
///    or sits still (motion within `max_motion_mg`).
///
/// Missing samples (`None`: a lost FIFO batch, a failed read) are skipped by every
/// average; a criterion whose window lost more than half its samples (three quarters
/// for the observation) cannot be judged and does not veto a fall to lying — missing
/// data never hides a fall, the "I'm OK" window is there for the false alarms this may
/// cause (the second path needs its measurements). Saturated samples are taken at
/// their (lower-bound) value; the gate only needs them to exceed the threshold, which a
/// saturated axis does.
#[derive(Debug, Clone)]
pub struct FallDetector {
    cfg: Derived,
    ring: [Slot; HISTORY],
    head: usize,
    filled: usize,
    now: u32,
    phase: Phase,
}

// The MCU budget: the detector's whole state stays within 1 KB on every target (772
// bytes on a Cortex-M3/M4; a little more on a 64-bit host).
const _: () = assert!(core::mem::size_of::<FallDetector>() <= 1024);

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
        let phase = self.phase;
        match phase {
            Phase::Idle => {
                if impact {
                    self.phase = Phase::Active(self.start(now, slot), Observation::new());
                }
                None
            }
            Phase::Active(mut c, mut obs) => {
                let since_last = now.wrapping_sub(c.last);
                if impact && since_last >= u32::from(self.cfg.peak_window) {
                    // a new impact of the same cluster: observe again after it
                    let new = self.impact(now, slot);
                    c.last = now;
                    c.impacts = c.impacts.saturating_add(1);
                    c.best_is_last = new.beats(&c.best);
                    if c.best_is_last {
                        c.best = new;
                    }
                    self.phase = Phase::Active(c, Observation::new());
                    return None;
                }
                if since_last < u32::from(self.cfg.peak_window) && c.best_is_last && slot.valid {
                    c.best.peak = c.best.peak.max(slot.mag);
                    c.best.saturated |= slot.saturated;
                }
                if since_last >= u32::from(self.cfg.settle) {
                    obs.add(slot);
                    if obs.seen >= self.cfg.observe {
                        self.phase = Phase::Idle;
                        return Some(decide(&self.cfg, &c, &obs));
                    }
                }
                self.phase = Phase::Active(c, obs);
                None
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
            best: self.impact(now, slot),
            best_is_last: true,
            last: now,
            impacts: 1,
        }
    }

    fn impact(&self, now: u32, slot: &Slot) -> Impact {
        let (velocity, freefall) = self.velocity();
        Impact {
            tick: now,
            peak: slot.mag,
            saturated: slot.saturated,
            velocity,
            freefall,
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

    /// The velocity integral (mg·ticks) and the free-fall depth (mg) before now.
    fn velocity(&self) -> (Option<i32>, Option<u16>) {
        let window = usize::from(self.cfg.velocity_window);
        let mut acc = 0i32;
        let mut best = 0i32;
        let mut low = u16::MAX;
        let mut n = 0usize;
        for age in 1..=window {
            if let Some(s) = self.past(age).filter(|s| s.valid) {
                acc += 1000 - i32::from(s.mag);
                best = best.max(acc);
                low = low.min(s.mag);
                n += 1;
            }
        }
        if 2 * n >= window && n > 0 {
            (Some(best), Some(1000u16.saturating_sub(low)))
        } else {
            (None, None)
        }
    }
}

fn decide(cfg: &Derived, c: &Candidate, obs: &Observation) -> Decision {
    let judged = 4 * u32::from(obs.valid) >= u32::from(cfg.observe) && obs.valid > 0;
    let (tilt, activity, motion) = if judged {
        let n = i32::from(obs.valid);
        let mean = [obs.sum[0] / n, obs.sum[1] / n, obs.sum[2] / n];
        let motion = (obs.steps > 0)
            .then(|| u16::try_from(obs.motion / u32::from(obs.steps)).unwrap_or(u16::MAX));
        (
            c.best.reference.and_then(|r| angle_deg(r, mean)),
            Some(obs.max - obs.min),
            motion,
        )
    } else {
        (None, None, None)
    };
    let features = Features {
        impact_tick: c.best.tick,
        peak_mg: c.best.peak,
        saturated: c.best.saturated,
        velocity_mm_s: c.best.velocity.map(|v| cfg.velocity_mm_s(v)),
        tilt_deg: tilt,
        activity_mg: activity,
        freefall_mg: c.best.freefall,
        motion_mg: motion,
        impacts: c.impacts,
    };
    Decision {
        features,
        verdict: judge(&cfg.rule, &features),
    }
}

/// The decision rule on a candidate's measurements, in physical units (the detector's
/// step 5). A criterion whose measurement is missing does not veto a fall to lying; the
/// path for falls that end sitting needs all of its measurements.
pub fn judge(rule: &FallConfig, f: &Features) -> Verdict {
    let too_slow = f
        .velocity_mm_s
        .is_some_and(|v| v < i32::from(rule.min_velocity_mm_s));
    let upright = f.tilt_deg.is_some_and(|t| t < rule.min_tilt_deg);
    let lying = !too_slow && !upright;
    let seated = rule.seated_velocity_mm_s > 0
        && f.velocity_mm_s
            .is_some_and(|v| v >= i32::from(rule.seated_velocity_mm_s))
        && f.peak_mg >= rule.seated_impact_mg
        && f.tilt_deg.is_some_and(|t| t >= rule.seated_min_tilt_deg)
        && f.impacts <= rule.seated_max_impacts;
    let moving = f.motion_mg.is_some_and(|m| m > rule.max_motion_mg);
    if !lying && !seated {
        Verdict::NotFall(if too_slow {
            Reason::TooSlow
        } else {
            Reason::Upright
        })
    } else if moving {
        Verdict::NotFall(Reason::Moving)
    } else {
        Verdict::Fall
    }
}
