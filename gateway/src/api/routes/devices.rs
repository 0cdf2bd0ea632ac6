//! Devices, through the provisioning service (`gateway/src/provision/`,
//! [`Provisioning`](crate::provision::Provisioning)): the technician's device list with
//! health (last seen, battery and its trend, signal, firmware, false presses, open work
//! orders), one device in detail, a household's devices, registration (the secret is
//! answered **once**), rotation, revocation, the provisioning blob and the command that
//! flashes it.
//!
//! A device belongs to its household's scope: outside it (and for a device without a
//! household, unless the caller sees every household) it answers 404 exactly as a
//! missing one. Every change is in the audit trail (`device.register`, `device.rotate`,
//! `device.revoke`, `device.blob`); secrets are never logged nor audited, and answers
//! that carry one are `Cache-Control: no-store`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz::Visibility;
use super::super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorCode};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::{CredentialView, DeviceProblem, DeviceView, WorkOrderView};
use super::{visibility, visible_household};
use crate::provision::{
    self, FlashOptions, FlashTarget, HealthTrend, ProvisionError, Registration, Secret,
};

/// Signal below this is weak (dBm).
pub const WEAK_SIGNAL_DBM: i64 = -85;

/// Whether a device of `household` is visible with `vis`: its household's scope; a
/// device without a household (a Zigbee2MQTT bridge) only to those who see all.
pub fn sees_device(vis: &Visibility, household: Option<&str>) -> bool {
    match household {
        Some(h) => vis.sees(h),
        None => *vis == Visibility::All,
    }
}

/// Every household's address, by id (where the technician goes).
pub async fn addresses(s: &ApiState) -> ApiResult<HashMap<String, String>> {
    Ok(s.store().household_addresses().await?)
}

/// Devices with an open technician alert.
async fn alerted(s: &ApiState) -> ApiResult<HashSet<String>> {
    Ok(s.store().devices_with_open_technician_alerts().await?)
}

/// What the device views are made from.
struct Context {
    trends: HashMap<String, HealthTrend>,
    alerted: HashSet<String>,
    addresses: HashMap<String, String>,
    low_battery_pct: i64,
    warning_days: f64,
    suspicious_presses: u64,
}

impl Context {
    async fn load(s: &ApiState, household: Option<&str>) -> ApiResult<Context> {
        let cfg = &s.services().config;
        Ok(Context {
            trends: s.provision().health_trends(household).await?,
            alerted: alerted(s).await?,
            addresses: addresses(s).await?,
            low_battery_pct: i64::from(cfg.detect.low_battery_pct),
            warning_days: f64::from(cfg.provision.battery_warning_days),
            suspicious_presses: u64::from(cfg.provision.suspicious_false_presses.max(1)),
        })
    }

    fn view(&self, d: provision::DeviceView) -> DeviceView {
        let trend = self.trends.get(&d.device_id).cloned().unwrap_or_default();
        let h = &d.health;
        let credentials = CredentialView::from(d.credentials);
        let battery = h.battery_pct.map(i64::from);
        let rssi = h.rssi_dbm.map(i64::from);
        let false_presses = trend.false_presses as u64;
        let mut problems = vec![];
        if h.last_seen_ms.is_none() {
            problems.push(DeviceProblem::NeverSeen);
        } else if !h.online {
            problems.push(DeviceProblem::Offline);
        }
        if credentials.state == super::super::views::CredentialStateName::Revoked {
            problems.push(DeviceProblem::Revoked);
        }
        if battery.is_some_and(|b| b <= self.low_battery_pct) {
            problems.push(DeviceProblem::LowBattery);
        } else if trend
            .battery_days_left
            .is_some_and(|d| d < self.warning_days)
        {
            problems.push(DeviceProblem::BatterySoon);
        }
        if rssi.is_some_and(|r| r < WEAK_SIGNAL_DBM) {
            problems.push(DeviceProblem::WeakSignal);
        }
        if false_presses >= self.suspicious_presses {
            problems.push(DeviceProblem::FalsePresses);
        }
        if self.alerted.contains(&d.device_id) {
            problems.push(DeviceProblem::OpenAlert);
        }
        if !d.open_orders.is_empty() {
            problems.push(DeviceProblem::WorkOrder);
        }
        problems.sort();
        let address = |h: &Option<String>| h.as_ref().and_then(|h| self.addresses.get(h)).cloned();
        DeviceView {
            household_address: address(&d.household_id),
            open_work_orders: d
                .open_orders
                .into_iter()
                .map(|o| {
                    let a = address(&o.household_id);
                    WorkOrderView::of(o, a)
                })
                .collect(),
            id: d.device_id,
            household_id: d.household_id,
            kind: d.kind,
            room: d.room,
            serial: d.serial,
            zigbee_name: d.zigbee_name,
            online: h.online,
            last_seen_ms: h.last_seen_ms,
            battery_pct: battery,
            battery_pct_per_day: trend.battery_pct_per_day,
            battery_days_left: trend.battery_days_left,
            rssi_dbm: rssi,
            firmware: h.fw.clone(),
            heartbeat_s: h.interval_s.map(i64::from),
            false_presses,
            credentials,
            problems,
        }
    }
}

/// Devices (of one household, or all) with health, by household then id.
pub async fn device_views(s: &ApiState, household: Option<&str>) -> ApiResult<Vec<DeviceView>> {
    let list = s.provision().list(household).await?;
    let cx = Context::load(s, household).await?;
    Ok(list.into_iter().map(|d| cx.view(d)).collect())
}

/// One device the caller may see, or 404 — the same 404 as for one that does not exist.
async fn visible_device(s: &ApiState, p: &Principal, id: &str) -> ApiResult<DeviceView> {
    let vis = visibility(s, p).await?;
    let d = s.provision().device(id).await?;
    if !sees_device(&vis, d.household_id.as_deref()) {
        tracing::info!(user_id = %p.user.id, device_id = id, "device outside the caller's scope");
        return Err(ApiError::not_found("device"));
    }
    let cx = Context::load(s, d.household_id.as_deref()).await?;
    Ok(cx.view(d))
}

/// Answers that carry a secret are never stored by a browser or a proxy.
fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Filters of the device list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Of one household.
    pub household_id: Option<String>,
    /// Only devices with a problem (offline, never seen, revoked, low battery, weak
    /// signal, false presses, an open device alert or work order).
    pub problem: Option<bool>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// The devices of my area with their health; the worst problems first, then by
/// household and id.
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
    let household = q.household_id.as_deref().filter(|h| vis.sees(h));
    if q.household_id.is_some() && household.is_none() {
        return Ok(axum::Json(page.page(vec![])?));
    }
    let mut list: Vec<DeviceView> = device_views(&s, household)
        .await?
        .into_iter()
        .filter(|d| sees_device(&vis, d.household_id.as_deref()))
        .filter(|d| !q.problem.unwrap_or(false) || !d.problems.is_empty())
        .collect();
    // Stable: worst first, then household and id (the order of the service's list).
    list.sort_by_key(|d| (d.problems.is_empty(), d.problems.first().copied()));
    let page = page.page(list)?;
    s.audit_reads(
        &p.actor(),
        page.items.iter().filter_map(|d| d.household_id.as_deref()),
        "household.devices",
    )
    .await?;
    Ok(axum::Json(page))
}

/// A household's devices with their health (its caseworkers see them too).
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
    let list = device_views(&s, Some(&id)).await?;
    s.audit_reads(&p.actor(), [id.as_str()], "household.devices")
        .await?;
    Ok(axum::Json(list))
}

/// A battery sample.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BatterySample {
    /// When (ms).
    pub at_ms: i64,
    /// Battery (%).
    pub battery_pct: i64,
}

/// A help press and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PressView {
    /// When (ms).
    pub pressed_ms: i64,
    /// `pressed`, `cancelled` (within the device's window), `unattended` (nobody home),
    /// `test` (an installation test).
    pub outcome: String,
    /// How long after the press it was cancelled (ms).
    pub cancel_after_ms: Option<i64>,
}

/// One device in detail.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceDetail {
    /// The device, its health and open work orders.
    pub device: DeviceView,
    /// Battery samples of the last 30 days, oldest first (hourly at most).
    pub battery_samples: Vec<BatterySample>,
    /// Help presses of the last 30 days, newest first.
    pub presses: Vec<PressView>,
    /// Every work order of the device, newest first.
    pub work_orders: Vec<WorkOrderView>,
}

/// One device: health in detail (battery samples and trend, help presses and what
/// became of them), credentials (never the secret), every work order.
#[utoipa::path(
    get,
    operation_id = "devices_detail",
    path = "/devices/{id}",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceDetail), Denied, Missing)
)]
pub async fn detail(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<DeviceDetail>> {
    let device = visible_device(&s, &p, &id).await?;
    let h = s.provision().health(&id).await?;
    let address = device.household_address.clone();
    if let Some(hh) = &device.household_id {
        s.audit_reads(&p.actor(), [hh.as_str()], "household.devices")
            .await?;
    }
    Ok(axum::Json(DeviceDetail {
        battery_samples: h
            .battery_samples
            .iter()
            .map(|(at_ms, b)| BatterySample {
                at_ms: *at_ms,
                battery_pct: i64::from(*b),
            })
            .collect(),
        presses: h
            .presses
            .into_iter()
            .map(|p| PressView {
                pressed_ms: p.pressed_ms,
                outcome: p.outcome,
                cancel_after_ms: p.cancel_after_ms,
            })
            .collect(),
        work_orders: h
            .work_orders
            .into_iter()
            .map(|o| WorkOrderView::of(o, address.clone()))
            .collect(),
        device,
    }))
}

/// A device to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// `door`, `motion`, `help`, `gas`, `pendant` or `zigbee_bridge`.
    pub kind: Option<String>,
    /// Household (required, except for a Zigbee2MQTT bridge registered by someone who
    /// sees every household).
    pub household_id: Option<String>,
    /// Room (`entrance`, `bedroom`, `卫生间`…).
    pub room: Option<String>,
    /// Serial number or MAC address (unique).
    pub serial: Option<String>,
    /// Zigbee2MQTT friendly name or IEEE address (a Zigbee device: no credentials of
    /// its own); for a bridge, its path under the base topic.
    pub zigbee_name: Option<String>,
    /// Its id (1–32 of `A-Z a-z 0-9 _ -`); derived when absent (`h0001-door`).
    pub device_id: Option<String>,
}

/// A registered device and its secret, **shown once**: it is not stored and no later
/// answer carries it (a new one: `POST /devices/{id}/rotate`).
#[derive(Clone, Serialize, ToSchema)]
pub struct RegisteredDevice {
    /// The device.
    pub device: DeviceView,
    /// The MQTT password (32 hex digits); null for a Zigbee device behind its bridge.
    pub secret: Option<String>,
}

impl std::fmt::Debug for RegisteredDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredDevice")
            .field("device", &self.device.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Registers a device and issues its secret, answered once (`Cache-Control:
/// no-store`); the running broker accepts it at once.
#[utoipa::path(
    post,
    operation_id = "devices_register",
    path = "/devices",
    tag = "devices",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisteredDevice, description = "Registered; the secret is shown this once"),
        BadInput, Denied, Missing, Conflicting,
    )
)]
pub async fn register(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let kind = req
        .kind
        .clone()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_field(
                "kind",
                "kind is required: door, motion, help, gas, pendant or zigbee_bridge",
            )
        })?;
    let household = req
        .household_id
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    let vis = visibility(&s, &p).await?;
    match household {
        Some(h) if !vis.sees(h) => return Err(ApiError::not_found("household")),
        None if vis != Visibility::All => {
            return Err(ApiError::bad_field(
                "household_id",
                "a device belongs to a household",
            ));
        }
        _ => {}
    }
    let actor = p.actor();
    let by = actor.audit_name();
    let reg = s
        .provision()
        .register(
            Registration {
                device_id: req.device_id.clone().filter(|d| !d.trim().is_empty()),
                kind: kind.clone(),
                serial: req.serial.clone(),
                household_id: household.map(str::to_string),
                room: req.room.clone(),
                zigbee_name: req.zigbee_name.clone(),
            },
            &by,
        )
        .await?;
    s.audit_action(
        &actor,
        "device.register",
        "device",
        &reg.device_id,
        household,
        serde_json::json!({
            "via": "api",
            "kind": kind.trim().to_ascii_lowercase(),
            "room": req.room,
            "serial": req.serial,
            "zigbee_name": req.zigbee_name,
            "credentials": reg.secret.is_some(),
        }),
    )
    .await?;
    tracing::info!(user_id = %p.user.id, device_id = %reg.device_id, household_id = household.unwrap_or(""), "device registered through the API");
    let device = visible_device(&s, &p, &reg.device_id).await?;
    let body = RegisteredDevice {
        device,
        secret: reg.secret.as_ref().map(|x| x.expose().to_string()),
    };
    Ok(no_store(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
    ))
}

/// A newly issued secret, **shown once**.
#[derive(Clone, Serialize, ToSchema)]
pub struct IssuedSecret {
    /// Device.
    pub device_id: String,
    /// The new MQTT password (32 hex digits); the previous one stopped working.
    pub secret: String,
    /// Its generation.
    pub generation: i64,
}

impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("device_id", &self.device_id)
            .field("secret", &"<redacted>")
            .field("generation", &self.generation)
            .finish()
    }
}

/// Issues a new secret (answered once, `Cache-Control: no-store`): the old one stops
/// working at once and a connection made with it is closed. Also re-activates revoked
/// credentials.
#[utoipa::path(
    post,
    operation_id = "devices_rotate",
    path = "/devices/{id}/rotate",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = IssuedSecret), Denied, Missing, Conflicting)
)]
pub async fn rotate(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let d = visible_device(&s, &p, &id).await?;
    let actor = p.actor();
    let issued = s.provision().rotate(&id, &actor.audit_name()).await?;
    s.audit_action(
        &actor,
        "device.rotate",
        "device",
        &id,
        d.household_id.as_deref(),
        serde_json::json!({"via": "api", "generation": issued.generation}),
    )
    .await?;
    tracing::info!(user_id = %p.user.id, device_id = %id, generation = issued.generation, "device secret rotated through the API");
    let body = IssuedSecret {
        device_id: issued.device_id.clone(),
        secret: issued.secret.expose().to_string(),
        generation: i64::from(issued.generation),
    };
    Ok(no_store(axum::Json(body).into_response()))
}

/// Revokes a device's credentials: the broker refuses it from now on and closes its
/// connection (an external mosquitto at its reload).
#[utoipa::path(
    post,
    operation_id = "devices_revoke",
    path = "/devices/{id}/revoke",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceView), Denied, Missing, Conflicting)
)]
pub async fn revoke(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<DeviceView>> {
    let d = visible_device(&s, &p, &id).await?;
    let actor = p.actor();
    s.provision().revoke(&id, &actor.audit_name()).await?;
    s.audit_action(
        &actor,
        "device.revoke",
        "device",
        &id,
        d.household_id.as_deref(),
        serde_json::json!({"via": "api"}),
    )
    .await?;
    tracing::info!(user_id = %p.user.id, device_id = %id, "device credentials revoked through the API");
    Ok(axum::Json(visible_device(&s, &p, &id).await?))
}

/// The device's current secret, to write its blob.
#[derive(Clone, Deserialize, ToSchema)]
pub struct BlobRequest {
    /// The secret shown at registration or rotation (checked against the stored hash,
    /// so a blob never carries a wrong password).
    pub secret: Option<String>,
}

/// The provisioning blob (256 bytes: broker, port, TLS pin, device id, secret,
/// heartbeat and cancel windows; `anxin_firmware::provision::Provision`) for the
/// device's current secret, to write at its flash offset (`GET
/// /devices/{id}/flash-command`). `application/octet-stream`, `Cache-Control:
/// no-store`. A POST, so that the secret travels in the body and never in a URL.
#[utoipa::path(
    post,
    operation_id = "devices_blob",
    path = "/devices/{id}/blob",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    request_body = BlobRequest,
    responses(
        (status = 200, description = "The blob (256 bytes)", content_type = "application/octet-stream"),
        BadInput, Denied, Missing, Conflicting,
        (status = 503, description = "The gateway has no [provision] broker_host: blobs cannot be written", body = super::super::error::ErrorBody),
    )
)]
pub async fn blob(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<BlobRequest>,
) -> ApiResult<Response> {
    let d = visible_device(&s, &p, &id).await?;
    let secret = req
        .secret
        .as_deref()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .ok_or_else(|| ApiError::bad_field("secret", "the device's current secret is required"))?;
    let options = s.provision().blob_options().map_err(|e| match e {
        ProvisionError::Invalid { .. } => ApiError::new(
            ErrorCode::Unavailable,
            "this gateway cannot write blobs: set [provision] broker_host",
        ),
        other => ApiError::from(other),
    })?;
    let bytes = s
        .provision()
        .blob(&id, &Secret::from_text(secret), &options)
        .await?;
    s.audit_action(
        &p.actor(),
        "device.blob",
        "device",
        &id,
        d.household_id.as_deref(),
        serde_json::json!({"via": "api", "broker_host": options.broker_host, "broker_port": options.broker_port, "tls": options.ca_sha256.is_some()}),
    )
    .await?;
    tracing::info!(user_id = %p.user.id, device_id = %id, "provisioning blob written through the API");
    Ok(no_store(
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}.bin\""),
                ),
            ],
            bytes.to_vec(),
        )
            .into_response(),
    ))
}

/// Which board and how to reach it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlashQuery {
    /// `cortex-m` (nRF52840, probe-rs) or `esp32c3` (espflash).
    pub target: Option<String>,
    /// Serial port for espflash (e.g. `/dev/ttyACM0`).
    pub port: Option<String>,
    /// probe-rs chip (default `nRF52840_xxAA`).
    pub chip: Option<String>,
    /// Flash offset (`0x3ff000` or decimal; default: the board's).
    pub offset: Option<String>,
}

/// The command that writes a device's blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FlashCommandView {
    /// Device.
    pub device_id: String,
    /// `cortex-m` or `esp32c3`.
    pub target: String,
    /// The blob's file name as downloaded (`POST /devices/{id}/blob`).
    pub file_name: String,
    /// Flash offset.
    pub offset: i64,
    /// The command line.
    pub command: String,
}

fn short_text(field: &str, v: Option<&str>) -> ApiResult<Option<String>> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.len() <= 64 && !v.chars().any(char::is_control) => Ok(Some(v.to_string())),
        Some(_) => Err(ApiError::bad_field(
            field,
            format!("{field}: up to 64 printable characters"),
        )),
    }
}

/// The command that flashes the device's blob (probe-rs or espflash, with the offset).
#[utoipa::path(
    get,
    operation_id = "devices_flash_command",
    path = "/devices/{id}/flash-command",
    tag = "devices",
    params(("id" = String, Path, description = "Device id"), FlashQuery),
    responses((status = 200, body = FlashCommandView), BadInput, Denied, Missing)
)]
pub async fn flash_command(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<FlashQuery>,
) -> ApiResult<axum::Json<FlashCommandView>> {
    visible_device(&s, &p, &id).await?;
    let target_name = q.target.as_deref().unwrap_or("").trim().to_string();
    let target: FlashTarget = target_name
        .parse()
        .map_err(|_| ApiError::bad_field("target", "target: cortex-m or esp32c3"))?;
    let offset = match q.offset.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
        None => None,
        Some(o) => Some(
            match o.strip_prefix("0x").or_else(|| o.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => o.parse::<u32>(),
            }
            .map_err(|_| ApiError::bad_field("offset", "offset: a number, e.g. 0x3ff000"))?,
        ),
    };
    let options = FlashOptions {
        chip: short_text("chip", q.chip.as_deref())?,
        port: short_text("port", q.port.as_deref())?,
        offset,
    };
    let file_name = format!("{id}.bin");
    let command = provision::flash_command(target, Path::new(&file_name), &options);
    Ok(axum::Json(FlashCommandView {
        device_id: id,
        target: match target {
            FlashTarget::CortexM => "cortex-m",
            FlashTarget::Esp32c3 => "esp32c3",
        }
        .into(),
        file_name,
        offset: i64::from(offset.unwrap_or(target.default_offset())),
        command,
    }))
}
