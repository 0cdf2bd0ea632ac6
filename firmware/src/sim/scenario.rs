//! Scenario injection: unusual things that happen in a simulated home.
//!
//! Written `KIND@TARGET@WHEN[+DURATION]`:
//!
//! | scenario | example | effect |
//! |---|---|---|
//! | `nowake` | `nowake@h0003@2026-11-25` | the resident does not get up that day: no activity from that morning's wake time to the next (night visits before it still happen) |
//! | `collapse` | `collapse@h0003@2026-11-25T10:30` | all activity stops from then on, for good (devices keep their heartbeats) |
//! | `help` | `help@h0003@2026-11-25T10:30` | the help button is pressed (300 ms) |
//! | `gas` | `gas@h0003@2026-11-25T10:30+20m` | a gas leak: the reading climbs past the alarm threshold within 3 minutes, stays high for the duration (default 20 min), then falls back |
//! | `offline` | `offline@h0003-pir-bedroom@2026-11-25T10:30+2h` | the device (or every device of a household) drops its connection without a goodbye (the broker publishes its last will) and reconnects after the duration (default 1 h) |
//! | `battery` | `battery@h0003-help@2026-11-25T00:00+3d` | the battery drains linearly to empty over the duration (default 2 d); an empty device goes silent for good |
//!
//! `TARGET` is a household id (`h0003`) or, for `offline` and `battery`, also a device
//! id. `WHEN` is local time (Asia/Shanghai, UTC+8) `YYYY-MM-DDTHH:MM[:SS]`, or a date
//! `YYYY-MM-DD` (midnight; for `nowake` the day), or `+DURATION` after the simulation's
//! virtual start. `DURATION` is one or more `<number><unit>` with unit `s`, `m`, `h` or
//! `d`, e.g. `90m`, `1h30m`.

use std::fmt;
use std::str::FromStr;

use super::calendar::{DAY_MS, HOUR_MS, MINUTE_MS, format_local, parse_local};

/// When a scenario happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At a virtual time, Unix ms.
    At(u64),
    /// This long after the simulation's virtual start, ms.
    AfterStart(u64),
}

impl When {
    /// The virtual time, Unix ms, given the simulation's virtual start.
    pub fn resolve(self, start_ms: u64) -> u64 {
        match self {
            When::At(t) => t,
            When::AfterStart(d) => start_ms.saturating_add(d),
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::At(t) => f.write_str(&format_local(*t)),
            When::AfterStart(d) => write!(f, "+{}", format_duration(*d)),
        }
    }
}

/// Something unusual that happens in a simulated home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// The resident does not get up on the day that contains `day`.
    NoWake {
        /// Household id.
        home: String,
        /// A time within the day.
        day: When,
    },
    /// All activity stops at `at`, for good.
    Collapse {
        /// Household id.
        home: String,
        /// When.
        at: When,
    },
    /// The help button is pressed at `at`.
    Help {
        /// Household id.
        home: String,
        /// When.
        at: When,
    },
    /// A gas leak from `at`, lasting `duration_ms`.
    GasLeak {
        /// Household id.
        home: String,
        /// When it starts.
        at: When,
        /// How long the reading stays high.
        duration_ms: u64,
    },
    /// A device (or all devices of a household) is disconnected from `at` for
    /// `duration_ms`.
    Offline {
        /// Household or device id.
        target: String,
        /// When.
        at: When,
        /// For how long.
        duration_ms: u64,
    },
    /// A device's (or household's) battery drains to empty from `at` over `duration_ms`.
    BatteryDrain {
        /// Household or device id.
        target: String,
        /// When the drain starts.
        at: When,
        /// Time to empty.
        duration_ms: u64,
    },
}

impl Scenario {
    /// The household or device id the scenario is about.
    pub fn target(&self) -> &str {
        match self {
            Scenario::NoWake { home, .. }
            | Scenario::Collapse { home, .. }
            | Scenario::Help { home, .. }
            | Scenario::GasLeak { home, .. } => home,
            Scenario::Offline { target, .. } | Scenario::BatteryDrain { target, .. } => target,
        }
    }

    /// Whether the scenario concerns household `home` (directly or one of its devices).
    pub fn concerns(&self, home: &str) -> bool {
        let t = self.target();
        t == home
            || (t.len() > home.len() && t.starts_with(home) && t.as_bytes()[home.len()] == b'-')
    }

    /// Whether the scenario concerns device `device` of household `home`.
    pub fn concerns_device(&self, home: &str, device: &str) -> bool {
        let t = self.target();
        t == home || t == device
    }
}

/// Why a scenario did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad scenario `{}`: {} (expected KIND@TARGET@WHEN[+DURATION], e.g. collapse@h0003@2026-11-25T10:30)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for ScenarioError {}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, ScenarioError> {
        let err = |reason| ScenarioError {
            input: s.to_owned(),
            reason,
        };
        let mut parts = s.trim().splitn(3, '@');
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let target = parts.next().ok_or_else(|| err("missing target"))?;
        let when = parts.next().ok_or_else(|| err("missing time"))?;
        if target.is_empty()
            || !target
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err("target must be a household or device id"));
        }
        let (at, duration) = parse_when(when).ok_or_else(|| err("bad time or duration"))?;
        let home = target.to_owned();
        let needs_home = |home: String| {
            if home.contains('-') {
                Err(err("this scenario targets a household id, e.g. h0003"))
            } else {
                Ok(home)
            }
        };
        let no_duration = |d: Option<u64>| {
            if d.is_some() {
                Err(err("this scenario takes no duration"))
            } else {
                Ok(())
            }
        };
        Ok(match kind.as_str() {
            "nowake" | "no-wake" | "no_wake" => {
                no_duration(duration)?;
                Scenario::NoWake {
                    home: needs_home(home)?,
                    day: at,
                }
            }
            "collapse" => {
                no_duration(duration)?;
                Scenario::Collapse {
                    home: needs_home(home)?,
                    at,
                }
            }
            "help" => {
                no_duration(duration)?;
                Scenario::Help {
                    home: needs_home(home)?,
                    at,
                }
            }
            "gas" => Scenario::GasLeak {
                home: needs_home(home)?,
                at,
                duration_ms: duration.unwrap_or(20 * MINUTE_MS),
            },
            "offline" => Scenario::Offline {
                target: home,
                at,
                duration_ms: duration.unwrap_or(HOUR_MS),
            },
            "battery" => Scenario::BatteryDrain {
                target: home,
                at,
                duration_ms: duration.unwrap_or(2 * DAY_MS),
            },
            _ => {
                return Err(err(
                    "unknown kind (nowake, collapse, help, gas, offline, battery)",
                ));
            }
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::NoWake { home, day } => write!(f, "nowake@{home}@{day}"),
            Scenario::Collapse { home, at } => write!(f, "collapse@{home}@{at}"),
            Scenario::Help { home, at } => write!(f, "help@{home}@{at}"),
            Scenario::GasLeak {
                home,
                at,
                duration_ms,
            } => write!(f, "gas@{home}@{at}+{}", format_duration(*duration_ms)),
            Scenario::Offline {
                target,
                at,
                duration_ms,
            } => write!(f, "offline@{target}@{at}+{}", format_duration(*duration_ms)),
            Scenario::BatteryDrain {
                target,
                at,
                duration_ms,
            } => write!(f, "battery@{target}@{at}+{}", format_duration(*duration_ms)),
        }
    }
}

/// `WHEN[+DURATION]` → (when, duration).
fn parse_when(s: &str) -> Option<(When, Option<u64>)> {
    if let Some(rel) = s.strip_prefix('+') {
        let (when, dur) = match rel.split_once('+') {
            Some((w, d)) => (w, Some(d)),
            None => (rel, None),
        };
        let dur = match dur {
            Some(d) => Some(parse_duration(d)?),
            None => None,
        };
        return Some((When::AfterStart(parse_duration(when)?), dur));
    }
    let (when, dur) = match s.split_once('+') {
        Some((w, d)) => (w, Some(parse_duration(d)?)),
        None => (s, None),
    };
    Some((When::At(parse_local(when)?), dur))
}

/// Parses `1h30m`, `90s`, `2d` into ms.
pub fn parse_duration(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => MINUTE_MS,
            'h' => HOUR_MS,
            'd' => DAY_MS,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    num.is_empty().then_some(total)
}

fn format_duration(ms: u64) -> String {
    if ms.is_multiple_of(DAY_MS) && ms > 0 {
        format!("{}d", ms / DAY_MS)
    } else if ms.is_multiple_of(HOUR_MS) && ms > 0 {
        format!("{}h", ms / HOUR_MS)
    } else if ms.is_multiple_of(MINUTE_MS) {
        format!("{}m", ms / MINUTE_MS)
    } else {
        format!("{}s", ms / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_print_back() {
        for s in [
            "nowake@h0003@2026-11-25T00:00",
            "collapse@h0003@2026-11-25T10:30",
            "help@h0001@+10m",
            "gas@h0002@2026-11-25T18:05+20m",
            "offline@h0003-pir-bedroom@2026-11-25T10:30+2h",
            "offline@h0004@+1h+90m",
            "battery@h0003-help@2026-11-25T00:00+3d",
        ] {
            let parsed: Scenario = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
    }

    #[test]
    fn defaults_and_dates_are_understood() {
        let s: Scenario = "gas@h0002@2026-11-25T18:05".parse().unwrap();
        assert!(
            matches!(s, Scenario::GasLeak { duration_ms, .. } if duration_ms == 20 * MINUTE_MS)
        );
        let s: Scenario = "nowake@h0002@2026-11-25".parse().unwrap();
        assert!(matches!(s, Scenario::NoWake { .. }));
        assert!(s.concerns("h0002"));
        assert!(!s.concerns("h0020"));
        let s: Scenario = "offline@h0002-gas@+1h".parse().unwrap();
        assert!(s.concerns("h0002"));
        assert!(s.concerns_device("h0002", "h0002-gas"));
        assert!(!s.concerns_device("h0002", "h0002-door"));
    }

    #[test]
    fn bad_scenarios_are_rejected_with_a_reason() {
        for s in [
            "",
            "fire@h0001@+1h",
            "help@h0001",
            "help@h0001@tomorrow",
            "help@h0001@+1h+5m",
            "help@h0001-help@+1h",
            "collapse@h00/01@+1h",
            "gas@h0001@+1x",
        ] {
            assert!(s.parse::<Scenario>().is_err(), "{s}");
        }
        assert_eq!(parse_duration("1h30m"), Some(90 * MINUTE_MS));
        assert_eq!(parse_duration("5"), None);
    }
}
