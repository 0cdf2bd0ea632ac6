//! `/stream`: server-sent events, so that a caseworker's screen changes without a
//! reload.
//!
//! | event | data | when |
//! |---|---|---|
//! | `hello` | `{"user_id": …}` | at once |
//! | `alert` | [`AlertView`] | an alert the user may see was raised, repeated, taken, closed… |
//! | `household` | [`HouseholdEvent`] (the tile now) | a visible household's status may have changed |
//! | `installation` | [`InstallationEvent`] | technicians and administrators: an installation test in their scope started, checked a device off, or ended |
//! | `resync` | `{}` | the stream fell behind: re-read the lists |
//!
//! An alert change is rendered once for every stream ([`spawn_alert_feed`]), and so is
//! the tile of a household whose status may have changed ([`spawn_tile_feed`]): a stream
//! only filters what its user may see and marks the tile with the user's part in it, so
//! a hundred open screens cost one database read per change, not a hundred. A stream
//! that falls behind a feed gets `resync`; it never holds the feed or the others back.
//!
//! Household data pushed on a stream is in the audit trail (`alert.live`,
//! `household.live`, `household.installation_live`) once per stream and household, not
//! per event. A user has at most [`MAX_STREAMS_PER_USER`] streams open (429 past it).
//! A stream ends at once when its session is logged out or its user's sessions are
//! ended (a password change); it re-checks the session every 15 s too, and the
//! household scope then.

use std::collections::{BTreeSet, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};

use super::super::ApiState;
use super::super::auth::{self as a, EndedSessions, Principal};
use super::super::authz::{self, CARE, TECH};
use super::super::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use super::super::openapi::Denied;
use super::super::today;
use super::super::views::{HouseholdEvent, HouseholdTile};
use super::alerts::view;
use super::installations::InstallationEvent;
use crate::api::views::AlertView;
use crate::provision::TestEvent;
use crate::workflow::HouseholdId;

/// How often the stream re-checks the session and the scope.
const RECHECK: Duration = Duration::from_secs(15);

/// Most live streams one user may have open at once.
pub const MAX_STREAMS_PER_USER: usize = 4;

/// One alert change as every live stream receives it.
#[derive(Clone)]
pub enum LiveAlert {
    /// The alert as changed, and its view (rendered once).
    Changed(Arc<(crate::workflow::Alert, AlertView)>),
    /// The feed itself fell behind the workflow: every stream re-reads its lists.
    Missed,
}

/// One household's tile as every live stream receives it.
#[derive(Clone)]
pub enum LiveTile {
    /// The tile now, with `my_role` unset: each stream sets its own user's part.
    Changed(Arc<HouseholdTile>),
    /// The feed fell behind the changes: every stream re-reads its lists.
    Missed,
}

/// Most household changes taken into one round of the tile feed (a burst of changes of
/// one household renders its tile once).
const TILE_ROUND: usize = 512;

/// Renders the tile of every household whose status may have changed once for all live
/// streams (while any is open). Changes come from the workflow and the API
/// ([`ApiState::household_changed`]), from the watcher of detection's views, and from the
/// alert feed.
pub fn spawn_tile_feed(state: &ApiState, feed: broadcast::Sender<LiveTile>) {
    let s = state.clone();
    let mut changes = state.household_changes();
    let cancel = state.services().cancel.clone();
    state.services().tasks.spawn(async move {
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => break,
                c = changes.recv() => c,
            };
            let mut touched: BTreeSet<String> = BTreeSet::new();
            let mut missed = false;
            match first {
                Ok(h) => {
                    touched.insert(h);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => missed = true,
                Err(broadcast::error::RecvError::Closed) => break,
            }
            for _ in 0..TILE_ROUND {
                match changes.try_recv() {
                    Ok(h) => {
                        touched.insert(h);
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => missed = true,
                    Err(_) => break,
                }
            }
            if feed.receiver_count() == 0 {
                continue;
            }
            if missed {
                let _ = feed.send(LiveTile::Missed);
            }
            for h in touched {
                if !s.tile_watched(&h) {
                    continue;
                }
                match tile_of(&s, &h).await {
                    Ok(Some(tile)) => {
                        s.metrics().tile_rendered();
                        let _ = feed.send(LiveTile::Changed(Arc::new(tile)));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(household_id = %h, error = ?e.message, "household tile not rendered for the live streams");
                        let _ = feed.send(LiveTile::Missed);
                    }
                }
            }
        }
    });
}

/// The tile of household `h`, as nobody in particular sees it (None: no such household).
async fn tile_of(s: &ApiState, h: &str) -> Result<Option<HouseholdTile>, ApiError> {
    let Ok(hh) = s.workflow().household(&HouseholdId::new(h)).await else {
        return Ok(None);
    };
    Ok(today::tiles(s, vec![hh], None).await?.pop())
}

/// Renders every alert change once for all live streams (while any is open).
pub fn spawn_alert_feed(state: &ApiState, feed: broadcast::Sender<LiveAlert>) {
    let s = state.clone();
    let mut changes = state.workflow().alert_changes();
    let cancel = state.services().cancel.clone();
    state.services().tasks.spawn(async move {
        loop {
            let change = tokio::select! {
                _ = cancel.cancelled() => break,
                c = changes.recv() => c,
            };
            match change {
                Ok(alert) => {
                    if feed.receiver_count() == 0 {
                        continue;
                    }
                    match view(&s, &alert).await {
                        Ok(v) => {
                            let household = alert.household_id.clone();
                            let _ = feed.send(LiveAlert::Changed(Arc::new((alert, v))));
                            // The household's tile changes with its alerts.
                            if let Some(h) = household {
                                s.household_changed(h.as_str());
                            }
                        }
                        Err(e) => {
                            tracing::warn!(alert_id = %alert.id, error = ?e.message, "alert change not rendered for the live streams");
                            let _ = feed.send(LiveAlert::Missed);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = feed.send(LiveAlert::Missed);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Counts the stream (and its user's slot) while it lives, with its number in the tile
/// feed's interest when it shows tiles.
struct Live(ApiState, String, Option<u64>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.metrics().stream(-1);
        self.0.release_stream_slot(&self.1);
        if let Some(id) = self.2 {
            self.0.unwatch_tiles(id);
        }
    }
}

/// Live alerts and household status (`text/event-stream`): events `hello`, `alert`
/// (an AlertView), `household` (a HouseholdEvent), `installation` (an
/// InstallationEvent; technicians and administrators), `resync`.
#[utoipa::path(
    get,
    operation_id = "stream_stream",
    path = "/stream",
    tag = "stream",
    responses(
        (status = 200, description = "Server-sent events: hello, alert (AlertView), household (HouseholdEvent), installation (InstallationEvent: technicians and administrators), resync", content_type = "text/event-stream"),
        (status = 429, description = "The user has the most live streams open already; see Retry-After", body = ErrorBody, content_type = "application/json"),
        Denied,
    )
)]
pub async fn stream(
    State(s): State<ApiState>,
    p: Principal,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let vis = authz::visibility(&s, &p.user).await?;
    if !s.take_stream_slot(p.user.id.as_str(), MAX_STREAMS_PER_USER) {
        tracing::info!(user_id = %p.user.id, "live stream refused: too many open");
        return Err(ApiError {
            retry_after_s: Some(RECHECK.as_secs()),
            ..ApiError::new(
                ErrorCode::RateLimited,
                format!("at most {MAX_STREAMS_PER_USER} live streams per user"),
            )
        });
    }
    let watching = CARE
        .contains(&p.user.role)
        .then(|| s.watch_tiles(vis.clone()));
    let live = Live(s.clone(), p.user.id.as_str().to_string(), watching);
    let ended = s.ended_sessions();
    let (tx, rx) = mpsc::channel::<Event>(64);
    let alerts = s.alert_feed();
    let tiles = s.tile_feed();
    // Installation tests: for the people who run them.
    let tests = if TECH.contains(&p.user.role) {
        s.provision().watch_tests()
    } else {
        None
    };
    s.metrics().stream(1);
    tracing::info!(user_id = %p.user.id, "live stream opened");
    let cancel = s.services().cancel.clone();
    s.services()
        .tasks
        .spawn(run(live, p, vis, tx, alerts, tiles, tests, ended, cancel));
    let events =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}

fn event(name: &str, data: &impl serde::Serialize) -> Option<Event> {
    Event::default().event(name).json_data(data).ok()
}

#[allow(clippy::too_many_arguments)]
async fn run(
    live: Live,
    p: Principal,
    mut vis: authz::Visibility,
    tx: mpsc::Sender<Event>,
    mut alerts: broadcast::Receiver<LiveAlert>,
    mut tile_feed: broadcast::Receiver<LiveTile>,
    mut tests: Option<broadcast::Receiver<TestEvent>>,
    mut ended: broadcast::Receiver<EndedSessions>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let s = live.0.clone();
    // (action, household) already in the audit trail for this stream.
    let mut audited: HashSet<(&'static str, String)> = HashSet::new();
    let mut audit_once = async |what: &'static str, h: &str| -> bool {
        if audited.contains(&(what, h.to_string())) {
            return true;
        }
        let ok = s.audit_reads(&p.actor(), [h], what).await.is_ok();
        if ok {
            audited.insert((what, h.to_string()));
        }
        ok
    };
    let tiles = CARE.contains(&p.user.role);
    let send = |e: Option<Event>| {
        let tx = tx.clone();
        async move {
            match e {
                Some(e) => tx.send(e).await.is_ok(),
                None => true,
            }
        }
    };
    if !send(event("hello", &serde_json::json!({ "user_id": p.user.id }))).await {
        return;
    }
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tx.closed() => break,
            a = alerts.recv() => match a {
                Ok(LiveAlert::Changed(change)) => {
                    let (alert, v) = &*change;
                    if authz::sees_alert(&p.user, &vis, alert.audience, alert.household_id.as_deref()) {
                        if let Some(h) = &alert.household_id
                            && !audit_once("alert.live", h.as_str()).await
                        {
                            continue;
                        }
                        if !send(event("alert", v)).await {
                            break;
                        }
                    }
                }
                Ok(LiveAlert::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !send(event("resync", &serde_json::json!({}))).await { break }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            t = next_test(&mut tests) => match t {
                Ok(e) => {
                    let e = InstallationEvent::from(e);
                    if vis.sees(&e.household_id) {
                        if !audit_once("household.installation_live", e.household_id.as_str()).await {
                            continue;
                        }
                        if !send(event("installation", &e)).await {
                            break;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !send(event("resync", &serde_json::json!({}))).await { break }
                }
                Err(broadcast::error::RecvError::Closed) => tests = None,
            },
            t = tile_feed.recv() => match t {
                Ok(LiveTile::Changed(tile)) => {
                    if !tiles || !vis.sees(&tile.id) {
                        continue;
                    }
                    if !audit_once("household.live", tile.id.as_str()).await {
                        continue;
                    }
                    let mut tile = HouseholdTile::clone(&tile);
                    tile.my_role = today::role_of(
                        tile.caseworker_id.as_deref(),
                        tile.backup_id.as_deref(),
                        p.user.id.as_str(),
                    );
                    if !send(event("household", &HouseholdEvent { tile })).await {
                        break;
                    }
                }
                Ok(LiveTile::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !send(event("resync", &serde_json::json!({}))).await { break }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            e = ended.recv() => match e {
                Ok(e) if e.covers(&p) => {
                    tracing::info!(user_id = %p.user.id, "live stream ended with its session");
                    break;
                }
                Ok(_) => {}
                // Missed some: the session may be among them.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !a::session_alive(&s, &p).await { break }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = recheck.tick() => {
                if !a::session_alive(&s, &p).await {
                    tracing::info!(user_id = %p.user.id, "live stream ended with its session");
                    break;
                }
                if let Ok(v) = authz::visibility(&s, &p.user).await {
                    if let Some(id) = live.2 {
                        s.rewatch_tiles(id, v.clone());
                    }
                    vis = v;
                }
            }
        }
    }
    tracing::info!(user_id = %p.user.id, "live stream closed");
}

/// The next installation-test event, or never (not a technician, or the CLI).
async fn next_test(
    rx: &mut Option<broadcast::Receiver<TestEvent>>,
) -> Result<TestEvent, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
