//! The dashboard's review queries over the history tables: raw points of a household, a
//! device or a measurement over a time range, raw or in fixed-width buckets, and the
//! hourly aggregates of a household.

use sqlx::Row;

use super::history::{ActivityCounts, activity_counts};
use super::sql::SqlBuilder;
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
        let mut q =
            SqlBuilder::new("SELECT household_id, device_id, room, kind, measurement, field, ");
        match buckets {
            None => {
                q.push("at_ms AS b, CAST(1 AS BIGINT) AS n, value AS s, value AS lo, value AS hi")
            }
            Some(Buckets {
                width_ms,
                offset_ms,
            }) => q
                .push("((at_ms + ")
                .push_bind(offset_ms)
                .push(") / ")
                .push_bind(width_ms)
                .push(") AS b, COUNT(*) AS n, SUM(value) AS s, MIN(value) AS lo, MAX(value) AS hi"),
        };
        q.push(" FROM history_points WHERE at_ms >= ")
            .push_bind(filter.from_ms)
            .push(" AND at_ms < ")
            .push_bind(filter.to_ms);
        for (col, v) in [
            (" AND household_id = ", filter.household_id),
            (" AND device_id = ", filter.device_id),
            (" AND measurement = ", filter.measurement),
            (" AND field = ", filter.field),
        ] {
            if let Some(v) = v {
                q.push(col).push_bind(v);
            }
        }
        match buckets {
            None => q.push(" ORDER BY at_ms, point_id LIMIT "),
            Some(_) => q.push(
                " GROUP BY household_id, device_id, room, kind, measurement, field, b \
                 ORDER BY b LIMIT ",
            ),
        };
        q.push_bind(limit);
        let query = q.build()?;
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
