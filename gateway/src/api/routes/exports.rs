//! `/exports/{kind}`: ledgers and figures of the caller's scope as CSV (UTF-8 with BOM,
//! for Excel) or XLSX (台账). Every export is in the audit trail.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::super::ApiState;
use super::super::auth::Principal;
use super::super::authz;
use super::super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::super::openapi::{BadInput, Denied};
use super::households::range;
use super::kpis::GroupName;
use crate::workflow::export::ExportRequest;
use crate::workflow::{ExportFormat, ExportKind, Role};

/// Format and range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// First local day `YYYY-MM-DD` (default: 30 days ago).
    pub from: Option<String>,
    /// Last local day, inclusive (default: today).
    pub to: Option<String>,
    /// Grouping of KPIs and coverage (default: committee).
    #[param(inline)]
    pub group: Option<GroupName>,
}

/// Exports `kind` (`contacts`, `alerts`, `needs`, `kpis`, `coverage`, `roster`; and,
/// for administrators, `users`, `committees`) for my scope.
#[utoipa::path(
    get,
    operation_id = "exports_export",
    path = "/exports/{kind}",
    tag = "exports",
    params(
        ("kind" = String, Path, description = "contacts, alerts, needs, kpis, coverage, roster, users, committees"),
        ExportQuery,
    ),
    responses(
        (status = 200, description = "The file: CSV (UTF-8 with BOM) or XLSX", content(
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        BadInput,
        Denied,
    )
)]
pub async fn export(
    State(s): State<ApiState>,
    p: Principal,
    ApiPath(kind): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let kind = ExportKind::parse(&kind).ok_or_else(|| {
        ApiError::bad_field(
            "kind",
            "one of contacts, alerts, needs, kpis, coverage, roster, users, committees",
        )
    })?;
    let format = match q.format.as_deref() {
        None => ExportFormat::Csv,
        Some(f) => {
            ExportFormat::parse(f).ok_or_else(|| ApiError::bad_field("format", "csv or xlsx"))?
        }
    };
    if matches!(kind, ExportKind::Users | ExportKind::Committees) && p.user.role != Role::Admin {
        return Err(ApiError::forbidden());
    }
    let (from, to) = range(&s, q.from.as_deref(), q.to.as_deref(), 30)?;
    let bytes = s
        .workflow()
        .export(
            &p.actor(),
            &ExportRequest {
                kind,
                format,
                scope: authz::scope_of(&p.user),
                from,
                to,
                group: q.group.unwrap_or(GroupName::Committee).into(),
            },
        )
        .await?;
    tracing::info!(user_id = %p.user.id, kind = ?kind, bytes = bytes.len(), "export");
    let (ctype, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    };
    let name = format!(
        "anxin-{}-{from}-{to}.{ext}",
        serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
