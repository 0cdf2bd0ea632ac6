//! Local civil time of the simulated homes: China Standard Time (UTC+8, no daylight
//! saving), days counted from 1970-01-01 local.

/// Milliseconds per day.
pub const DAY_MS: u64 = 86_400_000;
/// Milliseconds per hour.
pub const HOUR_MS: u64 = 3_600_000;
/// Milliseconds per second.
pub const SECOND_MS: u64 = 1_000;
/// Milliseconds per minute.
pub const MINUTE_MS: u64 = 60_000;
/// Offset of local time from UTC, in ms.
pub const UTC_OFFSET_MS: i64 = 8 * 3_600_000;

/// A local day: days since 1970-01-01 (local).
pub type Day = i64;

/// The local day of a Unix time.
pub fn day_of(unix_ms: u64) -> Day {
    (unix_ms as i64 + UTC_OFFSET_MS).div_euclid(DAY_MS as i64)
}

/// Unix ms at local midnight starting `day` (0 for days before 1970).
pub fn day_start_ms(day: Day) -> u64 {
    u64::try_from(day * DAY_MS as i64 - UTC_OFFSET_MS).unwrap_or(0)
}

/// Day of the week, 0 = Monday … 6 = Sunday.
pub fn weekday(day: Day) -> u8 {
    (day + 3).rem_euclid(7) as u8
}

/// Whether `day` is a Saturday or Sunday.
pub fn is_weekend(day: Day) -> bool {
    weekday(day) >= 5
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day: (year, month 1–12, day 1–31).
pub fn civil_from_days(z: Day) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses a local date `YYYY-MM-DD` into its day.
pub fn parse_date(s: &str) -> Option<Day> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// Parses a local time `YYYY-MM-DDTHH:MM[:SS]` (or a date alone, meaning midnight) into
/// Unix ms.
pub fn parse_local(s: &str) -> Option<u64> {
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00"));
    let day = parse_date(date)?;
    let mut it = time.split(':');
    let h: u64 = it.next()?.parse().ok()?;
    let min: u64 = it.next()?.parse().ok()?;
    let sec: u64 = match it.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() || h > 23 || min > 59 || sec > 59 {
        return None;
    }
    Some(day_start_ms(day) + h * HOUR_MS + min * MINUTE_MS + sec * 1000)
}

/// Formats Unix ms as local `YYYY-MM-DDTHH:MM`.
pub fn format_local(unix_ms: u64) -> String {
    let day = day_of(unix_ms);
    let (y, m, d) = civil_from_days(day);
    let in_day = unix_ms.saturating_sub(day_start_ms(day));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}",
        in_day / HOUR_MS,
        (in_day % HOUR_MS) / MINUTE_MS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_round_trip() {
        let t = parse_local("2026-11-25T10:30").unwrap();
        // 10:30 in Shanghai is 02:30 UTC.
        assert_eq!(t, 1_795_573_800_000);
        assert_eq!(format_local(t), "2026-11-25T10:30");
        assert_eq!(weekday(day_of(t)), 2, "a Wednesday");
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_local("2026-11-25T24:00"), None);
        assert_eq!(
            parse_local("2026-11-25"),
            Some(t - 10 * HOUR_MS - 30 * MINUTE_MS)
        );
    }

    #[test]
    fn days_and_dates_agree() {
        for day in [-1000, 0, 1, 20_000, 20_782] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
    }
}
