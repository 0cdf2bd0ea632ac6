//! Installation tests, through the provisioning service: while a test runs, detection
//! holds the household in `install_test` mode (no caseworker alert, no notification),
//! the home's devices confirm each input locally, and every device is checked off as
//! its event arrives (live on `/stream` as `installation` events for technicians and
//! administrators); the test ends by itself at its end time, or when stopped, with a
//! report whose untested devices get an `untested` work order.
//!
//! Starts and stops are audited (`installation.start`, `installation.stop`); reads as
//! `household.installation`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::error::{ApiJson, ApiPath, ApiResult};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::devices::addresses;
use super::{visibility, visible_household};
use crate::provision::{InstallTestView, ProvisionError, TestEvent};

/// A device in an installation test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstallDevice {
    /// Device.
    pub device_id: String,
    /// Kind.
    pub kind: String,
    /// Room.
    pub room: Option<String>,
    /// What the technician must do (English; the dashboard words it by kind).
    pub needs: String,
    /// Checked off at (ms); null: not yet.
    pub tested_ms: Option<i64>,
    /// By which event (`door opened`, `motion`, `help press`, `gas alarm`…).
    pub by: Option<String>,
}

/// A household's installation test: the running one, or the latest report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Installation {
    /// Household.
    pub household_id: String,
    /// Its address.
    pub household_address: Option<String>,
    /// A test is running now.
    pub running: bool,
    /// The test started at (ms); null: never tested.
    pub started_ms: Option<i64>,
    /// It ends by itself at (ms).
    pub until_ms: Option<i64>,
    /// It ended at (ms).
    pub ended_ms: Option<i64>,
    /// Who started it (`user:ID`, or the CLI's name).
    pub started_by: Option<String>,
    /// Devices checked off.
    pub tested: u64,
    /// Devices not (yet) checked off.
    pub untested: u64,
    /// Every device of the household: checked off first (in order), the untested ones
    /// at the end.
    pub devices: Vec<InstallDevice>,
}

impl Installation {
    fn of(v: InstallTestView, address: Option<String>) -> Installation {
        let mut devices: Vec<InstallDevice> = v
            .devices
            .into_iter()
            .map(|d| InstallDevice {
                device_id: d.device_id,
                kind: d.kind,
                room: d.room,
                needs: d.needs,
                tested_ms: d.tested_ms,
                by: d.by,
            })
            .collect();
        devices.sort_by_key(|d| (d.tested_ms.is_none(), d.tested_ms));
        let tested = devices.iter().filter(|d| d.tested_ms.is_some()).count() as u64;
        Installation {
            household_id: v.household_id,
            household_address: address,
            running: v.ended_ms.is_none(),
            started_ms: Some(v.started_ms),
            until_ms: Some(v.until_ms),
            ended_ms: v.ended_ms,
            started_by: v.started_by,
            tested,
            untested: devices.len() as u64 - tested,
            devices,
        }
    }

    fn never(household_id: String, address: Option<String>) -> Installation {
        Installation {
            household_id,
            household_address: address,
            running: false,
            started_ms: None,
            until_ms: None,
            ended_ms: None,
            started_by: None,
            tested: 0,
            untested: 0,
            devices: vec![],
        }
    }
}

/// Installation tests running in my area, oldest first.
#[utoipa::path(
    get,
    operation_id = "installations_running",
    path = "/installations",
    tag = "devices",
    responses((status = 200, body = Vec<Installation>), Denied)
)]
pub async fn running(
    State(s): State<ApiState>,
    p: Principal,
) -> ApiResult<axum::Json<Vec<Installation>>> {
    let vis = visibility(&s, &p).await?;
    let addr = addresses(&s).await?;
    let list: Vec<Installation> = s
        .provision()
        .running_tests()
        .await?
        .into_iter()
        .filter(|t| vis.sees(&t.household_id))
        .map(|t| {
            let a = addr.get(&t.household_id).cloned();
            Installation::of(t, a)
        })
        .collect();
    s.audit_reads(
        &p.actor(),
        list.iter().map(|t| t.household_id.as_str()),
        "household.installation",
    )
    .await?;
    Ok(axum::Json(list))
}

/// The installation test of a household: the running one with its check-offs, or the
/// latest report (`started_ms` null: never tested).
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
    let address = Some(h.address.clone());
    let view = match s.provision().test_status(&household_id).await {
        Ok(v) => Installation::of(v, address),
        Err(ProvisionError::NoTest(_)) => Installation::never(household_id.clone(), address),
        Err(e) => return Err(e.into()),
    };
    s.audit_reads(
        &p.actor(),
        [household_id.as_str()],
        "household.installation",
    )
    .await?;
    Ok(axum::Json(view))
}

/// How long a test runs.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TestRequest {
    /// Minutes on the gateway's clock (1–1440; default `[provision]
    /// install_test_minutes`, 30).
    pub minutes: Option<u32>,
}

/// Starts an installation test: until it ends no caseworker is alarmed by this
/// household; the technician presses buttons, opens doors and walks past sensors, and
/// watches each device being checked off.
#[utoipa::path(
    post,
    operation_id = "devices_start_installation",
    path = "/installations/{household_id}",
    tag = "devices",
    params(("household_id" = String, Path, description = "Household id")),
    request_body = TestRequest,
    responses((status = 200, body = Installation), BadInput, Denied, Missing, Conflicting)
)]
pub async fn start(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(household_id): ApiPath<String>,
    ApiJson(req): ApiJson<TestRequest>,
) -> ApiResult<axum::Json<Installation>> {
    let (h, _) = visible_household(&s, &p, &household_id).await?;
    let actor = p.actor();
    let view = s
        .provision()
        .start_test(&h.id.0, req.minutes, &actor.audit_name())
        .await?;
    s.audit_action(
        &actor,
        "installation.start",
        "household",
        &household_id,
        Some(&household_id),
        serde_json::json!({"via": "api", "started_ms": view.started_ms, "until_ms": view.until_ms}),
    )
    .await?;
    tracing::info!(household_id = %household_id, user_id = %p.user.id, until_ms = view.until_ms, "installation test started through the API");
    s.household_changed(&household_id);
    Ok(axum::Json(Installation::of(view, Some(h.address))))
}

/// Ends the running installation test now (the household is watched as usual again)
/// and answers its report; its untested devices get a work order.
#[utoipa::path(
    delete,
    operation_id = "devices_stop_installation",
    path = "/installations/{household_id}",
    tag = "devices",
    params(("household_id" = String, Path, description = "Household id")),
    responses((status = 200, body = Installation), Denied, Missing, Conflicting)
)]
pub async fn stop(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(household_id): ApiPath<String>,
) -> ApiResult<axum::Json<Installation>> {
    let (h, _) = visible_household(&s, &p, &household_id).await?;
    let actor = p.actor();
    let view = s
        .provision()
        .stop_test(&h.id.0, &actor.audit_name())
        .await?;
    let untested: Vec<&str> = view
        .untested()
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    s.audit_action(
        &actor,
        "installation.stop",
        "household",
        &household_id,
        Some(&household_id),
        serde_json::json!({"via": "api", "started_ms": view.started_ms, "untested": untested}),
    )
    .await?;
    tracing::info!(household_id = %household_id, user_id = %p.user.id, untested = untested.len(), "installation test stopped through the API");
    s.household_changed(&household_id);
    Ok(axum::Json(Installation::of(view, Some(h.address))))
}

/// What happened in an installation test (`event: installation` on `/stream`, for
/// technicians and administrators of the household's scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstallationEvent {
    /// `started`, `checked_off` or `ended` (then read the report with `GET
    /// /installations/{household_id}`).
    pub kind: InstallationEventKind,
    /// Household.
    pub household_id: String,
    /// The device checked off.
    pub device_id: Option<String>,
    /// By which event it was checked off.
    pub by: Option<String>,
    /// When (ms): checked off at, or ended at.
    pub at_ms: Option<i64>,
    /// The test ends by itself at (ms).
    pub until_ms: Option<i64>,
    /// Devices not checked off when it ended.
    pub untested: Vec<String>,
}

/// What an [`InstallationEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallationEventKind {
    /// A test started.
    Started,
    /// A device was checked off.
    CheckedOff,
    /// A test ended (by itself, or stopped).
    Ended,
}

impl From<TestEvent> for InstallationEvent {
    fn from(e: TestEvent) -> Self {
        match e {
            TestEvent::Started {
                household_id,
                until_ms,
            } => InstallationEvent {
                kind: InstallationEventKind::Started,
                household_id,
                device_id: None,
                by: None,
                at_ms: None,
                until_ms: Some(until_ms),
                untested: vec![],
            },
            TestEvent::CheckedOff(c) => InstallationEvent {
                kind: InstallationEventKind::CheckedOff,
                household_id: c.household_id,
                device_id: Some(c.device_id),
                by: Some(c.by),
                at_ms: Some(c.at_ms),
                until_ms: None,
                untested: vec![],
            },
            TestEvent::Ended(v) => InstallationEvent {
                kind: InstallationEventKind::Ended,
                untested: v.untested().iter().map(|d| d.device_id.clone()).collect(),
                household_id: v.household_id,
                device_id: None,
                by: None,
                at_ms: v.ended_ms,
                until_ms: Some(v.until_ms),
            },
        }
    }
}
