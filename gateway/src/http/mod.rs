//! The HTTP server: health, metrics, the API at `/api/v1` (`crate::api`) and the
//! dashboard at `/` (the `anxin-dashboard` crate).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use tokio::sync::watch;

use crate::api::{self, ApiState};
use crate::store::Store;
use crate::telemetry::Metrics;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The store.
    pub store: Store,
    /// Whether the gateway's MQTT session is up.
    pub mqtt_connected: watch::Receiver<bool>,
    /// The API (None: health, metrics and the dashboard only).
    pub api: Option<ApiState>,
}

/// The router: `/healthz`, `/metrics`, the API at `/api/v1`, and the dashboard at `/`.
pub fn router(state: HttpState) -> Router {
    let api = state.api.clone();
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state);
    if let Some(api) = api {
        r = r.nest(api::authz::PREFIX, api::router(api));
    }
    r.merge(anxin_dashboard::router())
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    mqtt_connected: bool,
    store_ok: bool,
    /// The last journal commit succeeded (false: disk full or writes refused).
    store_writable: bool,
}

/// 200 when the MQTT session is up and the store answers and takes writes, 503 otherwise,
/// with details.
async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    let mqtt_connected = *s.mqtt_connected.borrow();
    let store_ok = s.store.ping().await.is_ok();
    let store_writable = *s.store.writable().borrow();
    let ok = mqtt_connected && store_ok && store_writable;
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(Health {
            status: if ok { "ok" } else { "degraded" },
            mqtt_connected,
            store_ok,
            store_writable,
        }),
    )
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}
