//! `/tokens`: API tokens of the caller, for integrations. The secret is shown once.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::super::ApiState;
use super::super::auth::{self as a, Principal, TokenInfo};
use super::super::error::{ApiJson, ApiPath, ApiResult};
use super::super::openapi::{BadInput, Denied, Missing};

/// My tokens, newest first (never their secrets).
#[utoipa::path(
    get,
    operation_id = "tokens_list",
    path = "/tokens",
    tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), Denied)
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
) -> ApiResult<axum::Json<Vec<TokenInfo>>> {
    Ok(axum::Json(a::tokens_of(&s, &p.user.id).await?))
}

/// A token to make.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// What it is for (1–100 characters).
    pub name: String,
    /// Lifetime in days (1–365, default 365).
    pub expires_in_days: Option<i64>,
}

/// A new token: `token` is shown only now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// Expires at (ms).
    pub expires_ms: Option<i64>,
}

/// Makes a token that acts as me (same role and scope).
#[utoipa::path(
    post,
    operation_id = "tokens_create",
    path = "/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses((status = 201, body = CreatedToken), BadInput, Denied)
)]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    ApiJson(req): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let (id, token, expires_ms) =
        a::create_token(&s, &p.user.id, &req.name, req.expires_in_days).await?;
    tracing::info!(user_id = %p.user.id, token_id = %id, "API token created");
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            id,
            name: req.name.trim().to_string(),
            token,
            expires_ms,
        }),
    ))
}

/// Revokes one of my tokens.
#[utoipa::path(
    delete,
    operation_id = "tokens_revoke",
    path = "/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), Denied, Missing)
)]
pub async fn revoke(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    a::revoke_token(&s, &p.user.id, &id).await?;
    tracing::info!(user_id = %p.user.id, token_id = %id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
