//! The alert lifecycle (即接即办):
//!
//! ```text
//! raised ─▶ notified ─▶ acknowledged ─▶ on_the_way ─▶ arrived ─▶ resolved (outcome + note)
//!    │          │             └──────────────────────────────────▶ resolved
//!    ├──────────┴─▶ cancelled (by the device, within its window)
//!    └──────────────▶ cleared   (ended by itself: device back, the elder moved again)
//! ```
//!
//! One open alert per (household, kind) — per device for technicians' alerts — kept by a
//! UNIQUE `open_key`; repeats update it and are counted. Every change is one
//! transaction with a compare-and-set on `version`, its audit entries and the
//! notifications it causes (the outbox), so nothing is half-done.

use async_trait::async_trait;
use serde::Serialize;
use tracing::{Instrument, info, info_span};

use super::config::EscalationConfig;
use super::db::Tx;
use super::org::{Household, Scope, User, load_household, load_user};
use super::text::{Purpose, alert_message};
use super::timers::DeadlineKey;
use super::{
    Actor, AlertId, AlertState, Outcome, OutcomeCategory, WorkflowError, WorkflowHandle,
    audience_str, audit, new_id, parse_audience, parse_severity, severity_str,
};
use crate::notify::{Channel, DeliveryHook, Envelope, Outbox, OutboxRow, feedback_payload};
use crate::signal::{AlertKind, Audience, Severity, Signal, SignalAction};
use crate::store::{self, AlertClose, AlertQuery, AlertRow, Conn, HouseholdScope, NewAlert, Store};
use anxin_firmware::wire::{AlertCause, CommandKind};

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Id.
    pub id: AlertId,
    /// Household (None: the gateway itself).
    pub household_id: Option<String>,
    /// Device that caused it.
    pub device_id: Option<String>,
    /// Kind.
    pub kind: AlertKind,
    /// Who acts on it.
    pub audience: Audience,
    /// Current severity.
    pub severity: Severity,
    /// State.
    pub state: AlertState,
    /// Detection's reason (latest).
    pub reason: String,
    /// Signals after the first (repeats).
    pub repeats: i64,
    /// Raised at.
    pub raised_ms: i64,
    /// When the triggering observation happened.
    pub observed_ms: Option<i64>,
    /// Last signal at.
    pub last_signal_ms: i64,
    /// First notification delivered at.
    pub notified_ms: Option<i64>,
    /// Acknowledged at.
    pub acknowledged_ms: Option<i64>,
    /// By.
    pub acknowledged_by: Option<String>,
    /// On the way at.
    pub on_the_way_ms: Option<i64>,
    /// By.
    pub on_the_way_by: Option<String>,
    /// Arrived at.
    pub arrived_ms: Option<i64>,
    /// By.
    pub arrived_by: Option<String>,
    /// The condition ended by itself at (gas clear, …) while the alert stays open.
    pub condition_cleared_ms: Option<i64>,
    /// Closed at.
    pub closed_ms: Option<i64>,
    /// By (`user:…`, `device:…`, `system`).
    pub closed_by: Option<String>,
    /// Outcome category (resolved alerts; `cancelled_by_device`/`cleared` otherwise).
    pub outcome: Option<String>,
    /// Outcome note.
    pub outcome_note: Option<String>,
    /// Follow-up due at.
    pub follow_up_due_ms: Option<i64>,
    /// Follow-up done at.
    pub follow_up_done_ms: Option<i64>,
    /// Escalation policy in force.
    pub policy: String,
    /// Start of the policy's clock (raise, or the upgrade to critical).
    pub policy_start_ms: i64,
    /// Steps fired so far.
    pub escalation_step: i64,
    /// Next step due at.
    pub next_escalation_ms: Option<i64>,
    /// Repeat notifications so far.
    pub repeat_count: i64,
    /// Next repeat due at.
    pub next_repeat_ms: Option<i64>,
    /// Arrival must be confirmed by.
    pub arrival_due_ms: Option<i64>,
    /// Arrival re-alarms so far.
    pub arrival_realarms: i64,
    /// Version (compare-and-set).
    pub version: i64,
}

impl Alert {
    /// Milliseconds from raise to acknowledgement.
    pub fn time_to_ack_ms(&self) -> Option<i64> {
        self.acknowledged_ms.map(|t| t - self.raised_ms)
    }

    /// Milliseconds from raise to arrival.
    pub fn time_to_arrival_ms(&self) -> Option<i64> {
        self.arrived_ms.map(|t| t - self.raised_ms)
    }

    /// The earliest persisted deadline.
    pub fn next_deadline(&self) -> Option<i64> {
        if !self.state.is_open() {
            return None;
        }
        [
            self.next_escalation_ms,
            self.next_repeat_ms,
            self.arrival_due_ms,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl TryFrom<AlertRow> for Alert {
    type Error = WorkflowError;

    /// An alert as stored, its names parsed (a name the workflow does not know is a
    /// corrupt row).
    fn try_from(r: AlertRow) -> Result<Self, WorkflowError> {
        let corrupt = |c: &'static str| WorkflowError::Store(store::StoreError::Corrupt(c));
        Ok(Alert {
            id: AlertId(r.id),
            household_id: r.household_id,
            device_id: r.device_id,
            kind: AlertKind::parse(&r.kind).ok_or_else(|| corrupt("alerts.kind"))?,
            audience: parse_audience(&r.audience).ok_or_else(|| corrupt("alerts.audience"))?,
            severity: parse_severity(&r.severity).ok_or_else(|| corrupt("alerts.severity"))?,
            state: AlertState::parse(&r.state).ok_or_else(|| corrupt("alerts.state"))?,
            reason: r.reason,
            repeats: r.repeats,
            raised_ms: r.raised_ms,
            observed_ms: r.observed_ms,
            last_signal_ms: r.last_signal_ms,
            notified_ms: r.notified_ms,
            acknowledged_ms: r.acknowledged_ms,
            acknowledged_by: r.acknowledged_by,
            on_the_way_ms: r.on_the_way_ms,
            on_the_way_by: r.on_the_way_by,
            arrived_ms: r.arrived_ms,
            arrived_by: r.arrived_by,
            condition_cleared_ms: r.condition_cleared_ms,
            closed_ms: r.closed_ms,
            closed_by: r.closed_by,
            outcome: r.outcome,
            outcome_note: r.outcome_note,
            follow_up_due_ms: r.follow_up_due_ms,
            follow_up_done_ms: r.follow_up_done_ms,
            policy: r.policy,
            policy_start_ms: r.policy_start_ms,
            escalation_step: r.escalation_step,
            next_escalation_ms: r.next_escalation_ms,
            repeat_count: r.repeat_count,
            next_repeat_ms: r.next_repeat_ms,
            arrival_due_ms: r.arrival_due_ms,
            arrival_realarms: r.arrival_realarms,
            version: r.version,
        })
    }
}

/// The alerts of `rows`, parsed.
fn alerts_of(rows: Vec<AlertRow>) -> Result<Vec<Alert>, WorkflowError> {
    rows.into_iter().map(Alert::try_from).collect()
}

/// What a signal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "alert_id", rename_all = "snake_case")]
pub enum SignalOutcome {
    /// A new alert.
    Opened(AlertId),
    /// A repeat of an open alert (counted).
    Repeated(AlertId),
    /// The open alert became more severe.
    Upgraded(AlertId),
    /// Closed as cancelled by the device.
    Cancelled(AlertId),
    /// Closed as cleared by itself.
    Cleared(AlertId),
    /// The condition ended; the alert stays open for a person to close.
    ConditionCleared(AlertId),
    /// A check-in of the elder was asked, answered or not answered (no alert).
    CheckIn(&'static str),
    /// Nothing to do (reason).
    Ignored(&'static str),
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Only open ones.
    pub open_only: bool,
    /// Of one household.
    pub household_id: Option<String>,
    /// Households in a scope.
    pub scope: Option<Scope>,
    /// For one audience.
    pub audience: Option<Audience>,
    /// Raised at or after.
    pub from_ms: Option<i64>,
    /// Raised before.
    pub to_ms: Option<i64>,
    /// At most (default 1000).
    pub limit: Option<i64>,
}

/// The cause a device shows feedback for.
pub(crate) fn feedback_cause(kind: AlertKind) -> Option<AlertCause> {
    match kind {
        AlertKind::Help => Some(AlertCause::Help),
        AlertKind::Fall => Some(AlertCause::Fall),
        AlertKind::Gas => Some(AlertCause::Gas),
        _ => None,
    }
}

fn open_key(s: &Signal) -> String {
    let hh = s.household_id.as_deref().unwrap_or("-");
    match (s.kind.audience(), &s.device_id) {
        (Audience::Technician, Some(d)) => format!("{hh}|{}|{d}", s.kind.as_str()),
        _ => format!("{hh}|{}", s.kind.as_str()),
    }
}

/// Marks alerts "notified" when a notification to a person is delivered, and records
/// every delivery and failure in the audit trail.
pub(crate) struct NotifiedHook {
    pub(crate) store: Store,
}

#[async_trait]
impl DeliveryHook for NotifiedHook {
    async fn delivered(&self, row: &OutboxRow, at_ms: i64) {
        let Some(alert_id) = &row.stored.alert_id else {
            return;
        };
        let result: Result<(), store::StoreError> = async {
            let mut tx = self.store.begin().await?;
            if row.channel != Channel::Device {
                store::mark_alert_notified(&mut tx, alert_id, at_ms).await?;
            }
            audit::record(
                &mut tx,
                at_ms,
                &Actor::System,
                "notify.delivered",
                "alert",
                alert_id,
                None,
                serde_json::json!({
                    "channel": row.channel, "purpose": row.stored.purpose,
                    "recipient_id": row.stored.recipient_id, "address": row.stored.address,
                    "key": row.stored.key, "attempts": row.stored.attempts,
                }),
            )
            .await?;
            Ok(tx.commit().await?)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(alert_id = %alert_id, error = %e, "delivery not recorded");
        }
    }

    async fn failed(&self, row: &OutboxRow, at_ms: i64, reason: &str) {
        let Some(alert_id) = &row.stored.alert_id else {
            return;
        };
        let result: Result<(), store::StoreError> = async {
            let mut tx = self.store.begin().await?;
            audit::record(
                &mut tx,
                at_ms,
                &Actor::System,
                "notify.failed",
                "alert",
                alert_id,
                None,
                serde_json::json!({
                    "channel": row.channel, "purpose": row.stored.purpose,
                    "recipient_id": row.stored.recipient_id, "reason": reason, "key": row.stored.key,
                }),
            )
            .await?;
            Ok(tx.commit().await?)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(alert_id = %alert_id, error = %e, "failure not recorded");
        }
    }
}

/// An alert and its household, for messages and recipients.
pub(crate) struct AlertCtx {
    pub(crate) alert: Alert,
    pub(crate) household: Option<Household>,
}

impl WorkflowHandle {
    /// One alert.
    pub async fn alert(&self, id: &AlertId) -> Result<Alert, WorkflowError> {
        let row = self
            .inner
            .store
            .alert(id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownAlert(id.0.clone()))?;
        Alert::try_from(row)
    }

    /// Alerts matching `f`, newest first.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<Alert>, WorkflowError> {
        let scope = f.scope.as_ref().map(|s| match s {
            Scope::All => HouseholdScope::All,
            Scope::District(d) => HouseholdScope::District(d),
            Scope::Street(s) => HouseholdScope::Street(s),
            Scope::Committee(c) => HouseholdScope::Committee(c),
            Scope::Caseworker(u) => HouseholdScope::Caseworker(u.as_str()),
        });
        let rows = self
            .inner
            .store
            .alerts(&AlertQuery {
                open_only: f.open_only,
                household_id: f.household_id.as_deref(),
                scope,
                audience: f.audience.map(audience_str),
                from_ms: f.from_ms,
                to_ms: f.to_ms,
                limit: f.limit.unwrap_or(1000),
            })
            .await?;
        alerts_of(rows)
    }

    /// Applies one of detection's signals.
    pub async fn apply_signal(&self, s: &Signal) -> Result<SignalOutcome, WorkflowError> {
        let span = info_span!(
            "signal",
            household_id = s.household_id.as_deref().unwrap_or(""),
            device_id = s.device_id.as_deref().unwrap_or(""),
            kind = s.kind.as_str(),
            action = ?s.action,
        );
        async {
            let out = match s.action {
                _ if s.kind == AlertKind::CheckIn => self.check_in(s).await?,
                SignalAction::Raise => self.raise(s).await?,
                SignalAction::Cancel => self.cancel_by_device(s).await?,
                SignalAction::Clear => self.clear(s).await?,
            };
            if let SignalOutcome::Ignored(reason) = &out {
                self.inner
                    .metrics
                    .signals_ignored
                    .get_or_create(&super::ReasonLabels { reason })
                    .inc();
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }

    pub(crate) async fn open_alert_by_key(
        &self,
        key: &str,
    ) -> Result<Option<Alert>, WorkflowError> {
        self.inner
            .store
            .alert_by_open_key(key)
            .await?
            .map(Alert::try_from)
            .transpose()
    }

    async fn raise(&self, s: &Signal) -> Result<SignalOutcome, WorkflowError> {
        let key = open_key(s);
        let episode = format!("{key}|{}|{}", s.episode_ms, severity_str(s.severity));
        for _ in 0..5 {
            let now = self.now_ms();
            let mut tx = self.inner.store.begin().await?;
            // A raise of an episode already applied (detection re-deriving its state
            // after a restart) changes nothing.
            if store::episode_applied(&mut tx, &episode).await? {
                return Ok(SignalOutcome::Ignored("same_episode"));
            }
            let open = store::alert_by_open_key(&mut tx, &key)
                .await?
                .map(Alert::try_from)
                .transpose()?;
            let (outcome, alert) = match open {
                Some(open) => {
                    let upgrade = s.severity > open.severity;
                    let alert = self.repeat_in(&mut tx, open, s, now).await?;
                    let out = if upgrade {
                        SignalOutcome::Upgraded(alert.id.clone())
                    } else {
                        SignalOutcome::Repeated(alert.id.clone())
                    };
                    (out, alert)
                }
                None => match self.open_in(&mut tx, s, &key, now).await? {
                    Some(alert) => (SignalOutcome::Opened(alert.id.clone()), alert),
                    // Opened meanwhile by another writer: again, as a repeat.
                    None => continue,
                },
            };
            store::record_episode(&mut tx, &episode, alert.id.as_str(), now).await?;
            tx.commit().await?;
            if let SignalOutcome::Opened(id) = &outcome {
                self.inner
                    .metrics
                    .raised
                    .get_or_create(&super::KindLabels {
                        kind: s.kind.as_str(),
                    })
                    .inc();
                info!(alert_id = %id, severity = severity_str(s.severity), "alert raised");
            }
            self.after_commit(&alert);
            return Ok(outcome);
        }
        Err(WorkflowError::Conflict(key))
    }

    /// Opens a new alert in `tx`; None when one is open for the key already.
    async fn open_in(
        &self,
        tx: &mut Tx,
        s: &Signal,
        key: &str,
        now: i64,
    ) -> Result<Option<Alert>, WorkflowError> {
        let id = AlertId(new_id("al", now));
        let policy = EscalationConfig::policy_name(s.kind.audience(), s.severity);
        let new = NewAlert {
            id: id.as_str(),
            household_id: s.household_id.as_deref(),
            device_id: s.device_id.as_deref(),
            kind: s.kind.as_str(),
            audience: audience_str(s.kind.audience()),
            severity: severity_str(s.severity),
            open_key: key,
            reason: &s.reason,
            raised_ms: now,
            observed_ms: s.observed_ms,
            policy,
        };
        if !store::insert_alert(tx, &new).await? {
            return Ok(None);
        }
        audit::record(
            tx,
            now,
            &signal_actor(s),
            "alert.raise",
            "alert",
            id.as_str(),
            s.household_id.as_deref(),
            serde_json::json!({
                "kind": s.kind, "severity": s.severity, "reason": s.reason,
                "device_id": s.device_id, "signal_at_ms": s.at_ms, "observed_ms": s.observed_ms,
                "episode_ms": s.episode_ms,
            }),
        )
        .await?;
        let alert = self.load_in(tx, &id).await?;
        let ctx = ctx_in(tx, alert).await?;
        self.feedback(
            tx,
            &ctx.alert,
            CommandKind::AlertReceived,
            "received-0",
            now,
        )
        .await?;
        Ok(Some(self.start_policy(tx, &ctx, now).await?))
    }

    /// Fires the policy's steps due now and plans the next deadlines; returns the alert
    /// as updated. The alert row must be locked by `tx` (changed in it).
    async fn start_policy(
        &self,
        tx: &mut Tx,
        ctx: &AlertCtx,
        now: i64,
    ) -> Result<Alert, WorkflowError> {
        let policy = self.inner.cfg.escalation.policy(&ctx.alert.policy).clone();
        let (step, next) = self.fire_due_steps(tx, ctx, &policy, now).await?;
        // Reminders only once someone has been called.
        let called = !involved_users(tx, &ctx.alert).await?.is_empty();
        let next_repeat =
            (policy.repeat_s > 0 && called).then(|| now + (policy.repeat_s as i64) * 1000);
        store::set_alert_plan(tx, ctx.alert.id.as_str(), step, next, next_repeat).await?;
        self.load_in(tx, &ctx.alert.id).await
    }

    pub(crate) async fn load_in(
        &self,
        conn: &mut Conn,
        id: &AlertId,
    ) -> Result<Alert, WorkflowError> {
        let row = store::alert_by_id(conn, id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownAlert(id.0.clone()))?;
        Alert::try_from(row)
    }

    /// Counts a repeat of the open alert (and upgrades it when more severe), in `tx`.
    async fn repeat_in(
        &self,
        tx: &mut Tx,
        open: Alert,
        s: &Signal,
        now: i64,
    ) -> Result<Alert, WorkflowError> {
        let upgrade = s.severity > open.severity;
        let counted = store::count_alert_repeat(
            tx,
            open.id.as_str(),
            open.version,
            now,
            &s.reason,
            severity_str(s.severity.max(open.severity)),
        )
        .await?;
        if !counted {
            return Err(WorkflowError::Conflict(open.id.0));
        }
        let alert = self.load_in(tx, &open.id).await?;
        audit::record(
            tx,
            now,
            &signal_actor(s),
            if upgrade { "alert.upgrade" } else { "alert.repeat" },
            "alert",
            alert.id.as_str(),
            alert.household_id.as_deref(),
            serde_json::json!({ "severity": s.severity, "reason": s.reason, "repeats": alert.repeats }),
        )
        .await?;
        let ctx = ctx_in(tx, alert).await?;
        let a = &ctx.alert;
        // The elder pressed again: show "received" again, and "someone is coming" when
        // someone already is.
        if feedback_cause(a.kind).is_some() {
            let suffix = format!("received-{}", a.repeats);
            self.feedback(tx, a, CommandKind::AlertReceived, &suffix, now)
                .await?;
            if a.state.is_acknowledged() {
                let suffix = format!("acknowledged-{}", a.repeats);
                self.feedback(tx, a, CommandKind::AlertAcknowledged, &suffix, now)
                    .await?;
                if let Some(by) = &a.acknowledged_by {
                    let users = users_by_audit_names(tx, std::slice::from_ref(by)).await?;
                    self.notify_users(
                        tx,
                        &ctx,
                        &users,
                        Purpose::RepeatSignal,
                        &format!("signal-{}", a.repeats),
                        a.severity == Severity::Critical,
                        "",
                        now,
                    )
                    .await?;
                }
            }
        }
        let mut updated = ctx.alert.clone();
        if upgrade {
            let policy_name = EscalationConfig::policy_name(a.audience, s.severity);
            if a.state.is_acknowledged() {
                let policy = self.inner.cfg.escalation.policy(policy_name);
                let arrival = (policy.arrival_s > 0 && a.arrived_ms.is_none())
                    .then(|| now + (policy.arrival_s as i64) * 1000);
                store::upgrade_acknowledged_alert(tx, a.id.as_str(), policy_name, arrival).await?;
                if let Some(by) = &a.acknowledged_by {
                    let users = users_by_audit_names(tx, std::slice::from_ref(by)).await?;
                    self.notify_users(
                        tx,
                        &ctx,
                        &users,
                        Purpose::Upgraded,
                        policy_name,
                        true,
                        "",
                        now,
                    )
                    .await?;
                }
                updated = self.load_in(tx, &a.id).await?;
            } else {
                store::restart_alert_policy(tx, a.id.as_str(), policy_name, now).await?;
                let reloaded = self.load_in(tx, &a.id).await?;
                let ctx = AlertCtx {
                    alert: reloaded,
                    household: ctx.household.clone(),
                };
                updated = self.start_policy(tx, &ctx, now).await?;
            }
        }
        Ok(updated)
    }

    async fn cancel_by_device(&self, s: &Signal) -> Result<SignalOutcome, WorkflowError> {
        let Some(open) = self.open_alert_by_key(&open_key(s)).await? else {
            return Ok(SignalOutcome::Ignored("no_open_alert"));
        };
        let actor = signal_actor(s);
        let a = self
            .close(
                open,
                &actor,
                AlertState::Cancelled,
                "cancelled_by_device",
                &s.reason,
                Purpose::Cancelled,
                "",
            )
            .await?;
        Ok(SignalOutcome::Cancelled(a.id))
    }

    async fn clear(&self, s: &Signal) -> Result<SignalOutcome, WorkflowError> {
        let Some(open) = self.open_alert_by_key(&open_key(s)).await? else {
            return Ok(SignalOutcome::Ignored("no_open_alert"));
        };
        let auto_close = match open.audience {
            Audience::Technician | Audience::System | Audience::Elder => true,
            // Gas is never closed automatically, nor a press or a fall: a person checks.
            Audience::Caseworker => {
                !matches!(
                    open.kind,
                    AlertKind::Gas | AlertKind::Help | AlertKind::Fall
                ) && !open.state.is_acknowledged()
            }
        };
        if auto_close {
            let a = self
                .close(
                    open,
                    &signal_actor(s),
                    AlertState::Cleared,
                    "cleared",
                    &s.reason,
                    Purpose::Cleared,
                    &s.reason,
                )
                .await?;
            return Ok(SignalOutcome::Cleared(a.id));
        }
        if open.condition_cleared_ms.is_some() {
            return Ok(SignalOutcome::Ignored("already_cleared"));
        }
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        if !store::mark_condition_cleared(&mut tx, open.id.as_str(), open.version, now).await? {
            return Err(WorkflowError::Conflict(open.id.0));
        }
        audit::record(
            &mut tx,
            now,
            &signal_actor(s),
            "alert.condition_clear",
            "alert",
            open.id.as_str(),
            open.household_id.as_deref(),
            serde_json::json!({ "reason": s.reason }),
        )
        .await?;
        let alert = self.load_in(&mut tx, &open.id).await?;
        let ctx = ctx_in(&mut tx, alert).await?;
        let users = involved_users(&mut tx, &ctx.alert).await?;
        self.notify_users(
            &mut tx,
            &ctx,
            &users,
            Purpose::ConditionCleared,
            "condition-cleared",
            false,
            &s.reason,
            now,
        )
        .await?;
        tx.commit().await?;
        self.after_commit(&ctx.alert);
        Ok(SignalOutcome::ConditionCleared(ctx.alert.id))
    }

    /// Closes `open` (cancelled, cleared or resolved) and tells whoever was involved.
    #[allow(clippy::too_many_arguments)]
    async fn close(
        &self,
        open: Alert,
        actor: &Actor,
        state: AlertState,
        outcome: &str,
        note: &str,
        purpose: Purpose,
        extra: &str,
    ) -> Result<Alert, WorkflowError> {
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        let closed_by = actor.audit_name();
        let close = AlertClose {
            id: open.id.as_str(),
            version: open.version,
            state: state.as_str(),
            closed_ms: now,
            closed_by: &closed_by,
            outcome,
            note,
        };
        if !store::close_alert(&mut tx, &close).await? {
            return Err(WorkflowError::Conflict(open.id.0));
        }
        Outbox::supersede(&mut tx, open.id.as_str(), &Purpose::CALLS_TO_ACT).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            match state {
                AlertState::Cancelled => "alert.cancel",
                AlertState::Cleared => "alert.clear",
                _ => "alert.resolve",
            },
            "alert",
            open.id.as_str(),
            open.household_id.as_deref(),
            serde_json::json!({ "outcome": outcome, "note": note }),
        )
        .await?;
        let alert = self.load_in(&mut tx, &open.id).await?;
        let ctx = ctx_in(&mut tx, alert).await?;
        let users = involved_users(&mut tx, &ctx.alert).await?;
        // Someone woken by a critical alert hears at once that it ended.
        self.notify_users(
            &mut tx,
            &ctx,
            &users,
            purpose,
            purpose.as_str(),
            open.severity == Severity::Critical && state != AlertState::Resolved,
            extra,
            now,
        )
        .await?;
        tx.commit().await?;
        self.inner
            .metrics
            .closed
            .get_or_create(&super::ReasonLabels {
                reason: state.as_str(),
            })
            .inc();
        info!(alert_id = %ctx.alert.id, state = state.as_str(), "alert closed");
        self.after_commit(&ctx.alert);
        Ok(ctx.alert)
    }

    /// A person takes the alert: escalation and repeats stop, the device shows "someone
    /// is coming", the others who were called hear who took it, and the arrival clock
    /// starts (policies with `arrival_s`). Acknowledging again by the same person is a
    /// no-op.
    pub async fn acknowledge(&self, id: &AlertId, actor: &Actor) -> Result<Alert, WorkflowError> {
        let user = self.person(actor).await?;
        for _ in 0..5 {
            let a = self.alert(id).await?;
            if !a.state.is_open() {
                return Err(WorkflowError::InvalidTransition {
                    id: id.0.clone(),
                    state: a.state,
                    action: "acknowledge",
                });
            }
            if a.state.is_acknowledged() {
                return if a.acknowledged_by.as_deref() == Some(actor.audit_name().as_str()) {
                    Ok(a)
                } else {
                    Err(WorkflowError::AlreadyAcknowledged {
                        by: a.acknowledged_by.unwrap_or_default(),
                    })
                };
            }
            match self.do_acknowledge(a, actor, &user).await {
                Err(WorkflowError::Conflict(_)) => continue,
                r => return r,
            }
        }
        Err(WorkflowError::Conflict(id.0.clone()))
    }

    async fn do_acknowledge(
        &self,
        a: Alert,
        actor: &Actor,
        user: &User,
    ) -> Result<Alert, WorkflowError> {
        let now = self.now_ms();
        let policy = self.inner.cfg.escalation.policy(&a.policy).clone();
        let arrival = (policy.arrival_s > 0).then(|| now + (policy.arrival_s as i64) * 1000);
        let mut tx = self.inner.store.begin().await?;
        let by = actor.audit_name();
        let taken =
            store::acknowledge_alert(&mut tx, a.id.as_str(), a.version, now, &by, arrival).await?;
        if !taken {
            return Err(WorkflowError::Conflict(a.id.0));
        }
        Outbox::supersede(&mut tx, a.id.as_str(), &Purpose::CALLS_TO_ACT).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "alert.acknowledge",
            "alert",
            a.id.as_str(),
            a.household_id.as_deref(),
            serde_json::json!({ "after_ms": now - a.raised_ms }),
        )
        .await?;
        let alert = self.load_in(&mut tx, &a.id).await?;
        let ctx = ctx_in(&mut tx, alert).await?;
        self.feedback(
            &mut tx,
            &ctx.alert,
            CommandKind::AlertAcknowledged,
            "acknowledged",
            now,
        )
        .await?;
        let others: Vec<User> = involved_users(&mut tx, &ctx.alert)
            .await?
            .into_iter()
            .filter(|u| u.id != user.id)
            .collect();
        self.notify_users(
            &mut tx,
            &ctx,
            &others,
            Purpose::Acknowledged,
            "acknowledged",
            false,
            &user.name,
            now,
        )
        .await?;
        tx.commit().await?;
        self.inner
            .metrics
            .ack_seconds
            .observe((now - a.raised_ms) as f64 / 1000.0);
        info!(alert_id = %a.id, by = %user.id, after_ms = now - a.raised_ms, "alert acknowledged");
        self.after_commit(&ctx.alert);
        Ok(ctx.alert)
    }

    /// The person who acknowledged is on the way (acknowledges first if nobody has).
    pub async fn on_the_way(&self, id: &AlertId, actor: &Actor) -> Result<Alert, WorkflowError> {
        self.progress(id, actor, AlertState::OnTheWay).await
    }

    /// A person is at the home: the arrival clock stops.
    pub async fn arrived(&self, id: &AlertId, actor: &Actor) -> Result<Alert, WorkflowError> {
        self.progress(id, actor, AlertState::Arrived).await
    }

    async fn progress(
        &self,
        id: &AlertId,
        actor: &Actor,
        to: AlertState,
    ) -> Result<Alert, WorkflowError> {
        self.person(actor).await?;
        let action = if to == AlertState::Arrived {
            "arrive"
        } else {
            "be on the way"
        };
        for _ in 0..5 {
            let a = self.alert(id).await?;
            if !a.state.is_open() || (to == AlertState::OnTheWay && a.state == AlertState::Arrived)
            {
                return Err(WorkflowError::InvalidTransition {
                    id: id.0.clone(),
                    state: a.state,
                    action,
                });
            }
            if !a.state.is_acknowledged() {
                match self.acknowledge(id, actor).await {
                    Ok(_) | Err(WorkflowError::AlreadyAcknowledged { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            if a.state == to {
                return Ok(a);
            }
            let now = self.now_ms();
            let mut tx = self.inner.store.begin().await?;
            let by = actor.audit_name();
            let changed = if to == AlertState::Arrived {
                store::alert_arrived(&mut tx, a.id.as_str(), a.version, now, &by).await?
            } else {
                store::alert_on_the_way(&mut tx, a.id.as_str(), a.version, now, &by).await?
            };
            if !changed {
                continue;
            }
            audit::record(
                &mut tx,
                now,
                actor,
                if to == AlertState::Arrived {
                    "alert.arrive"
                } else {
                    "alert.on_the_way"
                },
                "alert",
                a.id.as_str(),
                a.household_id.as_deref(),
                serde_json::json!({ "after_ms": now - a.raised_ms }),
            )
            .await?;
            let alert = self.load_in(&mut tx, &a.id).await?;
            tx.commit().await?;
            self.after_commit(&alert);
            return Ok(alert);
        }
        Err(WorkflowError::Conflict(id.0.clone()))
    }

    /// Closes the alert with an outcome (required: a category and a non-blank note) and
    /// an optional follow-up date.
    pub async fn resolve(
        &self,
        id: &AlertId,
        actor: &Actor,
        outcome: Option<Outcome>,
    ) -> Result<Alert, WorkflowError> {
        let Some(outcome) = outcome.filter(|o| !o.note.trim().is_empty()) else {
            return Err(WorkflowError::OutcomeRequired);
        };
        self.person(actor).await?;
        for _ in 0..5 {
            let a = self.alert(id).await?;
            if !a.state.is_open() {
                return Err(WorkflowError::InvalidTransition {
                    id: id.0.clone(),
                    state: a.state,
                    action: "resolve",
                });
            }
            let extra = format!("{} — {}", outcome.category, outcome.note.trim());
            match self
                .close(
                    a,
                    actor,
                    AlertState::Resolved,
                    outcome.category.as_str(),
                    outcome.note.trim(),
                    Purpose::Resolved,
                    &extra,
                )
                .await
            {
                Err(WorkflowError::Conflict(_)) => continue,
                Err(e) => return Err(e),
                Ok(closed) => {
                    if let Some(due) = outcome.follow_up_due_ms {
                        self.inner
                            .store
                            .set_follow_up_due(closed.id.as_str(), due)
                            .await?;
                    }
                    return self.alert(id).await;
                }
            }
        }
        Err(WorkflowError::Conflict(id.0.clone()))
    }

    /// Records that the follow-up of a resolved alert was done.
    pub async fn complete_follow_up(
        &self,
        id: &AlertId,
        actor: &Actor,
        note: &str,
    ) -> Result<Alert, WorkflowError> {
        self.person(actor).await?;
        let a = self.alert(id).await?;
        if a.follow_up_due_ms.is_none() || a.follow_up_done_ms.is_some() {
            return Err(WorkflowError::InvalidTransition {
                id: id.0.clone(),
                state: a.state,
                action: "complete a follow-up",
            });
        }
        if note.trim().is_empty() {
            return Err(WorkflowError::Invalid {
                field: "note",
                reason: "a follow-up needs a note".into(),
            });
        }
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        let by = actor.audit_name();
        store::complete_alert_follow_up(&mut tx, id.as_str(), now, &by, note.trim()).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "alert.follow_up",
            "alert",
            id.as_str(),
            a.household_id.as_deref(),
            serde_json::json!({ "note": note.trim() }),
        )
        .await?;
        tx.commit().await?;
        self.alert(id).await
    }

    /// Resolved alerts whose follow-up is due by `until_ms` and not done.
    pub async fn follow_ups_due(&self, until_ms: i64) -> Result<Vec<Alert>, WorkflowError> {
        alerts_of(self.inner.store.follow_ups_due(until_ms).await?)
    }

    /// A person (active user) is acting; devices and the system may not.
    async fn person(&self, actor: &Actor) -> Result<User, WorkflowError> {
        match self.check_actor(actor).await? {
            Some(u) => Ok(u),
            None => Err(WorkflowError::NotAllowed("only a person can do this")),
        }
    }

    /// Queues device feedback (`received` / `acknowledged`) for help, fall and gas: to
    /// the device in the signal or, when the signal names none, to the household's
    /// devices of that kind (help buttons, pendants, gas sensors).
    pub(crate) async fn feedback(
        &self,
        conn: &mut Conn,
        a: &Alert,
        kind: CommandKind,
        suffix: &str,
        now: i64,
    ) -> Result<(), WorkflowError> {
        let Some(cause) = feedback_cause(a.kind) else {
            return Ok(());
        };
        let devices = match (&a.device_id, &a.household_id) {
            (Some(d), _) => vec![d.clone()],
            (None, Some(h)) => {
                let device_kind = match cause {
                    AlertCause::Help => "help",
                    AlertCause::Fall => "pendant",
                    AlertCause::Gas => "gas",
                };
                store::household_device_ids_of_kind(conn, h, device_kind).await?
            }
            (None, None) => vec![],
        };
        for device in devices {
            let env = Envelope {
                key: format!("{}/{device}/{suffix}", a.id),
                channel: Channel::Device,
                recipient: None,
                address: device.clone(),
                alert_id: Some(a.id.0.clone()),
                purpose: "device_feedback",
                critical: true,
                title: format!("{kind:?}"),
                text: String::new(),
                payload: feedback_payload(kind, cause),
                not_before_ms: now,
            };
            Outbox::enqueue(conn, &env, now).await?;
        }
        Ok(())
    }

    /// Queues a notification about an alert to each of `users` on their channels.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn notify_users(
        &self,
        conn: &mut Conn,
        ctx: &AlertCtx,
        users: &[User],
        purpose: Purpose,
        step_key: &str,
        critical: bool,
        extra: &str,
        now: i64,
    ) -> Result<usize, WorkflowError> {
        let (title, text) = alert_message(
            &self.inner.cfg.language,
            purpose,
            &ctx.alert,
            ctx.household.as_ref(),
            extra,
        );
        let payload = alert_payload(ctx, purpose, step_key);
        let mut queued = 0;
        for u in users {
            let key = format!("{}/{}/{step_key}", ctx.alert.id, u.id);
            queued += self
                .enqueue_for_user(
                    conn,
                    u,
                    &key,
                    Some(ctx.alert.id.as_str()),
                    purpose.as_str(),
                    critical,
                    &title,
                    &text,
                    &payload,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    /// Queues one notification to `u` on each of their enabled channels; non-critical
    /// ones wait for the end of the user's quiet hours.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn enqueue_for_user(
        &self,
        conn: &mut Conn,
        u: &User,
        key: &str,
        alert_id: Option<&str>,
        purpose: &'static str,
        critical: bool,
        title: &str,
        text: &str,
        payload: &serde_json::Value,
        now: i64,
    ) -> Result<usize, WorkflowError> {
        let cfg = &self.inner.cfg;
        let chosen: Vec<Channel> = if u.channels.is_empty() {
            cfg.notify.role_channels.for_role(u.role.as_str()).to_vec()
        } else {
            u.channels.clone()
        };
        let quiet = match (&u.quiet_start, &u.quiet_end) {
            (Some(s), Some(e)) => super::config::parse_hhmm(s).zip(super::config::parse_hhmm(e)),
            _ => cfg.quiet_hours(),
        };
        let not_before = if critical {
            now
        } else {
            quiet
                .and_then(|q| self.inner.local.quiet_until(now, q))
                .unwrap_or(now)
        };
        let mut queued = 0;
        for ch in chosen {
            if !self.inner.outbox.channel_enabled(ch) {
                continue;
            }
            let address = match ch {
                Channel::Email => match &u.email {
                    Some(e) if !e.is_empty() => e.clone(),
                    _ => continue,
                },
                _ => String::new(),
            };
            let env = Envelope {
                key: key.to_string(),
                channel: ch,
                recipient: Some(u.recipient()),
                address,
                alert_id: alert_id.map(str::to_string),
                purpose,
                critical,
                title: title.to_string(),
                text: text.to_string(),
                payload: payload.clone(),
                not_before_ms: not_before,
            };
            if Outbox::enqueue(conn, &env, now).await? {
                queued += 1;
            }
        }
        if queued == 0 {
            tracing::debug!(user_id = %u.id, key, "no enabled channel for this user");
        }
        Ok(queued)
    }

    /// After a commit: wake the outbox and (re)schedule the alert's deadline.
    pub(crate) fn after_commit(&self, a: &Alert) {
        // Nobody listening is fine.
        let _ = self.inner.alert_changes.send(a.clone());
        self.inner.outbox.wake();
        self.schedule(DeadlineKey::Alert(a.id.0.clone()), a.next_deadline());
    }
}

/// The alert with its household, read on `conn`.
pub(crate) async fn ctx_in(conn: &mut Conn, alert: Alert) -> Result<AlertCtx, WorkflowError> {
    let household = match &alert.household_id {
        Some(h) => load_household(conn, h).await?,
        None => None,
    };
    Ok(AlertCtx { alert, household })
}

/// Users called on for the alert so far, and whoever acknowledged it (active ones).
pub(crate) async fn involved_users(conn: &mut Conn, a: &Alert) -> Result<Vec<User>, WorkflowError> {
    let mut ids = store::alert_recipient_ids(conn, a.id.as_str()).await?;
    for by in [&a.acknowledged_by, &a.on_the_way_by, &a.arrived_by]
        .into_iter()
        .flatten()
    {
        if let Some(u) = by.strip_prefix("user:")
            && !ids.iter().any(|i| i == u)
        {
            ids.push(u.to_string());
        }
    }
    let mut users = vec![];
    for id in ids {
        if let Some(u) = load_user(conn, &id).await?
            && u.active
        {
            users.push(u);
        }
    }
    Ok(users)
}

async fn users_by_audit_names(
    conn: &mut Conn,
    names: &[String],
) -> Result<Vec<User>, WorkflowError> {
    let mut users = vec![];
    for n in names {
        if let Some(id) = n.strip_prefix("user:")
            && let Some(u) = load_user(conn, id).await?
        {
            users.push(u);
        }
    }
    Ok(users)
}

fn signal_actor(s: &Signal) -> Actor {
    match (&s.action, &s.device_id) {
        (SignalAction::Cancel, Some(d)) => Actor::Device(d.clone()),
        _ => Actor::System,
    }
}

/// The structured content of a notification about an alert (the webhook's `data`).
pub(crate) fn alert_payload(ctx: &AlertCtx, purpose: Purpose, step: &str) -> serde_json::Value {
    let a = &ctx.alert;
    let household = ctx.household.as_ref().map(|h| {
        serde_json::json!({
            "id": h.id, "name": h.name, "address": h.address, "phone": h.phone,
            "committee_id": h.committee_id, "risk_tags": h.risk_tags,
            "emergency_contacts": if a.audience == Audience::Caseworker {
                serde_json::to_value(&h.emergency_contacts).unwrap_or_default()
            } else {
                serde_json::Value::Array(vec![])
            },
        })
    });
    serde_json::json!({
        "type": format!("alert.{}", purpose.as_str()),
        "step": step,
        "alert": {
            "id": a.id, "kind": a.kind, "audience": a.audience, "severity": a.severity,
            "state": a.state, "reason": a.reason, "repeats": a.repeats,
            "raised_ms": a.raised_ms, "device_id": a.device_id,
            "household_id": a.household_id, "escalation_step": a.escalation_step,
            "acknowledged_by": a.acknowledged_by, "acknowledged_ms": a.acknowledged_ms,
            "outcome": a.outcome, "outcome_note": a.outcome_note,
        },
        "household": household,
    })
}

/// Outcome categories as a list (for the API and forms).
pub fn outcome_categories() -> &'static [OutcomeCategory] {
    OutcomeCategory::ALL
}
