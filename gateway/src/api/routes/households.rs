//! `/households`: my households today (tiles, worst first), one household in full,
//! today's timeline, the contact ledger, the mode (away, in hospital). Every read is
//! in the audit trail.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Conflicting, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::today;
use super::super::views::{
    ContactView, EmergencyContactView, HouseholdDetail, HouseholdTile, ModeName, TileStatus,
};
use super::{parse_day, visibility, visible_household};
use crate::detect::HouseholdMode;
use crate::workflow::Scope;

/// Filters of the households list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HouseholdQuery {
    /// Only tiles of this status.
    #[param(inline)]
    pub status: Option<TileStatus>,
    /// Only those I am responsible for (`caseworker`) or back up (`backup`).
    pub my_role: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// My households today, worst first: open alerts (critical first), no sign of life yet,
/// device problems, away, well; then not yet contacted today, then by risk.
#[utoipa::path(
    get,
    operation_id = "households_list",
    path = "/households",
    tag = "households",
    params(HouseholdQuery),
    responses((status = 200, body = Page<HouseholdTile>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<HouseholdQuery>,
) -> ApiResult<axum::Json<Page<HouseholdTile>>> {
    if let Some(r) = &q.my_role
        && r != "caseworker"
        && r != "backup"
    {
        return Err(ApiError::bad_field("my_role", "caseworker or backup"));
    }
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    let vis = visibility(&s, &p).await?;
    let households = today::households_of(&s, &p.user, &vis).await?;
    let tiles: Vec<HouseholdTile> = today::tiles(&s, households, Some(&p.user.id))
        .await?
        .into_iter()
        .filter(|t| q.status.is_none_or(|st| t.status == st))
        .filter(|t| q.my_role.is_none() || t.my_role == q.my_role)
        .collect();
    let page = page.page(tiles)?;
    s.audit_reads(
        &p.actor(),
        page.items.iter().map(|t| t.id.as_str()),
        "household.list",
    )
    .await?;
    Ok(axum::Json(page))
}

/// One household in full: today's tile, notes, emergency contacts.
#[utoipa::path(
    get,
    operation_id = "households_detail",
    path = "/households/{id}",
    tag = "households",
    params(("id" = String, Path, description = "Household id")),
    responses((status = 200, body = HouseholdDetail), Denied, Missing)
)]
pub async fn detail(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::Json<HouseholdDetail>> {
    let (h, _) = visible_household(&s, &p, &id).await?;
    let span = tracing::info_span!("household", household_id = %id, user_id = %p.user.id);
    let _e = span.enter();
    let notes = h.notes.clone();
    let contacts = h
        .emergency_contacts
        .iter()
        .map(|c| EmergencyContactView {
            name: c.name.clone(),
            relation: c.relation.clone(),
            phone: c.phone.clone(),
        })
        .collect();
    let street = h.street_id.clone();
    let view = s
        .detect()
        .views_of(&[id.as_str()])
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.household_id == id);
    let tile = today::tiles(&s, vec![h], Some(&p.user.id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("household"))?;
    s.audit_reads(&p.actor(), [id.as_str()], "household.view")
        .await?;
    Ok(axum::Json(HouseholdDetail {
        tile,
        notes,
        emergency_contacts: contacts,
        street_id: street,
        learned_days: view
            .as_ref()
            .map(|v| i64::from(v.learned_days))
            .unwrap_or(0),
        out_since_ms: view.and_then(|v| v.out_since_ms),
    }))
}

/// A day of a household.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// Local day `YYYY-MM-DD` (default: today).
    pub date: Option<String>,
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimelineItem {
    /// When (ms).
    pub at_ms: i64,
    /// `event` (a sensor), `alert` (raised) or `contact` (the ledger).
    pub source: String,
    /// Event kind (`door`, `motion`, `help`, `gas`, `fall`, `tamper`), alert kind, or
    /// contact method.
    pub kind: String,
    /// Device (events, alerts).
    pub device_id: Option<String>,
    /// Room of the device.
    pub room: Option<String>,
    /// The event's body, the alert's state, or the contact's outcome and note.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A day's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// Household.
    pub household_id: String,
    /// Local day.
    pub date: String,
    /// Items in time order (at most 2000 sensor events).
    pub items: Vec<TimelineItem>,
    /// More sensor events happened than are listed.
    pub truncated: bool,
}

/// Sensor events the timeline lists at most.
const TIMELINE_EVENTS: i64 = 2000;

/// A household's day: sensor events, alerts raised, contacts, in time order.
#[utoipa::path(
    get,
    operation_id = "households_timeline",
    path = "/households/{id}/timeline",
    tag = "households",
    params(("id" = String, Path, description = "Household id"), DayQuery),
    responses((status = 200, body = Timeline), BadInput, Denied, Missing)
)]
pub async fn timeline(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> ApiResult<axum::Json<Timeline>> {
    let lt = s.workflow().local_time();
    let date = match &q.date {
        Some(d) => parse_day("date", d)?,
        None => lt.date(s.workflow().now_ms()),
    };
    visible_household(&s, &p, &id).await?;
    let (from, to) = (lt.day_start(date), lt.day_end(date));
    let store = s.store();
    let rows = store
        .household_events(&id, from, to, TIMELINE_EVENTS + 1)
        .await?;
    let truncated = rows.len() as i64 > TIMELINE_EVENTS;
    let mut items = vec![];
    for r in rows.into_iter().take(TIMELINE_EVENTS as usize) {
        items.push(TimelineItem {
            at_ms: r.event_ms,
            source: "event".into(),
            kind: r.kind,
            device_id: Some(r.device_id),
            room: r.room,
            detail: serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        });
    }
    for r in store.alerts_raised_between(&id, from, to).await? {
        items.push(TimelineItem {
            at_ms: r.raised_ms,
            source: "alert".into(),
            kind: r.kind,
            device_id: r.device_id,
            room: None,
            detail: serde_json::json!({
                "state": r.state,
                "severity": r.severity,
                "outcome": r.outcome,
            }),
        });
    }
    for c in s
        .workflow()
        .contacts(&Scope::All, date, date)
        .await?
        .into_iter()
        .filter(|c| c.household_id.as_str() == id)
    {
        items.push(TimelineItem {
            at_ms: c.at_ms,
            source: "contact".into(),
            kind: c.method.as_str().into(),
            device_id: None,
            room: None,
            detail: serde_json::json!({ "outcome": c.outcome, "note": c.note, "user_id": c.user_id }),
        });
    }
    items.sort_by_key(|i| i.at_ms);
    s.audit_reads(&p.actor(), [id.as_str()], "household.timeline")
        .await?;
    Ok(axum::Json(Timeline {
        household_id: id,
        date: date.to_string(),
        items,
        truncated,
    }))
}

/// A range of local days.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First local day `YYYY-MM-DD` (default: 30 days ago).
    pub from: Option<String>,
    /// Last local day, inclusive (default: today).
    pub to: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// The household's contact ledger, newest first.
#[utoipa::path(
    get,
    operation_id = "households_contacts",
    path = "/households/{id}/contacts",
    tag = "households",
    params(("id" = String, Path, description = "Household id"), RangeQuery),
    responses((status = 200, body = Page<ContactView>), BadInput, Denied, Missing)
)]
pub async fn contacts(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<axum::Json<Page<ContactView>>> {
    let (from, to) = range(&s, q.from.as_deref(), q.to.as_deref(), 30)?;
    let page = PageParams {
        limit: q.limit,
        offset: q.offset,
    };
    page.limit()?;
    visible_household(&s, &p, &id).await?;
    let mut list: Vec<ContactView> = s
        .workflow()
        .contacts(&Scope::All, from, to)
        .await?
        .iter()
        .filter(|c| c.household_id.as_str() == id)
        .map(ContactView::from)
        .collect();
    list.reverse();
    s.audit_reads(&p.actor(), [id.as_str()], "household.contacts")
        .await?;
    Ok(axum::Json(page.page(list)?))
}

/// `from..=to` local days from optional texts, defaulting to the last `days` days.
pub fn range(
    s: &ApiState,
    from: Option<&str>,
    to: Option<&str>,
    days: i64,
) -> ApiResult<(jiff::civil::Date, jiff::civil::Date)> {
    let lt = s.workflow().local_time();
    let today = lt.date(s.workflow().now_ms());
    let to = match to {
        Some(t) => parse_day("to", t)?,
        None => today,
    };
    let from = match from {
        Some(f) => parse_day("from", f)?,
        None => to
            .checked_sub(jiff::Span::new().days(days - 1))
            .unwrap_or(to),
    };
    if to < from {
        return Err(ApiError::bad_field("to", "the range ends before it starts"));
    }
    if from.until(to).map(|s| s.get_days() > 400).unwrap_or(true) {
        return Err(ApiError::bad_field("from", "at most 400 days at a time"));
    }
    Ok((from, to))
}

/// A mode to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ModeRequest {
    /// `normal`, `away` (with family, travelling) or `hospital`. Installation tests are
    /// the technicians' (`/installations`).
    pub mode: ModeName,
    /// Until (ms; null: until changed back).
    pub until_ms: Option<i64>,
}

/// The mode now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModeState {
    /// Household.
    pub household_id: String,
    /// Mode.
    pub mode: ModeName,
    /// Until (ms).
    pub until_ms: Option<i64>,
}

/// Puts a household away (with family, in hospital) or back to normal: detection
/// silences the elder's inactivity alerts meanwhile (help, fall and gas still alarm).
#[utoipa::path(
    put,
    operation_id = "households_set_mode",
    path = "/households/{id}/mode",
    tag = "households",
    params(("id" = String, Path, description = "Household id")),
    request_body = ModeRequest,
    responses((status = 200, body = ModeState), BadInput, Denied, Missing, Conflicting)
)]
pub async fn set_mode(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ModeRequest>,
) -> ApiResult<axum::Json<ModeState>> {
    let mode: HouseholdMode = req.mode.into();
    if mode == HouseholdMode::InstallTest {
        return Err(ApiError::bad_field(
            "mode",
            "installation tests are started by a technician (POST /installations/{id})",
        ));
    }
    let now = s.workflow().now_ms();
    if req.until_ms.is_some_and(|u| u <= now) {
        return Err(ApiError::bad_field("until_ms", "the end is in the past"));
    }
    let until = if mode == HouseholdMode::Normal {
        None
    } else {
        req.until_ms
    };
    let (h, _) = visible_household(&s, &p, &id).await?;
    s.workflow()
        .set_household_mode(&p.actor(), &h.id, mode, until)
        .await?;
    tracing::info!(household_id = %id, user_id = %p.user.id, mode = mode.as_str(), "household mode set");
    s.household_changed(&id);
    Ok(axum::Json(ModeState {
        household_id: id,
        mode: req.mode,
        until_ms: until,
    }))
}
