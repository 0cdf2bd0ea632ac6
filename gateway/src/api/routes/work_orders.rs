//! Technicians' work orders, through the provisioning service: the list (open ones by
//! default), opening one by hand (a technician's own finding) and closing one with what
//! was done. The sweep opens and closes most of them by itself (`offline`,
//! `low_battery`, `bridge_offline`); `suspicious` and `untested` wait for a technician.
//! Changes are audited (`work_order.open`, `work_order.close`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::WorkOrderView;
use super::devices::{addresses, sees_device};
use super::visibility;
use crate::provision::{ProvisionError, WorkOrderReason};

/// Longest detail or resolution.
const MAX_TEXT: usize = 2000;

fn text(field: &str, v: Option<&str>) -> ApiResult<String> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() <= MAX_TEXT => Ok(v.to_string()),
        Some(_) => Err(ApiError::bad_field(
            field,
            format!("{field}: at most {MAX_TEXT} characters"),
        )),
        None => Err(ApiError::bad_field(field, format!("{field} is required"))),
    }
}

/// Filters of the work-order list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkOrderQuery {
    /// Open ones only (default true); false: every one.
    pub open: Option<bool>,
    /// Of one household.
    pub household_id: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// Work orders of my area, newest first.
#[utoipa::path(
    get,
    operation_id = "work_orders_list",
    path = "/work-orders",
    tag = "devices",
    params(WorkOrderQuery),
    responses((status = 200, body = Page<WorkOrderView>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<WorkOrderQuery>,
) -> ApiResult<axum::Json<Page<WorkOrderView>>> {
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    let vis = visibility(&s, &p).await?;
    let household = q.household_id.as_deref();
    if household.is_some_and(|h| !vis.sees(h)) {
        return Ok(axum::Json(page.page(vec![])?));
    }
    let orders = s
        .provision()
        .work_orders(q.open.unwrap_or(true), household)
        .await?;
    let addr = addresses(&s).await?;
    let list: Vec<WorkOrderView> = orders
        .into_iter()
        .filter(|o| sees_device(&vis, o.household_id.as_deref()))
        .map(|o| {
            let a = o.household_id.as_ref().and_then(|h| addr.get(h)).cloned();
            WorkOrderView::of(o, a)
        })
        .collect();
    let page = page.page(list)?;
    s.audit_reads(
        &p.actor(),
        page.items.iter().filter_map(|o| o.household_id.as_deref()),
        "household.work_orders",
    )
    .await?;
    Ok(axum::Json(page))
}

/// A work order to open.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct OpenWorkOrder {
    /// Device.
    pub device_id: Option<String>,
    /// `offline`, `low_battery`, `suspicious`, `bridge_offline` or `untested`.
    pub reason: Option<String>,
    /// What was seen (1–2000 characters).
    pub detail: Option<String>,
}

/// Opens a work order by hand; when one is already open for the device and reason,
/// answers that one.
#[utoipa::path(
    post,
    operation_id = "work_orders_open",
    path = "/work-orders",
    tag = "devices",
    request_body = OpenWorkOrder,
    responses((status = 201, body = WorkOrderView), BadInput, Denied, Missing)
)]
pub async fn open(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(req): ApiJson<OpenWorkOrder>,
) -> ApiResult<(StatusCode, axum::Json<WorkOrderView>)> {
    let device = text("device_id", req.device_id.as_deref())?;
    let reason = req
        .reason
        .as_deref()
        .and_then(|r| WorkOrderReason::parse(r.trim()))
        .ok_or_else(|| {
            ApiError::bad_field(
                "reason",
                "reason: offline, low_battery, suspicious, bridge_offline or untested",
            )
        })?;
    let detail = text("detail", req.detail.as_deref())?;
    let vis = visibility(&s, &p).await?;
    let d = s.provision().device(&device).await?;
    if !sees_device(&vis, d.household_id.as_deref()) {
        return Err(ApiError::not_found("device"));
    }
    let id = s
        .provision()
        .open_work_order(&device, reason, &detail)
        .await?;
    let order = s.provision().work_order(id).await?;
    s.audit_action(
        &p.actor(),
        "work_order.open",
        "work_order",
        &id.to_string(),
        order.household_id.as_deref(),
        serde_json::json!({"via": "api", "device_id": device, "reason": reason.as_str(), "detail": detail}),
    )
    .await?;
    tracing::info!(user_id = %p.user.id, device_id = %device, work_order = id, reason = reason.as_str(), "work order opened through the API");
    let addr = addresses(&s).await?;
    let a = order
        .household_id
        .as_ref()
        .and_then(|h| addr.get(h))
        .cloned();
    Ok((StatusCode::CREATED, axum::Json(WorkOrderView::of(order, a))))
}

/// What was done.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CloseWorkOrder {
    /// What was done (1–2000 characters).
    pub resolution: Option<String>,
}

/// Closes a work order with what was done.
#[utoipa::path(
    post,
    operation_id = "work_orders_close",
    path = "/work-orders/{id}/close",
    tag = "devices",
    params(("id" = i64, Path, description = "Work order number")),
    request_body = CloseWorkOrder,
    responses((status = 200, body = WorkOrderView), BadInput, Denied, Missing, Conflicting)
)]
pub async fn close(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CloseWorkOrder>,
) -> ApiResult<axum::Json<WorkOrderView>> {
    let vis = visibility(&s, &p).await?;
    let order = s.provision().work_order(id).await?;
    if !sees_device(&vis, order.household_id.as_deref()) {
        return Err(ApiError::from(ProvisionError::UnknownWorkOrder(id)));
    }
    let resolution = text("resolution", req.resolution.as_deref())?;
    if order.closed_ms.is_some() {
        return Err(ApiError::new(
            super::super::error::ErrorCode::Conflict,
            "this work order is closed already",
        ));
    }
    let actor = p.actor();
    let closed = s
        .provision()
        .close_work_order(id, &actor.audit_name(), &resolution)
        .await?;
    s.audit_action(
        &actor,
        "work_order.close",
        "work_order",
        &id.to_string(),
        closed.household_id.as_deref(),
        serde_json::json!({"via": "api", "device_id": closed.device_id, "resolution": resolution}),
    )
    .await?;
    tracing::info!(user_id = %p.user.id, work_order = id, "work order closed through the API");
    let addr = addresses(&s).await?;
    let a = closed
        .household_id
        .as_ref()
        .and_then(|h| addr.get(h))
        .cloned();
    Ok(axum::Json(WorkOrderView::of(closed, a)))
}
