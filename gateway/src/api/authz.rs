//! The policy: which roles may call which route ([`RULES`]), and which households a
//! user may see ([`Visibility`]).
//!
//! Enforcement is in one place: the middleware [`enforce`] looks up the rule of the
//! matched route and method. A route without a rule is refused (fail closed, logged),
//! and the matrix test (`gateway/tests/api_authz_matrix.rs`) walks every route of the
//! OpenAPI document × every role against this table, so a new endpoint without a rule
//! fails it.
//!
//! | role | households | alerts |
//! |---|---|---|
//! | caseworker | those she is responsible for or backs up (包保) | elders' alerts of those |
//! | committee_head | of her committee | elders' alerts of those |
//! | street_supervisor | of the committees of his street | elders' alerts of those |
//! | technician | of his committee / street / all when unscoped — devices and installation only, no elders' notes | device alerts of those |
//! | admin | all | all, including the gateway's own |
//!
//! Outside the user's households a resource answers 404, exactly as a missing one does,
//! so that nobody learns which households exist.

use std::collections::HashSet;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::auth::{self, Refused};
use super::error::ApiError;
use crate::signal::Audience;
use crate::workflow::{Role, Scope, User};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anybody, without credentials.
    Public,
    /// Any authenticated user (the handler scopes what they see).
    AnyUser,
    /// Only these roles.
    Roles(&'static [Role]),
}

impl Access {
    /// Whether `role` passes.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyUser => true,
            Access::Roles(r) => r.contains(&role),
        }
    }
}

/// One rule: method and path (as in the OpenAPI document, relative to `/api/v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path template, e.g. `/alerts/{id}`.
    pub path: &'static str,
    /// Who.
    pub access: Access,
}

use Role::{Admin, Caseworker, CommitteeHead, StreetSupervisor, Technician};

/// People who look after elders (see elders' data in their scope).
pub const CARE: &[Role] = &[Caseworker, CommitteeHead, StreetSupervisor, Admin];
/// Supervisors: figures and exports.
pub const SUPERVISORS: &[Role] = &[CommitteeHead, StreetSupervisor, Admin];
/// Device people.
pub const TECH: &[Role] = &[Technician, Admin];
/// Devices of a household: its caseworkers and technicians.
pub const DEVICE_READERS: &[Role] = &[
    Caseworker,
    CommitteeHead,
    StreetSupervisor,
    Technician,
    Admin,
];
/// Integrations' tokens.
pub const TOKEN_HOLDERS: &[Role] = &[CommitteeHead, StreetSupervisor, Technician, Admin];
/// Administrators.
pub const ADMIN: &[Role] = &[Admin];

const fn r(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

/// The policy: every route of the API.
pub const RULES: &[Rule] = &[
    r("GET", "/openapi.json", Access::Public),
    r("POST", "/auth/login", Access::Public),
    r("POST", "/auth/logout", Access::AnyUser),
    r("GET", "/auth/me", Access::AnyUser),
    r("PUT", "/auth/password", Access::AnyUser),
    r("GET", "/tokens", Access::Roles(TOKEN_HOLDERS)),
    r("POST", "/tokens", Access::Roles(TOKEN_HOLDERS)),
    r("DELETE", "/tokens/{id}", Access::Roles(TOKEN_HOLDERS)),
    r("GET", "/users", Access::Roles(CARE)),
    r("POST", "/users", Access::Roles(ADMIN)),
    r("PUT", "/users/{id}/password", Access::Roles(ADMIN)),
    r("GET", "/households", Access::Roles(CARE)),
    r("GET", "/households/{id}", Access::Roles(CARE)),
    r("GET", "/households/{id}/timeline", Access::Roles(CARE)),
    r("GET", "/households/{id}/activity", Access::Roles(CARE)),
    r("GET", "/households/{id}/history", Access::Roles(CARE)),
    r("GET", "/households/{id}/contacts", Access::Roles(CARE)),
    r(
        "GET",
        "/households/{id}/devices",
        Access::Roles(DEVICE_READERS),
    ),
    r("PUT", "/households/{id}/mode", Access::Roles(CARE)),
    r("GET", "/alerts", Access::AnyUser),
    r("GET", "/alerts/{id}", Access::AnyUser),
    r("POST", "/alerts/{id}/acknowledge", Access::AnyUser),
    r("POST", "/alerts/{id}/on-the-way", Access::AnyUser),
    r("POST", "/alerts/{id}/arrived", Access::AnyUser),
    r("POST", "/alerts/{id}/resolve", Access::AnyUser),
    r("GET", "/contacts", Access::Roles(CARE)),
    r("POST", "/contacts", Access::Roles(CARE)),
    r("GET", "/needs", Access::Roles(CARE)),
    r("POST", "/needs", Access::Roles(CARE)),
    r("POST", "/needs/{id}/assign", Access::Roles(CARE)),
    r("POST", "/needs/{id}/fulfil", Access::Roles(CARE)),
    r("POST", "/needs/{id}/cancel", Access::Roles(CARE)),
    r("GET", "/kpis", Access::Roles(SUPERVISORS)),
    r("GET", "/overview", Access::Roles(SUPERVISORS)),
    r("GET", "/exports/{kind}", Access::Roles(SUPERVISORS)),
    r("GET", "/devices", Access::Roles(TECH)),
    r("POST", "/devices", Access::Roles(TECH)),
    r("GET", "/devices/{id}", Access::Roles(TECH)),
    r("POST", "/devices/{id}/rotate", Access::Roles(TECH)),
    r("POST", "/devices/{id}/revoke", Access::Roles(TECH)),
    r("POST", "/devices/{id}/blob", Access::Roles(TECH)),
    r("GET", "/devices/{id}/flash-command", Access::Roles(TECH)),
    r("GET", "/work-orders", Access::Roles(TECH)),
    r("POST", "/work-orders", Access::Roles(TECH)),
    r("POST", "/work-orders/{id}/close", Access::Roles(TECH)),
    r("GET", "/installations", Access::Roles(TECH)),
    r("GET", "/installations/{household_id}", Access::Roles(TECH)),
    r("POST", "/installations/{household_id}", Access::Roles(TECH)),
    r(
        "DELETE",
        "/installations/{household_id}",
        Access::Roles(TECH),
    ),
    r("GET", "/stream", Access::AnyUser),
];

/// The rule of `method` on `path` (relative to `/api/v1`).
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.path == path && r.method == method.as_str())
}

/// The API's mount point.
pub const PREFIX: &str = "/api/v1";

/// The policy middleware: finds the route's rule, authenticates, checks the role and
/// (for browser sessions) CSRF, and hands the [`Principal`] to the handler.
pub async fn enforce(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let rel = path.strip_prefix(PREFIX).unwrap_or(&path).to_string();
    let Some(rule) = rule_for(&parts.method, &rel) else {
        tracing::error!(route = %rel, method = %parts.method, "route has no authorisation rule; refused");
        return ApiError::forbidden().into_response();
    };
    if rule.access == Access::Public {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let principal = match auth::authenticate(&state, &parts).await {
        Ok(Ok(p)) => p,
        Ok(Err(why)) => {
            state.metrics().auth_refused(why);
            if why != Refused::Missing {
                tracing::info!(route = %rel, reason = ?why, "credentials refused");
            }
            return ApiError::unauthenticated().into_response();
        }
        Err(e) => return e.into_response(),
    };
    if !rule.access.allows(principal.user.role) {
        tracing::info!(user_id = %principal.user.id, role = %principal.user.role, route = %rel, method = %parts.method, "role not allowed");
        return ApiError::forbidden().into_response();
    }
    if let Err(e) = auth::check_csrf(&parts, &principal) {
        tracing::warn!(user_id = %principal.user.id, route = %rel, "CSRF check failed");
        return e.into_response();
    }
    let user_id = principal.user.id.0.clone();
    parts.extensions.insert(principal);
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    resp.extensions_mut()
        .insert(super::routes::ActedBy(user_id));
    resp
}

/// The households a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// All of them (administrators, unscoped technicians).
    All,
    /// These.
    Some(HashSet<String>),
}

impl Visibility {
    /// Whether `household` is visible.
    pub fn sees(&self, household: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Some(s) => s.contains(household),
        }
    }

    /// How many (None: all).
    pub fn len(&self) -> Option<usize> {
        match self {
            Visibility::All => None,
            Visibility::Some(s) => Some(s.len()),
        }
    }

    /// Sees nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// The workflow scope that covers a user's households (a superset for caseworkers,
/// whose backups are filtered with [`Visibility`]).
pub fn scope_of(user: &User) -> Scope {
    match user.role {
        Role::Admin => Scope::All,
        Role::CommitteeHead | Role::Caseworker => match &user.committee_id {
            Some(c) => Scope::Committee(c.clone()),
            None => Scope::Caseworker(user.id.clone()),
        },
        Role::StreetSupervisor => match &user.street_id {
            Some(s) => Scope::Street(s.clone()),
            None => Scope::Caseworker(user.id.clone()),
        },
        Role::Technician => match (&user.committee_id, &user.street_id) {
            (Some(c), _) => Scope::Committee(c.clone()),
            (None, Some(s)) => Scope::Street(s.clone()),
            (None, None) => Scope::All,
        },
    }
}

/// The households `user` may see.
pub async fn visibility(state: &ApiState, user: &User) -> Result<Visibility, ApiError> {
    let store = state.store();
    let ids = match (user.role, scope_of(user)) {
        (_, Scope::All) => return Ok(Visibility::All),
        (Role::Caseworker, _) => store.households_of_caseworker(user.id.as_str()).await?,
        (_, Scope::Committee(c)) => store.households_of_committee(&c).await?,
        (_, Scope::Street(s)) => store.households_of_street(&s).await?,
        // A supervisor or head without a committee or street sees nothing.
        _ => vec![],
    };
    Ok(Visibility::Some(ids.into_iter().collect()))
}

/// The alert audiences a role works on.
pub fn audiences_of(role: Role) -> &'static [Audience] {
    match role {
        Role::Caseworker | Role::CommitteeHead | Role::StreetSupervisor => &[Audience::Caseworker],
        Role::Technician => &[Audience::Technician],
        Role::Admin => &[Audience::Caseworker, Audience::Technician, Audience::System],
    }
}

/// Whether `user` with `vis` may see an alert of `audience` about `household`.
pub fn sees_alert(
    user: &User,
    vis: &Visibility,
    audience: Audience,
    household: Option<&str>,
) -> bool {
    audiences_of(user.role).contains(&audience)
        && match household {
            Some(h) => vis.sees(h),
            None => user.role == Role::Admin,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_has_two_rules() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn technicians_cannot_read_elders_data() {
        let tech_reads: Vec<_> = RULES
            .iter()
            .filter(|r| r.access.allows(Role::Technician))
            .map(|r| r.path)
            .collect();
        for p in [
            "/households/{id}",
            "/households/{id}/contacts",
            "/needs",
            "/contacts",
        ] {
            assert!(!tech_reads.contains(&p), "technician may read {p}");
        }
    }
}
