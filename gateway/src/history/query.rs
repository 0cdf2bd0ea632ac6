//! Review queries for the dashboard, served from the embedded history: the points of a
//! household, a device or a measurement over a time range, raw or in minute, hour or
//! (local) day buckets; and the hourly `activity` aggregates, which outlive raw points.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::HistoryError;
use super::model::{ACTIVITY, Activity, DAY_MS, HOUR_MS, MINUTE_MS, RAW_MEASUREMENTS};
use crate::store::{Buckets, PointFilter, Store};

/// Most points a query returns unless it asks for fewer.
pub const DEFAULT_LIMIT: u32 = 10_000;
/// Most points a query may ask for.
pub const MAX_LIMIT: u32 = 100_000;

/// Time resolution of a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Every point.
    #[default]
    Raw,
    /// One bucket per minute.
    Minute,
    /// One bucket per hour.
    Hour,
    /// One bucket per local day (the homes' time zone, at the offset in force at the
    /// start of the range: exact for zones without daylight saving, like Asia/Shanghai).
    Day,
}

/// What to fetch. At least one of `household_id`, `device_id`, `measurement` is needed;
/// `measurement = "activity"` reads the hourly aggregates of `household_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    /// Only this household.
    pub household_id: Option<String>,
    /// Only this device.
    pub device_id: Option<String>,
    /// Only this measurement (`door`, `motion`, `help`, `gas`, `fall`, `tamper`,
    /// `device`, `activity`).
    pub measurement: Option<String>,
    /// Only this field (`open`, `battery_pct`, …).
    pub field: Option<String>,
    /// From (inclusive, ms UTC).
    pub from_ms: i64,
    /// To (exclusive, ms UTC).
    pub to_ms: i64,
    /// Resolution.
    pub resolution: Resolution,
    /// Most points (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    pub limit: Option<u32>,
}

/// One value, or one bucket of values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Time (ms UTC); a bucket's start.
    pub at_ms: i64,
    /// The value; a bucket's mean.
    pub value: f64,
    /// Values in the bucket (1 for raw points). For event fields, whose values are 1
    /// (`motion.detected`, `help.press`), this is the number of events.
    pub count: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
}

/// The points of one series (a measurement's field with its tags).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Measurement.
    pub measurement: String,
    /// Field.
    pub field: String,
    /// Tag `household`.
    pub household_id: Option<String>,
    /// Tag `device` (None for `activity`).
    pub device_id: Option<String>,
    /// Tag `room`.
    pub room: Option<String>,
    /// Tag `kind` (device kind).
    pub kind: Option<String>,
    /// Points in time order.
    pub points: Vec<SeriesPoint>,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryResult {
    /// Series, sorted by measurement, field, household, device.
    pub series: Vec<Series>,
    /// More points matched than the limit allowed.
    pub truncated: bool,
}

type Key = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn offset_ms(tz: &jiff::tz::TimeZone, at_ms: i64) -> i64 {
    let ts = jiff::Timestamp::from_millisecond(at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    i64::from(tz.to_offset(ts).seconds()) * 1000
}

/// Runs `q` against the embedded history.
pub async fn run(
    store: &Store,
    tz: &jiff::tz::TimeZone,
    q: &HistoryQuery,
) -> Result<HistoryResult, HistoryError> {
    if q.from_ms >= q.to_ms {
        return Err(HistoryError::BadRange {
            from_ms: q.from_ms,
            to_ms: q.to_ms,
        });
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
    if let Some(m) = &q.measurement {
        if m == ACTIVITY {
            return activity(store, tz, q, limit).await;
        }
        if !RAW_MEASUREMENTS.contains(&m.as_str()) {
            return Err(HistoryError::Unknown {
                what: "measurement",
                value: m.clone(),
            });
        }
    }
    if q.household_id.is_none() && q.device_id.is_none() && q.measurement.is_none() {
        return Err(HistoryError::Unscoped);
    }

    let filter = PointFilter {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        household_id: q.household_id.as_deref(),
        device_id: q.device_id.as_deref(),
        measurement: q.measurement.as_deref(),
        field: q.field.as_deref(),
    };
    let width = match q.resolution {
        Resolution::Raw => None,
        Resolution::Minute => Some(MINUTE_MS),
        Resolution::Hour => Some(HOUR_MS),
        Resolution::Day => Some(DAY_MS),
    };
    let offset = if q.resolution == Resolution::Day {
        offset_ms(tz, q.from_ms)
    } else {
        0
    };
    let buckets = width.map(|width_ms| Buckets {
        width_ms,
        offset_ms: offset,
    });
    // One row more than the limit tells whether more matched.
    let rows = store
        .history_series(&filter, buckets, limit as i64 + 1)
        .await?;
    let truncated = rows.len() > limit;
    let mut series: BTreeMap<Key, Vec<SeriesPoint>> = BTreeMap::new();
    for r in rows.into_iter().take(limit) {
        let key: Key = (
            r.measurement,
            r.field,
            r.household_id,
            r.device_id,
            r.room,
            r.kind,
        );
        let at_ms = match width {
            None => r.bucket,
            Some(w) => r.bucket * w - offset,
        };
        series.entry(key).or_default().push(SeriesPoint {
            at_ms,
            value: if r.count > 0 {
                r.sum / r.count as f64
            } else {
                r.sum
            },
            count: r.count,
            min: r.min,
            max: r.max,
            sum: r.sum,
        });
    }
    Ok(HistoryResult {
        series: series
            .into_iter()
            .map(
                |((measurement, field, household_id, device_id, room, kind), mut points)| {
                    points.sort_by_key(|p| p.at_ms);
                    Series {
                        measurement,
                        field,
                        household_id,
                        device_id,
                        room,
                        kind,
                        points,
                    }
                },
            )
            .collect(),
        truncated,
    })
}

async fn activity(
    store: &Store,
    tz: &jiff::tz::TimeZone,
    q: &HistoryQuery,
    limit: usize,
) -> Result<HistoryResult, HistoryError> {
    let Some(household) = &q.household_id else {
        return Err(HistoryError::Unscoped);
    };
    let fields: Vec<usize> = match &q.field {
        None => (0..Activity::FIELDS.len()).collect(),
        Some(f) => match Activity::FIELDS.iter().position(|k| k == f) {
            Some(i) => vec![i],
            None => {
                return Err(HistoryError::Unknown {
                    what: "field",
                    value: f.clone(),
                });
            }
        },
    };
    let rows = store
        .household_hourly(household, q.from_ms, q.to_ms, limit as i64 + 1)
        .await?;
    let truncated = rows.len() > limit;
    let offset = offset_ms(tz, q.from_ms);
    let mut per_field: Vec<Vec<SeriesPoint>> = vec![Vec::new(); fields.len()];
    for (hour, counts) in rows.into_iter().take(limit) {
        let a = Activity::from_values(counts);
        let values = a.values();
        let at_ms = if q.resolution == Resolution::Day {
            (hour + offset).div_euclid(DAY_MS) * DAY_MS - offset
        } else {
            hour
        };
        for (slot, &i) in fields.iter().enumerate() {
            let v = values[i] as f64;
            let pts = &mut per_field[slot];
            match pts.last_mut() {
                Some(p) if p.at_ms == at_ms => {
                    p.count += 1;
                    p.sum += v;
                    p.min = p.min.min(v);
                    p.max = p.max.max(v);
                    p.value = p.sum;
                }
                _ => pts.push(SeriesPoint {
                    at_ms,
                    value: v,
                    count: 1,
                    min: v,
                    max: v,
                    sum: v,
                }),
            }
        }
    }
    let series = fields
        .iter()
        .zip(per_field)
        .map(|(&i, points)| Series {
            measurement: ACTIVITY.to_string(),
            field: Activity::FIELDS[i].to_string(),
            household_id: Some(household.clone()),
            device_id: None,
            room: None,
            kind: None,
            points,
        })
        .collect();
    Ok(HistoryResult { series, truncated })
}
