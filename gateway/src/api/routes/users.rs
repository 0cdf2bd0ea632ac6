//! `/users`: the people of the caller's committee or street (administrators: all);
//! administrators create users and set passwords.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::super::ApiState;
use super::super::auth::{self as a, Principal};
use super::super::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Denied, Missing};
use super::super::pagination::{Page, PageParams};
use super::super::views::{RoleName, UserView};
use crate::workflow::{NewUser, Role, User, UserId};

/// Whether `viewer` may see `u` in lists.
fn sees_user(viewer: &User, u: &User) -> bool {
    match viewer.role {
        Role::Admin => true,
        Role::StreetSupervisor => viewer.street_id.is_some() && u.street_id == viewer.street_id,
        _ => viewer.committee_id.is_some() && u.committee_id == viewer.committee_id,
    }
}

/// People of my committee (heads, caseworkers), my street (supervisors), or all
/// (administrators), by id.
#[utoipa::path(
    get,
    operation_id = "users_list",
    path = "/users",
    tag = "users",
    params(PageParams),
    responses((status = 200, body = Page<UserView>), BadInput, Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<axum::Json<Page<UserView>>> {
    let users: Vec<UserView> = s
        .workflow()
        .users()
        .await?
        .iter()
        .filter(|u| sees_user(&p.user, u))
        .map(UserView::from)
        .collect();
    Ok(axum::Json(page.page(users)?))
}

/// A user to create or update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserInput {
    /// Id (工号), also the login.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: RoleName,
    /// Committee (caseworkers, committee heads).
    pub committee_id: Option<String>,
    /// Street (supervisors).
    pub street_id: Option<String>,
    /// Mobile.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// On duty (street supervisors).
    #[serde(default)]
    pub on_duty: bool,
    /// A first password (at least 8 characters); omitted: unchanged.
    pub password: Option<String>,
}

/// Creates or updates a user (administrators).
#[utoipa::path(
    post,
    operation_id = "users_upsert",
    path = "/users",
    tag = "users",
    request_body = UserInput,
    responses((status = 200, body = UserView), BadInput, Denied)
)]
pub async fn upsert(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(u): ApiJson<UserInput>,
) -> ApiResult<axum::Json<UserView>> {
    crate::api::validate::id_field("id", &u.id)?;
    if let Some(pw) = &u.password {
        a::check_password_rules(pw)?;
    }
    let role: Role = u.role.into();
    let user = s
        .workflow()
        .upsert_user(
            &p.actor(),
            &NewUser {
                id: u.id.clone(),
                name: u.name.clone(),
                role: role.as_str().to_string(),
                committee_id: u.committee_id.clone(),
                street_id: u.street_id.clone(),
                phone: u.phone.clone(),
                email: u.email.clone(),
                wecom_userid: None,
                channels: String::new(),
                on_duty: u.on_duty,
            },
        )
        .await?;
    if let Some(pw) = &u.password {
        a::set_password(&s, &user.id, pw).await?;
    }
    tracing::info!(user_id = %p.user.id, target = %user.id, "user saved");
    Ok(axum::Json(UserView::from(&user)))
}

/// A password to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordSet {
    /// The new password (at least 8 characters).
    pub password: String,
}

/// Sets a user's password (administrators); the user's sessions end.
#[utoipa::path(
    put,
    operation_id = "users_set_password",
    path = "/users/{id}/password",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = PasswordSet,
    responses((status = 204, description = "Set"), BadInput, Denied, Missing)
)]
pub async fn set_password(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PasswordSet>,
) -> ApiResult<StatusCode> {
    let target = UserId::new(id);
    s.workflow().user(&target).await?;
    a::set_password(&s, &target, &req.password).await?;
    tracing::info!(user_id = %p.user.id, target = %target, "password set");
    Ok(StatusCode::NO_CONTENT)
}
