//! The persistent outbox and its sender lanes.
//!
//! A notification is a row written in the caller's transaction (so an alert change and
//! the notifications it causes commit or roll back together). One lane per channel
//! delivers due rows: it first *claims* a row by moving its `next_attempt_ms` a lease
//! ahead (so a second sender, or a restart, retries it only after the lease), then
//! sends, then records the result. A crash between send and record means the row is
//! sent again after the lease: at least once, never silently lost; the idempotency key
//! lets receivers drop the copy.

use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::CommandKind;
use async_trait::async_trait;
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span, warn};

use super::{
    Channel, FailLabels, Notification, Notifiers, NotifyConfig, NotifyError, Recipient,
    SendOutcome, SentLabels,
};
use crate::clock::{SharedClock, StepFollower};
use crate::store::{self, Conn, NewOutboxEntry, OutboxEntry, Store, StoreError};
use crate::telemetry::Metrics;

/// The longest a lane sleeps before looking again (clock jumps, other writers).
const MAX_NAP: Duration = Duration::from_secs(2);
/// Rows a lane takes per pass.
const BATCH: i64 = 64;

/// The command kind of a device notification's payload.
fn command_kind(payload: &serde_json::Value) -> Option<CommandKind> {
    serde_json::from_value(payload.get("cmd")?.clone()).ok()
}

/// A notification to put in the outbox.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Idempotency key (unique with the channel).
    pub key: String,
    /// Channel.
    pub channel: Channel,
    /// Who, for people.
    pub recipient: Option<Recipient>,
    /// Channel address (e-mail, device id; empty for webhooks and robots).
    pub address: String,
    /// The alert it is about.
    pub alert_id: Option<String>,
    /// Why (`raised`, `escalated`, …).
    pub purpose: &'static str,
    /// Never held back by quiet hours.
    pub critical: bool,
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
    /// Structured content.
    pub payload: serde_json::Value,
    /// Not before this time (quiet hours); usually now.
    pub not_before_ms: i64,
}

/// A stored notification as the notifiers see it: the store's row, with its channel and
/// recipient parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The row as stored.
    pub stored: OutboxEntry,
    /// Channel (an unknown name is read as a webhook).
    pub channel: Channel,
    /// Recipient details.
    pub recipient: Option<Recipient>,
}

impl OutboxRow {
    fn from_entry(stored: OutboxEntry) -> OutboxRow {
        OutboxRow {
            channel: Channel::parse(&stored.channel).unwrap_or(Channel::Webhook),
            recipient: stored
                .recipient
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            stored,
        }
    }

    /// As the notifier sees it.
    pub fn notification(&self) -> Notification {
        let e = &self.stored;
        Notification {
            id: e.id.clone(),
            key: e.key.clone(),
            channel: self.channel,
            recipient: self.recipient.clone(),
            address: e.address.clone(),
            alert_id: e.alert_id.clone(),
            purpose: e.purpose.clone(),
            critical: e.critical,
            title: e.title.clone(),
            text: e.text.clone(),
            payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
            attempt: u32::try_from(e.attempts.max(1)).unwrap_or(u32::MAX),
        }
    }
}

/// Told about each delivery (the workflow marks alerts "notified" and audits).
#[async_trait]
pub trait DeliveryHook: Send + Sync + 'static {
    /// `row` was delivered at `at_ms`.
    async fn delivered(&self, row: &OutboxRow, at_ms: i64);
    /// `row` will not be delivered (permanent failure or attempts exhausted).
    async fn failed(&self, row: &OutboxRow, at_ms: i64, reason: &str);
}

struct OutboxMetrics {
    sent: Family<SentLabels, Counter>,
    failures: Family<FailLabels, Counter>,
    pending: Gauge,
}

/// The outbox: enqueue (in the caller's transaction), deliver (lanes), inspect.
pub struct Outbox {
    store: Store,
    clock: SharedClock,
    cfg: NotifyConfig,
    notifiers: Notifiers,
    hook: Option<Arc<dyn DeliveryHook>>,
    wake: watch::Sender<u64>,
    /// The wake generation the device lane's last finished pass started from: every
    /// device command enqueued before that wake has had its attempt.
    device_done: watch::Sender<u64>,
    metrics: OutboxMetrics,
    /// Steps of the host clock already applied to the rows' next attempts.
    steps: std::sync::Mutex<StepFollower>,
}

impl Outbox {
    /// An outbox over `store` delivering with `notifiers`; registers its metrics.
    pub fn new(
        store: Store,
        clock: SharedClock,
        cfg: NotifyConfig,
        notifiers: Notifiers,
        metrics: &Metrics,
    ) -> Outbox {
        let m = OutboxMetrics {
            sent: Family::default(),
            failures: Family::default(),
            pending: Gauge::default(),
        };
        metrics.register(
            "anxin_notify_sent",
            "Notification delivery attempts, by channel and outcome",
            m.sent.clone(),
        );
        metrics.register(
            "anxin_notify_failures",
            "Failed notification delivery attempts, by channel and reason",
            m.failures.clone(),
        );
        metrics.register(
            "anxin_notify_outbox_pending",
            "Notifications waiting in the outbox",
            m.pending.clone(),
        );
        Outbox {
            store,
            steps: std::sync::Mutex::new(StepFollower::new(&*clock)),
            clock,
            cfg,
            notifiers,
            hook: None,
            wake: watch::Sender::new(0),
            device_done: watch::Sender::new(0),
            metrics: m,
        }
    }

    /// Sets the delivery hook.
    pub fn with_hook(mut self, hook: Arc<dyn DeliveryHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Whether `channel` has a configured notifier.
    pub fn channel_enabled(&self, channel: Channel) -> bool {
        self.notifiers.get(&channel).is_some_and(|n| n.enabled())
    }

    /// The retry configuration.
    pub fn config(&self) -> &NotifyConfig {
        &self.cfg
    }

    /// Writes `env` in the caller's transaction. Returns false when a notification with
    /// the same key and channel exists already (nothing written: the duplicate is
    /// suppressed at the source).
    pub async fn enqueue(conn: &mut Conn, env: &Envelope, now_ms: i64) -> Result<bool, StoreError> {
        let id = crate::workflow::new_id("nt", now_ms);
        let recipient = env
            .recipient
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok());
        let payload = env.payload.to_string();
        let inserted = store::insert_outbox(
            conn,
            &NewOutboxEntry {
                id: &id,
                key: &env.key,
                channel: env.channel.as_str(),
                recipient_id: env.recipient.as_ref().map(|r| r.user_id.as_str()),
                recipient: recipient.as_deref(),
                address: &env.address,
                alert_id: env.alert_id.as_deref(),
                purpose: env.purpose,
                critical: env.critical,
                title: &env.title,
                text: &env.text,
                payload: &payload,
                created_ms: now_ms,
                next_attempt_ms: env.not_before_ms.max(now_ms),
            },
        )
        .await?;
        if inserted
            && env.channel == Channel::Device
            && let Some(alert_id) = &env.alert_id
            && command_kind(&env.payload) == Some(CommandKind::AlertAcknowledged)
        {
            // "Someone is coming" replaces a "received" of the same alert the device has
            // not acknowledged yet: resending the older would show it after the newer.
            // (A repeated press's "received" does not replace the first: each press is
            // answered.)
            let pending = store::pending_outbox_payloads(
                conn,
                Channel::Device.as_str(),
                alert_id,
                &env.address,
            )
            .await?;
            for (older_id, payload) in &pending {
                let older = serde_json::from_str(payload).ok();
                if older.as_ref().and_then(command_kind) != Some(CommandKind::AlertReceived) {
                    continue;
                }
                store::supersede_outbox_entry(conn, older_id).await?;
            }
        }
        Ok(inserted)
    }

    /// Marks pending notifications of `alert_id` with one of `purposes` as superseded
    /// (a call to act on an alert that someone already took). Returns how many.
    pub async fn supersede(
        conn: &mut Conn,
        alert_id: &str,
        purposes: &[&str],
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for p in purposes {
            n += store::supersede_outbox_purpose(conn, alert_id, p).await?;
        }
        Ok(n)
    }

    /// Wakes the lanes (after a commit that enqueued something).
    pub fn wake(&self) {
        self.wake.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The current wake generation, and the generation up to which the device lane has
    /// made its attempts: ingest's alarm lane waits on these until the elder's
    /// "received" is on its way.
    pub fn device_progress(&self) -> (watch::Receiver<u64>, watch::Receiver<u64>) {
        (self.wake.subscribe(), self.device_done.subscribe())
    }

    /// Every stored notification, optionally of one alert, oldest first.
    pub async fn rows(&self, alert_id: Option<&str>) -> Result<Vec<OutboxRow>, StoreError> {
        let entries = self.store.outbox_entries(alert_id).await?;
        Ok(entries.into_iter().map(OutboxRow::from_entry).collect())
    }

    /// Delivers every due notification (of `channel`, or all) once. Returns how many
    /// were attempted.
    pub async fn deliver_due(&self, channel: Option<Channel>) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let rows: Vec<OutboxRow> = self
            .store
            .outbox_due(channel.map(|c| c.as_str()), now, BATCH)
            .await?
            .into_iter()
            .map(OutboxRow::from_entry)
            .collect();
        let n = rows.len();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(rows)
            .map(|r| self.deliver_one(r))
            .buffer_unordered(self.cfg.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        if let Ok(pending) = self.store.outbox_pending().await {
            self.metrics.pending.set(pending);
        }
        Ok(n)
    }

    async fn deliver_one(&self, mut row: OutboxRow) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let lease = now + (self.cfg.lease_s.max(1) as i64) * 1000;
        let claimed = self
            .store
            .claim_outbox_entry(&row.stored.id, row.stored.next_attempt_ms, lease)
            .await?;
        if !claimed {
            return Ok(());
        }
        row.stored.attempts += 1;
        let span = info_span!(
            "notify",
            channel = row.channel.as_str(),
            alert_id = row.stored.alert_id.as_deref().unwrap_or(""),
            key = %row.stored.key,
            attempt = row.stored.attempts
        );
        let result = match self.notifiers.get(&row.channel) {
            Some(n) if n.enabled() => n.send(&row.notification()).instrument(span.clone()).await,
            _ => Err(NotifyError::Permanent(
                super::FailReason::NotConfigured,
                format!("channel {} is not configured", row.channel),
            )),
        };
        let _g = span.enter();
        let done_ms = self.clock.now_ms();
        match result {
            Ok(()) => {
                self.store.outbox_sent(&row.stored.id, done_ms).await?;
                self.count(row.channel, SendOutcome::Delivered);
                debug!("notification delivered");
                if let Some(h) = &self.hook {
                    h.delivered(&row, done_ms).await;
                }
            }
            Err(e) => {
                let reason = e.reason();
                // Counted under its own reason: an awaited acknowledgement is a delivery in
                // progress, not a fault of the channel.
                self.metrics
                    .failures
                    .get_or_create(&FailLabels {
                        channel: row.channel,
                        reason,
                    })
                    .inc();
                let exhausted = self.cfg.max_attempts > 0
                    && row.stored.attempts >= i64::from(self.cfg.max_attempts);
                if matches!(e, NotifyError::Permanent(..)) || exhausted {
                    self.store
                        .outbox_failed(&row.stored.id, reason.as_str())
                        .await?;
                    self.count(row.channel, SendOutcome::Failed);
                    warn!(error = %e, "notification failed for good");
                    if let Some(h) = &self.hook {
                        h.failed(&row, done_ms, reason.as_str()).await;
                    }
                } else {
                    // The gateway's own session being down says nothing about the
                    // receiver: try again soon (the session reconnects within seconds)
                    // rather than after the backoff of the attempts so far.
                    let attempts = match reason {
                        super::FailReason::NotConnected => 1,
                        _ => u32::try_from(row.stored.attempts).unwrap_or(u32::MAX),
                    };
                    let next = done_ms + self.cfg.backoff(attempts).as_millis() as i64;
                    self.store
                        .outbox_retry(&row.stored.id, next, reason.as_str())
                        .await?;
                    if reason == super::FailReason::AwaitingAck {
                        self.count(row.channel, SendOutcome::AwaitingAck);
                        debug!(device_id = %row.stored.address, retry_in_ms = next - done_ms, "command sent; awaiting the device's acknowledgement");
                    } else {
                        self.count(row.channel, SendOutcome::Retry);
                        warn!(error = %e, retry_in_ms = next - done_ms, "notification not delivered; will retry");
                    }
                }
            }
        }
        Ok(())
    }

    fn count(&self, channel: Channel, outcome: SendOutcome) {
        self.metrics
            .sent
            .get_or_create(&SentLabels { channel, outcome })
            .inc();
    }

    /// The next time a pending notification of `channel` is due.
    async fn next_due(&self, channel: Channel) -> Result<Option<i64>, StoreError> {
        self.store.outbox_next_due(channel.as_str()).await
    }

    /// Starts one sender lane per channel.
    pub fn spawn(self: &Arc<Self>, tasks: &TaskTracker, cancel: CancellationToken) {
        for channel in Channel::ALL {
            let me = self.clone();
            let cancel = cancel.clone();
            let wake = self.wake.subscribe();
            tasks.spawn(async move { me.lane(channel, wake, cancel).await });
        }
    }

    /// Makes every pending device command due now: claims and backoffs taken before a
    /// restart (a command the previous process sent may have died with its broker) must
    /// not hold back the elder's feedback. Run once when the lanes start, before this
    /// process claims anything.
    async fn release_device_commands(&self) -> Result<u64, StoreError> {
        let now = self.clock.now_ms();
        self.store
            .outbox_due_now(Channel::Device.as_str(), now)
            .await
    }

    /// The host clock was stepped: moves every pending row's next attempt (and every
    /// claim) with it, so that a step back delays no retry and a step forward does not
    /// take live claims for expired ones. One lane applies a step, once.
    async fn follow_clock_steps(&self) {
        let step = {
            let mut f = self.steps.lock().unwrap_or_else(|p| p.into_inner());
            f.now(&*self.clock).1
        };
        if step == 0 {
            return;
        }
        match self.store.shift_outbox_pending(step).await {
            Ok(rows) => warn!(
                step_ms = step,
                rows, "host clock stepped: pending notifications moved with it"
            ),
            Err(e) => {
                warn!(step_ms = step, error = %e, "pending notifications not moved after a clock step; retrying");
                self.steps
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .not_applied(step);
            }
        }
    }

    async fn lane(
        self: Arc<Self>,
        channel: Channel,
        mut wake: watch::Receiver<u64>,
        cancel: CancellationToken,
    ) {
        if channel == Channel::Device {
            match self.release_device_commands().await {
                Ok(0) => {}
                Ok(n) => debug!(
                    commands = n,
                    "pending device commands due again after start-up"
                ),
                Err(e) => warn!(error = %e, "pending device commands not released"),
            }
        }
        loop {
            self.follow_clock_steps().await;
            let generation = *wake.borrow_and_update();
            // A send cut short by shutdown keeps its claim and is retried after the lease.
            let pass = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.deliver_due(Some(channel)) => r,
            };
            if channel == Channel::Device {
                self.device_done.send_replace(generation);
            }
            let next = match pass {
                Ok(_) => self.next_due(channel).await.unwrap_or(None),
                Err(e) => {
                    warn!(channel = channel.as_str(), error = %e, "outbox pass failed");
                    Some(self.clock.now_ms() + 1000)
                }
            };
            let nap = next
                .map(|t| self.clock.real_delay_until(t))
                .unwrap_or(MAX_NAP)
                .min(MAX_NAP);
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = wake.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::clock::ManualClock;
    use crate::notify::FailReason;

    const NOW: i64 = 1_800_000_000_000;

    /// Always answers the same.
    struct Answer(fn() -> Result<(), NotifyError>);

    #[async_trait]
    impl super::super::Notifier for Answer {
        fn channel(&self) -> Channel {
            Channel::Device
        }
        async fn send(&self, _n: &Notification) -> Result<(), NotifyError> {
            (self.0)()
        }
    }

    async fn outbox(dir: &std::path::Path, answer: Answer) -> (Outbox, Arc<Metrics>) {
        let store = crate::store::open_for_test(dir).await;
        let metrics = Metrics::new();
        let mut notifiers: Notifiers = HashMap::new();
        notifiers.insert(Channel::Device, Arc::new(answer));
        let clock: SharedClock = Arc::new(ManualClock::new(NOW));
        let o = Outbox::new(store, clock, NotifyConfig::default(), notifiers, &metrics);
        (o, metrics)
    }

    fn command(key: &str, alert: &str, device: &str) -> Envelope {
        let cmd = if key.ends_with("acknowledged") {
            "alert_acknowledged"
        } else {
            "alert_received"
        };
        Envelope {
            key: key.into(),
            channel: Channel::Device,
            recipient: None,
            address: device.into(),
            alert_id: Some(alert.into()),
            purpose: "device_feedback",
            critical: true,
            title: String::new(),
            text: String::new(),
            payload: serde_json::json!({"cmd": cmd, "cause": "help"}),
            not_before_ms: NOW,
        }
    }

    async fn enqueue(o: &Outbox, env: &Envelope) {
        let mut conn = o.store.pool().acquire().await.unwrap();
        assert!(Outbox::enqueue(&mut conn, env, NOW).await.unwrap());
    }

    fn states(rows: &[OutboxRow]) -> Vec<(&str, &str)> {
        rows.iter()
            .map(|r| (r.stored.key.as_str(), r.stored.state.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn alert_acknowledged_supersedes_pending_alert_received_of_the_same_alert_and_device() {
        let dir = tempfile::tempdir().unwrap();
        let (o, _) = outbox(dir.path(), Answer(|| Ok(()))).await;
        enqueue(&o, &command("a1/d1/received", "a1", "d1")).await;
        enqueue(&o, &command("a1/d2/received", "a1", "d2")).await;
        enqueue(&o, &command("a2/d1/received", "a2", "d1")).await;
        enqueue(&o, &command("a1/d1/received-1", "a1", "d1")).await;
        enqueue(&o, &command("a1/d1/acknowledged", "a1", "d1")).await;
        let rows = o.rows(None).await.unwrap();
        assert_eq!(
            states(&rows),
            vec![
                ("a1/d1/received", "superseded"),
                ("a1/d2/received", "pending"),
                ("a2/d1/received", "pending"),
                ("a1/d1/received-1", "superseded"),
                ("a1/d1/acknowledged", "pending"),
            ]
        );
    }

    #[tokio::test]
    async fn an_awaited_acknowledgement_keeps_the_command_pending_retried_within_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let (o, metrics) = outbox(
            dir.path(),
            Answer(|| {
                Err(NotifyError::Transient(
                    FailReason::AwaitingAck,
                    "sent".into(),
                ))
            }),
        )
        .await;
        enqueue(&o, &command("a1/d1/received", "a1", "d1")).await;
        assert_eq!(o.deliver_due(Some(Channel::Device)).await.unwrap(), 1);
        let rows = o.rows(None).await.unwrap();
        assert_eq!(rows[0].stored.state, "pending");
        assert_eq!(rows[0].stored.last_error.as_deref(), Some("awaiting_ack"));
        assert!(
            rows[0].stored.next_attempt_ms <= NOW + 1_000,
            "first retry within a second: {}",
            rows[0].stored.next_attempt_ms - NOW
        );
        let text = metrics.encode();
        assert!(
            text.contains(r#"anxin_notify_sent_total{channel="Device",outcome="AwaitingAck"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"outcome="Retry""#), "{text}");
        assert!(text.contains(r#"reason="AwaitingAck""#), "{text}");
    }

    #[tokio::test]
    async fn pending_device_commands_are_due_again_when_the_lanes_start() {
        let dir = tempfile::tempdir().unwrap();
        let (o, _) = outbox(dir.path(), Answer(|| Ok(()))).await;
        enqueue(&o, &command("a1/d1/received", "a1", "d1")).await;
        // A claim (or a long backoff) left by a process that was killed.
        o.store.set_outbox_next_attempt(NOW + 60_000).await.unwrap();
        assert_eq!(o.release_device_commands().await.unwrap(), 1);
        assert_eq!(o.deliver_due(Some(Channel::Device)).await.unwrap(), 1);
        assert_eq!(o.rows(None).await.unwrap()[0].stored.state, "sent");
    }
}
