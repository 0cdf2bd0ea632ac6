//! `/contacts`: the daily-contact ledger (一日三问) of my households, and recording a
//! contact (with the needs it raised). No answer and no sign of life today makes a
//! visit task; a visit closes the household's open visit tasks.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz;
use super::super::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::{
    ContactMethodName, ContactOutcomeName, ContactView, NeedCategoryName, NeedView,
};
use super::households::range;
use super::{visibility, visible_household};
use crate::workflow::{HouseholdId, NewContact};

/// Filters of the ledger.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// First local day `YYYY-MM-DD` (default: today).
    pub from: Option<String>,
    /// Last local day, inclusive (default: today).
    pub to: Option<String>,
    /// Of one household.
    pub household_id: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// The ledger of my households, newest first.
#[utoipa::path(
    get,
    operation_id = "contacts_list",
    path = "/contacts",
    tag = "contacts",
    params(ContactQuery),
    responses((status = 200, body = Page<ContactView>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> ApiResult<axum::Json<Page<ContactView>>> {
    let (from, to) = range(&s, q.from.as_deref(), q.to.as_deref(), 1)?;
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    let vis = visibility(&s, &p).await?;
    let mut list: Vec<ContactView> = s
        .workflow()
        .contacts(&authz::scope_of(&p.user), from, to)
        .await?
        .iter()
        .filter(|c| vis.sees(c.household_id.as_str()))
        .filter(|c| {
            q.household_id
                .as_deref()
                .is_none_or(|h| c.household_id.as_str() == h)
        })
        .map(ContactView::from)
        .collect();
    list.reverse();
    let page = page.page(list)?;
    s.audit_reads(
        &p.actor(),
        page.items.iter().map(|c| c.household_id.as_str()),
        "contact.list",
    )
    .await?;
    Ok(axum::Json(page))
}

/// A need raised in a contact.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactNeed {
    /// Category.
    pub category: NeedCategoryName,
    /// What exactly (required).
    pub description: String,
}

/// A contact to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactInput {
    /// Household.
    pub household_id: String,
    /// Phone, WeChat or visit.
    pub method: ContactMethodName,
    /// Well, needs help, no answer, not at home.
    pub outcome: ContactOutcomeName,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// Needs raised (at most 20).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub needs: Vec<ContactNeed>,
    /// When (ms; default now; not in the future, not before 2000-01-01).
    pub at_ms: Option<i64>,
}

/// What recording did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactResult {
    /// The ledger entry.
    pub contact: ContactView,
    /// Needs created from it.
    pub needs: Vec<NeedView>,
    /// A visit task it made (no answer, no sign of life today).
    pub visit_task_id: Option<String>,
    /// Visit tasks it closed (a visit).
    pub closed_visit_tasks: Vec<String>,
}

/// Records a contact with one of my households.
#[utoipa::path(
    post,
    operation_id = "contacts_record",
    path = "/contacts",
    tag = "contacts",
    request_body = ContactInput,
    responses((status = 201, body = ContactResult), BadInput, Denied, Missing)
)]
pub async fn record(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(c): ApiJson<ContactInput>,
) -> ApiResult<(StatusCode, axum::Json<ContactResult>)> {
    if c.note.chars().count() > 4000 {
        return Err(ApiError::bad_field("note", "at most 4000 characters"));
    }
    let (h, _) = visible_household(&s, &p, &c.household_id).await?;
    let done = s
        .workflow()
        .record_contact(
            &p.actor(),
            &NewContact {
                household_id: HouseholdId::new(&c.household_id),
                method: c.method.into(),
                outcome: c.outcome.into(),
                note: c.note.clone(),
                needs: c
                    .needs
                    .iter()
                    .map(|n| (n.category.into(), n.description.clone()))
                    .collect(),
                at_ms: c.at_ms,
            },
        )
        .await?;
    tracing::info!(household_id = %h.id, user_id = %p.user.id, outcome = c.outcome.into_workflow().as_str(), "contact recorded");
    s.household_changed(h.id.as_str());
    Ok((
        StatusCode::CREATED,
        axum::Json(ContactResult {
            contact: ContactView::from(&done.contact),
            needs: done
                .needs
                .iter()
                .map(|n| NeedView::new(n, Some(h.name.clone())))
                .collect(),
            visit_task_id: done.visit_task.map(|t| t.id.0),
            closed_visit_tasks: done.closed_tasks.into_iter().map(|t| t.0).collect(),
        }),
    ))
}

impl ContactOutcomeName {
    fn into_workflow(self) -> crate::workflow::ContactOutcome {
        self.into()
    }
}
