//! Devices and installation tests: the technician's device list with health (battery,
//! signal, last seen, firmware) from `device_health`, a household's devices, and the
//! installation test (a household mode in which no caseworker is alarmed).
//!
//! The provisioning service (`gateway/src/provision/`, device registration,
//! credentials, work orders) is not here yet; when it lands these routes read and act
//! through it instead of the tables and the household mode.

use std::collections::HashSet;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz::Visibility;
use super::super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::{DeviceView, ModeName};
use super::{visibility, visible_household};
use crate::detect::HouseholdMode;

/// Battery below this is low (%).
pub const LOW_BATTERY_PCT: i64 = 20;
/// Signal below this is weak (dBm).
pub const WEAK_SIGNAL_DBM: i64 = -85;

/// Devices (of one household, or all), with health, by household then id.
async fn devices(s: &ApiState, household: Option<&str>) -> ApiResult<Vec<DeviceView>> {
    let sql = format!(
        "SELECT d.id, d.household_id, d.kind, d.room, h.address, dh.last_seen_ms, dh.battery_pct, \
         dh.battery_mv, dh.rssi_dbm, dh.fw, dh.online FROM devices d \
         LEFT JOIN households h ON h.id = d.household_id \
         LEFT JOIN device_health dh ON dh.device_id = d.id {} ORDER BY d.household_id, d.id",
        if household.is_some() {
            "WHERE d.household_id = $1"
        } else {
            ""
        }
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(h) = household {
        q = q.bind(h);
    }
    let rows = q.fetch_all(s.store().pool()).await?;
    let alerted: HashSet<String> = sqlx::query(
        "SELECT device_id FROM alerts WHERE closed_ms IS NULL AND audience = 'technician' \
         AND device_id IS NOT NULL",
    )
    .fetch_all(s.store().pool())
    .await?
    .iter()
    .filter_map(|r| r.try_get("device_id").ok())
    .collect();
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let last_seen: Option<i64> = r.try_get("last_seen_ms")?;
            let online = r.try_get::<Option<i32>, _>("online")?.unwrap_or(0) != 0;
            let battery: Option<i32> = r.try_get("battery_pct")?;
            let mv: Option<i32> = r.try_get("battery_mv")?;
            let rssi: Option<i32> = r.try_get("rssi_dbm")?;
            let mut problems = vec![];
            if last_seen.is_none() {
                problems.push("never_seen".to_string());
            } else if !online {
                problems.push("offline".into());
            }
            if battery.is_some_and(|b| i64::from(b) < LOW_BATTERY_PCT) {
                problems.push("low_battery".into());
            }
            if rssi.is_some_and(|r| i64::from(r) < WEAK_SIGNAL_DBM) {
                problems.push("weak_signal".into());
            }
            if alerted.contains(&id) {
                problems.push("open_alert".into());
            }
            Ok(DeviceView {
                household_id: r.try_get("household_id")?,
                household_address: r.try_get("address")?,
                kind: r.try_get("kind")?,
                room: r.try_get("room")?,
                online,
                last_seen_ms: last_seen,
                battery_pct: battery.map(i64::from),
                battery_mv: mv.map(i64::from),
                rssi_dbm: rssi.map(i64::from),
                firmware: r.try_get("fw")?,
                problems,
                id,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::from)
}

/// Filters of the device list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Of one household.
    pub household_id: Option<String>,
    /// Only devices with a problem (offline, never seen, low battery, weak signal, an
    /// open device alert).
    pub problem: Option<bool>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// The devices of my area with their health; problems first.
#[utoipa::path(
    get,
    operation_id = "devices_list",
    path = "/devices",
    tag = "devices",
    params(DeviceQuery),
    responses((status = 200, body = Page<DeviceView>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<DeviceQuery>,
) -> ApiResult<axum::Json<Page<DeviceView>>> {
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    let vis = visibility(&s, &p).await?;
    let mut list: Vec<DeviceView> = devices(&s, q.household_id.as_deref())
        .await?
        .into_iter()
        .filter(|d| match &d.household_id {
            Some(h) => vis.sees(h),
            None => vis == Visibility::All,
        })
        .filter(|d| !q.problem.unwrap_or(false) || !d.problems.is_empty())
        .collect();
    list.sort_by_key(|d| d.problems.is_empty());
    Ok(axum::Json(page.page(list)?))
}

/// A household's devices with their health.
#[utoipa::path(
    get,
    operation_id = "devices_of_household",
    path = "/households/{id}/devices",
    tag = "devices",
    params(("id" = String, Path, description = "Household id")),
    responses((status = 200, body = Vec<DeviceView>), Denied, Missing)
)]
pub async fn of_household(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<DeviceView>>> {
    visible_household(&s, &p, &id).await?;
    let list = devices(&s, Some(&id)).await?;
    s.audit_reads(&p.actor(), [id.as_str()], "household.devices")
        .await?;
    Ok(axum::Json(list))
}

/// A device during an installation test.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TestedDevice {
    /// The device and its health.
    pub device: DeviceView,
    /// Its last event (ms).
    pub last_event_ms: Option<i64>,
    /// It reported (an event or a heartbeat) since the test started.
    pub seen_since_start: bool,
}

/// A household's installation test.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Installation {
    /// Household.
    pub household_id: String,
    /// Its address.
    pub address: String,
    /// The mode now (`install_test` while a test runs).
    pub mode: ModeName,
    /// The test ends at (ms).
    pub until_ms: Option<i64>,
    /// The test started at (ms).
    pub started_ms: Option<i64>,
    /// Devices: which reported since the start.
    pub devices: Vec<TestedDevice>,
}

async fn installation_of(s: &ApiState, id: &str, address: String) -> ApiResult<Installation> {
    let view = s
        .detect()
        .views()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.household_id == id);
    let mode = view
        .as_ref()
        .map(|v| v.mode)
        .unwrap_or(HouseholdMode::Normal);
    let started: Option<i64> = if mode == HouseholdMode::InstallTest {
        sqlx::query_scalar(
            "SELECT MAX(at_ms) FROM audit WHERE household_id = $1 AND action = 'household.mode' \
             AND detail LIKE '%install_test%'",
        )
        .bind(id)
        .fetch_one(s.store().pool())
        .await?
    } else {
        None
    };
    let mut out = vec![];
    for d in devices(s, Some(id)).await? {
        let last_event: Option<i64> =
            sqlx::query_scalar("SELECT MAX(event_ms) FROM events WHERE device_id = $1")
                .bind(&d.id)
                .fetch_one(s.store().pool())
                .await?;
        let seen = started.is_some_and(|t| {
            last_event.is_some_and(|e| e >= t) || d.last_seen_ms.is_some_and(|l| l >= t)
        });
        out.push(TestedDevice {
            device: d,
            last_event_ms: last_event,
            seen_since_start: seen,
        });
    }
    Ok(Installation {
        household_id: id.to_string(),
        address,
        mode: mode.into(),
        until_ms: view.and_then(|v| v.mode_until_ms),
        started_ms: started,
        devices: out,
    })
}

/// The installation test of a household: which devices reported since it started.
#[utoipa::path(
    get,
    operation_id = "devices_installation",
    path = "/installations/{household_id}",
    tag = "devices",
    params(("household_id" = String, Path, description = "Household id")),
    responses((status = 200, body = Installation), Denied, Missing)
)]
pub async fn installation(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(household_id): ApiPath<String>,
) -> ApiResult<axum::Json<Installation>> {
    let (h, _) = visible_household(&s, &p, &household_id).await?;
    Ok(axum::Json(
        installation_of(&s, &household_id, h.address).await?,
    ))
}

/// How long a test runs.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TestRequest {
    /// Minutes on the gateway's clock (1–480, default 60).
    pub minutes: Option<i64>,
}

/// Starts an installation test: until it ends no caseworker is alarmed by this
/// household; the technician presses buttons and opens doors and watches each device
/// report.
#[utoipa::path(
    post,
    operation_id = "devices_start_installation",
    path = "/installations/{household_id}",
    tag = "devices",
    params(("household_id" = String, Path, description = "Household id")),
    request_body = TestRequest,
    responses((status = 200, body = Installation), BadInput, Denied, Missing, Conflicting)
)]
pub async fn start_installation(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(household_id): ApiPath<String>,
    ApiJson(req): ApiJson<TestRequest>,
) -> ApiResult<axum::Json<Installation>> {
    let minutes = req.minutes.unwrap_or(60);
    if !(1..=480).contains(&minutes) {
        return Err(ApiError::bad_field("minutes", "between 1 and 480"));
    }
    let (h, _) = visible_household(&s, &p, &household_id).await?;
    let until = s.workflow().now_ms() + minutes * 60_000;
    s.workflow()
        .set_household_mode(&p.actor(), &h.id, HouseholdMode::InstallTest, Some(until))
        .await?;
    tracing::info!(household_id = %h.id, user_id = %p.user.id, minutes, "installation test started");
    s.household_changed(&household_id);
    Ok(axum::Json(
        installation_of(&s, &household_id, h.address).await?,
    ))
}

/// Ends the installation test (the household is watched as usual again).
#[utoipa::path(
    delete,
    operation_id = "devices_stop_installation",
    path = "/installations/{household_id}",
    tag = "devices",
    params(("household_id" = String, Path, description = "Household id")),
    responses((status = 200, body = Installation), Denied, Missing, Conflicting)
)]
pub async fn stop_installation(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(household_id): ApiPath<String>,
) -> ApiResult<axum::Json<Installation>> {
    let (h, _) = visible_household(&s, &p, &household_id).await?;
    s.workflow()
        .set_household_mode(&p.actor(), &h.id, HouseholdMode::Normal, None)
        .await?;
    tracing::info!(household_id = %h.id, user_id = %p.user.id, "installation test ended");
    s.household_changed(&household_id);
    Ok(axum::Json(
        installation_of(&s, &household_id, h.address).await?,
    ))
}
