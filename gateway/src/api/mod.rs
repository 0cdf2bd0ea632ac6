//! The HTTP API under `/api/v1`: JSON, one error shape ([`error`]), pagination
//! ([`pagination`]), an OpenAPI document generated from the handlers
//! ([`openapi`], served at `/api/v1/openapi.json`), authentication ([`auth`]) and the
//! policy ([`authz`]), one file per resource under [`routes`], and a live stream of
//! alerts and household status (server-sent events, [`routes::stream`]).
//!
//! ```text
//! request ─▶ count + log (this file) ─▶ policy: rule of the route, credentials, role, CSRF (authz)
//!         ─▶ handler: household scope (404 outside it), audit of every household read,
//!            the workflow / detection / history handles ─▶ JSON or the one error shape
//! ```
//!
//! `docs/api.md` is the guide for people; this module is the source.

pub mod auth;
pub mod authz;
pub mod error;
pub mod openapi;
pub mod pagination;
pub mod routes;
pub mod today;
pub mod validate;
pub mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::broadcast;

use crate::app::Services;
use crate::clock::{SharedClock, SystemClock};
use crate::detect::DetectHandle;
use crate::history::HistoryHandle;
use crate::provision::Provisioning;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::workflow::{Actor, WorkflowHandle};

pub use auth::AuthConfig;
use error::{ApiError, ErrorCode};

/// Label set of `anxin_api_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route template (`/api/v1/alerts/{id}`), or `unmatched`.
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The API's metrics.
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    input_rejected: Family<ReasonLabels, Counter>,
    stream_clients: Gauge,
    tiles_rendered: Counter,
}

impl ApiMetrics {
    fn new(m: &Metrics) -> ApiMetrics {
        let a = ApiMetrics {
            requests: Family::default(),
            errors: Family::default(),
            logins: Family::default(),
            refused: Family::default(),
            input_rejected: Family::default(),
            stream_clients: Gauge::default(),
            tiles_rendered: Counter::default(),
        };
        m.register(
            "anxin_api_requests",
            "API requests answered, by route template, method and status",
            a.requests.clone(),
        );
        m.register(
            "anxin_api_errors",
            "API requests refused or failed, by error code",
            a.errors.clone(),
        );
        m.register(
            "anxin_api_logins",
            "Login attempts, by outcome (ok, bad_credentials, rate_limited, bad_request)",
            a.logins.clone(),
        );
        m.register(
            "anxin_api_credentials_refused",
            "Requests whose session or token was refused, by reason",
            a.refused.clone(),
        );
        m.register(
            "anxin_api_input_rejected",
            "Requests refused by the input-validation layer, by reason",
            a.input_rejected.clone(),
        );
        m.register(
            "anxin_api_stream_clients",
            "Open live streams (server-sent events)",
            a.stream_clients.clone(),
        );
        m.register(
            "anxin_api_live_tiles_rendered",
            "Household tiles rendered for the live streams (once per change, whatever the number of streams)",
            a.tiles_rendered.clone(),
        );
        a
    }

    /// Counts a login attempt.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Counts refused credentials.
    pub fn auth_refused(&self, why: auth::Refused) {
        let reason = match why {
            auth::Refused::Missing => "missing",
            auth::Refused::Session => "session",
            auth::Refused::Token => "token",
            auth::Refused::User => "user",
        };
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a request refused by [`validate`].
    pub fn input_rejected(&self, reason: &'static str) {
        self.input_rejected
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A live stream opened (+1) or closed (-1).
    pub fn stream(&self, delta: i64) {
        self.stream_clients.inc_by(delta);
    }

    /// A household tile was rendered for the live streams.
    pub fn tile_rendered(&self) {
        self.tiles_rendered.inc();
    }
}

/// Alert changes a slow live stream may fall behind by before it is told to resync.
const ALERT_FEED_CAPACITY: usize = 1024;

/// The shared state of the API's handlers (cheap to clone).
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

/// What [`ApiState`] holds.
pub struct Inner {
    workflow: WorkflowHandle,
    detect: DetectHandle,
    history: HistoryHandle,
    provision: Provisioning,
    store: Store,
    services: Services,
    /// Wall-clock time for sessions, tokens and rate limits.
    auth_clock: SharedClock,
    /// Authentication settings.
    pub auth_config: AuthConfig,
    metrics: ApiMetrics,
    /// Households whose status may have changed (the live stream re-reads their tile).
    household_changes: broadcast::Sender<String>,
    /// Failed logins per (user, address) and per address.
    login_limiter: auth::LoginLimiter,
    /// Open live streams per user id.
    stream_slots: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Sessions that just ended (their live streams end at once).
    ended_sessions: broadcast::Sender<auth::EndedSessions>,
    /// Alert changes, rendered once for every live stream.
    alert_feed: broadcast::Sender<routes::stream::LiveAlert>,
    /// Household tiles that may have changed, rendered once for every live stream.
    tile_feed: broadcast::Sender<routes::stream::LiveTile>,
    /// What each open live stream that shows tiles may see, by stream number: the tile
    /// feed renders only households somebody watches.
    tile_interest: std::sync::Mutex<std::collections::HashMap<u64, authz::Visibility>>,
    /// The next live stream's number.
    next_stream: std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for ApiState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl ApiState {
    /// The API over the gateway's services and handles, with wall-clock time for
    /// authentication and the default [`AuthConfig`].
    pub fn new(
        services: &Services,
        detect: DetectHandle,
        workflow: WorkflowHandle,
        history: HistoryHandle,
        provision: Provisioning,
    ) -> ApiState {
        ApiState::with(
            services,
            detect,
            workflow,
            history,
            provision,
            Arc::new(SystemClock),
            AuthConfig::default(),
        )
    }

    /// [`ApiState::new`] with another clock for authentication (tests) and settings.
    pub fn with(
        services: &Services,
        detect: DetectHandle,
        workflow: WorkflowHandle,
        history: HistoryHandle,
        provision: Provisioning,
        auth_clock: SharedClock,
        auth_config: AuthConfig,
    ) -> ApiState {
        let state = ApiState(Arc::new(Inner {
            workflow,
            detect,
            history,
            provision,
            store: services.store.clone(),
            services: services.clone(),
            auth_clock,
            auth_config,
            metrics: ApiMetrics::new(&services.metrics),
            household_changes: broadcast::channel(4096).0,
            login_limiter: auth::LoginLimiter::default(),
            stream_slots: Default::default(),
            ended_sessions: broadcast::channel(1024).0,
            alert_feed: broadcast::channel(ALERT_FEED_CAPACITY).0,
            tile_feed: broadcast::channel(ALERT_FEED_CAPACITY).0,
            tile_interest: Default::default(),
            next_stream: Default::default(),
        }));
        today::spawn_watcher(&state);
        routes::stream::spawn_alert_feed(&state, state.alert_feed.clone());
        routes::stream::spawn_tile_feed(&state, state.tile_feed.clone());
        state
    }

    /// The workflow.
    pub fn workflow(&self) -> &WorkflowHandle {
        &self.workflow
    }

    /// Detection.
    pub fn detect(&self) -> &DetectHandle {
        &self.detect
    }

    /// History.
    pub fn history(&self) -> &HistoryHandle {
        &self.history
    }

    /// Provisioning: devices, credentials, work orders, installation tests.
    pub fn provision(&self) -> &Provisioning {
        &self.provision
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The gateway's services.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Metrics.
    pub fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    /// The login limiter.
    pub fn login_limiter(&self) -> &auth::LoginLimiter {
        &self.login_limiter
    }

    /// Takes one of `user`'s live-stream slots, unless `max` are taken.
    pub fn take_stream_slot(&self, user: &str, max: usize) -> bool {
        let mut slots = self.stream_slots.lock().unwrap_or_else(|e| e.into_inner());
        let n = slots.entry(user.to_string()).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives a live-stream slot of `user` back.
    pub fn release_stream_slot(&self, user: &str) {
        let mut slots = self.stream_slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = slots.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                slots.remove(user);
            }
        }
    }

    /// Tells live streams that sessions ended.
    pub fn sessions_ended(&self, e: auth::EndedSessions) {
        let _ = self.ended_sessions.send(e);
    }

    /// Sessions that end from now on.
    pub fn ended_sessions(&self) -> broadcast::Receiver<auth::EndedSessions> {
        self.ended_sessions.subscribe()
    }

    /// Now, for authentication (wall clock).
    pub fn auth_now(&self) -> i64 {
        self.auth_clock.now_ms()
    }

    /// Tells live streams that `household`'s status may have changed.
    pub fn household_changed(&self, household: &str) {
        let _ = self.household_changes.send(household.to_string());
    }

    /// Alert changes as live streams send them.
    pub fn alert_feed(&self) -> broadcast::Receiver<routes::stream::LiveAlert> {
        self.alert_feed.subscribe()
    }

    /// Households whose status may have changed (the tile feed renders them).
    pub fn household_changes(&self) -> broadcast::Receiver<String> {
        self.household_changes.subscribe()
    }

    /// Household tiles as live streams send them.
    pub fn tile_feed(&self) -> broadcast::Receiver<routes::stream::LiveTile> {
        self.tile_feed.subscribe()
    }

    /// Whether any live stream shows tiles.
    pub fn tiles_watched(&self) -> bool {
        !self.interest().is_empty()
    }

    /// Whether an open live stream shows `household`'s tile.
    pub fn tile_watched(&self, household: &str) -> bool {
        self.interest().values().any(|v| v.sees(household))
    }

    /// Records what a live stream that shows tiles may see; returns its number for
    /// [`ApiState::rewatch_tiles`] and [`ApiState::unwatch_tiles`].
    pub fn watch_tiles(&self, vis: authz::Visibility) -> u64 {
        let id = self
            .next_stream
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.interest().insert(id, vis);
        id
    }

    /// Updates what live stream `id` may see.
    pub fn rewatch_tiles(&self, id: u64, vis: authz::Visibility) {
        if let Some(v) = self.interest().get_mut(&id) {
            *v = vis;
        }
    }

    /// Live stream `id` closed.
    pub fn unwatch_tiles(&self, id: u64) {
        self.interest().remove(&id);
    }

    fn interest(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, authz::Visibility>> {
        // Plain data: a panic elsewhere cannot leave it half-changed.
        self.tile_interest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `actor` read data of `households` (`what`: `household.view`,
    /// `household.list`, …) in one transaction of the append-only audit trail.
    pub async fn audit_reads<'a>(
        &self,
        actor: &Actor,
        households: impl IntoIterator<Item = &'a str>,
        what: &str,
    ) -> Result<(), ApiError> {
        let mut ids: Vec<&str> = households.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let now = self.workflow.now_ms();
        let mut tx = self.store.begin().await?;
        for h in ids {
            crate::workflow::audit::record(
                &mut tx,
                now,
                actor,
                what,
                "household",
                h,
                Some(h),
                serde_json::json!({ "via": "api" }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records an action of `actor` on a record (`entity` = `device`, `work_order`,
    /// `household`…) in the append-only audit trail: for the changes the API makes
    /// through services that keep no trail of their own (provisioning). `detail` never
    /// carries a secret.
    pub async fn audit_action(
        &self,
        actor: &Actor,
        action: &str,
        entity: &str,
        entity_id: &str,
        household: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let now = self.workflow.now_ms();
        let mut tx = self.store.begin().await?;
        crate::workflow::audit::record(
            &mut tx, now, actor, action, entity, entity_id, household, detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The API router, to be nested at `/api/v1` ([`authz::PREFIX`]): every route with its
/// policy, JSON 404/405 for the rest, every answer counted and logged.
pub fn router(state: ApiState) -> Router {
    let (api, _doc) = openapi::routes().split_for_parts();
    api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        authz::enforce,
    ))
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        validate::reject_bad_input,
    ))
    .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
    .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such API route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take this method",
    )
}

/// Counts and logs every answer; marks API answers as not to be cached.
async fn observe(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let mut resp = next.run(req).await;
    let status = resp.status();
    let user_id = resp
        .extensions()
        .get::<routes::ActedBy>()
        .map(|a| a.0.clone())
        .unwrap_or_default();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method: method.to_string(),
            status: status.as_u16(),
        })
        .inc();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if let Some(code) = resp.extensions().get::<ErrorCode>().copied() {
        state
            .metrics
            .errors
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
        if status.is_server_error() {
            tracing::warn!(%method, %route, status = status.as_u16(), code = code.as_str(), user_id, elapsed_ms, "API request failed");
        } else {
            tracing::info!(%method, %route, status = status.as_u16(), code = code.as_str(), user_id, elapsed_ms, "API request refused");
        }
    } else {
        tracing::debug!(%method, %route, status = status.as_u16(), user_id, elapsed_ms, "API request");
    }
    let h = resp.headers_mut();
    if method != Method::OPTIONS && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
