//! `/kpis` and `/overview`: figures for supervisors — coverage, acknowledgement times,
//! open escalations — over the caller's committee, street, or everything.

use std::collections::HashMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz;
use super::super::error::{ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Denied};
use super::households::range;
use crate::signal::Audience;
use crate::workflow::{AlertFilter, GroupBy};

/// How to group figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupName {
    /// Per responsible caseworker.
    Caseworker,
    /// Per committee.
    Committee,
    /// Per street.
    Street,
    /// One row.
    All,
}

impl From<GroupName> for GroupBy {
    fn from(g: GroupName) -> GroupBy {
        match g {
            GroupName::Caseworker => GroupBy::Caseworker,
            GroupName::Committee => GroupBy::Committee,
            GroupName::Street => GroupBy::Street,
            GroupName::All => GroupBy::All,
        }
    }
}

/// Range and grouping.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// First local day `YYYY-MM-DD` (default: 7 days ago).
    pub from: Option<String>,
    /// Last local day, inclusive (default: today).
    pub to: Option<String>,
    /// Grouping (default: committee).
    #[param(inline)]
    pub group: Option<GroupName>,
}

/// The KPIs of one group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiView {
    /// Group id (`all` for the total row).
    pub group: String,
    /// Alerts about elders raised in the range.
    pub alerts: i64,
    /// Of which critical.
    pub critical: i64,
    /// Share of critical alerts acknowledged within 60 s.
    pub share_ack_60s: Option<f64>,
    /// Within 180 s.
    pub share_ack_180s: Option<f64>,
    /// Alerts nobody acknowledged.
    pub unacknowledged: i64,
    /// Median seconds to acknowledge.
    pub ack_median_s: Option<f64>,
    /// 90th percentile seconds to acknowledge.
    pub ack_p90_s: Option<f64>,
    /// Median seconds from raise to arrival.
    pub arrival_median_s: Option<f64>,
    /// Households.
    pub households: i64,
    /// Household-days with a contact / household-days.
    pub coverage: Option<f64>,
}

/// KPIs in my scope per group, with a total row `all` last.
#[utoipa::path(
    get,
    operation_id = "kpis_kpis",
    path = "/kpis",
    tag = "figures",
    params(KpiQuery),
    responses((status = 200, body = Vec<KpiView>), BadInput, Denied)
)]
pub async fn kpis(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<axum::Json<Vec<KpiView>>> {
    let (from, to) = range(&s, q.from.as_deref(), q.to.as_deref(), 7)?;
    let rows = s
        .workflow()
        .kpis(
            q.group.unwrap_or(GroupName::Committee).into(),
            &authz::scope_of(&p.user),
            from,
            to,
        )
        .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|r| KpiView {
                group: r.group,
                alerts: r.alerts,
                critical: r.critical,
                share_ack_60s: r.share_ack_60s,
                share_ack_180s: r.share_ack_180s,
                unacknowledged: r.unacknowledged,
                ack_median_s: r.ack_median_s,
                ack_p90_s: r.ack_p90_s,
                arrival_median_s: r.arrival_median_s,
                households: r.households,
                coverage: r.coverage,
            })
            .collect(),
    ))
}

/// One committee on the overview.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CommitteeOverview {
    /// Committee id.
    pub committee_id: String,
    /// Its name.
    pub committee_name: String,
    /// Households.
    pub households: i64,
    /// Contacted today.
    pub contacted_today: i64,
    /// contacted_today / households.
    pub coverage_today: Option<f64>,
    /// Open alerts about elders.
    pub open_alerts: i64,
    /// Of which escalated beyond the caseworker and not yet acknowledged.
    pub open_escalations: i64,
    /// Over the last 7 days: median seconds to acknowledge.
    pub ack_median_s: Option<f64>,
    /// 90th percentile.
    pub ack_p90_s: Option<f64>,
    /// Share of critical alerts acknowledged within 60 s.
    pub share_ack_60s: Option<f64>,
    /// Coverage over the 7 days.
    pub coverage_7d: Option<f64>,
}

/// The supervisors' overview.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Overview {
    /// Today (local).
    pub today: String,
    /// Committees in my scope.
    pub committees: Vec<CommitteeOverview>,
}

/// Coverage today, acknowledgement times over 7 days and open escalations, per
/// committee in my scope.
#[utoipa::path(
    get,
    operation_id = "kpis_overview",
    path = "/overview",
    tag = "figures",
    responses((status = 200, body = Overview), Denied)
)]
pub async fn overview(State(s): State<ApiState>, p: Principal) -> ApiResult<axum::Json<Overview>> {
    let wf = s.workflow();
    let today = wf.local_time().date(wf.now_ms());
    let (week, _) = range(&s, None, None, 7)?;
    let scope = authz::scope_of(&p.user);
    let kpis: HashMap<String, _> = wf
        .kpis(GroupBy::Committee, &scope, week, today)
        .await?
        .into_iter()
        .map(|r| (r.group.clone(), r))
        .collect();
    let coverage: HashMap<String, _> = wf
        .coverage(GroupBy::Committee, &scope, today, today)
        .await?
        .into_iter()
        .map(|r| (r.group.clone(), r))
        .collect();
    let households: HashMap<String, String> = wf
        .households(&scope)
        .await?
        .into_iter()
        .filter_map(|h| Some((h.id.0, h.committee_id?)))
        .collect();
    let mut open: HashMap<String, (i64, i64)> = HashMap::new();
    for a in wf
        .alerts(&AlertFilter {
            open_only: true,
            scope: Some(scope.clone()),
            audience: Some(Audience::Caseworker),
            limit: Some(100_000),
            ..AlertFilter::default()
        })
        .await?
    {
        let Some(c) = a.household_id.as_ref().and_then(|h| households.get(h)) else {
            continue;
        };
        let e = open.entry(c.clone()).or_default();
        e.0 += 1;
        if a.escalation_step > 1 && !a.state.is_acknowledged() {
            e.1 += 1;
        }
    }
    let names: HashMap<String, String> = s.store().committee_names().await?;
    let mut ids: Vec<String> = coverage.keys().cloned().collect();
    ids.retain(|c| c != "(none)");
    ids.sort();
    let committees = ids
        .into_iter()
        .map(|c| {
            let cov = coverage.get(&c);
            let k = kpis.get(&c);
            let (o, e) = open.get(&c).copied().unwrap_or((0, 0));
            CommitteeOverview {
                committee_name: names.get(&c).cloned().unwrap_or_else(|| c.clone()),
                households: cov.map(|r| r.households).unwrap_or(0),
                contacted_today: cov.map(|r| r.contacted).unwrap_or(0),
                coverage_today: cov.and_then(|r| r.coverage),
                open_alerts: o,
                open_escalations: e,
                ack_median_s: k.and_then(|r| r.ack_median_s),
                ack_p90_s: k.and_then(|r| r.ack_p90_s),
                share_ack_60s: k.and_then(|r| r.share_ack_60s),
                coverage_7d: k.and_then(|r| r.coverage),
                committee_id: c,
            }
        })
        .collect();
    Ok(axum::Json(Overview {
        today: today.to_string(),
        committees,
    }))
}
