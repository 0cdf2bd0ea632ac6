//! Replaying recorded logs through the real detector, deterministically: the project's own
//! event log (exported from the store) and the binary-sensor interval format of the
//! Ordóñez ADL homes (UCI dataset 271; see `docs/detection.md` for the citation), with
//! scenario injection (a collapse, a missed wake-up) on top of real days.
//!
//! Times in the input are naive local wall-clock times; they are replayed as if in UTC,
//! so that local time equals the input's time and output times print back unchanged.
//! Replayed logs carry no heartbeats: they report no device, so device supervision never
//! fires on them.

use std::str::FromStr;

use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

use super::activity::{ActivityKind, Input, RoomClass, from_event};
use super::engine::Engine;
use super::localtime::{DAY_MS, LocalTime, MINUTE_MS};
use super::params::Params;
use crate::signal::{AlertKind, Severity, Signal, SignalAction};

/// One replayed observation.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayEvent {
    /// When (naive local time as UTC ms).
    pub at_ms: i64,
    /// Household.
    pub household: String,
    /// What the detector gets.
    pub inputs: Vec<Input>,
    /// Which sensor of the log it came from (its row label, e.g. `Basin`; empty when the
    /// format does not say): the evaluation's variants drop or keep sensors by it.
    pub sensor: String,
}

/// A log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A line does not parse.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// An injection does not parse.
    #[error("bad --inject {0:?}: expected collapse@YYYY-MM-DDTHH:MM:SS or no-wakeup@YYYY-MM-DD")]
    BadInjection(String),
}

/// Parses a naive local time `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`.
pub fn parse_time(s: &str) -> Option<i64> {
    let dt = DateTime::from_str(s.trim()).ok()?;
    let ts = jiff::tz::TimeZone::UTC.to_timestamp(dt).ok()?;
    Some(ts.as_millisecond())
}

/// Reads an Ordóñez `*_Sensors.txt` file: each row is a sensor's activation interval;
/// it becomes a sign of life at its start and at its end.
pub fn parse_ordonez(text: &str, household: &str) -> Result<Vec<ReplayEvent>, ReplayError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(2) {
        let cols: Vec<&str> = line
            .split('\t')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if cols.is_empty() {
            continue;
        }
        let bad = |reason: &str| ReplayError::BadLine {
            line: n + 1,
            reason: reason.to_string(),
        };
        let [start, end, location, kind, place] = cols[..] else {
            return Err(bad("expected 5 tab-separated columns"));
        };
        let (Some(s), Some(e)) = (parse_time(start), parse_time(end)) else {
            return Err(bad("bad time"));
        };
        let room = RoomClass::from_name(Some(place));
        let activity = match (kind, location) {
            ("PIR", _) => ActivityKind::Motion,
            ("Magnetic", "Maindoor") => ActivityKind::FrontDoor,
            ("Magnetic", _) => ActivityKind::Contact,
            ("Pressure", _) => ActivityKind::PresenceOn,
            _ => ActivityKind::Use,
        };
        let room = if activity == ActivityKind::FrontDoor {
            RoomClass::Entrance
        } else {
            room
        };
        let end_kind = if activity == ActivityKind::PresenceOn {
            ActivityKind::PresenceOff
        } else {
            activity
        };
        for (at, kind) in [(s, activity), (e.max(s), end_kind)] {
            out.push(ReplayEvent {
                at_ms: at,
                household: household.to_string(),
                inputs: vec![Input::Activity { room, kind }],
                sensor: location.to_string(),
            });
        }
    }
    out.sort_by_key(|e| e.at_ms);
    Ok(out)
}

/// One line of the project's own event log (`anxin replay` input; exported from the
/// store's `events` table with the device's kind and room).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// Naive local time `YYYY-MM-DDTHH:MM:SS[.fff]`.
    pub time: String,
    /// Household.
    pub household: String,
    /// Device kind (`door`, `motion`, `help`, …).
    pub device_kind: String,
    /// Room, if known.
    #[serde(default)]
    pub room: Option<String>,
    /// The wire event body.
    pub ev: serde_json::Value,
}

/// Reads the project's own event log (JSON lines of [`LogLine`]).
pub fn parse_event_log(text: &str) -> Result<Vec<ReplayEvent>, ReplayError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| ReplayError::BadLine {
            line: n + 1,
            reason,
        };
        let l: LogLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let at = parse_time(&l.time).ok_or_else(|| bad(format!("bad time {:?}", l.time)))?;
        let body: anxin_firmware::wire::EventBody =
            serde_json::from_value(l.ev).map_err(|e| bad(e.to_string()))?;
        let inputs = from_event(
            &body,
            &l.device_kind,
            RoomClass::from_name(l.room.as_deref()),
        );
        out.push(ReplayEvent {
            at_ms: at,
            household: l.household,
            inputs,
            sensor: format!("{}@{}", l.device_kind, l.room.as_deref().unwrap_or("")),
        });
    }
    out.sort_by_key(|e| e.at_ms);
    Ok(out)
}

/// Scenarios injected into real data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// All sensor activity stops from then on.
    Collapse(i64),
    /// No activity on that day (local midnight given) until noon.
    NoWakeup(i64),
}

impl FromStr for Injection {
    type Err = ReplayError;
    fn from_str(s: &str) -> Result<Self, ReplayError> {
        let bad = || ReplayError::BadInjection(s.to_string());
        let (kind, when) = s.split_once('@').ok_or_else(bad)?;
        match kind {
            "collapse" => Ok(Injection::Collapse(parse_time(when).ok_or_else(bad)?)),
            "no-wakeup" => Ok(Injection::NoWakeup(
                parse_time(&format!("{when}T00:00:00")).ok_or_else(bad)?,
            )),
            _ => Err(bad()),
        }
    }
}

/// Applies injections; returns the events left and the time the replay must run to (the
/// end of the data, or long enough after a collapse for any rule to fire).
pub fn inject(
    mut events: Vec<ReplayEvent>,
    injections: &[Injection],
    horizon_ms: i64,
) -> (Vec<ReplayEvent>, i64) {
    let mut end = events.last().map_or(0, |e| e.at_ms);
    for inj in injections {
        match *inj {
            Injection::Collapse(t) => {
                events.retain(|e| e.at_ms < t);
                end = end.max(t + horizon_ms);
            }
            Injection::NoWakeup(day) => {
                events.retain(|e| e.at_ms < day || e.at_ms >= day + DAY_MS / 2)
            }
        }
    }
    (events, end)
}

/// Runs `events` through a fresh engine up to `end` and returns every signal.
pub fn run(params: &Params, events: &[ReplayEvent], end: i64) -> Vec<Signal> {
    run_with(params, events, end, false)
}

/// [`run`], with a help button that takes check-ins in every household when
/// `help_button` is set. Nobody presses it (a recorded home cannot answer): a check-in
/// is answered only by the activity the log itself holds.
pub fn run_with(
    params: &Params,
    events: &[ReplayEvent],
    end: i64,
    help_button: bool,
) -> Vec<Signal> {
    let mut engine = Engine::new(params.clone(), LocalTime::utc());
    let mut out = Vec::new();
    let mut buttons = std::collections::HashSet::new();
    for e in events {
        if help_button && buttons.insert(e.household.clone()) {
            let id = format!("{}-help", e.household);
            engine.add_device(&e.household, &id, false, true, RoomClass::Other);
        }
        engine.advance(e.at_ms);
        engine.observe(&e.household, None, e.at_ms, &e.inputs);
        out.extend(engine.take_signals());
    }
    engine.advance(end);
    out.extend(engine.take_signals());
    out
}

/// An alert as `anxin replay` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    /// Local wall-clock time of the input, ISO 8601.
    pub time: String,
    /// Household.
    pub household: String,
    /// Alert kind.
    pub kind: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Why.
    pub reason: String,
}

/// The raised alerts among `signals`, as printed lines.
pub fn alert_lines(signals: &[Signal]) -> Vec<AlertLine> {
    let lt = LocalTime::utc();
    signals
        .iter()
        .filter(|s| s.action == SignalAction::Raise)
        .map(|s| AlertLine {
            time: lt.format(s.at_ms),
            household: s.household_id.clone().unwrap_or_default(),
            kind: s.kind.as_str(),
            severity: s.severity,
            reason: s.reason.clone(),
        })
        .collect()
}

/// Whether a signal is an elder alert (not a pre-alarm, not technical).
pub fn is_elder_alert(s: &Signal) -> bool {
    s.action == SignalAction::Raise
        && match s.kind {
            AlertKind::Inactivity => s.severity == Severity::Critical,
            AlertKind::MissedWakeup
            | AlertKind::NightExit
            | AlertKind::NotBack
            | AlertKind::LongBathroom => true,
            _ => false,
        }
}

/// Minutes, for reports.
pub fn minutes(ms: i64) -> f64 {
    ms as f64 / MINUTE_MS as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::params::DetectConfig;

    const SAMPLE: &str = "Start time\tEnd time\tLocation\tType\tPlace\r\n--\t--\r\n\
2011-11-28 02:27:59\t\t2011-11-28 10:18:11\t\tBed\t\t\tPressure\tBedroom\r\n\
2011-11-28 10:21:24\t\t2011-11-28 10:21:31\t\tCabinet\t\tMagnetic\tBathroom\r\n\
2011-11-28 10:45:00\t2011-11-28 10:45:20\tMaindoor\tMagnetic\tEntrance";

    #[test]
    fn ordonez_rows_become_signs_of_life_at_both_ends() {
        let ev = parse_ordonez(SAMPLE, "A").unwrap();
        assert_eq!(ev.len(), 6);
        assert_eq!(ev[0].at_ms, parse_time("2011-11-28 02:27:59").unwrap());
        assert!(matches!(
            ev[4].inputs[0],
            Input::Activity {
                kind: ActivityKind::FrontDoor,
                room: RoomClass::Entrance
            }
        ));
    }

    #[test]
    fn a_bad_row_is_reported_with_its_line_number() {
        let err = parse_ordonez("h\n-\n2011-11-28 02:27:59\tBed\n", "A").unwrap_err();
        assert!(matches!(err, ReplayError::BadLine { line: 3, .. }), "{err}");
    }

    #[test]
    fn the_end_of_a_recording_is_not_a_missed_wake_up() {
        let p = DetectConfig::default().compile().unwrap();
        let ev = parse_ordonez(SAMPLE, "A").unwrap();
        let end = ev.last().unwrap().at_ms;
        assert!(
            run(&p, &ev, end)
                .iter()
                .all(|s| s.action != SignalAction::Raise)
        );
    }

    #[test]
    fn an_injected_collapse_is_detected_after_it() {
        let p = DetectConfig::default().compile().unwrap();
        let ev = parse_ordonez(SAMPLE, "A").unwrap();
        let c = parse_time("2011-11-28 10:30:00").unwrap();
        let (ev, end) = inject(ev, &[Injection::Collapse(c)], 2 * DAY_MS);
        let alerts: Vec<_> = run(&p, &ev, end)
            .into_iter()
            .filter(is_elder_alert)
            .collect();
        assert!(alerts[0].at_ms > c);
        assert_eq!(
            "collapse@2011-11-28T10:30:00".parse::<Injection>().unwrap(),
            Injection::Collapse(c)
        );
    }
}
