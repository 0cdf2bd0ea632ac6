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
use sqlx::{AnyConnection, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span, warn};

use super::{
    Channel, FailLabels, Notification, Notifiers, NotifyConfig, NotifyError, Recipient,
    SendOutcome, SentLabels,
};
use crate::clock::{SharedClock, StepFollower};
use crate::store::Store;
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

/// A stored notification.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Row id.
    pub id: String,
    /// Idempotency key.
    pub key: String,
    /// Channel.
    pub channel: Channel,
    /// Recipient user id.
    pub recipient_id: Option<String>,
    /// Recipient details.
    pub recipient: Option<Recipient>,
    /// Address.
    pub address: String,
    /// Alert.
    pub alert_id: Option<String>,
    /// Purpose.
    pub purpose: String,
    /// Critical.
    pub critical: bool,
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
    /// Structured content (JSON).
    pub payload: String,
    /// `pending`, `sent`, `failed` or `superseded`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Written at.
    pub created_ms: i64,
    /// Next attempt (or lease end).
    pub next_attempt_ms: i64,
    /// Delivered at.
    pub sent_ms: Option<i64>,
    /// Reason of the last failure (closed list).
    pub last_error: Option<String>,
}

impl OutboxRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<OutboxRow, sqlx::Error> {
        let channel: String = r.try_get("channel")?;
        let recipient: Option<String> = r.try_get("recipient")?;
        Ok(OutboxRow {
            id: r.try_get("id")?,
            key: r.try_get("idempotency_key")?,
            channel: Channel::parse(&channel).unwrap_or(Channel::Webhook),
            recipient_id: r.try_get("recipient_id")?,
            recipient: recipient.and_then(|s| serde_json::from_str(&s).ok()),
            address: r.try_get("address")?,
            alert_id: r.try_get("alert_id")?,
            purpose: r.try_get("purpose")?,
            critical: r.try_get::<i32, _>("critical")? != 0,
            title: r.try_get("title")?,
            text: r.try_get("body")?,
            payload: r.try_get("payload")?,
            state: r.try_get("state")?,
            attempts: r.try_get("attempts")?,
            created_ms: r.try_get("created_ms")?,
            next_attempt_ms: r.try_get("next_attempt_ms")?,
            sent_ms: r.try_get("sent_ms")?,
            last_error: r.try_get("last_error")?,
        })
    }

    /// As the notifier sees it.
    pub fn notification(&self) -> Notification {
        Notification {
            id: self.id.clone(),
            key: self.key.clone(),
            channel: self.channel,
            recipient: self.recipient.clone(),
            address: self.address.clone(),
            alert_id: self.alert_id.clone(),
            purpose: self.purpose.clone(),
            critical: self.critical,
            title: self.title.clone(),
            text: self.text.clone(),
            payload: serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null),
            attempt: u32::try_from(self.attempts.max(1)).unwrap_or(u32::MAX),
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

const COLUMNS: &str = "id, idempotency_key, channel, recipient_id, recipient, address, alert_id, \
     purpose, critical, title, body, payload, state, attempts, created_ms, next_attempt_ms, \
     sent_ms, last_error";

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
    pub async fn enqueue(
        conn: &mut AnyConnection,
        env: &Envelope,
        now_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let id = crate::workflow::new_id("nt", now_ms);
        let recipient = env
            .recipient
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok());
        let done = sqlx::query(
            "INSERT INTO outbox (id, idempotency_key, channel, recipient_id, recipient, address, \
             alert_id, purpose, critical, title, body, payload, state, attempts, created_ms, \
             next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0, $13, $14) \
             ON CONFLICT (idempotency_key, channel) DO NOTHING",
        )
        .bind(&id)
        .bind(&env.key)
        .bind(env.channel.as_str())
        .bind(env.recipient.as_ref().map(|r| r.user_id.clone()))
        .bind(recipient)
        .bind(&env.address)
        .bind(&env.alert_id)
        .bind(env.purpose)
        .bind(i32::from(env.critical))
        .bind(&env.title)
        .bind(&env.text)
        .bind(env.payload.to_string())
        .bind(now_ms)
        .bind(env.not_before_ms.max(now_ms))
        .execute(&mut *conn)
        .await?;
        let inserted = done.rows_affected() > 0;
        if inserted
            && env.channel == Channel::Device
            && let Some(alert_id) = &env.alert_id
            && command_kind(&env.payload) == Some(CommandKind::AlertAcknowledged)
        {
            // "Someone is coming" replaces a "received" of the same alert the device has
            // not acknowledged yet: resending the older would show it after the newer.
            // (A repeated press's "received" does not replace the first: each press is
            // answered.)
            let pending = sqlx::query(
                "SELECT id, payload FROM outbox \
                 WHERE channel = $1 AND alert_id = $2 AND address = $3 AND state = 'pending'",
            )
            .bind(Channel::Device.as_str())
            .bind(alert_id)
            .bind(&env.address)
            .fetch_all(&mut *conn)
            .await?;
            for r in &pending {
                let payload: String = r.try_get("payload")?;
                let older = serde_json::from_str(&payload).ok();
                if older.as_ref().and_then(command_kind) != Some(CommandKind::AlertReceived) {
                    continue;
                }
                sqlx::query(
                    "UPDATE outbox SET state = 'superseded' WHERE id = $1 AND state = 'pending'",
                )
                .bind(r.try_get::<String, _>("id")?)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(inserted)
    }

    /// Marks pending notifications of `alert_id` with one of `purposes` as superseded
    /// (a call to act on an alert that someone already took). Returns how many.
    pub async fn supersede(
        conn: &mut AnyConnection,
        alert_id: &str,
        purposes: &[&str],
    ) -> Result<u64, sqlx::Error> {
        let mut n = 0;
        for p in purposes {
            n += sqlx::query(
                "UPDATE outbox SET state = 'superseded' \
                 WHERE alert_id = $1 AND state = 'pending' AND purpose = $2",
            )
            .bind(alert_id)
            .bind(*p)
            .execute(&mut *conn)
            .await?
            .rows_affected();
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
    pub async fn rows(&self, alert_id: Option<&str>) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let rows = match alert_id {
            Some(a) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE alert_id = $1 ORDER BY created_ms, id"
                )))
                .bind(a)
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox ORDER BY created_ms, id"
                )))
                .fetch_all(self.store.pool())
                .await?
            }
        };
        rows.iter().map(OutboxRow::from_row).collect()
    }

    /// Delivers every due notification (of `channel`, or all) once. Returns how many
    /// were attempted.
    pub async fn deliver_due(&self, channel: Option<Channel>) -> Result<usize, sqlx::Error> {
        let now = self.clock.now_ms();
        let rows = match channel {
            Some(c) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND channel = $1 \
                     AND next_attempt_ms <= $2 ORDER BY critical DESC, next_attempt_ms, id LIMIT $3"
                )))
                .bind(c.as_str())
                .bind(now)
                .bind(BATCH)
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' \
                     AND next_attempt_ms <= $1 ORDER BY critical DESC, next_attempt_ms, id LIMIT $2"
                )))
                .bind(now)
                .bind(BATCH)
                .fetch_all(self.store.pool())
                .await?
            }
        };
        let rows: Vec<OutboxRow> = rows
            .iter()
            .map(OutboxRow::from_row)
            .collect::<Result<_, _>>()?;
        let n = rows.len();
        let results: Vec<Result<(), sqlx::Error>> = futures::stream::iter(rows)
            .map(|r| self.deliver_one(r))
            .buffer_unordered(self.cfg.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        if let Ok(row) = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")
            .fetch_one(self.store.pool())
            .await
        {
            self.metrics
                .pending
                .set(row.try_get::<i64, _>("n").unwrap_or(0));
        }
        Ok(n)
    }

    async fn deliver_one(&self, mut row: OutboxRow) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        let lease = now + (self.cfg.lease_s.max(1) as i64) * 1000;
        let claimed = sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1, attempts = attempts + 1 \
             WHERE id = $2 AND state = 'pending' AND next_attempt_ms = $3",
        )
        .bind(lease)
        .bind(&row.id)
        .bind(row.next_attempt_ms)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(());
        }
        row.attempts += 1;
        let span = info_span!(
            "notify",
            channel = row.channel.as_str(),
            alert_id = row.alert_id.as_deref().unwrap_or(""),
            key = %row.key,
            attempt = row.attempts
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
                sqlx::query(
                    "UPDATE outbox SET state = 'sent', sent_ms = $1, last_error = NULL \
                     WHERE id = $2 AND state = 'pending'",
                )
                .bind(done_ms)
                .bind(&row.id)
                .execute(self.store.pool())
                .await?;
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
                let exhausted =
                    self.cfg.max_attempts > 0 && row.attempts >= i64::from(self.cfg.max_attempts);
                if matches!(e, NotifyError::Permanent(..)) || exhausted {
                    sqlx::query(
                        "UPDATE outbox SET state = 'failed', last_error = $1 \
                         WHERE id = $2 AND state = 'pending'",
                    )
                    .bind(reason.as_str())
                    .bind(&row.id)
                    .execute(self.store.pool())
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
                        _ => u32::try_from(row.attempts).unwrap_or(u32::MAX),
                    };
                    let next = done_ms + self.cfg.backoff(attempts).as_millis() as i64;
                    sqlx::query(
                        "UPDATE outbox SET next_attempt_ms = $1, last_error = $2 \
                         WHERE id = $3 AND state = 'pending'",
                    )
                    .bind(next)
                    .bind(reason.as_str())
                    .bind(&row.id)
                    .execute(self.store.pool())
                    .await?;
                    if reason == super::FailReason::AwaitingAck {
                        self.count(row.channel, SendOutcome::AwaitingAck);
                        debug!(device_id = %row.address, retry_in_ms = next - done_ms, "command sent; awaiting the device's acknowledgement");
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
    async fn next_due(&self, channel: Channel) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS t FROM outbox WHERE state = 'pending' AND channel = $1",
        )
        .bind(channel.as_str())
        .fetch_one(self.store.pool())
        .await?;
        row.try_get::<Option<i64>, _>("t")
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
    async fn release_device_commands(&self) -> Result<u64, sqlx::Error> {
        let now = self.clock.now_ms();
        Ok(sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1 \
             WHERE state = 'pending' AND channel = $2 AND next_attempt_ms > $1",
        )
        .bind(now)
        .bind(Channel::Device.as_str())
        .execute(self.store.pool())
        .await?
        .rows_affected())
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
        match sqlx::query(
            "UPDATE outbox SET next_attempt_ms = next_attempt_ms + $1 WHERE state = 'pending'",
        )
        .bind(step)
        .execute(self.store.pool())
        .await
        {
            Ok(r) => warn!(
                step_ms = step,
                rows = r.rows_affected(),
                "host clock stepped: pending notifications moved with it"
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
            .map(|r| (r.key.as_str(), r.state.as_str()))
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
        assert_eq!(rows[0].state, "pending");
        assert_eq!(rows[0].last_error.as_deref(), Some("awaiting_ack"));
        assert!(
            rows[0].next_attempt_ms <= NOW + 1_000,
            "first retry within a second: {}",
            rows[0].next_attempt_ms - NOW
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
        sqlx::query("UPDATE outbox SET next_attempt_ms = $1")
            .bind(NOW + 60_000)
            .execute(o.store.pool())
            .await
            .unwrap();
        assert_eq!(o.release_device_commands().await.unwrap(), 1);
        assert_eq!(o.deliver_due(Some(Channel::Device)).await.unwrap(), 1);
        assert_eq!(o.rows(None).await.unwrap()[0].state, "sent");
    }
}
