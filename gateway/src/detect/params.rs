//! Detection settings: the `[detect]` section (human units, `HH:MM` times) and the
//! compiled form the engine uses, plus per-household overrides.

use serde::{Deserialize, Serialize};

use super::localtime::parse_hhmm;

/// `[detect]` configuration. Every threshold has a default that needs no learning; the
/// learned routine replaces the inactivity and wake-up defaults after `learning_days`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Inactivity threshold before a routine is learned, for silences starting in the
    /// day window, in minutes.
    pub default_day_inactivity_min: u32,
    /// The same for silences starting outside the day window (evening and night).
    pub default_night_inactivity_min: u32,
    /// The day window for the defaults, `HH:MM`.
    pub day_window: [String; 2],
    /// Days of history before learned thresholds replace the defaults.
    pub learning_days: u16,
    /// Learned threshold = longest recent silence at that hour × factor + slack.
    pub threshold_factor: f32,
    /// Added to the learned threshold, in minutes.
    pub threshold_slack_min: u32,
    /// Lower and upper bound of any inactivity threshold, in minutes.
    pub inactivity_bounds_min: [u32; 2],
    /// A room's learned envelope is never below this share of the longest recent silence
    /// anywhere in the home within an hour, in % (a room with a sparse sensor learns
    /// slowly; a home with few sensors has long silences everywhere).
    pub home_floor_pct: u32,
    /// How much the longest recent stay on a seat or sofa mat (whatever the hour) counts
    /// towards the threshold while someone sits, in % (0: not at all).
    pub sitting_weight_pct: u32,
    /// Daily decay of the learned longest silences (0.99: a silence seen four weeks ago
    /// counts three quarters).
    pub decay_per_day: f32,
    /// Pre-alarm (warning) at this fraction of the threshold.
    pub prealarm_fraction: f32,
    /// Where a new day begins for wake-up purposes, `HH:MM` (the first activity after it
    /// is the day's getting-up).
    pub day_boundary: String,
    /// Margin added to the latest recent getting-up time, in minutes.
    pub wake_margin_min: u32,
    /// Hard cap of the missed-wake-up deadline, `HH:MM` (also the deadline before a
    /// routine is learned). Per household it can be set earlier.
    pub wake_cap: Option<String>,
    /// The night window for night exits, `HH:MM` (per household: the sleep window).
    pub night_window: [String; 2],
    /// A night exit alarms if nobody is back within this many minutes.
    pub night_exit_return_min: u32,
    /// Front door, then this many minutes without any activity: probably out.
    pub out_confirm_min: u32,
    /// Out longer than this (before an outing routine is learned), in minutes, raises
    /// "not back"; 0 disables the rule.
    pub not_back_default_min: u32,
    /// Stay in the bathroom longer than this, in minutes (homes with a bathroom sensor).
    pub bathroom_limit_min: u32,
    /// The pendant's "I'm OK" window in seconds, plus a grace for the message to arrive.
    pub fall_window_s: u32,
    /// Grace after two missed heartbeats before a device is called offline, in seconds.
    pub offline_grace_s: u32,
    /// Heartbeat interval assumed until a device reports its own, in seconds.
    pub default_heartbeat_s: u32,
    /// Low battery at or below this %; cleared at or above `battery_ok_pct`.
    pub low_battery_pct: u8,
    /// See `low_battery_pct`.
    pub battery_ok_pct: u8,
    /// A household whose activity sensors are offline to this fraction or more is not
    /// watched for inactivity (it cannot be seen); its devices are flagged instead.
    pub household_blind_fraction: f32,
    /// When this fraction of all devices is offline at once, the gateway is blind: one
    /// system alert instead of a device-offline storm.
    pub mass_offline_fraction: f32,
    /// After the gateway regains its broker (or starts), deadlines wait this long for
    /// devices to reconnect and replay their outboxes, in seconds.
    pub recovery_grace_s: u32,
    /// Broker lost for longer than this raises the gateway-blind alert, in seconds.
    pub blind_alert_after_s: u32,
    /// How often the detector's state is written to the store, in seconds.
    pub snapshot_interval_s: u32,
    /// Before a silence alert (its warning or the alert itself), the elder is asked on
    /// the home's help button or pendant for this long, in seconds: a press or any sign
    /// of life answers, and no alert follows; without an answer the alert comes this much
    /// later.
    /// Households without a help button or pendant are not asked. 0: never ask.
    pub check_in_s: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            default_day_inactivity_min: 6 * 60,
            default_night_inactivity_min: 12 * 60,
            day_window: ["06:00".into(), "21:00".into()],
            learning_days: 7,
            threshold_factor: 1.5,
            threshold_slack_min: 20,
            inactivity_bounds_min: [90, 14 * 60],
            home_floor_pct: 70,
            sitting_weight_pct: 100,
            decay_per_day: 0.99,
            prealarm_fraction: 0.9,
            day_boundary: "04:00".into(),
            wake_margin_min: 45,
            wake_cap: Some("13:00".into()),
            night_window: ["00:00".into(), "05:00".into()],
            night_exit_return_min: 30,
            out_confirm_min: 10,
            not_back_default_min: 12 * 60,
            bathroom_limit_min: 90,
            fall_window_s: 40,
            offline_grace_s: 120,
            default_heartbeat_s: 300,
            low_battery_pct: 15,
            battery_ok_pct: 25,
            household_blind_fraction: 0.5,
            mass_offline_fraction: 0.3,
            recovery_grace_s: 60,
            blind_alert_after_s: 30,
            snapshot_interval_s: 10,
            check_in_s: 300,
        }
    }
}

/// A time in the configuration is not `HH:MM`.
#[derive(Debug, thiserror::Error)]
#[error("[detect] {key}: {value:?} is not a time of day HH:MM")]
pub struct BadTime {
    key: &'static str,
    value: String,
}

/// The compiled settings (minutes and milliseconds).
#[derive(Debug, Clone)]
pub struct Params {
    pub(crate) day_default_min: u32,
    pub(crate) night_default_min: u32,
    pub(crate) day_window: (u16, u16),
    pub(crate) learning_days: u16,
    pub(crate) factor: f32,
    pub(crate) slack_min: u32,
    pub(crate) min_inactivity_min: u32,
    pub(crate) max_inactivity_min: u32,
    pub(crate) home_floor_pct: u32,
    pub(crate) sitting_pct: u32,
    pub(crate) decay: f32,
    pub(crate) prealarm: f32,
    pub(crate) day_boundary: u16,
    pub(crate) wake_margin_min: u32,
    pub(crate) wake_cap: Option<u16>,
    pub(crate) night_window: (u16, u16),
    pub(crate) night_return_ms: i64,
    pub(crate) out_confirm_ms: i64,
    pub(crate) not_back_default_min: u32,
    pub(crate) bathroom_limit_ms: i64,
    pub(crate) fall_window_ms: i64,
    pub(crate) offline_grace_ms: i64,
    pub(crate) default_heartbeat_s: u32,
    pub(crate) low_battery_pct: u8,
    pub(crate) battery_ok_pct: u8,
    pub(crate) household_blind_fraction: f32,
    pub(crate) mass_offline_fraction: f32,
    pub(crate) recovery_grace_ms: i64,
    pub(crate) blind_alert_after_ms: i64,
    pub(crate) check_in_ms: i64,
}

impl DetectConfig {
    /// Checks and compiles.
    pub fn compile(&self) -> Result<Params, BadTime> {
        let t = |key: &'static str, v: &str| {
            parse_hhmm(v).ok_or(BadTime {
                key,
                value: v.to_string(),
            })
        };
        Ok(Params {
            day_default_min: self.default_day_inactivity_min,
            night_default_min: self.default_night_inactivity_min,
            day_window: (
                t("day_window", &self.day_window[0])?,
                t("day_window", &self.day_window[1])?,
            ),
            learning_days: self.learning_days,
            factor: self.threshold_factor.max(1.0),
            slack_min: self.threshold_slack_min,
            min_inactivity_min: self.inactivity_bounds_min[0],
            max_inactivity_min: self.inactivity_bounds_min[1].max(self.inactivity_bounds_min[0]),
            home_floor_pct: self.home_floor_pct.min(100),
            sitting_pct: self.sitting_weight_pct.min(100),
            decay: self.decay_per_day.clamp(0.5, 1.0),
            prealarm: self.prealarm_fraction.clamp(0.1, 1.0),
            day_boundary: t("day_boundary", &self.day_boundary)?,
            wake_margin_min: self.wake_margin_min,
            wake_cap: match &self.wake_cap {
                Some(c) => Some(t("wake_cap", c)?),
                None => None,
            },
            night_window: (
                t("night_window", &self.night_window[0])?,
                t("night_window", &self.night_window[1])?,
            ),
            night_return_ms: i64::from(self.night_exit_return_min) * 60_000,
            out_confirm_ms: i64::from(self.out_confirm_min) * 60_000,
            not_back_default_min: self.not_back_default_min,
            bathroom_limit_ms: i64::from(self.bathroom_limit_min) * 60_000,
            fall_window_ms: i64::from(self.fall_window_s) * 1000,
            offline_grace_ms: i64::from(self.offline_grace_s) * 1000,
            default_heartbeat_s: self.default_heartbeat_s.max(5),
            low_battery_pct: self.low_battery_pct,
            battery_ok_pct: self.battery_ok_pct.max(self.low_battery_pct),
            household_blind_fraction: self.household_blind_fraction.clamp(0.01, 1.0),
            mass_offline_fraction: self.mass_offline_fraction.clamp(0.01, 1.0),
            recovery_grace_ms: i64::from(self.recovery_grace_s) * 1000,
            blind_alert_after_ms: i64::from(self.blind_alert_after_s) * 1000,
            // A device shows a check-in for at most 30 minutes.
            check_in_ms: i64::from(self.check_in_s.min(1800)) * 1000,
        })
    }
}

/// Per-household overrides, set by caseworkers (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdSettings {
    /// Hard cap of the missed-wake-up deadline, minutes after midnight.
    pub wake_cap_min: Option<u16>,
    /// Sleep window (night exits count inside it), minutes after midnight.
    pub sleep_window_min: Option<(u16, u16)>,
    /// Bathroom stay limit in minutes.
    pub bathroom_limit_min: Option<u16>,
    /// A fixed inactivity threshold in minutes instead of the learned one.
    pub inactivity_min: Option<u16>,
    /// Raise "not back" for long outings (default on).
    pub not_back: Option<bool>,
}
