//! Detector parameters, in physical units, and their conversion to ticks.

use super::HISTORY;

/// Parameters of [`super::FallDetector`]. Times are milliseconds, accelerations milli-g.
///
/// The defaults ([`FallConfig::PENDANT`]): the impact gate, the tilt and the velocity
/// are what `fall-eval --select` chooses on every shared UMAFall subject, chest and
/// waist together (20 Hz); the other values are fixed a priori. `docs/detection.md`
/// ("Falls") gives the leave-one-subject-out figures that estimate how they do on people
/// not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct FallConfig {
    /// Time between two samples (the accelerometer's output data rate).
    pub period_ms: u16,
    /// The cheap gate: a sample whose magnitude reaches this starts (or extends) a
    /// candidate fall.
    pub impact_mg: u16,
    /// How long after the first sample over `impact_mg` the peak is still tracked.
    pub peak_window_ms: u16,
    /// Time after the latest impact that is ignored (bounces, rolling) before observing.
    pub settle_ms: u16,
    /// How long the wearer's posture and movement are observed after settling.
    pub observe_ms: u16,
    /// Start of the window, before the impact, that gives the upright reference posture.
    pub reference_from_ms: u16,
    /// End of that window, before the impact (the fall itself is excluded).
    pub reference_to_ms: u16,
    /// Window before the impact searched for the fall's downward velocity.
    pub velocity_window_ms: u16,
    /// A fall to lying: smallest downward velocity at impact, in mm/s, integrated from
    /// `1 g − |a|`.
    pub min_velocity_mm_s: u16,
    /// A fall to lying: smallest change of the pendant's orientation between the
    /// reference and the observation, in degrees (0–180).
    pub min_tilt_deg: u8,
    /// Largest mean change of the magnitude from one sample to the next while observed
    /// (mg): above it the wearer is moving (got up, walks on), not lying still.
    pub max_motion_mg: u16,
    /// A fall that does not end lying (sitting or half-lying on the floor, against a
    /// wall): smallest velocity at impact, mm/s — a real drop, far more than sitting down
    /// on a chair, however hard. 0 turns this second path off.
    pub seated_velocity_mm_s: u16,
    /// The same path: smallest peak of the impact, mg.
    pub seated_impact_mg: u16,
    /// The same path: smallest change of orientation, degrees (the trunk leans back,
    /// forward or sideways after such a fall; an upright trunk is not enough).
    pub seated_min_tilt_deg: u8,
    /// The same path: most impacts in the cluster (hopping, jogging and stairs are long
    /// trains of impacts; a fall is one to a few).
    pub seated_max_impacts: u8,
}

impl FallConfig {
    /// Shipped parameters for a pendant (see the type's documentation).
    pub const PENDANT: FallConfig = FallConfig {
        period_ms: 50,
        impact_mg: 1800,
        peak_window_ms: 400,
        settle_ms: 1000,
        observe_ms: 2000,
        reference_from_ms: 2000,
        reference_to_ms: 500,
        velocity_window_ms: 1000,
        min_velocity_mm_s: 250,
        min_tilt_deg: 55,
        max_motion_mg: 150,
        seated_velocity_mm_s: 1500,
        seated_impact_mg: 2500,
        seated_min_tilt_deg: 30,
        seated_max_impacts: 3,
    };

    /// The same parameters at another sample period.
    pub const fn with_period_ms(mut self, period_ms: u16) -> Self {
        self.period_ms = period_ms;
        self
    }

    /// Checks the parameters and converts them to ticks of `period_ms`.
    pub fn derive(&self) -> Result<Derived, ConfigError> {
        if self.period_ms == 0 {
            return Err(ConfigError::ZeroPeriod);
        }
        let ticks = |ms: u16| -> u16 { ms.div_ceil(self.period_ms) };
        let reference_from = ticks(self.reference_from_ms);
        let reference_to = ticks(self.reference_to_ms);
        let velocity_window = ticks(self.velocity_window_ms);
        if usize::from(reference_from) > HISTORY || usize::from(velocity_window) > HISTORY {
            return Err(ConfigError::WindowTooLong);
        }
        if reference_from <= reference_to {
            return Err(ConfigError::EmptyReference);
        }
        let observe = ticks(self.observe_ms);
        if observe < 2 {
            return Err(ConfigError::ObservationTooShort);
        }
        if self.min_tilt_deg > 180 || self.seated_min_tilt_deg > 180 {
            return Err(ConfigError::TiltOutOfRange);
        }
        Ok(Derived {
            impact_mg: self.impact_mg,
            peak_window: ticks(self.peak_window_ms).max(1),
            settle: ticks(self.settle_ms).max(ticks(self.peak_window_ms)).max(1),
            observe,
            reference_from,
            reference_to,
            velocity_window,
            period_ms: self.period_ms,
            rule: *self,
        })
    }
}

impl Default for FallConfig {
    fn default() -> Self {
        FallConfig::PENDANT
    }
}

/// Why a [`FallConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `period_ms` is 0.
    ZeroPeriod,
    /// The reference or velocity window needs more than the detector's history of
    /// [`HISTORY`] samples at this period.
    WindowTooLong,
    /// `reference_from_ms` is not before `reference_to_ms`.
    EmptyReference,
    /// The observation spans fewer than two samples.
    ObservationTooShort,
    /// `min_tilt_deg` or `seated_min_tilt_deg` is above 180.
    TiltOutOfRange,
}

/// Parameters converted to ticks (samples), as the detector uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub(crate) impact_mg: u16,
    pub(crate) peak_window: u16,
    pub(crate) settle: u16,
    pub(crate) observe: u16,
    pub(crate) reference_from: u16,
    pub(crate) reference_to: u16,
    pub(crate) velocity_window: u16,
    pub(crate) period_ms: u16,
    /// The decision thresholds, in physical units ([`super::detector::judge`]).
    pub(crate) rule: FallConfig,
}

impl Derived {
    /// Converts a velocity integral in mg·ticks to mm/s.
    pub(crate) fn velocity_mm_s(&self, mg_ticks: i32) -> i32 {
        // v = Σ(1000 − |a|) [mg] × period [ms] × 9.80665e-6 [m/s per mg·ms] → in mm/s:
        // v_mm_s = Σ × period_ms × 981 / 100_000.
        let v = i64::from(mg_ticks) * i64::from(self.period_ms) * 981 / 100_000;
        v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}
