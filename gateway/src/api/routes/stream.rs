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
//! Every push of household data is in the audit trail (`household.live`,
//! `household.installation_live`). The stream
//! re-checks the session every 15 s and ends when it has ended; the household scope is
//! re-read then too.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};

use super::super::ApiState;
use super::super::auth::{self as a, Principal};
use super::super::authz::{self, CARE, TECH};
use super::super::error::ApiResult;
use super::super::openapi::Denied;
use super::super::today;
use super::super::views::HouseholdEvent;
use super::alerts::view;
use super::installations::InstallationEvent;
use crate::provision::TestEvent;
use crate::workflow::HouseholdId;

/// How often the stream re-checks the session and the scope.
const RECHECK: Duration = Duration::from_secs(15);

/// Counts the stream while it lives.
struct Live(ApiState);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.metrics().stream(-1);
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
        Denied,
    )
)]
pub async fn stream(
    State(s): State<ApiState>,
    p: Principal,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let vis = authz::visibility(&s, &p.user).await?;
    let (tx, rx) = mpsc::channel::<Event>(64);
    let alerts = s.workflow().alert_changes();
    let households = s.household_changes();
    // Installation tests: for the people who run them.
    let tests = if TECH.contains(&p.user.role) {
        s.provision().watch_tests()
    } else {
        None
    };
    s.metrics().stream(1);
    tracing::info!(user_id = %p.user.id, "live stream opened");
    let cancel = s.services().cancel.clone();
    s.services().tasks.spawn(run(
        s.clone(),
        p,
        vis,
        tx,
        alerts,
        households,
        tests,
        cancel,
    ));
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
    s: ApiState,
    p: Principal,
    mut vis: authz::Visibility,
    tx: mpsc::Sender<Event>,
    mut alerts: broadcast::Receiver<crate::workflow::Alert>,
    mut households: broadcast::Receiver<String>,
    mut tests: Option<broadcast::Receiver<TestEvent>>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let _live = Live(s.clone());
    let tiles = CARE.contains(&p.user.role);
    let actor = p.actor();
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
        let mut touched: Option<String> = None;
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tx.closed() => break,
            a = alerts.recv() => match a {
                Ok(alert) => {
                    if authz::sees_alert(&p.user, &vis, alert.audience, alert.household_id.as_deref()) {
                        let Ok(v) = view(&s, &alert).await else { continue };
                        if let Some(h) = &alert.household_id
                            && s.audit_reads(&actor, [h.as_str()], "alert.live").await.is_err()
                        {
                            continue;
                        }
                        if !send(event("alert", &v)).await {
                            break;
                        }
                    }
                    touched = alert.household_id.clone();
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !send(event("resync", &serde_json::json!({}))).await { break }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            t = next_test(&mut tests) => match t {
                Ok(e) => {
                    let e = InstallationEvent::from(e);
                    if vis.sees(&e.household_id) {
                        if s.audit_reads(&actor, [e.household_id.as_str()], "household.installation_live")
                            .await
                            .is_err()
                        {
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
            h = households.recv() => match h {
                Ok(h) => touched = Some(h),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !send(event("resync", &serde_json::json!({}))).await { break }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = recheck.tick() => {
                if !a::session_alive(&s, &p).await {
                    tracing::info!(user_id = %p.user.id, "live stream ended with its session");
                    break;
                }
                if let Ok(v) = authz::visibility(&s, &p.user).await {
                    vis = v;
                }
            }
        }
        if let Some(h) = touched
            && tiles
            && vis.sees(&h)
        {
            let Ok(hh) = s.workflow().household(&HouseholdId::new(&h)).await else {
                continue;
            };
            let Ok(mut t) = today::tiles(&s, vec![hh], Some(&p.user.id)).await else {
                continue;
            };
            let Some(tile) = t.pop() else { continue };
            if s.audit_reads(&actor, [h.as_str()], "household.live")
                .await
                .is_err()
            {
                continue;
            }
            if !send(event("household", &HouseholdEvent { tile })).await {
                break;
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
