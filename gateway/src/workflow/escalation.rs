//! Escalation (紧急情况上报, 分层分级): who is called on when nobody acknowledges.
//!
//! A policy is a list of steps, each `after_s` seconds from the start of the policy
//! (the raise, or the upgrade to critical): caseworker at once, the backup after 2 min,
//! the committee head, then the street office's duty. A step whose people cannot be
//! found is skipped at once — nothing waits silently on a missing assignment — and when
//! no step found anybody, the administrators are told that the alert has nobody.
//! Until acknowledged, everyone called so far is reminded every `repeat_s`; after an
//! acknowledgement, arrival must be confirmed within `arrival_s` or everyone involved
//! (and the next step) is alarmed again.
//!
//! The next deadlines live in the alert's row (`next_escalation_ms`, `next_repeat_ms`,
//! `arrival_due_ms`). Firing them is a compare-and-set on the row's version in the same
//! transaction as the notifications it queues, each with an idempotency key per
//! (alert, recipient, step): a restart re-reads the deadlines and fires what is due,
//! once.

use tracing::{Instrument, info, info_span, warn};

use super::alerts::{AlertCtx, ctx_in, involved_users};
use super::config::{Policy, Target};
use super::db::Tx;
use super::org::{User, recipients};
use super::text::Purpose;
use super::{Actor, AlertId, WorkflowError, WorkflowHandle, audit};
use crate::store::{self, AlertDeadlines};

impl WorkflowHandle {
    /// Fires every step of `policy` that is due at `now`, starting at the alert's
    /// `escalation_step`. Returns the new step index and the next step's deadline.
    pub(crate) async fn fire_due_steps(
        &self,
        tx: &mut Tx,
        ctx: &AlertCtx,
        policy: &Policy,
        now: i64,
    ) -> Result<(i64, Option<i64>), WorkflowError> {
        let a = &ctx.alert;
        let mut step = usize::try_from(a.escalation_step.max(0)).unwrap_or(0);
        let mut skip_ahead = false;
        let due_at = |i: usize| a.policy_start_ms + (policy.steps[i].after_s as i64) * 1000;
        while step < policy.steps.len() {
            if due_at(step) > now && !skip_ahead {
                break;
            }
            let target = policy.steps[step].to;
            let users = recipients(tx, target, ctx.household.as_ref()).await?;
            if users.is_empty() {
                self.inner
                    .metrics
                    .unroutable
                    .get_or_create(&super::TargetLabels {
                        target: target.as_str(),
                    })
                    .inc();
                audit::record(
                    tx,
                    now,
                    &Actor::System,
                    "alert.step_skipped",
                    "alert",
                    a.id.as_str(),
                    a.household_id.as_deref(),
                    serde_json::json!({ "step": step, "target": target.as_str(), "why": "nobody" }),
                )
                .await?;
                warn!(alert_id = %a.id, step, target = target.as_str(), "escalation step has nobody; next step now");
                step += 1;
                skip_ahead = true;
                continue;
            }
            let purpose = if step == 0 {
                Purpose::Raised
            } else {
                Purpose::Escalated
            };
            let key = format!("{}-step-{step}", a.policy);
            let critical = a.severity == crate::signal::Severity::Critical;
            self.notify_users(tx, ctx, &users, purpose, &key, critical, "", now)
                .await?;
            self.add_recipients(tx, &a.id, &users, step, target, now)
                .await?;
            audit::record(
                tx,
                now,
                &Actor::System,
                if step == 0 {
                    "alert.notify"
                } else {
                    "alert.escalate"
                },
                "alert",
                a.id.as_str(),
                a.household_id.as_deref(),
                serde_json::json!({
                    "step": step, "target": target.as_str(), "policy": a.policy,
                    "users": users.iter().map(|u| u.id.0.clone()).collect::<Vec<_>>(),
                }),
            )
            .await?;
            self.inner
                .metrics
                .escalations
                .get_or_create(&super::TargetLabels {
                    target: target.as_str(),
                })
                .inc();
            if step > 0 {
                info!(alert_id = %a.id, step, target = target.as_str(), "alert escalated");
            }
            step += 1;
            skip_ahead = false;
        }
        if step >= policy.steps.len() && !policy.steps.is_empty() {
            let anybody = store::count_alert_recipients(tx, a.id.as_str()).await?;
            if anybody == 0 {
                let admins = recipients(tx, Target::Admins, None).await?;
                self.notify_users(
                    tx,
                    ctx,
                    &admins,
                    Purpose::Unroutable,
                    "unroutable",
                    true,
                    "",
                    now,
                )
                .await?;
                self.add_recipients(tx, &a.id, &admins, step, Target::Admins, now)
                    .await?;
                audit::record(
                    tx,
                    now,
                    &Actor::System,
                    "alert.unroutable",
                    "alert",
                    a.id.as_str(),
                    a.household_id.as_deref(),
                    serde_json::json!({ "admins": admins.len() }),
                )
                .await?;
                warn!(alert_id = %a.id, "nobody to notify for this alert; administrators told");
            }
        }
        let next = (step < policy.steps.len()).then(|| due_at(step));
        Ok((i64::try_from(step).unwrap_or(i64::MAX), next))
    }

    async fn add_recipients(
        &self,
        tx: &mut Tx,
        alert: &AlertId,
        users: &[User],
        step: usize,
        target: Target,
        now: i64,
    ) -> Result<(), WorkflowError> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        for u in users {
            store::add_alert_recipient(
                tx,
                alert.as_str(),
                u.id.as_str(),
                step,
                target.as_str(),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Handles whatever of the alert's deadlines is due now (escalation step, repeat,
    /// arrival check). Returns the alert's next deadline.
    pub async fn process_deadlines(&self, id: &AlertId) -> Result<Option<i64>, WorkflowError> {
        let span = info_span!("deadline", alert_id = %id);
        async {
            for _ in 0..5 {
                match self.try_process_deadlines(id).await {
                    Err(WorkflowError::Conflict(_)) => continue,
                    r => return r,
                }
            }
            Err(WorkflowError::Conflict(id.0.clone()))
        }
        .instrument(span)
        .await
    }

    async fn try_process_deadlines(&self, id: &AlertId) -> Result<Option<i64>, WorkflowError> {
        let a = self.alert(id).await?;
        let now = self.now_ms();
        if !a.state.is_open() {
            return Ok(None);
        }
        let due = |t: Option<i64>| t.is_some_and(|t| t <= now);
        let escalate = due(a.next_escalation_ms) && !a.state.is_acknowledged();
        let repeat = due(a.next_repeat_ms) && !a.state.is_acknowledged();
        let arrival = due(a.arrival_due_ms) && a.state.is_acknowledged() && a.arrived_ms.is_none();
        if !(escalate || repeat || arrival) {
            return Ok(a.next_deadline());
        }
        let policy = self.inner.cfg.escalation.policy(&a.policy).clone();
        let mut tx = self.inner.store.begin().await?;
        if !store::bump_alert_version(&mut tx, a.id.as_str(), a.version).await? {
            return Err(WorkflowError::Conflict(a.id.0));
        }
        let ctx = ctx_in(&mut tx, a).await?;
        let a = &ctx.alert;
        // Reminders go to those called before this pass, not to whoever a step just
        // called.
        let called_before = if repeat {
            involved_users(&mut tx, a).await?
        } else {
            vec![]
        };
        let (mut step, mut next_escalation) = (a.escalation_step, a.next_escalation_ms);
        if escalate {
            (step, next_escalation) = self.fire_due_steps(&mut tx, &ctx, &policy, now).await?;
        }
        let (mut repeats, mut next_repeat) = (a.repeat_count, a.next_repeat_ms);
        if repeat {
            repeats += 1;
            let users = called_before;
            let critical = a.severity == crate::signal::Severity::Critical;
            self.notify_users(
                &mut tx,
                &ctx,
                &users,
                Purpose::Repeat,
                &format!("repeat-{repeats}"),
                critical,
                "",
                now,
            )
            .await?;
            audit::record(
                &mut tx,
                now,
                &Actor::System,
                "alert.repeat_notify",
                "alert",
                a.id.as_str(),
                a.household_id.as_deref(),
                serde_json::json!({ "repeat": repeats, "users": users.len() }),
            )
            .await?;
            next_repeat = (policy.repeat_s > 0).then(|| now + (policy.repeat_s as i64) * 1000);
        } else if a.state.is_acknowledged() {
            next_repeat = None;
        }
        // Reminders start once a step has called someone, and stop when nobody is left.
        if policy.repeat_s > 0 && !a.state.is_acknowledged() {
            let called = !involved_users(&mut tx, a).await?.is_empty();
            if !called {
                next_repeat = None;
            } else if next_repeat.is_none() {
                next_repeat = Some(now + (policy.repeat_s as i64) * 1000);
            }
        }
        let (mut realarms, mut next_arrival) = (a.arrival_realarms, a.arrival_due_ms);
        if arrival {
            realarms += 1;
            let mut users = involved_users(&mut tx, a).await?;
            // The next step up hears of it too.
            let idx = usize::try_from(step.max(0)).unwrap_or(usize::MAX);
            if let Some(s) = policy.steps.get(idx) {
                for u in recipients(&mut tx, s.to, ctx.household.as_ref()).await? {
                    if !users.iter().any(|x| x.id == u.id) {
                        users.push(u);
                    }
                }
            }
            let by = a
                .acknowledged_by
                .as_deref()
                .map(|b| b.trim_start_matches("user:"))
                .unwrap_or("?");
            let acked = a.acknowledged_ms.unwrap_or(now);
            let minutes = (now - acked) / 60_000;
            let at = self.inner.local.hhmm(acked);
            let extra = if self.inner.cfg.language == "en" {
                format!("{by} acknowledged at {at}, {minutes} min ago.")
            } else {
                format!("{by} 于 {at} 确认，已过 {minutes} 分钟。")
            };
            self.notify_users(
                &mut tx,
                &ctx,
                &users,
                Purpose::ArrivalOverdue,
                &format!("arrival-{realarms}"),
                true,
                &extra,
                now,
            )
            .await?;
            audit::record(
                &mut tx,
                now,
                &Actor::System,
                "alert.arrival_overdue",
                "alert",
                a.id.as_str(),
                a.household_id.as_deref(),
                serde_json::json!({ "realarm": realarms, "users": users.len() }),
            )
            .await?;
            warn!(alert_id = %a.id, realarms, "arrival not confirmed in time");
            next_arrival = (policy.arrival_s > 0).then(|| now + (policy.arrival_s as i64) * 1000);
        }
        store::set_alert_deadlines(
            &mut tx,
            a.id.as_str(),
            &AlertDeadlines {
                escalation_step: step,
                next_escalation_ms: next_escalation,
                repeat_count: repeats,
                next_repeat_ms: next_repeat,
                arrival_realarms: realarms,
                arrival_due_ms: next_arrival,
            },
        )
        .await?;
        let updated = self.load_in(&mut tx, &a.id).await?;
        tx.commit().await?;
        self.inner.outbox.wake();
        Ok(updated.next_deadline())
    }

    /// Processes every alert whose deadline is due on the clock now (what the deadline
    /// queue does as they fall due; tests call it after moving a manual clock). Returns
    /// how many alerts had something due.
    pub async fn run_due_deadlines(&self) -> Result<usize, WorkflowError> {
        let now = self.now_ms();
        let ids = due_alerts(self, now).await?;
        let n = ids.len();
        for id in ids {
            let next = self.process_deadlines(&id).await?;
            self.schedule(super::timers::DeadlineKey::Alert(id.0), next);
        }
        Ok(n)
    }

    /// Moves the deadlines of every open alert by `by` ms (a step of the host clock):
    /// the start of its escalation policy, the next step, the next reminder and the
    /// arrival check. Returns how many alerts moved.
    pub async fn shift_open_deadlines(&self, by: i64) -> Result<u64, WorkflowError> {
        Ok(self.inner.store.shift_open_alert_deadlines(by).await?)
    }

    /// Every open alert with its next deadline (what the deadline queue loads at start).
    pub async fn open_deadlines(&self) -> Result<Vec<(AlertId, i64)>, WorkflowError> {
        let rows = self.inner.store.open_alert_deadlines().await?;
        let mut out = vec![];
        for r in rows {
            let next = [r.next_escalation_ms, r.next_repeat_ms, r.arrival_due_ms]
                .into_iter()
                .flatten()
                .min();
            if let Some(t) = next {
                out.push((AlertId(r.id), t));
            }
        }
        Ok(out)
    }
}

async fn due_alerts(wf: &WorkflowHandle, now: i64) -> Result<Vec<AlertId>, WorkflowError> {
    Ok(wf
        .open_deadlines()
        .await?
        .into_iter()
        .filter(|(_, t)| *t <= now)
        .map(|(id, _)| id)
        .collect())
}
