//! Sign of life from the sensors, for the daily list: first and last activity today and
//! today's activity against the household's usual by this time of day. Read from the
//! event journal (`events`); door, motion and help-button events count as activity.

use jiff::civil::Date;
use serde::Serialize;

use super::time::LocalTime;
use crate::store::{self, Conn, StoreError};

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
    conn: &mut Conn,
    lt: &LocalTime,
    household: &str,
    date: Date,
    at_ms: i64,
    history_days: u32,
) -> Result<ActivitySummary, StoreError> {
    let start = lt.day_start(date);
    let until = at_ms.min(lt.day_end(date) - 1);
    let (first_today_ms, count_today) =
        store::first_life_sign(conn, household, start, until).await?;
    let last_ms = store::last_life_sign(conn, household, until).await?;
    let mut s = ActivitySummary {
        first_today_ms,
        last_ms,
        count_today,
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
    let times = store::life_sign_times(conn, household, oldest, start).await?;
    let mut by_now = vec![0i64; days.len()];
    let mut whole = vec![0i64; days.len()];
    for t in times {
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
