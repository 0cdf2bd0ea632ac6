//! The Anxin dashboard: pages and static assets compiled into the gateway binary, so
//! running it needs no separate build step. For now a placeholder start page (zh-CN with
//! an English switch); the caseworker pages arrive with the HTTP API.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../assets/index.html");

/// The dashboard's routes, to be merged into the gateway's router.
pub fn router() -> Router {
    Router::new().route("/", get(index))
}

async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX)
}
