//! Detection: per-household state fed by ingest's observations, one deadline queue for
//! every household, and [`Signal`]s to the workflow.
//!
//! - [`activity`]: observations → detector inputs (whatever the source);
//! - [`household`]: one household's state and every rule;
//! - [`profile`]: the learned routine (about a hundred bytes per household);
//! - [`engine`]: all households, the deadline queue, gateway-wide blindness;
//! - [`persist`]: snapshots, modes and overrides in the store; journal replay;
//! - [`snapshot`]: the versioned encoding of one household's state;
//! - [`replay`]: replaying logs (the project's own, Ordóñez) through the engine;
//! - [`localtime`], [`params`]: local days and minutes; settings.
//!
//! This file runs the engine as a task: observations in, signals out, deadlines slept in
//! the gateway's clock, snapshots every few seconds, and a restart that restores the
//! snapshots and replays the journal written since.

pub mod activity;
pub mod engine;
pub mod eval;
pub mod household;
pub mod localtime;
pub mod params;
pub mod persist;
pub mod profile;
pub mod replay;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use self::activity::{Input, RoomClass, from_event, inputs_of};
use self::engine::Engine;
use self::localtime::LocalTime;
pub use self::params::{DetectConfig, HouseholdSettings};
use crate::app::Services;
use crate::clock::StepFollower;
use crate::ingest::SharedAlarmProgress;
use crate::ingest::{Observation, ObservationKind};
use crate::signal::Signal;

/// A household's mode, set by a caseworker or a technician; it ends by itself at its
/// end time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdMode {
    /// Watched as usual.
    Normal,
    /// Away (with family, travelling): elder silence alerts are off.
    Away,
    /// In hospital: elder silence alerts are off.
    Hospital,
    /// A technician's installation test: no caseworker alert at all.
    InstallTest,
}

impl HouseholdMode {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            HouseholdMode::Normal => "normal",
            HouseholdMode::Away => "away",
            HouseholdMode::Hospital => "hospital",
            HouseholdMode::InstallTest => "install_test",
        }
    }

    /// Parses [`HouseholdMode::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            HouseholdMode::Normal,
            HouseholdMode::Away,
            HouseholdMode::Hospital,
            HouseholdMode::InstallTest,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// Whether a device kind reports the elder's activity.
pub fn senses_activity(kind: &str) -> bool {
    matches!(
        kind,
        "door" | "front_door" | "contact" | "motion" | "occupancy" | "presence"
    )
}

/// Whether the elder can answer a check-in on a device of this kind: a help button or a
/// pendant (both run the device core, which shows the prompt and sends a press as
/// `help ok`).
pub fn answers_check_in(kind: &str) -> bool {
    matches!(kind, "help" | "pendant")
}

/// What the dashboard shows of a household's detector state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseholdView {
    /// Household.
    pub household_id: String,
    /// Last sign of life (ms), if any.
    pub last_activity_ms: Option<i64>,
    /// Out since (ms), if probably out.
    pub out_since_ms: Option<i64>,
    /// Mode.
    pub mode: HouseholdMode,
    /// Mode end.
    pub mode_until_ms: Option<i64>,
    /// Devices declared offline.
    pub devices_offline: usize,
    /// Devices known.
    pub devices: usize,
    /// Days of routine learned.
    pub learned_days: u16,
}

enum Command {
    Mode {
        household: String,
        mode: HouseholdMode,
        until_ms: Option<i64>,
    },
    Settings {
        household: String,
        settings: Option<HouseholdSettings>,
    },
    Device {
        household: String,
        device: String,
        kind: String,
        room: Option<String>,
    },
    /// The views of these households (None: of every household).
    Views(Option<Vec<String>>, oneshot::Sender<Vec<HouseholdView>>),
}

/// Handle to the running detector.
#[derive(Clone)]
pub struct DetectHandle {
    tx: mpsc::Sender<Command>,
    services: Services,
    tap: broadcast::Sender<Signal>,
}

impl DetectHandle {
    /// Sets `household`'s mode until `until_ms` (None: until changed); persisted.
    pub async fn set_mode(
        &self,
        household: &str,
        mode: HouseholdMode,
        until_ms: Option<i64>,
    ) -> anyhow::Result<()> {
        self.set_mode_by(household, mode, until_ms, None).await
    }

    /// [`DetectHandle::set_mode`], recording who set it.
    pub async fn set_mode_by(
        &self,
        household: &str,
        mode: HouseholdMode,
        until_ms: Option<i64>,
        set_by: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = self.services.clock.now_ms();
        persist::save_mode(&self.services.store, household, mode, until_ms, set_by, now).await?;
        self.tx
            .send(Command::Mode {
                household: household.to_string(),
                mode,
                until_ms,
            })
            .await
            .context("detector stopped")
    }

    /// Sets `household`'s overrides; persisted.
    pub async fn set_settings(
        &self,
        household: &str,
        settings: HouseholdSettings,
    ) -> anyhow::Result<()> {
        let now = self.services.clock.now_ms();
        persist::save_settings(&self.services.store, household, &settings, now).await?;
        self.tx
            .send(Command::Settings {
                household: household.to_string(),
                settings: Some(settings),
            })
            .await
            .context("detector stopped")
    }

    /// Tells the detector about a newly registered or moved device.
    pub async fn device_registered(
        &self,
        household: &str,
        device: &str,
        kind: &str,
        room: Option<&str>,
    ) -> anyhow::Result<()> {
        self.tx
            .send(Command::Device {
                household: household.to_string(),
                device: device.to_string(),
                kind: kind.to_string(),
                room: room.map(str::to_string),
            })
            .await
            .context("detector stopped")
    }

    /// A copy of every signal sent to the workflow from now on (observers and tests; a
    /// slow observer misses signals, the workflow never does).
    pub fn tap(&self) -> broadcast::Receiver<Signal> {
        self.tap.subscribe()
    }

    /// The detector's view of every household.
    pub async fn views(&self) -> anyhow::Result<Vec<HouseholdView>> {
        self.ask_views(None).await
    }

    /// The detector's view of `households` (those it knows): for one screen, without
    /// building the view of every household in the detection loop.
    pub async fn views_of(&self, households: &[&str]) -> anyhow::Result<Vec<HouseholdView>> {
        self.ask_views(Some(households.iter().map(|h| h.to_string()).collect()))
            .await
    }

    async fn ask_views(&self, only: Option<Vec<String>>) -> anyhow::Result<Vec<HouseholdView>> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Views(only, tx))
            .await
            .context("detector stopped")?;
        rx.await.context("detector stopped")
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    kind: &'static str,
    action: &'static str,
}

struct DetectMetrics {
    signals: Family<SignalLabels, Counter>,
    households: Gauge,
    snapshot_errors: Counter,
    clock_steps: Counter,
}

/// Help, fall and gas observations, read before any other (ingest's alarm lane), and
/// the progress ingest waits on.
pub struct AlarmQueue {
    /// The queue.
    pub rx: mpsc::Receiver<Observation>,
    /// Told how many were applied (their signals sent to the workflow).
    pub progress: SharedAlarmProgress,
}

/// Starts detection: restores snapshots, replays the journal written since, and runs.
pub async fn start(
    services: &Services,
    mut observations: mpsc::Receiver<Observation>,
    alarms: AlarmQueue,
    signals: mpsc::Sender<Signal>,
) -> anyhow::Result<DetectHandle> {
    let AlarmQueue {
        rx: mut alarm_rx,
        progress: alarm_progress,
    } = alarms;
    let params = services.config.detect.compile()?;
    let lt = LocalTime::new(&services.config.general.timezone)
        .with_context(|| format!("unknown time zone {:?}", services.config.general.timezone))?;
    let store = services.store.clone();
    let mut engine = Engine::new(params, lt);

    let loaded = persist::load(&store, services.clock.now_ms()).await?;
    let mut cursor = loaded.cursor;
    let positions = loaded.positions;
    let restored = loaded.households.len();
    for h in loaded.households {
        engine.restore(h);
    }
    let quarantined = Counter::<u64>::default();
    quarantined.inc_by(loaded.quarantined.len() as u64);
    services.metrics.register(
        "anxin_detect_snapshots_quarantined",
        "Detector snapshots that could not be read at start and were kept in quarantine",
        quarantined,
    );
    // The device table as the gateway read it at start (the registry), not read again.
    let devices = services.registry.entries();
    for (id, d) in &devices {
        if let Some(h) = &d.household_id {
            engine.add_device(
                h,
                id,
                senses_activity(&d.kind),
                answers_check_in(&d.kind),
                RoomClass::from_name(d.room.as_deref()),
            );
        }
    }
    let kinds: std::collections::HashMap<String, (String, Option<String>)> = devices
        .into_iter()
        .map(|(id, d)| (id, (d.kind.to_string(), d.room.map(|r| r.to_string()))))
        .collect();
    let now = services.clock.now_ms();
    for (h, mode, until) in persist::load_modes(&store).await? {
        engine.set_mode(&h, mode, until, now);
    }
    for (h, s) in persist::load_settings(&store).await? {
        engine.set_settings(&h, Some(s));
    }
    // Events committed after the last snapshot: apply them (their signals may repeat; the
    // workflow recognises a repeated episode).
    let mut replayed = 0usize;
    loop {
        let batch = persist::journal_after(&store, cursor, 10_000).await?;
        if batch.is_empty() {
            break;
        }
        for e in batch {
            cursor = e.journal_id;
            let (Some(h), Ok(body)) = (&e.household_id, serde_json::from_str(&e.body)) else {
                continue;
            };
            // Already in this household's own snapshot (written after the cursor's).
            if positions.get(h).is_some_and(|p| e.journal_id <= *p) {
                continue;
            }
            let (kind, room) = kinds.get(&e.device_id).cloned().unwrap_or_default();
            let inputs = from_event(&body, &kind, RoomClass::from_name(room.as_deref()));
            engine.observe(h, Some(&e.device_id), e.event_ms, &inputs);
            replayed += 1;
        }
    }
    engine.recovered(now);
    info!(
        households = engine.len(),
        restored, replayed, "detector ready"
    );

    let m = Arc::new(DetectMetrics {
        signals: Family::default(),
        households: Gauge::default(),
        snapshot_errors: Counter::default(),
        clock_steps: Counter::default(),
    });
    services.metrics.register(
        "anxin_clock_steps",
        "Steps of the host clock seen (detection moved its deadlines by each)",
        m.clock_steps.clone(),
    );
    services.metrics.register(
        "anxin_detect_signals",
        "Signals sent to the workflow",
        m.signals.clone(),
    );
    services.metrics.register(
        "anxin_detect_households",
        "Households watched",
        m.households.clone(),
    );
    services.metrics.register(
        "anxin_detect_snapshot_errors",
        "Failed detector snapshots",
        m.snapshot_errors.clone(),
    );

    let (tx, mut rx) = mpsc::channel(1024);
    let (tap, _) = broadcast::channel(1024);
    let handle = DetectHandle {
        tx,
        services: services.clone(),
        tap: tap.clone(),
    };
    let s = services.clone();
    let snapshot_every =
        Duration::from_secs(u64::from(services.config.detect.snapshot_interval_s.max(1)));
    services.tasks.spawn(async move {
        // The gateway sees the homes while its MQTT session is up and the store takes
        // the journal: with either gone, events are neither stored nor acknowledged, so
        // a silence says nothing about the elder (one system alert, no inactivity storm).
        let mut connected = s.mqtt_connected.clone();
        let mut writable = s.store.writable();
        let mut was_connected = *connected.borrow() && *writable.borrow();
        let mut steps = StepFollower::new(&*s.clock);
        // The time, after moving every deadline by a step of the host clock, if any.
        let now = |engine: &mut Engine, steps: &mut StepFollower| {
            let (now, step) = steps.now(&*s.clock);
            if step != 0 {
                engine.shift_time(step);
                m.clock_steps.inc();
                warn!(step_ms = step, "host clock stepped: detection moved its deadlines with it");
            }
            now
        };
        if !was_connected {
            let t = now(&mut engine, &mut steps);
            engine.set_connected(false, t);
        }
        let mut snapshot = tokio::time::interval(snapshot_every);
        snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The journal position a snapshot records: every event up to it was applied.
        // Bulk observations come in journal order; an alarm may overtake bulk events
        // committed before it, so alarms do not move the position (a restart replays
        // an alarm after it once more, which the workflow recognises).
        let mut last_journal = cursor;
        let mut alarm_journal = cursor;
        // The snapshot being written, if any (one at a time, beside the loop).
        let mut writing: Option<tokio::task::JoinHandle<bool>> = None;
        loop {
            // Alarms first: applied, and their signals sent, before anything else.
            let mut alarms_applied = 0u64;
            if let Ok(o) = alarm_rx.try_recv() {
                let t = now(&mut engine, &mut steps);
                alarms_applied = apply_all(&mut engine, &o, &mut alarm_rx, t, &mut alarm_journal);
            }
            let wait = engine
                .next_deadline()
                .map(|d| s.clock.real_delay_until(d))
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(3600));
            // With alarms just applied, their signals go out before anything else.
            if alarms_applied == 0 {
                tokio::select! {
                    _ = s.cancel.cancelled() => break,
                    o = alarm_rx.recv() => {
                        let Some(o) = o else { break };
                        let t = now(&mut engine, &mut steps);
                        alarms_applied = apply_all(&mut engine, &o, &mut alarm_rx, t, &mut alarm_journal);
                    }
                    o = observations.recv() => {
                        let Some(o) = o else { break };
                        let t = now(&mut engine, &mut steps);
                        apply_all(&mut engine, &o, &mut observations, t, &mut last_journal);
                    }
                    _ = tokio::time::sleep(wait) => {
                        let t = now(&mut engine, &mut steps);
                        engine.advance(t);
                    }
                    // The session or the store changed: the gateway sees while both are up.
                    r = async {
                        tokio::select! {
                            r = connected.changed() => r,
                            r = writable.changed() => r,
                        }
                    } => {
                        if r.is_err() { break }
                        let c = *connected.borrow() && *writable.borrow();
                        if c != was_connected {
                            was_connected = c;
                            let t = now(&mut engine, &mut steps);
                            engine.set_connected(c, t);
                        }
                    }
                    c = rx.recv() => match c {
                        Some(c) => {
                            let t = now(&mut engine, &mut steps);
                            command(&mut engine, c, t);
                        }
                        None => break,
                    },
                    _ = snapshot.tick() => {
                        start_snapshot(&mut engine, &s, last_journal, &m, &mut writing);
                    }
                }
            }
            m.households.set(engine.len() as i64);
            for sig in engine.take_signals() {
                m.signals.get_or_create(&SignalLabels { kind: sig.kind.as_str(), action: action_str(sig.action) }).inc();
                debug!(household_id = sig.household_id.as_deref().unwrap_or(""), kind = sig.kind.as_str(), reason = %sig.reason, "signal");
                let _ = tap.send(sig.clone());
                s.signals.sent();
                if signals.send(sig).await.is_err() {
                    warn!("workflow stopped; signal not delivered");
                }
            }
            if alarms_applied > 0 {
                alarm_progress.applied(alarms_applied);
            }
        }
        // The last snapshot: after the one in flight, written before the task ends.
        if let Some(w) = writing.take()
            && !w.await.unwrap_or(false)
        {
            engine.mark_all_dirty();
        }
        if start_snapshot(&mut engine, &s, last_journal, &m, &mut writing)
            && let Some(w) = writing.take()
        {
            let _ = w.await;
        }
    });
    Ok(handle)
}

/// Applies `first` and everything already waiting in `rest`, then fires what is due;
/// returns how many observations were applied.
fn apply_all(
    engine: &mut Engine,
    first: &Observation,
    rest: &mut mpsc::Receiver<Observation>,
    now: i64,
    journal: &mut i64,
) -> u64 {
    apply(engine, first, now, journal);
    let mut n = 1;
    while let Ok(o) = rest.try_recv() {
        apply(engine, &o, now, journal);
        n += 1;
    }
    engine.advance(now);
    n
}

fn apply(engine: &mut Engine, o: &Observation, now: i64, last_journal: &mut i64) {
    let Some(h) = o.household_id.as_deref() else {
        return;
    };
    if let ObservationKind::Event { journal_id, .. } = o.what {
        *last_journal = (*last_journal).max(journal_id);
    }
    // A device registered while the gateway runs is learned from its first message.
    if !engine.knows_device(h, &o.device_id) {
        engine.add_device(
            h,
            &o.device_id,
            senses_activity(&o.device_kind),
            answers_check_in(&o.device_kind),
            RoomClass::from_name(o.room.as_deref()),
        );
    }
    // Fire what was due before this happened, then apply it.
    engine.advance(o.at_ms.min(now));
    let inputs: Vec<Input> = inputs_of(o);
    engine.observe(h, Some(&o.device_id), o.at_ms, &inputs);
}

fn command(engine: &mut Engine, c: Command, now: i64) {
    match c {
        Command::Mode {
            household,
            mode,
            until_ms,
        } => engine.set_mode(&household, mode, until_ms, now),
        Command::Settings {
            household,
            settings,
        } => engine.set_settings(&household, settings),
        Command::Device {
            household,
            device,
            kind,
            room,
        } => engine.add_device(
            &household,
            &device,
            senses_activity(&kind),
            answers_check_in(&kind),
            RoomClass::from_name(room.as_deref()),
        ),
        Command::Views(only, reply) => {
            let view = |h: &household::Household| HouseholdView {
                household_id: h.id.to_string(),
                last_activity_ms: (h.last_activity_ms > 0).then_some(h.last_activity_ms),
                out_since_ms: (h.out_since_ms > 0).then_some(h.out_since_ms),
                mode: h.mode,
                mode_until_ms: (h.mode_until_ms > 0).then_some(h.mode_until_ms),
                devices_offline: h.offline_devices(),
                devices: h.devices.len(),
                learned_days: h.profile.days(),
            };
            let views = match only {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| engine.household(id))
                    .map(view)
                    .collect(),
                None => engine.households().map(view).collect(),
            };
            let _ = reply.send(views);
        }
    }
}

/// Starts writing the households changed since the last snapshot, beside the detection
/// loop (which goes on applying observations and firing deadlines meanwhile). Returns
/// whether a write was started. Skipped while the previous write is still running (its
/// households stay dirty for the next tick) or while a signal is on its way to the
/// workflow (a crash now must re-derive it, not lose it). A failed write marks every
/// household dirty again, so the next snapshot rewrites what it missed.
fn start_snapshot(
    engine: &mut Engine,
    s: &Services,
    cursor: i64,
    m: &Arc<DetectMetrics>,
    writing: &mut Option<tokio::task::JoinHandle<bool>>,
) -> bool {
    if writing.as_ref().is_some_and(|w| !w.is_finished()) {
        return false;
    }
    if let Some(w) = writing.take()
        && !w.now_or_never().and_then(Result::ok).unwrap_or(false)
    {
        engine.mark_all_dirty();
    }
    if !s.signals.settled() {
        return false;
    }
    let now = s.clock.now_ms();
    let dirty = engine.take_dirty();
    if dirty.is_empty() {
        return false;
    }
    let rows = match persist::encode_all(&dirty) {
        Ok(rows) => rows,
        Err(e) => {
            m.snapshot_errors.inc();
            warn!(error = %e, "detector snapshot not encoded; the journal still has everything");
            engine.mark_all_dirty();
            return false;
        }
    };
    let (store, m) = (s.store.clone(), m.clone());
    *writing = Some(tokio::spawn(async move {
        match persist::save_rows(&store, &rows, cursor, now).await {
            Ok(()) => true,
            Err(e) => {
                m.snapshot_errors.inc();
                warn!(error = %e, "detector snapshot failed; the journal still has everything");
                false
            }
        }
    }));
    true
}

fn action_str(a: crate::signal::SignalAction) -> &'static str {
    match a {
        crate::signal::SignalAction::Raise => "raise",
        crate::signal::SignalAction::Cancel => "cancel",
        crate::signal::SignalAction::Clear => "clear",
    }
}
