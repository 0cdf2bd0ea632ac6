//! Check-ins: before detection alerts a caseworker about an unusual silence, it asks the
//! elder on the home's help button ("press once if all is well"). This file turns
//! detection's check-in signals into `check_in` commands to the household's help
//! buttons, sent through the outbox like all device feedback (durable, resent until the
//! device acknowledges), and records each step in the audit trail and the metric
//! `anxin_check_ins{outcome}`. A check-in is never an alert: nobody is notified.
//!
//! | signal | outbox | audit |
//! |---|---|---|
//! | raise (asked) | `check_in on` for `duration_s` to each help button | `check_in.ask` |
//! | clear (answered: a press or any sign of life) | `check_in off` (ends the prompt) | `check_in.answered` |
//! | cancel (not answered; the alert follows) | `check_in off` (a later press is a call for help again) | `check_in.unanswered` |
//!
//! Idempotency keys name the household and the silence (its episode), so a signal
//! re-derived after a restart asks nobody twice and is recorded once.

use anxin_firmware::wire::CommandKind;
use tracing::info;

use super::audit;
use super::{Actor, SignalOutcome, WorkflowError, WorkflowHandle};
use crate::notify::{Channel, Envelope, Outbox};
use crate::signal::{Signal, SignalAction};
use crate::store;

impl WorkflowHandle {
    /// Applies a check-in signal (see the module documentation).
    pub(crate) async fn check_in(&self, s: &Signal) -> Result<SignalOutcome, WorkflowError> {
        let Some(household) = s.household_id.as_deref() else {
            return Ok(SignalOutcome::Ignored("no_household"));
        };
        let (on, action, outcome) = match s.action {
            SignalAction::Raise => (true, "check_in.ask", "asked"),
            SignalAction::Clear => (false, "check_in.answered", "answered"),
            SignalAction::Cancel => (false, "check_in.unanswered", "unanswered"),
        };
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        // The household's devices the elder can answer on (one list: detection's).
        let devices: Vec<String> = store::household_device_kinds(&mut tx, household)
            .await?
            .into_iter()
            .filter(|(_, kind)| crate::detect::answers_check_in(kind))
            .map(|(id, _)| id)
            .collect();
        let payload = if on {
            serde_json::json!({
                "cmd": CommandKind::CheckIn, "on": true, "duration_s": self.inner.check_in_s,
            })
        } else {
            serde_json::json!({ "cmd": CommandKind::CheckIn, "on": false })
        };
        let switch = if on { "on" } else { "off" };
        let mut queued = 0usize;
        for device in &devices {
            if !on {
                // A prompt not yet delivered must not start after its answer.
                store::supersede_pending_check_ins(&mut tx, Channel::Device.as_str(), device)
                    .await?;
            }
            let env = Envelope {
                key: format!("check_in/{household}/{}/{device}/{switch}", s.episode_ms),
                channel: Channel::Device,
                recipient: None,
                address: device.clone(),
                alert_id: None,
                purpose: "check_in",
                critical: true,
                title: "CheckIn".into(),
                text: String::new(),
                payload: payload.clone(),
                not_before_ms: now,
            };
            if Outbox::enqueue(&mut tx, &env, now).await? {
                queued += 1;
            }
        }
        if queued == 0 && !devices.is_empty() {
            // The same step of the same silence again (a replay after a restart).
            return Ok(SignalOutcome::Ignored("same_episode"));
        }
        audit::record(
            &mut tx,
            now,
            &Actor::System,
            action,
            "household",
            household,
            Some(household),
            serde_json::json!({
                "episode_ms": s.episode_ms, "signal_at_ms": s.at_ms, "reason": s.reason,
                "devices": devices,
            }),
        )
        .await?;
        tx.commit().await?;
        self.inner
            .metrics
            .check_ins
            .get_or_create(&super::OutcomeLabels { outcome })
            .inc();
        info!(
            household_id = household,
            outcome,
            devices = devices.len(),
            "check-in"
        );
        Ok(SignalOutcome::CheckIn(outcome))
    }
}
