//! Local wall-clock time of the homes: which day it is, and the minute of that day.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;

/// Converts gateway time (ms, UTC) to the homes' local day and minute.
#[derive(Debug, Clone)]
pub struct LocalTime {
    tz: TimeZone,
}

impl LocalTime {
    /// The zone `name` (IANA), or UTC.
    pub fn new(name: &str) -> Result<Self, jiff::Error> {
        Ok(LocalTime {
            tz: TimeZone::get(name)?,
        })
    }

    /// UTC (used when replaying logs whose times are naive wall-clock times).
    pub fn utc() -> Self {
        LocalTime { tz: TimeZone::UTC }
    }

    fn offset_ms(&self, ms: i64) -> i64 {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        i64::from(self.tz.to_offset(ts).seconds()) * 1000
    }

    /// The local day number (days since 1970-01-01 in local time).
    pub fn day(&self, ms: i64) -> i32 {
        (ms + self.offset_ms(ms)).div_euclid(DAY_MS) as i32
    }

    /// The local minute of the day (0..1440).
    pub fn minute(&self, ms: i64) -> u16 {
        ((ms + self.offset_ms(ms)).rem_euclid(DAY_MS) / MINUTE_MS) as u16
    }

    /// The UTC instant of local `minute` on local `day` (for zones without a change on
    /// that day; around a daylight-saving change it is off by the change).
    pub fn at(&self, day: i32, minute: u16) -> i64 {
        let naive = i64::from(day) * DAY_MS + i64::from(minute) * MINUTE_MS;
        naive - self.offset_ms(naive)
    }

    /// ISO 8601 local wall-clock time without offset, to the second (replay output).
    pub fn format(&self, ms: i64) -> String {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        self.tz
            .to_datetime(ts)
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    }
}

/// Parses `HH:MM` into minutes of the day.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Whether `minute` lies in the window [`start`, `end`), which may cross midnight.
pub fn in_window(minute: u16, start: u16, end: u16) -> bool {
    if start <= end {
        minute >= start && minute < end
    } else {
        minute >= start || minute < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_days_start_at_local_midnight() {
        let lt = LocalTime::new("Asia/Shanghai").unwrap();
        // 2026-11-24T16:00:00Z is 2026-11-25T00:00 in Shanghai.
        let ms = 1_795_536_000_000;
        assert_eq!(lt.minute(ms), 0);
        assert_eq!(lt.day(ms) - lt.day(ms - 1), 1);
        assert_eq!(lt.at(lt.day(ms), 0), ms);
        assert_eq!(lt.format(ms), "2026-11-25T00:00:00");
    }

    #[test]
    fn windows_may_cross_midnight() {
        let (s, e) = (parse_hhmm("22:00").unwrap(), parse_hhmm("06:00").unwrap());
        assert!(in_window(23 * 60, s, e));
        assert!(in_window(60, s, e));
        assert!(!in_window(12 * 60, s, e));
        assert!(in_window(10 * 60, 9 * 60, 17 * 60));
        assert_eq!(parse_hhmm("24:00"), None);
    }
}
