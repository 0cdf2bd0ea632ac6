//! Simulated homes on the host (feature `sim`): a population of households whose
//! residents live plausible days, sensed by devices that run this crate's own
//! [`crate::device::Device`] firmware and publish over MQTT.
//!
//! - [`population()`]: households `h0001`… with a door contact, 2–3 PIR sensors, a help
//!   button and a kitchen gas sensor each, as plain serialisable data;
//! - [`day`]: the day generator (wake, meals, bathroom, outings, evening, sleep, night
//!   visits; personal rhythms, weekday/weekend differences), pure and deterministic;
//! - [`stimulus`]: from where the resident is to what each sensor sees;
//! - [`scenario`]: injected events (`nowake`, `collapse`, `help`, `gas`, `offline`,
//!   `battery`);
//! - [`clock`]: the accelerated [`SimClock`] (share it with the gateway);
//! - [`home`]: one home's timeline driving its devices, exact in virtual time;
//! - [`mqtt`]: one rumqttc connection per device;
//! - [`run()`]: runs everything until cancelled and reports what happened.
//!
//! Devices resend unacknowledged events after at least 1 s of real time (10 s of
//! virtual time at speed 1), doubling up to at least 10 s real: at high speed the
//! firmware's default 10 s of virtual time would be shorter than an ack's round trip.
//!
//! The simulation is event-driven: each home sleeps (in real time) until its next
//! stimulus or device deadline, so 50 homes at `speed` 1440 stay light. Note that
//! heartbeats still come every `heartbeat_s` of *virtual* time per device: at 1440×
//! with 300 s that is about 5 heartbeats per device per real second.

pub mod calendar;
pub mod clock;
pub mod day;
pub mod home;
pub mod mqtt;
pub mod pins;
pub mod population;
pub mod scenario;
pub mod stimulus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::device::KindCounts;
use crate::outbox::RetryPolicy;
use crate::wire::{BootEpoch, DeviceId};

pub use clock::SimClock;
pub use home::Home;
pub use population::{Household, HouseholdId, Population, Room, SimDevice, population};
pub use scenario::{Scenario, ScenarioError, When};

use mqtt::{Connection, MqttLink, Note};

/// Looks up a device's MQTT password (`None`: connect without one).
pub type Credentials = Arc<dyn Fn(&DeviceId) -> Option<String> + Send + Sync>;

/// How to run the simulation.
#[derive(Clone)]
pub struct SimConfig {
    /// MQTT broker host.
    pub broker_host: String,
    /// MQTT broker port.
    pub broker_port: u16,
    /// The virtual clock: start time and speed (`SimClock::new(start_unix_ms, 1440.0)`).
    pub clock: SimClock,
    /// Seed of the residents' days.
    pub seed: u64,
    /// Heartbeat interval of every device, in virtual seconds (default 300).
    pub heartbeat_s: u32,
    /// Boot epoch of every device; `None`: the real Unix time in seconds, so every run
    /// has a new epoch (the gateway would take a reused one for duplicates).
    pub boot: Option<BootEpoch>,
    /// Device passwords, when the broker wants them.
    pub credentials: Option<Credentials>,
    /// MQTT keep-alive, real time (default 30 s).
    pub keep_alive: Duration,
}

impl SimConfig {
    /// Defaults for a broker at `host:port` and `clock`.
    pub fn new(broker_host: impl Into<String>, broker_port: u16, clock: SimClock) -> Self {
        SimConfig {
            broker_host: broker_host.into(),
            broker_port,
            clock,
            seed: 1,
            heartbeat_s: crate::heartbeat::DEFAULT_INTERVAL_S,
            boot: None,
            credentials: None,
            keep_alive: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("broker_host", &self.broker_host)
            .field("broker_port", &self.broker_port)
            .field("clock", &self.clock)
            .field("seed", &self.seed)
            .field("heartbeat_s", &self.heartbeat_s)
            .field("boot", &self.boot)
            .field("credentials", &self.credentials.is_some())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// What happened during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimReport {
    /// Households simulated.
    pub homes: usize,
    /// Devices simulated.
    pub devices: usize,
    /// Boot epoch used.
    pub boot: BootEpoch,
    /// Virtual time at the start, Unix ms.
    pub virtual_start_ms: u64,
    /// Virtual time at the end, Unix ms.
    pub virtual_end_ms: u64,
    /// Events issued by the devices, per kind.
    pub generated: KindCounts,
    /// Events published for the first time, per kind.
    pub sent: KindCounts,
    /// Events published again (retry, replay), per kind.
    pub resent: KindCounts,
    /// Events acknowledged by the gateway, per kind.
    pub acked: KindCounts,
    /// Events dropped by full outboxes, per kind.
    pub dropped: KindCounts,
    /// Events still unacknowledged at the end.
    pub unacked_at_end: u64,
    /// Heartbeats published.
    pub heartbeats: u64,
    /// MQTT connections made (first connects and reconnects).
    pub connects: u64,
    /// Commands applied by the devices.
    pub commands: u64,
    /// Scenarios that matched no household or device (ignored).
    pub unmatched_scenarios: Vec<String>,
    /// Per device kind: how many devices.
    pub devices_by_kind: BTreeMap<String, usize>,
}

impl SimReport {
    fn add_home(&mut self, home: &Home<MqttLink>) {
        for (kind, stats, held) in home.stats() {
            self.generated.merge(&stats.generated);
            self.sent.merge(&stats.sent);
            self.resent.merge(&stats.resent);
            self.acked.merge(&stats.acked);
            self.dropped.merge(&stats.dropped);
            self.heartbeats += stats.heartbeats;
            self.commands += stats.commands;
            self.unacked_at_end += held as u64;
            *self
                .devices_by_kind
                .entry(kind.as_str().to_owned())
                .or_default() += 1;
            self.devices += 1;
        }
        for unit in home.units() {
            self.connects += unit.device.link().shared().connects();
        }
        self.homes += 1;
    }
}

/// Scenarios that match no household or device of `population`.
pub fn unmatched_scenarios(population: &Population, scenarios: &[Scenario]) -> Vec<Scenario> {
    scenarios
        .iter()
        .filter(|s| {
            !population.households.iter().any(|h| {
                s.target() == h.id.as_str() || h.devices.iter().any(|d| d.id.as_str() == s.target())
            })
        })
        .cloned()
        .collect()
}

/// Runs the simulated homes until `shutdown` is cancelled, then publishes every
/// device's offline status, disconnects, and reports.
///
/// Every device gets its own MQTT connection to `config.broker_host:broker_port`.
/// Scenario times given relative (`+10m`) count from the clock's time at the call.
pub async fn run(
    config: SimConfig,
    population: Population,
    scenarios: Vec<Scenario>,
    shutdown: CancellationToken,
) -> SimReport {
    let clock = config.clock;
    let start_ms = clock.now_ms();
    let boot = config
        .boot
        .unwrap_or_else(|| u32::try_from(clock::real_unix_ms() / 1000).unwrap_or(u32::MAX))
        .max(1);
    let mut report = SimReport {
        boot,
        virtual_start_ms: start_ms,
        unmatched_scenarios: unmatched_scenarios(&population, &scenarios)
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..SimReport::default()
    };
    for s in &report.unmatched_scenarios {
        tracing::warn!(scenario = %s, "scenario matches no simulated household or device");
    }
    tracing::info!(
        homes = population.households.len(),
        speed = clock.speed(),
        boot,
        start = %calendar::format_local(start_ms),
        "simulation starting"
    );

    // Retries count in virtual time; at high speed 10 virtual seconds are a few real
    // milliseconds, less than an ack's round trip. Keep at least 1 s (then 10 s) real.
    let defaults = RetryPolicy::default();
    let at_least = |virtual_ms: u32, real: Duration| {
        virtual_ms.max(u32::try_from(clock.virtual_ms(real)).unwrap_or(u32::MAX))
    };
    let setup = home::HomeSetup {
        seed: config.seed,
        start_ms,
        min_step_ms: clock.virtual_ms(Duration::from_millis(5)).max(1),
        boot,
        heartbeat_s: config.heartbeat_s,
        retry: RetryPolicy {
            first_ms: at_least(defaults.first_ms, Duration::from_secs(1)),
            max_ms: at_least(defaults.max_ms, Duration::from_secs(10)),
        },
    };
    let mut connections = JoinSet::new();
    let mut homes = JoinSet::new();
    for (idx, household) in population.households.into_iter().enumerate() {
        let (notes_tx, notes_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut links = Vec::new();
        for (i, spec) in household.devices.iter().enumerate() {
            let password = config.credentials.as_ref().and_then(|c| c(&spec.id));
            let (link, task) = mqtt::connect(
                Connection {
                    index: i,
                    id: spec.id.clone(),
                    boot,
                    clock,
                    notes: notes_tx.clone(),
                },
                &config.broker_host,
                config.broker_port,
                password,
                config.keep_alive,
            );
            connections.spawn(task);
            links.push(link);
        }
        let home = Home::new(idx, household, &setup, links, &scenarios);
        homes.spawn(run_home(home, clock, notes_rx, shutdown.clone()));
    }

    while let Some(done) = homes.join_next().await {
        match done {
            Ok(home) => report.add_home(&home),
            Err(e) => tracing::error!(error = %e, "a simulated home task failed"),
        }
    }
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    report.virtual_end_ms = clock.now_ms();
    tracing::info!(
        events = report.generated.total(),
        acked = report.acked.total(),
        "simulation stopped"
    );
    report
}

/// One home's task: sleep until the next scheduled moment or a message, advance.
async fn run_home(
    mut home: Home<MqttLink>,
    clock: SimClock,
    mut notes: UnboundedReceiver<Note>,
    shutdown: CancellationToken,
) -> Home<MqttLink> {
    loop {
        let next = home.next_time();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            note = notes.recv() => {
                let Some(note) = note else { break };
                home.advance_to(clock.now_ms());
                match note {
                    Note::Message { device, channel, payload } => {
                        home.on_message(device, channel, &payload);
                    }
                    Note::Connected(device) | Note::Disconnected(device) => {
                        home.poll_unit(device);
                    }
                }
            }
            _ = tokio::time::sleep_until(clock.instant_at(next)) => {
                home.advance_to(next.max(clock.now_ms()));
            }
        }
    }
    let now = home.now().max(clock.now_ms());
    for unit in home.units_mut() {
        let _ = unit.device.shutdown(now);
        unit.device.link_mut().close();
    }
    home
}

#[cfg(test)]
mod tests;
