//! One file per resource. Handlers take the [`Principal`] the policy middleware
//! authenticated, check the household scope (404 outside it) and audit every read of
//! household data.

pub mod alerts;
pub mod auth;
pub mod contacts;
pub mod devices;
pub mod exports;
pub mod history;
pub mod households;
pub mod installations;
pub mod kpis;
pub mod needs;
pub mod stream;
pub mod tokens;
pub mod users;
pub mod work_orders;

use super::ApiState;
use super::auth::Principal;
use super::authz::{self, Visibility};
use super::error::{ApiError, ApiResult};
use crate::workflow::{Household, HouseholdId};

/// Who acted, on the response (for the request log).
#[derive(Debug, Clone)]
pub struct ActedBy(pub String);

/// The caller's visibility.
pub async fn visibility(state: &ApiState, p: &Principal) -> ApiResult<Visibility> {
    authz::visibility(state, &p.user).await
}

/// A household the caller may see, or 404 — the same 404 as for one that does not
/// exist.
pub async fn visible_household(
    state: &ApiState,
    p: &Principal,
    id: &str,
) -> ApiResult<(Household, Visibility)> {
    let vis = visibility(state, p).await?;
    if !vis.sees(id) {
        tracing::info!(user_id = %p.user.id, household_id = id, "household outside the caller's scope");
        return Err(ApiError::not_found("household"));
    }
    let h = state.workflow().household(&HouseholdId::new(id)).await?;
    Ok((h, vis))
}

/// A reference a request names (an alert it links, a user it assigns), checked against
/// the household the request is about. A reference outside it — another household's
/// alert, a user who does not look after the household — gets exactly the answer of a
/// missing one, so that ids outside the caller's scope cannot be probed.
pub enum Reference<'a> {
    /// An alert, which must be of the household.
    Alert(&'a str),
    /// A user to assign, who must be active and see the household in their own scope.
    Assignee(&'a str),
}

/// Checks `reference` against `household` (see [`Reference`]).
pub async fn check_reference(
    state: &ApiState,
    household: &HouseholdId,
    reference: Reference<'_>,
) -> ApiResult<()> {
    use crate::workflow::{AlertId, UserId, WorkflowError};
    match reference {
        Reference::Alert(id) => {
            let alert = match state.workflow().alert(&AlertId(id.to_string())).await {
                Err(WorkflowError::UnknownAlert(_)) => None,
                other => Some(other?),
            };
            if alert.is_none_or(|a| a.household_id.as_deref() != Some(household.as_str())) {
                tracing::info!(household_id = %household, alert_id = id, "alert reference outside the household");
                return Err(ApiError::not_found("alert"));
            }
        }
        Reference::Assignee(id) => {
            let user = match state.workflow().user(&UserId::new(id)).await {
                Err(WorkflowError::UnknownUser(_)) => None,
                other => Some(other?),
            };
            let in_scope = match &user {
                Some(u) if u.active => authz::visibility(state, u).await?.sees(household.as_str()),
                _ => false,
            };
            if !in_scope {
                tracing::info!(household_id = %household, assignee_id = id, "assignee outside the household's scope");
                return Err(ApiError::not_found("user"));
            }
        }
    }
    Ok(())
}

/// Checks a local date `YYYY-MM-DD`.
pub fn parse_day(field: &str, s: &str) -> ApiResult<jiff::civil::Date> {
    s.parse::<jiff::civil::Date>()
        .map_err(|_| ApiError::bad_field(field, format!("{field} must be a date YYYY-MM-DD")))
}
