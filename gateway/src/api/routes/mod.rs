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

/// Checks a local date `YYYY-MM-DD`.
pub fn parse_day(field: &str, s: &str) -> ApiResult<jiff::civil::Date> {
    s.parse::<jiff::civil::Date>()
        .map_err(|_| ApiError::bad_field(field, format!("{field} must be a date YYYY-MM-DD")))
}
