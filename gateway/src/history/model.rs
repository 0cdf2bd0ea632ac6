//! The history model: which numeric points an event, a heartbeat or an availability change
//! becomes, and the hourly activity aggregate. `docs/history.md` is the user-facing copy of
//! this file (measurements, tags, fields); keep them together.

use std::sync::Arc;

use anxin_firmware::wire::{EventBody, FallAction, HelpAction};

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Measurement of door contacts: field `open` (1 opened, 0 closed).
pub const DOOR: &str = "door";
/// Measurement of motion sensors: field `detected` (always 1: a PIR has no "off").
pub const MOTION: &str = "motion";
/// Measurement of help buttons: fields `press`, `cancel`, `long` (1 each).
pub const HELP: &str = "help";
/// Measurement of gas sensors: fields `alarm` (1 raised, 0 cleared) and `ppm`.
pub const GAS: &str = "gas";
/// Measurement of fall detectors: fields `detected` or `cancel` (1), and `peak_mg`.
pub const FALL: &str = "fall";
/// Measurement of tamper switches: field `open` (1 opened, 0 closed).
pub const TAMPER: &str = "tamper";
/// Measurement of device health: `online` (1/0), `battery_pct`, `battery_mv`, `rssi_dbm`,
/// `temp_c`.
pub const DEVICE: &str = "device";
/// Measurement of the hourly per-household aggregate (see [`Activity`]).
pub const ACTIVITY: &str = "activity";

/// Every measurement stored as raw points (pruning walks them one by one).
pub const RAW_MEASUREMENTS: [&str; 7] = [DOOR, MOTION, HELP, GAS, FALL, TAMPER, DEVICE];

/// One raw point: a numeric value of one field of one series at one time.
pub use crate::store::HistoryPoint as Point;

/// Who a point is about: the tags shared by every point of a device.
#[derive(Debug, Clone)]
pub struct Tags {
    /// Household.
    pub household_id: Option<Arc<str>>,
    /// Device.
    pub device_id: Arc<str>,
    /// Room.
    pub room: Option<Arc<str>>,
    /// Device kind.
    pub kind: Arc<str>,
}

impl Tags {
    fn point(
        &self,
        measurement: &'static str,
        field: &'static str,
        value: f64,
        at_ms: i64,
    ) -> Point {
        Point {
            measurement,
            field,
            value,
            at_ms,
            household_id: self.household_id.clone(),
            device_id: self.device_id.clone(),
            room: self.room.clone(),
            kind: self.kind.clone(),
        }
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The points of one sensor event (one or two fields of one measurement).
pub fn event_points(tags: &Tags, body: &EventBody, at_ms: i64) -> Vec<Point> {
    match *body {
        EventBody::Door { open } => vec![tags.point(DOOR, "open", flag(open), at_ms)],
        EventBody::Motion => vec![tags.point(MOTION, "detected", 1.0, at_ms)],
        EventBody::Help { act } => {
            let field = match act {
                HelpAction::Press => "press",
                HelpAction::Cancel => "cancel",
                HelpAction::Long => "long",
                HelpAction::Ok => "ok",
            };
            vec![tags.point(HELP, field, 1.0, at_ms)]
        }
        EventBody::Gas { alarm, ppm } => vec![
            tags.point(GAS, "alarm", flag(alarm), at_ms),
            tags.point(GAS, "ppm", f64::from(ppm), at_ms),
        ],
        EventBody::Fall { act, peak_mg } => {
            let field = match act {
                FallAction::Detected => "detected",
                FallAction::Cancel => "cancel",
            };
            let mut v = vec![tags.point(FALL, field, 1.0, at_ms)];
            if let Some(p) = peak_mg {
                v.push(tags.point(FALL, "peak_mg", f64::from(p), at_ms));
            }
            v
        }
        EventBody::Tamper { open } => vec![tags.point(TAMPER, "open", flag(open), at_ms)],
    }
}

/// The point of an availability change.
pub fn online_point(tags: &Tags, online: bool, at_ms: i64) -> Point {
    tags.point(DEVICE, "online", flag(online), at_ms)
}

/// Device health as a heartbeat reports it (the fields history keeps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Battery %.
    pub battery_pct: Option<i32>,
    /// Battery mV.
    pub battery_mv: Option<i32>,
    /// RSSI dBm.
    pub rssi_dbm: Option<i32>,
    /// Temperature, tenths of °C.
    pub temp_dc: Option<i32>,
}

/// Smallest changes worth a point before the hourly one is due.
pub const BATTERY_PCT_STEP: i32 = 2;
/// Battery voltage step (mV).
pub const BATTERY_MV_STEP: i32 = 50;
/// Signal strength step (dB).
pub const RSSI_STEP: i32 = 6;
/// Temperature step (tenths of °C).
pub const TEMP_STEP_DC: i32 = 5;

fn moved(old: Option<i32>, new: Option<i32>, step: i32) -> bool {
    match (old, new) {
        (Some(a), Some(b)) => (a - b).abs() >= step,
        (None, Some(_)) => true,
        _ => false,
    }
}

impl Health {
    /// Whether `self` differs meaningfully from `last` (what was last written).
    pub fn changed_from(&self, last: &Health) -> bool {
        moved(last.battery_pct, self.battery_pct, BATTERY_PCT_STEP)
            || moved(last.battery_mv, self.battery_mv, BATTERY_MV_STEP)
            || moved(last.rssi_dbm, self.rssi_dbm, RSSI_STEP)
            || moved(last.temp_dc, self.temp_dc, TEMP_STEP_DC)
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.battery_pct.is_none()
            && self.battery_mv.is_none()
            && self.rssi_dbm.is_none()
            && self.temp_dc.is_none()
    }

    /// The points of this health report (every field present).
    pub fn points(&self, tags: &Tags, at_ms: i64) -> Vec<Point> {
        let mut v = Vec::with_capacity(4);
        if let Some(x) = self.battery_pct {
            v.push(tags.point(DEVICE, "battery_pct", f64::from(x), at_ms));
        }
        if let Some(x) = self.battery_mv {
            v.push(tags.point(DEVICE, "battery_mv", f64::from(x), at_ms));
        }
        if let Some(x) = self.rssi_dbm {
            v.push(tags.point(DEVICE, "rssi_dbm", f64::from(x), at_ms));
        }
        if let Some(x) = self.temp_dc {
            v.push(tags.point(DEVICE, "temp_c", f64::from(x) / 10.0, at_ms));
        }
        v
    }
}

/// Whether a heartbeat's `health` at `at_ms` deserves points, given what was last written
/// (`None`: nothing yet) and when, and the longest allowed silence.
pub fn health_due(
    health: &Health,
    last: Option<(&Health, i64)>,
    at_ms: i64,
    max_interval_ms: i64,
) -> bool {
    if health.is_empty() {
        return false;
    }
    match last {
        None => true,
        Some((h, when)) => at_ms - when >= max_interval_ms || health.changed_from(h),
    }
}

/// The hourly activity of one household (measurement `activity`, tag `household`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Sensor events of any kind (door, motion, help, gas, fall, tamper).
    pub events: i64,
    /// Motion detections.
    pub motion: i64,
    /// Door openings.
    pub door_open: i64,
    /// Help presses (short and long).
    pub help: i64,
    /// Falls detected.
    pub fall: i64,
    /// Gas alarms raised.
    pub gas_alarm: i64,
    /// Minutes with at least one motion or door event.
    pub active_minutes: i64,
}

impl Activity {
    /// Field names, in the order of [`Activity::values`].
    pub const FIELDS: [&'static str; 7] = [
        "events",
        "motion",
        "door_open",
        "help",
        "fall",
        "gas_alarm",
        "active_minutes",
    ];

    /// Field values, in the order of [`Activity::FIELDS`].
    pub fn values(&self) -> [i64; 7] {
        [
            self.events,
            self.motion,
            self.door_open,
            self.help,
            self.fall,
            self.gas_alarm,
            self.active_minutes,
        ]
    }

    /// The counts of `values`, in the order of [`Activity::FIELDS`] (the order of the
    /// store's columns too).
    pub fn from_values(values: [i64; 7]) -> Activity {
        let [
            events,
            motion,
            door_open,
            help,
            fall,
            gas_alarm,
            active_minutes,
        ] = values;
        Activity {
            events,
            motion,
            door_open,
            help,
            fall,
            gas_alarm,
            active_minutes,
        }
    }

    /// Folds one raw point (`measurement`, `field`, `value`, `at_ms`) of the hour into
    /// the counts; `minutes` collects the active minutes.
    pub fn add(
        &mut self,
        measurement: &str,
        field: &str,
        value: f64,
        at_ms: i64,
        minutes: &mut std::collections::HashSet<i64>,
    ) {
        let is_event = matches!(
            (measurement, field),
            (DOOR, "open")
                | (MOTION, "detected")
                | (HELP, "press" | "cancel" | "long")
                | (GAS, "alarm")
                | (FALL, "detected" | "cancel")
                | (TAMPER, "open")
        );
        if is_event {
            self.events += 1;
        }
        let on = value > 0.5;
        match (measurement, field) {
            (MOTION, "detected") => self.motion += 1,
            (DOOR, "open") if on => self.door_open += 1,
            (HELP, "press" | "long") => self.help += 1,
            (FALL, "detected") => self.fall += 1,
            (GAS, "alarm") if on => self.gas_alarm += 1,
            _ => {}
        }
        if matches!((measurement, field), (MOTION, "detected") | (DOOR, "open")) {
            minutes.insert(at_ms.div_euclid(MINUTE_MS));
        }
        self.active_minutes = minutes.len() as i64;
    }
}

/// Start of the hour that contains `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Tags {
        Tags {
            household_id: Some("h1".into()),
            device_id: "d1".into(),
            room: Some("厨房".into()),
            kind: "gas".into(),
        }
    }

    #[test]
    fn a_gas_alarm_becomes_an_alarm_flag_and_a_reading_at_the_same_time() {
        let p = event_points(
            &tags(),
            &EventBody::Gas {
                alarm: true,
                ppm: 1200,
            },
            5,
        );
        let f: Vec<_> = p
            .iter()
            .map(|p| (p.measurement, p.field, p.value, p.at_ms))
            .collect();
        assert_eq!(f, vec![(GAS, "alarm", 1.0, 5), (GAS, "ppm", 1200.0, 5)]);
    }

    #[test]
    fn every_event_kind_has_numeric_points() {
        let bodies = [
            EventBody::Door { open: false },
            EventBody::Motion,
            EventBody::Help {
                act: HelpAction::Cancel,
            },
            EventBody::Fall {
                act: FallAction::Detected,
                peak_mg: Some(3100),
            },
            EventBody::Tamper { open: true },
        ];
        for b in bodies {
            let p = event_points(&tags(), &b, 1);
            assert!(!p.is_empty(), "{b:?}");
            assert!(p.iter().all(|p| p.value.is_finite()));
        }
    }

    #[test]
    fn heartbeats_are_written_on_a_meaningful_change_or_hourly() {
        let last = Health {
            battery_pct: Some(80),
            rssi_dbm: Some(-60),
            ..Health::default()
        };
        let same = Health {
            battery_pct: Some(79),
            rssi_dbm: Some(-63),
            ..Health::default()
        };
        assert!(!health_due(
            &same,
            Some((&last, 0)),
            10 * MINUTE_MS,
            HOUR_MS
        ));
        assert!(health_due(&same, Some((&last, 0)), HOUR_MS, HOUR_MS));
        let dropped = Health {
            battery_pct: Some(78),
            ..same
        };
        assert!(health_due(&dropped, Some((&last, 0)), MINUTE_MS, HOUR_MS));
        assert!(health_due(&same, None, 0, HOUR_MS));
        assert!(!health_due(&Health::default(), None, 0, HOUR_MS));
    }

    #[test]
    fn the_hourly_aggregate_counts_events_and_active_minutes() {
        let mut a = Activity::default();
        let mut m = std::collections::HashSet::new();
        a.add(MOTION, "detected", 1.0, 1_000, &mut m);
        a.add(MOTION, "detected", 1.0, 2_000, &mut m);
        a.add(DOOR, "open", 1.0, MINUTE_MS + 1, &mut m);
        a.add(DOOR, "open", 0.0, MINUTE_MS + 2, &mut m);
        a.add(GAS, "alarm", 1.0, 3, &mut m);
        a.add(GAS, "ppm", 900.0, 3, &mut m);
        a.add(DEVICE, "battery_pct", 50.0, 3, &mut m);
        assert_eq!(
            a,
            Activity {
                events: 5,
                motion: 2,
                door_open: 1,
                help: 0,
                fall: 0,
                gas_alarm: 1,
                active_minutes: 2,
            }
        );
    }
}
