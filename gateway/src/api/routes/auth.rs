//! `/auth`: log in (a session cookie and its CSRF token), log out, who am I, change my
//! password.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::super::ApiState;
use super::super::auth::{self as a, LoginFailure, Principal, Via};
use super::super::error::{ApiError, ApiJson, ApiResult, ErrorBody, ErrorCode};
use super::super::openapi::{BadInput, Denied};
use super::super::views::UserView;
use super::visibility;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// User id (工号).
    pub user_id: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Who.
    pub user: UserView,
    /// Send this in `X-CSRF-Token` with every state-changing request of the session.
    pub csrf_token: String,
    /// The session ends at the latest at (ms), sooner after 8 h without a request.
    pub expires_ms: i64,
}

/// Logs in: sets the session cookie (`anxin_session`, HttpOnly, SameSite=Strict,
/// Secure over TLS) and returns the session's CSRF token. Failed attempts are limited
/// per user id and per client address (429 with `Retry-After`).
#[utoipa::path(
    post,
    operation_id = "auth_login",
    path = "/auth/login",
    tag = "auth",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the cookie is set", body = LoginResponse,
         headers(("set-cookie" = String, description = "anxin_session=…; HttpOnly; SameSite=Strict"))),
        BadInput,
        (status = 401, description = "Wrong user id or password", body = ErrorBody),
        (status = 403, description = "A cross-origin request", body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody,
         headers(("retry-after" = String, description = "Seconds to wait"))),
    )
)]
pub async fn login(
    State(s): State<ApiState>,
    parts: Parts,
    body: Result<ApiJson<LoginRequest>, ApiError>,
) -> ApiResult<Response> {
    a::check_origin(&parts)?;
    let ApiJson(req) = body.inspect_err(|_| s.metrics().login("bad_request"))?;
    if req.user_id.trim().is_empty() || req.user_id.len() > 64 {
        s.metrics().login("bad_request");
        return Err(ApiError::bad_field(
            "user_id",
            "a user id of 1 to 64 characters",
        ));
    }
    if req.password.is_empty() || req.password.len() > 1024 {
        s.metrics().login("bad_request");
        return Err(ApiError::bad_field("password", "a password is required"));
    }
    let client = a::client_of(&parts.extensions);
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match a::login(&s, &req.user_id, &req.password, &client, agent).await? {
        Ok((user, session)) => {
            s.metrics().login("ok");
            tracing::info!(user_id = %user.id, role = %user.role, "logged in");
            let cookie = a::session_cookie(&s, &parts, Some(&session.token));
            let mut resp = axum::Json(LoginResponse {
                user: UserView::from(&user),
                csrf_token: session.csrf,
                expires_ms: session.expires_ms,
            })
            .into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp.extensions_mut()
                .insert(super::ActedBy(user.id.0.clone()));
            Ok(resp)
        }
        Err(LoginFailure::BadCredentials) => {
            s.metrics().login("bad_credentials");
            tracing::info!(login = %req.user_id.chars().take(64).collect::<String>(), %client, "login refused: bad credentials");
            Err(ApiError::new(
                ErrorCode::BadCredentials,
                "wrong user id or password",
            ))
        }
        Err(LoginFailure::RateLimited(wait)) => {
            s.metrics().login("rate_limited");
            tracing::warn!(login = %req.user_id.chars().take(64).collect::<String>(), %client, wait_s = wait, "login refused: too many failures");
            Err(ApiError {
                retry_after_s: Some(wait),
                ..ApiError::new(
                    ErrorCode::RateLimited,
                    format!("too many failed logins; try again in {wait} s"),
                )
            })
        }
    }
}

/// Ends the session (or, with a token, does nothing) and clears the cookie.
#[utoipa::path(
    post,
    operation_id = "auth_logout",
    path = "/auth/logout",
    tag = "auth",
    responses((status = 204, description = "Logged out"), Denied)
)]
pub async fn logout(State(s): State<ApiState>, p: Principal, parts: Parts) -> ApiResult<Response> {
    if let Via::Session { token_hash, .. } = &p.via {
        a::logout(&s, token_hash).await?;
    }
    tracing::info!(user_id = %p.user.id, "logged out");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, a::session_cookie(&s, &parts, None));
    Ok(resp)
}

/// The current user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// Who.
    pub user: UserView,
    /// `session` or `token`.
    pub via: String,
    /// The session's CSRF token (sessions only).
    pub csrf_token: Option<String>,
    /// The households' time zone (IANA name).
    pub timezone: String,
    /// Today in that time zone (`YYYY-MM-DD`).
    pub today: String,
    /// Now on the gateway's clock (ms; the demo runs faster than real time).
    pub now_ms: i64,
    /// Households the user may see (null: all).
    pub households: Option<u64>,
}

/// Who am I: the user, the CSRF token of the session, the time zone and today.
#[utoipa::path(
    get,
    operation_id = "auth_me",
    path = "/auth/me",
    tag = "auth",
    responses((status = 200, body = Me), Denied)
)]
pub async fn me(State(s): State<ApiState>, p: Principal) -> ApiResult<axum::Json<Me>> {
    let vis = visibility(&s, &p).await?;
    let wf = s.workflow();
    let now = wf.now_ms();
    let (via, csrf) = match &p.via {
        Via::Session { csrf, .. } => ("session", Some(csrf.clone())),
        Via::Token { .. } => ("token", None),
    };
    Ok(axum::Json(Me {
        user: UserView::from(&p.user),
        via: via.into(),
        csrf_token: csrf,
        timezone: s.services().config.general.timezone.clone(),
        today: wf.local_time().date(now).to_string(),
        now_ms: now,
        households: vis.len().map(|n| n as u64),
    }))
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new one (at least 8 characters).
    pub new_password: String,
}

/// Changes my password (the current one is required); every session of mine ends,
/// including this one.
#[utoipa::path(
    put,
    operation_id = "auth_change_password",
    path = "/auth/password",
    tag = "auth",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; log in again"),
        BadInput,
        Denied,
    )
)]
pub async fn change_password(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let stored: Option<String> = s.store().password_hash(p.user.id.as_str()).await?;
    if !a::verify_password(&req.current_password, stored).await {
        return Err(ApiError::bad_field(
            "current_password",
            "the current password is wrong",
        ));
    }
    a::set_password(&s, &p.user.id, &req.new_password).await?;
    tracing::info!(user_id = %p.user.id, "password changed");
    Ok(StatusCode::NO_CONTENT)
}
