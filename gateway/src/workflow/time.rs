//! Local time: "today", the morning list's time and quiet hours are in the homes' time
//! zone (`general.timezone`), computed on the gateway's clock.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::WorkflowError;

/// The time zone of the homes.
#[derive(Debug, Clone)]
pub struct LocalTime {
    tz: TimeZone,
}

impl LocalTime {
    /// The zone called `name` (IANA).
    pub fn new(name: &str) -> Result<LocalTime, WorkflowError> {
        let tz = TimeZone::get(name)
            .map_err(|e| WorkflowError::Config(format!("general.timezone {name:?}: {e}")))?;
        Ok(LocalTime { tz })
    }

    /// The local date at `ms`.
    pub fn date(&self, ms: i64) -> Date {
        Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.tz.clone())
            .date()
    }

    /// Minutes after local midnight at `ms`.
    pub fn minute_of_day(&self, ms: i64) -> u32 {
        let t = Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.tz.clone())
            .time();
        u32::try_from(t.hour()).unwrap_or(0) * 60 + u32::try_from(t.minute()).unwrap_or(0)
    }

    /// `ms` at the local time `minute` (after midnight) of `date`.
    pub fn at(&self, date: Date, minute: u32) -> i64 {
        let h = i8::try_from(minute / 60).unwrap_or(0).min(23);
        let m = i8::try_from(minute % 60).unwrap_or(0);
        let time = Time::new(h, m, 0, 0).unwrap_or(Time::midnight());
        date.to_datetime(time)
            .to_zoned_datetime(self.tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(0)
    }

    /// Local midnight starting `date`.
    pub fn day_start(&self, date: Date) -> i64 {
        self.at(date, 0)
    }

    /// Local midnight ending `date`.
    pub fn day_end(&self, date: Date) -> i64 {
        self.day_start(next_day(date))
    }

    /// "YYYY-MM-DD" at `ms`.
    pub fn day_text(&self, ms: i64) -> String {
        self.date(ms).to_string()
    }

    /// "YYYY-MM-DD HH:MM:SS" local at `ms` (exports).
    pub fn datetime_text(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// "HH:MM" local at `ms` (notifications).
    pub fn hhmm(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.tz.clone())
            .strftime("%H:%M")
            .to_string()
    }

    /// When quiet hours `(start, end)` (minutes) that hold at `ms` end; None when `ms`
    /// is outside them.
    pub fn quiet_until(&self, ms: i64, quiet: (u32, u32)) -> Option<i64> {
        let (start, end) = quiet;
        if start == end {
            return None;
        }
        let m = self.minute_of_day(ms);
        let today = self.date(ms);
        let inside = if start < end {
            m >= start && m < end
        } else {
            m >= start || m < end
        };
        if !inside {
            return None;
        }
        let end_day = if start > end && m >= start {
            next_day(today)
        } else {
            today
        };
        Some(self.at(end_day, end))
    }
}

/// The day after `d`.
pub fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(d)
}

/// The day before `d`.
pub fn prev_day(d: Date) -> Date {
    d.yesterday().unwrap_or(d)
}

/// Parses "YYYY-MM-DD".
pub fn parse_date(s: &str) -> Result<Date, WorkflowError> {
    s.trim()
        .parse::<Date>()
        .map_err(|e| WorkflowError::Invalid {
            field: "date",
            reason: format!("{s:?}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> LocalTime {
        LocalTime::new("Asia/Shanghai").unwrap()
    }

    #[test]
    fn shanghai_midnight_is_sixteen_hundred_utc_the_day_before() {
        let lt = sh();
        let d: Date = "2026-11-25".parse().unwrap();
        let start = lt.day_start(d);
        assert_eq!(
            Timestamp::from_millisecond(start).unwrap().to_string(),
            "2026-11-24T16:00:00Z"
        );
        assert_eq!(lt.day_end(d) - start, 86_400_000);
        assert_eq!(lt.date(start), d);
        assert_eq!(lt.date(start - 1), prev_day(d));
    }

    #[test]
    fn quiet_hours_across_midnight_end_next_morning() {
        let lt = sh();
        let d: Date = "2026-11-25".parse().unwrap();
        let at_2330 = lt.at(d, 23 * 60 + 30);
        assert_eq!(
            lt.quiet_until(at_2330, (22 * 60, 7 * 60)),
            Some(lt.at(next_day(d), 420))
        );
        let at_0300 = lt.at(d, 180);
        assert_eq!(
            lt.quiet_until(at_0300, (22 * 60, 7 * 60)),
            Some(lt.at(d, 420))
        );
        let at_noon = lt.at(d, 720);
        assert_eq!(lt.quiet_until(at_noon, (22 * 60, 7 * 60)), None);
    }
}
