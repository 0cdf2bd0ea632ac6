//! One error type for the whole API, mapped to one JSON shape:
//!
//! ```json
//! {"code": "not_found", "message": "no such household", "field": null}
//! ```
//!
//! `code` is from a closed list ([`ErrorCode`]), stable for programs; `message` is for
//! people (English); `field` names the offending input when there is one. Internal
//! failures are logged with their cause and answered with a generic message, so a
//! database error never reaches the client.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::provision::ProvisionError;
use crate::workflow::WorkflowError;

/// The closed list of error codes (also the `code` label of
/// `anxin_api_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a bad query parameter, a bad value.
    BadRequest,
    /// No valid session or token.
    Unauthenticated,
    /// Wrong user id or password.
    BadCredentials,
    /// The role may not do this.
    Forbidden,
    /// A state-changing request of a browser session without the right `X-CSRF-Token`.
    CsrfFailed,
    /// No such thing — or one the caller may not see (the two are not told apart).
    NotFound,
    /// No such method on this path.
    MethodNotAllowed,
    /// The record changed or is in a state that does not allow this.
    Conflict,
    /// An alert is closed only with an outcome (category and note).
    OutcomeRequired,
    /// Too many login attempts; try again later (`Retry-After`).
    RateLimited,
    /// The request body is too large.
    PayloadTooLarge,
    /// Something failed inside the gateway (logged).
    Internal,
    /// A part of the gateway is not running.
    Unavailable,
}

impl ErrorCode {
    /// Stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::OutcomeRequired => "outcome_required",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The HTTP status of the code.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated | ErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::CsrfFailed => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::OutcomeRequired => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The one error body of the API.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The input at fault, when there is one.
    pub field: Option<String>,
}

/// An API error: becomes an [`ErrorBody`] with the code's status.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// The message for the client.
    pub message: String,
    /// The field at fault.
    pub field: Option<String>,
    /// Seconds to wait (429).
    pub retry_after_s: Option<u64>,
}

/// The API's result type.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after_s: None,
        }
    }

    /// 400 about one field.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.to_string()),
            ..ApiError::new(ErrorCode::BadRequest, message)
        }
    }

    /// 404: the same answer for "does not exist" and "not yours to see".
    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 403 for the role.
    pub fn forbidden() -> Self {
        ApiError::new(
            ErrorCode::Forbidden,
            "your role does not allow this request",
        )
    }

    /// 401.
    pub fn unauthenticated() -> Self {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "log in first (session cookie) or send an API token",
        )
    }

    /// 500; the cause is logged here and not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "API request failed inside the gateway");
        ApiError::new(ErrorCode::Internal, "internal error (logged)")
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        use WorkflowError as W;
        match e {
            W::UnknownAlert(_) => ApiError::not_found("alert"),
            W::UnknownHousehold(_) => ApiError::not_found("household"),
            W::UnknownUser(_) => ApiError::not_found("user"),
            W::UnknownNeed(_) => ApiError::not_found("need"),
            W::UnknownTask(_) => ApiError::not_found("visit task"),
            W::OutcomeRequired => ApiError {
                field: Some("outcome".into()),
                ..ApiError::new(ErrorCode::OutcomeRequired, e.to_string())
            },
            W::NotAllowed(_) => ApiError::new(ErrorCode::Forbidden, e.to_string()),
            W::InvalidTransition { .. } | W::AlreadyAcknowledged { .. } | W::Conflict(_) => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            W::Invalid { field, .. } => ApiError::bad_field(field, e.to_string()),
            W::ImportRejected(_) => ApiError::new(ErrorCode::BadRequest, e.to_string()),
            W::Mode(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            W::File(_) | W::Config(_) | W::Store(_) => ApiError::internal(&e),
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(e: ProvisionError) -> Self {
        use ProvisionError as P;
        match e {
            P::UnknownDevice(_) => ApiError::not_found("device"),
            P::UnknownHousehold(_) => ApiError::not_found("household"),
            P::UnknownWorkOrder(_) => ApiError::not_found("work order"),
            P::NoTest(_) => ApiError::new(
                ErrorCode::Conflict,
                "no installation test is running in this household",
            ),
            P::AlreadyRegistered(_) => ApiError {
                field: Some("device_id".into()),
                ..ApiError::new(ErrorCode::Conflict, e.to_string())
            },
            P::SerialTaken { .. } => ApiError {
                field: Some("serial".into()),
                ..ApiError::new(ErrorCode::Conflict, e.to_string())
            },
            P::ZigbeeNameTaken { .. } => ApiError {
                field: Some("zigbee_name".into()),
                ..ApiError::new(ErrorCode::Conflict, e.to_string())
            },
            P::TestRunning(_) | P::NoCredentials(_) | P::Revoked(_) => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            P::BadDeviceId(_) => ApiError::bad_field("device_id", e.to_string()),
            P::BadKind(_) => ApiError::bad_field("kind", e.to_string()),
            P::WrongSecret(_) => {
                ApiError::bad_field("secret", "that is not the device's current secret")
            }
            P::Invalid { field, .. } => {
                let field = if field == "household" {
                    "household_id"
                } else {
                    field
                };
                ApiError::bad_field(field, e.to_string())
            }
            P::Blob(_) | P::CaCert { .. } | P::Io { .. } | P::Reload(_) | P::Store(_) => {
                ApiError::internal(&e)
            }
            P::Detect(_) => ApiError::new(ErrorCode::Unavailable, "detection is not running"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(&e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(&e)
    }
}

impl From<crate::history::HistoryError> for ApiError {
    fn from(e: crate::history::HistoryError) -> Self {
        use crate::history::HistoryError as H;
        match e {
            H::Unscoped | H::BadRange { .. } | H::Unknown { .. } => {
                ApiError::new(ErrorCode::BadRequest, e.to_string())
            }
            H::Stopped => ApiError::new(ErrorCode::Unavailable, "history has stopped"),
            _ => ApiError::internal(&e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::PayloadTooLarge
        } else {
            ErrorCode::BadRequest
        };
        ApiError::new(code, format!("bad JSON body: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("bad query string: {}", r.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("bad path: {}", r.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            field: self.field,
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        // Read by the request middleware to count and log the error by its code.
        resp.extensions_mut().insert(self.code);
        resp
    }
}

/// `axum::Json` whose rejection is an [`ApiError`] (the one error shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(ApiError::from)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(ApiError::from)
    }
}

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_household_and_a_hidden_one_give_the_same_answer() {
        let a = ApiError::from(WorkflowError::UnknownHousehold("h1".into()));
        let b = ApiError::not_found("household");
        assert_eq!(a.code, b.code);
        assert_eq!(a.message, b.message);
        assert!(!a.message.contains("h1"), "the id is not echoed");
    }

    #[test]
    fn every_code_has_a_status_of_its_class() {
        for c in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::RateLimited,
        ] {
            assert!(c.status().is_client_error(), "{c:?}");
        }
        assert!(ErrorCode::Internal.status().is_server_error());
    }
}
