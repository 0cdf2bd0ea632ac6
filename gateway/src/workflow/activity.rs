//! Sign of life from the sensors, for the daily list: first and last activity today and
//! today's activity against the household's usual by this time of day. Read from the
//! event journal (`events`); door, motion and help-button events count as activity.

use jiff::civil::Date;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::time::LocalTime;

/// Event kinds that show someone is up and about.
pub const LIFE_KINDS: &str =
    "('door', 'front_door', 'contact', 'motion', 'occupancy', 'presence', 'help')";

/// A household's activity on one day, as of a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActivitySummary {
    /// First activity that day.
    pub first_today_ms: Option<i64>,
    /// Last activity ever (up to the time asked).
    pub last_ms: Option<i64>,
    /// Activity events that day up to the time asked.
    pub count_today: i64,
    /// Median count by the same time of day over the previous days that had activity
    /// (None: no history).
    pub usual_by_now: Option<f64>,
    /// Days of history behind `usual_by_now`.
    pub usual_days: u32,
}

impl ActivitySummary {
    /// Any activity that day yet.
    pub fn sign_of_life(&self) -> bool {
        self.count_today > 0
    }
}

/// The summary of `household` on `date` as of `at_ms`, with `history_days` of history.
pub(crate) async fn summary(
    conn: &mut AnyConnection,
    lt: &LocalTime,
    household: &str,
    date: Date,
    at_ms: i64,
    history_days: u32,
) -> Result<ActivitySummary, sqlx::Error> {
    let start = lt.day_start(date);
    let until = at_ms.min(lt.day_end(date) - 1);
    let today = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT MIN(event_ms) AS f, COUNT(*) AS n FROM events WHERE household_id = $1 \
         AND kind IN {LIFE_KINDS} AND event_ms >= $2 AND event_ms <= $3"
    )))
    .bind(household)
    .bind(start)
    .bind(until)
    .fetch_one(&mut *conn)
    .await?;
    let last = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT MAX(event_ms) AS l FROM events WHERE household_id = $1 \
         AND kind IN {LIFE_KINDS} AND event_ms <= $2"
    )))
    .bind(household)
    .bind(until)
    .fetch_one(&mut *conn)
    .await?;
    let mut s = ActivitySummary {
        first_today_ms: today.try_get("f")?,
        last_ms: last.try_get("l")?,
        count_today: today.try_get("n")?,
        usual_by_now: None,
        usual_days: 0,
    };
    if history_days == 0 {
        return Ok(s);
    }
    // Day starts going back; the window of each is [start, start + elapsed today).
    let elapsed = (until - start).max(0);
    let mut days = vec![];
    let mut d = date;
    for _ in 0..history_days {
        d = super::time::prev_day(d);
        days.push((lt.day_start(d), lt.day_end(d)));
    }
    let Some(&(oldest, _)) = days.last() else {
        return Ok(s);
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT event_ms FROM events WHERE household_id = $1 AND kind IN {LIFE_KINDS} \
         AND event_ms >= $2 AND event_ms < $3"
    )))
    .bind(household)
    .bind(oldest)
    .bind(start)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_now = vec![0i64; days.len()];
    let mut whole = vec![0i64; days.len()];
    for r in rows {
        let t: i64 = r.try_get("event_ms")?;
        if let Some(i) = days.iter().position(|(s0, e0)| t >= *s0 && t < *e0) {
            whole[i] += 1;
            if t < days[i].0 + elapsed {
                by_now[i] += 1;
            }
        }
    }
    let mut counts: Vec<i64> = by_now
        .iter()
        .zip(&whole)
        .filter(|(_, w)| **w > 0)
        .map(|(b, _)| *b)
        .collect();
    if !counts.is_empty() {
        counts.sort_unstable();
        let m = counts.len();
        let median = if m % 2 == 1 {
            counts[m / 2] as f64
        } else {
            (counts[m / 2 - 1] + counts[m / 2]) as f64 / 2.0
        };
        s.usual_by_now = Some(median);
        s.usual_days = u32::try_from(m).unwrap_or(u32::MAX);
    }
    Ok(s)
}
