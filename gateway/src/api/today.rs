//! "My households today": each household's tile — alert / no sign of life yet / device
//! problem / away / well — from the workflow (open alerts, contacts, visit tasks),
//! detection (mode, devices offline, last activity) and the event journal (activity
//! today), read in a few set queries however many households there are. Also the
//! watcher that tells live streams when a tile may have changed without an alert
//! changing (first sign of life of the day, a device going offline, a mode ending).

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::ApiState;
use super::authz::Visibility;
use super::error::ApiError;
use super::views::{AlertBriefView, HouseholdTile, LastContact, ModeName, TileStatus};
use crate::detect::{HouseholdMode, HouseholdView};
use crate::signal::{AlertKind, Audience, Severity};
use crate::workflow::{
    AlertState, ContactMethod, ContactOutcome, Household, UserId, parse_audience, parse_severity,
};

/// How often the watcher looks at detection's views.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Tiles of `households`, worst first, as seen by `me` (for "my part").
pub async fn tiles(
    state: &ApiState,
    households: Vec<Household>,
    me: Option<&UserId>,
) -> Result<Vec<HouseholdTile>, ApiError> {
    if households.is_empty() {
        return Ok(vec![]);
    }
    let wf = state.workflow();
    let lt = wf.local_time();
    let now = wf.now_ms();
    let today = lt.date(now);
    let start = lt.day_start(today);
    let wanted: HashSet<&str> = households.iter().map(|h| h.id.as_str()).collect();
    let one = (households.len() == 1).then(|| households[0].id.0.clone());
    let ids: Vec<&str> = wanted.iter().copied().collect();
    let views: HashMap<String, HouseholdView> = state
        .detect()
        .views_of(&ids)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.household_id.clone(), v))
        .collect();

    // Open alerts (few, whatever the size of the roster).
    let mut alerts: HashMap<String, Vec<(AlertBriefView, Audience, Severity)>> = HashMap::new();
    let store = state.store();
    let rows = store.open_alerts(one.as_deref()).await?;
    for r in rows {
        if !wanted.contains(r.household_id.as_str()) {
            continue;
        }
        let (Some(kind), Some(severity), Some(st), Some(aud)) = (
            AlertKind::parse(&r.kind),
            parse_severity(&r.severity),
            AlertState::parse(&r.state),
            parse_audience(&r.audience),
        ) else {
            continue;
        };
        alerts.entry(r.household_id).or_default().push((
            AlertBriefView {
                id: r.id,
                kind: kind.into(),
                severity: severity.into(),
                state: st.into(),
                raised_ms: r.raised_ms,
            },
            aud,
            severity,
        ));
    }

    // Activity today.
    let mut activity: HashMap<String, (i64, Option<i64>, Option<i64>)> = HashMap::new();
    for a in store
        .life_signs_by_household(start, now, one.as_deref())
        .await?
    {
        if wanted.contains(a.household_id.as_str()) {
            activity.insert(a.household_id, (a.count, a.first_ms, a.last_ms));
        }
    }

    // Contacts of the last week: the last one, and whether today.
    let week = start - 7 * 86_400_000;
    let today_text = today.to_string();
    let mut contacts: HashMap<String, (LastContact, bool)> = HashMap::new();
    for r in store.contacts_since(week, one.as_deref()).await? {
        if !wanted.contains(r.household_id.as_str()) {
            continue;
        }
        let last = LastContact {
            at_ms: r.at_ms,
            method: ContactMethod::parse(&r.method)
                .unwrap_or(ContactMethod::Phone)
                .into(),
            outcome: ContactOutcome::parse(&r.outcome)
                .unwrap_or(ContactOutcome::Well)
                .into(),
        };
        let e = contacts
            .entry(r.household_id)
            .or_insert((last.clone(), false));
        e.0 = last;
        e.1 |= r.day == today_text;
    }

    let visits: HashSet<String> = store.households_with_open_visits().await?;

    let mut out: Vec<(HouseholdTile, Reverse<Severity>, u32)> = households
        .into_iter()
        .map(|h| {
            let id = h.id.0.clone();
            let view = views.get(&id);
            let mine = alerts.remove(&id).unwrap_or_default();
            let (elder, device): (Vec<_>, Vec<_>) = mine
                .into_iter()
                .partition(|(_, aud, _)| *aud == Audience::Caseworker);
            let worst = elder
                .iter()
                .map(|(_, _, s)| *s)
                .max()
                .unwrap_or(Severity::Info);
            let (n_today, first, last_today) =
                activity.get(&id).copied().unwrap_or((0, None, None));
            let mode = view.map(|v| v.mode).unwrap_or(HouseholdMode::Normal);
            let offline = view.map(|v| v.devices_offline as i64).unwrap_or(0);
            let (last_contact, contacted_today) = contacts
                .remove(&id)
                .map(|(c, t)| (Some(c), t))
                .unwrap_or((None, false));
            let visit = visits.contains(&id);
            let mut reasons = vec![];
            if !elder.is_empty() {
                reasons.push("open_alert");
            }
            if mode != HouseholdMode::Normal {
                reasons.push("away");
            }
            if n_today == 0 {
                reasons.push("no_sign_of_life_today");
            }
            if offline > 0 {
                reasons.push("device_offline");
            }
            if !device.is_empty() {
                reasons.push("device_alert");
            }
            if visit {
                reasons.push("visit_task");
            }
            if !contacted_today {
                reasons.push("not_contacted_today");
            }
            let status = if !elder.is_empty() {
                TileStatus::Alert
            } else if mode != HouseholdMode::Normal {
                TileStatus::Away
            } else if n_today == 0 {
                TileStatus::NoSignOfLife
            } else if offline > 0 || !device.is_empty() {
                TileStatus::DeviceProblem
            } else {
                TileStatus::Well
            };
            let my_role = me.and_then(|u| {
                role_of(
                    h.caseworker_id.as_ref().map(|c| c.as_str()),
                    h.backup_id.as_ref().map(|b| b.as_str()),
                    u.as_str(),
                )
            });
            let risk = h.risk_score();
            let tile = HouseholdTile {
                id,
                name: h.name,
                address: h.address,
                phone: h.phone,
                status,
                reasons: reasons.into_iter().map(String::from).collect(),
                my_role,
                caseworker_id: h.caseworker_id.map(|u| u.0),
                backup_id: h.backup_id.map(|u| u.0),
                committee_id: h.committee_id,
                mode: ModeName::from(mode),
                mode_until_ms: view.and_then(|v| v.mode_until_ms),
                open_alerts: elder.into_iter().map(|(a, _, _)| a).collect(),
                device_alerts: device.len() as i64,
                first_activity_today_ms: first,
                last_activity_ms: view.and_then(|v| v.last_activity_ms).max(last_today),
                activity_today: n_today,
                contacted_today,
                last_contact,
                visit_task: visit,
                devices: view.map(|v| v.devices as i64).unwrap_or(0),
                devices_offline: offline,
                risk_tags: h.risk_tags.iter().map(|t| (*t).into()).collect(),
            };
            (tile, Reverse(worst), risk)
        })
        .collect();
    out.sort_by(|a, b| {
        (a.0.status, a.1, a.0.contacted_today, Reverse(a.2), &a.0.id).cmp(&(
            b.0.status,
            b.1,
            b.0.contacted_today,
            Reverse(b.2),
            &b.0.id,
        ))
    });
    Ok(out.into_iter().map(|(t, _, _)| t).collect())
}

/// The households of a visibility (with the workflow's data), by id.
pub async fn households_of(
    state: &ApiState,
    user: &crate::workflow::User,
    vis: &Visibility,
) -> Result<Vec<Household>, ApiError> {
    let scope = super::authz::scope_of(user);
    let all = state.workflow().households(&scope).await?;
    Ok(all
        .into_iter()
        .filter(|h| vis.sees(h.id.as_str()))
        .collect())
}

/// The part of user `me` in a household: `caseworker` (包保 responsible), `backup`
/// (备岗), or none.
pub(crate) fn role_of(caseworker: Option<&str>, backup: Option<&str>, me: &str) -> Option<String> {
    if caseworker == Some(me) {
        Some("caseworker".to_string())
    } else if backup == Some(me) {
        Some("backup".to_string())
    } else {
        None
    }
}

/// What of a household's detector view changes its tile.
fn signature(v: &HouseholdView, day_start: i64) -> (HouseholdMode, bool, bool) {
    (
        v.mode,
        v.devices_offline > 0,
        v.last_activity_ms.is_some_and(|t| t >= day_start),
    )
}

/// Starts the task that tells live streams about tile changes that no alert change
/// carries. It looks only while somebody listens.
pub fn spawn_watcher(state: &ApiState) {
    let s = state.clone();
    let cancel = state.services().cancel.clone();
    state.services().tasks.spawn(async move {
        let mut last: HashMap<String, (HouseholdMode, bool, bool)> = HashMap::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
            if !s.tiles_watched() {
                last.clear();
                continue;
            }
            let Ok(views) = s.detect().views().await else {
                continue;
            };
            let lt = s.workflow().local_time();
            let day_start = lt.day_start(lt.date(s.workflow().now_ms()));
            let first = last.is_empty();
            for v in views {
                let sig = signature(&v, day_start);
                let changed = last.get(&v.household_id) != Some(&sig);
                if changed {
                    last.insert(v.household_id.clone(), sig);
                    if !first && s.tile_watched(&v.household_id) {
                        s.household_changed(&v.household_id);
                    }
                }
            }
        }
    });
}
