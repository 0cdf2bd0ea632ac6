//! The dashboard's review queries over the history tables: raw points of a household, a
//! device or a measurement over a time range, raw or in fixed-width buckets, and the
//! hourly aggregates of a household.

use sqlx::Row;

use super::history::{ActivityCounts, activity_counts};
use super::{Store, StoreError};

/// Which raw points a review query reads: a time range and optional tag and name
/// filters (all of them must match).
#[derive(Debug, Clone, Copy, Default)]
pub struct PointFilter<'a> {
    /// From (inclusive, ms UTC).
    pub from_ms: i64,
    /// To (exclusive, ms UTC).
    pub to_ms: i64,
    /// Only this household.
    pub household_id: Option<&'a str>,
    /// Only this device.
    pub device_id: Option<&'a str>,
    /// Only this measurement.
    pub measurement: Option<&'a str>,
    /// Only this field.
    pub field: Option<&'a str>,
}

/// Buckets of `width_ms`, their boundaries moved by `offset_ms` (a time zone's offset
/// for local days): bucket `b` holds the points with `(at_ms + offset_ms) / width_ms = b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// Width of a bucket.
    pub width_ms: i64,
    /// Offset added to each time before dividing.
    pub offset_ms: i64,
}

/// One raw point, or one bucket of points of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    /// Measurement.
    pub measurement: String,
    /// Field.
    pub field: String,
    /// Tag `household`.
    pub household_id: Option<String>,
    /// Tag `device`.
    pub device_id: Option<String>,
    /// Tag `room`.
    pub room: Option<String>,
    /// Tag `kind`.
    pub kind: Option<String>,
    /// A raw point's time (ms, UTC), or a bucket's number.
    pub bucket: i64,
    /// Values (1 for a raw point).
    pub count: i64,
    /// Sum of the values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

enum Bind<'a> {
    S(&'a str),
    I(i64),
}

impl Store {
    /// The raw points matching `filter`, each as a row of its own in time order
    /// (`buckets` None), or grouped per series and bucket in bucket order; at most
    /// `limit` rows.
    pub async fn history_series(
        &self,
        filter: &PointFilter<'_>,
        buckets: Option<Buckets>,
        limit: i64,
    ) -> Result<Vec<SeriesRow>, StoreError> {
        let mut conds = vec!["at_ms >= $1".to_string(), "at_ms < $2".to_string()];
        let mut binds = vec![Bind::I(filter.from_ms), Bind::I(filter.to_ms)];
        for (col, v) in [
            ("household_id", filter.household_id),
            ("device_id", filter.device_id),
            ("measurement", filter.measurement),
            ("field", filter.field),
        ] {
            if let Some(v) = v {
                binds.push(Bind::S(v));
                conds.push(format!("{col} = ${}", binds.len()));
            }
        }
        let sql = match buckets {
            None => {
                binds.push(Bind::I(limit));
                format!(
                    "SELECT household_id, device_id, room, kind, measurement, field, at_ms AS b, \
                     CAST(1 AS BIGINT) AS n, value AS s, value AS lo, value AS hi FROM history_points WHERE {} \
                     ORDER BY at_ms, point_id LIMIT ${}",
                    conds.join(" AND "),
                    binds.len()
                )
            }
            Some(Buckets {
                width_ms,
                offset_ms,
            }) => {
                binds.push(Bind::I(offset_ms));
                let o = binds.len();
                binds.push(Bind::I(width_ms));
                let wi = binds.len();
                binds.push(Bind::I(limit));
                format!(
                    "SELECT household_id, device_id, room, kind, measurement, field, \
                     ((at_ms + ${o}) / ${wi}) AS b, COUNT(*) AS n, SUM(value) AS s, MIN(value) AS lo, \
                     MAX(value) AS hi FROM history_points WHERE {} \
                     GROUP BY household_id, device_id, room, kind, measurement, field, b \
                     ORDER BY b LIMIT ${}",
                    conds.join(" AND "),
                    binds.len()
                )
            }
        };
        // Only fixed column names and placeholders are generated; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = match b {
                Bind::S(s) => query.bind(s),
                Bind::I(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(SeriesRow {
                    measurement: r.try_get("measurement")?,
                    field: r.try_get("field")?,
                    household_id: r.try_get("household_id")?,
                    device_id: r.try_get("device_id")?,
                    room: r.try_get("room")?,
                    kind: r.try_get("kind")?,
                    bucket: r.try_get("b")?,
                    count: r.try_get("n")?,
                    sum: r.try_get("s")?,
                    min: r.try_get("lo")?,
                    max: r.try_get("hi")?,
                })
            })
            .collect()
    }

    /// The hourly aggregates of `household` whose hour starts in `from_ms..to_ms`, as
    /// (hour start, counts) in hour order; at most `limit`.
    pub async fn household_hourly(
        &self,
        household: &str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<(i64, ActivityCounts)>, StoreError> {
        let rows = sqlx::query(
            "SELECT hour_ms, events, motion, door_open, help, fall, gas_alarm, active_minutes \
             FROM history_hourly WHERE household_id = $1 AND hour_ms >= $2 AND hour_ms < $3 \
             ORDER BY hour_ms LIMIT $4",
        )
        .bind(household)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("hour_ms")?, activity_counts(r)?)))
            .collect()
    }
}
