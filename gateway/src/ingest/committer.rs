//! The committer: takes what the MQTT session received, in batches (group commit: one
//! transaction and one fsync for everything that arrived while the previous commit ran),
//! and only after the commit acknowledges each message to the broker, sends the devices
//! their application-level acks, and hands observations to detection.
//!
//! Bad input is counted under its reason and logged (rate-limited), then acknowledged so
//! that the broker does not redeliver it forever; it never blocks other devices' traffic.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anxin_firmware::wire::{Availability, Clock as WireClock, DeviceId};
use rumqttc::QoS;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::decode::{Decoded, decode};
use super::downlink::Downlink;
use super::lane::{IngestLanes, Lane, SharedAlarmProgress};
use super::mqtt::{Inbound, MqttSession};
use super::registry::Registry;
use super::sequence::{Classified, SequenceTracker, TsClock};
use super::zigbee2mqtt::ZigbeeAdapter;
use super::{Observation, ObservationKind, RejectReason};
use crate::clock::{SharedClock, StepFollower};
use crate::signal::SignalLedger;
use crate::store::{CommitBatch, EventRow, HealthRow, Store, StoreError};
use crate::telemetry::{ChannelLabel, Metrics};

/// Committer settings.
#[derive(Debug, Clone)]
pub struct CommitterConfig {
    /// Most messages per commit.
    pub batch_max: usize,
    /// How far in the future a `unix` timestamp may lie.
    pub max_skew_ms: i64,
}

/// The committer task's state.
pub struct Committer {
    cfg: CommitterConfig,
    store: Store,
    registry: Registry,
    tracker: SequenceTracker,
    health: HashMap<String, HealthRow>,
    households_seen: HashSet<Arc<str>>,
    next_journal_id: i64,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    /// Steps of the host clock already applied to the device clock offsets.
    steps: StepFollower,
    session: MqttSession,
    downlink: Downlink,
    sinks: ObservationSinks,
    reject_log: HashMap<RejectReason, u64>,
    /// Zigbee2MQTT messages: translated into protocol messages.
    zigbee: Option<ZigbeeAdapter>,
    /// A copy of every new observation for observers (installation tests).
    tap: Option<broadcast::Sender<Observation>>,
}

/// Where observations go after the commit.
pub struct ObservationSinks {
    /// Detection's queue.
    pub detect: mpsc::Sender<Observation>,
    /// Detection's alarm queue, read before its other queue, with the progress of what
    /// was handed to it and the ledger of the signals it raised from them (None: alarms
    /// take the detection queue like everything else).
    pub detect_alarms: Option<AlarmSink>,
    /// Every other consumer (history).
    pub others: Vec<mpsc::Sender<Observation>>,
}

/// Detection's alarm queue.
pub struct AlarmSink {
    /// The queue.
    pub tx: mpsc::Sender<Observation>,
    /// What detection has applied of it.
    pub progress: SharedAlarmProgress,
    /// Signals between detection and the workflow.
    pub ledger: Arc<SignalLedger>,
    /// The outbox's wake generation and how far its device lane got (see
    /// `Outbox::device_progress`): the hold lasts until the elder's feedback is sent.
    pub feedback: Option<(watch::Receiver<u64>, watch::Receiver<u64>)>,
}

/// How long bulk work waits for an alarm's alert to be stored, at most.
const ALARM_HOLD: Duration = Duration::from_millis(500);

/// How often device health folded from heartbeats and status messages is written.
const HEALTH_FLUSH: Duration = Duration::from_secs(5);

impl Committer {
    /// Restores sequence state and device health from the store.
    #[allow(clippy::too_many_arguments)]
    pub async fn restore(
        cfg: CommitterConfig,
        store: Store,
        registry: Registry,
        metrics: Arc<Metrics>,
        clock: SharedClock,
        session: MqttSession,
        sinks: ObservationSinks,
    ) -> Result<Committer, StoreError> {
        let tracker = SequenceTracker::restore(
            store.seq_state().await?,
            store.committed_above_contig().await?,
        );
        let health = store
            .device_health()
            .await?
            .into_iter()
            .map(|h| (h.device_id.clone(), h))
            .collect();
        let next_journal_id = store.next_journal_id().await?;
        let downlink = Downlink::new(session.client.clone());
        Ok(Committer {
            cfg,
            store,
            registry,
            tracker,
            health,
            households_seen: HashSet::new(),
            next_journal_id,
            metrics,
            steps: StepFollower::new(&*clock),
            clock,
            session,
            downlink,
            sinks,
            reject_log: HashMap::new(),
            zigbee: None,
            tap: None,
        })
    }

    /// Routes the Zigbee2MQTT base topic through `adapter`.
    pub fn with_zigbee(mut self, adapter: ZigbeeAdapter) -> Self {
        self.zigbee = Some(adapter);
        self
    }

    /// Acknowledges events and records command acknowledgements over `downlink` (the
    /// gateway's shared downlink, whose record the device notifier reads).
    pub fn with_downlink(mut self, downlink: Downlink) -> Self {
        self.downlink = downlink;
        self
    }

    /// Sends a copy of every new observation to `tap` as well (installation tests).
    pub fn with_tap(mut self, tap: broadcast::Sender<Observation>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Runs until `cancel` or until the session's queues close. Every alarm waiting is
    /// committed in a batch of its own before the next bulk batch is taken.
    /// Device health is written every [`HEALTH_FLUSH`] between batches (alarms first),
    /// and once more on the way out.
    pub async fn run(mut self, mut lanes: IngestLanes, cancel: CancellationToken) {
        let mut batch = Vec::with_capacity(self.cfg.batch_max);
        let mut flush = tokio::time::interval(HEALTH_FLUSH);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (first, lane) = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                m = lanes.alarm.recv() => match m { Some(m) => (m, Lane::Alarm), None => break },
                _ = flush.tick() => {
                    self.flush_health().await;
                    continue;
                }
                m = lanes.bulk.recv() => match m { Some(m) => (m, Lane::Bulk), None => break },
            };
            batch.push(first);
            let rx = match lane {
                Lane::Alarm => &mut lanes.alarm,
                Lane::Bulk => &mut lanes.bulk,
            };
            while batch.len() < self.cfg.batch_max {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            lanes.taken(lane, batch.len());
            if !self.process(&mut batch, lane, &cancel).await {
                break;
            }
            batch.clear();
        }
        self.flush_health().await;
    }

    async fn flush_health(&self) {
        match self.store.flush_health().await {
            Ok(0) => {}
            Ok(n) => debug!(rows = n, "device health written"),
            Err(e) => {
                warn!(error = %e, pending = self.store.health_pending(), "device health not written; kept for the next flush")
            }
        }
    }

    /// Processes one batch; false when shutdown interrupted a failing commit.
    async fn process(
        &mut self,
        batch: &mut [Inbound],
        lane: Lane,
        cancel: &CancellationToken,
    ) -> bool {
        let (now, step) = self.steps.now(&*self.clock);
        if step != 0 {
            self.tracker.shift_clock_offsets(step);
            warn!(
                step_ms = step,
                "host clock stepped: device clock offsets moved with it"
            );
        }
        let mut out = CommitBatch::default();
        let mut obs: Vec<(Option<i64>, Observation)> = Vec::new();
        let mut ack_to: HashSet<(DeviceId, u32)> = HashSet::new();
        let mut dirty_health: HashSet<String> = HashSet::new();
        let mut accepted: Vec<ChannelLabel> = Vec::with_capacity(batch.len());

        // Decode first; a Zigbee2MQTT message may give several messages, or none.
        let mut decoded = Vec::with_capacity(batch.len());
        for inb in batch.iter() {
            let topic = inb.publish.topic.as_str();
            let items = match self.zigbee.as_mut().filter(|z| z.owns(topic)) {
                Some(z) => z
                    .translate(&inb.publish, inb.received_ms)
                    .map(|v| v.into_iter().map(|(d, m)| (d, m, false)).collect()),
                None => decode(topic, &inb.publish.payload, now, self.cfg.max_skew_ms)
                    .map(|(d, m)| vec![(d, m, true)]),
            };
            match items {
                Ok(items) => decoded.extend(items.into_iter().map(|(d, m, n)| (inb, d, m, n))),
                Err(reason) => self.reject(reason, topic, None),
            }
        }
        for (inb, device, msg, native) in decoded {
            let topic = inb.publish.topic.as_str();
            let Some(reg) = self.registry.get(device.as_str()) else {
                self.reject(RejectReason::unknown_device, topic, Some(device.as_str()));
                continue;
            };
            let base = |at_ms: i64, what: ObservationKind| Observation {
                device_id: Arc::from(device.as_str()),
                household_id: reg.household_id.clone(),
                room: reg.room.clone(),
                device_kind: reg.kind.clone(),
                at_ms,
                received_ms: inb.received_ms,
                what,
            };
            let h = self
                .health
                .entry(device.as_str().to_string())
                .or_insert_with(|| HealthRow {
                    device_id: device.as_str().to_string(),
                    ..HealthRow::default()
                });
            h.last_seen_ms = h.last_seen_ms.max(inb.received_ms);
            dirty_health.insert(device.as_str().to_string());
            if let Some(hh) = &reg.household_id
                && self.households_seen.insert(hh.clone())
            {
                self.metrics
                    .ingest_households_active
                    .set(self.households_seen.len() as i64);
            }
            match msg {
                Decoded::Event(e) => {
                    let (verdict, dropped) =
                        self.tracker
                            .classify(device.as_str(), e.boot, e.seq, e.oldest);
                    if dropped > 0 {
                        self.metrics
                            .ingest_device_dropped
                            .inc_by(u64::from(dropped));
                        warn!(device_id = %device, boot = e.boot, seq = e.seq, dropped, "device outbox dropped events");
                    }
                    if native {
                        ack_to.insert((device.clone(), e.boot));
                    }
                    if verdict == Classified::Duplicate {
                        self.metrics.ingest_duplicates.inc();
                        debug!(device_id = %device, boot = e.boot, seq = e.seq, "duplicate event");
                        continue;
                    }
                    // On the gateway's clock.
                    let offset = self.tracker.clock_offset(
                        device.as_str(),
                        e.boot,
                        ts_clock(e.clk),
                        inb.received_ms,
                        e.ts,
                        false,
                    );
                    let event_ms = i64::try_from(e.ts)
                        .unwrap_or(i64::MAX)
                        .saturating_add(offset);
                    let body = serde_json::to_string(&e.ev).unwrap_or_default();
                    let journal_id = self.next_journal_id;
                    self.next_journal_id += 1;
                    out.events.push(EventRow {
                        journal_id,
                        device_id: device.as_str().to_string(),
                        boot: i64::from(e.boot),
                        seq: i64::from(e.seq),
                        household_id: reg.household_id.as_deref().map(str::to_string),
                        kind: e.ev.kind(),
                        event_ms,
                        received_ms: inb.received_ms,
                        body,
                    });
                    obs.push((
                        Some(journal_id),
                        base(
                            event_ms,
                            ObservationKind::Event {
                                journal_id,
                                boot: e.boot,
                                seq: e.seq,
                                body: e.ev,
                            },
                        ),
                    ));
                }
                Decoded::Heartbeat(hb) => {
                    self.tracker.clock_offset(
                        device.as_str(),
                        hb.boot,
                        ts_clock(hb.clk),
                        inb.received_ms,
                        hb.ts,
                        true,
                    );
                    h.boot = i64::from(hb.boot);
                    h.last_seq = i64::from(hb.seq);
                    h.battery_pct = hb.battery_pct.map(i32::from);
                    h.battery_mv = hb.battery_mv.map(i32::from);
                    h.rssi_dbm = hb.rssi_dbm.map(i32::from);
                    h.fw = Some(hb.fw.to_string());
                    h.uptime_s = Some(i64::from(hb.uptime_s));
                    h.outbox = Some(i32::from(hb.outbox));
                    h.dropped = Some(i64::from(hb.dropped));
                    h.interval_s = Some(hb.interval_s as i32);
                    h.temp_dc = hb.temp_dc.map(i32::from);
                    self.downlink.record_applied(device.as_str(), hb.cmd);
                    accepted.push(ChannelLabel::Heartbeat);
                    obs.push((None, base(inb.received_ms, ObservationKind::Heartbeat(hb))));
                }
                Decoded::Status(s) => {
                    let online = s.state == Availability::Online;
                    h.online = i32::from(online);
                    h.status_ms = Some(inb.received_ms);
                    h.boot = h.boot.max(i64::from(s.boot));
                    if let Some(fw) = &s.fw {
                        h.fw = Some(fw.to_string());
                    }
                    accepted.push(ChannelLabel::Status);
                    obs.push((
                        None,
                        base(inb.received_ms, ObservationKind::Availability { online }),
                    ));
                }
            }
        }
        out.seqs = self.tracker.dirty_rows();
        for d in &dirty_health {
            if let Some(h) = self.health.get(d) {
                self.store.fold_health(h.clone());
            }
        }

        let out = Arc::new(out);
        let started = Instant::now();
        let mut retry = Duration::from_millis(100);
        let inserted = loop {
            if out.is_empty() {
                break HashSet::new();
            }
            match self.store.commit(Arc::clone(&out)).await {
                Ok(ins) => break ins,
                Err(e) => {
                    error!(error = %e, batch = batch.len(), retry_ms = retry.as_millis() as u64, "commit failed; retrying, nothing acknowledged");
                    tokio::select! {
                        _ = cancel.cancelled() => return false,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(5));
                }
            }
        };
        self.metrics
            .ingest_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.ingest_batch_size.observe(batch.len() as f64);
        self.tracker.committed();

        for e in &out.events {
            if inserted.contains(&e.journal_id) {
                accepted.push(ChannelLabel::Event);
            } else {
                self.metrics.ingest_duplicates.inc();
            }
        }
        for c in accepted {
            self.metrics.accept(c);
        }

        // Acknowledge to the broker, in order, only on the connection that delivered.
        let generation = self.session.generation.load(Ordering::SeqCst);
        for inb in batch.iter() {
            if inb.publish.qos != QoS::AtMostOnce
                && inb.generation == generation
                && let Err(e) = self.session.client.ack(&inb.publish).await
            {
                warn!(error = %e, "PUBACK not queued; the broker will redeliver");
            }
        }
        for (device, boot) in &ack_to {
            if let Some(upto) = self.tracker.ack_upto(device.as_str(), *boot)
                && upto > 0
                && self.downlink.ack(device, *boot, upto)
            {
                self.metrics.ingest_acks_sent.inc();
            }
        }
        // Every consumer (detection, history) gets every new observation, in order;
        // alarms reach detection on its alarm queue, then bulk work waits until their
        // alerts are stored.
        let obs: Vec<Observation> = obs
            .into_iter()
            .filter(|(key, _)| key.is_none_or(|k| inserted.contains(&k)))
            .map(|(_, o)| o)
            .collect();
        let alarm_sink = self
            .sinks
            .detect_alarms
            .as_ref()
            .filter(|_| lane == Lane::Alarm);
        match alarm_sink {
            Some(sink) => {
                let held = Instant::now();
                let wake0 = sink.feedback.as_ref().map(|(w, _)| *w.borrow());
                let mut handed = 0;
                for o in &obs {
                    if sink.tx.send(o.clone()).await.is_ok() {
                        handed += 1;
                    }
                }
                sink.progress.handed(handed);
                let ledger = sink.ledger.clone();
                let mut stored = sink.progress.wait(|| ledger.settled(), ALARM_HOLD).await;
                // Something was queued for delivery meanwhile (the device's "received"):
                // hold on until the device lane has made its attempt.
                if stored
                    && let (Some((wake, done)), Some(w0)) = (&sink.feedback, wake0)
                    && *wake.borrow() != w0
                {
                    let target = *wake.borrow();
                    let mut done = done.clone();
                    let left = ALARM_HOLD.saturating_sub(held.elapsed());
                    stored = tokio::time::timeout(left, done.wait_for(|d| *d >= target))
                        .await
                        .is_ok_and(|r| r.is_ok());
                }
                if !stored {
                    warn!(
                        hold_ms = ALARM_HOLD.as_millis() as u64,
                        "an alarm's alert and feedback were not through within the hold; bulk ingest goes on"
                    );
                }
            }
            None => {
                for o in &obs {
                    let _ = self.sinks.detect.send(o.clone()).await;
                }
            }
        }
        for o in obs {
            if let Some(tap) = &self.tap {
                let _ = tap.send(o.clone());
            }
            for tx in &self.sinks.others {
                let _ = tx.send(o.clone()).await;
            }
        }
        true
    }

    fn reject(&mut self, reason: RejectReason, topic: &str, device: Option<&str>) {
        self.metrics.reject(reason);
        let n = self.reject_log.entry(reason).or_insert(0);
        *n += 1;
        if *n <= 20 || n.is_power_of_two() {
            warn!(
                reason = reason.as_str(),
                topic,
                device_id = device.unwrap_or(""),
                count = *n,
                "message rejected"
            );
        }
    }
}

fn ts_clock(c: WireClock) -> TsClock {
    match c {
        WireClock::Unix => TsClock::Unix,
        WireClock::Up => TsClock::Uptime,
    }
}
