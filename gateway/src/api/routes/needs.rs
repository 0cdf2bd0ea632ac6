//! `/needs`: the needs list (需求名单库) of my households — medicine, food, repairs, an
//! escort to hospital — recorded, assigned and tracked to fulfilment.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz;
use super::super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::{NeedCategoryName, NeedStatusName, NeedView};
use super::{Reference, check_reference, visibility, visible_household};
use crate::workflow::{Need, NeedFilter, NeedId, NeedStatus, NewNeed, UserId};

/// Filters of the needs list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NeedQuery {
    /// Only this status (default: open and assigned).
    #[param(inline)]
    pub status: Option<NeedStatusName>,
    /// Of one household.
    pub household_id: Option<String>,
    /// Assigned to.
    pub assignee_id: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

async fn views(s: &ApiState, needs: &[Need]) -> ApiResult<Vec<NeedView>> {
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    for n in needs {
        if !names.contains_key(n.household_id.as_str()) {
            let name = s
                .store()
                .household_name_address(n.household_id.as_str())
                .await?
                .map(|(name, _)| name);
            names.insert(n.household_id.0.clone(), name);
        }
    }
    Ok(needs
        .iter()
        .map(|n| NeedView::new(n, names.get(n.household_id.as_str()).cloned().flatten()))
        .collect())
}

/// Needs of my households; open ones by default, oldest first (due first when set).
#[utoipa::path(
    get,
    operation_id = "needs_list",
    path = "/needs",
    tag = "needs",
    params(NeedQuery),
    responses((status = 200, body = Page<NeedView>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<NeedQuery>,
) -> ApiResult<axum::Json<Page<NeedView>>> {
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    let vis = visibility(&s, &p).await?;
    let statuses = match q.status {
        Some(st) => vec![st.into()],
        None => vec![NeedStatus::Open, NeedStatus::Assigned],
    };
    let mut needs: Vec<Need> = s
        .workflow()
        .needs(&NeedFilter {
            scope: Some(authz::scope_of(&p.user)),
            household_id: q.household_id.clone(),
            statuses,
            assignee_id: q.assignee_id.clone().map(UserId),
            from_ms: None,
            to_ms: None,
        })
        .await?
        .into_iter()
        .filter(|n| vis.sees(n.household_id.as_str()))
        .collect();
    needs.sort_by_key(|n| (n.due_ms.is_none(), n.due_ms, n.created_ms));
    let page = page.page(needs)?;
    let items = views(&s, &page.items).await?;
    s.audit_reads(
        &p.actor(),
        items.iter().map(|n| n.household_id.as_str()),
        "need.list",
    )
    .await?;
    Ok(axum::Json(Page {
        items,
        total: page.total,
        offset: page.offset,
        limit: page.limit,
        next_offset: page.next_offset,
    }))
}

/// A need to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NeedInput {
    /// Household.
    pub household_id: String,
    /// Category.
    pub category: NeedCategoryName,
    /// What exactly (required).
    pub description: String,
    /// Who takes care of it.
    pub assignee_id: Option<String>,
    /// By when (ms).
    pub due_ms: Option<i64>,
    /// The alert it came from.
    pub source_alert_id: Option<String>,
}

/// Records a need of one of my households.
#[utoipa::path(
    post,
    operation_id = "needs_create",
    path = "/needs",
    tag = "needs",
    request_body = NeedInput,
    responses((status = 201, body = NeedView), BadInput, Denied, Missing)
)]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(n): ApiJson<NeedInput>,
) -> ApiResult<(StatusCode, axum::Json<NeedView>)> {
    if n.description.trim().is_empty() || n.description.chars().count() > 2000 {
        return Err(ApiError::bad_field(
            "description",
            "say what is needed (1 to 2000 characters)",
        ));
    }
    let (h, _) = visible_household(&s, &p, &n.household_id).await?;
    if let Some(a) = &n.source_alert_id {
        check_reference(&s, &h.id, Reference::Alert(a)).await?;
    }
    if let Some(u) = &n.assignee_id {
        check_reference(&s, &h.id, Reference::Assignee(u)).await?;
    }
    let need = s
        .workflow()
        .create_need(
            &p.actor(),
            &NewNeed {
                household_id: h.id.clone(),
                category: n.category.into(),
                description: n.description.clone(),
                assignee_id: n.assignee_id.clone().map(UserId),
                due_ms: n.due_ms,
                source_alert_id: n.source_alert_id.clone(),
            },
        )
        .await?;
    tracing::info!(household_id = %h.id, user_id = %p.user.id, need_id = %need.id, "need recorded");
    Ok((
        StatusCode::CREATED,
        axum::Json(NeedView::new(&need, Some(h.name))),
    ))
}

/// A need the caller may see, or 404.
async fn visible_need(s: &ApiState, p: &Principal, id: &str) -> ApiResult<Need> {
    let n = s.workflow().need(&NeedId::new(id)).await?;
    if !visibility(s, p).await?.sees(n.household_id.as_str()) {
        return Err(ApiError::not_found("need"));
    }
    Ok(n)
}

/// Who takes care of a need.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignInput {
    /// The user.
    pub assignee_id: String,
    /// By when (ms).
    pub due_ms: Option<i64>,
}

/// Assigns a need.
#[utoipa::path(
    post,
    operation_id = "needs_assign",
    path = "/needs/{id}/assign",
    tag = "needs",
    params(("id" = String, Path, description = "Need id")),
    request_body = AssignInput,
    responses((status = 200, body = NeedView), BadInput, Denied, Missing, Conflicting)
)]
pub async fn assign(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(a): ApiJson<AssignInput>,
) -> ApiResult<axum::Json<NeedView>> {
    let need = visible_need(&s, &p, &id).await?;
    check_reference(&s, &need.household_id, Reference::Assignee(&a.assignee_id)).await?;
    let n = s
        .workflow()
        .assign_need(
            &p.actor(),
            &NeedId::new(&id),
            &UserId::new(a.assignee_id),
            a.due_ms,
        )
        .await
        .map_err(status_conflict)?;
    Ok(axum::Json(views(&s, &[n]).await?.remove(0)))
}

/// What was done.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteInput {
    /// The note (required).
    pub note: String,
}

/// A need's `Invalid { field: "status" }` is a state conflict.
fn status_conflict(e: crate::workflow::WorkflowError) -> ApiError {
    match e {
        crate::workflow::WorkflowError::Invalid {
            field: "status", ..
        } => ApiError::new(super::super::error::ErrorCode::Conflict, e.to_string()),
        e => e.into(),
    }
}

/// Marks a need fulfilled.
#[utoipa::path(
    post,
    operation_id = "needs_fulfil",
    path = "/needs/{id}/fulfil",
    tag = "needs",
    params(("id" = String, Path, description = "Need id")),
    request_body = NoteInput,
    responses((status = 200, body = NeedView), BadInput, Denied, Missing, Conflicting)
)]
pub async fn fulfil(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteInput>,
) -> ApiResult<axum::Json<NeedView>> {
    visible_need(&s, &p, &id).await?;
    let n = s
        .workflow()
        .fulfil_need(&p.actor(), &NeedId::new(&id), &b.note)
        .await
        .map_err(status_conflict)?;
    Ok(axum::Json(views(&s, &[n]).await?.remove(0)))
}

/// Closes a need as no longer needed.
#[utoipa::path(
    post,
    operation_id = "needs_cancel",
    path = "/needs/{id}/cancel",
    tag = "needs",
    params(("id" = String, Path, description = "Need id")),
    request_body = NoteInput,
    responses((status = 200, body = NeedView), BadInput, Denied, Missing, Conflicting)
)]
pub async fn cancel(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteInput>,
) -> ApiResult<axum::Json<NeedView>> {
    visible_need(&s, &p, &id).await?;
    let n = s
        .workflow()
        .cancel_need(&p.actor(), &NeedId::new(&id), &b.note)
        .await
        .map_err(status_conflict)?;
    Ok(axum::Json(views(&s, &[n]).await?.remove(0)))
}
