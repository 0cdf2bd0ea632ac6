//! `/alerts`: the alert queue and the lifecycle — acknowledge, on the way, arrived,
//! resolve with an outcome. Caseworkers, heads and supervisors see the elders' alerts
//! of their households; technicians the device alerts of theirs; administrators all.

use std::collections::HashMap;

use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz::{self, Visibility};
use super::super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::{AlertView, AudienceName, OutcomeName};
use super::visibility;
use crate::workflow::{Alert, AlertFilter, AlertId, Outcome};

/// Filters of the alert list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Only open alerts (default true).
    pub open: Option<bool>,
    /// Of one household.
    pub household_id: Option<String>,
    /// Of one audience (among those the role sees).
    #[param(inline)]
    pub audience: Option<AudienceName>,
    /// Raised at or after (ms).
    pub from_ms: Option<i64>,
    /// Raised before (ms).
    pub to_ms: Option<i64>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// Names and addresses of households, for alert views.
pub async fn names(
    s: &ApiState,
    ids: impl IntoIterator<Item = String>,
) -> ApiResult<HashMap<String, (String, String)>> {
    let mut out = HashMap::new();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        let row = s.store().household_name_address(&id).await?;
        if let Some(r) = row {
            out.insert(id, r);
        }
    }
    Ok(out)
}

/// An alert as the API shows it.
pub async fn view(s: &ApiState, a: &Alert) -> ApiResult<AlertView> {
    let n = names(s, a.household_id.clone()).await?;
    let h = a
        .household_id
        .as_ref()
        .and_then(|id| n.get(id))
        .map(|(n, a)| (n.as_str(), a.as_str()));
    Ok(AlertView::new(a, h))
}

/// The alerts I may see, open ones by default; the most urgent first (open before
/// closed, critical before warning, then newest).
#[utoipa::path(
    get,
    operation_id = "alerts_list",
    path = "/alerts",
    tag = "alerts",
    params(AlertQuery),
    responses((status = 200, body = Page<AlertView>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<axum::Json<Page<AlertView>>> {
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    if let (Some(f), Some(t)) = (q.from_ms, q.to_ms)
        && t <= f
    {
        return Err(ApiError::bad_field(
            "to_ms",
            "the range ends before it starts",
        ));
    }
    let vis = visibility(&s, &p).await?;
    if let Some(h) = &q.household_id
        && !vis.sees(h)
    {
        // The same answer as for a household without alerts.
        return Ok(axum::Json(page.page(vec![])?));
    }
    let scope = match (&vis, p.user.role) {
        (Visibility::All, _) => None,
        _ => Some(authz::scope_of(&p.user)),
    };
    let open = q.open.unwrap_or(true);
    let mut alerts: Vec<Alert> = s
        .workflow()
        .alerts(&AlertFilter {
            open_only: open,
            household_id: q.household_id.clone(),
            scope,
            audience: q.audience.map(Into::into),
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            limit: Some(if open { 10_000 } else { 2_000 }),
        })
        .await?
        .into_iter()
        .filter(|a| authz::sees_alert(&p.user, &vis, a.audience, a.household_id.as_deref()))
        .collect();
    alerts.sort_by_key(|a| {
        (
            !a.state.is_open(),
            std::cmp::Reverse(a.severity),
            std::cmp::Reverse(a.raised_ms),
        )
    });
    let page = page.page(alerts)?;
    let ids: Vec<String> = page
        .items
        .iter()
        .filter_map(|a| a.household_id.clone())
        .collect();
    let n = names(&s, ids).await?;
    let items: Vec<AlertView> = page
        .items
        .iter()
        .map(|a| {
            let h = a
                .household_id
                .as_ref()
                .and_then(|id| n.get(id))
                .map(|(n, a)| (n.as_str(), a.as_str()));
            AlertView::new(a, h)
        })
        .collect();
    s.audit_reads(
        &p.actor(),
        items.iter().filter_map(|a| a.household_id.as_deref()),
        "alert.list",
    )
    .await?;
    Ok(axum::Json(super::super::pagination::Page {
        items,
        total: page.total,
        offset: page.offset,
        limit: page.limit,
        next_offset: page.next_offset,
    }))
}

/// An alert the caller may see, or 404.
async fn visible_alert(s: &ApiState, p: &Principal, id: &str) -> ApiResult<Alert> {
    let a = s.workflow().alert(&AlertId::new(id)).await?;
    let vis = visibility(s, p).await?;
    if !authz::sees_alert(&p.user, &vis, a.audience, a.household_id.as_deref()) {
        tracing::info!(user_id = %p.user.id, alert_id = id, "alert outside the caller's scope");
        return Err(ApiError::not_found("alert"));
    }
    Ok(a)
}

/// One alert.
#[utoipa::path(
    get,
    operation_id = "alerts_detail",
    path = "/alerts/{id}",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertView), Denied, Missing)
)]
pub async fn detail(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<AlertView>> {
    let a = visible_alert(&s, &p, &id).await?;
    if let Some(h) = &a.household_id {
        s.audit_reads(&p.actor(), [h.as_str()], "alert.view")
            .await?;
    }
    Ok(axum::Json(view(&s, &a).await?))
}

async fn act(
    s: &ApiState,
    p: &Principal,
    id: &str,
    what: &'static str,
) -> ApiResult<axum::Json<AlertView>> {
    visible_alert(s, p, id).await?;
    let id = AlertId::new(id);
    let actor = p.actor();
    let wf = s.workflow();
    let a = match what {
        "acknowledge" => wf.acknowledge(&id, &actor).await?,
        "on_the_way" => wf.on_the_way(&id, &actor).await?,
        _ => wf.arrived(&id, &actor).await?,
    };
    tracing::info!(alert_id = %a.id, household_id = a.household_id.as_deref().unwrap_or(""), user_id = %p.user.id, action = what, "alert updated");
    Ok(axum::Json(view(s, &a).await?))
}

/// I take the alert: escalation stops, the elder's device shows that someone is
/// coming. Acknowledging again is a no-op; 409 when someone else took it.
#[utoipa::path(
    post,
    operation_id = "alerts_acknowledge",
    path = "/alerts/{id}/acknowledge",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertView), Denied, Missing, Conflicting)
)]
pub async fn acknowledge(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<AlertView>> {
    act(&s, &p, &id, "acknowledge").await
}

/// I am on the way (acknowledges first if nobody has).
#[utoipa::path(
    post,
    operation_id = "alerts_on_the_way",
    path = "/alerts/{id}/on-the-way",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertView), Denied, Missing, Conflicting)
)]
pub async fn on_the_way(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<AlertView>> {
    act(&s, &p, &id, "on_the_way").await
}

/// I am at the home.
#[utoipa::path(
    post,
    operation_id = "alerts_arrived",
    path = "/alerts/{id}/arrived",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertView), Denied, Missing, Conflicting)
)]
pub async fn arrived(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<AlertView>> {
    act(&s, &p, &id, "arrived").await
}

/// How the alert ended.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveRequest {
    /// Outcome category (required).
    pub outcome: Option<OutcomeName>,
    /// What happened (required, not blank).
    pub note: Option<String>,
    /// When someone should check again (ms), if at all.
    pub follow_up_due_ms: Option<i64>,
}

/// Closes the alert with an outcome: a category and a note are both required (422
/// otherwise, and nothing changes).
#[utoipa::path(
    post,
    operation_id = "alerts_resolve",
    path = "/alerts/{id}/resolve",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    request_body = ResolveRequest,
    responses(
        (status = 200, body = AlertView),
        BadInput,
        Denied,
        Missing,
        Conflicting,
        (status = 422, description = "An outcome (category and note) is required", body = ErrorBody),
    )
)]
pub async fn resolve(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<axum::Json<AlertView>> {
    visible_alert(&s, &p, &id).await?;
    let outcome = match (req.outcome, req.note) {
        (Some(c), Some(n)) => Some(Outcome {
            category: c.into(),
            note: n,
            follow_up_due_ms: req.follow_up_due_ms,
        }),
        _ => None,
    };
    let a = s
        .workflow()
        .resolve(&AlertId::new(&id), &p.actor(), outcome)
        .await?;
    tracing::info!(alert_id = %a.id, household_id = a.household_id.as_deref().unwrap_or(""), user_id = %p.user.id, outcome = a.outcome.as_deref().unwrap_or(""), "alert resolved");
    Ok(axum::Json(view(&s, &a).await?))
}
