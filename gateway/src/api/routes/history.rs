//! A household's history for charts: the hour-of-day × day activity heat map (hourly
//! aggregates, kept 400 days) and door / motion / gas / help / device series from the
//! embedded history.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Denied, Missing};
use super::visible_household;
use crate::history::{HistoryQuery, Resolution};

/// How many days the heat map shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Days back from today, today included (1–90, default 28).
    pub days: Option<u32>,
    /// Field of the hourly aggregate: `events` (default), `motion`, `door_open`,
    /// `active_minutes`.
    pub field: Option<String>,
}

/// The heat map: one row per local day (oldest first), 24 hourly cells.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityMap {
    /// Household.
    pub household_id: String,
    /// Field.
    pub field: String,
    /// Local days, oldest first.
    pub days: Vec<String>,
    /// `cells[d][h]`: the value in hour `h` (local) of `days[d]`; null: no data.
    pub cells: Vec<Vec<Option<f64>>>,
    /// Largest value (for the colour scale).
    pub max: f64,
}

const ACTIVITY_FIELDS: &[&str] = &[
    "events",
    "motion",
    "door_open",
    "help",
    "fall",
    "gas_alarm",
    "active_minutes",
];

/// Hour-of-day × day activity for the last weeks (hourly aggregates).
#[utoipa::path(
    get,
    operation_id = "history_activity",
    path = "/households/{id}/activity",
    tag = "households",
    params(("id" = String, Path, description = "Household id"), ActivityQuery),
    responses((status = 200, body = ActivityMap), BadInput, Denied, Missing)
)]
pub async fn activity(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> ApiResult<axum::Json<ActivityMap>> {
    let days = q.days.unwrap_or(28);
    if !(1..=90).contains(&days) {
        return Err(ApiError::bad_field("days", "between 1 and 90"));
    }
    let field = q.field.clone().unwrap_or_else(|| "events".into());
    if !ACTIVITY_FIELDS.contains(&field.as_str()) {
        return Err(ApiError::bad_field(
            "field",
            format!("one of {}", ACTIVITY_FIELDS.join(", ")),
        ));
    }
    visible_household(&s, &p, &id).await?;
    let wf = s.workflow();
    let lt = wf.local_time();
    let now = wf.now_ms();
    let today = lt.date(now);
    let first = today
        .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
        .unwrap_or(today);
    let from = lt.day_start(first);
    let result = s
        .history()
        .query(&HistoryQuery {
            household_id: Some(id.clone()),
            measurement: Some("activity".into()),
            field: Some(field.clone()),
            from_ms: from,
            to_ms: lt.day_end(today),
            resolution: Resolution::Raw,
            limit: Some(24 * 91),
            ..HistoryQuery::default()
        })
        .await?;
    let mut day_list = vec![];
    let mut d = first;
    while d <= today {
        day_list.push(d);
        d = crate::workflow::time::next_day(d);
    }
    let mut cells = vec![vec![None; 24]; day_list.len()];
    let mut max = 0.0f64;
    for series in &result.series {
        for pt in &series.points {
            let date = lt.date(pt.at_ms);
            let Some(row) = day_list.iter().position(|x| *x == date) else {
                continue;
            };
            let hour = (lt.minute_of_day(pt.at_ms) / 60).min(23) as usize;
            let v = pt.value;
            max = max.max(v);
            if let Some(c) = cells.get_mut(row).and_then(|r| r.get_mut(hour)) {
                *c = Some(c.unwrap_or(0.0) + v);
            }
        }
    }
    s.audit_reads(&p.actor(), [id.as_str()], "household.activity")
        .await?;
    Ok(axum::Json(ActivityMap {
        household_id: id,
        field,
        days: day_list.iter().map(|d| d.to_string()).collect(),
        cells,
        max,
    }))
}

/// A series query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// `door`, `motion`, `gas`, `help`, `fall`, `tamper`, `device`, `activity`.
    pub measurement: String,
    /// Only this field (`open`, `detected`, `alarm`, `ppm`, `battery_pct`, …).
    pub field: Option<String>,
    /// From (ms, inclusive; default 7 days ago).
    pub from_ms: Option<i64>,
    /// To (ms, exclusive; default now).
    pub to_ms: Option<i64>,
    /// `raw`, `minute`, `hour` (default) or `day`.
    pub resolution: Option<String>,
}

/// One value or bucket.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PointView {
    /// Time (ms), a bucket's start.
    pub at_ms: i64,
    /// Value (a bucket's mean).
    pub value: f64,
    /// Values in the bucket (events, for event fields).
    pub count: i64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// One series.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SeriesView {
    /// Measurement.
    pub measurement: String,
    /// Field.
    pub field: String,
    /// Device.
    pub device_id: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Points in time order.
    pub points: Vec<PointView>,
}

/// A history answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// Series.
    pub series: Vec<SeriesView>,
    /// More points matched than were returned.
    pub truncated: bool,
}

/// A household's series for charts (door openings, motion, gas, device health).
#[utoipa::path(
    get,
    operation_id = "history_history",
    path = "/households/{id}/history",
    tag = "households",
    params(("id" = String, Path, description = "Household id"), SeriesQuery),
    responses((status = 200, body = HistoryView), BadInput, Denied, Missing)
)]
pub async fn history(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> ApiResult<axum::Json<HistoryView>> {
    let resolution = match q.resolution.as_deref().unwrap_or("hour") {
        "raw" => Resolution::Raw,
        "minute" => Resolution::Minute,
        "hour" => Resolution::Hour,
        "day" => Resolution::Day,
        _ => {
            return Err(ApiError::bad_field(
                "resolution",
                "raw, minute, hour or day",
            ));
        }
    };
    let now = s.workflow().now_ms();
    let to = q.to_ms.unwrap_or(now);
    let from = q.from_ms.unwrap_or(to - 7 * 86_400_000);
    if to <= from {
        return Err(ApiError::bad_field(
            "to_ms",
            "the range ends before it starts",
        ));
    }
    visible_household(&s, &p, &id).await?;
    let r = s
        .history()
        .query(&HistoryQuery {
            household_id: Some(id.clone()),
            device_id: None,
            measurement: Some(q.measurement.clone()),
            field: q.field.clone(),
            from_ms: from,
            to_ms: to,
            resolution,
            limit: Some(20_000),
        })
        .await?;
    s.audit_reads(&p.actor(), [id.as_str()], "household.history")
        .await?;
    Ok(axum::Json(HistoryView {
        truncated: r.truncated,
        series: r
            .series
            .into_iter()
            .map(|s| SeriesView {
                measurement: s.measurement,
                field: s.field,
                device_id: s.device_id,
                room: s.room,
                points: s
                    .points
                    .into_iter()
                    .map(|p| PointView {
                        at_ms: p.at_ms,
                        value: p.value,
                        count: p.count,
                        min: p.min,
                        max: p.max,
                    })
                    .collect(),
            })
            .collect(),
    }))
}
