//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations as the router is built (so a route cannot be served undocumented), and
//! served at `/api/v1/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::error::ErrorBody;
use super::routes::{
    alerts, auth, contacts, devices, exports, history, households, installations, kpis, needs,
    stream, tokens, users, work_orders,
};

/// The document's frame: info, server, security schemes, tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Anxin (安心) API",
        version = "1",
        description = "The gateway's HTTP API: alerts, households, daily contact, needs, devices, \
        figures and exports, with a live stream. Log in with `POST /auth/login` (a session \
        cookie and a CSRF token for state-changing requests) or send an API token \
        (`Authorization: Bearer anx_…`). Errors: one shape, `ErrorBody`. Lists: `Page`. \
        See docs/api.md."
    ),
    servers((url = "/api/v1", description = "this gateway")),
    security(("session" = []), ("token" = [])),
    modifiers(&Security),
    components(schemas(ErrorBody, installations::InstallationEvent)),
    tags(
        (name = "auth", description = "Login, sessions, the current user"),
        (name = "tokens", description = "API tokens for integrations"),
        (name = "users", description = "People who use the system"),
        (name = "households", description = "Households in the caller's scope (包保)"),
        (name = "alerts", description = "Alerts and their lifecycle (即接即办)"),
        (name = "contacts", description = "The daily-contact ledger (一日三问)"),
        (name = "needs", description = "The needs list (需求名单库)"),
        (name = "figures", description = "KPIs, coverage and the supervisors' overview"),
        (name = "exports", description = "Ledgers as CSV or XLSX (台账)"),
        (name = "devices", description = "Devices: registration, credentials, provisioning blobs, health, work orders, installation tests"),
        (name = "stream", description = "Live alerts and household status (server-sent events)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "Session cookie from POST /auth/login. State-changing requests also need \
                 the session's CSRF token in X-CSRF-Token.",
            ))),
        );
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("anx_<id>_<secret>")
                    .description(Some("API token from POST /tokens"))
                    .build(),
            ),
        );
    }
}

/// 401 and 403: not logged in; the role may not; (sessions) a missing CSRF token.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Denied {
    /// Not logged in, or the session or token ended.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The role may not do this, or (browser sessions) the CSRF token is missing or wrong.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// 400: the input is malformed.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BadInput {
    /// Bad JSON, a bad query parameter or value (`field` names it).
    #[response(status = 400)]
    BadRequest(ErrorBody),
}

/// 404: no such thing, or not the caller's to see (the two are not told apart).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Missing {
    /// No such thing, or outside the caller's households.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// 409: the state does not allow it.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Conflicting {
    /// The record is in a state that does not allow this (e.g. already closed, or
    /// acknowledged by someone else).
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// The router with every documented route (paths relative to `/api/v1`).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(document))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(users::list, users::upsert))
        .routes(routes!(users::set_password))
        .routes(routes!(households::list))
        .routes(routes!(households::detail))
        .routes(routes!(households::timeline))
        .routes(routes!(history::activity))
        .routes(routes!(history::history))
        .routes(routes!(households::contacts))
        .routes(routes!(devices::of_household))
        .routes(routes!(households::set_mode))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::detail))
        .routes(routes!(alerts::acknowledge))
        .routes(routes!(alerts::on_the_way))
        .routes(routes!(alerts::arrived))
        .routes(routes!(alerts::resolve))
        .routes(routes!(contacts::list, contacts::record))
        .routes(routes!(needs::list, needs::create))
        .routes(routes!(needs::assign))
        .routes(routes!(needs::fulfil))
        .routes(routes!(needs::cancel))
        .routes(routes!(kpis::kpis))
        .routes(routes!(kpis::overview))
        .routes(routes!(exports::export))
        .routes(routes!(devices::list, devices::register))
        .routes(routes!(devices::detail))
        .routes(routes!(devices::rotate))
        .routes(routes!(devices::revoke))
        .routes(routes!(devices::blob))
        .routes(routes!(devices::flash_command))
        .routes(routes!(work_orders::list, work_orders::open))
        .routes(routes!(work_orders::close))
        .routes(routes!(installations::running))
        .routes(routes!(
            installations::installation,
            installations::start,
            installations::stop
        ))
        .routes(routes!(stream::stream))
}

/// The whole document.
pub fn document_value() -> utoipa::openapi::OpenApi {
    let mut doc = routes().into_openapi();
    every_operation_may_answer_400(&mut doc);
    doc
}

/// Every request passes the input-validation layer (`api::validate`) before its route,
/// so every operation may answer 400: the response is added where a route's own list
/// does not have it.
fn every_operation_may_answer_400(doc: &mut utoipa::openapi::OpenApi) {
    let bad = doc.paths.paths.values().find_map(|item| {
        [&item.get, &item.put, &item.post, &item.delete]
            .into_iter()
            .flatten()
            .find_map(|op| op.responses.responses.get("400").cloned())
    });
    let Some(bad) = bad else { return };
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("400".to_string())
                .or_insert_with(|| bad.clone());
        }
    }
}

/// The document as JSON text (built once).
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        document_value()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    })
}

/// This document (OpenAPI 3.1).
#[utoipa::path(
    get,
    operation_id = "openapi_document",
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}
