//! The embedded history writer: turns journal events (read back by `journal_id` with a
//! persisted cursor), availability changes and folded heartbeats into rows of
//! `history_points`, in one transaction with the cursors, so that a crash loses or
//! repeats nothing. It also owns the id sequence (`next_id`) shared by points and hourly
//! aggregates, so ids are committed in increasing order and the sink can follow them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anxin_firmware::wire::EventBody;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::cursor;
use super::model::{self, DAY_MS, Health, Point, Tags, hour_of};
use super::{
    DropReason, HistoryConfig, HistoryError, HistoryMetrics, JournalEvent, Pending, Shared,
};
use crate::clock::SharedClock;
use crate::ingest::Registry;
use crate::store::{DeviceStateRow, HistoryWrite, Store};

/// How often the writer looks at the journal and closed hours without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What history last wrote for a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DeviceState {
    pub online: Option<bool>,
    pub online_ms: Option<i64>,
    pub health: Health,
    pub health_ms: Option<i64>,
}

/// How long the writer, once woken, lets observations gather before its step: long
/// enough that a step is one transaction for many observations, short enough that the
/// step (which holds SQLite's write lock) stays a few milliseconds long.
const GATHER: Duration = Duration::from_millis(25);

/// The writer task's state.
pub(crate) struct Writer {
    pub(crate) store: Store,
    pub(crate) cfg: Arc<HistoryConfig>,
    pub(crate) clock: SharedClock,
    pub(crate) metrics: Arc<HistoryMetrics>,
    registry: Registry,
    pub(crate) shared: Arc<Shared>,
    pending: Arc<Mutex<Pending>>,
    journal: i64,
    pub(crate) next_id: i64,
    devices: HashMap<Arc<str>, DeviceState>,
    /// (household, hour) rows known to be in `history_dirty_hours`.
    pub(crate) marked: HashSet<(Arc<str>, i64)>,
    unparsable: u64,
    /// The journal's last id when the writer opened: below it, events come from the
    /// journal (they were committed before this process started).
    head_at_start: i64,
    /// The last journal read was full: keep reading the journal.
    catching_up: bool,
}

/// Journal events for one write.
struct JournalBatch {
    /// Rows read (unparsable ones included).
    rows: usize,
    /// The last journal id covered.
    last: i64,
    /// The events.
    events: Vec<JournalEvent>,
}

impl Writer {
    /// Loads the cursors and device states, and writes the availability changes that a
    /// crash may have kept out of the history (the store's `device_health` has the last).
    pub async fn open(
        store: Store,
        cfg: Arc<HistoryConfig>,
        clock: SharedClock,
        metrics: Arc<HistoryMetrics>,
        registry: Registry,
        shared: Arc<Shared>,
        pending: Arc<Mutex<Pending>>,
    ) -> Result<Writer, HistoryError> {
        let journal = store.history_cursor(cursor::JOURNAL).await?.unwrap_or(0);
        let next_id = store.history_cursor(cursor::NEXT_ID).await?.unwrap_or(1);
        let devices: HashMap<Arc<str>, DeviceState> = store
            .history_device_states()
            .await?
            .into_iter()
            .map(|r| {
                let state = DeviceState {
                    online: r.online.map(|o| o != 0),
                    online_ms: r.online_ms,
                    health: Health {
                        battery_pct: r.battery_pct,
                        battery_mv: r.battery_mv,
                        rssi_dbm: r.rssi_dbm,
                        temp_dc: r.temp_dc,
                    },
                    health_ms: r.health_ms,
                };
                (r.device_id, state)
            })
            .collect();
        let head_at_start = store.next_journal_id().await? - 1;
        shared.journal.send_replace(journal);
        shared.high_water.send_replace(next_id - 1);
        let mut w = Writer {
            store,
            cfg,
            clock,
            metrics,
            registry,
            shared,
            pending,
            journal,
            next_id,
            devices,
            marked: HashSet::new(),
            unparsable: 0,
            head_at_start,
            catching_up: false,
        };
        w.reconcile_availability().await?;
        Ok(w)
    }

    /// The last id committed.
    pub fn high_water(&self) -> i64 {
        self.next_id - 1
    }

    fn tags_of(&self, device_id: &str, household_id: Option<Arc<str>>) -> Tags {
        let reg = self.registry.get(device_id);
        Tags {
            household_id,
            device_id: Arc::from(device_id),
            room: reg.as_ref().and_then(|r| r.room.clone()),
            kind: reg.map(|r| r.kind).unwrap_or_else(|| Arc::from("unknown")),
        }
    }

    async fn reconcile_availability(&mut self) -> Result<(), HistoryError> {
        let rows = self.store.device_health().await?;
        let mut pending = Pending::default();
        for r in rows {
            let Some(at) = r.status_ms else { continue };
            let (id, online) = (r.device_id, r.online);
            let known = self.devices.get(id.as_str()).and_then(|d| d.online_ms);
            if known.is_none_or(|k| k < at) {
                let household = self.registry.get(&id).and_then(|r| r.household_id);
                pending
                    .online
                    .push((self.tags_of(&id, household), online != 0, at));
            }
        }
        if !pending.online.is_empty() {
            debug!(
                devices = pending.online.len(),
                "history: writing availability changes missed before a restart"
            );
            self.pending
                .lock()
                .map_err(|_| HistoryError::Stopped)?
                .restore(pending);
        }
        Ok(())
    }

    /// Writes what is pending and the next batch of journal events (from memory when the
    /// cursor has reached them, else read back from the journal). True when more events
    /// are waiting.
    pub async fn step(&mut self) -> Result<bool, HistoryError> {
        let limit = self.cfg.write_batch.max(1) as usize;
        let mut taken = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Err(HistoryError::Stopped),
        };
        let from_journal = self.journal < self.head_at_start || taken.overflow || self.catching_up;
        let batch = if from_journal {
            // Read outside the write transaction: SQLite's transaction then starts with a
            // write and waits its turn instead of failing to upgrade.
            match self.read_journal(limit).await {
                Ok(b) => {
                    taken.overflow = false;
                    self.catching_up = b.rows == limit;
                    // What memory holds of what was read is not needed again.
                    taken.events.retain(|e| e.journal_id > b.last);
                    b
                }
                Err(e) => {
                    if let Ok(mut p) = self.pending.lock() {
                        p.restore(taken);
                    }
                    return Err(e);
                }
            }
        } else {
            let cursor = self.journal;
            taken.events.retain(|e| e.journal_id > cursor);
            let rest = taken.events.split_off(taken.events.len().min(limit));
            let events = std::mem::replace(&mut taken.events, rest);
            JournalBatch {
                rows: events.len(),
                last: events.last().map_or(cursor, |e| e.journal_id),
                events,
            }
        };
        // Events beyond this batch wait for the next step (and are counted there).
        let later = Pending {
            folded: taken.events.len() as u64,
            events: std::mem::take(&mut taken.events),
            ..Pending::default()
        };
        taken.folded -= later.folded.min(taken.folded);
        let more = !later.events.is_empty() || self.catching_up;
        let result = self.write(&batch.events, batch.last, &taken).await;
        let folded = taken.folded;
        if let Ok(mut p) = self.pending.lock() {
            if result.is_err() {
                // Nothing of this step was written: everything goes back, in order, before
                // what arrived meanwhile.
                let mut back = taken;
                back.events = batch.events;
                let mut all = later;
                all.restore(back);
                p.restore(all);
            } else {
                p.restore(later);
            }
        }
        result?;
        self.shared.obs_written.fetch_add(folded, Ordering::SeqCst);
        self.shared.high_water.send_replace(self.next_id - 1);
        Ok(more)
    }

    /// The next `limit` journal events above the cursor, read back from the store.
    async fn read_journal(&mut self, limit: usize) -> Result<JournalBatch, HistoryError> {
        let rows = self.store.journal_after(self.journal, limit).await?;
        let mut batch = JournalBatch {
            rows: rows.len(),
            last: rows.last().map_or(self.journal, |r| r.0),
            events: Vec::with_capacity(rows.len()),
        };
        for (journal_id, device, household, at_ms, body) in rows {
            let Ok(body) = serde_json::from_str::<EventBody>(&body) else {
                self.metrics.dropped(DropReason::unparsable, 1);
                self.unparsable += 1;
                if self.unparsable <= 20 || self.unparsable.is_power_of_two() {
                    warn!(device_id = %device, journal_id, "history: event body unreadable; skipped");
                }
                continue;
            };
            batch.events.push(JournalEvent {
                journal_id,
                tags: self.tags_of(&device, household.map(Arc::from)),
                at_ms,
                body,
            });
        }
        Ok(batch)
    }

    async fn write(
        &mut self,
        events: &[JournalEvent],
        last_journal: i64,
        taken: &Pending,
    ) -> Result<(), HistoryError> {
        let now = self.clock.now_ms();
        let mut points: Vec<Point> = Vec::with_capacity(events.len() + taken.online.len());
        for e in events {
            points.extend(model::event_points(&e.tags, &e.body, e.at_ms));
        }

        let mut changed: HashMap<Arc<str>, DeviceState> = HashMap::new();
        for (tags, online, at) in &taken.online {
            points.push(model::online_point(tags, *online, *at));
            let st = changed.entry(tags.device_id.clone()).or_insert_with(|| {
                self.devices
                    .get(&tags.device_id)
                    .cloned()
                    .unwrap_or_default()
            });
            if st.online_ms.is_none_or(|m| m <= *at) {
                st.online = Some(*online);
                st.online_ms = Some(*at);
            }
        }
        let max_gap = (self.cfg.health_interval_s as i64).saturating_mul(1000);
        for (device, (tags, health, at)) in &taken.health {
            let st = changed
                .entry(device.clone())
                .or_insert_with(|| self.devices.get(device).cloned().unwrap_or_default());
            let last = st.health_ms.map(|ms| (&st.health, ms));
            if model::health_due(health, last, *at, max_gap) {
                points.extend(health.points(tags, *at));
                st.health = *health;
                st.health_ms = Some(*at);
            }
        }
        changed.retain(|k, v| self.devices.get(k) != Some(v));

        // One value per series and millisecond: InfluxDB would merge two into one.
        let mut seen: HashSet<(Arc<str>, &'static str, &'static str, i64)> = HashSet::new();
        for p in &mut points {
            while !seen.insert((p.device_id.clone(), p.measurement, p.field, p.at_ms)) {
                p.at_ms += 1;
            }
        }

        let oldest_hour = hour_of(now - i64::from(self.cfg.raw_retention_days) * DAY_MS);
        let mut dirty: HashSet<(Arc<str>, i64)> = HashSet::new();
        let from_points = points
            .iter()
            .filter_map(|p| p.household_id.clone().map(|h| (h, hour_of(p.at_ms))));
        for key in from_points.chain(taken.hours.iter().cloned()) {
            if key.1 >= oldest_hour && !self.marked.contains(&key) {
                dirty.insert(key);
            }
        }

        if points.is_empty()
            && last_journal == self.journal
            && dirty.is_empty()
            && changed.is_empty()
        {
            return Ok(());
        }

        let first_id = self.next_id;
        let next_id = first_id + points.len() as i64;
        let n_points = points.len();
        let write = HistoryWrite {
            first_id,
            points,
            dirty_hours: dirty.iter().cloned().collect(),
            states: changed
                .iter()
                .map(|(d, s)| DeviceStateRow {
                    device_id: d.clone(),
                    online: s.online.map(i32::from),
                    online_ms: s.online_ms,
                    battery_pct: s.health.battery_pct,
                    battery_mv: s.health.battery_mv,
                    rssi_dbm: s.health.rssi_dbm,
                    temp_dc: s.health.temp_dc,
                    health_ms: s.health_ms,
                })
                .collect(),
            journal: last_journal,
            next_id,
        };
        self.store.write_history(Arc::new(write)).await?;

        self.journal = last_journal;
        self.next_id = next_id;
        self.devices.extend(changed);
        self.marked.extend(dirty);
        self.metrics.written("embedded", n_points);
        self.shared.journal.send_replace(last_journal);
        Ok(())
    }

    /// Runs until `cancel`: writes whenever woken (an observation arrived) or every
    /// second, and closes finished hours.
    pub async fn run(mut self, wake: Arc<Notify>, cancel: CancellationToken) {
        let mut retry = Duration::from_millis(100);
        let mut last_hours: Option<Instant> = None;
        let mut more_hours = false;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let mut more = match self.step().await {
                Ok(m) => {
                    retry = Duration::from_millis(100);
                    m
                }
                Err(e) => {
                    error!(error = %e, retry_ms = retry.as_millis() as u64, "history write failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if more_hours || last_hours.is_none_or(|t| t.elapsed() >= IDLE_POLL) {
                last_hours = Some(Instant::now());
                match self.close_hours().await {
                    Ok(m) => more_hours = m,
                    Err(e) => {
                        more_hours = false;
                        error!(error = %e, "history: hourly aggregation failed; retrying later");
                    }
                }
                more |= more_hours;
            }
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.notified() => {
                    // Let what arrives meanwhile join this step: one transaction per
                    // moment instead of one per observation (the journal is the
                    // durable record; history may trail it by this much).
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(GATHER) => {}
                    }
                }
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }
}
